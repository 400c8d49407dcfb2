"""Record-and-compare tests of assignment 02 (dropout): cases, trusted references, rules.

Read by the grader only (``reggrader``), never released (``nbgrader_config.py`` ignores
this file). Every graded test cell of ``02_dropout.ipynb`` has a part here: the
``*_visible`` cells are scored on the examples their asserts use, the hidden cells on the
grader's own inputs; a hidden cell's hidden region is the one line
``from reggrader.hidden import check; check("<grade_id>")``. Where a function's inputs or
outputs cannot cross the kernel boundary as data (a dropout cache, a ``torch.Generator``, a
model), the part calls a read-only helper cell of the notebook (``_grade_*``) that builds
them from arrays and seeds and returns arrays, numbers and flags.

Two kinds of parts:

* **Exact** (the randomness is fixed by the inputs: a given dropout mask or a given
  standard-normal noise array). The expected values come from reglib's reference
  implementation (``reglib.numpy.dropout``) and the rule is a tight ``close``.
* **Statistical** (the student's function draws its own random numbers from a seeded
  ``np.random.Generator``, ``torch.Generator`` or torch's global generator). A read-only
  helper cell of the notebook calls the student's function on large seeded inputs and
  returns *summaries* (kept fractions, factors ``out / x``, mean and spread of the noise,
  mode flags, MC means). The deterministic summaries are computed here by running the same
  summary with reglib's implementation; the random ones are replaced by their exact
  expectations (closed forms; for MC dropout an exact enumeration of all dropout masks).
  The rule is ``close(rtol=0, atol=ATOL)`` with ``ATOL`` = ``Z`` standard deviations of the
  noisiest summary of the part (binomial / CLT bounds below, worst case over the
  parameters used). A correct function fails a comparison with probability below about
  ``2e-9`` per compared number; the named wrong implementations miss by far more than
  ``ATOL`` (``tests/assignments/test_02_dropout.py`` checks both).

The notebook's helper cells and the summaries below must stay in step: the test file runs
reglib's own implementations through the notebook helpers and requires full marks.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from reggrader.spec import DEFAULT_ALLOWED_IMPORTS, Part, Spec, case, close
from reglib.numpy import dropout as np_dropout
from reglib.torch import depth as torch_depth

#: standard deviations a statistical summary may deviate before a case fails
Z = 6.0

# sizes of the statistical cases (the tolerances below are derived from them)
UNITS_SHAPES = [(400, 500), (200, 25, 40)]      # 200000 units: dropout and Gaussian dropout
N_UNIT_PAIRS = 199 * 500                         # neighbouring-row pairs of the smaller layout
DROP_PATH_SAMPLES = 40000                        # samples (rows) in every DropPath case
MC_SAMPLES = 3000                                # stochastic passes in every MC-dropout case


def _binomial_sd(n: int, dependence: float = 1.0) -> float:
    """Largest standard deviation of a mean of ``n`` indicators (Var <= 1/4 each).

    ``dependence = 3`` covers means of 1-dependent indicators (each correlated only with
    its two neighbours): Var(sum) <= n Var + 2 n |Cov| <= 3 n / 4.
    """
    return math.sqrt(dependence * 0.25 / n)


# dropout (rng): kept fraction and seed agreement are means of 200000 independent
# indicators, neighbouring-row agreement a mean of 99500 1-dependent ones.
ATOL_DROPOUT_RNG = Z * max(_binomial_sd(200000), _binomial_sd(N_UNIT_PAIRS, dependence=3.0))
# Gaussian dropout (rng), sigma <= 1 (drop_prob <= 1/2): the mean of xi has sd sigma/sqrt(n),
# the sample std sd ~ sigma/sqrt(2n), the neighbouring-row covariance (products of
# uncorrelated pairs) sd sigma^2/sqrt(n_pairs).
ATOL_GAUSSIAN_RNG = Z * 1.0 / math.sqrt(N_UNIT_PAIRS)
# DropPath: the kept fraction and the two-seed agreement are means of DROP_PATH_SAMPLES
# independent indicators.
ATOL_DROP_PATH = Z * _binomial_sd(DROP_PATH_SAMPLES)
# MC dropout: probabilities lie in [0, 1], so each pass has Var <= 1/4: the MC mean has
# sd <= 1/(2 sqrt(T)); the sample std (delta method, |p - mean| <= 1 so mu4 <= sigma^2)
# has sd <= 1/(2 sqrt(T)) as well.
ATOL_MC = Z * 0.5 / math.sqrt(MC_SAMPLES)


# --------------------------------------------------------------------------- inputs


def seeded_input(shape, seed: int) -> np.ndarray:
    """The input the helper cells build: random signs times magnitudes in [0.5, 2] (never 0)."""
    data = np.random.default_rng(seed + 10_000)
    return data.choice([-1.0, 1.0], size=shape) * data.uniform(0.5, 2.0, size=shape)


def seeded_upstream(shape, seed: int) -> np.ndarray:
    """The upstream gradient the dropout helper builds (after ``seeded_input``'s draws)."""
    data = np.random.default_rng(seed + 10_000)
    data.choice([-1.0, 1.0], size=shape)
    data.uniform(0.5, 2.0, size=shape)
    return data.standard_normal(shape)


_rng = np.random.default_rng(20_02)


def _away(shape) -> np.ndarray:
    return _rng.choice([-1.0, 1.0], size=shape) * _rng.uniform(0.3, 3.0, size=shape)


def _mask(shape, keep_prob: float) -> np.ndarray:
    return _rng.random(shape) < keep_prob


# --------------------------------------------------------------------------- 1. dropout, exact


def dropout_with_mask_ref(x, drop_prob, mask, dout, training):
    """(out, dx) of reglib's inverted dropout with the given mask."""
    out, cache = np_dropout.dropout_forward(x, drop_prob, mask=mask, training=training)
    return out, np_dropout.dropout_backward(dout, cache)


def _dropout_case(shape, drop_prob, training=True, mask=None, label=None):
    x = _away(shape)
    if mask is None:
        mask = _mask(shape, 1.0 - drop_prob)
    dout = _rng.standard_normal(shape)
    return case(x, drop_prob, mask, dout, training, label=label)


# the visible cell's worked examples, exactly as its asserts use them
_X_VIS = np.array([1.0, -2.0, 3.0, 4.0])
_M_VIS = np.array([True, False, True, False])
_grad_rng = np.random.default_rng(0)
_X_GRAD = _grad_rng.normal(size=(3, 5))
_DOUT_GRAD = _grad_rng.normal(size=(3, 5))
_M_GRAD = _grad_rng.random((3, 5)) < 0.7

DROPOUT_VISIBLE_CASES = [
    case(_X_VIS, 0.5, _M_VIS, np.ones(4), True, label="the worked example, training"),
    case(_X_VIS, 0.5, _M_VIS, np.ones(4), False, label="the worked example, training=False"),
    case(_X_GRAD, 0.3, _M_GRAD, _DOUT_GRAD, True, label="the gradient-check example"),
]
DROPOUT_HIDDEN_CASES = [
    _dropout_case((6,), 0.5),
    _dropout_case((4, 5), 0.2),
    _dropout_case((2, 3, 4), 0.75),
    _dropout_case((10,), 0.9, label="drop_prob=0.9: kept units are multiplied by 10"),
    _dropout_case((3, 7), 0.0, mask=np.ones((3, 7), dtype=bool), label="drop_prob=0 (every unit kept)"),
    _dropout_case((2, 6), 0.3, mask=np.zeros((2, 6), dtype=bool), label="a mask that drops every unit"),
    _dropout_case((5, 4), 0.4, training=False, label="training=False: the mask must be ignored"),
    _dropout_case((8,), 0.6, training=False, label="training=False, 1-d input"),
]


# --------------------------------------------------------------------------- 1. dropout, rng


def dropout_rng_summary(forward, backward, shape, drop_prob, seed, training):
    """The summary the notebook's ``_grade_dropout_with_rng`` returns, for given functions."""
    x = seeded_input(shape, seed)
    dout = seeded_upstream(shape, seed)
    x0 = x.copy()
    out, cache = forward(x, drop_prob, rng=np.random.default_rng(seed), training=training)
    dx = backward(dout, cache)
    again, _ = forward(x, drop_prob, rng=np.random.default_rng(seed), training=training)
    other, _ = forward(x, drop_prob, rng=np.random.default_rng(seed + 1), training=training)
    out, dx, again, other = (np.asarray(a, dtype=float) for a in (out, dx, again, other))
    kept, kept_other = out != 0, other != 0
    factor = out[kept] / x0[kept]
    return {
        "fraction of units kept": float(kept.mean()),
        "smallest factor out/x of a kept unit": float(factor.min()) if factor.size else 0.0,
        "largest factor out/x of a kept unit": float(factor.max()) if factor.size else 0.0,
        "backward: largest |dx - dout * out / x|": float(np.max(np.abs(dx - dout * out / x0))),
        "same seed twice: largest difference of the outputs": float(np.max(np.abs(out - again))),
        "agreement of the masks of neighbouring rows": float(np.mean(kept[1:] == kept[:-1])),
        "agreement of the masks drawn with two seeds": float(np.mean(kept == kept_other)),
        "x unchanged": bool(np.array_equal(x, x0)),
    }


def dropout_rng_ref(shape, drop_prob, seed, training):
    """reglib's summary, its random entries replaced by their exact expectations."""
    expected = dropout_rng_summary(np_dropout.dropout_forward, np_dropout.dropout_backward,
                                   shape, drop_prob, seed, training)
    if training and drop_prob > 0:
        q = 1.0 - drop_prob
        agree = q * q + (1.0 - q) ** 2
        expected["fraction of units kept"] = q
        expected["agreement of the masks of neighbouring rows"] = agree
        expected["agreement of the masks drawn with two seeds"] = agree
    return expected


DROPOUT_RNG_CASES = [
    case(UNITS_SHAPES[0], 0.5, 1, True, label="training, drop_prob=0.5, x of shape (400, 500)"),
    case(UNITS_SHAPES[0], 0.1, 2, True, label="training, drop_prob=0.1, x of shape (400, 500)"),
    case(UNITS_SHAPES[1], 0.8, 3, True, label="training, drop_prob=0.8, x of shape (200, 25, 40)"),
    case(UNITS_SHAPES[0], 0.0, 4, True, label="training, drop_prob=0 (every unit kept)"),
    case(UNITS_SHAPES[0], 0.5, 5, False, label="training=False (rng given): the identity"),
]


# --------------------------------------------------------------------------- 2. Gaussian dropout


def gaussian_ref(x, drop_prob, rng=None, noise=None, training=True):
    """reglib's Gaussian dropout; ``noise`` here is the standard-normal eps, xi = 1 + sigma eps."""
    if noise is not None:
        sigma = math.sqrt(drop_prob / (1.0 - drop_prob))
        noise = 1.0 + sigma * np.asarray(noise, dtype=float)
    return np_dropout.gaussian_dropout_forward(x, drop_prob, training=training, rng=rng, noise=noise)[0]


def _gaussian_case(shape, drop_prob, training=True, label=None):
    return case(_away(shape), drop_prob, noise=_rng.standard_normal(shape), training=training, label=label)


GAUSSIAN_VISIBLE_CASES = [
    case(np.array([1.0, 2.0]), 0.5, noise=np.array([1.0, -0.5]), label="the worked example, drop_prob=0.5"),
    case(np.array([4.0, -1.0, 2.0]), 0.2, noise=np.array([2.0, 0.0, -1.0]),
         label="the worked example, drop_prob=0.2"),
    case(np.array([1.0, 2.0]), 0.5, noise=np.array([1.0, -0.5]), training=False,
         label="the worked example, training=False"),
]
GAUSSIAN_HIDDEN_CASES = [
    _gaussian_case((7,), 0.5),
    _gaussian_case((3, 4), 0.2),
    _gaussian_case((2, 2, 5), 0.8, label="drop_prob=0.8: sigma = 2"),
    _gaussian_case((6,), 0.1),
    _gaussian_case((4, 3), 0.0, label="drop_prob=0: the identity"),
    _gaussian_case((3, 5), 0.5, training=False, label="training=False: the noise must be ignored"),
]


def gaussian_rng_summary(fn, shape, drop_prob, seed, training):
    """The summary the notebook's ``_grade_gaussian_with_rng`` returns, for a given function."""
    x = seeded_input(shape, seed)
    x0 = x.copy()
    out = np.asarray(fn(x, drop_prob, rng=np.random.default_rng(seed), training=training), dtype=float)
    again = np.asarray(fn(x, drop_prob, rng=np.random.default_rng(seed), training=training), dtype=float)
    xi = out / x0
    return {
        "mean of xi = out/x": float(xi.mean()),
        "standard deviation of xi": float(xi.std()),
        "covariance of xi between neighbouring rows": float(np.mean((xi[1:] - 1.0) * (xi[:-1] - 1.0))),
        "same seed twice: largest difference of the outputs": float(np.max(np.abs(out - again))),
        "x unchanged": bool(np.array_equal(x, x0)),
    }


def _gaussian_reglib(x, drop_prob, rng=None, training=True):
    return np_dropout.gaussian_dropout_forward(x, drop_prob, training=training, rng=rng)[0]


def gaussian_rng_ref(shape, drop_prob, seed, training):
    expected = gaussian_rng_summary(_gaussian_reglib, shape, drop_prob, seed, training)
    if training and drop_prob > 0:
        expected["mean of xi = out/x"] = 1.0
        expected["standard deviation of xi"] = math.sqrt(drop_prob / (1.0 - drop_prob))
        expected["covariance of xi between neighbouring rows"] = 0.0
    return expected


GAUSSIAN_RNG_CASES = [  # drop_prob <= 1/2 keeps sigma <= 1 (ATOL_GAUSSIAN_RNG assumes it)
    case(UNITS_SHAPES[0], 0.5, 11, True, label="training, drop_prob=0.5 (sigma = 1)"),
    case(UNITS_SHAPES[0], 0.2, 12, True, label="training, drop_prob=0.2 (sigma = 1/2)"),
    case(UNITS_SHAPES[1], 0.1, 13, True, label="training, drop_prob=0.1, x of shape (200, 25, 40)"),
    case(UNITS_SHAPES[0], 0.5, 14, False, label="training=False (rng given): the identity"),
]


# --------------------------------------------------------------------------- 3. DropPath


def _as_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy().astype(float)
    return np.asarray(t, dtype=float)


def drop_path_summary(fn, shape, drop_prob, training, seed):
    """The summary the notebook's ``_grade_drop_path`` returns, for a given function."""
    x = seeded_input(shape, seed)
    x0 = x.copy()
    xt = torch.from_numpy(x)  # shares memory with x: an in-place change shows in "x unchanged"
    out = fn(xt, drop_prob, training, torch.Generator().manual_seed(seed))
    again = fn(xt, drop_prob, training, torch.Generator().manual_seed(seed))
    other = fn(xt, drop_prob, training, torch.Generator().manual_seed(seed + 1))
    shape_out = list(out.shape)
    out, again, other = _as_numpy(out), _as_numpy(again), _as_numpy(other)
    ratio = (out / x0).reshape(shape[0], -1)   # one row per sample
    factor = ratio[:, 0]
    kept = factor != 0
    kept_other = (other / x0).reshape(shape[0], -1)[:, 0] != 0
    return {
        "output shape": shape_out,
        "largest spread of out/x within one sample": float(np.max(ratio.max(axis=1) - ratio.min(axis=1))),
        "smallest factor out/x of a kept sample": float(factor[kept].min()) if kept.any() else 0.0,
        "largest factor out/x of a kept sample": float(factor[kept].max()) if kept.any() else 0.0,
        "fraction of samples kept": float(kept.mean()),
        "same seed twice: largest difference of the outputs": float(np.max(np.abs(out - again))),
        "agreement of the samples kept with two seeds": float(np.mean(kept == kept_other)),
        "x unchanged": bool(np.array_equal(x, x0)),
    }


def drop_path_ref(shape, drop_prob, training, seed):
    expected = drop_path_summary(torch_depth.drop_path, shape, drop_prob, training, seed)
    if training and drop_prob > 0:
        q = 1.0 - drop_prob
        expected["fraction of samples kept"] = q
        expected["agreement of the samples kept with two seeds"] = q * q + (1.0 - q) ** 2
    return expected


DROP_PATH_VISIBLE_CASES = [
    case((DROP_PATH_SAMPLES, 3), 0.5, True, 21, label="training, drop_prob=0.5, x of shape (40000, 3)"),
    case((DROP_PATH_SAMPLES, 3), 0.5, False, 22, label="training=False: x itself"),
    case((DROP_PATH_SAMPLES, 3), 0.0, True, 23, label="drop_prob=0: x itself"),
]
DROP_PATH_HIDDEN_CASES = [
    case((DROP_PATH_SAMPLES, 6), 0.25, True, 24, label="training, drop_prob=0.25, x of shape (40000, 6)"),
    case((DROP_PATH_SAMPLES, 2, 3), 0.6, True, 25, label="training, drop_prob=0.6, x of shape (40000, 2, 3)"),
    case((DROP_PATH_SAMPLES, 4), 0.1, True, 26, label="training, drop_prob=0.1"),
    case((DROP_PATH_SAMPLES, 2, 2, 2), 0.5, True, 27, label="training, a 4-d input (40000, 2, 2, 2)"),
    case((DROP_PATH_SAMPLES, 2, 3), 0.6, False, 28, label="training=False, a 3-d input: x itself"),
]


# --------------------------------------------------------------------------- 4. MC dropout


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mc_exact(W1, b1, W2, b2, drop_prob, x):
    """Exact mean and std over the dropout masks of softmax(model(x)).

    The model is Linear(W1, b1) -> ReLU -> Dropout(drop_prob) -> Linear(W2, b2) (torch's
    inverted dropout: kept hidden units are divided by q = 1 - drop_prob). With H hidden
    units there are 2^H masks, mask m having probability q^|m| (1 - q)^(H - |m|).
    Returns (mean, std, the per-mask probabilities, the mask weights).
    """
    q = 1.0 - drop_prob
    h = np.maximum(x @ W1.T + b1, 0.0)                                       # (N, H)
    H = W1.shape[0]
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=H)))          # (M, H)
    k = masks.sum(axis=1)
    weights = q**k * (1.0 - q) ** (H - k)                                    # sums to 1
    probs = _softmax((h[None] * masks[:, None, :] / q) @ W2.T + b2)          # (M, N, K)
    mean = np.tensordot(weights, probs, axes=1)
    var = np.tensordot(weights, (probs - mean) ** 2, axes=1)
    return mean, np.sqrt(var), probs, weights


