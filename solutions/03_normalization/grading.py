"""Record-and-compare tests of assignment 03 (normalization): cases, trusted references, rules.

Read by the grader only (``reggrader``), never released. Every graded test cell of
``03_normalization.ipynb`` has a part here; its hidden region is the one line
``from reggrader.hidden import check; check("<grade_id>")``.

Every part is **exact**: nothing is random, so the expected values come from reglib's
reference implementations (``reglib.numpy.norm``, ``reglib.numpy.spectral``) on the same
inputs, and the rule is ``close(rtol=RTOL, atol=ATOL)``.

* Batch norm returns a cache whose contents are the student's own business, so the two
  batch-norm parts call the student's functions through read-only helper cells of the
  notebook: ``_grade_batchnorm_forward`` returns ``{"out", "new running_mean",
  "new running_var"}`` (the cache dropped) and ``_grade_batchnorm_backward`` runs the
  student's forward pass and then the student's backward pass on that cache and returns
  ``{"dx", "dgamma", "dbeta"}``. The references below compute the same dictionaries with
  reglib. The helpers hand the case's arrays straight to the student's function, so a
  function that changes ``x`` or the running statistics in place fails the case
  (``check_inputs``).
* Layer norm, group norm and power iteration are called directly.
* Power iteration: the notebook states the update exactly (start ``u = u0/||u0||``; each
  of the ``n_iters`` steps ``v = W^T u/||W^T u||``, ``u = W v/||W v||``; ``sigma = u^T W
  v``), so ``(sigma, u, v)`` is a function of ``(W, n_iters, u0)`` and is compared value
  by value, also after too few steps to converge (that is what catches an off-by-one step
  count or an SVD in place of the iteration).

The tolerances. Correct implementations differ only by rounding: one-pass variance
(``E[x^2] - mean^2``) on these inputs (offsets <= 3, scales >= 0.05) loses at most
``~1e-13`` relative, other backward formulas (the staged graph, the compact form) agree
to ``~1e-14``, other normalization orders in power iteration to ``~1e-15``. The named
mistakes are off by far more: ``eps`` added a second time changes the output by
``eps / (2 (var + eps))`` relative (inside the root) or ``eps / sqrt(var + eps)`` (outside),
at least ``1e-6`` here (``eps >= 1e-5``, variances below about 10) and up to ``~0.5`` in
the cases with a large ``eps`` and small variances; the unbiased variance in the
normalization changes it by ``sqrt(M/(M-1)) - 1 >= 2.7%`` (training cases have
``M <= 18``). ``RTOL = 1e-8`` sits two orders of magnitude under the smallest of these and
four above rounding (``tests/assignments/test_03_normalization.py`` measures both sides:
correct variants stay within 1/100 of the tolerance, every wrong one misses a hidden case
by more than 100 tolerances).
"""

from __future__ import annotations

import numpy as np

from reggrader.spec import Part, Spec, case, close
from reglib.numpy import norm as np_norm
from reglib.numpy import spectral as np_spectral

RTOL = 1e-8
ATOL = 1e-10


def _rule() -> dict:
    return close(rtol=RTOL, atol=ATOL)


_rng = np.random.default_rng(20_03)


# --------------------------------------------------------------------------- inputs


