"""Oracle tests for reglib.numpy.prox.

Oracles: brute-force minimization of ``f(x) + 1/2 ||x - v||^2`` with scipy (the penalties
themselves come from reglib.numpy.penalties, whose scalings are checked in
test_penalties.py), the dual of the fused-lasso prox solved by L-BFGS-B, closed forms,
and optimality conditions checked with Hypothesis.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import ortho_group

from reglib.numpy import penalties as P
from reglib.numpy import prox

floats = st.floats(-5, 5, allow_subnormal=False)
vectors = arrays(np.float64, st.integers(1, 8), elements=floats)


def brute_force_separable(v, f1d):
    """argmin_x sum_i f1d(x_i) + (x_i - v_i)^2 / 2, one bounded Brent search per coordinate."""
    out = np.empty_like(v)
    for i, vi in enumerate(v):
        res = minimize_scalar(lambda x: f1d(x) + 0.5 * (x - vi) ** 2, bounds=(-abs(vi) - 1, abs(vi) + 1),
                              method="bounded", options={"xatol": 1e-12})
        out[i] = res.x
    return out


def brute_force(v, f, x0=None):
    """argmin_x f(x) + 1/2 ||x - v||^2 by Powell's method (derivative free), from v."""
    obj = lambda x: f(x.reshape(v.shape)) + 0.5 * np.sum((x.reshape(v.shape) - v) ** 2)
    start = v.ravel() if x0 is None else x0.ravel()
    res = minimize(obj, start, method="Powell", options={"xtol": 1e-12, "ftol": 1e-14, "maxfev": 200000})
    return res.x.reshape(v.shape), obj


# ----------------------------------------------------------------------------- soft-thresholding

def test_soft_threshold_hand_worked():
    v = np.array([3.0, -0.5, -2.0, 1.0, 0.0])
    np.testing.assert_array_equal(prox.soft_threshold(v, 1.0), [2.0, 0.0, -1.0, 0.0, 0.0])
    # one threshold per entry
    np.testing.assert_array_equal(prox.soft_threshold(v, np.array([0, 0, 3, 0.5, 1])), [3.0, -0.5, 0.0, 0.5, 0.0])
    # a threshold per column, broadcast over rows
    V = np.array([[2.0, -2.0], [0.5, 4.0]])
    np.testing.assert_array_equal(prox.soft_threshold(V, np.array([1.0, 3.0])), [[1.0, 0.0], [0.0, 1.0]])


def test_soft_threshold_is_the_prox_of_the_l1_penalty(rng):
    v = rng.normal(scale=2, size=12)
    for t in (0.0, 0.3, 1.5):
        expected = brute_force_separable(v, lambda x: P.l1(np.array([x]), t))
        np.testing.assert_allclose(prox.soft_threshold(v, t), expected, atol=1e-8)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(v=vectors, t=st.floats(0, 4))
def test_soft_threshold_optimality_condition(v, t):
    """0 is in (x - v) + t * d|x|: x - v + t sign(x) = 0 where x != 0, and |v| <= t where x = 0."""
    x = prox.soft_threshold(v, t)
    nz = x != 0
    np.testing.assert_allclose(x[nz] - v[nz] + t * np.sign(x[nz]), 0.0, atol=1e-12)
    assert np.all(np.abs(v[~nz]) <= t + 1e-12)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(data=st.data(), t=st.floats(0, 3))