def mc_ref(W1, b1, W2, b2, drop_prob, x, n_samples, seed, train_mode):
    """What ``_grade_mc_dropout`` must return: the exact moments and the restored modes."""
    mean, std, _, _ = mc_exact(W1, b1, W2, b2, drop_prob, x)
    return {"mean": mean, "std": std, "modes after the call": [bool(train_mode)] * 5}


def _mc_case(n_in, hidden, n_classes, n, drop_prob, seed, train_mode, scale=2.5, label=None):
    W1 = _rng.normal(size=(hidden, n_in)) * scale
    b1 = _rng.normal(size=hidden) * 0.5
    W2 = _rng.normal(size=(n_classes, hidden)) * scale
    b2 = _rng.normal(size=n_classes) * 0.5
    x = _rng.normal(size=(n, n_in))
    return case(W1, b1, W2, b2, drop_prob, x, MC_SAMPLES, seed, train_mode, label=label)


MC_VISIBLE_CASES = [
    _mc_case(3, 4, 3, 5, 0.0, 31, False, label="dropout with drop_prob=0: std 0, mean = softmax(model(x))"),
    _mc_case(3, 4, 3, 5, 0.5, 32, False, label="drop_prob=0.5, model in eval mode"),
]
MC_HIDDEN_CASES = [
    _mc_case(3, 4, 3, 6, 0.5, 33, False, label="drop_prob=0.5, model in eval mode"),
    _mc_case(2, 5, 4, 4, 0.3, 34, False, label="drop_prob=0.3, 4 classes, model in eval mode"),
    _mc_case(3, 4, 3, 5, 0.5, 35, True, label="drop_prob=0.5, model in training mode"),
    _mc_case(4, 3, 2, 6, 0.7, 36, False, label="drop_prob=0.7, 2 classes, model in eval mode"),
]


