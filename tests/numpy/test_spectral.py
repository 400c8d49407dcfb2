"""reglib.numpy.spectral against SVD, torch.linalg, closed-form convergence rates."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reglib.numpy import spectral

torch = pytest.importorskip("torch")


def _with_spectrum(s, m, n, rng):
    """A matrix (m, n) with singular values s and random singular vectors."""
    r = len(s)
    U, _ = np.linalg.qr(rng.normal(size=(m, r)))
    V, _ = np.linalg.qr(rng.normal(size=(n, r)))
    return U @ np.diag(s) @ V.T, U[:, 0], V[:, 0]


@pytest.mark.parametrize("shape", [(20, 12), (7, 30), (15, 15), (1, 5), (5, 1)])
def test_power_iteration_matches_svd_and_torch(shape, rng):
    W = rng.normal(size=shape)
    sigma, u, v = spectral.power_iteration(W, 500, rng=rng)
    exact = np.linalg.svd(W, compute_uv=False)[0]
    oracle = torch.linalg.matrix_norm(torch.from_numpy(W), ord=2).item()
    assert sigma == pytest.approx(oracle, rel=1e-10)
    assert spectral.spectral_norm(W) == pytest.approx(oracle, rel=1e-12)
    assert exact == pytest.approx(oracle, rel=1e-12)
    # consistent singular pair: W v = sigma u and W^T u = sigma v, unit vectors
    assert np.linalg.norm(u) == pytest.approx(1) and np.linalg.norm(v) == pytest.approx(1)
    np.testing.assert_allclose(W @ v, sigma * u, atol=1e-8 * sigma)
    np.testing.assert_allclose(W.T @ u, sigma * v, atol=1e-8 * sigma)


def test_power_iteration_start_vector_and_resumption(rng):
    W = rng.normal(size=(6, 4))
    u0 = rng.normal(size=6)
    a = spectral.power_iteration(W, 7, u0=u0)
    # the same start vector gives the same result; scaling u0 does not matter
    b = spectral.power_iteration(W, 7, u0=3.5 * u0)
    assert a[0] == pytest.approx(b[0], rel=1e-14)
    # iterating 3 then 4 steps equals 7 steps (this is how u persists across training steps)
    _, u3, _ = spectral.power_iteration(W, 3, u0=u0)
    c = spectral.power_iteration(W, 4, u0=u3)
    assert c[0] == pytest.approx(a[0], rel=1e-13)
    np.testing.assert_allclose(c[1], a[1], atol=1e-13)
    np.testing.assert_allclose(c[2], a[2], atol=1e-13)
    # rng draws a start vector reproducibly
    d = spectral.power_iteration(W, 5, rng=np.random.default_rng(3))
    e = spectral.power_iteration(W, 5, rng=np.random.default_rng(3))
    assert d[0] == e[0]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 8), n=st.integers(1, 8))
def test_estimate_is_monotone_and_below_sigma1(seed, m, n):
    """Claim C28: u^T W v never decreases along the iterations and stays <= sigma_1."""
    r = np.random.default_rng(seed)
    W = r.normal(size=(m, n))
    s1 = np.linalg.svd(W, compute_uv=False)[0]
    u = r.normal(size=m)
    prev = -np.inf
    for _ in range(30):
        sigma, u, v = spectral.power_iteration(W, 1, u0=u)
        assert sigma >= prev - 1e-12 * s1
        assert sigma <= s1 * (1 + 1e-12)
        assert sigma == pytest.approx(np.linalg.norm(W @ v), rel=1e-12)
        prev = sigma


def test_convergence_rate_matches_singular_value_ratio(rng):
    """With ratio q = sigma_2/sigma_1: direction error ~ q^(2k), estimate error ~ q^(4k)."""
    s = np.array([3.0, 2.4, 0.9, 0.5, 0.2])
    q = s[1] / s[0]
    W, u1, v1 = _with_spectrum(s, 12, 9, rng)
    u = rng.normal(size=12)
    sig_err, dir_err = [], []
    for _ in range(18):
        sigma, u, v = spectral.power_iteration(W, 1, u0=u)
        sig_err.append(s[0] - sigma)
        dir_err.append(np.linalg.norm(v - (v @ v1) * v1))  # sine of the angle to v1
    sig_err, dir_err = np.array(sig_err), np.array(dir_err)
    assert np.all(sig_err > 0)
    # per-step contraction factors, once the third singular value has died out
    np.testing.assert_allclose(sig_err[9:] / sig_err[8:-1], q**4, rtol=0.02)
    np.testing.assert_allclose(dir_err[9:] / dir_err[8:-1], q**2, rtol=0.02)
    # and a slow-gap matrix converges much more slowly than a fast-gap one
    W_slow, *_ = _with_spectrum(np.array([1.0, 0.99, 0.5]), 8, 8, rng)
    W_fast, *_ = _with_spectrum(np.array([1.0, 0.3, 0.1]), 8, 8, rng)
    u0 = rng.normal(size=8)
    err_slow = 1.0 - spectral.power_iteration(W_slow, 10, u0=u0)[0]
    err_fast = 1.0 - spectral.power_iteration(W_fast, 10, u0=u0)[0]
    assert err_fast < 1e-12 < 1e-6 < err_slow


def test_spectral_normalize_has_unit_norm(rng):
    W = rng.normal(size=(10, 6)) * 5
    one_step = spectral.spectral_normalize(W, 1, rng=np.random.default_rng(0))
    assert spectral.spectral_norm(one_step) >= 1.0 - 1e-12  # the estimate is from below
    converged = spectral.spectral_normalize(W, 300, rng=np.random.default_rng(0))
    assert spectral.spectral_norm(converged) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(converged * spectral.spectral_norm(W), W, rtol=1e-9)


def test_spectral_radius_against_torch_and_the_erratum_examples(rng):
    """Claim C18: rho(W) = max|eig| <= ||W||_2; equal for normal matrices, not in general."""
    W = rng.normal(size=(6, 6))
    oracle = torch.linalg.eigvals(torch.from_numpy(W)).abs().max().item()
    assert spectral.spectral_radius(W) == pytest.approx(oracle, rel=1e-12)
    sym = W + W.T
    assert spectral.spectral_radius(sym) == pytest.approx(spectral.spectral_norm(sym), rel=1e-12)
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    assert spectral.spectral_radius(nilpotent) == 0.0 and spectral.spectral_norm(nilpotent) == 1.0
    shear = np.array([[1.0, 10.0], [0.0, 1.0]])
    assert spectral.spectral_radius(shear) == pytest.approx(1.0)
    assert spectral.spectral_norm(shear) == pytest.approx(5 + np.sqrt(26))  # closed form


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7), normal=st.booleans())
def test_spectral_radius_at_most_spectral_norm(seed, n, normal):
    r = np.random.default_rng(seed)
    W = r.normal(size=(n, n)) * r.uniform(0.1, 10)
    if normal:  # an orthogonal matrix times a scalar is normal
        W = np.linalg.qr(W)[0] * r.uniform(0.1, 10)
    rho, norm2 = spectral.spectral_radius(W), spectral.spectral_norm(W)
    assert rho <= norm2 * (1 + 1e-10)
    if normal:
        assert rho == pytest.approx(norm2, rel=1e-10)


def _mlp(weights, biases, x):
    h = x
    for k, (W, b) in enumerate(zip(weights, biases)):
        h = h @ W.T + b
        if k < len(weights) - 1:
            h = np.maximum(h, 0)
    return h


def test_lipschitz_upper_bound_dominates_measured_ratios(rng):
    """Claim C28: the product of spectral norms bounds ||f(x)-f(y)|| / ||x-y||."""
    sizes = [10, 32, 32, 4]
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=o) for o in sizes[1:]]
    bound = spectral.lipschitz_upper_bound(weights)
    expected = np.prod([torch.linalg.matrix_norm(torch.from_numpy(w), ord=2).item() for w in weights])
    assert bound == pytest.approx(expected, rel=1e-12)
    x1 = rng.normal(size=(2000, 10))
    # far pairs and near pairs (the latter probe the local Jacobian norm)
    for x2 in (rng.normal(size=(2000, 10)), x1 + 1e-4 * rng.normal(size=(2000, 10))):
        ratios = np.linalg.norm(_mlp(weights, biases, x1) - _mlp(weights, biases, x2), axis=1) / np.linalg.norm(
            x1 - x2, axis=1
        )
        assert ratios.max() <= bound
        assert ratios.max() > 0.05 * bound  # not vacuous by orders of magnitude here
    # transposed layouts give the same bound
    assert spectral.lipschitz_upper_bound([w.T for w in weights]) == pytest.approx(bound, rel=1e-12)


_W = np.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: spectral.power_iteration(np.ones(3), rng=np.random.default_rng(0)), ValueError, "W"),
        (lambda: spectral.power_iteration(_W, 0, rng=np.random.default_rng(0)), ValueError, "n_iters"),
        (lambda: spectral.power_iteration(_W, 5, u0=np.ones(4)), ValueError, "u0"),
        (lambda: spectral.power_iteration(_W, 5, u0=np.zeros(3)), ValueError, "u0"),
        (lambda: spectral.power_iteration(_W, 5), TypeError, "u0"),
        (lambda: spectral.power_iteration(_W, 5, u0=np.ones(3), rng=np.random.default_rng(0)), ValueError, "u0"),
        (lambda: spectral.power_iteration(_W, 5, rng=0), TypeError, "rng"),
        (lambda: spectral.power_iteration(_W * np.nan, 5, u0=np.ones(3)), ValueError, "W"),
        (lambda: spectral.spectral_normalize(np.zeros((3, 3)), 5, u0=np.ones(3)), ValueError, "W"),
        (lambda: spectral.spectral_radius(_W), ValueError, "W"),
        (lambda: spectral.spectral_norm(np.ones((2, 2, 2))), ValueError, "W"),
        (lambda: spectral.lipschitz_upper_bound([]), ValueError, "weights"),
        (lambda: spectral.lipschitz_upper_bound(_W), TypeError, "weights"),
        (lambda: spectral.lipschitz_upper_bound([_W, np.ones(3)]), ValueError, r"weights\[1\]"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
