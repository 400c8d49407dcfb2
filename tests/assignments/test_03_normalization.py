"""Assignment 03 (normalization) judged through the grader's comparison, in this process.

The notebook's context cells (imports, the read-only helper cells) and answer cells are
executed in a fresh namespace; then every test cell of a function is judged the way
``reggrader`` judges it (as for assignment 01): its visible asserts run in the namespace
(the student sees them pass or fail; visible cells have no hidden region), and its score
comes from record-and-compare: ``reggrader._recorder.record`` calls the function on the
cases of the cell's part in ``solutions/03_normalization/grading.py`` (for a visible cell:
the examples its asserts use), the record crosses a JSON boundary and
``reggrader.compare.score_part`` compares it with reglib's values outside the namespace.

This shows that (a) the reference solution gets every point; (b) other correct ways of
writing each function (one-pass variances, a channels-last layout, the staged backward
graph, loops over groups, other normalization orders in power iteration, reglib itself)
get every point too; (c) each named wrong implementation (the unbiased variance in the
normalization, eps added twice, the momentum the wrong way round, statistics over the
wrong axis, running statistics not updated or changed in place, seed 003's batch norm,
strided groups, a step too many, an SVD instead of the iteration, ...) loses the points of
at least one hidden part. Both sides of the tolerance are measured: correct variants stay
100 times inside it, every wrong one that is caught by its values misses by 100 times.
The expected values themselves are checked against torch (``F.batch_norm``,
``F.layer_norm``, ``F.group_norm``, autograd, ``torch.linalg.matrix_norm``), the visible
cases against the visible cells, and the reference solution by invariants (Hypothesis).
"""

from __future__ import annotations

import contextlib
import inspect
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reggrader import _recorder
from reggrader.plan import split_hidden
from tests.assignments.harness import (
    Assignment,
    check_cells_and_hidden_regions,
    check_grading_py_not_released,
    check_kernel_never_sees_an_expected_value,
    check_lint,
    check_nbgrader_metadata,
    check_static_tripwire,
    check_task_points,
    failed_parts,
)

# the graded test cells of each answer cell, in notebook order
FUNCTIONS = {
    "batchnorm_forward": ["batchnorm_forward_visible", "batchnorm_forward_hidden", "batchnorm_forward_eval_hidden"],
    "batchnorm_backward": ["batchnorm_backward_visible", "batchnorm_backward_hidden"],
    "layernorm_forward": ["layernorm_forward_visible", "layernorm_forward_hidden"],
    "groupnorm_forward": ["groupnorm_forward_visible", "groupnorm_forward_hidden"],
    "power_iteration": ["power_iteration_visible", "power_iteration_hidden"],
}
HELPERS = {"batchnorm_forward": "batchnorm_forward_helpers", "batchnorm_backward": "batchnorm_backward_helpers"}
POINTS_PER_TASK = {"batchnorm_forward": 4, "batchnorm_backward": 3, "layernorm_forward": 3,
                   "groupnorm_forward": 3, "power_iteration": 3}

# these tests record a cell's part before running its visible asserts
A = Assignment("03_normalization", functions=FUNCTIONS, record_first=True)
SPEC, TESTS, PLANNED = A.spec, A.tests, A.planned
namespace, record, grade = A.namespace, A.record, A.grade  # (function, replacement source)


# --------------------------------------------------------------------------- structure


def test_cells_parts_and_hidden_regions():
    check_cells_and_hidden_regions(A, HELPERS, hidden_cells_name_the_call=True)


def test_nbgrader_metadata_and_points():
    check_nbgrader_metadata(A, autograded=16, manual=3)
    check_task_points(A, FUNCTIONS, POINTS_PER_TASK)


def test_the_kernel_never_sees_an_expected_value():
    check_kernel_never_sees_an_expected_value(A)


def test_reggrader_lint_accepts_the_assignment():
    check_lint(A)


def test_grading_py_is_not_released():
    check_grading_py_not_released(A)


# --------------------------------------------------------------------------- (a) the reference


@pytest.mark.parametrize("function", FUNCTIONS)
def test_reference_solution_gets_every_point(function):
    results = grade(function)
    for gid, r in results.items():
        assert r["passed"] and r["visible_error"] is None, (gid, r["why"], r["visible_error"])


# --------------------------------------------------------------------------- (b) correct variants

CORRECT = {
    "batchnorm_forward": {
        "one_pass_variance_dict_cache": '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if training:
        M = x.size / x.shape[1]
        mean = np.mean(x, axis=axes)
        var = np.mean(x * x, axis=axes) - mean ** 2          # one pass: E[x^2] - mean^2
        new_mean = running_mean + momentum * (mean - running_mean)
        new_var = running_var + momentum * (var * M / (M - 1) - running_var)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = np.copy(running_mean), np.copy(running_var)
    std = np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) / std.reshape(shape)
    out = xhat * gamma.reshape(shape) + beta.reshape(shape)
    return out, {"xhat": xhat, "std": std, "gamma": gamma, "train": training}, new_mean, new_var

def batchnorm_backward(dout, cache):
    axes = tuple(i for i in range(dout.ndim) if i != 1)
    shape = [1] * dout.ndim
    shape[1] = dout.shape[1]
    xhat, std, gamma = cache["xhat"], cache["std"].reshape(shape), cache["gamma"].reshape(shape)
    dxhat = dout * gamma
    if cache["train"]:
        M = dout.size / dout.shape[1]
        dx = (M * dxhat - dxhat.sum(axis=axes, keepdims=True)
              - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)) / (M * std)
    else:
        dx = dxhat / std
    return dx, (dout * xhat).sum(axis=axes), dout.sum(axis=axes)
