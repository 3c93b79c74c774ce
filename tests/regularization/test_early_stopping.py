"""dlcourse.regularization.early_stopping against hand-computed cases, brute
force and closed forms."""

import itertools
import math

import pytest
import torch

from dlcourse.nn import make_mlp
from dlcourse.regularization.early_stopping import (
    EarlyStopping,
    continue_on_all_data,
    fit_early_stopping,
    mean_loss,
    replay_early_stopping,
    retrain_on_all_data,
    train_updates,
)

NAN, INF = math.nan, math.inf


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread avoids OpenMP spin-waiting on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- EarlyStopping


@pytest.mark.parametrize(
    # expected = (best_step, stop_step)
    "values, patience, min_delta, mode, expected",
    [
        ([3, 2, 1, 2, 3, 4], 3, 0.0, "min", (3, 6)),
        ([3, 2, 1, 2, 3, 4], 2, 0.0, "min", (3, 5)),
        ([3, 2, 1, 2, 3, 4], 1, 0.0, "min", (3, 4)),
        ([3, 2, 1, 2, 3, 4], 4, 0.0, "min", (3, None)),
        (
            [5, 4, 4, 4, 3, 3],
            2,
            0.0,
            "min",
            (2, 4),
        ),  # an equal value is no improvement
        (
            [5, 4, 3.9, 3.9, 3.9],
            2,
            0.15,
            "min",
            (2, 4),
        ),  # 0.1 better is not enough
        (
            [5, 4, 3.9, 3.8, 3.7],
            2,
            0.15,
            "min",
            (4, None),
        ),  # measured against the best
        ([5, 4, 3.9, 3.8, 3.7], 2, 0.05, "min", (5, None)),
        ([1, 2, 3, 2, 1], 2, 0.0, "max", (3, 5)),
        ([0.5, 0.6, 0.6, 0.65], 2, 0.1, "max", (1, 3)),
        (
            [NAN, 2, 1, NAN, INF, 0.5],
            3,
            0.0,
            "min",
            (6, None),
        ),  # non-finite: no improvement
        ([NAN, NAN], 2, 0.0, "min", (0, 2)),
        ([1, -INF, -INF], 2, 0.0, "min", (1, 3)),
        ([1, INF], 1, 0.0, "max", (1, 2)),
    ],
)
def test_scripted_curves_stop_at_the_right_step(
    values, patience, min_delta, mode, expected
):
    assert (
        replay_early_stopping(
            values, patience=patience, min_delta=min_delta, mode=mode
        )
        == expected
    )


def _brute_force(values, patience):
    """Stop at the first t whose last `patience` values all fail to beat the
    minimum before them."""
    best = INF
    best_step, bad = 0, 0
    for t, v in enumerate(values, start=1):
        if v < best:
            best, best_step, bad = v, t, 0
        else:
            bad += 1
        if bad == patience:
            return best_step, t
    return best_step, None


def test_every_short_curve_matches_the_definition():
    for n in range(1, 7):
        for values in itertools.product([0.0, 1.0, 2.0], repeat=n):
            for patience in (1, 2, 3):
                assert replay_early_stopping(
                    values, patience=patience
                ) == _brute_force(values, patience)


def test_attributes_follow_the_steps_and_tensor_values_are_accepted():
    es = EarlyStopping(patience=2)
    assert (es.best, es.best_step, es.num_steps, es.best_state) == (
        INF,
        0,
        0,
        None,
    )
    assert es.step(torch.tensor(1.0)) is False
    assert es.step(2.0) is False and es.num_bad == 1
    assert es.step(0.5) is False and (es.best, es.best_step, es.num_bad) == (
        0.5,
        3,
        0,
    )
    assert es.improves(0.4) and not es.improves(0.5)
    assert es.step(0.6) is False and es.step(0.7) is True and es.should_stop


def _tiny_model():
    return make_mlp([3, 4, 2], generator=torch.Generator().manual_seed(0))


