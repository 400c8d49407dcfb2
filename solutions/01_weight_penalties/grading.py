"""Record-and-compare tests of assignment 01 (weight penalties): cases, references, rules.

Read by the grader only (``reggrader``), never released (``nbgrader_config.py`` ignores
this file). Every graded test cell of ``01_weight_penalties.ipynb`` has a part here:

* the ``*_visible`` cells are scored on the inputs of their asserts, compared with the
  reference: at least as strict as the asserts (a function that fails them never gets the
  point; where an assert checks only a shape or a property, such as ISTA's decreasing
  objective, the comparison of values is stricter). The asserts themselves stay in the
  notebook for the student to run anywhere;
* the ``*_hidden`` cells are scored on random inputs of several shapes and seeds; their
  hidden region is the one line ``from reggrader.hidden import check; check("<grade_id>")``.

The expected values come from reglib's reference implementations, computed in the
grader's process; the student's kernel only ever sees the inputs. The tolerances accept
every correct way of writing each function (solve / inv / SVD / lstsq / the dual form for
ridge; trace or singular values for the degrees of freedom; ``np.where``, ``np.maximum``
or ``np.clip`` for soft-thresholding; ISTA around the Gram matrix) and reject the named
wrong ones (``tests/assignments/test_01_weight_penalties.py`` checks both through this file).
"""

from __future__ import annotations

import numpy as np

from reggrader.spec import Part, Spec, case, close
from reglib.numpy import linear, penalties, prox


def l2_reference(w, lam):
    """(value, gradient) of (lam / 2) ||w||^2."""
    return penalties.l2(w, lam), penalties.l2_grad(w, lam)


# --------------------------------------------------------------------- visible worked examples
_V_ST = np.array([-3.0, -0.5, 0.0, 0.5, 2.0])
_M_ST = np.arange(-6.0, 6.0).reshape(3, 4)
_V_EN = np.linspace(-2.0, 2.0, 6).reshape(2, 3)
_X_RIDGE = np.array([[1.0, 0.0], [0.0, 2.0]])
_rng0 = np.random.default_rng(0)
_X30, _y30 = _rng0.normal(size=(30, 3)), _rng0.normal(size=30)
_X47, _y4 = _rng0.normal(size=(4, 7)), _rng0.normal(size=4)
_X20 = np.random.default_rng(1).normal(size=(20, 5))
_X_ISTA, _y_ISTA = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([4.0, 1.0])
_rng2 = np.random.default_rng(2)
_X40, _y40 = _rng2.normal(size=(40, 8)), _rng2.normal(size=40)


# --------------------------------------------------------------------- hidden random cases
def _l2_cases():
    out = []
    for seed, shape in [(0, (5,)), (1, (4, 3)), (2, (2, 3, 4)), (3, (1,)), (4, (7, 1))]:
        rng = np.random.default_rng(100 + seed)
        w = rng.normal(size=shape) * rng.uniform(0.5, 5.0)
        out.append(case(w, float(rng.uniform(0.1, 3.0))))
    return out


def _soft_cases():
    out = []
    for seed, shape in [(0, (10,)), (1, (4, 5)), (2, (2, 3, 3)), (3, (1,))]:
        rng = np.random.default_rng(200 + seed)
        v = rng.normal(size=shape) * 2.0
        for t in [0.0, float(rng.uniform(0.1, 1.0)), float(rng.uniform(1.0, 3.0))]:
            out.append(case(v, t))
    return out


def _enet_cases():
    out = []
    for seed, shape in [(0, (8,)), (1, (3, 4)), (2, (2, 2, 5))]:
        rng = np.random.default_rng(300 + seed)
        v = rng.normal(size=shape) * 2.0
        for a in [0.0, 0.25, 0.6, 1.0]:
            out.append(case(v, float(rng.uniform(0.3, 2.0)), a))
    return out


def _ridge_cases():
    out = []
    for seed, (n, p) in enumerate([(30, 4), (12, 12), (8, 15), (50, 1), (20, 6)]):
        rng = np.random.default_rng(400 + seed)
        X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p)
        y = X @ rng.normal(size=p) + 0.5 * rng.normal(size=n)
        for lam in [float(rng.uniform(0.3, 3.0)) * n, float(rng.uniform(0.5, 5.0))]:
            out.append(case(X, y, lam))
    return out


def _dof_cases():
    out = []
    for seed, (n, p) in enumerate([(25, 5), (10, 10), (6, 14), (40, 2)]):
        rng = np.random.default_rng(500 + seed)
        X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p)
        for lam in [float(rng.uniform(0.2, 2.0)), float(rng.uniform(0.5, 3.0)) * n]:
            out.append(case(X, lam))
    return out