''',
        "channels_last_np_var_class_cache": '''
class _Cache:
    def __init__(self, xhat_t, var, eps, gamma, training):
        self.xhat_t, self.var, self.eps, self.gamma, self.training = xhat_t, var, eps, gamma, training

def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    xt = np.moveaxis(x, 1, -1)                   # (..., C): one row per value of a channel
    flat = xt.reshape(-1, x.shape[1])
    if training:
        mu, var = flat.mean(axis=0), flat.var(axis=0)
        unbiased = flat.var(axis=0, ddof=1)
        new_mean = momentum * mu + (1 - momentum) * running_mean
        new_var = momentum * unbiased + (1 - momentum) * running_var
    else:
        mu, var = running_mean, running_var
        new_mean, new_var = running_mean + 0.0, running_var + 0.0
    xhat_t = (xt - mu) / np.sqrt(var + eps)
    out = np.moveaxis(gamma * xhat_t + beta, -1, 1)
    return out, _Cache(xhat_t=xhat_t, var=var, eps=eps, gamma=gamma, training=training), new_mean, new_var

def batchnorm_backward(dout, cache):
    dt = np.moveaxis(dout, 1, -1)
    lead = tuple(range(dt.ndim - 1))
    dgamma = (dt * cache.xhat_t).sum(axis=lead)
    dbeta = dt.sum(axis=lead)
    g = dt * cache.gamma
    if cache.training:
        g = g - g.mean(axis=lead) - cache.xhat_t * (g * cache.xhat_t).mean(axis=lead)
    return np.moveaxis(g / np.sqrt(cache.var + cache.eps), -1, 1), dgamma, dbeta
''',
        "reglib": '''
from reglib.numpy.norm import batchnorm_forward as _bf, batchnorm_backward as batchnorm_backward

def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    return _bf(x, gamma, beta, running_mean=running_mean, running_var=running_var,
               momentum=momentum, eps=eps, training=training)
''',
    },
    "batchnorm_backward": {
        "staged_graph": '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    axes = (0,) + tuple(range(2, x.ndim))
    view = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = (xc ** 2).mean(axis=axes, keepdims=True)
        m = x.size // x.shape[1]
        new_mean = (1 - momentum) * running_mean + momentum * mu.ravel()
        new_var = (1 - momentum) * running_var + momentum * var.ravel() * m / (m - 1)
    else:
        xc = x - running_mean.reshape(view)
        var = running_var.reshape(view)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    std = np.sqrt(var + eps)
    ivar = 1.0 / std
    xhat = xc * ivar
    out = gamma.reshape(view) * xhat + beta.reshape(view)
    return out, (xhat, xc, ivar, std, var, eps, gamma.reshape(view), axes, training), new_mean, new_var

def batchnorm_backward(dout, cache):
    # step by step through the graph: scale, normalize, 1/std, sqrt, variance, centre, mean
    xhat, xc, ivar, std, var, eps, gamma, axes, training = cache
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma
    if not training:
        return dxhat * ivar, dgamma, dbeta
    m = dout.size // dout.shape[1]
    divar = (dxhat * xc).sum(axis=axes, keepdims=True)
    dxc1 = dxhat * ivar
    dstd = -divar / std ** 2
    dvar = 0.5 * dstd / np.sqrt(var + eps)
    dsq = np.ones_like(xc) * dvar / m
    dxc2 = 2 * xc * dsq
    dx1 = dxc1 + dxc2
    dmu = -dx1.sum(axis=axes, keepdims=True)
    return dx1 + dmu / m, dgamma, dbeta
''',
        "paper_formulas": '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    axes = (0,) + tuple(range(2, x.ndim))
    view = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        m = x.size // x.shape[1]
        new_mean = (1 - momentum) * running_mean + momentum * mu
        new_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mu, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = gamma.reshape(view) * (x - mu.reshape(view)) / np.sqrt(var.reshape(view) + eps) + beta.reshape(view)
    return out, dict(x=x, mu=mu, var=var, eps=eps, gamma=gamma, training=training), new_mean, new_var

