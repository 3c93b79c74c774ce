"""dlcourse.regularization.ensembles against exact math and PyTorch."""

import itertools
import math
from collections import Counter
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn import make_mlp
from dlcourse.regularization.ensembles import (
    StackedMLP,
    bootstrap_indices,
    correlated_errors,
    ensemble_error_variance,
    ensemble_log_probs,
    expected_distinct_fraction,
    fit_members,
    majority_vote,
)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_is_n_uniform_draws_with_replacement():
    idx = bootstrap_indices(50, generator=_gen(0))
    assert idx.shape == (50,) and idx.dtype == torch.int64
    assert 0 <= idx.min() and idx.max() < 50
    # the same draws as torch.randint from the same generator state
    assert torch.equal(idx, torch.randint(0, 50, (50,), generator=_gen(0)))
    # seeded: the same seed gives the same resample, another seed another
    assert torch.equal(idx, bootstrap_indices(50, generator=_gen(0)))
    assert not torch.equal(idx, bootstrap_indices(50, generator=_gen(1)))
    # with replacement: some example repeats (a permutation would not)
    assert len(torch.unique(idx)) < 50
    assert bootstrap_indices(1).tolist() == [0]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_distinct_fraction_by_enumeration_of_all_resamples(n):
    # every one of the n^n equally likely index sequences
    total = sum(
        Fraction(len(set(seq)), n)
        for seq in itertools.product(range(n), repeat=n)
    )
    exact = total / n**n
    assert exact == 1 - Fraction(n - 1, n) ** n  # the closed form, exactly
    assert expected_distinct_fraction(n) == pytest.approx(
        float(exact), rel=1e-14
    )


def test_distinct_fraction_closed_form_and_limit():
    values = [expected_distinct_fraction(n) for n in (1, 2, 10, 100, 10**6)]
    assert values[:2] == [1.0, 0.75]
    assert all(a > b for a, b in zip(values, values[1:]))  # decreasing in n
    # 1 - (1 - 1/n)^n -> 1 - 1/e, from above, the gap about 1/(2en)
    gap = values[-1] - (1 - math.exp(-1))
    assert gap == pytest.approx(1 / (2 * math.e * 10**6), rel=1e-3)


def test_distinct_fraction_of_sampled_resamples_matches_the_closed_form():
    n, draws, g = 40, 4000, _gen(2)
    frac = torch.tensor(
        [
            len(torch.unique(bootstrap_indices(n, generator=g))) / n
            for _ in range(draws)
        ],
        dtype=torch.float64,
    )
    se = frac.std() / math.sqrt(draws)
    assert abs(frac.mean() - expected_distinct_fraction(n)) < 4 * se


# ------------------------------------------------------- combining outputs


def _logits(k=3, n=5, c=4, seed=0, scale=3.0):
    return scale * torch.randn(k, n, c, generator=_gen(seed))


def test_probability_average_is_the_mean_of_the_softmaxes():
    z = _logits()
    out = ensemble_log_probs(z)
    torch.testing.assert_close(out.exp(), z.softmax(-1).mean(0))
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(5))
    # a list of (N, C) tensors is the same ensemble
    torch.testing.assert_close(ensemble_log_probs(list(z)), out)


def test_logit_average_is_the_normalized_geometric_mean():
    z = _logits(seed=1)
    out = ensemble_log_probs(z, average="logits")
    torch.testing.assert_close(out, F.log_softmax(z.mean(0), -1))
    geo = z.softmax(-1).prod(0) ** (1 / 3)
    torch.testing.assert_close(out.exp(), geo / geo.sum(-1, keepdim=True))


def test_one_member_and_identical_members_are_the_member():
    z = _logits(k=1, seed=2)
    for average in ("probabilities", "logits"):
        torch.testing.assert_close(
            ensemble_log_probs(z, average=average), F.log_softmax(z[0], -1)
        )
        same = ensemble_log_probs(z.expand(4, -1, -1), average=average)
        torch.testing.assert_close(same, F.log_softmax(z[0], -1))


def test_the_two_averages_and_the_vote_can_disagree():
    # two members prefer class 0 (p = 0.95 each); one is sure of class 1
    z = torch.tensor([[[3.0, 0.0]], [[3.0, 0.0]], [[0.0, 20.0]]])
    p = ensemble_log_probs(z).exp()[0]
    # probabilities: (0.953 + 0.953 + 0.000) / 3 = 0.635 for class 0
    assert p[0].item() == pytest.approx(
        2 / 3 * torch.sigmoid(torch.tensor(3.0))
    )
    assert p.argmax() == 0 and majority_vote(z).item() == 0
    # logits: the mean (2, 6.67) favours class 1, a near-zero probability vetoes
    assert ensemble_log_probs(z, average="logits").argmax() == 1


