"""dlcourse.regularization.sparse against scikit-learn, exhaustive search,
chapter 1's proximal step and exact math."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.linear_model import orthogonal_mp
from torch import nn

from dlcourse.nn import make_mlp
from dlcourse.regularization.ensembles import StackedMLP
from dlcourse.regularization.norm_penalties import (
    l1_penalty,
    l1_proximal_step_,
)
from dlcourse.regularization.sparse import (
    ActivationL1,
    activation_l1_penalty,
    best_subset,
    member_l1_penalty,
    member_l1_proximal_step_,
    omp,
    zero_fraction,
)


def _dictionary(m, n, seed=0, unit=True):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(m, n, generator=g, dtype=torch.float64)
    return D / D.norm(dim=0) if unit else D


def _sparse(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.zeros(n, dtype=torch.float64)
    h[torch.randperm(n, generator=g)[:k]] = 1 + torch.rand(
        k, generator=g, dtype=torch.float64
    )
    return h


# --- the activation penalty -------------------------------------------------


def test_activation_penalty_is_lambda_times_mean_l1_norm():
    h = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 3.0]])
    assert activation_l1_penalty(h, 0.1).item() == pytest.approx(
        0.1 * (3.0 + 3.5) / 2
    )
    hr = h.clone().requires_grad_()
    (g,) = torch.autograd.grad(activation_l1_penalty(hr, 0.1), hr)
    torch.testing.assert_close(g, 0.1 * torch.sign(h) / 2)


def test_stacked_activation_penalty_is_the_sum_of_member_penalties():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 5, 4, generator=g)
    lam = torch.tensor([0.0, 0.1, 0.3])
    expected = sum(activation_l1_penalty(h[k], lam[k].item()) for k in range(3))
    torch.testing.assert_close(activation_l1_penalty(h, lam), expected)


def test_activation_l1_records_relu_outputs_of_the_latest_forward():
    model = make_mlp([4, 6, 5, 3], generator=torch.Generator().manual_seed(0))
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    pen = ActivationL1(model, relus, 0.2)
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(1))
    model(x[:2])
    model(x)  # the hooks keep only this pass
    h1 = torch.relu(model[0](x))
    h2 = torch.relu(model[2](h1))
    assert len(pen.outputs) == 2
    torch.testing.assert_close(pen.outputs[0], h1)
    torch.testing.assert_close(pen.outputs[1], h2)
    expected = activation_l1_penalty(h1, 0.2) + activation_l1_penalty(h2, 0.2)
    torch.testing.assert_close(pen(model), expected)
    pen.remove()
    model(x[:1])
    assert pen.outputs[0].shape[0] == 7, "no more recording after remove()"


def test_activation_l1_on_a_stacked_model_matches_its_members():
    mlps = [
        make_mlp([4, 6, 3], generator=torch.Generator().manual_seed(s))
        for s in range(3)
    ]
    stacked = StackedMLP(mlps)
    lam = torch.tensor([0.0, 0.5, 1.0])
    pen = ActivationL1(stacked, stacked.act, lam)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    stacked(x)
    expected = sum(
        activation_l1_penalty(torch.relu(m[0](x)), lam[k].item())
        for k, m in enumerate(mlps)
    )
    torch.testing.assert_close(pen(), expected)


def test_activation_l1_drives_relu_units_to_exact_zero():
    # gradient steps on the penalty alone: pre-activations go below zero
    model = make_mlp([3, 8, 2], generator=torch.Generator().manual_seed(0))
    pen = ActivationL1(model, model[1], 1.0)
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(200):
        model(x)
        opt.zero_grad()
        pen().backward()
        opt.step()
    model(x)
    assert zero_fraction(pen.outputs) == 1.0


def test_zero_fraction_counts_exact_zeros_only():
    assert zero_fraction(torch.tensor([0.0, 1e-30, -0.0, 2.0])) == 0.5
    assert zero_fraction([torch.zeros(3), torch.ones(1)]) == 0.75


# --- stacked weight penalties against chapter 1 -----------------------------


def test_member_l1_penalty_and_proximal_step_match_chapter_1_per_member():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    b = torch.randn(3, 2, generator=g, dtype=torch.float64)
    lam = torch.tensor([0.0, 0.2, 0.7], dtype=torch.float64)
    expected = sum(l1_penalty([w[k], b[k]], lam[k].item()) for k in range(3))
    torch.testing.assert_close(member_l1_penalty([w, b], lam), expected)
    stepped = [w.clone(), b.clone()]
    member_l1_proximal_step_(stepped, lr=0.5, lam=lam)
    for k in range(3):
        ref = [w[k].clone(), b[k].clone()]
        l1_proximal_step_(ref, lr=0.5, lam=lam[k].item())
        torch.testing.assert_close(stepped[0][k], ref[0])
        torch.testing.assert_close(stepped[1][k], ref[1])


# --- OMP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "m, n, k", [(10, 20, 1), (10, 20, 4), (30, 60, 10), (20, 40, 20)]
)
def test_omp_matches_scikit_learn(m, n, k):
    D = _dictionary(m, n, seed=m + k)
    X = torch.randn(m, 50, generator=torch.Generator().manual_seed(k))
    X = X.to(torch.float64)
    ours = omp(D, X, k)
    theirs = orthogonal_mp(D.numpy(), X.numpy(), n_nonzero_coefs=k)
    np.testing.assert_array_equal(ours.numpy() != 0, theirs != 0)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-10)
    # one signal at a time gives the same codes as the batch
    torch.testing.assert_close(omp(D, X[:, 3], k), ours[:, 3])


def test_omp_does_not_need_unit_norm_atoms():
    D = _dictionary(12, 30, seed=1)
    scale = torch.linspace(0.5, 3.0, 30, dtype=torch.float64)
    x = torch.randn(12, generator=torch.Generator().manual_seed(2))
    x = x.to(torch.float64)
    # scaling atom j by s_j scales its coefficient by 1 / s_j
    torch.testing.assert_close(omp(D * scale, x, 5), omp(D, x, 5) / scale)


def test_omp_recovers_a_sparse_code_of_an_incoherent_dictionary():
    # a random 40 x 80 dictionary: a 3-sparse code is found exactly
    D = _dictionary(40, 80, seed=3)
    h = _sparse(80, 3, seed=4)
    torch.testing.assert_close(omp(D, D @ h, 3), h)


def test_omp_residual_is_orthogonal_to_the_chosen_atoms():
    D = _dictionary(15, 40, seed=5)
    x = torch.randn(15, generator=torch.Generator().manual_seed(6))
    x = x.to(torch.float64)
    h = omp(D, x, 6)
    support = h != 0
    assert int(support.sum()) == 6, "k distinct atoms"
    r = x - D @ h
    torch.testing.assert_close(
        D[:, support].T @ r,
        torch.zeros(6, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )


def _brute_force(D, x, k):
    best, arg = float("inf"), None
    for S in itertools.combinations(range(D.shape[1]), k):
        cols = list(S)
        z = torch.linalg.lstsq(D[:, cols], x[:, None]).solution[:, 0]
        err = (x - D[:, cols] @ z).pow(2).sum().item()
        if err < best:
            best, arg = err, (cols, z)
    return best, arg


@pytest.mark.parametrize("k", [1, 2, 3])
def test_best_subset_is_the_exhaustive_minimum(k):
    D = _dictionary(5, 9, seed=7, unit=False)
    x = torch.randn(5, generator=torch.Generator().manual_seed(k))
    x = x.to(torch.float64)
    h = best_subset(D, x, k)
    err = (x - D @ h).pow(2).sum().item()
    best, (cols, z) = _brute_force(D, x, k)
    assert err == pytest.approx(best, abs=1e-12)
    expected = torch.zeros(9, dtype=torch.float64)
    expected[cols] = z
    torch.testing.assert_close(h, expected)


def test_omp_equals_exhaustive_search_for_k_1_and_never_beats_it():
    for seed in range(20):
        D = _dictionary(5, 10, seed=seed)
        x = torch.randn(5, generator=torch.Generator().manual_seed(100 + seed))
        x = x.to(torch.float64)
        torch.testing.assert_close(omp(D, x, 1), best_subset(D, x, 1))
        for k in (2, 3):
            greedy = (x - D @ omp(D, x, k)).norm()
            exact = (x - D @ best_subset(D, x, k)).norm()
            assert exact <= greedy + 1e-12


def test_omp_and_exhaustive_search_agree_on_sparse_codes_they_both_find():
    # with near-orthogonal atoms OMP finds the true support, as does search
    D = torch.eye(6, dtype=torch.float64) + 0.05 * _dictionary(6, 6, seed=8)
    h = torch.tensor([0.0, 2.0, 0.0, -1.5, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(omp(D, D @ h, 2), h)
    torch.testing.assert_close(best_subset(D, D @ h, 2), h)


def test_orthonormal_dictionary_keeps_the_k_largest_coefficients():
    g = torch.Generator().manual_seed(9)
    Q, _ = torch.linalg.qr(torch.randn(7, 7, generator=g, dtype=torch.float64))
    x = torch.randn(7, generator=g, dtype=torch.float64)
    z = Q.T @ x
    for k in range(1, 8):
        expected = torch.zeros(7, dtype=torch.float64)
        keep = z.abs().argsort(descending=True)[:k]
        expected[keep] = z[keep]
        torch.testing.assert_close(omp(Q, x, k), expected, atol=1e-12, rtol=0)
        torch.testing.assert_close(
            best_subset(Q, x, k), expected, atol=1e-12, rtol=0
        )


# --- argument checks ----------------------------------------------------------


def test_omp_and_best_subset_reject_bad_k_and_shapes():
    D, x = _dictionary(6, 10), torch.zeros(6, dtype=torch.float64)
    for fn, name in ((omp, "omp"), (best_subset, "best_subset")):
        with pytest.raises(
            ValueError, match=rf"{name}: 'k' must be <= the number of atoms 10"
        ):
            fn(_dictionary(12, 10), torch.zeros(12, dtype=torch.float64), 11)
        with pytest.raises(ValueError, match=rf"{name}: 'k' must be >= 1"):
            fn(D, x, 0)
        with pytest.raises(
            ValueError, match=rf"{name}: 'k' must be <= the signal length 6"
        ):
            fn(D, x, 7)
        with pytest.raises(TypeError, match=rf"{name}: 'k' must be an int"):
            fn(D, x, 2.0)
        with pytest.raises(
            ValueError, match=rf"{name}: 'signals' must have shape \(6,\)"
        ):
            fn(D, torch.zeros(5, dtype=torch.float64), 2)
        with pytest.raises(
            ValueError, match=rf"{name}: 'dictionary' must be 2-D"
        ):
            fn(torch.zeros(6), x, 1)
        with pytest.raises(TypeError, match=rf"{name}: 'dictionary' must be"):
            fn(D.numpy(), x, 1)
        with pytest.raises(TypeError, match=rf"{name}: 'signals' must be"):
            fn(D, x.numpy(), 1)
        with pytest.raises(
            ValueError, match=rf"{name}: 'dictionary' must have no zero column"
        ):
            fn(torch.zeros(6, 10, dtype=torch.float64), x, 1)
        with pytest.raises(
            TypeError, match=rf"{name}: 'signals' must have the dictionary's"
        ):
            fn(D, x.float(), 1)
    with pytest.raises(ValueError, match=r"best_subset: 'signal' must be 1-D"):
        best_subset(D, torch.zeros(6, 2, dtype=torch.float64), 1)
    with pytest.raises(
        ValueError, match=r"best_subset: C\(n, k\) = C\(60, 30\)"
    ):
        best_subset(
            _dictionary(40, 60), torch.zeros(40, dtype=torch.float64), 30
        )


def test_penalties_reject_bad_strengths_and_shapes():
    h = torch.ones(2, 3)
    with pytest.raises(
        ValueError, match=r"activation_l1_penalty: 'lam' must be >= 0"
    ):
        activation_l1_penalty(h, -0.1)
    with pytest.raises(TypeError, match=r"activation_l1_penalty: 'h' must be"):
        activation_l1_penalty([1.0], 0.1)
    with pytest.raises(
        ValueError, match=r"activation_l1_penalty: 'h' must have a"
    ):
        activation_l1_penalty(torch.ones(0, 3), 0.1)
    with pytest.raises(
        ValueError, match=r"activation_l1_penalty: 'lam' must be a"
    ):
        activation_l1_penalty(torch.ones(3, 2, 2), torch.ones(2))
    with pytest.raises(ValueError, match=r"'lam' must hold finite values >= 0"):
        activation_l1_penalty(torch.ones(2, 2, 2), torch.tensor([0.1, -1.0]))
    model = make_mlp([2, 3, 1])
    with pytest.raises(ValueError, match=r"ActivationL1: 'modules' must hold"):
        ActivationL1(model, [], 0.1)
    with pytest.raises(
        TypeError, match=r"ActivationL1: 'modules\[0\]' must be"
    ):
        ActivationL1(model, ["relu"], 0.1)
    with pytest.raises(TypeError, match=r"ActivationL1: 'model' must be"):
        ActivationL1("mlp", model[1], 0.1)
    with pytest.raises(ValueError, match=r"ActivationL1: 'lam' must be >= 0"):
        ActivationL1(model, model[1], -1.0)
    with pytest.raises(RuntimeError, match=r"ActivationL1: no activations"):
        ActivationL1(model, model[1], 0.1)()
    w = torch.ones(3, 2)
    with pytest.raises(TypeError, match=r"member_l1_penalty: 'lam' must be"):
        member_l1_penalty([w], 0.1)
    with pytest.raises(
        ValueError, match=r"member_l1_penalty: 'params\[0\]' must"
    ):
        member_l1_penalty([w], torch.ones(2))
    with pytest.raises(
        ValueError, match=r"member_l1_proximal_step_: 'lr' must be >= 0"
    ):
        member_l1_proximal_step_([w], lr=-1.0, lam=torch.ones(3))
    with pytest.raises(
        ValueError, match=r"member_l1_proximal_step_: 'lam' must hold finite"
    ):
        member_l1_proximal_step_([w], lr=0.1, lam=torch.tensor([1.0, 0, -1]))
    with pytest.raises(
        TypeError, match=r"member_l1_proximal_step_: 'lam' must be"
    ):
        member_l1_proximal_step_([w], lr=0.1, lam=0.1)
    with pytest.raises(
        TypeError, match=r"member_l1_penalty: 'params\[0\]' must be"
    ):
        member_l1_penalty([[1.0, 2.0]], torch.ones(2))
    with pytest.raises(
        ValueError, match=r"ActivationL1: 'lam' must hold finite values"
    ):
        ActivationL1(model, model[1], torch.tensor([0.1, float("nan")]))
    with pytest.raises(TypeError, match=r"zero_fraction: 'tensors\[0\]' must"):
        zero_fraction([[0.0]])
    with pytest.raises(ValueError, match=r"zero_fraction: 'tensors' hold no"):
        zero_fraction(torch.zeros(0))