def batchnorm_backward(dout, cache):
    # Ioffe and Szegedy's chain rule: dL/dvar, dL/dmu, then dL/dx
    x, eps, training = cache["x"], cache["eps"], cache["training"]
    axes = (0,) + tuple(range(2, x.ndim))
    view = (1, -1) + (1,) * (x.ndim - 2)
    mu, var, gamma = (cache[k].reshape(view) for k in ("mu", "var", "gamma"))
    m = x.size // x.shape[1]
    xhat = (x - mu) / np.sqrt(var + eps)
    dxhat = dout * gamma
    if training:
        dvar = np.sum(dxhat * (x - mu), axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
        dmu = (np.sum(-dxhat / np.sqrt(var + eps), axis=axes, keepdims=True)
               + dvar * np.sum(-2 * (x - mu), axis=axes, keepdims=True) / m)
        dx = dxhat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / m + dmu / m
    else:
        dx = dxhat / np.sqrt(var + eps)
    return dx, np.sum(dout * xhat, axis=axes), np.sum(dout, axis=axes)
''',
        "reglib": '''
from reglib.numpy.norm import batchnorm_forward as _bf, batchnorm_backward as _bb

def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    return _bf(x, gamma, beta, running_mean=running_mean, running_var=running_var,
               momentum=momentum, eps=eps, training=training)

def batchnorm_backward(dout, cache):
    return _bb(dout, cache)
''',
    },
    "layernorm_forward": {
        "np_var_and_std": '''
def layernorm_forward(x, gamma, beta, eps=1e-5):
    mean = np.mean(x, axis=x.ndim - 1)[..., None]
    std = np.sqrt(np.var(x, axis=-1)[..., None] + eps)
    return gamma * ((x - mean) / std) + beta
''',
        "one_pass_rows": '''
def layernorm_forward(x, gamma, beta, eps=1e-5):
    rows = x.reshape(-1, x.shape[-1])
    d = rows.shape[1]
    s1 = rows.sum(axis=1, keepdims=True)
    s2 = (rows * rows).sum(axis=1, keepdims=True)
    mean = s1 / d
    var = s2 / d - mean * mean
    out = (rows - mean) / np.sqrt(var + eps) * gamma + beta
    return out.reshape(x.shape)
''',
        "transposed": '''
def layernorm_forward(x, gamma, beta, eps=1e-5):
    t = np.moveaxis(x, -1, 0)                # (D, ...): statistics over axis 0
    centred = t - t.mean(axis=0)
    var = (centred ** 2).sum(axis=0) / t.shape[0]
    return np.moveaxis(centred / np.sqrt(var + eps), 0, -1) * gamma + beta
''',
        "reglib": '''
from reglib.numpy.norm import layernorm_forward as _ln

def layernorm_forward(x, gamma, beta, eps=1e-5):
    return _ln(x, gamma, beta, eps=eps)[0]
''',
    },
    "groupnorm_forward": {
        "loop_over_groups": '''
def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    n, c, h, w = x.shape
    size = c // num_groups
    out = np.empty_like(x, dtype=float)
    for i in range(n):
        for g in range(num_groups):
            block = x[i, g * size:(g + 1) * size]
            out[i, g * size:(g + 1) * size] = (block - block.mean()) / np.sqrt(block.var() + eps)
    return out * gamma[None, :, None, None] + beta[None, :, None, None]
''',
        "five_d_reshape_one_pass": '''
def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    n, c, h, w = x.shape
    g5 = x.reshape(n, num_groups, c // num_groups, h, w)
    mean = g5.mean(axis=(2, 3, 4), keepdims=True)
    var = (g5 ** 2).mean(axis=(2, 3, 4), keepdims=True) - mean ** 2
    xhat = ((g5 - mean) / np.sqrt(var + eps)).reshape(n, c, h, w)
    return xhat * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)
''',
        "via_layernorm_of_groups": '''
def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    n, c = x.shape[:2]
    rows = x.reshape(n * num_groups, -1)    # one row per (sample, group)
    xhat = layernorm_forward(rows, np.ones(rows.shape[1]), np.zeros(rows.shape[1]), eps).reshape(x.shape)
    return np.einsum("nchw,c->nchw", xhat, gamma) + beta[:, None, None]
''',
        "reglib": '''
from reglib.numpy.norm import groupnorm_forward as _gn

def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    return _gn(x, gamma, beta, num_groups, eps=eps)[0]
''',
    },
    "power_iteration": {
        "norm_of_W_v_unnormalized_start": '''
def power_iteration(W, n_iters, u0):
    u = u0                                  # W^T u / |W^T u| does not depend on |u0|
    for _ in range(n_iters):
        v = W.T.dot(u)
        v /= np.sqrt(v @ v)
        Wv = W.dot(v)
        sigma = np.linalg.norm(Wv)          # u^T W v = |W v| once u = W v / |W v|
        u = Wv / sigma
    return sigma, u, v
''',
        "normalize_at_the_end": '''
def power_iteration(W, n_iters, u0):
    # the directions do not depend on when one divides: normalize only at the end of each step
    u = np.array(u0, dtype=float)
    for _ in range(n_iters):
        v = W.T @ u
        u = W @ v
        v, u = v / np.linalg.norm(v), u / np.linalg.norm(u)
    return np.dot(u, W @ v), u, v
''',
        "helper_function": '''
def _unit(a):
    return a / np.linalg.norm(a)

def power_iteration(W, n_iters, u0):
    u = _unit(u0)
    for _ in range(n_iters):
        v = _unit(np.matmul(u, W))           # u W = (W^T u)^T
        u = _unit(np.matmul(W, v))
    return np.einsum("i,ij,j->", u, W, v), u, v
''',
        "reglib": '''
from reglib.numpy.spectral import power_iteration as _pi

def power_iteration(W, n_iters, u0):
    return _pi(W, n_iters, u0=u0)
''',
    },
}
CORRECT_CASES = [(f, name) for f, impls in CORRECT.items() for name in impls]


@pytest.mark.parametrize(("function", "name"), CORRECT_CASES, ids=[f"{f}-{n}" for f, n in CORRECT_CASES])
def test_other_correct_implementations_get_every_point(function, name):
    results = grade(function, CORRECT[function][name])
    for gid, r in results.items():
        assert r["passed"] and r["visible_error"] is None, (gid, r["why"], r["visible_error"])


# --------------------------------------------------------------------------- (c) wrong versions

_BN = '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    x = np.asarray(x, dtype=float)
    axes = {axes}
    view = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        m = x.size // x.shape[1]
        mu = x.mean(axis=axes)
        var = x.var(axis=axes, ddof={ddof})
        new_mean = {new_mean}
        new_var = {new_var}
    else:
        mu, var = {eval_stats}
        new_mean, new_var = {eval_new}
    inv_std = 1.0 / {denominator}
    xhat = (x - mu.reshape(view)) * inv_std.reshape(view)
    out = gamma.reshape(view) * xhat + beta.reshape(view)
    return out, (xhat, inv_std, gamma, training), new_mean, new_var
'''
_BN_DEFAULTS = dict(
    axes="(0,) + tuple(range(2, x.ndim))", ddof="0",
    new_mean="(1 - momentum) * running_mean + momentum * mu",
    new_var="(1 - momentum) * running_var + momentum * var * m / (m - 1)",
    eval_stats="running_mean, running_var",
    eval_new="running_mean.copy(), running_var.copy()",
    denominator="np.sqrt(var + eps)",
)


def _bn(**changes) -> str:
    return _BN.format(**{**_BN_DEFAULTS, **changes})


_BACKWARD = '''
def batchnorm_backward(dout, cache):
    xhat, inv_std, gamma, training = cache
    axes = {axes}
    view = (1, -1) + (1,) * (dout.ndim - 2)
    dbeta = {dbeta}
    dgamma = {dgamma}
    g = dout * {g_scale}
    if {use_training_formula}:
        g = g - {mean_term} - {var_term}
    dx = g * inv_std.reshape(view)
    return dx, dgamma, dbeta
'''
_BACKWARD_DEFAULTS = dict(
    axes="(0,) + tuple(range(2, dout.ndim))",
    dbeta="dout.sum(axis=axes)", dgamma="(dout * xhat).sum(axis=axes)", g_scale="gamma.reshape(view)",
    use_training_formula="training",
    mean_term="g.mean(axis=axes, keepdims=True)",
    var_term="xhat * (g * xhat).mean(axis=axes, keepdims=True)",
)


def _back(**changes) -> str:
    return _BACKWARD.format(**{**_BACKWARD_DEFAULTS, **changes})


_LN = '''
def layernorm_forward(x, gamma, beta, eps=1e-5):
    x = np.asarray(x, dtype=float)
    mu = x.mean(axis={axis}, keepdims=True)
    var = x.var(axis={axis}, keepdims=True, ddof={ddof})
    return {out}
'''


def _ln(axis="-1", ddof="0", out="gamma * (x - mu) / np.sqrt(var + eps) + beta") -> str:
    return _LN.format(axis=axis, ddof=ddof, out=out)


_GN = '''
def groupnorm_forward(x, gamma, beta, num_groups, eps=1e-5):
    x = np.asarray(x, dtype=float)
    n, c = x.shape[:2]
    groups = {groups}
    mu = groups.mean(axis={axes}, keepdims=True)
    var = groups.var(axis={axes}, keepdims=True, ddof={ddof})
    xhat = {xhat}
    return gamma.reshape(1, c, 1, 1) * xhat + beta.reshape(1, c, 1, 1)
'''
_GN_DEFAULTS = dict(groups="x.reshape(n, num_groups, -1)", axes="2", ddof="0",
                    xhat="((groups - mu) / np.sqrt(var + eps)).reshape(x.shape)")


def _gn(**changes) -> str:
    return _GN.format(**{**_GN_DEFAULTS, **changes})


_PI = '''
def power_iteration(W, n_iters, u0):
    W = np.asarray(W, dtype=float)
    u = {start}
    for _ in range({steps}):
        v = W.T @ u
        v = v / np.linalg.norm(v)
        u = W @ v
        u = u / np.linalg.norm(u)
    return {ret}
'''


def _pi(start="u0 / np.linalg.norm(u0)", steps="n_iters", ret="float(u @ W @ v), u, v") -> str:
    return _PI.format(start=start, steps=steps, ret=ret)


WRONG = {
    "batchnorm_forward": {
        "unbiased_variance_in_the_normalization": _bn(
            ddof="1", new_var="(1 - momentum) * running_var + momentum * var"),
        "eps_twice_in_training": _bn(denominator="(np.sqrt(var + eps) + eps) if training else np.sqrt(var + eps)"),
        "eps_twice_in_evaluation": _bn(denominator="np.sqrt(var + eps) if training else np.sqrt(var + 2 * eps)"),
        "eps_outside_the_root": _bn(denominator="(np.sqrt(var) + eps)"),
        "momentum_the_wrong_way_round": _bn(
            new_mean="momentum * running_mean + (1 - momentum) * mu",
            new_var="momentum * running_var + (1 - momentum) * var * m / (m - 1)"),
        "biased_running_variance": _bn(new_var="(1 - momentum) * running_var + momentum * var"),
        "unbiased_factor_of_n_not_m": _bn(
            new_var="(1 - momentum) * running_var + momentum * var * x.shape[0] / (x.shape[0] - 1)"),
        "statistics_over_the_features": _bn(axes="tuple(range(1, x.ndim))",
                                            new_mean="(1 - momentum) * running_mean + momentum * mu.mean()",
                                            new_var="(1 - momentum) * running_var + momentum * var.mean()")
        .replace("mu.reshape(view)", "mu.reshape((-1,) + (1,) * (x.ndim - 1))")
        .replace("inv_std.reshape(view)", "inv_std.reshape((-1,) + (1,) * (x.ndim - 1))"),
        "statistics_over_the_batch_axis_only": _bn(
            axes="0", new_mean="(1 - momentum) * running_mean + momentum * mu.reshape(mu.shape[0], -1).mean(axis=1)",
            new_var="(1 - momentum) * running_var + momentum * var.reshape(var.shape[0], -1).mean(axis=1)")
        .replace("mu.reshape(view)", "(mu if training else mu.reshape(view))")
        .replace("inv_std.reshape(view)", "(inv_std if training else inv_std.reshape(view))"),
        "running_statistics_not_updated": _bn(new_mean="running_mean.copy()", new_var="running_var.copy()"),
        "running_statistics_updated_in_place": _bn(
            new_mean="running_mean",
            new_var="running_var").replace(
            "        new_mean = running_mean\n",
            "        running_mean *= 1 - momentum\n        running_mean += momentum * mu\n"
            "        new_mean = running_mean\n").replace(
            "        new_var = running_var\n",
            "        running_var *= 1 - momentum\n        running_var += momentum * var * m / (m - 1)\n"
            "        new_var = running_var\n"),
        "batch_statistics_in_evaluation": _bn(eval_stats="x.mean(axis=axes), x.var(axis=axes)"),
        "evaluation_updates_the_running_statistics": _bn(
            eval_new="0.9 * running_mean + 0.1 * x.mean(axis=axes), 0.9 * running_var + 0.1 * x.var(axis=axes)"),
        "seed_003": _bn(  # eps folded into the variance it stores, Keras momentum, biased running variance
            new_mean="(1 - momentum) * mu + momentum * running_mean",
            new_var="(1 - momentum) * (var + eps) + momentum * running_var"),
        "modifies_x_in_place": _bn().replace("    xhat = (x - mu.reshape(view))",
                                             "    x -= mu.reshape(view)\n    xhat = x"),
    },
    "batchnorm_backward": {
        "statistics_treated_as_constants": _back(use_training_formula="False"),
        "mean_term_only": _back(var_term="0"),
        "variance_term_only": _back(mean_term="0"),
        "dgamma_is_the_sum_of_dout": _back(dgamma="dout.sum(axis=axes)"),
        "sums_over_the_batch_axis_only": _back(  # right for (N, C), not for (N, C, H, W)
            dbeta="dout.sum(axis=0).reshape(dout.shape[1], -1)[:, 0]",
            dgamma="(dout * xhat).sum(axis=0).reshape(dout.shape[1], -1)[:, 0]"),
        "training_formula_in_evaluation": _back(use_training_formula="True"),
        "gamma_left_out_of_dx": _back(g_scale="1.0"),
        "mean_over_m_minus_1": _back(
            var_term="xhat * (g * xhat).sum(axis=axes, keepdims=True) / (dout.size // dout.shape[1] - 1)"),
    },
    "layernorm_forward": {
        "statistics_over_the_batch": _ln(axis="0"),
        "statistics_over_axis_1": _ln(axis="1"),
        "statistics_over_all_but_the_first_axis": _ln(axis="tuple(range(1, x.ndim))"),
        "unbiased_variance": _ln(ddof="1"),
        "eps_outside_the_root": _ln(out="gamma * (x - mu) / (np.sqrt(var) + eps) + beta"),
        "eps_twice": _ln(out="gamma * (x - mu) / (np.sqrt(var + eps) + eps) + beta"),
        "gamma_and_beta_swapped": _ln(out="beta * (x - mu) / np.sqrt(var + eps) + gamma"),
    },
    "groupnorm_forward": {
        "strided_groups": _gn(
            groups="x.reshape(n, c // num_groups, num_groups, -1).transpose(0, 2, 1, 3)", axes="(2, 3)",
            xhat="((groups - mu) / np.sqrt(var + eps)).transpose(0, 2, 1, 3).reshape(x.shape)"),
        "instance_norm_whatever_the_groups": _gn(groups="x.reshape(n, c, -1)"),
        "layer_norm_whatever_the_groups": _gn(groups="x.reshape(n, 1, -1)"),
        "statistics_over_channels_only": _gn(
            groups="x.reshape(n, num_groups, c // num_groups, -1)", axes="2"),
        "unbiased_variance": _gn(ddof="1"),
        "eps_outside_the_root": _gn(xhat="((groups - mu) / (np.sqrt(var) + eps)).reshape(x.shape)"),
        "statistics_across_the_batch": _gn(
            groups="x.reshape(n, num_groups, -1).transpose(1, 0, 2).reshape(1, num_groups, -1)",
            xhat="((x.reshape(n, num_groups, -1) - mu.reshape(1, num_groups, 1)) "
                 "/ np.sqrt(var.reshape(1, num_groups, 1) + eps)).reshape(x.shape)"),
    },
    "power_iteration": {
        "one_step_too_many": _pi(steps="n_iters + 1"),
        "one_step_too_few": _pi(steps="max(n_iters - 1, 1)"),
        "svd_instead_of_iterating": '''
def power_iteration(W, n_iters, u0):
    U, s, Vt = np.linalg.svd(W)
    sign = np.sign(U[:, 0] @ u0)
    return s[0], sign * U[:, 0], sign * Vt[0]
''',
        "sigma_from_W_transpose_u": _pi(ret="float(np.linalg.norm(W.T @ u)), u, v"),
        "sigma_squared": _pi(ret="float(np.linalg.norm(W @ v) ** 2), u, v"),
        "random_start": _pi(start="np.random.default_rng(0).standard_normal(W.shape[0])"),
        "u_and_v_swapped": _pi(ret="float(u @ W @ v), v, u"),
        "spectral_radius": '''
def power_iteration(W, n_iters, u0):
    u = u0 / np.linalg.norm(u0)
    for _ in range(n_iters):
        u = W @ u
        u = u / np.linalg.norm(u)
    return float(np.abs(u @ W @ u)), u, u
''',
    },
}
WRONG_CASES = [(f, name) for f, impls in WRONG.items() for name in impls]
# wrong versions whose values are right: only the in-place check catches them
CAUGHT_BY_THE_INPLACE_CHECK = {("batchnorm_forward", "running_statistics_updated_in_place"),
                               ("batchnorm_forward", "modifies_x_in_place")}


@pytest.mark.parametrize(("function", "name"), WRONG_CASES, ids=[f"{f}-{n}" for f, n in WRONG_CASES])
def test_wrong_implementations_lose_points_in_a_hidden_part(function, name):
    results = grade(function, WRONG[function][name])
    failed = failed_parts(results)
    hidden = {g for g in FUNCTIONS[function] if not g.endswith("_visible")}
    assert failed & hidden, f"{name} gets every hidden point of {function}: {results}"


def test_in_place_changes_are_reported_as_such():
    for name in ("running_statistics_updated_in_place", "modifies_x_in_place"):
        results = grade("batchnorm_forward", WRONG["batchnorm_forward"][name])
        why = " ".join(results["batchnorm_forward_hidden"]["why"])
        assert "in place" in why, (name, why)
    why = " ".join(grade("batchnorm_forward", WRONG["batchnorm_forward"]["running_statistics_updated_in_place"])
                   ["batchnorm_forward_hidden"]["why"])
    assert "`running_mean`" in why and "`running_var`" in why, why


def test_failures_name_the_wrong_output_without_the_expected_value():
    results = grade("batchnorm_forward", WRONG["batchnorm_forward"]["biased_running_variance"])
    why = results["batchnorm_forward_hidden"]["why"]
    assert why and all("'new running_var'" in w for w in why), why
    results = grade("batchnorm_backward", WRONG["batchnorm_backward"]["dgamma_is_the_sum_of_dout"])
    assert all("'dgamma'" in w for w in results["batchnorm_backward_hidden"]["why"])


# --------------------------------------------------------------------------- the tolerance, both sides


def _decode(value):
    return _recorder.decode(value, torch_ok=False)


def _ratio(actual, expected) -> float:
    """Largest |actual - expected| / (ATOL + RTOL |expected|) over matching entries (inf: mismatch)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return float("inf")
        return max(_ratio(actual[k], expected[k]) for k in expected)
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return float("inf")
        return max(_ratio(a, e) for a, e in zip(actual, expected))
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if a.size == 1 and e.size == 1:
        a, e = a.reshape(()), e.reshape(())
    if a.shape != e.shape:
        return float("inf")
    rtol, atol = SPEC.parts[0].compare["rtol"], SPEC.parts[0].compare["atol"]
    return float(np.max(np.abs(a - e) / (atol + rtol * np.abs(e)))) if a.size else 0.0


def _ratios(gid: str, rec: dict) -> list[float]:
    out = []
    for case_plan, entry in zip(PLANNED[gid]["cases"], rec["cases"]):
        if "result" not in entry:
            out.append(float("inf"))
            continue
        out.append(_ratio(_decode(entry["result"]), _decode(case_plan["expected"]["result"])))
    return out


def test_every_part_uses_the_documented_tolerance():
    grading = A.grading_module()
    for part in SPEC.parts:
        assert part.compare["kind"] == "close" and part.check_inputs and part.scoring == "all"
        assert (part.compare["rtol"], part.compare["atol"]) == (grading.RTOL, grading.ATOL) == (1e-8, 1e-10)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_correct_variants_stay_a_hundred_times_inside_the_tolerance(function):
    for source in [None, *CORRECT[function].values()]:
        results = grade(function, source)
        for gid, r in results.items():
            worst = max(_ratios(gid, r["record"]))
            assert worst < 1e-2, (function, gid, worst)


@pytest.mark.parametrize(("function", "name"), [c for c in WRONG_CASES if c not in CAUGHT_BY_THE_INPLACE_CHECK],
                         ids=[f"{f}-{n}" for f, n in WRONG_CASES if (f, n) not in CAUGHT_BY_THE_INPLACE_CHECK])
def test_wrong_versions_miss_a_hidden_case_by_a_hundred_tolerances(function, name):
    results = grade(function, WRONG[function][name])
    worst = max(max(_ratios(gid, r["record"])) for gid, r in results.items() if not gid.endswith("_visible"))
    assert worst > 100, (function, name, worst)


def test_the_eps_mistakes_are_caught_with_the_default_eps_too():
    """eps = 1e-5 and unit-scale variances: a second eps still shows (the cases with a large eps aside)."""
    source = WRONG["batchnorm_forward"]["eps_twice_in_training"]
    ns = namespace("batchnorm_forward", source)
    rec = record("batchnorm_forward_hidden", ns)
    ratios = _ratios("batchnorm_forward_hidden", rec)
    default_eps = [i for i, c in enumerate(SPEC.part("batchnorm_forward_hidden").cases) if c.args[6] == 1e-5]
    assert len(default_eps) >= 4 and all(ratios[i] > 10 for i in default_eps), ratios


# --------------------------------------------------------------------------- the expected values vs torch


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _torch_batchnorm(x, gamma, beta, running_mean, running_var, momentum, eps, training, dout=None):
    rm, rv = _t(running_mean).clone(), _t(running_var).clone()
    xt = _t(x).requires_grad_(True)
    g, b = _t(gamma).requires_grad_(True), _t(beta).requires_grad_(True)
    out = F.batch_norm(xt, rm, rv, g, b, training=training, momentum=momentum, eps=eps)
    result = {"out": out.detach().numpy(), "new running_mean": rm.numpy(), "new running_var": rv.numpy()}
    if dout is not None:
        out.backward(_t(dout))
        result = {"dx": xt.grad.numpy(), "dgamma": g.grad.numpy(), "dbeta": b.grad.numpy()}
    return result


def _assert_close(a: dict, b: dict, rtol=1e-10, atol=1e-12):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


@pytest.mark.parametrize("gid", ["batchnorm_forward_visible", "batchnorm_forward_hidden",
                                 "batchnorm_forward_eval_hidden", "batchnorm_backward_visible",
                                 "batchnorm_backward_hidden"])
def test_batchnorm_expected_values_equal_torch(gid):
    for c in SPEC.part(gid).cases:
        expected = SPEC.part(gid).reference(*c.args)
        _assert_close(expected, _torch_batchnorm(*c.args))


@pytest.mark.parametrize("gid", ["layernorm_forward_visible", "layernorm_forward_hidden"])
def test_layernorm_expected_values_equal_torch(gid):
    for c in SPEC.part(gid).cases:
        x, gamma, beta = c.args
        got = F.layer_norm(_t(x), (x.shape[-1],), _t(gamma), _t(beta), eps=c.kwargs["eps"]).numpy()
        np.testing.assert_allclose(SPEC.part(gid).reference(*c.args, **c.kwargs), got, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gid", ["groupnorm_forward_visible", "groupnorm_forward_hidden"])
def test_groupnorm_expected_values_equal_torch(gid):
    for c in SPEC.part(gid).cases:
        x, gamma, beta, groups = c.args
        got = F.group_norm(_t(x), groups, _t(gamma), _t(beta), eps=c.kwargs["eps"]).numpy()
        np.testing.assert_allclose(SPEC.part(gid).reference(*c.args, **c.kwargs), got, rtol=1e-10, atol=1e-12)


def test_power_iteration_expected_values_follow_the_stated_update_and_converge():
    """Closed form: u_k is W W^T applied k times to u0 (normalized); sigma_k <= sigma_1 (matrix_norm)."""
    for gid in ("power_iteration_visible", "power_iteration_hidden"):
        for c in SPEC.part(gid).cases:
            W, k, u0 = c.args
            sigma, u, v = SPEC.part(gid).reference(W, k, u0)
            scale = np.linalg.norm(W, 2) ** 2  # keeps the powers finite; directions are unchanged
            uk = np.linalg.matrix_power(W @ W.T / scale, k) @ u0
            uk /= np.linalg.norm(uk)
            vk = np.linalg.matrix_power(W.T @ W / scale, k - 1) @ (W.T @ u0)
            vk /= np.linalg.norm(vk)
            np.testing.assert_allclose(u, uk, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(v, vk, rtol=1e-9, atol=1e-12)
            top = torch.linalg.matrix_norm(_t(W), ord=2).item()
            assert sigma <= top * (1 + 1e-12)
            assert np.isclose(sigma, np.linalg.norm(W @ vk), rtol=1e-12)


def test_far_from_converged_cases_are_far_from_the_svd():
    """The cases meant to catch an SVD in place of the iteration really are unconverged."""
    part = SPEC.part("power_iteration_hidden")
    far = 0
    for c in part.cases:
        W, k, u0 = c.args
        sigma = part.reference(W, k, u0)[0]
        far += (torch.linalg.matrix_norm(_t(W), ord=2).item() - sigma) > 1e3 * 1e-8 * sigma
    assert far >= 4


# --------------------------------------------------------------------------- the visible cases


class _Spy:
    """Wraps a function and keeps the arguments of every call (defaults filled in)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []
        self.signature = inspect.signature(fn)

    def __call__(self, *args, **kwargs):
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        self.calls.append({k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                           for k, v in bound.arguments.items()})
        return self.fn(*args, **kwargs)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    return a == b


def _called_with(spy: _Spy, values: dict) -> bool:
    return any(all(_same(call[k], v) for k, v in values.items()) for call in spy.calls)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_visible_parts_score_exactly_the_visible_examples(function):
    """Every case of a *_visible part is a call the visible asserts make (same arrays, same options)."""
    ns = namespace()
    spies = {name: _Spy(ns[name]) for name in FUNCTIONS}
    ns.update(spies)
    gid = FUNCTIONS[function][0]
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(split_hidden(TESTS[gid])[0], gid, "exec"), ns)
    part = SPEC.part(gid)
    names = list(inspect.signature(part.reference).parameters)
    for c in part.cases:
        given = {**dict(zip(names, c.args)), **c.kwargs}
        if function == "batchnorm_backward":
            dout = given.pop("dout")
            assert _called_with(spies["batchnorm_backward"], {"dout": dout}), c.label
        target = "batchnorm_forward" if function.startswith("batchnorm") else function
        assert _called_with(spies[target], given), c.label