def test_log_space_survives_extreme_logits():
    z = torch.tensor([[[1000.0, -1000.0]], [[-1000.0, 1000.0]]])
    out = ensemble_log_probs(z)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp(), torch.tensor([[0.5, 0.5]]))


def test_majority_vote_by_enumeration_of_small_ensembles():
    # every assignment of 3 classes to 4 members: the most common, ties low
    for preds in itertools.product(range(3), repeat=4):
        z = F.one_hot(torch.tensor(preds), 3).float()[:, None, :]
        counts = Counter(preds)
        top = max(counts.values())
        expected = min(c for c, n in counts.items() if n == top)
        assert majority_vote(z).item() == expected


@pytest.mark.parametrize("fn", [ensemble_log_probs, majority_vote])
def test_an_empty_ensemble_is_rejected(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: .*empty ensemble"):
        fn([])
    with pytest.raises(ValueError, match=rf"{name}: .*empty ensemble"):
        fn(torch.zeros(0, 5, 3))


# -------------------------------------------- error of an average of K models


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_error_variance_exactly_for_sign_errors(k):
    # eps_k = a s + b e_k with independent fair signs s, e_1..e_K:
    # v = a^2 + b^2, c = a^2; no normality, an exact average over 2^(K+1)
    a, b = Fraction(1, 2), Fraction(3, 2)
    total = Fraction(0)
    for s, *e in itertools.product((-1, 1), repeat=k + 1):
        total += (sum(a * s + b * ek for ek in e) / k) ** 2
    exact = total / 2 ** (k + 1)
    v, c = a * a + b * b, a * a
    assert exact == v / k + (k - 1) * c / k
    assert ensemble_error_variance(float(v), float(c), k) == pytest.approx(
        float(exact), rel=1e-15
    )


def test_error_variance_special_cases():
    assert ensemble_error_variance(2.0, 2.0, 7) == 2.0  # c = v: no gain
    assert ensemble_error_variance(2.0, 0.0, 8) == 0.25  # c = 0: v / K
    assert ensemble_error_variance(2.0, 0.5, 1) == 2.0  # one model: v
    # the lowest covariance, c = -v/(K-1): the errors cancel exactly
    assert ensemble_error_variance(3.0, -1.0, 4) == pytest.approx(0.0)


@pytest.mark.parametrize("k, ratio", [(1, 0.0), (4, 0.0), (4, 0.5), (10, 0.9)])
def test_correlated_errors_have_the_asked_moments(k, ratio):
    n, v = 200_000, 2.0
    c = ratio * v
    eps = correlated_errors(n, k, v=v, c=c, generator=_gen(3))
    assert eps.shape == (n, k) and eps.dtype == torch.float64
    sigma = (v - c) * torch.eye(k, dtype=torch.float64) + c
    # the sample covariance: each entry's SE is at most sqrt(2) v / sqrt(n)
    torch.testing.assert_close(
        eps.T @ eps / n, sigma, atol=5 * 2 * v / math.sqrt(n), rtol=0
    )
    # Monte Carlo of the averaged error against the formula, 4 standard errors
    mean_sq = eps.mean(1) ** 2  # normal: SE of its mean is sqrt(2/n) * var
    target = ensemble_error_variance(v, c, k)
    assert abs(mean_sq.mean().item() - target) < 4 * target * math.sqrt(2 / n)


def test_correlated_errors_at_the_lowest_covariance_sum_to_zero():
    eps = correlated_errors(1000, 4, v=3.0, c=-1.0, generator=_gen(4))
    torch.testing.assert_close(
        eps.sum(1), torch.zeros(1000, dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert torch.equal(
        correlated_errors(5, 3, v=1.0, c=0.2, generator=_gen(5)),
        correlated_errors(5, 3, v=1.0, c=0.2, generator=_gen(5)),
    )


# ------------------------------------------------------ members side by side


def _mlps(k, sizes=(6, 8, 3), activation="relu", seed=0):
    return [
        make_mlp(list(sizes), activation=activation, generator=_gen(seed + i))
        for i in range(k)
    ]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_stacked_outputs_are_the_members_outputs(activation):
    mlps = _mlps(3, (6, 8, 5, 3), activation)
    stacked = StackedMLP(mlps)
    x = torch.randn(7, 6, generator=_gen(9))
    out = stacked(x)
    assert out.shape == (3, 7, 3) and len(stacked) == 3
    for k, m in enumerate(mlps):
        torch.testing.assert_close(out[k], m(x))
    # rows per member: (K, N, n_in)
    per_member = torch.randn(3, 4, 6, generator=_gen(10))
    for k, m in enumerate(mlps):
        torch.testing.assert_close(stacked(per_member)[k], m(per_member[k]))
    for m, back in zip(mlps, stacked.members()):
        for p, q in zip(m.parameters(), back.parameters()):
            assert torch.equal(p, q)
        assert type(back[1]) is type(m[1])


def test_fit_members_is_k_separate_adam_trainings():
    # float64, so that rounding cannot be amplified by Adam's normalization
    g = _gen(11)
    x = torch.randn(30, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=g)
    rows = torch.stack([torch.arange(30), bootstrap_indices(30, generator=g)])
    mlps = [m.double() for m in _mlps(2, seed=20)]
    stacked = StackedMLP(mlps)
    hist = fit_members(
        stacked,
        x,
        y,
        rows,
        optimizer=torch.optim.Adam(stacked.parameters(), lr=1e-2),
        epochs=3,
        batch_size=8,
        generator=_gen(12),
    )
    assert len(hist["loss"]) == 3
    # the twin: each member alone, torch.optim.Adam, the same permutations
    perm_gen, perms = _gen(12), []
    for _ in range(3):
        perms.append([torch.randperm(30, generator=perm_gen) for _ in mlps])
    for k, m in enumerate(mlps):
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for epoch in range(3):
            order = rows[k][perms[epoch][k]]
            for start in range(0, 30, 8):
                idx = order[start : start + 8]
                opt.zero_grad()
                F.cross_entropy(m(x[idx]), y[idx]).backward()
                opt.step()
    for m, trained in zip(mlps, stacked.members()):
        for p, q in zip(m.parameters(), trained.parameters()):
            torch.testing.assert_close(q, p)


# ---------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: bootstrap_indices(0),
            r"bootstrap_indices: 'n' must be >= 1; got 0",
        ),
        (
            lambda: expected_distinct_fraction(-3),
            r"expected_distinct_fraction: 'n' must be >= 1; got -3",
        ),
        (
            lambda: ensemble_log_probs(_logits(), average="median"),
            r"ensemble_log_probs: 'average' must be one of 'probabilities', "
            r"'logits'; got 'median'",
        ),
        (
            lambda: ensemble_log_probs(torch.zeros(5, 3)),
            r"ensemble_log_probs: 'logits' must be a \(K, N, C\) tensor; "
            r"got \(5, 3\)",
        ),
        (
            lambda: majority_vote([torch.zeros(5, 3), torch.zeros(5, 4)]),
            r"majority_vote: 'logits\[1\]' must be of the shape of "
            r"logits\[0\], \(5, 3\); got \(5, 4\)",
        ),
        (
            lambda: ensemble_log_probs([torch.zeros(5)]),
            r"ensemble_log_probs: 'logits\[0\]' must be an \(N, C\) tensor; "
            r"got \(5,\)",
        ),
        (
            lambda: correlated_errors(10, 0, v=1.0, c=0.0),
            r"correlated_errors: 'k' must be >= 1; got 0",
        ),
        (
            lambda: correlated_errors(10, 2, v=-2.0, c=0.0),
            r"correlated_errors: 'v' must be >= 0; got -2.0",
        ),
        (
            lambda: _fit(batch_size=0),
            r"fit_members: 'batch_size' must be >= 1; got 0",
        ),
        (
            lambda: _fit(rows=torch.zeros(2, 0, dtype=torch.long)),
            r"fit_members: 'rows' must be an int64 tensor of shape \(2, m\), "
            r"m >= 1; got 'torch.int64 of shape \(2, 0\)'",
        ),
        (
            lambda: _fit(rows=torch.full((2, 4), -1)),
            r"fit_members: 'rows' must be indices in \[0, 10\); "
            r"got 'indices from -1 to -1'",
        ),
        (
            lambda: ensemble_error_variance(-1.0, 0.0, 2),
            r"ensemble_error_variance: 'v' must be >= 0; got -1.0",
        ),
        (
            lambda: ensemble_error_variance(1.0, 1.5, 2),
            r"ensemble_error_variance: 'c' must be in \[-1, 1\]; got 1.5",
        ),
        (
            lambda: ensemble_error_variance(1.0, -0.5, 4),
            r"ensemble_error_variance: 'c' must be in \[-0.333333, 1\]",
        ),
        (
            lambda: ensemble_error_variance(1.0, 0.0, 0),
            r"ensemble_error_variance: 'k' must be >= 1; got 0",
        ),
        (
            lambda: correlated_errors(10, 3, v=1.0, c=-0.6),
            r"correlated_errors: 'c' must be in \[-0.5, 1\]; got -0.6",
        ),
        (
            lambda: correlated_errors(0, 3, v=1.0, c=0.0),
            r"correlated_errors: 'n' must be >= 1; got 0",
        ),
        (
            lambda: StackedMLP([]),
            r"StackedMLP: 'mlps' must hold at least one MLP; got 0",
        ),
        (
            lambda: StackedMLP(_mlps(1) + _mlps(1, (6, 9, 3))),
            r"StackedMLP: 'mlps\[1\]' must be an MLP with the widths and "
            r"activation of mlps\[0\]",
        ),
        (
            lambda: StackedMLP(
                [
                    torch.nn.Sequential(
                        torch.nn.Linear(2, 2),
                        torch.nn.Dropout(),
                        torch.nn.Linear(2, 2),
                    )
                ]
            ),
            r"StackedMLP: 'mlps\[0\]' must be a make_mlp model \(Linear, "
            r"activation, ..., Linear\); got 'Sequential\(Linear, Dropout, "
            r"Linear\)'",
        ),
        (
            lambda: _fit(rows=torch.zeros(3, 4, dtype=torch.long)),
            r"fit_members: 'rows' must be an int64 tensor of shape \(2, m\)",
        ),
        (
            lambda: _fit(rows=torch.zeros(2, 4)),
            r"fit_members: 'rows' must be an int64 tensor .*got 'torch.float32",
        ),
        (
            lambda: _fit(rows=torch.full((2, 4), 10)),
            r"fit_members: 'rows' must be indices in \[0, 10\); "
            r"got 'indices from 10 to 10'",
        ),
        (
            lambda: _fit(epochs=0),
            r"fit_members: 'epochs' must be >= 1; got 0",
        ),
        (
            lambda: _fit(y=torch.zeros(9, dtype=torch.long)),
            r"fit_members: 'y' must be 10 labels",
        ),
    ],
)
def test_bad_values_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _fit(
    rows=None,
    epochs=1,
    y=None,
    optimizer=None,
    generator=None,
    model=None,
    batch_size=2,
):
    stacked = StackedMLP(_mlps(2))
    return fit_members(
        stacked if model is None else model,
        torch.zeros(10, 6),
        torch.zeros(10, dtype=torch.long) if y is None else y,
        torch.zeros(2, 4, dtype=torch.long) if rows is None else rows,
        optimizer=optimizer or torch.optim.SGD(stacked.parameters(), lr=0.1),
        epochs=epochs,
        batch_size=batch_size,
        generator=generator or _gen(0),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: bootstrap_indices(5.0),
            r"bootstrap_indices: 'n' must be an int; got float",
        ),
        (
            lambda: bootstrap_indices(5, generator=0),
            r"bootstrap_indices: 'generator' must be a torch.Generator or "
            r"None; got int",
        ),
        (
            lambda: ensemble_log_probs("logits"),
            r"ensemble_log_probs: 'logits' must be a list of tensors; got str",
        ),
        (
            lambda: majority_vote([torch.zeros(2, 2), [[0.0, 1.0]]]),
            r"majority_vote: 'logits\[1\]' must be a torch.Tensor; got list",
        ),
        (
            lambda: expected_distinct_fraction(10.0),
            r"expected_distinct_fraction: 'n' must be an int; got float",
        ),
        (
            lambda: ensemble_error_variance(1.0, "0", 2),
            r"ensemble_error_variance: 'c' must be a real number; got str",
        ),
        (
            lambda: _fit(batch_size=2.0),
            r"fit_members: 'batch_size' must be an int; got float",
        ),
        (
            lambda: ensemble_error_variance(1.0, 0.0, 2.0),
            r"ensemble_error_variance: 'k' must be an int; got float",
        ),
        (
            lambda: ensemble_error_variance("1", 0.0, 2),
            r"ensemble_error_variance: 'v' must be a real number; got str",
        ),
        (
            lambda: correlated_errors(3, 2, v=1.0, c=0.0, generator="seed"),
            r"correlated_errors: 'generator' must be a torch.Generator",
        ),
        (
            lambda: StackedMLP(_mlps(1)[0]),
            r"StackedMLP: 'mlps' must be a list of MLPs; got Sequential",
        ),
        (
            lambda: StackedMLP([torch.nn.Linear(2, 2)]),
            r"StackedMLP: 'mlps\[0\]' must be a make_mlp model; got Linear",
        ),
        (
            lambda: _fit(model=make_mlp([6, 3])),
            r"fit_members: 'model' must be a StackedMLP; got Sequential",
        ),
        (
            lambda: _fit(optimizer="adam"),
            r"fit_members: 'optimizer' must be a torch.optim.Optimizer; "
            r"got str",
        ),
        (
            lambda: _fit(generator=3),
            r"fit_members: 'generator' must be a torch.Generator; got int",
        ),
        (
            lambda: _fit(rows=[[0, 1], [1, 2]]),
            r"fit_members: 'rows' must be a \(K, m\) index tensor; got list",
        ),
    ],
)
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
