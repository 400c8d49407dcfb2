"""reglib.numpy.norm against torch's built-in layers (float64), autograd and finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reglib.numpy import norm
from tests.helpers import numerical_gradient_array, rel_error

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = 1e-10


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _affine(rng, shape):
    return rng.normal(1.0, 0.3, shape), rng.normal(0.0, 0.5, shape)


# ----------------------------------------------------------------------------- batch norm

BN_CASES = [((16, 5), nn.BatchNorm1d), ((8, 4, 7), nn.BatchNorm1d), ((6, 3, 4, 5), nn.BatchNorm2d)]


@pytest.mark.parametrize("shape, module", BN_CASES)
def test_batchnorm_forward_matches_torch_over_training_steps_and_eval(shape, module, rng):
    c = shape[1]
    gamma, beta = _affine(rng, c)
    ref = module(c, momentum=0.3, eps=1e-3).double()
    with torch.no_grad():
        ref.weight.copy_(_t(gamma))
        ref.bias.copy_(_t(beta))
    rm, rv = np.zeros(c), np.ones(c)
    ref.train()
    for _ in range(4):
        x = rng.normal(2.0, 3.0, shape)
        out, _, rm_new, rv_new = norm.batchnorm_forward(
            x, gamma, beta, running_mean=rm, running_var=rv, momentum=0.3, eps=1e-3
        )
        with torch.no_grad():
            expected = ref(_t(x)).numpy()
        np.testing.assert_allclose(out, expected, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(rm_new, ref.running_mean.numpy(), rtol=TOL, atol=TOL)
        np.testing.assert_allclose(rv_new, ref.running_var.numpy(), rtol=TOL, atol=TOL)
        # the unbiased variance went into the running average (claim C25): with momentum 0.3
        m = x.size // c
        var_b = x.transpose(1, 0, *range(2, x.ndim)).reshape(c, -1).var(axis=1)
        np.testing.assert_allclose(rv_new, 0.7 * rv + 0.3 * var_b * m / (m - 1), rtol=1e-12)
        rm, rv = rm_new, rv_new
    ref.eval()
    x = rng.normal(2.0, 3.0, shape)
    out, _, rm_eval, rv_eval = norm.batchnorm_forward(
        x, gamma, beta, running_mean=rm, running_var=rv, momentum=0.3, eps=1e-3, training=False
    )
    with torch.no_grad():
        np.testing.assert_allclose(out, ref(_t(x)).numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(rm_eval, rm)
    np.testing.assert_array_equal(rv_eval, rv)


def test_batchnorm_eval_adds_eps_once_not_twice(rng):
    # seed 003 stores var + eps and adds eps again in eval; torch (and reglib) add it once
    x = rng.normal(size=(5, 3))
    rm, rv, eps = np.zeros(3), np.full(3, 1e-3), 1e-2
    out, *_ = norm.batchnorm_forward(
        x, np.ones(3), np.zeros(3), running_mean=rm, running_var=rv, eps=eps, training=False
    )
    np.testing.assert_allclose(out, x / np.sqrt(rv + eps), rtol=1e-14)
    twice = x / np.sqrt(rv + 2 * eps)
    assert rel_error(out, twice) > 0.1  # a visible difference, not rounding


def test_batchnorm_is_pure(rng):
    x = rng.normal(size=(6, 4))
    gamma, beta = _affine(rng, 4)
    rm, rv = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    copies = [a.copy() for a in (x, gamma, beta, rm, rv)]
    for training in (True, False):
        _, _, rm2, rv2 = norm.batchnorm_forward(
            x, gamma, beta, running_mean=rm, running_var=rv, training=training
        )
        assert rm2 is not rm and rv2 is not rv
    for a, b in zip((x, gamma, beta, rm, rv), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, module", BN_CASES)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_matches_autograd(shape, module, training, rng):
    c = shape[1]
    x = rng.normal(1.0, 2.0, shape)
    gamma, beta = _affine(rng, c)
    rm, rv = rng.normal(size=c), rng.uniform(0.5, 2.0, c)
    dout = rng.normal(size=shape)
    out, cache, *_ = norm.batchnorm_forward(
        x, gamma, beta, running_mean=rm, running_var=rv, training=training
    )
    dx, dgamma, dbeta = norm.batchnorm_backward(dout, cache)
    xt, gt, bt = _t(x, True), _t(gamma, True), _t(beta, True)
    ref = torch.nn.functional.batch_norm(xt, _t(rm), _t(rv), gt, bt, training, 0.1, 1e-5)
    ref.backward(_t(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=TOL, atol=TOL)
    for mine, theirs in ((dx, xt), (dgamma, gt), (dbeta, bt)):
        assert rel_error(mine, theirs.grad.numpy()) < TOL


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_matches_finite_differences(shape, training, rng):
    c = shape[1]
    x = rng.normal(size=shape)
    gamma, beta = _affine(rng, c)
    rm, rv = rng.normal(size=c), rng.uniform(0.5, 2.0, c)
    dout = rng.normal(size=shape)
    kw = dict(running_mean=rm, running_var=rv, training=training)
    _, cache, *_ = norm.batchnorm_forward(x, gamma, beta, **kw)
    dx, dgamma, dbeta = norm.batchnorm_backward(dout, cache)
    fx = lambda z: norm.batchnorm_forward(z, gamma, beta, **kw)[0]  # noqa: E731
    fg = lambda g: norm.batchnorm_forward(x, g, beta, **kw)[0]  # noqa: E731
    fb = lambda b: norm.batchnorm_forward(x, gamma, b, **kw)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient_array(fx, x, dout)) < 1e-8
    assert rel_error(dgamma, numerical_gradient_array(fg, gamma, dout)) < 1e-8
    assert rel_error(dbeta, numerical_gradient_array(fb, beta, dout)) < 1e-8


def test_batchnorm_rejects_one_value_per_channel_in_training(rng):
    kw = dict(running_mean=np.zeros(3), running_var=np.ones(3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        norm.batchnorm_forward(rng.normal(size=(1, 3)), np.ones(3), np.zeros(3), **kw)
    with pytest.raises(ValueError, match="x must"):
        norm.batchnorm_forward(rng.normal(size=(1, 3, 1, 1)), np.ones(3), np.zeros(3), **kw)
    # a single image still has H*W values per channel (torch accepts it), and eval is fine
    norm.batchnorm_forward(rng.normal(size=(1, 3, 2, 2)), np.ones(3), np.zeros(3), **kw)
    norm.batchnorm_forward(rng.normal(size=(1, 3)), np.ones(3), np.zeros(3), training=False, **kw)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.1, 10.0),
    shift=st.floats(-5.0, 5.0),
)
def test_batchnorm_training_output_invariant_to_per_channel_affine_input(seed, scale, shift):
    # BN(a x + b) = BN_{eps/a^2}(x) for a > 0, per channel: shift exactly, scale through eps
    r = np.random.default_rng(seed)
    x = r.normal(size=(10, 3, 2))
    kw = dict(running_mean=np.zeros(3), running_var=np.ones(3))
    g, b = np.ones(3), np.zeros(3)
    out_shift, *_ = norm.batchnorm_forward(x + shift, g, b, **kw)
    out, *_ = norm.batchnorm_forward(x, g, b, **kw)
    np.testing.assert_allclose(out_shift, out, atol=1e-11)
    out_scaled, *_ = norm.batchnorm_forward(scale * x, g, b, eps=1e-5, **kw)
    out_eps, *_ = norm.batchnorm_forward(x, g, b, eps=1e-5 / scale**2, **kw)
    np.testing.assert_allclose(out_scaled, out_eps, atol=1e-11)


# ----------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize("shape, k", [((6, 10), 1), ((3, 4, 5), 1), ((3, 4, 5), 2), ((2, 3, 4), 3)])
def test_layernorm_forward_and_backward_match_torch(shape, k, rng):
    x = rng.normal(1.0, 2.0, shape)
    gamma, beta = _affine(rng, shape[len(shape) - k :])
    dout = rng.normal(size=shape)
    out, cache = norm.layernorm_forward(x, gamma, beta, eps=1e-4, normalized_ndim=k)
    dx, dgamma, dbeta = norm.layernorm_backward(dout, cache)
    ref = nn.LayerNorm(shape[len(shape) - k :], eps=1e-4).double()
    with torch.no_grad():
        ref.weight.copy_(_t(gamma))
        ref.bias.copy_(_t(beta))
    xt = _t(x, True)
    y = ref(xt)
    y.backward(_t(dout))
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=TOL, atol=TOL)
    assert rel_error(dx, xt.grad.numpy()) < TOL
    assert rel_error(dgamma, ref.weight.grad.numpy()) < TOL
    assert rel_error(dbeta, ref.bias.grad.numpy()) < TOL


@pytest.mark.parametrize("shape, k", [((4, 5), 1), ((2, 3, 2), 2)])
def test_layernorm_backward_matches_finite_differences(shape, k, rng):
    x = rng.normal(size=shape)
    gamma, beta = _affine(rng, shape[len(shape) - k :])
    dout = rng.normal(size=shape)
    _, cache = norm.layernorm_forward(x, gamma, beta, normalized_ndim=k)
    dx, dgamma, dbeta = norm.layernorm_backward(dout, cache)
    f = lambda z, g, b: norm.layernorm_forward(z, g, b, normalized_ndim=k)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient_array(lambda z: f(z, gamma, beta), x, dout)) < 1e-8
    assert rel_error(dgamma, numerical_gradient_array(lambda g: f(x, g, beta), gamma, dout)) < 1e-8
    assert rel_error(dbeta, numerical_gradient_array(lambda b: f(x, gamma, b), beta, dout)) < 1e-8


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-10.0, 10.0), scale=st.floats(0.05, 20.0))
def test_layernorm_invariances(seed, shift, scale):
    """Claim C26: translation invariance is exact; scale invariance holds only up to eps.

    LN_eps(a x) = LN_{eps/a^2}(x) exactly, so the deviation from LN_eps(x) is governed by eps.
    """
    r = np.random.default_rng(seed)
    x = r.normal(size=(5, 8))
    g, b = np.ones(8), np.zeros(8)
    shifts = shift * r.uniform(-1, 1, size=(5, 1))  # a different constant per row
    out, _ = norm.layernorm_forward(x, g, b)
    out_shift, _ = norm.layernorm_forward(x + shifts, g, b)
    np.testing.assert_allclose(out_shift, out, atol=1e-12 * (1 + abs(shift)) * 100)
    out_scaled, _ = norm.layernorm_forward(scale * x, g, b, eps=1e-3)
    out_eps, _ = norm.layernorm_forward(x, g, b, eps=1e-3 / scale**2)
    np.testing.assert_allclose(out_scaled, out_eps, atol=1e-12)
    # the output of a row does not depend on the other rows (batch-size independence)
    one, _ = norm.layernorm_forward(x[2:3], g, b)
    np.testing.assert_allclose(one[0], out[2], atol=1e-14)


def test_layernorm_scale_deviation_vanishes_linearly_with_eps(rng):
    # |LN_eps(a x) - LN_eps(x)| ~ eps * |1/a^2 - 1| / (2 var) * |xhat| for small eps
    x = rng.normal(size=(4, 16))
    a = 0.1
    g, b = np.ones(16), np.zeros(16)
    devs = []
    for eps in (1e-2, 1e-4, 1e-6, 1e-8):
        o1, _ = norm.layernorm_forward(a * x, g, b, eps=eps)
        o2, _ = norm.layernorm_forward(x, g, b, eps=eps)
        devs.append(np.max(np.abs(o1 - o2)))
    devs = np.array(devs)
    assert np.all(np.diff(devs) < 0)
    ratios = devs[1:] / devs[:-1]
    np.testing.assert_allclose(ratios[1:], 1e-2, rtol=0.02)  # linear in eps once eps << a^2 var
    xhat = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    predicted = np.max(np.abs(xhat) * (1 / a**2 - 1) / (2 * x.var(1, keepdims=True))) * 1e-8
    assert devs[-1] == pytest.approx(predicted, rel=1e-3)


# ----------------------------------------------------------------------------- group / instance norm


@pytest.mark.parametrize(
    "shape, groups", [((3, 6), 2), ((4, 6, 5), 3), ((2, 6, 3, 4), 1), ((2, 6, 3, 4), 2), ((2, 6, 3, 4), 6)]
)
def test_groupnorm_forward_and_backward_match_torch(shape, groups, rng):
    c = shape[1]
    x = rng.normal(1.0, 2.0, shape)
    gamma, beta = _affine(rng, c)
    dout = rng.normal(size=shape)
    out, cache = norm.groupnorm_forward(x, gamma, beta, groups, eps=1e-4)
    dx, dgamma, dbeta = norm.groupnorm_backward(dout, cache)
    ref = nn.GroupNorm(groups, c, eps=1e-4).double()
    with torch.no_grad():
        ref.weight.copy_(_t(gamma))
        ref.bias.copy_(_t(beta))
    xt = _t(x, True)
    y = ref(xt)
    y.backward(_t(dout))
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=TOL, atol=TOL)
    assert rel_error(dx, xt.grad.numpy()) < TOL
    assert rel_error(dgamma, ref.weight.grad.numpy()) < TOL
    assert rel_error(dbeta, ref.bias.grad.numpy()) < TOL


def test_groupnorm_backward_matches_finite_differences(rng):
    shape = (2, 4, 3)
    x = rng.normal(size=shape)
    gamma, beta = _affine(rng, 4)
    dout = rng.normal(size=shape)
    _, cache = norm.groupnorm_forward(x, gamma, beta, 2)
    dx, dgamma, dbeta = norm.groupnorm_backward(dout, cache)
    f = lambda z, g, b: norm.groupnorm_forward(z, g, b, 2)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient_array(lambda z: f(z, gamma, beta), x, dout)) < 1e-8
    assert rel_error(dgamma, numerical_gradient_array(lambda g: f(x, g, beta), gamma, dout)) < 1e-8
    assert rel_error(dbeta, numerical_gradient_array(lambda b: f(x, gamma, b), beta, dout)) < 1e-8


@pytest.mark.parametrize("shape, module", [((3, 4, 6), nn.InstanceNorm1d), ((2, 3, 4, 5), nn.InstanceNorm2d)])
def test_instancenorm_matches_torch_and_equals_groupnorm_with_c_groups(shape, module, rng):
    c = shape[1]
    x = rng.normal(1.0, 2.0, shape)
    gamma, beta = _affine(rng, c)
    dout = rng.normal(size=shape)
    out, cache = norm.instancenorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = norm.instancenorm_backward(dout, cache)
    ref = module(c, affine=True).double()
    with torch.no_grad():
        ref.weight.copy_(_t(gamma))
        ref.bias.copy_(_t(beta))
    xt = _t(x, True)
    y = ref(xt)
    y.backward(_t(dout))
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=TOL, atol=TOL)
    assert rel_error(dx, xt.grad.numpy()) < TOL
    assert rel_error(dgamma, ref.weight.grad.numpy()) < TOL
    assert rel_error(dbeta, ref.bias.grad.numpy()) < TOL
    np.testing.assert_array_equal(out, norm.groupnorm_forward(x, gamma, beta, c)[0])


def test_groupnorm_is_per_sample(rng):
    x = rng.normal(size=(5, 4, 3, 3))
    g, b = np.ones(4), np.zeros(4)
    out, _ = norm.groupnorm_forward(x, g, b, 2)
    two, _ = norm.groupnorm_forward(x[1:3], g, b, 2)
    np.testing.assert_allclose(two, out[1:3], atol=1e-14)


# ----------------------------------------------------------------------------- bad input

_X = np.ones((4, 3)) + np.arange(12).reshape(4, 3)
_BN = dict(running_mean=np.zeros(3), running_var=np.ones(3))


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(3), eps=0.0, **_BN), ValueError, "eps"),
        (lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(3), momentum=1.5, **_BN), ValueError, "momentum"),
        (lambda: norm.batchnorm_forward(_X, np.ones(4), np.zeros(3), **_BN), ValueError, "gamma"),
        (lambda: norm.batchnorm_forward(_X, np.ones((1, 3)), np.zeros(3), **_BN), ValueError, "gamma"),
        (lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(2), **_BN), ValueError, "beta"),
        (
            lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(3), running_mean=np.zeros(2), running_var=np.ones(3)),
            ValueError,
            "running_mean",
        ),
        (
            lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(3), running_mean=np.zeros(3), running_var=-np.ones(3)),
            ValueError,
            "running_var",
        ),
        (lambda: norm.batchnorm_forward(np.ones(3), np.ones(3), np.zeros(3), **_BN), ValueError, "x"),
        (lambda: norm.batchnorm_forward(_X * np.nan, np.ones(3), np.zeros(3), **_BN), ValueError, "x"),
        (lambda: norm.batchnorm_forward(_X, np.ones(3), np.zeros(3), training="yes", **_BN), TypeError, "training"),
        (lambda: norm.batchnorm_backward(np.ones((4, 3)), "cache"), TypeError, "cache"),
        (lambda: norm.layernorm_forward(_X, np.ones(4), np.zeros(3)), ValueError, "gamma"),
        (lambda: norm.layernorm_forward(_X, np.ones(3), np.zeros(3), eps=-1.0), ValueError, "eps"),
        (lambda: norm.layernorm_forward(_X, np.ones(3), np.zeros(3), normalized_ndim=3), ValueError, "normalized_ndim"),
        (lambda: norm.layernorm_forward(_X, np.ones(3), np.zeros(3), normalized_ndim=0), ValueError, "normalized_ndim"),
        (lambda: norm.groupnorm_forward(_X, np.ones(3), np.zeros(3), 2), ValueError, "num_groups"),
        (lambda: norm.groupnorm_forward(_X, np.ones(3), np.zeros(3), 1.5), TypeError, "num_groups"),
        (lambda: norm.groupnorm_forward(np.ones(3), np.ones(3), np.zeros(3), 1), ValueError, "x"),
        (lambda: norm.instancenorm_forward(_X, np.ones(3), np.zeros(3)), ValueError, "x"),
        (lambda: norm.instancenorm_forward(np.ones((2, 3, 1)), np.ones(3), np.zeros(3)), ValueError, "x"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_backward_checks_dout_shape(rng):
    _, cache, *_ = norm.batchnorm_forward(rng.normal(size=(4, 3)), np.ones(3), np.zeros(3), **_BN)
    with pytest.raises(ValueError, match="dout"):
        norm.batchnorm_backward(np.ones((4, 2)), cache)
    _, cache = norm.layernorm_forward(rng.normal(size=(4, 3)), np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match="cache"):
        norm.groupnorm_backward(np.ones((4, 3)), cache)