# --------------------------------------------------------------------------- static tripwire


def test_answers_pass_the_static_tripwire_and_reglib_is_flagged():
    sources = [src for impls in CORRECT.values() for n, src in impls.items() if n != "reglib"]
    check_static_tripwire(A, sources, CORRECT["power_iteration"]["reglib"])


# --------------------------------------------------------------------------- the reference, by invariants

SOLUTION = namespace()
_shapes_2d_4d = st.one_of(
    st.tuples(st.integers(2, 6), st.integers(1, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 3)),
)


@settings(max_examples=30, deadline=None)
@given(_shapes_2d_4d, st.floats(0.0, 1.0), st.sampled_from([1e-5, 1e-3, 0.1]), st.integers(0, 2**32 - 1))
def test_reference_batchnorm_matches_torch_forward_and_backward(shape, momentum, eps, seed):
    """Oracle: torch's F.batch_norm (outputs, running buffers) and autograd, both modes."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.normal(size=shape) * rng.uniform(0.2, 3.0) + rng.normal()
    gamma, beta, dout = rng.normal(size=c), rng.normal(size=c), rng.normal(size=shape)
    rm, rv = rng.normal(size=c), rng.uniform(0.1, 2.0, size=c)
    for training in (True, False):
        out, cache, new_mean, new_var = SOLUTION["batchnorm_forward"](
            x, gamma, beta, rm, rv, momentum=momentum, eps=eps, training=training)
        ref = _torch_batchnorm(x, gamma, beta, rm, rv, momentum, eps, training)
        _assert_close({"out": out, "new running_mean": new_mean, "new running_var": new_var}, ref,
                      rtol=1e-9, atol=1e-11)
        dx, dgamma, dbeta = SOLUTION["batchnorm_backward"](dout, cache)
        grads = _torch_batchnorm(x, gamma, beta, rm, rv, momentum, eps, training, dout=dout)
        _assert_close({"dx": dx, "dgamma": dgamma, "dbeta": dbeta}, grads, rtol=1e-8, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(2, 6), st.floats(0.1, 10.0),
       st.floats(-5.0, 5.0), st.integers(0, 2**32 - 1))
def test_reference_layernorm_invariances(n, t, d, scale, shift, seed):
    """Translation invariance is exact; scaling by a is exact once eps is scaled by a^2 (C26)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d))
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    ln = SOLUTION["layernorm_forward"]
    base = ln(x, gamma, beta, eps=1e-3)
    np.testing.assert_allclose(ln(x + shift, gamma, beta, eps=1e-3), base, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ln(scale * x, gamma, beta, eps=1e-3 * scale**2), base, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ln(x[:1], gamma, beta, eps=1e-3), base[:1], rtol=1e-12, atol=0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.sampled_from([(4, 1), (4, 2), (4, 4), (6, 3), (6, 2)]), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_reference_groupnorm_matches_torch_and_its_extremes(n, channels_groups, h, w, seed):
    """Oracle: F.group_norm; G = C equals F.instance_norm; G = 1 equals a layer norm over (C, H, W)."""
    c, groups = channels_groups
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w)) * 2.0 + rng.normal(size=(1, c, 1, 1))
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    gn = SOLUTION["groupnorm_forward"]
    got = gn(x, gamma, beta, groups, eps=1e-4)
    if (c // groups) * h * w == 1:  # groups of one value (torch refuses them): variance 0, out = beta
        np.testing.assert_array_equal(got, np.broadcast_to(beta[:, None, None], x.shape))
    else:
        np.testing.assert_allclose(got, F.group_norm(_t(x), groups, _t(gamma), _t(beta), eps=1e-4).numpy(),
                                   rtol=1e-9, atol=1e-11)
    if h * w > 1:
        inst = F.instance_norm(_t(x), weight=_t(gamma), bias=_t(beta), eps=1e-4).numpy()
        np.testing.assert_allclose(gn(x, gamma, beta, c, eps=1e-4), inst, rtol=1e-9, atol=1e-11)
    whole = F.layer_norm(_t(x), (c, h, w), eps=1e-4).numpy() * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(gn(x, gamma, beta, 1, eps=1e-4), whole, rtol=1e-9, atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_reference_power_iteration_is_resumable_monotone_and_bounded(m, n, a, b, seed):
    rng = np.random.default_rng(seed)
    W, u0 = rng.normal(size=(m, n)), rng.normal(size=m)
    pi = SOLUTION["power_iteration"]
    s_a, u_a, _ = pi(W, a, u0)
    s_ab, u_ab, v_ab = pi(W, a + b, u0)
    s_resumed, u_resumed, v_resumed = pi(W, b, u_a)
    np.testing.assert_allclose([s_resumed, *u_resumed, *v_resumed], [s_ab, *u_ab, *v_ab], rtol=1e-9, atol=1e-12)
    top = torch.linalg.matrix_norm(_t(W), ord=2).item()
    assert s_a <= s_ab * (1 + 1e-12) and s_ab <= top * (1 + 1e-12)
    assert np.isclose(np.linalg.norm(u_ab), 1.0) and np.isclose(np.linalg.norm(v_ab), 1.0)
