r"""Sparse representations: an L1 penalty on activations, and OMP.

Book: Part I, chapter 10, "Sparse representations".

Two kinds of sparsity. A penalty on the *parameters* (chapter 1's
:func:`~dlcourse.regularization.norm_penalties.l1_proximal_step_`) makes
many weights zero; a penalty on the *representation* :math:`h` makes many
activations zero,

.. math::

    \tilde J(\theta) = J(\theta) + \lambda\,\Omega(h),
    \qquad \Omega(h) = \tfrac1B \sum_{b=1}^{B} \lVert h_b\rVert_1 .

Orthogonal Matching Pursuit (Pati et al., 1993) approximates the hard
constraint instead,

.. math::

    \hat h = \arg\min_{\lVert h\rVert_0 \le k} \lVert x - D h\rVert_2^2 ,

greedily: pick the atom most correlated with the residual, refit all picked
atoms by least squares, repeat ``k`` times. :func:`best_subset` solves the
same problem exactly, by trying every support (for tiny problems only).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import torch
from torch import nn

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = [
    "activation_l1_penalty",
    "ActivationL1",
    "member_l1_penalty",
    "member_l1_proximal_step_",
    "zero_fraction",
    "omp",
    "best_subset",
]


def _lams(where, lam, k=None):
    """``lam`` as a float >= 0, or a 1-D tensor of them (one per member)."""
    if not isinstance(lam, torch.Tensor):
        return check_in_range(where, "lam", lam, low=0.0)
    if lam.ndim != 1 or (k is not None and len(lam) != k):
        raise ValueError(
            f"{where}: 'lam' must be a float or a 1-D tensor with one value "
            f"per member ({k}); got shape {tuple(lam.shape)}."
        )
    if not torch.isfinite(lam).all() or (lam < 0).any():
        raise ValueError(
            f"{where}: 'lam' must hold finite values >= 0; got {lam.tolist()}."
        )
    return lam


def activation_l1_penalty(
    h: torch.Tensor, lam: float | torch.Tensor
) -> torch.Tensor:
    r"""The L1 penalty on a batch of representations ``h`` of shape (B, ...).

    .. math::

        \lambda\,\Omega(h) = \frac{\lambda}{B}\sum_{b=1}^{B}\lVert h_b\rVert_1,

    the sum over units, the mean over the batch, so that ``lam`` does not
    depend on the batch size. For K stacked models, ``h`` has shape
    (K, B, ...) and ``lam`` is a (K,) tensor: the sum of the K penalties,
    :math:`\sum_k \lambda_k\,\Omega(h_k)`.
    """
    where = "activation_l1_penalty"
    check_type(where, "h", h, torch.Tensor, "a torch.Tensor")
    stacked = isinstance(lam, torch.Tensor)
    lam = _lams(where, lam, h.shape[0] if stacked and h.ndim else None)
    batch_dim = 1 if stacked else 0
    if h.ndim <= batch_dim or h.shape[batch_dim] == 0:
        raise ValueError(
            f"{where}: 'h' must have a non-empty batch dimension "
            f"{batch_dim}; got shape {tuple(h.shape)}."
        )
    if not stacked:
        # lam / B * sum_b ||h_b||_1
        return lam * h.abs().sum() / h.shape[0]
    # sum_k lam_k / B * sum_b ||h_kb||_1
    per_member = h.abs().reshape(h.shape[0], -1).sum(dim=1) / h.shape[1]
    return (lam.to(h.dtype) * per_member).sum()


class ActivationL1:
    """Record the outputs of ``modules`` and penalize their L1 norm.

    Hooks keep the outputs of ``modules`` during ``model``'s latest forward
    pass (a module called twice, like ``StackedMLP``'s shared activation,
    gives two outputs). Calling the object, as ``fit``'s ``penalty(model)``,
    returns the sum of :func:`activation_l1_penalty` over them; ``outputs``
    keeps them for measuring. ``remove()`` takes the hooks off.

    For a ``StackedMLP`` (outputs of shape (K, B, ...)) pass ``lam`` as a (K,)
    tensor: a float treats dimension 0 as the batch and would divide by K.
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Iterable[nn.Module],
        lam: float | torch.Tensor,
    ):
        where = "ActivationL1"
        check_type(where, "model", model, nn.Module, "a torch.nn.Module")
        self.lam = _lams(where, lam)
        modules = [modules] if isinstance(modules, nn.Module) else modules
        modules = list(modules)
        if not modules:
            raise ValueError(
                f"{where}: 'modules' must hold at least one module; got []."
            )
        for i, m in enumerate(modules):
            check_type(where, f"modules[{i}]", m, nn.Module, "a nn.Module")
        self.outputs: list[torch.Tensor] = []
        self._handles = [
            model.register_forward_pre_hook(lambda *_: self.outputs.clear())
        ] + [
            m.register_forward_hook(lambda m, i, out: self.outputs.append(out))
            for m in modules
        ]

    def __call__(self, model: nn.Module | None = None) -> torch.Tensor:
        if not self.outputs:
            raise RuntimeError(
                "ActivationL1: no activations recorded yet; run a forward "
                "pass of the model before asking for the penalty."
            )
        return sum(activation_l1_penalty(h, self.lam) for h in self.outputs)

    def remove(self) -> None:
        """Detach the hooks (the recorded ``outputs`` stay)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _stacked(where, params, lam):
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    check_type(where, "lam", lam, torch.Tensor, "a (K,) tensor")
    for i, p in enumerate(params):
        check_type(where, f"params[{i}]", p, torch.Tensor, "a torch.Tensor")
        if p.ndim < 1 or p.shape[0] != len(lam):
            raise ValueError(
                f"{where}: 'params[{i}]' must have K = {len(lam)} members "
                f"along dimension 0; got shape {tuple(p.shape)}."
            )
    lam = _lams(where, lam)
    return params, lam


def member_l1_penalty(
    params: Iterable[torch.Tensor], lam: torch.Tensor
) -> torch.Tensor:
    r""":math:`\sum_k \lambda_k \sum_j \lVert w_{jk}\rVert_1` for stacked
    weights (K, ...): each member k with its own strength ``lam[k]``.

    Autograd gives member k the subgradient ``lam[k] * sign(w)``.
    """
    params, lam = _stacked("member_l1_penalty", params, lam)
    total = torch.zeros(())
    for p in params:
        # sum_k lam_k ||w_k||_1
        total = total + (lam.to(p.dtype) * p.abs().flatten(1).sum(1)).sum()
    return total


def member_l1_proximal_step_(
    params: Iterable[torch.Tensor], *, lr: float, lam: torch.Tensor
) -> None:
    r"""Chapter 1's proximal L1 step for stacked weights (K, ...).

    Member k is soft-thresholded by :math:`\eta\lambda_k`:
    :math:`w_k \leftarrow \operatorname{sign}(w_k)
    \max(\lvert w_k\rvert - \eta\lambda_k, 0)`.
    """
    lr = check_in_range("member_l1_proximal_step_", "lr", lr, low=0.0)
    params, lam = _stacked("member_l1_proximal_step_", params, lam)
    with torch.no_grad():
        for p in params:
            t = (lr * lam).to(p.dtype).reshape(-1, *[1] * (p.ndim - 1))
            # sign(w) * max(|w| - lr * lam_k, 0)
            p.copy_(torch.sign(p) * torch.clamp(p.abs() - t, min=0.0))


def zero_fraction(tensors: torch.Tensor | Iterable[torch.Tensor]) -> float:
    """Fraction of entries that are exactly 0 (not merely small)."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        check_type(
            "zero_fraction", f"tensors[{i}]", t, torch.Tensor, "a tensor"
        )
    total = sum(t.numel() for t in tensors)
    if total == 0:
        raise ValueError("zero_fraction: 'tensors' hold no entries; got 0.")
    return sum(int((t == 0).sum()) for t in tensors) / total


