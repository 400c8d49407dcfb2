"""Oracle tests for reglib.numpy.linear: scikit-learn, normal equations, explicit hat matrix,
KKT conditions and the ISTA/FISTA convergence theorems."""

import warnings

import numpy as np
import pytest
import scipy.linalg
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from reglib.numpy import linear
from reglib.numpy.prox import soft_threshold


def sparse_problem(n, d, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[: min(5, d)] = rng.normal(scale=2.0, size=min(5, d))
    return X, X @ w + noise * rng.normal(size=n)


def sk_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y).coef_


# ----------------------------------------------------------------------------- ridge

@pytest.mark.parametrize("n, d", [(60, 8), (20, 50)])
@pytest.mark.parametrize("lam", [0.01, 1.0, 30.0])
def test_ridge_matches_sklearn_and_normal_equations(n, d, lam):
    X, y = sparse_problem(n, d, seed=n + d)
    w = linear.ridge(X, y, lam)
    assert w.shape == (d,)
    sk = Ridge(alpha=lam, fit_intercept=False, solver="svd").fit(X, y).coef_
    np.testing.assert_allclose(w, sk, rtol=1e-8, atol=1e-10)
    normal = scipy.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ y, assume_a="pos")
    np.testing.assert_allclose(w, normal, rtol=1e-8, atol=1e-10)
    # gradient of ||y - Xw||^2 + lam ||w||^2 vanishes
    np.testing.assert_allclose(-2 * X.T @ (y - X @ w) + 2 * lam * w, 0.0, atol=1e-8 * (1 + np.abs(X.T @ y).max()))


def test_ridge_lam_zero_is_min_norm_least_squares():
    X, y = sparse_problem(10, 25, seed=3)  # underdetermined: many exact fits
    w = linear.ridge(X, y, 0.0)
    np.testing.assert_allclose(w, np.linalg.pinv(X) @ y, atol=1e-10)
    np.testing.assert_allclose(X @ w, y, atol=1e-10)
    # and it is the limit of ridge as lam -> 0
    np.testing.assert_allclose(linear.ridge(X, y, 1e-9), w, atol=1e-6)


def test_ridge_is_elastic_net_with_l1_ratio_zero_and_rescaled_lam():
    X, y = sparse_problem(40, 6, seed=4)
    lam = 3.0
    np.testing.assert_allclose(linear.elastic_net(X, y, lam / 40, 0.0), linear.ridge(X, y, lam), atol=1e-9)


def test_ridge_effective_dof_equals_trace_of_hat_matrix():
    for n, d in [(30, 5), (8, 20)]:
        X, _ = sparse_problem(n, d, seed=n)
        previous = np.inf
        for lam in [0.0, 0.1, 1.0, 10.0, 1e4]:
            dof = linear.ridge_effective_dof(X, lam)
            if lam > 0:
                H = X @ np.linalg.solve(X.T @ X + lam * np.eye(d), X.T)
                assert dof == pytest.approx(np.trace(H), rel=1e-10)
            else:
                assert dof == min(n, d)  # the rank of a generic matrix
            assert dof < previous  # decreasing in lam
            previous = dof
        assert linear.ridge_effective_dof(X, 1e12) < 1e-6


# ----------------------------------------------------------------------------- lasso, elastic net

@pytest.mark.parametrize("n, d", [(100, 20), (40, 60)])
@pytest.mark.parametrize("lam", [0.02, 0.2, 1.0])
def test_lasso_matches_sklearn_including_exact_zeros(n, d, lam):
    X, y = sparse_problem(n, d, seed=7 * n + d)
    w = linear.lasso(X, y, lam)
    sk = sk_fit(Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=200_000), X, y)
    np.testing.assert_allclose(w, sk, atol=1e-6)
    np.testing.assert_array_equal(w == 0, sk == 0)
    assert 0 < np.count_nonzero(w) < d or lam == 1.0
    assert linear.lasso_objective(X, y, w, lam) <= linear.lasso_objective(X, y, sk, lam) + 1e-12


