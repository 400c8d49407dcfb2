"""Oracle tests for reglib.numpy.dropout (closed forms, scipy, finite differences, enumeration)."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from reglib.numpy import dropout as nd
from tests.helpers import numerical_gradient_array, rel_error

DROP_PROBS = [0.1, 0.5, 0.8]


# --------------------------------------------------------------------------- masks and rates


@pytest.mark.parametrize("drop_prob", DROP_PROBS)
def test_drop_rate_binomial(drop_prob):
    # over several seeds, the number of dropped entries is Binomial(n, drop_prob)
    for seed in range(5):
        mask = nd.dropout_mask((200, 100), drop_prob, rng=np.random.default_rng(seed))
        assert mask.dtype == np.bool_ and mask.shape == (200, 100)
        dropped = int((~mask).sum())
        assert stats.binomtest(dropped, mask.size, drop_prob).pvalue > 1e-4


def test_forward_with_rng_equals_sampled_mask_applied():
    x = np.random.default_rng(0).normal(size=(7, 9))
    out, _ = nd.dropout_forward(x, 0.3, rng=np.random.default_rng(42))
    mask = nd.dropout_mask(x.shape, 0.3, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(out, nd.apply_mask(x, mask, 0.7))
    np.testing.assert_array_equal(out == 0, ~mask)


def test_mean_and_variance_monte_carlo_c19():
    # C19: E[out] = h, Var[out] = h^2 (1-q)/q, checked within CLT bounds over 100k masks
    h = np.array([-2.0, -0.5, 0.3, 1.0, 3.0])
    drop_prob, n = 0.4, 100_000
    q = 1 - drop_prob
    x = np.broadcast_to(h, (n, h.size))
    out, _ = nd.dropout_forward(x, drop_prob, rng=np.random.default_rng(7))
    mean, var = nd.dropout_moments(h, drop_prob)
    # independent closed form from the two-point law: h/q with prob q, 0 with prob 1-q
    np.testing.assert_allclose(mean, q * (h / q), rtol=1e-12)
    np.testing.assert_allclose(var, q * (h / q) ** 2 - h**2, rtol=1e-12)
    mu4 = q * (h / q - h) ** 4 + (1 - q) * h**4  # central fourth moment
    assert np.all(np.abs(out.mean(0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(out.var(0) - var) < 5 * np.sqrt((mu4 - var**2) / n))


def test_eval_identity_and_edge_probabilities():
    x = np.random.default_rng(1).normal(size=(4, 6))
    out, cache = nd.dropout_forward(x, 0.7, training=False)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(nd.dropout_backward(np.ones_like(x), cache), np.ones_like(x))
    out0, _ = nd.dropout_forward(x, 0.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out0, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero warning
        out1, cache1 = nd.dropout_forward(x, 1.0, rng=np.random.default_rng(0))
        dx1 = nd.dropout_backward(np.ones_like(x), cache1)
        y1, c1 = nd.dropconnect_forward(x, np.ones((6, 2)), np.array([1.0, -1.0]), 1.0, rng=np.random.default_rng(0))
    assert np.all(out1 == 0) and np.all(dx1 == 0)
    np.testing.assert_array_equal(y1, np.tile([1.0, -1.0], (4, 1)))
    assert np.all(nd.apply_mask(x, np.ones_like(x, bool), 0.0) == 0)
    assert np.all(nd.dropout_mask((50,), 0.0, rng=np.random.default_rng(0)))
    assert not np.any(nd.dropout_mask((50,), 1.0, rng=np.random.default_rng(0)))


def test_float32_stays_float32():
    x = np.ones((3, 3), dtype=np.float32)
    out, cache = nd.dropout_forward(x, 0.5, rng=np.random.default_rng(0))
    assert out.dtype == np.float32 and nd.dropout_backward(np.ones_like(x), cache).dtype == np.float32


def test_broadcast_mask_drops_whole_channels():
    x = np.random.default_rng(2).normal(size=(3, 4, 5, 5))
    mask = nd.dropout_mask((3, 4, 1, 1), 0.5, rng=np.random.default_rng(3))
    out, cache = nd.dropout_forward(x, 0.5, mask=mask)
    for n, c in itertools.product(range(3), range(4)):
        if mask[n, c, 0, 0]:
            np.testing.assert_allclose(out[n, c], 2 * x[n, c], rtol=1e-15)
        else:
            assert np.all(out[n, c] == 0)
    assert nd.dropout_backward(np.ones_like(x), cache).shape == x.shape


# --------------------------------------------------------------------------- gradients


def test_dropout_backward_matches_finite_differences():
    rng = np.random.default_rng(4)
    x, dout = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    mask = nd.dropout_mask(x.shape, 0.35, rng=rng)
    _, cache = nd.dropout_forward(x, 0.35, mask=mask)
    dx_num = numerical_gradient_array(lambda z: nd.dropout_forward(z, 0.35, mask=mask)[0], x, dout)
    assert rel_error(nd.dropout_backward(dout, cache), dx_num) < 1e-8


def test_gaussian_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    x, dout = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    noise = nd.gaussian_dropout_noise(x.shape, 0.5, rng=rng)
    _, cache = nd.gaussian_dropout_forward(x, 0.5, noise=noise)
    dx_num = numerical_gradient_array(lambda z: nd.gaussian_dropout_forward(z, 0.5, noise=noise)[0], x, dout)
    assert rel_error(nd.gaussian_dropout_backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("training", [True, False])
def test_dropconnect_backward_matches_finite_differences(training):
    rng = np.random.default_rng(6)
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    dout = rng.normal(size=(5, 3))
    mask = nd.dropout_mask(W.shape, 0.4, rng=rng) if training else None
    kw = dict(training=training, mask=mask)
    _, cache = nd.dropconnect_forward(x, W, b, 0.4, **kw)
    dx, dW, db = nd.dropconnect_backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(lambda z: nd.dropconnect_forward(z, W, b, 0.4, **kw)[0], x, dout)) < 1e-8
    assert rel_error(dW, numerical_gradient_array(lambda z: nd.dropconnect_forward(x, z, b, 0.4, **kw)[0], W, dout)) < 1e-8
    assert rel_error(db, numerical_gradient_array(lambda z: nd.dropconnect_forward(x, W, z, 0.4, **kw)[0], b, dout)) < 1e-8


def test_dropconnect_forward_matches_explicit_sum_and_mean():
    rng = np.random.default_rng(8)
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    mask = nd.dropout_mask(W.shape, 0.5, rng=rng)
    y, _ = nd.dropconnect_forward(x, W, b, 0.5, mask=mask)
    explicit = np.array([[sum(x[n, i] * W[i, k] * mask[i, k] / 0.5 for i in range(4)) + b[k] for k in range(2)] for n in range(3)])
    np.testing.assert_allclose(y, explicit, rtol=1e-12)
    # the average over all 2^8 weight masks (exact enumeration) is the evaluation output
    q = 0.7
    total = np.zeros((3, 2))
    for bits in itertools.product([False, True], repeat=W.size):
        m = np.array(bits).reshape(W.shape)
        prob = q ** m.sum() * (1 - q) ** (~m).sum()
        total += prob * nd.dropconnect_forward(x, W, b, 1 - q, mask=m)[0]
    np.testing.assert_allclose(total, nd.dropconnect_forward(x, W, b, 1 - q, training=False)[0], rtol=1e-10)


# --------------------------------------------------------------------------- Gaussian dropout (C21)


def test_gaussian_noise_is_normal_with_dropout_moments_c21():
    drop_prob = 0.3
    noise = nd.gaussian_dropout_noise(20_000, drop_prob, rng=np.random.default_rng(9))
    sd = np.sqrt(drop_prob / (1 - drop_prob))
    assert stats.kstest(noise, stats.norm(loc=1.0, scale=sd).cdf).pvalue > 1e-3
    # same first two moments as inverted dropout for a unit h
    h = np.array([1.5, -0.7])
    x = np.broadcast_to(h, (50_000, 2))
    out, _ = nd.gaussian_dropout_forward(x, drop_prob, rng=np.random.default_rng(10))
    mean, var = nd.dropout_moments(h, drop_prob)
    n = len(x)
    assert np.all(np.abs(out.mean(0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(out.var(0) - var) < 5 * np.sqrt(2 * var**2 / n))  # Gaussian: Var(s^2) ~ 2 s^4 / n


def test_gaussian_eval_and_zero_prob_are_identity():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(nd.gaussian_dropout_forward(x, 0.5, training=False)[0], x)
    np.testing.assert_array_equal(nd.gaussian_dropout_forward(x, 0.0, rng=np.random.default_rng(0))[0], x)


# --------------------------------------------------------------------------- C20: dropout on inputs = adaptive L2


def _dropped_loss(X, y, w, mask, q):
    return float(np.sum((y - (mask * X / q) @ w) ** 2))


def test_linear_dropout_penalty_exact_enumeration_c20():
    rng = np.random.default_rng(11)
    X, w, y = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)
    drop_prob = 0.35
    q = 1 - drop_prob
    expected = 0.0
    for bits in itertools.product([False, True], repeat=X.size):
        m = np.array(bits).reshape(X.shape)
        expected += q ** m.sum() * (1 - q) ** (~m).sum() * _dropped_loss(X, y, w, m, q)
    base = float(np.sum((y - X @ w) ** 2))
    assert expected == pytest.approx(base + nd.linear_dropout_penalty(X, w, drop_prob), rel=1e-12)


def test_linear_dropout_penalty_monte_carlo_c20():
    rng = np.random.default_rng(12)
    X, w = rng.normal(size=(20, 5)), rng.normal(size=5)
    y = X @ w + 0.1 * rng.normal(size=20)
    drop_prob, n_masks = 0.5, 20_000
    q = 1 - drop_prob
    masks = nd.dropout_mask((n_masks, 20, 5), drop_prob, rng=np.random.default_rng(13))
    losses = np.sum((y - np.einsum("mnd,d->mn", masks * X / q, w)) ** 2, axis=1)
    target = float(np.sum((y - X @ w) ** 2)) + nd.linear_dropout_penalty(X, w, drop_prob)
    assert abs(losses.mean() - target) < 5 * losses.std() / np.sqrt(n_masks)
    # the penalty is the weighted ridge (q'/q) sum_j w_j^2 ||X_:j||^2, as documented
    assert nd.linear_dropout_penalty(X, w, drop_prob) == pytest.approx(float(w**2 @ np.linalg.norm(X, axis=0) ** 2))


# --------------------------------------------------------------------------- invariants (Hypothesis)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=6), elements=st.floats(-1e6, 1e6)),
    drop_prob=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_zero_exactly_where_dropped_and_exact_scale(x, drop_prob, seed):
    mask = nd.dropout_mask(x.shape, drop_prob, rng=np.random.default_rng(seed))
    out, cache = nd.dropout_forward(x, drop_prob, mask=mask)
    assert np.all(out[~mask] == 0)
    np.testing.assert_allclose(out[mask], x[mask] / (1 - drop_prob), rtol=1e-15, atol=0)
    dx = nd.dropout_backward(np.ones_like(x), cache)
    np.testing.assert_allclose(dx, mask / (1 - drop_prob), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------- bad input


X0 = np.ones((3, 4))
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: nd.dropout_mask((3,), 1.5, rng=RNG), ValueError, "drop_prob"),
        (lambda: nd.dropout_mask((3,), float("nan"), rng=RNG), ValueError, "drop_prob"),
        (lambda: nd.dropout_mask((3,), 0.5, rng=0), TypeError, "rng"),
        (lambda: nd.dropout_mask((3, -1), 0.5, rng=RNG), ValueError, "shape"),
        (lambda: nd.dropout_forward(X0, -0.1, rng=RNG), ValueError, "drop_prob"),
        (lambda: nd.dropout_forward(X0, 0.5), ValueError, "rng"),
        (lambda: nd.dropout_forward(X0, 0.5, rng=RNG, mask=np.ones((3, 4), bool)), ValueError, "mask"),
        (lambda: nd.dropout_forward(X0, 0.5, mask=np.ones((2, 4), bool)), ValueError, "mask"),
        (lambda: nd.dropout_forward(X0, 0.5, mask=np.full((3, 4), 0.5)), ValueError, "mask"),
        (lambda: nd.dropout_forward(X0, 0.5, training="yes", rng=RNG), TypeError, "training"),
        (lambda: nd.dropout_forward(np.array([np.nan]), 0.5, rng=RNG), ValueError, "x"),
        (lambda: nd.dropout_backward(np.ones((2, 2)), nd.dropout_forward(X0, 0.5, rng=RNG)[1]), ValueError, "dout"),
        (lambda: nd.apply_mask(X0, np.ones((3, 4), bool), 2.0), ValueError, "keep_prob"),
        (lambda: nd.gaussian_dropout_forward(X0, 1.0, rng=RNG), ValueError, "drop_prob"),
        (lambda: nd.gaussian_dropout_forward(X0, 0.5, noise=np.ones((5,))), ValueError, "noise"),
        (lambda: nd.gaussian_dropout_noise((3,), 1.0, rng=RNG), ValueError, "drop_prob"),
        (lambda: nd.dropconnect_forward(X0, np.ones((3, 2)), np.ones(2), 0.5, rng=RNG), ValueError, "W"),
        (lambda: nd.dropconnect_forward(X0, np.ones((4, 2)), np.ones(3), 0.5, rng=RNG), ValueError, "b"),
        (lambda: nd.dropconnect_forward(X0, np.ones((4, 2)), np.ones(2), 0.5, mask=np.ones((4, 1), bool)), ValueError, "mask"),
        (lambda: nd.dropout_moments(X0, 1.0), ValueError, "drop_prob"),
        (lambda: nd.linear_dropout_penalty(X0, np.ones(3), 0.5), ValueError, "w"),
        (lambda: nd.linear_dropout_penalty(np.ones(4), np.ones(4), 0.5), ValueError, "X"),
        (lambda: nd.linear_dropout_penalty(X0, np.ones(4), 1.0), ValueError, "drop_prob"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
