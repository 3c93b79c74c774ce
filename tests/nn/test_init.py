"""dlcourse.nn.init against torch.nn.init: formulas, draws, signal sizes."""

import math

import pytest
import torch
from torch import nn

from dlcourse.nn.init import (
    SCHEMES,
    activation_variances,
    fan_in_and_fan_out,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    init_linear_layers_,
    init_std,
    lecun_normal_,
    scaled_normal_,
    signal_propagation,
    zeros_,
)

SHAPES = [(30, 20), (7, 3, 5), (16, 8, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    w = torch.empty(shape)
    assert fan_in_and_fan_out(w) == nn.init._calculate_fan_in_and_fan_out(w)


@pytest.mark.parametrize("fan_in, fan_out", [(1, 1), (64, 5), (300, 1000)])
def test_stds_equal_torch_formulas(fan_in, fan_out):
    gain = nn.init.calculate_gain
    assert init_std("lecun_normal", fan_in, fan_out) == gain(
        "linear"
    ) / math.sqrt(fan_in)
    assert init_std("he_normal", fan_in, fan_out) == gain("relu") / math.sqrt(
        fan_in
    )
    assert init_std("glorot_normal", fan_in, fan_out) == gain(
        "linear"
    ) * math.sqrt(2.0 / (fan_in + fan_out))
    assert init_std("lecun_fan_out", fan_in, fan_out) == gain(
        "linear"
    ) / math.sqrt(fan_out)
    assert init_std("zeros", fan_in, fan_out) == 0.0
    assert init_std("scaled_normal", fan_in, fan_out) == 10.0
    assert init_std("scaled_normal", fan_in, fan_out, scale=0.5) == 0.5


TWINS = [
    (
        lambda w, g: glorot_normal_(w, generator=g),
        lambda w, g: nn.init.xavier_normal_(w, generator=g),
    ),
    (
        lambda w, g: glorot_normal_(w, gain=5 / 3, generator=g),
        lambda w, g: nn.init.xavier_normal_(w, gain=5 / 3, generator=g),
    ),
    (
        lambda w, g: glorot_uniform_(w, generator=g),
        lambda w, g: nn.init.xavier_uniform_(w, generator=g),
    ),
    (
        lambda w, g: he_normal_(w, generator=g),
        lambda w, g: nn.init.kaiming_normal_(
            w, nonlinearity="relu", generator=g
        ),
    ),
    (
        lambda w, g: lecun_normal_(w, generator=g),
        lambda w, g: nn.init.kaiming_normal_(
            w, nonlinearity="linear", generator=g
        ),
    ),
    (
        lambda w, g: lecun_normal_(w, mode="fan_out", generator=g),
        lambda w, g: nn.init.kaiming_normal_(
            w, mode="fan_out", nonlinearity="linear", generator=g
        ),
    ),
    (
        lambda w, g: scaled_normal_(w, generator=g),
        lambda w, g: nn.init.normal_(w, 0.0, 10.0, generator=g),
    ),
    (lambda w, g: zeros_(w), lambda w, g: nn.init.zeros_(w)),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ours, theirs", TWINS)
def test_same_generator_gives_exactly_torchs_draws(ours, theirs, shape):
    a, b = torch.empty(shape), torch.empty(shape)
    out = ours(a, torch.Generator().manual_seed(7))
    theirs(b, torch.Generator().manual_seed(7))
    assert out is a  # in place
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "scheme, fn",
    [
        ("glorot_normal", glorot_normal_),
        ("glorot_uniform", glorot_uniform_),
        ("he_normal", he_normal_),
        ("lecun_normal", lecun_normal_),
    ],
)
def test_sample_variance_is_within_sampling_error(scheme, fn):
    n_out, n_in = 600, 400
    w = fn(
        torch.empty(n_out, n_in, dtype=torch.float64),
        generator=torch.Generator().manual_seed(0),
    )
    target = init_std(scheme, n_in, n_out) ** 2
    n = w.numel()
    # sd of the sample variance: sqrt((mu4 - var^2) / n);
    # mu4 = 3 var^2 (normal), 9/5 var^2 (uniform)
    kurtosis = 9 / 5 if scheme == "glorot_uniform" else 3.0
    se = target * math.sqrt((kurtosis - 1) / n)
    assert abs(w.var(unbiased=False).item() - target) < 4 * se
    assert abs(w.mean().item()) < 4 * math.sqrt(target / n)
    # and torch's twin has the same variance within the same error
    if scheme != "lecun_normal":
        twin = {
            "glorot_normal": nn.init.xavier_normal_,
            "glorot_uniform": nn.init.xavier_uniform_,
            "he_normal": lambda t, generator: nn.init.kaiming_normal_(
                t, nonlinearity="relu", generator=generator
            ),
        }[scheme]
        v = twin(
            torch.empty(n_out, n_in, dtype=torch.float64),
            generator=torch.Generator().manual_seed(1),
        )
        assert (
            abs(v.var(unbiased=False).item() - w.var(unbiased=False).item())
            < 6 * se
        )


def test_init_linear_layers_sets_weights_and_zero_biases():
    model = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 1))
    init_linear_layers_(
        model, "he_normal", generator=torch.Generator().manual_seed(3)
    )
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(
        model[0].weight.detach(), he_normal_(torch.empty(4, 8), generator=g)
    )
    torch.testing.assert_close(
        model[2].weight.detach(), he_normal_(torch.empty(1, 4), generator=g)
    )
    assert model[0].bias.abs().sum() == 0 and model[2].bias.abs().sum() == 0
    init_linear_layers_(model, "zeros")
    assert all(p.abs().sum() == 0 for p in model.parameters())


