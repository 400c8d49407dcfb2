"""Oracle tests for reglib.torch.dropout: torch built-ins, scipy, gradcheck, reglib.numpy, enumeration."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from torch import nn

from reglib.numpy import dropout as nd
from reglib.torch import dropout as td


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def builtin_with_seed(fn, seed, *args, **kwargs):
    """Run a torch built-in that uses the global RNG from ``seed``, leaving the global state alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- dropout vs F.dropout


@pytest.mark.parametrize("drop_prob", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dropout_reproduces_F_dropout_mask_and_values(drop_prob, dtype):
    x = torch.randn(64, 37, generator=gen(0), dtype=dtype)
    for seed in range(3):
        ref = builtin_with_seed(F.dropout, seed, x, drop_prob, training=True)
        ours = td.dropout(x, drop_prob, generator=gen(seed))
        assert torch.equal(ours, ref)  # same mask and bit-identical 1/keep_prob scaling
        mask = td.dropout_mask(x.shape, drop_prob, gen(seed))
        assert torch.equal(td.apply_mask(x, mask, 1 - drop_prob), ref)


def test_eval_and_zero_prob_return_input_like_F_dropout():
    x = torch.randn(5, 4, generator=gen(1))
    assert td.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.5, training=False) is x
    assert td.dropout(x, 0.0, generator=gen(0)) is x
    assert torch.equal(td.dropout(x, 1.0, generator=gen(0)), F.dropout(x, 1.0))
    assert torch.all(td.dropout(x, 1.0, generator=gen(0)) == 0)
    assert torch.all(td.apply_mask(x, torch.ones_like(x, dtype=torch.bool), 0.0) == 0)


@pytest.mark.parametrize("drop_prob", [0.2, 0.7])
def test_mask_drop_rate_binomial(drop_prob):
    for seed in range(4):
        mask = td.dropout_mask((300, 100), drop_prob, gen(seed))
        assert mask.dtype == torch.bool
        assert stats.binomtest(int((~mask).sum()), mask.numel(), drop_prob).pvalue > 1e-4


