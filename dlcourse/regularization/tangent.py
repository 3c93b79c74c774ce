r"""Tangent vectors, tangent distance, tangent prop, tangents from a Jacobian.

Book: Part I, chapter 14, "Tangent distance, tangent prop and the manifold
tangent classifier".

* **A smooth image model** (:func:`transform_images`): an image :math:`I` on
  an integer pixel grid becomes the smooth function
  :math:`f(u) = \sum_q I_q\, g_\sigma(u - q)` (a sum of Gaussian bumps,
  :math:`g_\sigma(u) = e^{-\lVert u\rVert^2/2\sigma^2}/2\pi\sigma^2`), which
  can be moved by any amount and sampled again at the pixel centres.
* **Tangent vectors** (:func:`tangent_vectors`): a transformation that moves
  the content of the image with the velocity field :math:`v(p)` changes
  pixel :math:`p` at the rate

  .. math::

      t(p) = \frac{d}{d\theta} f\bigl(\varphi_\theta^{-1}(p)\bigr)\Big|_0
           = -\nabla f(p)\cdot v(p),

  with :math:`\nabla f` from the derivative of the Gaussian (Simard et al.
  smooth the image for the same reason: a pixel grid has no derivative).
* **Tangent distance** (:func:`tangent_distance`): the distance between the
  tangent planes :math:`x + T_x a` and :math:`y + T_y b`, by least squares.
* **Tangent prop** (:func:`tangent_prop_penalty`): the squared directional
  derivatives :math:`\lVert J_f(x)\,t\rVert^2`, by forward-mode autograd.
* **The manifold tangent classifier** (:class:`ContractiveAutoencoder`,
  :func:`jacobian_tangents`, :func:`principal_angles`): tangent planes
  estimated as the leading right singular vectors of an encoder's Jacobian.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from dlcourse._validation import (
    _fail,
    check_choice,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "KINDS",
    "transform_images",
    "tangent_vectors",
    "tangent_distance",
    "tangent_prop_penalty",
    "fit_tangent_prop",
    "ContractiveAutoencoder",
    "jacobian_tangents",
    "principal_angles",
]

# The transformations whose tangents are known in closed form. Rotation is
# counter-clockwise on screen (rows grow downwards), in radians; scale is the
# log of the zoom factor, so that all four are additive near the identity.
KINDS = ("translate_x", "translate_y", "rotate", "scale")


def _check_images(where: str, images) -> torch.Tensor:
    check_type(where, "images", images, torch.Tensor, "a torch.Tensor")
    if images.ndim != 3 or not images.is_floating_point():
        _fail(
            where,
            "images",
            "a floating-point tensor of shape (n, H, W)",
            f"{images.dtype} tensor of shape {tuple(images.shape)}",
        )
    return images


def _grid(h: int, w: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres (x = column, y = row) as (H*W, 2), and the centre."""
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=dtype),
        torch.arange(w, dtype=dtype),
        indexing="ij",
    )
    points = torch.stack([xs.flatten(), ys.flatten()], dim=1)
    return points, torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=dtype)


def _bumps(at: torch.Tensor, pixels: torch.Tensor, sigma: float):
    """Differences u - q (..., P, Q, 2) and g_sigma(u - q) (..., P, Q)."""
    diff = at[..., :, None, :] - pixels  # (..., P, Q, 2)
    g = torch.exp(-diff.pow(2).sum(-1) / (2 * sigma**2)) / (
        2 * math.pi * sigma**2
    )
    return diff, g


def _param(where: str, name: str, value, n: int, dtype) -> torch.Tensor:
    """A float, or a tensor of n values (one per image), as shape (n, 1)."""
    if isinstance(value, torch.Tensor):
        if value.shape not in ((), (n,)) or not value.is_floating_point():
            _fail(
                where,
                name,
                f"a float or a floating-point tensor of shape ({n},)",
                f"{value.dtype} tensor of shape {tuple(value.shape)}",
            )
        return value.to(dtype).reshape(-1, 1).expand(n, 1)
    return torch.full((n, 1), check_in_range(where, name, value), dtype=dtype)