def _view(ndim: int, axis: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def _per_channel(shape, loc=3.0, scale=(0.5, 2.0)) -> np.ndarray:
    """Normal data with a different offset and scale in each channel (axis 1)."""
    c = shape[1]
    locs = _rng.uniform(-loc, loc, c).reshape(_view(len(shape), 1))
    scales = _rng.uniform(*scale, c).reshape(_view(len(shape), 1))
    return locs + scales * _rng.standard_normal(shape)


def _per_row(shape, loc=3.0, scale=(0.5, 2.0)) -> np.ndarray:
    """Normal data with a different offset and scale in each vector along the last axis."""
    lead = shape[:-1] + (1,)
    return _rng.uniform(-loc, loc, lead) + _rng.uniform(*scale, lead) * _rng.standard_normal(shape)


def _affine(c: int) -> tuple[np.ndarray, np.ndarray]:
    """gamma of either sign (|gamma| in [0.5, 1.5]) and beta ~ N(0, 1)."""
    gamma = _rng.uniform(0.5, 1.5, c) * _rng.choice([-1.0, 1.0], c)
    return gamma, _rng.standard_normal(c)


def _running(c: int) -> tuple[np.ndarray, np.ndarray]:
    return _rng.standard_normal(c), _rng.uniform(0.5, 2.0, c)


# --------------------------------------------------------------------------- 1. batch norm forward


def batchnorm_forward_ref(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """What the notebook's ``_grade_batchnorm_forward`` returns, computed with reglib."""
    out, _, new_mean, new_var = np_norm.batchnorm_forward(
        x, gamma, beta, running_mean=running_mean, running_var=running_var,
        momentum=momentum, eps=eps, training=training)
    return {"out": out, "new running_mean": new_mean, "new running_var": new_var}


def _bn_case(shape, momentum=0.1, eps=1e-5, training=True, x=None, label=None, **data):
    c = shape[1]
    x = _per_channel(shape, **data) if x is None else x
    gamma, beta = _affine(c)
    running_mean, running_var = _running(c)
    return case(x, gamma, beta, running_mean, running_var, momentum, eps, training, label=label)


# the visible cell's examples, exactly as its asserts use them
_X_VIS = np.array([[1.0, 0.0], [3.0, 0.0], [1.0, 4.0], [3.0, 4.0]])
_GAMMA_VIS, _BETA_VIS = np.array([1.0, 0.5]), np.array([0.0, 1.0])
_RM_VIS, _RV_VIS = np.array([1.0, -1.0]), np.array([4.0, 0.25])
_X4_VIS = np.random.default_rng(0).normal(size=(2, 3, 3, 3)) * 2.0 + 1.0

BN_FORWARD_VISIBLE_CASES = [
    case(_X_VIS, _GAMMA_VIS, _BETA_VIS, np.zeros(2), np.ones(2), 0.1, 1e-5, True,
         label="the worked example, training"),
    case(_X_VIS, _GAMMA_VIS, _BETA_VIS, _RM_VIS, _RV_VIS, 0.1, 1e-5, False,
         label="the worked example, training=False"),
    case(_X4_VIS, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 1.0, 1e-5, True,
         label="the 4-d example (2, 3, 3, 3), momentum=1"),
]

_constant = _per_channel((6, 3))
_constant[:, 1] = 2.5  # one channel holds a single value: variance 0, out = beta there
BN_FORWARD_HIDDEN_CASES = [
    _bn_case((8, 3), label="training, x of shape (8, 3), momentum=0.1"),
    _bn_case((2, 4), label="training, a batch of two rows (2, 4)"),
    _bn_case((16, 5), momentum=0.3, eps=1e-3, label="training, (16, 5), momentum=0.3, eps=1e-3"),
    _bn_case((4, 3, 2, 2), label="training, a 4-d input (4, 3, 2, 2): M = 16 values per channel"),
    _bn_case((2, 2, 3, 3), momentum=0.2, label="training, a 4-d input (2, 2, 3, 3): M = 18 values per channel"),
    _bn_case((6, 3), eps=0.1, x=_constant, label="training, a constant channel, eps=0.1"),
    _bn_case((10, 4), momentum=0.9, eps=1e-2, scale=(0.05, 0.2),
             label="training, small variances (scales 0.05-0.2), eps=1e-2, momentum=0.9"),
    _bn_case((5, 3), momentum=1.0, label="training, momentum=1: the running statistics become the batch's"),
    _bn_case((7, 2), momentum=0.0, label="training, momentum=0: the running statistics stay"),
]
BN_FORWARD_EVAL_CASES = [
    _bn_case((5, 3), training=False, label="training=False, x of shape (5, 3)"),
    _bn_case((3, 2, 4, 4), training=False, label="training=False, a 4-d input (3, 2, 4, 4)"),
    _bn_case((1, 4), training=False, label="training=False, a batch of one row"),
    _bn_case((6, 3), eps=0.1, training=False, label="training=False, eps=0.1"),
    _bn_case((4, 5), momentum=0.5, eps=1e-3, training=False,
             label="training=False, momentum=0.5 (nothing to update)"),
]


# --------------------------------------------------------------------------- 2. batch norm backward


def batchnorm_backward_ref(x, gamma, beta, running_mean, running_var, momentum, eps, training, dout):
    """What ``_grade_batchnorm_backward`` returns: reglib's forward, then its backward."""
    _, cache, _, _ = np_norm.batchnorm_forward(
        x, gamma, beta, running_mean=running_mean, running_var=running_var,
        momentum=momentum, eps=eps, training=training)
    dx, dgamma, dbeta = np_norm.batchnorm_backward(dout, cache)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def _bn_back_case(shape, momentum=0.1, eps=1e-5, training=True, label=None, **data):
    c = shape[1]
    x = _per_channel(shape, **data)
    gamma, beta = _affine(c)
    running_mean, running_var = _running(c)
    dout = _rng.standard_normal(shape)
    return case(x, gamma, beta, running_mean, running_var, momentum, eps, training, dout, label=label)


def _visible_backward_cases() -> list:
    """The visible cell's gradient checks: the same draws in the same order."""
    rng = np.random.default_rng(1)
    cases = []
    for shape in [(5, 3), (2, 3, 2, 2)]:
        c = shape[1]
        x = rng.normal(size=shape) * 1.5 + 0.5
        gamma, beta = rng.normal(size=c), rng.normal(size=c)
        dout = rng.normal(size=shape)
        cases.append(case(x, gamma, beta, np.zeros(c), np.ones(c), 0.1, 1e-5, True, dout,
                          label=f"the gradient check on {shape}, training"))
    x = rng.normal(size=(4, 2))
    dout = rng.normal(size=(4, 2))
    cases.append(case(x, np.array([2.0, -1.0]), np.array([0.5, 0.0]), np.array([0.5, -0.5]),
                      np.array([2.0, 0.5]), 0.1, 1e-5, False, dout,
                      label="the gradient check on (4, 2), training=False"))
    return cases


BN_BACKWARD_VISIBLE_CASES = _visible_backward_cases()
BN_BACKWARD_HIDDEN_CASES = [
    _bn_back_case((8, 3), label="training, x of shape (8, 3)"),
    _bn_back_case((2, 4), label="training, a batch of two rows (2, 4)"),
    _bn_back_case((16, 5), eps=1e-3, label="training, (16, 5), eps=1e-3"),
    _bn_back_case((4, 3, 2, 2), label="training, a 4-d input (4, 3, 2, 2)"),
    _bn_back_case((3, 2, 3, 3), eps=0.1, scale=(0.1, 0.5), label="training, a 4-d input (3, 2, 3, 3), eps=0.1"),
    _bn_back_case((6, 3), training=False, label="training=False, x of shape (6, 3)"),
    _bn_back_case((2, 3, 2, 2), eps=1e-3, training=False, label="training=False, a 4-d input (2, 3, 2, 2)"),
]


# --------------------------------------------------------------------------- 3. layer norm


def layernorm_ref(x, gamma, beta, eps=1e-5):
    """reglib's layer norm over the last axis (torch.nn.LayerNorm(D))."""
    return np_norm.layernorm_forward(x, gamma, beta, eps=eps, normalized_ndim=1)[0]


def _ln_case(shape, eps=1e-5, x=None, label=None):
    x = _per_row(shape) if x is None else x
    gamma, beta = _affine(shape[-1])
    return case(x, gamma, beta, eps=eps, label=label)


_LN_X = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
_LN_GAMMA, _LN_BETA = np.array([1.0, 1.0, 2.0, 2.0]), np.array([0.0, 0.0, 0.0, 1.0])
_LN_X3 = np.random.default_rng(2).normal(size=(2, 3, 4)) * 3.0 + 1.0
LN_VISIBLE_CASES = [
    case(_LN_X, _LN_GAMMA, _LN_BETA, eps=1e-5, label="the worked example"),
    case(_LN_X[:1], _LN_GAMMA, _LN_BETA, eps=1e-5, label="its first row alone"),
    case(_LN_X + 10.0, _LN_GAMMA, _LN_BETA, eps=1e-5, label="the worked example shifted by 10"),
    case(_LN_X3, np.ones(4), np.zeros(4), eps=1e-3, label="the 3-d example (2, 3, 4), eps=1e-3"),
]
_ln_const = _per_row((4, 6))
_ln_const[2] = -1.25
LN_HIDDEN_CASES = [
    _ln_case((6, 5), label="x of shape (6, 5)"),
    _ln_case((2, 3, 8), label="a 3-d input (2, 3, 8): statistics over the last axis only"),
    _ln_case((1, 7), label="a single row (1, 7)"),
    _ln_case((5, 2), eps=0.1, label="rows of length 2, eps=0.1"),
    _ln_case((4, 6), eps=1e-3, x=_ln_const, label="a constant row, eps=1e-3"),
    _ln_case((3, 4, 5), eps=1e-2, x=_per_row((3, 4, 5), scale=(0.05, 0.2)),
             label="a 3-d input with small variances (scales 0.05-0.2), eps=1e-2"),
]


# --------------------------------------------------------------------------- 4. group norm


def groupnorm_ref(x, gamma, beta, num_groups, eps=1e-5):
    """reglib's group norm (torch.nn.GroupNorm(num_groups, C))."""
    return np_norm.groupnorm_forward(x, gamma, beta, num_groups, eps=eps)[0]


def _gn_case(shape, num_groups, eps=1e-5, label=None, **data):
    x = _per_channel(shape, **data)
    gamma, beta = _affine(shape[1])
    return case(x, gamma, beta, num_groups, eps=eps, label=label)


_GN_X = np.random.default_rng(3).normal(size=(2, 4, 2, 3)) * 2.0 + np.arange(4.0).reshape(1, 4, 1, 1)
_GN_GAMMA, _GN_BETA = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, -1.0, 1.0, 0.5])
_ONES4, _ZEROS4 = np.ones(4), np.zeros(4)
GN_VISIBLE_CASES = [
    case(_GN_X, _ONES4, _ZEROS4, 2, eps=1e-5, label="the example (2, 4, 2, 3), 2 groups"),
    case(_GN_X, _GN_GAMMA, _GN_BETA, 2, eps=1e-5, label="the example with gamma and beta"),
    case(_GN_X, _ONES4, _ZEROS4, 4, eps=1e-5, label="the example, 4 groups (instance norm)"),
    case(_GN_X, _ONES4, _ZEROS4, 1, eps=1e-5, label="the example, 1 group"),
    case(_GN_X[1:], _ONES4, _ZEROS4, 2, eps=1e-5, label="its second sample alone"),
]
GN_HIDDEN_CASES = [
    _gn_case((2, 6, 3, 3), 3, label="x of shape (2, 6, 3, 3), 3 groups of 2 channels"),
    _gn_case((3, 4, 2, 5), 2, label="x of shape (3, 4, 2, 5), 2 groups of 2 channels"),
    _gn_case((2, 8, 2, 2), 4, eps=1e-3, label="x of shape (2, 8, 2, 2), 4 groups, eps=1e-3"),
    _gn_case((2, 6, 2, 2), 2, label="x of shape (2, 6, 2, 2), 2 groups of 3 channels"),
    _gn_case((1, 6, 4, 4), 1, label="a single sample (1, 6, 4, 4), 1 group"),
    _gn_case((2, 4, 3, 3), 4, label="x of shape (2, 4, 3, 3), 4 groups (instance norm)"),
    _gn_case((4, 6, 1, 1), 3, label="1 x 1 images (4, 6, 1, 1), 3 groups"),
    _gn_case((2, 4, 3, 2), 2, eps=0.1, scale=(0.05, 0.2),
             label="small variances (scales 0.05-0.2), 2 groups, eps=0.1"),
]