def test_best_state_is_a_copy_and_restore_loads_it_exactly():
    model = _tiny_model()
    es = EarlyStopping(patience=5)
    es.step(1.0, model)
    saved = {k: v.clone() for k, v in es.best_state.items()}
    live = dict(model.state_dict())
    for k in saved:  # not aliased: separate storage
        assert es.best_state[k].data_ptr() != live[k].data_ptr()
    with (
        torch.no_grad()
    ):  # change the live parameters, then record a worse value
        for p in model.parameters():
            p.add_(1.0)
    es.step(2.0, model)
    for k in saved:
        torch.testing.assert_close(es.best_state[k], saved[k], rtol=0, atol=0)
    assert not torch.equal(model.state_dict()["0.weight"], saved["0.weight"])
    es.restore(model)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    with (
        torch.no_grad()
    ):  # changing the restored model leaves the record intact
        model[0].weight.zero_()
    torch.testing.assert_close(
        es.best_state["0.weight"], saved["0.weight"], rtol=0, atol=0
    )


# --------------------------------------------------------------- training loops


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 0).long()


def _counting(model, lr=0.1):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    counter = {"steps": 0}
    opt.register_step_post_hook(
        lambda *_: counter.__setitem__("steps", counter["steps"] + 1)
    )
    return opt, counter


def test_train_updates_takes_exactly_that_many_steps():
    x, y = _data()  # 60 rows, batches of 7: 9 updates per pass
    for updates in (0, 5, 23):
        model = _tiny_model()
        opt, counter = _counting(model)
        assert (
            train_updates(
                model,
                x,
                y,
                optimizer=opt,
                updates=updates,
                batch_size=7,
                generator=torch.Generator().manual_seed(0),
            )
            == updates
        )
        assert counter["steps"] == updates


def test_fit_restores_the_best_epoch_exactly_and_stops_by_patience():
    x, y = _data(60, 0)
    xv, yv = _data(40, 1)
    model = make_mlp([3, 32, 2], generator=torch.Generator().manual_seed(0))
    h = fit_early_stopping(
        model,
        x,
        y,
        xv,
        yv,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        max_epochs=60,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
        patience=4,
    )
    assert replay_early_stopping(h["val_loss"], patience=4) == (
        h["best_epoch"],
        h["stopped_epoch"],
    )
    assert h["stopped_epoch"] < 60 and h["stopped_epoch"] == h["best_epoch"] + 4
    assert (
        len(h["val_loss"]) == h["stopped_epoch"] and h["updates_per_epoch"] == 6
    )
    assert h["best_updates"] == 6 * h["best_epoch"]
    assert mean_loss(model, xv, yv) == min(
        h["val_loss"]
    )  # exactly the recorded best


def test_fit_can_monitor_a_metric_in_max_mode():
    x, y = _data(60, 0)
    xv, yv = _data(40, 1)
    model = make_mlp([3, 16, 2], generator=torch.Generator().manual_seed(0))

    def acc(m):
        return (m(xv).argmax(1) == yv).float().mean().item()

    h = fit_early_stopping(
        model,
        x,
        y,
        xv,
        yv,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        max_epochs=15,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
        monitor="acc",
        mode="max",
        metrics={"acc": acc},
    )
    assert h["stopped_epoch"] == 15  # patience=None never stops early
    assert h["best_epoch"] == 1 + max(
        range(15), key=lambda i: (h["acc"][i], -i)
    )
    assert acc(model) == max(h["acc"])


@pytest.mark.parametrize(
    "count, expected", [("updates", 5 * 4), ("epochs", 5 * 9)]
)
def test_strategy_one_repeats_the_recorded_count(count, expected):
    x, y = _data(85)  # ceil(85 / 10) = 9 updates per epoch on all data
    model = _tiny_model()
    opt, counter = _counting(model)
    out = retrain_on_all_data(
        model,
        x,
        y,
        optimizer=opt,
        best_epoch=5,
        updates_per_epoch=4,
        count=count,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
    )
    assert out["updates"] == counter["steps"] == expected
    assert out["epochs"] == pytest.approx(expected / 9)