# --------------------------------------------------------------------------- the spec


def _exact() -> dict:
    return close(rtol=1e-9, atol=1e-12)


SPEC = Spec(
    parts=[
        Part(test="dropout_visible", call="_grade_dropout_with_mask", cases=DROPOUT_VISIBLE_CASES,
             reference=dropout_with_mask_ref, compare=_exact()),
        Part(test="dropout_hidden", call="_grade_dropout_with_mask", cases=DROPOUT_HIDDEN_CASES,
             reference=dropout_with_mask_ref, compare=_exact()),
        Part(test="dropout_rng_hidden", call="_grade_dropout_with_rng", cases=DROPOUT_RNG_CASES,
             reference=dropout_rng_ref, compare=close(rtol=0.0, atol=ATOL_DROPOUT_RNG)),
        Part(test="gaussian_dropout_visible", call="gaussian_dropout", cases=GAUSSIAN_VISIBLE_CASES,
             reference=gaussian_ref, compare=_exact()),
        Part(test="gaussian_dropout_hidden", call="gaussian_dropout", cases=GAUSSIAN_HIDDEN_CASES,
             reference=gaussian_ref, compare=_exact()),
        Part(test="gaussian_dropout_rng_hidden", call="_grade_gaussian_with_rng", cases=GAUSSIAN_RNG_CASES,
             reference=gaussian_rng_ref, compare=close(rtol=0.0, atol=ATOL_GAUSSIAN_RNG)),
        Part(test="drop_path_visible", call="_grade_drop_path", cases=DROP_PATH_VISIBLE_CASES,
             reference=drop_path_ref, compare=close(rtol=0.0, atol=ATOL_DROP_PATH)),
        Part(test="drop_path_hidden", call="_grade_drop_path", cases=DROP_PATH_HIDDEN_CASES,
             reference=drop_path_ref, compare=close(rtol=0.0, atol=ATOL_DROP_PATH)),
        Part(test="mc_dropout_predict_visible", call="_grade_mc_dropout", cases=MC_VISIBLE_CASES,
             reference=mc_ref, compare=close(rtol=0.0, atol=ATOL_MC)),
        Part(test="mc_dropout_predict_hidden", call="_grade_mc_dropout", cases=MC_HIDDEN_CASES,
             reference=mc_ref, compare=close(rtol=0.0, atol=ATOL_MC)),
    ],
    # tasks 3 and 4 are written with torch; `model.modules()` is the ordinary way to reach the
    # dropout layers of a model (the static tripwire flags the attribute `.modules` otherwise)
    allowed_imports=DEFAULT_ALLOWED_IMPORTS + ("torch",),
    allowed_names=("modules",),
)
