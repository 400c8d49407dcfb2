"""Assignment 01 (weight penalties) judged through the grader's comparison, in this process (fast).

The solution cells and the test cells are taken from the nbgrader source notebook. Each test
cell is judged the way ``reggrader`` judges it: its visible asserts run in a namespace holding
the context cells and the solution cells (the student sees them pass or fail), and its score
comes from record-and-compare: the function is called on the cases of the cell's part in
``solutions/01_weight_penalties/grading.py``, the outputs cross a JSON boundary as data, and
``reggrader.compare.score_part`` compares them with reglib's values outside the namespace. A
cell passes when its visible asserts raise nothing and the comparison gives full points. This
shows that

(a) the reference solution passes every test cell;
(b) other correct ways of writing each function (solve / inv / SVD / lstsq / scikit-learn
    for ridge; trace or singular values for the degrees of freedom; ``np.where`` or
    ``np.maximum`` or ``np.clip`` for soft-thresholding; an ISTA written around the Gram
    matrix) pass every test cell of that function: the tolerances accept them;
(c) each named wrong implementation (the usual slips: a missing sign, ``lam`` for
    ``lam / 2``, the ``1 + 2 lam (1 - a)`` divisor, ``n``-scaling, the step or the
    threshold of ISTA, one iteration too many, ...) fails at least one test cell of its
    function, and some of them only a hidden one.

The same notebook graded end to end in the sandbox is in ``tests/test_nbgrader_pipeline.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from reggrader._recorder import decode
from reggrader.plan import split_hidden
from tests.assignments.harness import Assignment, check_kernel_never_sees_an_expected_value, \
    check_nbgrader_metadata, nbgrader_meta

A = Assignment("01_weight_penalties")
SPEC, NB, SOLUTIONS, TESTS, PLANNED = A.spec, A.nb, A.solutions, A.tests, A.planned
FUNCTIONS = ["l2_penalty", "soft_threshold", "prox_elastic_net", "ridge", "ridge_effective_dof", "lasso_ista"]


def cells_of(function: str) -> list[str]:
    return [gid for gid in TESTS if gid in (f"{function}_visible", f"{function}_hidden")]


def solution_namespace() -> dict:
    """A fresh namespace holding the context cells and every reference solution."""
    return A.namespace()


def grader_verdict(ns: dict, gid: str):
    """The grader's verdict on test cell ``gid``: record in ``ns``, compare outside it."""
    return A.verdict(gid, ns)


def run_tests(function: str, replacement=None) -> dict[str, str | None]:
    """Judge the test cells of ``function``; None for a pass, else the failure.

    The namespace holds the context cells and every reference solution; ``replacement``
    (a Python function) then takes the place of ``function``.
    """
    results = {}
    for gid, r in A.judge(cells_of(function), A.namespace(function, replacement)).items():
        problems = []
        if r["visible_error"] is not None:
            problems.append(f"visible asserts: {r['visible_error']}")
        verdict = r["verdict"]
        if verdict.score < verdict.points:
            problems.append(f"grader: {verdict.message}: " + "; ".join(r["why"]))
        results[gid] = " | ".join(problems) or None
    return results


# --------------------------------------------------------------------------- the notebook's structure

def test_every_function_has_a_solution_cell_and_a_visible_and_a_hidden_test_cell():
    assert sorted(SOLUTIONS) == sorted(FUNCTIONS)
    for function in FUNCTIONS:
        assert cells_of(function) == [f"{function}_visible", f"{function}_hidden"]
        assert re.search(rf"^def {function}\(", SOLUTIONS[function], re.M)
        assert "### BEGIN SOLUTION" in SOLUTIONS[function] and "### END SOLUTION" in SOLUTIONS[function]
        visible, hidden = TESTS[f"{function}_visible"], TESTS[f"{function}_hidden"]
        assert "HIDDEN TESTS" not in visible and "reglib" not in visible, "visible tests run anywhere"
        assert "### BEGIN HIDDEN TESTS" in hidden and hidden.rstrip().endswith("### END HIDDEN TESTS")
        # record-and-compare: the hidden region only names the cell's part in grading.py
        region = split_hidden(hidden)[1]
        assert region == [f'from reggrader.hidden import check; check("{function}_hidden")'], region
        assert "reglib" not in hidden, "the reference is called by the grader, outside the kernel"
    assert len(TESTS) == 2 * len(FUNCTIONS), "no other grade cells than the twelve test cells"
    # every graded test cell has a part (its cases set the cell's score), and no other part
    assert sorted(p.test for p in SPEC.parts) == sorted(TESTS)
    assert all(SPEC.part(gid).call == gid.rsplit("_", 1)[0] for gid in TESTS)