def _check_problem(where, dictionary, signals, k):
    check_type(where, "dictionary", dictionary, torch.Tensor, "a torch.Tensor")
    check_type(where, "signals", signals, torch.Tensor, "a torch.Tensor")
    if dictionary.ndim != 2:
        raise ValueError(
            f"{where}: 'dictionary' must be 2-D (m signal entries, n atoms); "
            f"got shape {tuple(dictionary.shape)}."
        )
    if signals.dtype != dictionary.dtype:
        raise TypeError(
            f"{where}: 'signals' must have the dictionary's dtype "
            f"{dictionary.dtype}; got {signals.dtype}."
        )
    m, n = dictionary.shape
    if signals.ndim not in (1, 2) or signals.shape[0] != m:
        raise ValueError(
            f"{where}: 'signals' must have shape ({m},) or ({m}, B) to match "
            f"the dictionary's {m} rows; got {tuple(signals.shape)}."
        )
    check_int(where, "k", k, low=1)
    if k > n:
        raise ValueError(
            f"{where}: 'k' must be <= the number of atoms {n}; got {k}."
        )
    if k > m:
        raise ValueError(
            f"{where}: 'k' must be <= the signal length {m} (beyond it the "
            f"least-squares refit is not unique); got {k}."
        )
    zero = (dictionary.norm(dim=0) == 0).nonzero().flatten()
    if len(zero):
        raise ValueError(
            f"{where}: 'dictionary' must have no zero column; got one at "
            f"index {int(zero[0])}."
        )