@pytest.mark.parametrize("n, d", [(80, 30), (30, 60)])
@pytest.mark.parametrize("l1_ratio", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_elastic_net_matches_sklearn_including_exact_zeros(lam, l1_ratio, n, d):
    X, y = sparse_problem(n, d, seed=11)
    w = linear.elastic_net(X, y, lam, l1_ratio)
    sk = sk_fit(ElasticNet(alpha=lam, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14, max_iter=200_000), X, y)
    np.testing.assert_allclose(w, sk, atol=1e-6)
    np.testing.assert_array_equal(w == 0, sk == 0)
    assert np.any(w == 0)


def test_lasso_kkt_conditions_and_lam_max():
    X, y = sparse_problem(50, 15, seed=5)
    n, lam = 50, 0.3
    w = linear.lasso(X, y, lam)
    corr = X.T @ (y - X @ w) / n
    on = w != 0
    np.testing.assert_allclose(corr[on], lam * np.sign(w[on]), atol=1e-9)
    assert np.all(np.abs(corr[~on]) <= lam + 1e-9)
    # above lam_max = max |X^T y| / n the solution is exactly zero, just below it is not
    lam_max = np.max(np.abs(X.T @ y)) / n
    assert not np.any(linear.lasso(X, y, lam_max * 1.0001))
    assert np.count_nonzero(linear.lasso(X, y, lam_max * 0.99)) == 1


def test_objectives_against_hand_formula():
    X = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])
    y = np.array([1.0, 0.0, 2.0])
    w = np.array([0.5, -1.0])
    r = y - X @ w  # [2.5, 1.0, -0.5]: ||r||^2 = 7.5
    assert linear.lasso_objective(X, y, w, 0.2) == pytest.approx(7.5 / 6 + 0.2 * 1.5, abs=1e-15)
    assert linear.elastic_net_objective(X, y, w, 0.2, 0.25) == pytest.approx(
        7.5 / 6 + 0.2 * 0.25 * 1.5 + 0.2 * 0.75 / 2 * 1.25, abs=1e-15
    )
    assert r @ r == 7.5


def test_nonconvergence_warns():
    X, y = sparse_problem(30, 60, seed=9)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        linear.lasso(X, y, 1e-3, max_iter=1)


def test_zero_column_and_constant_problems():
    X, y = sparse_problem(30, 4, seed=2)
    X[:, 2] = 0.0
    w = linear.lasso(X, y, 0.1)
    assert w[2] == 0.0
    np.testing.assert_allclose(np.delete(w, 2), linear.lasso(np.delete(X, 2, axis=1), y, 0.1), atol=1e-12)
    assert not np.any(linear.lasso(X, np.zeros(30), 0.1))


# ----------------------------------------------------------------------------- ISTA / FISTA