def test_the_kernel_never_sees_an_expected_value():
    check_kernel_never_sees_an_expected_value(A)


def test_nbgrader_metadata():
    check_nbgrader_metadata(A, autograded=19, manual=3)
    written = [c for c in NB.cells if nbgrader_meta(c).get("solution") and c.cell_type == "markdown"]
    assert len(written) == 1 and nbgrader_meta(written[0])["grade"], "one manually graded written answer"


# --------------------------------------------------------------------------- (a) the reference passes

@pytest.mark.parametrize("function", FUNCTIONS)
def test_reference_solution_passes_every_test_cell(function):
    results = run_tests(function)
    assert results and all(r is None for r in results.values()), results


# --------------------------------------------------------------------------- (b) other correct versions

def _S_where(v, t):
    v = np.asarray(v, dtype=float)
    return np.where(v > t, v - t, np.where(v < -t, v + t, 0.0))


def l2_dot(w, lam):
    w = np.asarray(w, dtype=float)
    flat = w.ravel()
    return lam / 2 * flat @ flat, lam * w


def l2_norm(w, lam):
    return lam * np.linalg.norm(w) ** 2 / 2, np.multiply(lam, w)


def st_where(v, thresh):
    return _S_where(v, thresh)


def st_clip(v, thresh):
    v = np.asarray(v, dtype=float)
    return v - np.clip(v, -thresh, thresh)


def st_max_min(v, thresh):
    v = np.asarray(v, dtype=float)
    return np.maximum(v - thresh, 0.0) + np.minimum(v + thresh, 0.0)


def enet_where(v, lam, l1_ratio):
    return _S_where(v, lam * l1_ratio) / (1 + lam - lam * l1_ratio)


def enet_clip(v, lam, l1_ratio):
    v = np.asarray(v, dtype=float)
    return (v - np.clip(v, -lam * l1_ratio, lam * l1_ratio)) * (1.0 / (1.0 + lam * (1.0 - l1_ratio)))


def ridge_inv(X, y, lam):
    return np.linalg.inv(X.T @ X + lam * np.eye(X.shape[1])) @ X.T @ y


def ridge_svd(X, y, lam):
    U, d, Vt = np.linalg.svd(X, full_matrices=False)
    return Vt.T @ (d / (d**2 + lam) * (U.T @ y))