def test_linear_variance_propagation_follows_the_fan_in_rule():
    # linear layers with Var(W) = s^2: Var(h_l) = (n s^2)^l
    v = activation_variances(
        "scaled_normal",
        "linear",
        depth=4,
        width=256,
        batch=2000,
        scale=0.05,
        generator=torch.Generator().manual_seed(0),
    )
    expected = torch.tensor([(256 * 0.05**2) ** k for k in range(1, 5)])
    torch.testing.assert_close(v, expected.float(), rtol=0.1, atol=0)


def test_he_keeps_relu_and_lecun_keeps_linear_variance():
    g = torch.Generator().manual_seed(0)
    he = activation_variances(
        "he_normal", "relu", depth=12, width=256, batch=1000, generator=g
    )
    lin = activation_variances(
        "lecun_normal", "linear", depth=12, width=256, batch=1000, generator=g
    )
    glorot_relu = activation_variances(
        "glorot_normal", "relu", depth=12, width=256, batch=1000, generator=g
    )
    assert he.shape == (12,)
    # ReLU with He: E[h^2] stays 1, Var(h) = (1/2 - 1/(2 pi)) Var(z) ~ constant
    assert 0.5 < (he[-1] / he[0]).item() < 2.0
    assert 0.5 < lin[-1].item() < 2.0
    # Glorot at equal width is 1/n: ReLU halves the signal each layer
    assert (glorot_relu[-1] / glorot_relu[0]).item() < 2.0**-8


def test_argument_checks():
    with pytest.raises(
        ValueError,
        match=r"fan_in_and_fan_out: 'tensor' must be at least "
        r"2-dimensional; got \(5,\)",
    ):
        fan_in_and_fan_out(torch.empty(5))
    with pytest.raises(ValueError, match="init_std: 'scheme' must be one of"):
        init_std("xavier", 3, 3)
    with pytest.raises(
        ValueError, match="init_std: 'fan_in' must be >= 1; got 0"
    ):
        init_std("he_normal", 0, 3)
    with pytest.raises(
        TypeError,
        match="glorot_normal_: 'generator' must be a torch.Generator or None",
    ):
        glorot_normal_(torch.empty(3, 3), generator=0)
    with pytest.raises(
        ValueError, match="glorot_uniform_: 'gain' must be >= 0; got -1"
    ):
        glorot_uniform_(torch.empty(3, 3), gain=-1.0)
    with pytest.raises(
        ValueError, match="scaled_normal_: 'scale' must be >= 0; got -2"
    ):
        scaled_normal_(torch.empty(3), scale=-2.0)
    with pytest.raises(
        TypeError, match="zeros_: 'tensor' must be a torch.Tensor"
    ):
        zeros_([0.0])
    with pytest.raises(
        ValueError, match="init_linear_layers_: 'scheme' must be one of"
    ):
        init_linear_layers_(nn.Linear(2, 2), "kaiming")
    with pytest.raises(
        ValueError, match="activation_variances: 'activation' must be one of"
    ):
        activation_variances("he_normal", "gelu", depth=2, width=4, batch=4)
    with pytest.raises(
        ValueError, match="activation_variances: 'depth' must be >= 1; got 0"
    ):
        activation_variances("he_normal", "relu", depth=0, width=4, batch=4)
    with pytest.raises(
        ValueError,
        match="lecun_normal_: 'mode' must be one of 'fan_in', 'fan_out'",
    ):
        lecun_normal_(torch.empty(3, 3), mode="fan_avg")
    with pytest.raises(
        ValueError,
        match="signal_propagation: 'widths' must be at least 2 entries",
    ):
        signal_propagation("he_normal", "relu", widths=[4], batch=4)
    with pytest.raises(
        TypeError, match="signal_propagation: 'widths' must be a list or tuple"
    ):
        signal_propagation("he_normal", "relu", widths=4, batch=4)
    with pytest.raises(
        ValueError,
        match=r"signal_propagation: 'widths\[1\]' must be >= 1; got 0",
    ):
        signal_propagation("he_normal", "relu", widths=[4, 0], batch=4)
    with pytest.raises(
        TypeError, match="signal_propagation: 'dtype' must be a torch.dtype"
    ):
        signal_propagation("he_normal", "relu", widths=[4, 4], batch=4, dtype=1)
    with pytest.raises(
        ValueError, match="signal_propagation: 'scheme' must be one of"
    ):
        signal_propagation("kaiming", "relu", widths=[4, 4], batch=4)
    assert set(SCHEMES) == {
        "zeros",
        "scaled_normal",
        "lecun_normal",
        "lecun_fan_out",
        "glorot_normal",
        "glorot_uniform",
        "he_normal",
    }