def test_dropout_mean_and_variance_c19():
    h = torch.tensor([-1.5, 0.4, 2.0], dtype=torch.float64)
    drop_prob, n = 0.3, 100_000
    out = td.dropout(h.expand(n, 3), drop_prob, generator=gen(3))
    mean, var = nd.dropout_moments(h.numpy(), drop_prob)
    q = 1 - drop_prob
    mu4 = q * (h.numpy() / q - h.numpy()) ** 4 + (1 - q) * h.numpy() ** 4
    assert np.all(np.abs(out.mean(0).numpy() - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(out.var(0).numpy() - var) < 5 * np.sqrt((mu4 - var**2) / n))


# --------------------------------------------------------------------------- spatial dropout vs nn.Dropout2d


def test_spatial_dropout_reproduces_F_dropout2d_and_1d():
    x4 = torch.randn(6, 5, 4, 4, generator=gen(2))
    x3 = torch.randn(6, 5, 7, generator=gen(3))
    for seed in range(3):
        assert torch.equal(td.spatial_dropout(x4, 0.4, generator=gen(seed)), builtin_with_seed(F.dropout2d, seed, x4, 0.4))
        assert torch.equal(td.spatial_dropout(x3, 0.4, generator=gen(seed)), builtin_with_seed(F.dropout1d, seed, x3, 0.4))


def test_spatial_dropout_zeroes_whole_channels_at_dropout2d_rate():
    drop_prob = 0.3
    x = torch.rand(200, 16, 3, 3, generator=gen(4)) + 0.5  # strictly positive
    out = td.spatial_dropout(x, drop_prob, generator=gen(5))
    zero = (out == 0).flatten(2)
    assert torch.all(zero.all(-1) | ~zero.any(-1))  # a channel is either all zero or all kept
    kept = ~zero.all(-1)
    torch.testing.assert_close(out[kept], x[kept] / (1 - drop_prob), rtol=1e-6, atol=0)
    ours = int((~kept).sum())
    layer = nn.Dropout2d(drop_prob).train()
    ref = builtin_with_seed(layer, 6, x)
    theirs = int((ref == 0).flatten(2).all(-1).sum())
    n = kept.numel()
    assert stats.binomtest(ours, n, drop_prob).pvalue > 1e-4
    assert stats.binomtest(theirs, n, drop_prob).pvalue > 1e-4
    # the two per-channel drop rates are indistinguishable (two-sample exact test)
    assert stats.fisher_exact([[ours, n - ours], [theirs, n - theirs]]).pvalue > 1e-3


# --------------------------------------------------------------------------- gradients (gradcheck, mask fixed)


def test_gradcheck_all_functions():
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    mask = td.dropout_mask(x.shape, 0.5, gen(0))
    assert torch.autograd.gradcheck(lambda z: td.dropout(z, 0.4, generator=gen(1)), (x,))
    assert torch.autograd.gradcheck(lambda z: td.spatial_dropout(z, 0.4, generator=gen(1)), (x,))
    assert torch.autograd.gradcheck(lambda z: td.gaussian_dropout(z, 0.4, generator=gen(1)), (x,))
    assert torch.autograd.gradcheck(lambda z: td.locked_dropout(z, 0.4, generator=gen(1)), (x,))
    assert torch.autograd.gradcheck(lambda z: td.apply_mask(z, mask, 0.5), (x,))
    assert torch.autograd.gradcheck(
        lambda z, ww, bb: td.dropconnect_linear(z, ww, bb, 0.4, generator=gen(1)), (x, w, b)
    )


# --------------------------------------------------------------------------- numpy vs torch, same mask / noise


def test_numpy_and_torch_agree_given_the_same_mask():
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    mask = nd.dropout_mask(x.shape, 0.45, rng=rng)
    out_np, cache = nd.dropout_forward(x, 0.45, mask=mask)
    xt = torch.tensor(x, requires_grad=True)
    out_t = td.apply_mask(xt, torch.tensor(mask), 0.55)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(out_np, out_t.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(nd.dropout_backward(dout, cache), xt.grad.numpy(), rtol=1e-15)
    # torch's sampled dropout, given its own mask, is numpy's forward with that mask
    tmask = td.dropout_mask(x.shape, 0.45, gen(9)).numpy()
    np.testing.assert_allclose(
        td.dropout(torch.tensor(x), 0.45, generator=gen(9)).numpy(), nd.dropout_forward(x, 0.45, mask=tmask)[0], rtol=1e-15
    )


def test_numpy_and_torch_gaussian_and_dropconnect_agree():
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    dout = rng.normal(size=(5, 3))
    # DropConnect: numpy's (d_in, d_out) layout vs torch's (out, in)
    mask = nd.dropout_mask(W.shape, 0.3, rng=rng)
    y_np, cache = nd.dropconnect_forward(x, W, b, 0.3, mask=mask)
    dx, dW, db = nd.dropconnect_backward(dout, cache)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W.T.copy(), b))
    y_t = F.linear(xt, td.apply_mask(Wt, torch.tensor(mask.T), 0.7), bt)
    y_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(y_np, y_t.detach().numpy(), rtol=1e-12)
    for ours, theirs in [(dx, xt.grad), (dW, Wt.grad.T), (db, bt.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)
    # dropconnect_linear samples its weight mask with dropout_mask's stream
    tm = td.dropout_mask((3, 4), 0.3, gen(2))
    expected = nd.dropconnect_forward(x, W, b, 0.3, mask=tm.numpy().T)[0]
    got = td.dropconnect_linear(torch.tensor(x), torch.tensor(W.T.copy()), torch.tensor(b), 0.3, generator=gen(2))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    # Gaussian dropout with the same noise: out = x * noise, noise = (torch output) / x
    xg = torch.tensor(rng.uniform(0.5, 2.0, size=(4, 4)))
    out = td.gaussian_dropout(xg, 0.5, generator=gen(3))
    noise = (out / xg).numpy()
    np.testing.assert_allclose(nd.gaussian_dropout_forward(xg.numpy(), 0.5, noise=noise)[0], out.numpy(), rtol=1e-14)


# --------------------------------------------------------------------------- Gaussian dropout (C21), DropConnect mean


def test_gaussian_dropout_normal_with_dropout_moments_c21():
    drop_prob = 0.6
    noise = td.gaussian_dropout(torch.ones(20_000, dtype=torch.float64), drop_prob, generator=gen(4)).numpy()
    assert stats.kstest(noise, stats.norm(1.0, math.sqrt(drop_prob / (1 - drop_prob))).cdf).pvalue > 1e-3
    h = torch.tensor([2.0, -0.5], dtype=torch.float64)
    n = 50_000
    g_out = td.gaussian_dropout(h.expand(n, 2), drop_prob, generator=gen(5))
    b_out = td.dropout(h.expand(n, 2), drop_prob, generator=gen(6))
    mean, var = nd.dropout_moments(h.numpy(), drop_prob)
    for out, kurt in [(g_out, 3.0), (b_out, None)]:
        assert np.all(np.abs(out.mean(0).numpy() - mean) < 5 * np.sqrt(var / n))
        mu4 = kurt * var**2 if kurt else (1 - drop_prob) * (h.numpy() / (1 - drop_prob) - h.numpy()) ** 4 + drop_prob * h.numpy() ** 4
        assert np.all(np.abs(out.var(0).numpy() - var) < 5 * np.sqrt((mu4 - var**2) / n))
    assert td.gaussian_dropout(h, 0.5, training=False) is h


def test_dropconnect_mean_is_linear_and_eval_is_linear():
    x = torch.randn(3, 6, generator=gen(7), dtype=torch.float64)
    w = torch.randn(2, 6, generator=gen(8), dtype=torch.float64)
    b = torch.randn(2, generator=gen(9), dtype=torch.float64)
    assert torch.equal(td.dropconnect_linear(x, w, b, 0.5, training=False), F.linear(x, w, b))
    g = gen(10)
    samples = torch.stack([td.dropconnect_linear(x, w, b, 0.5, generator=g) for _ in range(4000)])
    err = (samples.mean(0) - F.linear(x, w, b)).abs()
    assert torch.all(err < 5 * samples.std(0) / math.sqrt(4000))
    assert torch.equal(td.dropconnect_linear(x, w, None, 1.0, generator=g), torch.zeros(3, 2, dtype=torch.float64))


# --------------------------------------------------------------------------- locked dropout


@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_dropout_shares_mask_over_time(batch_first):
    T, N, Fdim, drop_prob = 12, 40, 30, 0.4
    x = torch.rand(T, N, Fdim, generator=gen(11)) + 0.5
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    out = td.locked_dropout(x, drop_prob, generator=gen(12), batch_first=batch_first)
    time_dim = 1 if batch_first else 0
    zero = out == 0
    assert torch.equal(zero, zero.select(time_dim, 0).unsqueeze(time_dim).expand_as(zero))
    torch.testing.assert_close(out[~zero], x[~zero] / (1 - drop_prob), rtol=1e-6, atol=0)
    dropped = int(zero.select(time_dim, 0).sum())
    assert stats.binomtest(dropped, N * Fdim, drop_prob).pvalue > 1e-4
    assert td.locked_dropout(x, drop_prob, training=False) is x


# --------------------------------------------------------------------------- modules


def test_modules_forward_equals_functional_call():
    x4 = torch.randn(3, 4, 5, 5, generator=gen(13))
    x3 = torch.randn(6, 3, 8, generator=gen(14))
    cases = [
        (td.Dropout(0.3, generator=gen(0)), lambda x: td.dropout(x, 0.3, generator=gen(0)), x4),
        (td.SpatialDropout(0.3, generator=gen(0)), lambda x: td.spatial_dropout(x, 0.3, generator=gen(0)), x4),
        (td.GaussianDropout(0.3, generator=gen(0)), lambda x: td.gaussian_dropout(x, 0.3, generator=gen(0)), x4),
        (td.LockedDropout(0.3, batch_first=True, generator=gen(0)), lambda x: td.locked_dropout(x, 0.3, generator=gen(0), batch_first=True), x3),
    ]
    for module, fn, x in cases:
        assert torch.equal(module(x), fn(x))
        assert module.eval()(x) is x
    torch.manual_seed(0)
    layer = td.DropConnectLinear(8, 4, 0.3, generator=gen(0))
    torch.manual_seed(0)
    plain = nn.Linear(8, 4)
    assert torch.equal(layer.weight, plain.weight) and torch.equal(layer.bias, plain.bias)
    assert torch.equal(layer(x3), td.dropconnect_linear(x3, layer.weight, layer.bias, 0.3, generator=gen(0)))
    assert torch.equal(layer.eval()(x3), plain(x3))
    # built-in module comparison: reglib's Dropout vs nn.Dropout from the same seed
    assert torch.equal(td.Dropout(0.3, generator=gen(5))(x4), builtin_with_seed(nn.Dropout(0.3), 5, x4))


# --------------------------------------------------------------------------- variational dropout


def _exact_kl(log_alpha: float) -> float:
    """KL(N(theta, alpha theta^2) || log-uniform) up to the constant that makes it -> 0 as alpha -> inf.

    KL = E_{eps ~ N(1, alpha)} log|eps| - 0.5 log(alpha) + (euler_gamma + log 2)/2, by quadrature.
    """
    s = math.exp(log_alpha / 2)
    z0 = -1 / s  # log singularity at eps = 0
    f = lambda z: math.log(abs(1 + s * z)) * stats.norm.pdf(z)  # noqa: E731
    e_log = sum(integrate.quad(f, a, b, limit=200)[0] for a, b in [(-np.inf, z0), (z0, np.inf)])
    return e_log - 0.5 * log_alpha + (np.euler_gamma + math.log(2)) / 2


def test_vd_kl_approximation_matches_quadrature():
    points = [-8.0, -4.0, -2.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    approx = td.vd_kl_approx(torch.tensor(points, dtype=torch.float64)).numpy()
    exact = np.array([_exact_kl(la) for la in points])
    # Molchanov et al. report the fit is tight; measured error here is below 0.01 nats
    np.testing.assert_allclose(approx, exact, atol=0.01)
    assert np.all(np.diff(approx) < 0)  # KL decreases as the dropout rate alpha grows


def test_variational_dropout_local_reparameterization_moments():
    torch.manual_seed(0)
    layer = td.VariationalDropoutLinear(5, 3, generator=gen(15)).double()
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.linspace(-4, 0, 15, dtype=torch.float64).reshape(3, 5))
    x = torch.randn(2, 5, generator=gen(16), dtype=torch.float64)
    n = 20_000
    with torch.no_grad():
        samples = layer(x.expand(n, 2, 5).reshape(-1, 5)).reshape(n, 2, 3)
        mu = x @ layer.weight.T + layer.bias
        var = (x**2) @ layer.log_sigma2.exp().T  # Var of x w^T with w ~ N(theta, sigma^2) independent
        # a direct sample of the weights gives the same law as the local reparameterisation
        w = layer.weight + layer.log_sigma2.exp().sqrt() * torch.randn(n, 3, 5, generator=gen(17), dtype=torch.float64)
        direct = torch.einsum("nd,skd->snk", x, w) + layer.bias
    for s in (samples, direct):
        assert torch.all((s.mean(0) - mu).abs() < 5 * (var / n).sqrt())
        assert torch.all((s.var(0) - var).abs() < 5 * (2 * var**2 / n).sqrt())
    assert stats.ks_2samp(samples[:, 0, 0].numpy(), direct[:, 0, 0].numpy()).pvalue > 1e-3


def test_variational_dropout_eval_sparsity_and_kl():
    torch.manual_seed(1)
    layer = td.VariationalDropoutLinear(6, 4, threshold=3.0, generator=gen(0))
    with torch.no_grad():
        big = torch.zeros(4, 6, dtype=torch.bool)
        big[0, :3] = True
        big[2, 5] = True  # 4 weights with log_alpha > 3
        layer.log_sigma2.copy_(torch.where(big, torch.log(layer.weight**2) + 5.0, torch.full_like(layer.weight, -10.0)))
    assert layer.sparsity() == pytest.approx(4 / 24)
    assert torch.equal(~layer.weight_mask(), big)
    x = torch.randn(7, 6, generator=gen(1))
    layer.eval()
    y1, y2 = layer(x), layer(x)
    assert torch.equal(y1, y2)  # deterministic
    torch.testing.assert_close(y1, F.linear(x, layer.weight.masked_fill(big, 0.0), layer.bias))
    kl = layer.kl()
    torch.testing.assert_close(kl, td.vd_kl_approx(layer.log_alpha).sum())
    kl.backward()
    # more noise, less KL (where log_alpha is not clamped to [-8, 8])
    free = layer.log_alpha.abs() < 8
    assert torch.all(layer.log_sigma2.grad[free] < 0) and torch.all(layer.log_sigma2.grad[~free] == 0)


# --------------------------------------------------------------------------- MC dropout


def test_mc_dropout_predict_matches_exact_expectation():
    torch.manual_seed(2)
    d, drop_prob = 4, 0.5
    model = nn.Sequential(td.Dropout(drop_prob), nn.Linear(d, 3)).double()
    x = torch.randn(2, d, generator=gen(3), dtype=torch.float64)
    q = 1 - drop_prob
    with torch.no_grad():
        m1 = torch.zeros(2, 3, dtype=torch.float64)
        m2 = torch.zeros_like(m1)
        m4 = torch.zeros_like(m1)
        for bits in itertools.product([0.0, 1.0], repeat=d):
            mask = torch.tensor(bits, dtype=torch.float64)
            prob = q ** mask.sum() * (1 - q) ** (d - mask.sum())
            p = torch.softmax(model[1](x * mask / q), -1)
            m1, m2, m4 = m1 + prob * p, m2 + prob * p**2, m4 + prob * p**4
    T = 4000
    mean, std = td.mc_dropout_predict(model.eval(), x, T, generator=gen(4))
    assert torch.all((mean - m1).abs() < 5 * ((m2 - m1**2) / T).sqrt())
    assert torch.all((std**2 + mean**2 - m2).abs() < 5 * ((m4 - m2**2) / T).sqrt())
    assert not model.training and not model[0].training  # modes restored
    assert model[0].generator is None


def test_mc_dropout_predict_modes_batchnorm_and_reproducibility():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5), td.Dropout(0.2), nn.Linear(8, 3))
    model.train()
    model[1].running_mean.fill_(0.3)
    before = model[1].running_mean.clone()
    x = torch.randn(10, 5, generator=gen(5))
    state = torch.get_rng_state()
    mean1, std1 = td.mc_dropout_predict(model, x, 30, generator=gen(6))
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    mean2, std2 = td.mc_dropout_predict(model, x, 30, generator=gen(6))
    assert torch.equal(mean1, mean2) and torch.equal(std1, std2)
    assert torch.equal(model[1].running_mean, before)  # batch norm was in eval mode
    assert all(m.training for m in model.modules())  # modes restored (all were train)
    assert torch.all(std1.sum(-1) > 0)
    torch.testing.assert_close(mean1.sum(-1), torch.ones(10))
    # with no dropout layers the prediction is the deterministic eval-mode softmax
    det = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3))
    mean, std = td.mc_dropout_predict(det, x, 5, generator=gen(0))
    assert torch.all(std == 0) and det.training
    torch.testing.assert_close(mean, torch.softmax(det.eval()(x), -1))


