"""dlcourse.regularization.semi_supervised against enumeration and by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn.mlp import make_mlp
from dlcourse.regularization.semi_supervised import (
    ReconstructionClassifier,
    fit_semi_supervised,
    pseudo_label,
    select_confident,
)
from dlcourse.regularization.semi_supervised import (
    semi_supervised_loss as ss_loss,
)
from dlcourse.training import fit

PROBS = torch.tensor(
    [
        [0.70, 0.20, 0.10],
        [0.10, 0.50, 0.40],
        [0.30, 0.30, 0.40],
        [0.05, 0.05, 0.90],
        [1.00, 0.00, 0.00],
    ],
    dtype=torch.float64,
)


@pytest.mark.parametrize(
    "threshold", [0.0, 0.4, 0.5, 0.55, 0.7, 0.9, 0.95, 1.0]
)
def test_select_confident_matches_enumeration(threshold):
    mask, labels = select_confident(PROBS, threshold=threshold)
    for i, row in enumerate(PROBS.tolist()):
        best = max(range(3), key=lambda k: row[k])
        assert labels[i].item() == best
        assert mask[i].item() == (
            row[best] >= threshold
        )  # ">=": a tie with tau is kept
    assert mask.dtype == torch.bool and labels.dtype == torch.int64


def test_select_confident_counts_fall_with_threshold():
    counts = [
        int(select_confident(PROBS, threshold=t)[0].sum())
        for t in (0.0, 0.45, 0.6, 0.8, 1.0)
    ]
    assert counts == [5, 4, 3, 2, 1]


def _data(seed=0, n_l=30, n_u=60):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 4, generator=g) * 3
    y = torch.randint(0, 3, (n_l + n_u,), generator=g)
    x = centres[y] + torch.randn(n_l + n_u, 4, generator=g)
    return x[:n_l], y[:n_l], x[n_l:], y[n_l:]


def _train(x, y, g):
    model = make_mlp([4, 16, 3], generator=g)
    fit(
        model,
        x,
        y,
        optimizer=torch.optim.Adam(model.parameters(), lr=5e-2),
        epochs=8,
        batch_size=32,
        generator=g,
    )
    return model


def test_pseudo_label_is_deterministic_and_records_every_round():
    xl, yl, xu, yu = _data()
    runs = [
        pseudo_label(
            _train,
            xl,
            yl,
            xu,
            threshold=0.8,
            rounds=2,
            generator=torch.Generator().manual_seed(5),
            y_unlabelled=yu,
            evaluate=lambda m: 0.5,
        )
        for _ in range(2)
    ]
    (m1, h1), (m2, h2) = runs
    assert h1 == h2 or all(  # NaN != NaN: compare entries
        (a == b) or (math.isnan(a) and math.isnan(b))
        for k in h1
        for a, b in zip(h1[k], h2[k])
    )
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert len(h1["n_pseudo"]) == 3 and h1["n_pseudo"][0] == 0
    assert math.isnan(h1["pseudo_accuracy"][0]) and h1["score"] == [
        0.5,
        0.5,
        0.5,
    ]
    assert 0 < h1["n_pseudo"][1] <= len(xu)


def test_pseudo_label_trains_on_exactly_the_selected_rows():
    xl, yl, xu, yu = _data(1)
    seen = []

    def train(x, y, g):
        seen.append((x.clone(), y.clone()))
        return _train(x, y, g)

    model, history = pseudo_label(
        train,
        xl,
        yl,
        xu,
        threshold=0.9,
        rounds=1,
        generator=torch.Generator().manual_seed(0),
        y_unlabelled=yu,
    )
    (x0, y0), (x1, y1) = seen
    assert torch.equal(x0, xl) and torch.equal(y0, yl)
    # recompute the selection of round 0's model by hand
    g = torch.Generator().manual_seed(0)
    first = _train(xl, yl, g)
    with torch.no_grad():
        probs = F.softmax(first(xu), dim=1)
    keep = probs.max(dim=1).values >= 0.9
    assert torch.equal(x1, torch.cat([xl, xu[keep]]))
    assert torch.equal(y1, torch.cat([yl, probs.argmax(dim=1)[keep]]))
    assert history["n_pseudo"] == [0, int(keep.sum())]
    right = (probs.argmax(dim=1)[keep] == yu[keep]).float().mean().item()
    assert history["pseudo_accuracy"][1] == pytest.approx(right)
    assert all(math.isnan(s) for s in history["score"])


def test_initial_model_replaces_round_zero_exactly():
    xl, yl, xu, yu = _data(5)
    kwargs = dict(threshold=0.8, rounds=2, y_unlabelled=yu)
    full_model, full = pseudo_label(
        _train, xl, yl, xu, generator=torch.Generator().manual_seed(3), **kwargs
    )
    # round 0 trained outside, the generator left where that training left it
    g = torch.Generator().manual_seed(3)
    first = _train(xl, yl, g)
    calls = []

    def train(x, y, gen):
        calls.append(len(x))
        return _train(x, y, gen)

    model, history = pseudo_label(
        train, xl, yl, xu, generator=g, initial_model=first, **kwargs
    )
    assert len(calls) == 2  # rounds 1 and 2 only
    assert history["n_pseudo"] == full["n_pseudo"]
    assert history["pseudo_accuracy"][1:] == full["pseudo_accuracy"][1:]
    for p, q in zip(model.parameters(), full_model.parameters()):
        assert torch.equal(p, q)
    # rounds=0 with an initial model trains nothing and returns it
    same, h0 = pseudo_label(
        train,
        xl,
        yl,
        xu,
        threshold=0.5,
        rounds=0,
        generator=g,
        initial_model=first,
        evaluate=lambda m: 1.0,
    )
    assert same is first and h0["score"] == [1.0] and len(calls) == 2


def test_threshold_zero_uses_the_whole_pool_and_one_almost_nothing():
    xl, yl, xu, _ = _data(2)
    _, h0 = pseudo_label(
        _train,
        xl,
        yl,
        xu,
        threshold=0.0,
        rounds=1,
        generator=torch.Generator().manual_seed(0),
    )
    assert h0["n_pseudo"] == [0, len(xu)] and math.isnan(
        h0["pseudo_accuracy"][1]
    )


def test_model_shapes_and_shared_encoder():
    model = ReconstructionClassifier(
        6, [8, 5], 3, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(7, 6)
    assert model(x).shape == (7, 3) and model.reconstruct(x).shape == (7, 6)
    # both losses reach the encoder's first weight matrix
    w = model.encoder[0][0].weight
    (g_cls,) = torch.autograd.grad(model(x).sum(), w)
    (g_rec,) = torch.autograd.grad(model.reconstruct(x).sum(), w)
    assert g_cls.abs().sum() > 0 and g_rec.abs().sum() > 0


def test_combined_loss_equals_hand_computation():
    model = ReconstructionClassifier(
        4, [6], 3, generator=torch.Generator().manual_seed(0)
    )
    xl, yl, xu, _ = _data(3, n_l=5, n_u=7)
    parts = ss_loss(model, xl, yl, xu, lam=0.3)
    with torch.no_grad():
        h = torch.relu(
            xl @ model.encoder[0][0].weight.T + model.encoder[0][0].bias
        )
        logits = h @ model.classifier[0].weight.T + model.classifier[0].bias
        ce = -(logits.log_softmax(1)[torch.arange(5), yl]).mean()
        x_all = torch.cat([xl, xu])
        h_all = torch.relu(
            x_all @ model.encoder[0][0].weight.T + model.encoder[0][0].bias
        )
        x_hat = h_all @ model.decoder[0].weight.T + model.decoder[0].bias
        rec = ((x_hat - x_all) ** 2).sum() / (12 * 4)
    torch.testing.assert_close(parts["classification"], ce)
    torch.testing.assert_close(parts["reconstruction"], rec)
    torch.testing.assert_close(parts["loss"], ce + 0.3 * rec)


def test_lam_zero_leaves_the_decoder_untouched_and_fit_is_deterministic():
    xl, yl, xu, _ = _data(4)
    models, hists = [], []
    for lam in (0.0, 0.0, 1.0):
        m = ReconstructionClassifier(
            4, [8], 3, generator=torch.Generator().manual_seed(0)
        )
        h = fit_semi_supervised(
            m,
            xl,
            yl,
            xu,
            lam=lam,
            optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
            steps=15,
            batch_size=8,
            generator=torch.Generator().manual_seed(1),
        )
        models.append(m), hists.append(h)
    fresh = ReconstructionClassifier(
        4, [8], 3, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(models[0].decoder[0].weight, fresh.decoder[0].weight)
    assert not torch.equal(models[2].decoder[0].weight, fresh.decoder[0].weight)
    assert hists[0] == hists[1] and len(hists[0]["loss"]) == 15
    torch.testing.assert_close(
        torch.tensor(hists[2]["loss"]),
        torch.tensor(hists[2]["classification"])
        + torch.tensor(hists[2]["reconstruction"]),
    )


_M = ReconstructionClassifier(2, [3], 2)
_X, _Y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)
_G = torch.Generator()


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: select_confident(PROBS, threshold=1.5),
            r"select_confident: 'threshold' must be in \[0, 1\]; got 1.5",
        ),
        (
            lambda: select_confident(PROBS, threshold=-0.1),
            r"'threshold' must be in \[0, 1\]; got -0.1",
        ),
        (
            lambda: select_confident(torch.ones(3), threshold=0.5),
            r"'probs' must be a 2-D \(n, k\) tensor; got \(3,\)",
        ),
        (
            lambda: select_confident(torch.ones(2, 2), threshold=0.5),
            r"'probs' must be non-negative with rows summing to 1; "
            r"got 'a row sum of 2'",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y, _X, threshold=2.0, rounds=1, generator=_G
            ),
            r"pseudo_label: 'threshold' must be in \[0, 1\]; got 2.0",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y, _X, threshold=0.5, rounds=-1, generator=_G
            ),
            r"pseudo_label: 'rounds' must be >= 0; got -1",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y[:3], _X, threshold=0.5, rounds=1, generator=_G
            ),
            r"pseudo_label: 'x_labelled' and 'y_labelled' must have the same "
            r"number of rows; got x_labelled: 4, y_labelled: 3",
        ),
        (
            lambda: pseudo_label(
                _train,
                _X,
                _Y,
                _X,
                threshold=0.5,
                rounds=1,
                generator=_G,
                y_unlabelled=_Y[:2],
            ),
            r"'x_unlabelled' and 'y_unlabelled' must have the same number "
            r"of rows",
        ),
        (
            lambda: ss_loss(_M, _X, _Y, _X, lam=-1.0),
            r"semi_supervised_loss: 'lam' must be >= 0; got -1.0",
        ),
        (
            lambda: ss_loss(_M, _X, _Y[:1], _X, lam=1.0),
            r"semi_supervised_loss: 'x_labelled' and 'y_labelled'",
        ),
        (
            lambda: fit_semi_supervised(
                _M,
                _X,
                _Y,
                _X,
                lam=-0.5,
                optimizer=torch.optim.SGD(_M.parameters(), lr=0.1),
                steps=1,
                batch_size=2,
                generator=_G,
            ),
            r"fit_semi_supervised: 'lam' must be >= 0; got -0.5",
        ),
        (
            lambda: fit_semi_supervised(
                _M,
                _X,
                _Y,
                _X,
                lam=1.0,
                optimizer=torch.optim.SGD(_M.parameters(), lr=0.1),
                steps=0,
                batch_size=2,
                generator=_G,
            ),
            r"fit_semi_supervised: 'steps' must be >= 1; got 0",
        ),
        (
            lambda: fit_semi_supervised(
                _M,
                _X,
                _Y,
                _X,
                lam=1.0,
                optimizer=torch.optim.SGD(_M.parameters(), lr=0.1),
                steps=1,
                batch_size=0,
                generator=_G,
            ),
            r"'batch_size' must be >= 1; got 0",
        ),
        (
            lambda: ReconstructionClassifier(0, [3], 2),
            r"ReconstructionClassifier: 'n_in' must be >= 1; got 0",
        ),
        (
            lambda: ReconstructionClassifier(2, [], 2),
            r"ReconstructionClassifier: 'hidden' must be a non-empty list "
            r"or tuple of ints; got \[\]",
        ),
        (
            lambda: ReconstructionClassifier(2, [3], 1),
            r"ReconstructionClassifier: 'n_classes' must be >= 2; got 1",
        ),
    ],
)
def test_bad_values_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: select_confident([[1.0]], threshold=0.5),
            r"select_confident: 'probs' must be a torch.Tensor; got list",
        ),
        (
            lambda: select_confident(PROBS, threshold="0.5"),
            r"'threshold' must be a real number; got str",
        ),
        (
            lambda: pseudo_label(
                "train", _X, _Y, _X, threshold=0.5, rounds=1, generator=_G
            ),
            r"pseudo_label: 'train' must be a callable; got str",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y, _X, threshold=0.5, rounds=1, generator=0
            ),
            r"pseudo_label: 'generator' must be a torch.Generator; got int",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y, _X, threshold=0.5, rounds=1.0, generator=_G
            ),
            r"pseudo_label: 'rounds' must be an int; got float",
        ),
        (
            lambda: pseudo_label(
                _train,
                _X,
                _Y,
                _X,
                threshold=0.5,
                rounds=1,
                generator=_G,
                evaluate=3,
            ),
            r"pseudo_label: 'evaluate' must be a callable or None; "
            r"got int",
        ),
        (
            lambda: pseudo_label(
                _train, _X, _Y, [1.0], threshold=0.5, rounds=1, generator=_G
            ),
            r"'x_unlabelled' must be a torch.Tensor; got list",
        ),
        (
            lambda: ss_loss(make_mlp([2, 2]), _X, _Y, _X, lam=1.0),
            r"semi_supervised_loss: 'model' must be a "
            r"ReconstructionClassifier; got Sequential",
        ),
        (
            lambda: fit_semi_supervised(
                _M,
                _X,
                _Y,
                _X,
                lam=1.0,
                optimizer="sgd",
                steps=1,
                batch_size=2,
                generator=_G,
            ),
            r"fit_semi_supervised: 'optimizer' must be a "
            r"torch.optim.Optimizer; got str",
        ),
        (
            lambda: fit_semi_supervised(
                _M,
                _X,
                _Y,
                _X,
                lam=1.0,
                optimizer=torch.optim.SGD(_M.parameters(), lr=0.1),
                steps=1,
                batch_size=2,
                generator=None,
            ),
            r"fit_semi_supervised: 'generator' must be a torch.Generator; "
            r"got NoneType",
        ),
        (
            lambda: pseudo_label(
                _train,
                _X,
                _Y,
                _X,
                threshold=0.5,
                rounds=1,
                generator=_G,
                initial_model="model",
            ),
            r"pseudo_label: 'initial_model' must be a torch.nn.Module or "
            r"None; got str",
        ),
        (
            lambda: ReconstructionClassifier(2, 3, 2),
            r"ReconstructionClassifier: 'hidden' must be a non-empty list "
            r"or tuple of ints; got int",
        ),
    ],
)
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