def test_signal_propagation_forward_equals_activation_variances():
    kw = dict(batch=64, dtype=torch.float64)
    v = activation_variances(
        "he_normal",
        "relu",
        depth=5,
        width=32,
        generator=torch.Generator().manual_seed(4),
        **kw,
    )
    s = signal_propagation(
        "he_normal",
        "relu",
        widths=[32] * 6,
        generator=torch.Generator().manual_seed(4),
        **kw,
    )
    assert set(s) == {"z_var", "h_second_moment", "h_var", "grad_var"}
    assert all(t.shape == (5,) for t in s.values())
    torch.testing.assert_close(s["h_var"], v, rtol=0, atol=0)


def test_relu_second_moment_is_half_the_pre_activation_variance():
    # first layer of a wide net: z ~ N(0, 2) symmetric, E[relu(z)^2] = Var(z)/2
    s = signal_propagation(
        "he_normal",
        "relu",
        widths=[512, 512],
        batch=512,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(1),
    )
    assert s["z_var"][0].item() == pytest.approx(2.0, rel=0.03)
    assert s["h_second_moment"][0].item() == pytest.approx(
        s["z_var"][0].item() / 2, rel=0.03
    )
    # Var(h) = (1 - 1/pi) E[h^2] for Gaussian pre-activations
    assert (s["h_var"] / s["h_second_moment"])[0].item() == pytest.approx(
        1 - 1 / math.pi, abs=0.01
    )


def test_signal_propagation_gradients_are_autograd_of_the_same_network():
    # rebuild the linear network by hand from the same draws
    g = torch.Generator().manual_seed(7)
    widths = [6, 4, 3]
    out = signal_propagation(
        "glorot_normal", "linear", widths=widths, batch=5, generator=g
    )
    g = torch.Generator().manual_seed(7)
    h0 = torch.randn(5, 6, generator=g)
    w1 = glorot_normal_(torch.empty(4, 6), generator=g)
    w2 = glorot_normal_(torch.empty(3, 4), generator=g)
    r = torch.randn(5, 3, generator=g)
    # J = sum(r * h2), h2 = h0 W1^T W2^T: dJ/dh1 = r W2, dJ/dh0 = r W2 W1
    grads = [r @ w2 @ w1, r @ w2]
    expected = torch.stack([gr.var(unbiased=False) for gr in grads])
    torch.testing.assert_close(out["grad_var"], expected)
    z1 = h0 @ w1.T
    torch.testing.assert_close(out["z_var"][0], z1.var(unbiased=False))


@pytest.mark.parametrize(
    "scheme, forward, backward",
    [
        ("lecun_normal", 1.0, 0.5),
        ("lecun_fan_out", 2.0, 1.0),
        ("glorot_normal", 4 / 3, 2 / 3),
    ],
)
def test_funnel_factors_follow_the_fan_rules(scheme, forward, backward):
    # halving widths, linear layers: per layer n_in s^2 forward, n_out s^2 back
    widths = [256, 128, 64, 32]
    g = torch.Generator().manual_seed(0)
    runs = [
        signal_propagation(
            scheme,
            "linear",
            widths=widths,
            batch=128,
            dtype=torch.float64,
            generator=g,
        )
        for _ in range(30)
    ]
    z = torch.stack([r["z_var"] for r in runs]).mean(0)
    grad = torch.stack([r["grad_var"] for r in runs]).mean(0)
    layers = torch.arange(1, 4, dtype=torch.float64)
    torch.testing.assert_close(z, forward**layers, rtol=0.06, atol=0)
    torch.testing.assert_close(
        grad, backward ** (4 - layers), rtol=0.06, atol=0
    )