def transform_images(
    images: torch.Tensor,
    *,
    dx=0.0,
    dy=0.0,
    angle=0.0,
    scale=0.0,
    sigma: float = 0.8,
) -> torch.Tensor:
    r"""Move, rotate and zoom the smooth model of each image, then resample.

    The content moves by :math:`\varphi(q) = c + e^{s} R(\alpha)(q - c) + d`
    (centre :math:`c`, shift :math:`d = (dx, dy)` in pixels, rotation
    :math:`\alpha` counter-clockwise on screen, zoom :math:`e^{s}`), so the
    new image at pixel :math:`p` is :math:`f(\varphi^{-1}(p))` with
    :math:`f = \sum_q I_q\, g_\sigma(\cdot - q)`. All parameters zero give
    the Gaussian blur of the image; each may be a float or a tensor of shape
    ``(n,)``, one value per image.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, H, W)`` floating point.
    dx, dy, angle, scale : float or torch.Tensor
        Shift right and down (pixels), angle (radians), log-zoom.
    sigma : float
        Width of the Gaussian bumps, in pixels (> 0).
    """
    where = "transform_images"
    images = _check_images(where, images)
    sigma = check_in_range(where, "sigma", sigma, low=0, low_inclusive=False)
    n, h, w = images.shape
    dtype = images.dtype
    dx, dy, angle, scale = (
        _param(where, name, v, n, dtype)
        for name, v in (
            ("dx", dx),
            ("dy", dy),
            ("angle", angle),
            ("scale", scale),
        )
    )
    pixels, centre = _grid(h, w, dtype)
    # phi^{-1}(p) = c + e^{-s} R(-alpha) (p - c - d), per image: (n, P, 2)
    rel = pixels - centre  # (P, 2)
    u = rel[:, 0] - dx  # (n, P)
    v = rel[:, 1] - dy
    cos, sin = torch.cos(angle), torch.sin(angle)
    # R(alpha) = [[cos, sin], [-sin, cos]] in (x, y-down) coordinates
    src = torch.stack([cos * u - sin * v, sin * u + cos * v], dim=-1)
    src = centre + torch.exp(-scale)[..., None] * src
    # g_sigma is separable: g(u - q) = g1(u_x - q_x) g1(u_y - q_y)
    cols = torch.arange(w, dtype=dtype)
    rows = torch.arange(h, dtype=dtype)
    norm = 2 * math.pi * sigma**2
    gx = torch.exp(-(src[..., 0:1] - cols).pow(2) / (2 * sigma**2))
    gy = torch.exp(-(src[..., 1:2] - rows).pow(2) / (2 * sigma**2))
    # f(src_p) = sum_{q_y, q_x} I[q_y, q_x] g1(.)g1(.): (n, P)
    out = torch.einsum("npy,nyx,npx->np", gy, images, gx) / norm
    return out.reshape(n, h, w)


def _velocity(kind: str, pixels: torch.Tensor, centre: torch.Tensor):
    """The velocity v(p), (P, 2), of a transformation at the identity."""
    rel = pixels - centre
    if kind == "translate_x":
        return torch.stack([torch.ones_like(rel[:, 0]), 0 * rel[:, 0]], 1)
    if kind == "translate_y":
        return torch.stack([0 * rel[:, 0], torch.ones_like(rel[:, 0])], 1)
    if kind == "rotate":  # d/dalpha R(alpha)(p - c) at 0
        return torch.stack([rel[:, 1], -rel[:, 0]], 1)
    return rel  # scale: d/ds e^s (p - c) at 0


def tangent_vectors(
    images: torch.Tensor,
    kinds=("translate_x", "translate_y", "rotate"),
    *,
    sigma: float = 0.8,
) -> torch.Tensor:
    r"""Analytic tangents of :func:`transform_images` at the identity.

    .. math::

        t_k(p) = -\nabla f(p)\cdot v_k(p), \qquad
        \nabla f(p) = -\sum_q I_q\, g_\sigma(p - q)\,\frac{p - q}{\sigma^2},

    the rate of change of each pixel as parameter ``kinds[k]`` of
    :func:`transform_images` leaves 0. Returns ``(n, len(kinds), H, W)``.
    """
    where = "tangent_vectors"
    images = _check_images(where, images)
    sigma = check_in_range(where, "sigma", sigma, low=0, low_inclusive=False)
    check_type(where, "kinds", kinds, (tuple, list), "a tuple or list")
    if not kinds:
        _fail(where, "kinds", "a non-empty tuple of names", kinds)
    for i, kind in enumerate(kinds):
        check_choice(where, f"kinds[{i}]", kind, KINDS)
    n, h, w = images.shape
    pixels, centre = _grid(h, w, images.dtype)
    diff, g = _bumps(pixels, pixels, sigma)  # (P, Q, 2), (P, Q)
    # grad f(p) = sum_q I_q g(p - q) (q - p) / sigma^2: (n, P, 2)
    kernel = g[..., None] * (-diff) / sigma**2  # (P, Q, 2)
    grad = torch.einsum("pqc,nq->npc", kernel, images.reshape(n, -1))
    out = [-(grad * _velocity(kind, pixels, centre)).sum(-1) for kind in kinds]
    return torch.stack(out, dim=1).reshape(n, len(kinds), h, w)


