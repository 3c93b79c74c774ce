"""dlcourse.regularization.ablation against exact math and PyTorch."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcourse import _store
from dlcourse.nn import make_mlp
from dlcourse.regularization import ablation
from dlcourse.regularization.ablation import (
    RowConfig,
    augment_signals,
    circular_shift,
    row_log_probs,
    run_ablation,
    train_rows,
    warp_signals,
)
from dlcourse.regularization.augmentation.audio import time_shift


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _signals(shape=(6, 40), seed=0):
    return torch.randn(*shape, generator=_gen(seed))


# ------------------------------------------------------------ transforms


def test_circular_shift_matches_roll_and_audio_time_shift():
    x = _signals()
    shifts = torch.tensor([0, 1, -1, 7, -39, 45])
    out = circular_shift(x, shifts)
    for row, k, o in zip(x, shifts.tolist(), out):
        assert torch.equal(o, torch.roll(row, k))
        assert torch.equal(o, time_shift(row[None], k, mode="roll")[0])
    assert torch.equal(circular_shift(x, 3), torch.roll(x, 3, dims=-1))


@pytest.mark.parametrize("k", [0, 1, 5, -13, 40, 41])
def test_shift_by_k_then_minus_k_is_identity(k):
    x = _signals((3, 2, 40))
    ks = torch.full((3, 2), k)
    assert torch.equal(circular_shift(circular_shift(x, ks), -ks), x)
    # x'_j = x_{(j - k) mod L}, entry by entry
    out = circular_shift(x, ks)
    for j in range(40):
        assert torch.equal(out[..., j], x[..., (j - k) % 40])


def test_no_augmentation_is_identity_and_labels_unchanged():
    x = _signals()
    y = torch.arange(6)
    assert torch.equal(augment_signals(x, generator=_gen(1)), x)
    out = augment_signals(x, max_shift=5, noise=0.1, generator=_gen(1))
    assert out.shape == x.shape and torch.equal(y, torch.arange(6))


def test_shift_only_is_a_circular_shift_within_range():
    x = _signals((200, 40))
    out = augment_signals(x, max_shift=3, generator=_gen(2))
    found = []
    for row, o in zip(x, out):
        ks = [k for k in range(-3, 4) if torch.equal(o, torch.roll(row, k))]
        assert len(ks) == 1  # exactly one shift in -3..3 explains the row
        found.append(ks[0])
    assert set(found) == set(range(-3, 4))  # every shift is drawn


def test_scale_and_shear_are_the_stated_affine_maps():
    x = _signals((500, 40), seed=3)
    t = torch.linspace(-0.5, 0.5, 40)
    scaled = augment_signals(x, scale=0.2, generator=_gen(4))
    ratio = scaled / x  # one factor 1 + alpha per signal
    torch.testing.assert_close(ratio, ratio[:, :1].expand(-1, 40))
    assert ratio.min() >= 0.8 and ratio.max() <= 1.2
    sheared = augment_signals(x, shear=1.5, generator=_gen(4))
    gamma = (sheared - x)[:, -1:]  # gamma * t_L = gamma / 2
    torch.testing.assert_close(sheared - x, 2 * gamma * t)
    assert (2 * gamma).abs().max() <= 1.5


def test_noise_has_the_requested_standard_deviation():
    x = torch.zeros(400, 40)
    out = augment_signals(x, noise=0.3, generator=_gen(5))
    # std of 16000 normal draws: within 5 standard errors of 0.3
    assert abs(out.std().item() - 0.3) < 5 * 0.3 / (2 * 16000) ** 0.5


def test_per_model_strengths_broadcast():
    x = _signals((2, 50, 40), seed=6)
    m = torch.tensor([0, 4])[:, None, None]
    out = augment_signals(x, max_shift=m, generator=_gen(7))
    assert torch.equal(out[0], x[0])  # model 0: no shift
    assert not torch.equal(out[1], x[1])


# ---------------------------------------------------------------- training


def _data(n=60, seed=0):
    g = _gen(seed)
    x = torch.randn(n, 40, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return dict(x=x, y=y, x_val=x[:20], y_val=y[:20])


TRAIN = dict(
    sizes=[40, 8, 8, 10],
    epochs=2,
    lr=1e-2,
    batch_size=30,
    every=1,
    generator=_gen(0),
)


def test_plain_rows_are_separate_adamw_trainings():
    # no dropout, no augmentation, no smoothing: model i is make_mlp(seed i)
    # trained by AdamW (decay on the weights only) on its own minibatches
    data = _data()
    data64 = {
        k: v.double() if v.is_floating_point() else v for k, v in data.items()
    }
    configs = [RowConfig(), RowConfig(weight_decay=0.5)]
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            run = train_rows(configs, [3, 4], data64, **TRAIN)
            for i, (cfg, seed) in enumerate(zip(configs, [3, 4])):
                mlp = make_mlp(TRAIN["sizes"], generator=_gen(seed))
                weights = [
                    p for n, p in mlp.named_parameters() if "weight" in n
                ]
                biases = [p for n, p in mlp.named_parameters() if "bias" in n]
                opt = torch.optim.AdamW(
                    [
                        dict(params=weights, weight_decay=cfg.weight_decay),
                        dict(params=biases, weight_decay=0.0),
                    ],
                    lr=TRAIN["lr"],
                )
                order = _gen(10_000 + seed)
                for _ in range(TRAIN["epochs"]):
                    perm = torch.randperm(60, generator=order)
                    for s in range(0, 60, 30):
                        idx = perm[s : s + 30]
                        loss = F.cross_entropy(
                            mlp(data64["x"][idx]), data64["y"][idx]
                        )
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                with torch.no_grad():
                    torch.testing.assert_close(
                        run.logits(-1, data64["x_val"])[i],
                        mlp(data64["x_val"]),
                    )
        finally:
            torch.set_default_dtype(torch.float32)


def test_label_smoothing_rows_use_pytorch_smoothed_loss():
    # one step of a smoothed row equals one Adam step on F.cross_entropy
    # with label_smoothing
    data = _data()
    cfg = RowConfig(label_smoothing=0.2)
    train = {**TRAIN, "epochs": 1, "batch_size": 60}
    run = train_rows([cfg], [1], data, **train)
    mlp = make_mlp(TRAIN["sizes"], generator=_gen(1))
    opt = torch.optim.Adam(mlp.parameters(), lr=TRAIN["lr"])
    perm = torch.randperm(60, generator=_gen(10_001))
    loss = F.cross_entropy(
        mlp(data["x"][perm]), data["y"][perm], label_smoothing=0.2
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        torch.testing.assert_close(run.logits(-1, data["x"])[0], mlp(data["x"]))


def test_history_shapes_and_accuracies():
    data = _data()
    run = train_rows(
        [RowConfig(dropout=0.5, max_shift=2)] * 2,
        [0, 1],
        data,
        **{**TRAIN, "epochs": 3, "every": 2},
    )
    assert run.epochs == [2, 3]
    assert run.val_acc.shape == (2, 2) and run.train_acc.shape == (2, 2)
    assert ((run.val_acc >= 0) & (run.val_acc <= 1)).all()
    acc = run.logits(0, data["x_val"]).argmax(-1) == data["y_val"]
    torch.testing.assert_close(acc.double().mean(-1), run.val_acc[0])


def test_run_ablation_rows_and_choice_on_validation():
    data = _data(80)
    stages = [("baseline", {}), ("+ wd", {"weight_decay": [0.0, 1.0]})]
    rows = run_ablation(stages, [0, 1], data, members=[1, 2], train=TRAIN)
    assert [r["name"] for r in rows] == ["baseline", "+ wd", "+ ensemble"]
    wd_row = rows[1]
    means = {
        c: wd_row["run"]
        .val_acc[
            :, [i for i, cf in enumerate(wd_row["run"].configs) if cf == c]
        ]
        .mean(1)
        .max()
        .item()
        for c in wd_row["candidates"]
    }
    assert means[wd_row["config"]] == max(means.values())
    assert rows[2]["config"].members in (1, 2)
    assert set(rows[2]["val_by_size"]) == {1, 2}
    # an ensemble of one is the last row's model itself
    torch.testing.assert_close(rows[2]["val_by_size"][1], wd_row["val"])


# ----------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dropout=1.0), r"RowConfig: 'dropout' must be in \[0, 1\)"),
        (dict(dropout=-0.1), r"RowConfig: 'dropout' must be in \[0, 1\)"),
        (dict(weight_decay=-1e-3), r"'weight_decay' must be >= 0"),
        (dict(members=0), r"'members' must be >= 1 \(an ensemble"),
        (dict(max_shift=-1), r"'max_shift' must be >= 0"),
        (dict(noise=-0.5), r"'noise' must be >= 0"),
        (dict(label_smoothing=1.5), r"'label_smoothing' must be in \[0, 1\]"),
    ],
)
def test_row_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RowConfig(**kwargs)


def test_row_config_type_errors():
    with pytest.raises(TypeError, match="'max_shift' must be an int"):
        RowConfig(max_shift=1.5)
    with pytest.raises(TypeError, match="'members' must be an int"):
        RowConfig(members=2.0)
    with pytest.raises(ValueError, match="'dropout' must be in"):
        dataclasses.replace(RowConfig(), dropout=1.0)


def test_transform_argument_checks():
    x = _signals()
    with pytest.raises(TypeError, match="circular_shift: 'x' must be"):
        circular_shift([1.0, 2.0], 1)
    with pytest.raises(ValueError, match="'shifts' must be an integer"):
        circular_shift(x, torch.ones(6))
    with pytest.raises(ValueError, match="augment_signals: 'noise' must be"):
        augment_signals(x, noise=-1.0)
    with pytest.raises(TypeError, match="'max_shift' must be an int"):
        augment_signals(x, max_shift=1.5)
    with pytest.raises(ValueError, match="'scale' must be >= 0"):
        augment_signals(x, scale=torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="augment_signals: 'x' must be"):
        augment_signals(torch.ones(3, 4, dtype=torch.long))


def test_empty_ensemble_is_refused():
    data = _data()
    stages = [("baseline", {})]
    with pytest.raises(ValueError, match="'members' must be a non-empty"):
        run_ablation(stages, [0], data, members=[], train=TRAIN)
    with pytest.raises(ValueError, match=r"'members\[0\]' must be >= 1"):
        run_ablation(stages, [0], data, members=[0], train=TRAIN)


def test_train_rows_argument_checks():
    data = _data()
    with pytest.raises(ValueError, match="train_rows: 'seeds' must be"):
        train_rows([RowConfig()], [0, 1], data, **TRAIN)
    with pytest.raises(ValueError, match="train_rows: 'configs' must be"):
        train_rows([], [], data, **TRAIN)
    with pytest.raises(TypeError, match=r"'configs\[0\]' must be"):
        train_rows([{}], [0], data, **TRAIN)
    with pytest.raises(ValueError, match="'epochs' must be >= 1"):
        train_rows([RowConfig()], [0], data, **{**TRAIN, "epochs": 0})
    with pytest.raises(ValueError, match="'lr' must be > 0"):
        train_rows([RowConfig()], [0], data, **{**TRAIN, "lr": 0.0})


# ------------------------------------------- warp, schedule, test-time aug


def _line_lstsq(x):
    t = torch.linspace(-0.5, 0.5, x.shape[-1], dtype=x.dtype)
    a = torch.stack([torch.ones_like(t), t], 1)  # (L, 2)
    coef = torch.linalg.lstsq(a, x.T).solution  # (2, N)
    return (a @ coef).T


def test_warp_whole_shift_is_circular_shift_of_the_detrended_signal():
    x = _signals((5, 40), seed=8).double()
    line = _line_lstsq(x)
    for k in (0, 3, -7):
        out = warp_signals(x, float(k))
        expected = line + circular_shift(x - line, k)
        torch.testing.assert_close(out, expected)


def test_warp_keeps_a_straight_line_and_half_shift_interpolates():
    t = torch.linspace(-0.5, 0.5, 40, dtype=torch.float64)
    lines = torch.stack([2 + 3 * t, -1 + 0 * t])
    for u, s in ((2.5, 1.0), (-4.0, 1.2), (0.0, 0.8)):
        torch.testing.assert_close(warp_signals(lines, u, s), lines)
    # a shift by 1/2 is the mean of the shifts by 0 and by 1
    x = _signals((3, 40), seed=9).double()
    half = (warp_signals(x, 0.0) + warp_signals(x, 1.0)) / 2
    torch.testing.assert_close(warp_signals(x, 0.5), half)


def test_stretch_augmentation_keeps_lines_and_broadcasts_per_model():
    t = torch.linspace(-0.5, 0.5, 40)
    x = (1 + 2 * t).expand(2, 7, 40)
    out = augment_signals(
        x,
        max_shift=torch.tensor([0, 5])[:, None, None],
        stretch=torch.tensor([0.0, 0.2])[:, None, None],
        generator=_gen(2),
    )
    torch.testing.assert_close(out, x)  # a line is moved into itself
    y = _signals((2, 7, 40), seed=10)
    out = augment_signals(
        y,
        max_shift=3,
        stretch=torch.tensor([0.0, 0.2])[:, None, None],
        generator=_gen(2),
    )
    assert out.shape == y.shape and not torch.allclose(out, y)


def test_one_cycle_rows_match_adamw_with_the_stated_schedule():
    data = _data()
    train = {**TRAIN, "epochs": 3, "schedule": "one-cycle", "lr": 0.05}
    cfg = RowConfig(weight_decay=0.3)
    run = train_rows([cfg], [5], data, **train)
    mlp = make_mlp(TRAIN["sizes"], generator=_gen(5))
    weights = [p for n, p in mlp.named_parameters() if "weight" in n]
    biases = [p for n, p in mlp.named_parameters() if "bias" in n]
    opt = torch.optim.AdamW(
        [
            dict(params=weights, weight_decay=0.3),
            dict(params=biases, weight_decay=0.0),
        ],
        lr=0.05,
    )
    total, warm = 6, 1  # 3 epochs of 2 steps; a quarter: max(1, 6 // 4)

    def factor(step):  # eta_step / eta: linear warm-up, then cosine to 0
        if step < warm:
            return (step + 1) / warm
        f = (step - warm) / (total - warm - 1)
        return 0.5 * (1 + math.cos(math.pi * f))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    order = _gen(10_005)
    for _ in range(3):
        perm = torch.randperm(60, generator=order)
        for s in range(0, 60, 30):
            idx = perm[s : s + 30]
            loss = F.cross_entropy(mlp(data["x"][idx]), data["y"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    assert factor(total - 1) == 0.0  # the last step has rate 0
    with torch.no_grad():
        torch.testing.assert_close(
            run.logits(-1, data["x_val"])[0], mlp(data["x_val"])
        )


def test_test_time_augmentation_averages_probabilities():
    data = _data(80)
    rows = run_ablation(
        [("baseline", {})], [0, 1], data, members=[1], train=TRAIN
    )
    x = data["x_val"]
    plain = row_log_probs(rows[0], x)
    torch.testing.assert_close(row_log_probs(rows[0], x, shifts=[0.0]), plain)
    copies = [warp_signals(x, u, s) for u in (-1.5, 2.0) for s in (0.9, 1.1)]
    expected = torch.stack(
        [row_log_probs(rows[0], c).exp() for c in copies]
    ).mean(0)
    out = row_log_probs(rows[0], x, shifts=[-1.5, 2.0], stretches=[0.9, 1.1])
    torch.testing.assert_close(out.exp(), expected)


def test_none_in_a_grid_keeps_the_current_value():
    data = _data(80)
    stages = [
        ("baseline", {}),
        ("+ wd", {"weight_decay": [0.0, 0.5]}),
        ("+ both", {"weight_decay": [None, 0.0], "dropout": [None, 0.2]}),
    ]
    rows = run_ablation(stages, [0], data, members=[1], train=TRAIN)
    current = rows[1]["config"]
    assert list(rows[2]["tried"]) == [
        current,
        dataclasses.replace(current, weight_decay=0.0, dropout=0.2),
    ]


def test_new_argument_checks():
    x = _signals()
    with pytest.raises(ValueError, match="warp_signals: 'stretch' must be > 0"):
        warp_signals(x, 1.0, 0.0)
    with pytest.raises(ValueError, match="augment_signals: 'stretch' must be"):
        augment_signals(x, stretch=-0.1)
    with pytest.raises(ValueError, match="RowConfig: 'stretch' must be"):
        RowConfig(stretch=-1.0)
    with pytest.raises(ValueError, match="train_rows: 'schedule' must be one"):
        train_rows(
            [RowConfig()], [0], _data(), **{**TRAIN, "schedule": "cosine"}
        )
    rows = run_ablation(
        [("baseline", {})], [0], _data(), members=[1], train=TRAIN
    )
    with pytest.raises(ValueError, match="row_log_probs: 'shifts' must be"):
        row_log_probs(rows[0], x, shifts=[])


def test_a_stage_with_new_training_settings_retrains_the_current_rows():
    # a control row: the same configuration under a longer budget is
    # trained again, and the previous (shorter) models are no candidate
    data = _data(80)
    longer = {"epochs": TRAIN["epochs"] + 2}
    stages = [
        ("baseline", {}),
        ("+ wd", {"weight_decay": [0.0, 0.5]}),
        ("+ longer", {}, longer),
        ("+ dropout", {"dropout": [0.0, 0.2]}, longer),
    ]
    rows = run_ablation(stages, [0, 1], data, members=[1], train=TRAIN)
    control = rows[2]
    assert control["config"] == rows[1]["config"]
    assert control["run"] is not rows[1]["run"]
    assert control["run"].epochs[-1] == TRAIN["epochs"] + 2
    assert list(control["tried"]) == [rows[1]["config"]]
    torch.testing.assert_close(control["tried"][control["config"]],
                               control["val"])  # fmt: skip
    # the next stage, trained like the control, reuses the control's models
    off = rows[1]["config"]
    torch.testing.assert_close(rows[3]["tried"][off], control["val"])
    assert all(c != off for c in rows[3]["stage_run"].configs)


def test_repeated_candidates_are_tried_once():
    data = _data(80)
    stages = [
        ("baseline", {}),
        ("+ wd", {"weight_decay": [0.0, 0.5, 0.5, None]}),
    ]
    rows = run_ablation(stages, [0], data, members=[1], train=TRAIN)
    assert list(rows[1]["tried"]) == [RowConfig(), RowConfig(weight_decay=0.5)]
    assert rows[1]["stage_run"].configs == [RowConfig(weight_decay=0.5)]


# ----------------------------------------------------------------- the cache

CACHED = dict(TRAIN, epochs=3, every=2)
CONFIGS = [RowConfig(dropout=0.3, max_shift=2, noise=0.1), RowConfig()]


def _cached(cache, seed=5, seeds=(0, 1), **changes):
    gen = _gen(seed)
    train = {**CACHED, "generator": gen, **changes}
    run = train_rows(CONFIGS, list(seeds), _data(), **train, cache=cache)
    return run, gen


def _same_run(a, b):
    assert a.configs == b.configs and a.seeds == b.seeds
    assert a.epochs == b.epochs and a.sizes == b.sizes
    assert torch.equal(a.train_acc, b.train_acc)
    assert torch.equal(a.val_acc, b.val_acc)
    for pa, pb in zip(a.params, b.params, strict=True):
        for ta, tb in zip(pa, pb, strict=True):
            assert torch.equal(ta, tb)


def test_cached_run_is_the_trained_run_and_is_read_back(tmp_path, monkeypatch):
    trained, gen = _cached(False)
    written, gen_w = _cached(tmp_path)
    assert len(list(tmp_path.glob("ablation-*.npz"))) == 1
    _same_run(trained, written)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr(ablation, "_train", no_training)
    read, gen_r = _cached(tmp_path)
    _same_run(trained, read)
    # the generator is left where training leaves it, read back or not
    assert torch.equal(gen.get_state(), gen_w.get_state())
    assert torch.equal(gen.get_state(), gen_r.get_state())
    logits = read.logits(-1, _data()["x_val"])
    torch.testing.assert_close(logits, trained.logits(-1, _data()["x_val"]))


@pytest.mark.parametrize(
    "changes",
    [dict(seed=6), dict(seeds=(0, 2)), dict(lr=2e-2), dict(every=3)],
)
def test_every_argument_and_the_generator_state_name_the_file(
    tmp_path, changes
):
    _cached(tmp_path)
    other, _ = _cached(tmp_path, **changes)
    assert len(list(tmp_path.glob("ablation-*.npz"))) == 2
    fresh, _ = _cached(False, **changes)
    _same_run(other, fresh)


def test_another_environment_is_another_file(tmp_path, monkeypatch):
    _cached(tmp_path)
    env = _store.computation_environment()
    assert {"torch", "dlcourse", "numerics", "kernels", "threads"} <= set(env)
    monkeypatch.setattr(
        _store, "computation_environment", lambda: {**env, "torch": "0.0"}
    )
    _cached(tmp_path)
    assert len(list(tmp_path.glob("ablation-*.npz"))) == 2


def _only_file(folder):
    (path,) = folder.glob("ablation-*.npz")
    return path


def test_a_file_that_is_not_npz_is_rebuilt_with_a_warning(tmp_path):
    trained, _ = _cached(tmp_path)
    _only_file(tmp_path).write_bytes(b"not a cache file")
    with pytest.warns(UserWarning, match="rebuilt the cache file .* not an"):
        again, _ = _cached(tmp_path)
    _same_run(trained, again)
    read, _ = _cached(tmp_path)  # rewritten: valid again, no warning
    _same_run(trained, read)


def test_changed_contents_fail_the_checksum_and_are_rebuilt(tmp_path):
    trained, _ = _cached(tmp_path)
    path = _only_file(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["val_acc"] = arrays["val_acc"] * 0 + 1.0  # a perfect score
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.warns(UserWarning, match="SHA-256 checksum does not match"):
        again, _ = _cached(tmp_path)
    _same_run(trained, again)


def test_an_unwritable_cache_warns_and_returns_the_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not write the cache file"):
        run, _ = _cached(blocker / "cache")
    _same_run(run, _cached(False)[0])


def test_the_cache_argument_is_checked():
    with pytest.raises(TypeError, match="train_rows: 'cache' must be"):
        _cached(3)


def test_run_ablation_with_a_cache_gives_the_same_rows(tmp_path):
    stages = [("baseline", {}), ("+ wd", {"weight_decay": [0.0, 1.0]})]

    def rows_of(cache):
        train = {**TRAIN, "generator": _gen(2)}
        return run_ablation(
            stages, [0, 1], _data(80), members=[1, 2], train=train, cache=cache
        )

    plain, written, read = rows_of(False), rows_of(tmp_path), rows_of(tmp_path)
    assert len(list(tmp_path.glob("ablation-*.npz"))) == 3  # 2 stages + members
    for rows in (written, read):
        assert [r["config"] for r in rows] == [r["config"] for r in plain]
        for r, p in zip(rows, plain):
            assert torch.equal(r["val"], p["val"])