# --------------------------------------------------------------------------- 5. power iteration


def power_iteration_ref(W, n_iters, u0):
    """reglib's power iteration: (sigma, u, v) after n_iters steps from u0."""
    return np_spectral.power_iteration(W, n_iters, u0=u0)


def _with_spectrum(m: int, n: int, singular_values) -> np.ndarray:
    """An m x n matrix with the given singular values and random singular vectors."""
    k = len(singular_values)
    U, _ = np.linalg.qr(_rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(_rng.standard_normal((n, k)))
    return U @ np.diag(singular_values) @ V.T


def _pi_case(W, n_iters, scale=1.0, label=None):
    return case(W, n_iters, scale * _rng.standard_normal(W.shape[0]), label=label)


_PI_DIAG = np.array([[3.0, 0.0], [0.0, 1.0]])
_pi_vis = np.random.default_rng(4)
_PI_W = _pi_vis.normal(size=(6, 4))
_PI_U0 = _pi_vis.normal(size=6)
PI_VISIBLE_CASES = [
    case(_PI_DIAG, 1, np.array([1.0, 1.0]), label="the worked example, one step"),
    case(_PI_DIAG, 29, np.array([1.0, 1.0]), label="the worked example, 29 steps"),
    case(_PI_W, 200, _PI_U0, label="the random 6 x 4 example, 200 steps"),
]
PI_HIDDEN_CASES = [
    _pi_case(_rng.standard_normal((5, 3)), 1, label="W of shape (5, 3), one step"),
    _pi_case(_rng.standard_normal((4, 6)), 2, label="a wide W (4, 6), two steps"),
    _pi_case(_rng.standard_normal((6, 6)), 5, label="a square W (6, 6), five steps"),
    _pi_case(_with_spectrum(8, 5, [2.0, 1.9, 1.0, 0.6, 0.2]), 3,
             label="W (8, 5) with sigma_2 / sigma_1 = 0.95, three steps (far from converged)"),
    _pi_case(_with_spectrum(5, 7, [4.0, 3.8, 1.0, 0.5, 0.1]), 10,
             label="W (5, 7) with sigma_2 / sigma_1 = 0.95, ten steps"),
    _pi_case(_with_spectrum(6, 4, [3.0, 1.0, 0.5, 0.1]), 60, label="W (6, 4) with a large gap, 60 steps"),
    _pi_case(_rng.standard_normal((7, 2)), 4, scale=10.0, label="W (7, 2), u0 far from unit length"),
    _pi_case(_rng.standard_normal((1, 4)), 3, label="a single row W (1, 4)"),
]


# --------------------------------------------------------------------------- the spec

SPEC = Spec(
    parts=[
        Part(test="batchnorm_forward_visible", call="_grade_batchnorm_forward",
             cases=BN_FORWARD_VISIBLE_CASES, reference=batchnorm_forward_ref, compare=_rule()),
        Part(test="batchnorm_forward_hidden", call="_grade_batchnorm_forward",
             cases=BN_FORWARD_HIDDEN_CASES, reference=batchnorm_forward_ref, compare=_rule()),
        Part(test="batchnorm_forward_eval_hidden", call="_grade_batchnorm_forward",
             cases=BN_FORWARD_EVAL_CASES, reference=batchnorm_forward_ref, compare=_rule()),
        Part(test="batchnorm_backward_visible", call="_grade_batchnorm_backward",
             cases=BN_BACKWARD_VISIBLE_CASES, reference=batchnorm_backward_ref, compare=_rule()),
        Part(test="batchnorm_backward_hidden", call="_grade_batchnorm_backward",
             cases=BN_BACKWARD_HIDDEN_CASES, reference=batchnorm_backward_ref, compare=_rule()),
        Part(test="layernorm_forward_visible", call="layernorm_forward",
             cases=LN_VISIBLE_CASES, reference=layernorm_ref, compare=_rule()),
        Part(test="layernorm_forward_hidden", call="layernorm_forward",
             cases=LN_HIDDEN_CASES, reference=layernorm_ref, compare=_rule()),
        Part(test="groupnorm_forward_visible", call="groupnorm_forward",
             cases=GN_VISIBLE_CASES, reference=groupnorm_ref, compare=_rule()),
        Part(test="groupnorm_forward_hidden", call="groupnorm_forward",
             cases=GN_HIDDEN_CASES, reference=groupnorm_ref, compare=_rule()),
        Part(test="power_iteration_visible", call="power_iteration",
             cases=PI_VISIBLE_CASES, reference=power_iteration_ref, compare=_rule()),
        Part(test="power_iteration_hidden", call="power_iteration",
             cases=PI_HIDDEN_CASES, reference=power_iteration_ref, compare=_rule()),
    ],
)