def test_proxes_are_nonexpansive(data, t):
    n = data.draw(st.integers(2, 8))
    u = data.draw(arrays(np.float64, n, elements=floats))
    v = data.draw(arrays(np.float64, n, elements=floats))
    groups = [np.arange(0, n // 2), np.arange(n // 2, n)]
    ops = [
        lambda z: prox.soft_threshold(z, t),
        lambda z: prox.prox_l2(z, t),
        lambda z: prox.prox_elastic_net(z, t, 0.5),
        lambda z: prox.prox_group_lasso(z, groups, t),
        lambda z: prox.prox_tv1d(z, t),
        lambda z: prox.prox_fused_lasso(z, 0.5 * t, t),
        lambda z: prox.project_l2_ball(z, t),
        lambda z: prox.prox_nuclear(z.reshape(2, -1) if n % 2 == 0 else z[None, :], t),
    ]
    for op in ops:
        assert np.linalg.norm(op(u) - op(v)) <= np.linalg.norm(u - v) * (1 + 1e-12) + 1e-12


# ----------------------------------------------------------------------------- l2, elastic net

def test_prox_l2_matches_brute_force(rng):
    v = rng.normal(size=6)
    expected, _ = brute_force(v, lambda x: P.l2(x, 0.8))
    np.testing.assert_allclose(prox.prox_l2(v, 0.8), expected, atol=1e-7)
    np.testing.assert_allclose(prox.prox_l2(v, 0.8), v / 1.8, rtol=1e-15)


@pytest.mark.parametrize("lam, a", [(0.5, 0.3), (1.2, 0.7), (2.0, 0.0), (0.7, 1.0)])
def test_prox_elastic_net_matches_brute_force_prox_of_elastic_net(rng, lam, a):
    v = rng.normal(scale=2, size=20)
    expected = brute_force_separable(v, lambda x: P.elastic_net(np.array([x]), lam, a))
    np.testing.assert_allclose(prox.prox_elastic_net(v, lam, a), expected, atol=1e-8)


def test_claim_c13_seed_denominator_solves_a_different_prox(rng):
    """Claim C13: with our penalty lam(a|x| + (1-a)/2 x^2) the denominator is 1 + lam(1-a).

    The formula with 1 + 2 lam (1-a) is the prox of lam(a|x| + (1-a) x^2) (no 1/2), and
    does not solve our prox problem.
    """
    lam, a = 1.0, 0.5
    v = rng.normal(scale=3, size=30)
    ours = prox.prox_elastic_net(v, lam, a)
    other = prox.soft_threshold(v, lam * a) / (1 + 2 * lam * (1 - a))
    brute_ours = brute_force_separable(v, lambda x: P.elastic_net(np.array([x]), lam, a))
    brute_other = brute_force_separable(v, lambda x: lam * (a * abs(x) + (1 - a) * x * x))
    np.testing.assert_allclose(ours, brute_ours, atol=1e-8)
    np.testing.assert_allclose(other, brute_other, atol=1e-8)
    assert np.max(np.abs(other - brute_ours)) > 0.1  # the other denominator is clearly wrong here
    # the objective of our problem is strictly worse at the other formula's point
    obj = lambda x: P.elastic_net(x, lam, a) + 0.5 * np.sum((x - v) ** 2)
    assert obj(other) > obj(ours) + 1e-3


# ----------------------------------------------------------------------------- group lasso

def test_prox_group_lasso_hand_worked():
    v = np.array([3.0, 4.0, 0.3, -0.4, 7.0])
    groups = [np.array([0, 1]), np.array([2, 3])]  # index 4 in no group
    out = prox.prox_group_lasso(v, groups, 1.0)
    # group 0: norm 5 > sqrt(2) -> scaled by 1 - sqrt(2)/5; group 1: norm 0.5 <= sqrt(2) -> 0
    np.testing.assert_allclose(out, [3 * (1 - np.sqrt(2) / 5), 4 * (1 - np.sqrt(2) / 5), 0, 0, 7.0], rtol=1e-15)
    assert out[2] == 0.0 and out[3] == 0.0  # the whole group is exactly zero
    assert out[4] == 7.0  # ungrouped indices pass through unchanged


def test_prox_group_lasso_matches_brute_force(rng):
    v = rng.normal(size=7)
    groups = [np.array([0, 3, 5]), np.array([1, 2]), np.array([6])]
    for lam in (0.2, 0.9):
        ours = prox.prox_group_lasso(v, groups, lam)
        f = lambda x: P.group_lasso(x, groups, lam)
        theirs, obj = brute_force(v, f, x0=ours + 0.05)
        assert obj(ours) <= obj(theirs) + 1e-12
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(v=arrays(np.float64, 6, elements=floats), lam=st.floats(0, 3))
def test_prox_group_lasso_optimality_conditions(v, lam):
    groups = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5])]
    x = prox.prox_group_lasso(v, groups, lam)
    for g in groups:
        t = lam * np.sqrt(g.size)
        nx = np.linalg.norm(x[g])
        if nx == 0:
            assert np.linalg.norm(v[g]) <= t + 1e-12
        else:  # x_g - v_g + t x_g / ||x_g|| = 0
            np.testing.assert_allclose(x[g] - v[g] + t * x[g] / nx, 0.0, atol=1e-10)