def ridge_lstsq_augmented(X, y, lam):
    p = X.shape[1]
    A = np.vstack([X, np.sqrt(lam) * np.eye(p)])
    b = np.concatenate([y, np.zeros(p)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def ridge_dual(X, y, lam):
    if lam == 0:  # the dual form needs lam > 0; least squares otherwise
        return np.linalg.lstsq(X, y, rcond=None)[0]
    return X.T @ np.linalg.solve(X @ X.T + lam * np.eye(X.shape[0]), y)


def ridge_sklearn(X, y, lam):
    from sklearn.linear_model import LinearRegression, Ridge

    if lam == 0:
        return LinearRegression(fit_intercept=False).fit(X, y).coef_
    return Ridge(alpha=lam, fit_intercept=False, solver="svd").fit(X, y).coef_


def dof_trace(X, lam):
    H = X @ np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T)
    return np.trace(H)


def dof_eigvalsh(X, lam):
    ev = np.linalg.eigvalsh(X.T @ X)
    return np.sum(ev / (ev + lam))


def dof_inv_trace(X, lam):
    G = X.T @ X
    return float(np.trace(np.linalg.inv(G + lam * np.eye(len(G))) @ G))


def ista_gram(X, y, lam, n_iters):
    n = X.shape[0]
    G, b = X.T @ X / n, X.T @ y / n
    L = np.linalg.norm(X, 2) ** 2 / n
    w = np.zeros(X.shape[1])
    k = 0
    while k < n_iters:
        w = _S_where(w - (G @ w - b) / L, lam / L)
        k += 1
    return w


def ista_svd_step(X, y, lam, n_iters):
    n = len(y)
    step = n / np.linalg.svd(X, compute_uv=False)[0] ** 2  # 1 / L
    w = np.zeros(X.shape[1])
    for _ in range(n_iters):
        z = w + step * X.T @ (y - X @ w) / n
        w = np.sign(z) * np.maximum(np.abs(z) - step * lam, 0)
    return w


CORRECT = {
    "l2_penalty": [l2_dot, l2_norm],
    "soft_threshold": [st_where, st_clip, st_max_min],
    "prox_elastic_net": [enet_where, enet_clip],
    "ridge": [ridge_inv, ridge_svd, ridge_lstsq_augmented, ridge_dual, ridge_sklearn],
    "ridge_effective_dof": [dof_trace, dof_eigvalsh, dof_inv_trace],
    "lasso_ista": [ista_gram, ista_svd_step],
}
CORRECT_CASES = [(f, impl) for f, impls in CORRECT.items() for impl in impls]


@pytest.mark.parametrize(("function", "impl"), CORRECT_CASES, ids=[i.__name__ for _, i in CORRECT_CASES])
def test_other_correct_implementations_pass(function, impl):
    results = run_tests(function, impl)
    assert all(r is None for r in results.values()), results


# --------------------------------------------------------------------------- (c) wrong versions

def l2_value_lam(w, lam):  # lam * ||w||^2 instead of lam / 2
    w = np.asarray(w, dtype=float)
    return lam * np.sum(w**2), lam * w


def l2_grad_2lam(w, lam):  # the gradient of lam * ||w||^2 with the value of (lam / 2) ||w||^2
    w = np.asarray(w, dtype=float)
    return lam / 2 * np.sum(w**2), 2 * lam * w


def st_no_sign(v, thresh):  # forgets sign(v)
    return np.maximum(np.abs(np.asarray(v, dtype=float)) - thresh, 0)


def st_one_sided(v, thresh):  # thresholds positive entries only
    return np.maximum(np.asarray(v, dtype=float) - thresh, 0)


def st_no_clip(v, thresh):  # moves every entry by thresh, through zero
    v = np.asarray(v, dtype=float)
    return v - thresh * np.sign(v)


def enet_2lam(v, lam, l1_ratio):  # the divisor of the penalty without the 1/2
    return _S_where(v, lam * l1_ratio) / (1 + 2 * lam * (1 - l1_ratio))


def enet_threshold_lam(v, lam, l1_ratio):  # thresholds at lam, not lam * l1_ratio
    return _S_where(v, lam) / (1 + lam * (1 - l1_ratio))


def ridge_half_lam(X, y, lam):  # minimizes ||y - Xw||^2 + (lam / 2) ||w||^2
    return np.linalg.solve(X.T @ X + lam / 2 * np.eye(X.shape[1]), X.T @ y)


def ridge_n_scaled(X, y, lam):  # minimizes (1/n) ||y - Xw||^2 + lam ||w||^2
    n = X.shape[0]
    return np.linalg.solve(X.T @ X / n + lam * np.eye(X.shape[1]), X.T @ y / n)


def ridge_diagonal(X, y, lam):  # drops the off-diagonal of X^T X (right for orthogonal columns only)
    return X.T @ y / (np.sum(X**2, axis=0) + lam)


def dof_unsquared(X, lam):  # singular values where their squares belong
    d = np.linalg.svd(X, compute_uv=False)
    return np.sum(d / (d + lam))


def dof_n_scaled(X, lam):  # eigenvalues of X^T X / n
    ev = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    return np.sum(ev / (ev + lam))


def dof_diagonal(X, lam):  # the diagonal of X^T X in place of its eigenvalues
    g = np.sum(X**2, axis=0)
    return np.sum(g / (g + lam))


def _ista(X, y, lam, n_iters, *, L_scale=True, threshold_over_L=True, extra=0):
    n = X.shape[0]
    L = np.linalg.eigvalsh(X.T @ X)[-1] / (n if L_scale else 1)
    w = np.zeros(X.shape[1])
    for _ in range(n_iters + extra):
        w = _S_where(w - X.T @ (X @ w - y) / n / L, lam / L if threshold_over_L else lam)
    return w


def ista_L_unscaled(X, y, lam, n_iters):  # L = largest eigenvalue of X^T X, not of X^T X / n
    return _ista(X, y, lam, n_iters, L_scale=False)


def ista_threshold_lam(X, y, lam, n_iters):  # threshold lam instead of lam / L
    return _ista(X, y, lam, n_iters, threshold_over_L=False)


def ista_one_extra(X, y, lam, n_iters):  # n_iters + 1 steps
    return _ista(X, y, lam, n_iters, extra=1)


def ista_fista(X, y, lam, n_iters):  # the accelerated method: same limit, other iterates
    n = X.shape[0]
    L = np.linalg.eigvalsh(X.T @ X / n)[-1]
    w = z = np.zeros(X.shape[1])
    t = 1.0
    for _ in range(n_iters):
        w_new = _S_where(z - X.T @ (X @ z - y) / n / L, lam / L)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = w_new + (t - 1) / t_new * (w_new - w)
        w, t = w_new, t_new
    return w


WRONG = {
    "l2_penalty": [l2_value_lam, l2_grad_2lam],
    "soft_threshold": [st_no_sign, st_one_sided, st_no_clip],
    "prox_elastic_net": [enet_2lam, enet_threshold_lam],
    "ridge": [ridge_half_lam, ridge_n_scaled, ridge_diagonal],
    "ridge_effective_dof": [dof_unsquared, dof_n_scaled, dof_diagonal],
    "lasso_ista": [ista_L_unscaled, ista_threshold_lam, ista_one_extra, ista_fista],
}
WRONG_CASES = [(f, impl) for f, impls in WRONG.items() for impl in impls]
# wrong versions that pass the visible tests: only the hidden tests catch them
ONLY_HIDDEN_CATCHES = {"dof_diagonal"}


@pytest.mark.parametrize(("function", "impl"), WRONG_CASES, ids=[i.__name__ for _, i in WRONG_CASES])
def test_wrong_implementations_fail(function, impl):
    results = run_tests(function, impl)
    failed = {gid for gid, r in results.items() if r is not None}
    assert failed, f"{impl.__name__} passes every test cell of {function}"
    if impl.__name__ in ONLY_HIDDEN_CATCHES:
        assert failed == {f"{function}_hidden"}, results
    # the hidden tests catch every one of them (the visible ones are a help, not the judge)
    assert f"{function}_hidden" in failed, results


def test_hidden_failure_messages_name_the_case_but_no_reference_value():
    ns = solution_namespace()
    ns["ridge_effective_dof"] = dof_diagonal
    verdict = grader_verdict(ns, "ridge_effective_dof_hidden")
    assert verdict.score == 0 and verdict.message.endswith("cases passed")
    text = " ".join(f"{c.label}: {c.reason}" for c in verdict.cases)
    assert "case 1 (X of shape (25, 5), lam=" in text and "wrong values" in text
    for case in PLANNED["ridge_effective_dof_hidden"]["cases"]:
        value = decode(case["expected"]["result"])
        assert f"{value:.3g}" not in text and f"{value:.6f}" not in text, value


# --------------------------------------------------------------------------- the reference, by optimality

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import array_shapes, arrays  # noqa: E402


SOLUTION = solution_namespace()


@settings(max_examples=40, deadline=None)
@given(v=arrays(np.float64, array_shapes(max_dims=2, max_side=6), elements=st.floats(-10, 10)),
       lam=st.floats(0.0, 5.0), l1_ratio=st.floats(0.0, 1.0))
def test_solution_prox_satisfies_the_optimality_condition(v, lam, l1_ratio):
    """w = prox(v) iff v - w - lam (1 - a) w lies in lam a * (subdifferential of |.|)(w), entrywise."""
    w = SOLUTION["prox_elastic_net"](v, lam, l1_ratio)
    r = v - w - lam * (1 - l1_ratio) * w
    t = lam * l1_ratio
    nz = w != 0
    assert np.allclose(r[nz], t * np.sign(w[nz]), atol=1e-9)
    assert np.all(np.abs(r[~nz]) <= t + 1e-9)
    assert np.array_equal(SOLUTION["soft_threshold"](v, t), SOLUTION["prox_elastic_net"](v, t, 1.0))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), p=st.integers(1, 12),
       lam=st.floats(1e-3, 1e3))