# --------------------------------------------------------------------------- invariants (Hypothesis)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    drop_prob=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**31),
)
def test_zero_exactly_where_mask_false_and_exact_scale(shape, drop_prob, seed):
    x = torch.rand(shape, generator=gen(seed), dtype=torch.float64) + 0.1
    mask = td.dropout_mask(shape, drop_prob, gen(seed + 1))
    out = td.dropout(x, drop_prob, generator=gen(seed + 1))
    assert torch.equal(out == 0, ~mask)
    torch.testing.assert_close(out[mask], x[mask] / (1 - drop_prob), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------- bad input

X = torch.ones(3, 4)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: td.dropout(X, 1.5), ValueError, "drop_prob"),
        (lambda: td.dropout(X, float("nan")), ValueError, "drop_prob"),
        (lambda: td.dropout(X, 0.5, gen(0)), TypeError, "training"),
        (lambda: td.dropout(X, 0.5, generator=0), TypeError, "generator"),
        (lambda: td.dropout(np.ones(3), 0.5), TypeError, "x"),
        (lambda: td.dropout(torch.ones(3, dtype=torch.long), 0.5), TypeError, "x"),
        (lambda: td.dropout_mask((3, -1), 0.5), ValueError, "shape"),
        (lambda: td.dropout_mask((3,), -0.5), ValueError, "drop_prob"),
        (lambda: td.apply_mask(X, torch.ones(2, 4, dtype=torch.bool), 0.5), ValueError, "mask"),
        (lambda: td.apply_mask(X, torch.ones(3, 4, dtype=torch.bool), 1.5), ValueError, "keep_prob"),
        (lambda: td.spatial_dropout(X, 0.5), ValueError, "x"),
        (lambda: td.gaussian_dropout(X, 1.0), ValueError, "drop_prob"),
        (lambda: td.dropconnect_linear(X, torch.ones(2, 3), None, 0.5), ValueError, "weight"),
        (lambda: td.dropconnect_linear(X, torch.ones(2, 4), torch.ones(3), 0.5), ValueError, "bias"),
        (lambda: td.locked_dropout(X, 0.5), ValueError, "x"),
        (lambda: td.Dropout(2.0), ValueError, "drop_prob"),
        (lambda: td.GaussianDropout(1.0), ValueError, "drop_prob"),
        (lambda: td.DropConnectLinear(3, 2, -1.0), ValueError, "drop_prob"),
        (lambda: td.LockedDropout(0.5, batch_first="yes"), TypeError, "batch_first"),
        (lambda: td.VariationalDropoutLinear(0, 2), ValueError, "in_features"),
        (lambda: td.VariationalDropoutLinear(3, 2, threshold=float("inf")), ValueError, "threshold"),
        (lambda: td.mc_dropout_predict(nn.Linear(4, 2), X, 0), ValueError, "n_samples"),
        (lambda: td.mc_dropout_predict(lambda z: z, X, 3), TypeError, "model"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