def omp(
    dictionary: torch.Tensor, signals: torch.Tensor, k: int
) -> torch.Tensor:
    r"""Orthogonal Matching Pursuit: a ``k``-sparse code for each signal.

    For each column :math:`x` of ``signals`` (shape (m,) or (m, B)), with
    atoms :math:`d_j` the columns of ``dictionary`` (m, n), start from
    :math:`r = x`, :math:`S = \varnothing` and repeat ``k`` times:

    .. math::

        j^\star = \arg\max_{j\notin S} \frac{\lvert d_j^\top r\rvert}
        {\lVert d_j\rVert},\quad S \leftarrow S\cup\{j^\star\},\quad
        h_S = \arg\min_{z} \lVert x - D_S z\rVert_2^2,\quad
        r = x - D_S h_S .

    Returns the codes, shape (n,) or (n, B), zero off the support. Atoms
    need not have unit norm (the selection divides by it); for unit-norm
    atoms this is ``sklearn.linear_model.orthogonal_mp(D, x,
    n_nonzero_coefs=k)``.
    """
    _check_problem("omp", dictionary, signals, k)
    single = signals.ndim == 1
    x = (signals[:, None] if single else signals).T  # (B, m)
    B, n = x.shape[0], dictionary.shape[1]
    atoms = dictionary / dictionary.norm(dim=0)  # (m, n), unit columns
    support = torch.zeros(B, k, dtype=torch.long)
    picked = torch.zeros(B, n, dtype=torch.bool)
    basis = x.new_zeros(B, k, x.shape[1])  # orthonormal basis of span(D_S)
    residual = x.clone()  # (B, m)
    for i in range(k):
        # j* = argmax_{j not in S} |d_j^T r| / ||d_j||
        scores = (residual @ atoms).abs().masked_fill(picked, -1.0)  # (B, n)
        j = scores.argmax(dim=1)
        support[:, i], picked[torch.arange(B), j] = j, True
        # q: the new atom orthogonalized against the basis (twice, for
        # stability); r = x - D_S h_S is x minus its projection on span(D_S)
        q = atoms.T[j][:, :, None]  # (B, m, 1)
        for _ in range(2):
            q = q - basis[:, :i].mT @ (basis[:, :i] @ q)
        q = q[:, :, 0]
        q = q / q.norm(dim=1, keepdim=True)
        basis[:, i] = q
        residual = residual - (residual * q).sum(dim=1, keepdim=True) * q
    # h_S = argmin_z ||x - D_S z||^2, once on the final support
    d_s = dictionary.T[support].transpose(1, 2)  # (B, m, k)
    coef = torch.linalg.lstsq(d_s, x[:, :, None]).solution[:, :, 0]  # (B, k)
    codes = x.new_zeros(B, n).scatter_(1, support, coef)
    return codes[0] if single else codes.T


def best_subset(
    dictionary: torch.Tensor, signal: torch.Tensor, k: int
) -> torch.Tensor:
    r"""The exact sparse code: the best of all supports of size ``k``.

    .. math::

        \hat h = \arg\min_{\lVert h\rVert_0 \le k} \lVert x - Dh\rVert_2^2 .

    Tries all :math:`\binom{n}{k}` supports of size ``k`` (a least-squares
    fit on each) and keeps the one with the smallest residual: exponential
    in ``k``, the reference for OMP on tiny problems. ``signal`` has shape
    (m,); returns the code, shape (n,).
    """
    _check_problem("best_subset", dictionary, signal, k)
    if signal.ndim != 1:
        raise ValueError(
            "best_subset: 'signal' must be 1-D (one signal); "
            f"got shape {tuple(signal.shape)}."
        )
    n = dictionary.shape[1]
    if math.comb(n, k) > 10**6:
        raise ValueError(
            f"best_subset: C(n, k) = C({n}, {k}) supports is too many to try "
            "(at most 1e6)."
        )
    supports = torch.tensor(list(itertools.combinations(range(n), k)))
    d_s = dictionary.T[supports].transpose(1, 2)  # (C, m, k)
    x = signal.expand(len(supports), -1)[:, :, None]  # (C, m, 1)
    coef = torch.linalg.lstsq(d_s, x).solution  # (C, k, 1)
    errors = (x - d_s @ coef).pow(2).sum(dim=(1, 2))  # (C,)
    best = int(errors.argmin())
    code = torch.zeros(n, dtype=dictionary.dtype)
    code[supports[best]] = coef[best, :, 0]
    return code