def test_group_lasso_zeroes_whole_groups_where_lasso_zeroes_entries(rng):
    v = rng.normal(size=40)
    groups = [np.arange(k, k + 4) for k in range(0, 40, 4)]
    out = prox.prox_group_lasso(v, groups, 0.9)
    blocks = out.reshape(10, 4)
    zero_groups = np.all(blocks == 0, axis=1)
    assert zero_groups.any() and not zero_groups.all()
    assert np.all(np.all(blocks != 0, axis=1) | zero_groups)  # no group is partly zero
    assert np.any(prox.soft_threshold(v, 0.9).reshape(10, 4)[~zero_groups] == 0)  # entrywise would be


# ----------------------------------------------------------------------------- nuclear norm

def test_prox_nuclear_on_a_matrix_with_known_svd():
    U = ortho_group.rvs(4, random_state=0)[:, :3]
    V = ortho_group.rvs(3, random_state=1)
    W = U @ np.diag([3.0, 1.0, 0.5]) @ V.T
    out = prox.prox_nuclear(W, 0.8)
    np.testing.assert_allclose(out, U @ np.diag([2.2, 0.2, 0.0]) @ V.T, atol=1e-13)
    assert np.linalg.matrix_rank(out) == 2
    assert np.linalg.matrix_rank(prox.prox_nuclear(W, 1.5)) == 1
    np.testing.assert_allclose(prox.prox_nuclear(W, 3.0), 0.0, atol=1e-14)


def test_prox_nuclear_matches_brute_force(rng):
    """Brute force through a smooth reformulation: ||X||_* = min_{X = A B^T} (||A||^2 + ||B||^2) / 2.

    So the prox problem equals min_{A, B} lam (||A||^2 + ||B||^2) / 2 + ||A B^T - W||^2 / 2, a
    smooth problem (with factors of full inner size its local minima are global) that BFGS
    solves without any SVD.
    """
    m, n = 4, 3
    W = rng.normal(size=(m, n))
    for lam in (0.3, 1.0, 2.0):
        def obj(z):
            A, B = z[: m * n].reshape(m, n), z[m * n :].reshape(n, n)
            R = A @ B.T - W
            return 0.5 * lam * (np.sum(A * A) + np.sum(B * B)) + 0.5 * np.sum(R * R)

        def grad(z):
            A, B = z[: m * n].reshape(m, n), z[m * n :].reshape(n, n)
            R = A @ B.T - W
            return np.concatenate([(lam * A + R @ B).ravel(), (lam * B + R.T @ A).ravel()])

        z0 = rng.normal(scale=0.5, size=m * n + n * n)
        res = minimize(obj, z0, jac=grad, method="BFGS", options={"gtol": 1e-11, "maxiter": 20000})
        A, B = res.x[: m * n].reshape(m, n), res.x[m * n :].reshape(n, n)
        ours = prox.prox_nuclear(W, lam)
        np.testing.assert_allclose(ours, A @ B.T, atol=1e-6)
        # and our point is no worse for the original nonsmooth objective than any nearby point
        f = lambda X: P.nuclear(X, lam) + 0.5 * np.sum((X - W) ** 2)
        for _ in range(20):
            assert f(ours) <= f(ours + 1e-3 * rng.normal(size=W.shape)) + 1e-12


@settings(max_examples=30, deadline=None, derandomize=True)
@given(W=arrays(np.float64, (4, 3), elements=floats), lam=st.floats(0, 3))
def test_prox_nuclear_lowers_rank_and_thresholds_singular_values(W, lam):
    s = np.linalg.svd(W, compute_uv=False)
    out = prox.prox_nuclear(W, lam)
    s_out = np.linalg.svd(out, compute_uv=False)
    np.testing.assert_allclose(s_out, np.maximum(s - lam, 0.0), atol=1e-10)
    assert np.linalg.matrix_rank(out, tol=1e-9) <= np.linalg.matrix_rank(W, tol=1e-9)


# ----------------------------------------------------------------------------- total variation, fused lasso

def fused_prox_by_dual(v, lam1, lam2):
    """Independent oracle: the dual of the fused-lasso prox is a box-constrained QP.

    With A = [lam1 I; lam2 D] (D the first-difference matrix), the prox of ||A x||_1 is
    x = v - A^T z where z minimizes 1/2 ||v - A^T z||^2 over ||z||_inf <= 1.
    """
    n = v.size
    A = np.vstack([lam1 * np.eye(n), lam2 * np.diff(np.eye(n), axis=0)])
    f = lambda z: 0.5 * np.sum((v - A.T @ z) ** 2)
    g = lambda z: -A @ (v - A.T @ z)
    res = minimize(f, np.zeros(A.shape[0]), jac=g, method="L-BFGS-B", bounds=[(-1, 1)] * A.shape[0],
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 50000})
    return v - A.T @ res.x