def _strategy_two(target, max_updates, updates_per_check=3):
    x, y = _data(60, 0)
    xv, yv = x[:20], y[:20]  # the validation part is inside "all data"
    model = make_mlp([3, 32, 2], generator=torch.Generator().manual_seed(0))
    opt, counter = _counting(model, lr=0.3)
    out = continue_on_all_data(
        model,
        x,
        y,
        xv,
        yv,
        optimizer=opt,
        target=target,
        updates_per_check=updates_per_check,
        max_updates=max_updates,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
    )
    return out, counter["steps"]


def test_strategy_two_respects_the_bound_when_the_target_is_unreachable():
    out, steps = _strategy_two(
        target=0.0, max_updates=7
    )  # cross-entropy is never <= 0
    assert out["reason"] == "bound" and out["updates"] == steps == 7
    assert len(out["val_loss"]) == 1 + 3  # checks after 3, 3 and 1 updates
    assert all(v > 0.0 for v in out["val_loss"])


def test_strategy_two_stops_by_the_criterion():
    out, steps = _strategy_two(
        target=1e6, max_updates=5
    )  # already below: no update at all
    assert (out["reason"], out["updates"], len(out["val_loss"]), steps) == (
        "criterion",
        0,
        1,
        0,
    )
    start = out["val_loss"][0]
    out, steps = _strategy_two(target=0.9 * start, max_updates=3000)
    assert out["reason"] == "criterion" and out["updates"] == steps
    assert out["val_loss"][-1] <= 0.9 * start < min(out["val_loss"][:-1])
    assert 0 < steps < 3000 and steps % 3 == 0


# -------------------------------------------------------------- argument checks


def test_argument_checks():
    with pytest.raises(
        ValueError, match=r"EarlyStopping: 'patience' must be >= 1; got 0\."
    ):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match=r"'patience' must be >= 1; got -1\."):
        EarlyStopping(patience=-1)
    with pytest.raises(
        TypeError, match=r"'patience' must be an int; got float\."
    ):
        EarlyStopping(patience=2.0)
    with pytest.raises(
        ValueError, match=r"'min_delta' must be >= 0; got -0\.1\."
    ):
        EarlyStopping(patience=1, min_delta=-0.1)
    with pytest.raises(
        ValueError, match=r"'mode' must be one of 'min', 'max'; got 'up'\."
    ):
        EarlyStopping(patience=1, mode="up")
    with pytest.raises(
        TypeError,
        match=r"EarlyStopping.step: 'value' must be a real number; got str\.",
    ):
        EarlyStopping(patience=1).step("0.3")
    with pytest.raises(
        TypeError, match=r"'model' must be a torch.nn.Module or None"
    ):
        EarlyStopping(patience=1).step(0.3, model="net")
    with pytest.raises(
        RuntimeError, match=r"EarlyStopping.restore: no state recorded"
    ):
        EarlyStopping(patience=1).restore(_tiny_model())
    es = EarlyStopping(patience=1)
    es.step(
        NAN, _tiny_model()
    )  # a non-finite value is never stored as the best
    with pytest.raises(RuntimeError, match="no state recorded"):
        es.restore(_tiny_model())
    x, y = _data(20)
    m = _tiny_model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    g = torch.Generator()
    common = dict(optimizer=opt, batch_size=5, generator=g)
    with pytest.raises(
        ValueError,
        match=r"continue_on_all_data: 'max_updates' must be >= 1; got 0\.",
    ):
        continue_on_all_data(
            m,
            x,
            y,
            x,
            y,
            target=0.1,
            updates_per_check=1,
            max_updates=0,
            **common,
        )
    with pytest.raises(
        ValueError, match=r"'updates_per_check' must be >= 1; got 0\."
    ):
        continue_on_all_data(
            m,
            x,
            y,
            x,
            y,
            target=0.1,
            updates_per_check=0,
            max_updates=5,
            **common,
        )
    with pytest.raises(
        ValueError,
        match=r"continue_on_all_data: 'target' must be finite; got nan\.",
    ):
        continue_on_all_data(
            m,
            x,
            y,
            x,
            y,
            target=NAN,
            updates_per_check=1,
            max_updates=5,
            **common,
        )
    with pytest.raises(
        ValueError,
        match=r"'x_val' and 'y_val' must have the same number of rows; "
        r"got 20 and 19\.",
    ):
        continue_on_all_data(
            m,
            x,
            y,
            x,
            y[:19],
            target=0.1,
            updates_per_check=1,
            max_updates=5,
            **common,
        )
    with pytest.raises(
        ValueError,
        match=r"retrain_on_all_data: 'count' must be one of 'epochs', "
        r"'updates'; got 'steps'\.",
    ):
        retrain_on_all_data(
            m, x, y, best_epoch=1, updates_per_epoch=1, count="steps", **common
        )
    with pytest.raises(
        ValueError,
        match=r"retrain_on_all_data: 'best_epoch' must be >= 1; got 0\.",
    ):
        retrain_on_all_data(
            m, x, y, best_epoch=0, updates_per_epoch=1, count="epochs", **common
        )
    with pytest.raises(
        ValueError, match=r"train_updates: 'updates' must be >= 0; got -1\."
    ):
        train_updates(m, x, y, updates=-1, **common)
    with pytest.raises(
        ValueError,
        match=r"fit_early_stopping: 'monitor' must be one of 'val_loss', "
        r"'acc'; got 'val_acc'\.",
    ):
        fit_early_stopping(
            m,
            x,
            y,
            x,
            y,
            max_epochs=1,
            monitor="val_acc",
            metrics={"acc": lambda _: 0.0},
            **common,
        )
    with pytest.raises(
        ValueError,
        match=r"fit_early_stopping: 'max_epochs' must be >= 1; got 0\.",
    ):
        fit_early_stopping(m, x, y, x, y, max_epochs=0, **common)