def test_solution_ridge_solves_the_normal_equations_and_dof_is_the_hat_trace(seed, n, p, lam):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, p)), rng.normal(size=n)
    w = SOLUTION["ridge"](X, y, lam)
    # the gradient of ||y - Xw||^2 + lam ||w||^2 vanishes: X^T (y - X w) = lam w
    assert np.allclose(X.T @ (y - X @ w), lam * w, atol=1e-8 * (1 + np.abs(X.T @ y).max()))
    hat = X @ np.linalg.pinv(X.T @ X + lam * np.eye(p)) @ X.T
    dof = SOLUTION["ridge_effective_dof"](X, lam)
    assert np.isclose(dof, np.trace(hat), rtol=1e-8, atol=1e-10)
    assert 0 <= dof <= min(n, p)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lam_frac=st.floats(0.01, 1.5))
def test_solution_ista_descends_and_reaches_the_lasso_optimality_condition(seed, lam_frac):
    rng = np.random.default_rng(seed)
    n, p = 30, 6
    X, y = rng.normal(size=(n, p)), rng.normal(size=n)
    lam = lam_frac * np.abs(X.T @ y).max() / n  # lam_frac >= 1 gives w = 0
    F = lambda w: np.sum((y - X @ w) ** 2) / (2 * n) + lam * np.abs(w).sum()  # noqa: E731
    values = [F(SOLUTION["lasso_ista"](X, y, lam, k)) for k in range(8)]
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))
    w = SOLUTION["lasso_ista"](X, y, lam, 5000)
    g = X.T @ (y - X @ w) / n  # KKT: g = lam sign(w) on the support, |g| <= lam off it
    nz = w != 0
    assert np.allclose(g[nz], lam * np.sign(w[nz]), atol=1e-6)
    assert np.all(np.abs(g[~nz]) <= lam + 1e-6)


# --------------------------------------------------------------------------- visible scores vs visible asserts

@pytest.mark.parametrize(("function", "impl"), CORRECT_CASES + WRONG_CASES,
                         ids=[i.__name__ for _, i in CORRECT_CASES + WRONG_CASES])
def test_a_visible_point_is_never_given_for_failing_visible_asserts(function, impl):
    """Each visible cell's part compares at least what its asserts check (values where they
    check only a shape or a property), so a function failing the asserts a student sees never
    gets that cell's point."""
    ns = A.namespace(function, impl)
    gid = f"{function}_visible"
    asserts_pass = A.visible_error(gid, ns) is None
    verdict = grader_verdict(ns, gid)
    assert asserts_pass or verdict.score == 0, (impl.__name__, verdict.message)