def _lasso_cases():
    out = []
    for seed, (n, p) in enumerate([(40, 10), (25, 30), (60, 5)]):
        rng = np.random.default_rng(600 + seed)
        X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p)
        w_true = np.where(rng.random(p) < 0.4, rng.normal(size=p) * 2.0, 0.0)
        y = X @ w_true + 0.3 * rng.normal(size=n)
        lam = float(rng.uniform(0.05, 0.3)) * float(np.max(np.abs(X.T @ y))) / n
        for k in [1, 2, 5, 30]:
            out.append(case(X, y, lam, k))
    return out


# value and gradient to 1e-8; the value must be a scalar (a number or a 0-d array)
L2_RULE = close(rtol=1e-8, atol=1e-12, size1_as_scalar=False)
# atol = 0: entries with |v| <= thresh must be exactly zero
SOFT_RULE = close(rtol=1e-10, atol=0.0)
ENET_RULE = close(rtol=1e-10, atol=0.0)  # exact zeros below the threshold, as the visible assert
RIDGE_RULE = close(rtol=1e-6, atol=1e-9)
DOF_RULE = close(rtol=1e-7, atol=1e-10, size1_as_scalar=False)
LASSO_RULE = close(rtol=1e-6, atol=1e-9)

SPEC = Spec(parts=[
    Part("l2_penalty_visible", "l2_penalty", [
        case(np.array([3.0, -4.0]), 0.5, label="the worked example"),
        case(np.ones((3, 2)), 2.0, label="a 3x2 matrix of ones"),
    ], l2_reference, L2_RULE),
    Part("l2_penalty_hidden", "l2_penalty", _l2_cases(), l2_reference, L2_RULE),
    Part("soft_threshold_visible", "soft_threshold", [
        case(_V_ST, 1.0, label="the worked example"),
        case(_M_ST, 2.0, label="a 3x4 matrix"),
        case(_M_ST, 0.0, label="a zero threshold"),
    ], prox.soft_threshold, SOFT_RULE),
    Part("soft_threshold_hidden", "soft_threshold", _soft_cases(), prox.soft_threshold, SOFT_RULE),
    Part("prox_elastic_net_visible", "prox_elastic_net", [
        case(np.array([3.0, -0.5, 1.5]), 1.0, 0.5, label="the worked example"),
        case(_V_EN, 0.7, 0.3, label="a 2x3 matrix"),
        case(_V_EN, 0.7, 0.0, label="l1_ratio = 0"),
        case(_V_EN, 0.7, 1.0, label="l1_ratio = 1"),
    ], prox.prox_elastic_net, ENET_RULE),
    Part("prox_elastic_net_hidden", "prox_elastic_net", _enet_cases(), prox.prox_elastic_net, ENET_RULE),
    Part("ridge_visible", "ridge", [
        case(_X_RIDGE, np.array([2.0, 4.0]), 1.0, label="the worked example"),
        case(_X30, _y30, 0.0, label="lam = 0 (least squares)"),
        case(_X47, _y4, 0.5, label="p > n"),
    ], linear.ridge, RIDGE_RULE),
    Part("ridge_hidden", "ridge", _ridge_cases(), linear.ridge, RIDGE_RULE),
    Part("ridge_effective_dof_visible", "ridge_effective_dof", [
        case(_X_RIDGE, 1.0, label="the worked example"),
        case(_X20, 1e-10, label="lam -> 0"),
        case(_X20, 1e8, label="lam -> infinity"),
    ], linear.ridge_effective_dof, DOF_RULE),
    Part("ridge_effective_dof_hidden", "ridge_effective_dof", _dof_cases(), linear.ridge_effective_dof, DOF_RULE),
    Part("lasso_ista_visible", "lasso_ista", [
        case(_X_ISTA, _y_ISTA, 0.5, 0, label="n_iters = 0"),
        case(_X_ISTA, _y_ISTA, 0.5, 1, label="one step of the worked example"),
        case(_X_ISTA, _y_ISTA, 0.5, 50, label="50 steps of the worked example"),
    ] + [case(_X40, _y40, 0.1, k, label=f"{k} steps on a 40x8 problem") for k in range(6)],
        linear.lasso_ista, LASSO_RULE),
    Part("lasso_ista_hidden", "lasso_ista", _lasso_cases(), linear.lasso_ista, LASSO_RULE),
])