@pytest.mark.parametrize(
    "where",
    [
        "train_updates",
        "fit_early_stopping",
        "retrain_on_all_data",
        "continue_on_all_data",
    ],
)
@pytest.mark.parametrize("bad", ["optimizer", "generator"])
def test_optimizer_and_generator_types_are_checked(where, bad):
    x, y = _data(20)
    m = _tiny_model()
    kwargs = dict(
        optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
        generator=torch.Generator(),
        batch_size=5,
    )
    kwargs[bad] = "oops"
    calls = {
        "train_updates": lambda: train_updates(m, x, y, updates=1, **kwargs),
        "fit_early_stopping": lambda: fit_early_stopping(
            m, x, y, x, y, max_epochs=1, **kwargs
        ),
        "retrain_on_all_data": lambda: retrain_on_all_data(
            m, x, y, best_epoch=1, updates_per_epoch=1, count="epochs", **kwargs
        ),
        "continue_on_all_data": lambda: continue_on_all_data(
            m,
            x,
            y,
            x,
            y,
            target=0.1,
            updates_per_check=1,
            max_updates=1,
            **kwargs,
        ),
    }
    allowed = {
        "optimizer": "torch.optim.Optimizer",
        "generator": "torch.Generator",
    }[bad]
    with pytest.raises(
        TypeError, match=rf"{where}: '{bad}' must be a {allowed}; got str\."
    ):
        calls[where]()


def test_fit_early_stopping_checks_its_patience():
    x, y = _data(20)
    m = _tiny_model()
    with pytest.raises(
        ValueError,
        match=r"fit_early_stopping: 'patience' must be >= 1; got 0\.",
    ):
        fit_early_stopping(
            m,
            x,
            y,
            x,
            y,
            optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
            max_epochs=3,
            batch_size=5,
            generator=torch.Generator(),
            patience=0,
        )