def _check_points(where, name, x, ndim, d=None) -> torch.Tensor:
    check_type(where, name, x, torch.Tensor, "a torch.Tensor")
    shape = "(n, d)" if ndim == 2 else "(n, k, d)"
    if x.ndim != ndim or (d is not None and x.shape[-1] != d):
        allowed = f"a tensor of shape {shape}" + (f" with d = {d}" if d else "")
        _fail(where, name, allowed, f"shape {tuple(x.shape)}")
    return x


def _row_basis(t: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning each t[i]'s rows; rows beyond its rank: 0."""
    _, s, vh = torch.linalg.svd(t, full_matrices=False)  # (n, k), (n, k, d)
    tol = s[:, :1] * max(t.shape[1:]) * torch.finfo(t.dtype).eps
    return vh * (s > tol)[..., None]


def tangent_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    tangents_x: torch.Tensor | None = None,
    tangents_y: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Squared tangent distances between every row of ``x`` and of ``y``.

    .. math::

        D(x, y) = \min_{a, b}\,
        \bigl\lVert (x + T_x^\top a) - (y + T_y^\top b)\bigr\rVert^2 .

    With orthonormal bases :math:`Q_x, Q_y` of the two planes (rows),
    :math:`d = x - y`, :math:`C = Q_x Q_y^\top` and
    :math:`r = Q_x d - C\,Q_y d`, the minimum is

    .. math::

        D = \lVert d\rVert^2 - \lVert Q_y d\rVert^2
            - r^\top (I - C C^\top)^{-1} r ,

    (first eliminate :math:`b`, then :math:`a`). Give both tangent sets for
    the two-sided distance, one for a one-sided distance (only that side
    moves along its plane: :math:`\lVert d\rVert^2 - \lVert Q d\rVert^2`),
    none for the squared Euclidean distance. ``x`` (m, d), ``y`` (n, d),
    tangents (m, k, d) and (n, l, d); returns (m, n). Dependent tangents are
    harmless; if two planes share a direction, the pseudo-inverse is used.
    """
    where = "tangent_distance"
    x = _check_points(where, "x", x, 2)
    y = _check_points(where, "y", y, 2, x.shape[1])
    bases = []
    for name, t, p in (
        ("tangents_x", tangents_x, x),
        ("tangents_y", tangents_y, y),
    ):
        if t is not None:
            t = _check_points(where, name, t, 3, x.shape[1])
            if t.shape[0] != p.shape[0]:
                _fail(where, name, f"{p.shape[0]} rows", t.shape[0])
            t = _row_basis(t)
        bases.append(t)
    qx, qy = bases
    dist = torch.cdist(x, y).pow(2)  # ||d||^2, (m, n)
    if qx is None and qy is None:
        return dist
    if qy is None:  # one-sided at x: ||d||^2 - ||Q_x d||^2
        return (dist - _project(qx, x, y).pow(2).sum(-1)).clamp_min(0)
    py = -_project(qy, y, x).transpose(0, 1)  # Q_y d, (m, n, l)
    dist = dist - py.pow(2).sum(-1)
    if qx is None:
        return dist.clamp_min(0)
    c = torch.einsum("ikd,jld->ijkl", qx, qy)  # C = Q_x Q_y^T
    r = _project(qx, x, y) - (c @ py[..., None])[..., 0]  # (m, n, k)
    eye = torch.eye(c.shape[-2], dtype=c.dtype)
    gram = eye - c @ c.transpose(-1, -2)  # (m, n, k, k)
    chol, info = torch.linalg.cholesky_ex(gram)
    z = torch.cholesky_solve(r[..., None], chol)[..., 0]
    bad = info != 0
    if bad.any():  # planes sharing a direction: the pseudo-inverse
        pinv = torch.linalg.pinv(gram[bad], hermitian=True)
        z[bad] = (pinv @ r[bad][..., None])[..., 0]
    return (dist - (r * z).sum(-1)).clamp_min(0)


def _project(q: torch.Tensor, at: torch.Tensor, other: torch.Tensor):
    """Q_i (at_i - other_j) for bases q (m, k, d) at rows of at: (m, n, k)."""
    own = torch.einsum("ikd,id->ik", q, at)
    return own[:, None, :] - torch.einsum("ikd,jd->ijk", q, other)


def tangent_prop_penalty(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tangents: torch.Tensor,
    *,
    on: str = "logits",
) -> torch.Tensor:
    r"""Mean squared directional derivative of ``model`` along the tangents.

    .. math::

        \Omega(f) = \frac1n \sum_{i=1}^{n} \sum_{k}
        \bigl\lVert J_f(x_i)\, t_{ik}\bigr\rVert_2^2 ,

    each :math:`J_f(x_i)t_{ik}` one forward-mode (dual-number) pass of
    autograd, the same product as ``torch.func.jvp`` and differentiable with
    respect to the model's parameters. ``x`` (..., n, d) and ``tangents``
    (..., n, k, d), e.g. (K, n, d) rows per member of a
    :class:`~dlcourse.regularization.ensembles.StackedMLP`; returns one
    value per leading index, shape (...). The model must treat rows
    independently (no batch normalization in training mode).

    ``on="probabilities"`` differentiates the softmax of the model's output
    (bounded, like the sigmoid outputs of Simard et al.), through
    :math:`\dot p = p \odot (\dot z - p^\top \dot z)` from the logits'
    :math:`\dot z = J_z t`; ``on="logits"`` differentiates the output itself.
    """
    where = "tangent_prop_penalty"
    if not callable(model):
        raise TypeError(
            f"{where}: 'model' must be a callable; got {type(model).__name__}."
        )
    check_choice(where, "on", on, ("probabilities", "logits"))
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    check_type(where, "tangents", tangents, torch.Tensor, "a torch.Tensor")
    if x.ndim < 2 or tangents.shape[:-2] + tangents.shape[-1:] != x.shape:
        _fail(
            where,
            "tangents",
            f"a tensor of shape (..., n, k, d) for x of shape {tuple(x.shape)}",
            f"shape {tuple(tangents.shape)}",
        )
    *batch, n, k, d = tangents.shape
    xs = x.unsqueeze(-2).expand(tangents.shape).reshape(*batch, n * k, d)
    with fwAD.dual_level():
        out = model(fwAD.make_dual(xs, tangents.reshape(*batch, n * k, d)))
        z, jt = fwAD.unpack_dual(out)  # f(x_i), J_f(x_i) t_ik: (..., n k, c)
    if on == "probabilities":  # p' = p (z' - p.z')
        p = torch.softmax(z, dim=-1)
        jt = p * (jt - (p * jt).sum(-1, keepdim=True))
    return jt.pow(2).sum(-1).reshape(*batch, n, k).sum(-1).mean(-1)


def fit_tangent_prop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    tangents: torch.Tensor | None = None,
    *,
    lam=0.0,
    optimizer: torch.optim.Optimizer,
    steps: int,
    on: str = "logits",
) -> dict[str, list[float]]:
    r"""Full-batch training on cross-entropy plus ``lam`` times tangent prop.

    .. math::

        \sum_m \Bigl(\frac1n \sum_i \ell\bigl(f_m(x_{mi}), y_{mi}\bigr)
        + \lambda_m\,\Omega(f_m)\Bigr)

    for the members :math:`m` of a stacked model (``x`` (K, n, d), ``y``
    (K, n), ``tangents`` (K, n, k, d), ``lam`` a float or a (K,) tensor): with
    an element-wise optimizer (Adam) these are K separate trainings. A plain
    model takes ``x`` (n, d), ``y`` (n,). ``tangents=None`` trains without
    the penalty. ``on`` says which output the penalty differentiates:
    ``"probabilities"`` (the softmax, bounded, as Simard et al.'s sigmoid
    outputs) or ``"logits"``. Returns ``{"loss": [...], "penalty": [...]}``, the
    members' mean of each step.
    """
    where = "fit_tangent_prop"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    check_type(
        where, "optimizer", optimizer, torch.optim.Optimizer, "an Optimizer"
    )
    check_int(where, "steps", steps, low=1)
    check_choice(where, "on", on, ("probabilities", "logits"))
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if y.shape != x.shape[:-1]:
        _fail(where, "y", f"shape {tuple(x.shape[:-1])}", tuple(y.shape))
    if isinstance(lam, torch.Tensor):
        if (lam < 0).any():
            _fail(where, "lam", "a tensor of values >= 0", lam)
    else:
        lam = check_in_range(where, "lam", lam, low=0.0)
    history: dict[str, list[float]] = {"loss": [], "penalty": []}
    model.train()
    for _ in range(steps):
        logits = model(x)  # (..., n, c)
        loss = (
            torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                reduction="none",
            )
            .reshape(y.shape)
            .mean(-1)
        )  # one loss per member
        penalty = torch.zeros_like(loss)
        if tangents is not None:
            penalty = tangent_prop_penalty(model, x, tangents, on=on)
        objective = (loss + lam * penalty).sum()
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        history["loss"].append(loss.mean().item())
        history["penalty"].append(penalty.mean().item())
    return history


class ContractiveAutoencoder(nn.Module):
    r"""A one-layer autoencoder with the contractive penalty of Rifai et al.

    .. math::

        h(x) = \operatorname{sigmoid}(W x + b), \qquad
        \hat x = W_d\, h + c, \qquad
        \lVert J_h(x)\rVert_F^2 = \sum_j \bigl(h_j(1 - h_j)\bigr)^2
        \lVert W_{j,:}\rVert^2 .

    Differences from the paper: the decoder is linear and untied (the paper
    ties :math:`W_d = W^\top` and uses a sigmoid output for pixels in
    [0, 1]); the penalty is the same.
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        where = "ContractiveAutoencoder"
        check_int(where, "n_in", n_in, low=1)
        check_int(where, "n_hidden", n_hidden, low=1)
        self.encoder = nn.Linear(n_in, n_hidden)
        self.decoder = nn.Linear(n_hidden, n_in)
        with torch.no_grad():
            for layer in (self.encoder, self.decoder):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))  # (n, n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))  # (n, n_in)

    def jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over rows of ``x`` of the squared Frobenius norm of J_h."""
        h = self.encode(x)
        # sum_j (h_j (1 - h_j))^2 ||W_j||^2
        rows = self.encoder.weight.pow(2).sum(1)  # (n_hidden,)
        return ((h * (1 - h)).pow(2) * rows).sum(1).mean()


def jacobian_tangents(
    encoder: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The k leading right singular vectors of the encoder's Jacobian.

    .. math::

        J_h(x_i) = U_i \Sigma_i V_i^\top, \qquad
        \text{tangents}_i = \text{the first } k \text{ rows of } V_i^\top ,

    the input directions in which the code :math:`h(x_i)` changes fastest:
    the manifold tangent classifier's estimate of the tangent plane at
    :math:`x_i`. ``encoder`` maps (n, d) to (n, m) row by row. Returns the
    tangents (n, k, d), orthonormal per row, and the singular values (n, k).
    """
    where = "jacobian_tangents"
    if not callable(encoder):
        raise TypeError(
            f"{where}: 'encoder' must be a callable; "
            f"got {type(encoder).__name__}."
        )
    x = _check_points(where, "x", x, 2)
    k = check_int(where, "k", k, low=1)
    if k > x.shape[1]:
        _fail(where, "k", f"<= the input dimension {x.shape[1]}", k)

    def one(row):  # (d,) -> (m,)
        return encoder(row[None])[0]

    jac = torch.func.vmap(torch.func.jacrev(one))(x)  # (n, m, d)
    if k > jac.shape[1]:
        _fail(where, "k", f"<= the code size {jac.shape[1]}", k)
    _, s, vh = torch.linalg.svd(jac, full_matrices=False)
    return vh[:, :k], s[:, :k]


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Principal angles between the row spaces of ``a`` and ``b``.

    .. math::

        \cos\theta_i = \sigma_i\bigl(Q_a^\top Q_b\bigr),

    with :math:`Q_a, Q_b` orthonormal bases of the two subspaces (QR of the
    rows). ``a`` (..., p, d), ``b`` (..., q, d) with p, q <= d; returns
    (..., min(p, q)) angles in radians, smallest first.
    """
    where = "principal_angles"
    for name, t in (("a", a), ("b", b)):
        check_type(where, name, t, torch.Tensor, "a torch.Tensor")
        if t.ndim < 2 or t.shape[-2] > t.shape[-1]:
            _fail(where, name, "a tensor (..., p, d) with p <= d", t.shape)
    if a.shape[-1] != b.shape[-1]:
        _fail(where, "b", f"vectors of size {a.shape[-1]}", b.shape[-1])
    qa = torch.linalg.qr(a.transpose(-1, -2)).Q  # (..., d, p)
    qb = torch.linalg.qr(b.transpose(-1, -2)).Q
    cos = torch.linalg.svdvals(qa.transpose(-1, -2) @ qb)  # descending
    return torch.arccos(cos.clamp(0.0, 1.0))