def test_lasso_ista_first_iterate_by_hand():
    X, y = sparse_problem(40, 10, seed=1)
    n, lam = 40, 0.25
    L = np.linalg.eigvalsh(X.T @ X / n).max()
    expected = soft_threshold(X.T @ y / (n * L), lam / L)
    np.testing.assert_allclose(linear.lasso_ista(X, y, lam, 1), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(linear.lasso_ista(X, y, lam, 1, accelerated=True), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(linear.lasso_ista(X, y, lam, 0), np.zeros(10))


def test_lasso_ista_second_iterate_by_hand():
    X, y = sparse_problem(40, 10, seed=1)
    n, lam = 40, 0.25
    L = np.linalg.eigvalsh(X.T @ X / n).max()
    prox_grad = lambda z: soft_threshold(z - X.T @ (X @ z - y) / (n * L), lam / L)
    w1 = prox_grad(np.zeros(10))
    np.testing.assert_allclose(linear.lasso_ista(X, y, lam, 2), prox_grad(w1), rtol=1e-11, atol=1e-13)
    # FISTA's second step: t1 = 1, t2 = (1 + sqrt 5) / 2, z2 = w1 + (t1 - 1)/t2 (w1 - w0) = w1
    np.testing.assert_allclose(linear.lasso_ista(X, y, lam, 2, accelerated=True), prox_grad(w1), rtol=1e-11, atol=1e-13)
    t2 = (1 + np.sqrt(5)) / 2
    t3 = (1 + np.sqrt(1 + 4 * t2**2)) / 2
    w2 = prox_grad(w1)
    z3 = w2 + (t2 - 1) / t3 * (w2 - w1)
    np.testing.assert_allclose(linear.lasso_ista(X, y, lam, 3, accelerated=True), prox_grad(z3), rtol=1e-11, atol=1e-13)


def test_ista_decreases_monotonically_and_both_converge_at_their_rates():
    X, y = sparse_problem(60, 30, seed=6)
    n, lam = 60, 0.1
    w_star = linear.lasso(X, y, lam)
    f_star = linear.lasso_objective(X, y, w_star, lam)
    L = np.linalg.eigvalsh(X.T @ X / n).max()
    R2 = float(w_star @ w_star)  # ||w_0 - w*||^2 with w_0 = 0
    ista = linear.lasso_ista(X, y, lam, 300, return_path=True)
    fista = linear.lasso_ista(X, y, lam, 300, accelerated=True, return_path=True)
    assert ista.shape == fista.shape == (301, 30)
    np.testing.assert_array_equal(ista[-1], linear.lasso_ista(X, y, lam, 300))
    F_ista = np.array([linear.lasso_objective(X, y, w, lam) for w in ista])
    F_fista = np.array([linear.lasso_objective(X, y, w, lam) for w in fista])
    assert np.all(np.diff(F_ista) <= 1e-13)  # ISTA never increases the objective
    k = np.arange(1, 301)
    # Beck and Teboulle (2009): ISTA gap <= L R^2 / (2k), FISTA gap <= 2 L R^2 / (k + 1)^2
    assert np.all(F_ista[1:] - f_star <= L * R2 / (2 * k) + 1e-12)
    assert np.all(F_fista[1:] - f_star <= 2 * L * R2 / (k + 1) ** 2 + 1e-12)
    assert np.all(F_ista >= f_star - 1e-12) and np.all(F_fista >= f_star - 1e-12)


def test_ista_and_fista_converge_to_the_lasso_solution():
    X, y = sparse_problem(80, 15, seed=8)
    w_star = linear.lasso(X, y, 0.2)
    np.testing.assert_allclose(linear.lasso_ista(X, y, 0.2, 3000), w_star, atol=1e-9)
    np.testing.assert_allclose(linear.lasso_ista(X, y, 0.2, 3000, accelerated=True), w_star, atol=1e-9)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda X, y: linear.ridge(X, y, -1.0), ValueError, "lam"),
        (lambda X, y: linear.ridge(X[:, 0], y, 1.0), ValueError, "X"),
        (lambda X, y: linear.ridge(X, y[:-1], 1.0), ValueError, "same number of rows"),
        (lambda X, y: linear.ridge(X, y[:, None], 1.0), ValueError, "y"),
        (lambda X, y: linear.ridge_effective_dof(X, np.nan), ValueError, "lam"),
        (lambda X, y: linear.lasso(np.where(X > 1, np.nan, X), y, 0.1), ValueError, "X"),
        (lambda X, y: linear.lasso(X, y, 0.1, max_iter=0), ValueError, "max_iter"),
        (lambda X, y: linear.lasso(X, y, 0.1, tol=0.0), ValueError, "tol"),
        (lambda X, y: linear.elastic_net(X, y, 0.1, 1.5), ValueError, "l1_ratio"),
        (lambda X, y: linear.elastic_net(X, y, "0.1", 0.5), TypeError, "lam"),
        (lambda X, y: linear.lasso_ista(X, y, 0.1, -1), ValueError, "n_iters"),
        (lambda X, y: linear.lasso_ista(X, y, 0.1, 2.0), TypeError, "n_iters"),
        (lambda X, y: linear.lasso_ista(X, y, 0.1, 2, accelerated="yes"), TypeError, "accelerated"),
        (lambda X, y: linear.lasso_objective(X, y, np.ones(3), 0.1), ValueError, "w"),
        (lambda X, y: linear.elastic_net_objective(X, y, np.ones(X.shape[1]), 0.1, -0.5), ValueError, "l1_ratio"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, pattern):
    X, y = sparse_problem(10, 4, seed=0)
    with pytest.raises(exc, match=pattern):
        call(X, y)