def test_prox_tv1d_hand_worked():
    # one step of height 2: with lam = 0.5 each side moves by lam / (segment length)
    v = np.array([0.0, 0.0, 2.0, 2.0])
    np.testing.assert_allclose(prox.prox_tv1d(v, 0.5), [0.25, 0.25, 1.75, 1.75], atol=1e-15)
    # a large lam fuses everything to the mean
    v = np.array([1.0, 5.0, -2.0, 4.0])
    np.testing.assert_allclose(prox.prox_tv1d(v, 100.0), np.full(4, 2.0), atol=1e-14)
    np.testing.assert_array_equal(prox.prox_tv1d(v, 0.0), v)
    np.testing.assert_array_equal(prox.prox_tv1d(np.array([3.0]), 1.0), [3.0])


@settings(max_examples=50, deadline=None, derandomize=True)
@given(v=arrays(np.float64, st.integers(2, 30), elements=st.floats(-5, 5, allow_subnormal=False) | st.integers(-2, 2).map(float)),
       lam=st.floats(0.001, 10))
def test_prox_tv1d_optimality_certificate(v, lam):
    """KKT: x - v + D^T u = 0 with u_i = lam sign(x_{i+1} - x_i) at jumps, |u_i| <= lam.

    u_i = -sum_{j <= i} (v_j - x_j); it must also vanish after the last entry.
    """
    x = prox.prox_tv1d(v, lam)
    u = -np.cumsum(v - x)
    scale = 1e-10 * (1 + np.abs(v).sum())
    assert abs(u[-1]) <= scale
    u, d = u[:-1], np.diff(x)
    assert np.all(np.abs(u) <= lam + scale)
    jumps = np.abs(d) > 1e-9
    np.testing.assert_allclose(u[jumps], lam * np.sign(d[jumps]), atol=scale)
    assert np.mean(x) == pytest.approx(np.mean(v), abs=1e-12 * (1 + np.abs(v).max()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(v=arrays(np.float64, st.integers(1, 10), elements=st.floats(-4, 4, allow_subnormal=False) | st.integers(-2, 2).map(float)),
       lam1=st.sampled_from([0.0, 0.2, 1.0]), lam2=st.sampled_from([0.05, 0.5, 3.0]))
def test_prox_fused_lasso_matches_the_dual_solution(v, lam1, lam2):
    ours = prox.prox_fused_lasso(v, lam1, lam2)
    oracle = fused_prox_by_dual(v, lam1, lam2)
    obj = lambda x: P.fused_lasso(x, lam1, lam2) + 0.5 * np.sum((x - v) ** 2)
    assert obj(ours) <= obj(oracle) + 1e-12
    np.testing.assert_allclose(ours, oracle, atol=1e-5)


def test_prox_fused_lasso_brute_force_and_piecewise_constant(rng):
    steps = np.repeat([0.0, 2.0, -1.0, 0.0], 10)
    v = steps + 0.3 * rng.normal(size=40)
    ours = prox.prox_fused_lasso(v, 0.1, 1.0)
    oracle = fused_prox_by_dual(v, 0.1, 1.0)
    np.testing.assert_allclose(ours, oracle, atol=1e-5)
    n_levels = len(np.unique(np.round(ours, 12)))
    assert n_levels <= 10 < len(np.unique(v))  # few constant pieces instead of 40 values
    assert np.sum(ours == 0) > 0  # and exact zeros from the l1 part
    # special cases
    np.testing.assert_array_equal(prox.prox_fused_lasso(v, 0.3, 0.0), prox.soft_threshold(v, 0.3))
    np.testing.assert_allclose(prox.prox_fused_lasso(v, 0.0, 0.7), prox.prox_tv1d(v, 0.7), rtol=0, atol=0)


# ----------------------------------------------------------------------------- projections

def test_project_max_norm_axis_semantics():
    W = np.array([[3.0, 0.1], [4.0, 0.0]])  # column norms 5 and 0.1, row norms ~3.0 and 4
    out = prox.project_max_norm(W, 1.0, axis=0)
    np.testing.assert_allclose(out, [[0.6, 0.1], [0.8, 0.0]], rtol=1e-15)
    out_rows = prox.project_max_norm(W, 1.0, axis=1)
    np.testing.assert_allclose(np.linalg.norm(out_rows, axis=1), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(prox.project_max_norm(W, 1.0, axis=None), W / np.linalg.norm(W), rtol=1e-15)
    np.testing.assert_array_equal(prox.project_max_norm(np.zeros((2, 3)), 1.0), np.zeros((2, 3)))


def test_project_l2_ball_matches_constrained_minimization(rng):
    v = rng.normal(size=5) * 3
    res = minimize(lambda x: np.sum((x - v) ** 2), np.zeros(5), method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda x: 1.5**2 - x @ x}], options={"ftol": 1e-14})
    np.testing.assert_allclose(prox.project_l2_ball(v, 1.5), res.x, atol=1e-6)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(W=arrays(np.float64, (3, 4), elements=floats), r=st.floats(0.1, 5), axis=st.sampled_from([0, 1, -1, None]),
       Z=arrays(np.float64, (3, 4), elements=floats))
def test_projections_are_idempotent_feasible_and_variational(W, r, axis, Z):
    P1 = prox.project_max_norm(W, r, axis=axis)
    np.testing.assert_allclose(prox.project_max_norm(P1, r, axis=axis), P1, rtol=1e-15, atol=0)
    norms = np.linalg.norm(P1, axis=axis)
    assert np.all(norms <= r * (1 + 1e-12))
    # slices already inside the ball are unchanged
    inside = np.linalg.norm(W, axis=axis, keepdims=True) <= r
    np.testing.assert_array_equal(np.where(inside, P1, 0), np.where(inside, W, 0))
    # projection onto a convex set: <W - P(W), Z' - P(W)> <= 0 for every feasible Z' (per slice)
    Zf = prox.project_max_norm(Z, r, axis=axis)
    inner = np.sum((W - P1) * (Zf - P1), axis=axis)
    assert np.all(inner <= 1e-9 * (1 + np.abs(W).max() ** 2))
    # the whole-array versions agree
    w = W.ravel()
    np.testing.assert_allclose(prox.project_l2_ball(w, r), prox.project_max_norm(w, r, axis=None), rtol=1e-15)
    np.testing.assert_allclose(prox.project_l2_ball(prox.project_l2_ball(w, r), r), prox.project_l2_ball(w, r), rtol=1e-15)


def test_dtype_and_no_mutation():
    v = np.array([1.0, -3.0], dtype=np.float32)
    before = v.copy()
    for out in (prox.soft_threshold(v, 0.5), prox.prox_l2(v, 1.0), prox.prox_elastic_net(v, 1.0, 0.5),
                prox.prox_fused_lasso(v, 0.1, 0.1), prox.project_l2_ball(v, 1.0), prox.project_max_norm(v, 1.0)):
        assert out.dtype == np.float32
    np.testing.assert_array_equal(v, before)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: prox.soft_threshold([1.0], -0.1), ValueError, "thresh"),
        (lambda: prox.soft_threshold([1.0, 2.0], np.array([0.1, -1.0])), ValueError, "thresh"),
        (lambda: prox.soft_threshold(np.ones(3), np.ones(2)), ValueError, "thresh"),
        (lambda: prox.soft_threshold([np.nan], 0.1), ValueError, "v"),
        (lambda: prox.prox_l2([1.0], -1), ValueError, "lam"),
        (lambda: prox.prox_elastic_net([1.0], 1.0, 2.0), ValueError, "l1_ratio"),
        (lambda: prox.prox_group_lasso([1.0, 2.0], [[0, 5]], 1.0), ValueError, "groups"),
        (lambda: prox.prox_group_lasso([1.0, 2.0], [[0.5]], 1.0), TypeError, "groups"),
        (lambda: prox.prox_nuclear(np.ones(3), 1.0), ValueError, "W"),
        (lambda: prox.prox_tv1d(np.ones((2, 2)), 1.0), ValueError, "v"),
        (lambda: prox.prox_fused_lasso(np.ones(3), 1.0, -1.0), ValueError, "lam2"),
        (lambda: prox.prox_fused_lasso(np.ones(3), "a", 1.0), TypeError, "lam1"),
        (lambda: prox.project_max_norm(np.ones((2, 2)), 0.0), ValueError, "max_norm"),
        (lambda: prox.project_max_norm(np.ones((2, 2)), 1.0, axis=2), ValueError, "axis"),
        (lambda: prox.project_max_norm(np.ones((2, 2)), 1.0, axis=0.5), TypeError, "axis"),
        (lambda: prox.project_l2_ball(np.ones(2), -1.0), ValueError, "radius"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
