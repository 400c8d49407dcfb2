"""Assignment 02 (dropout) judged through its record-and-compare spec, in this process.

The notebook's context cells (imports, the read-only helper cells) and answer cells are
executed in a fresh namespace; then, for every graded test cell of a function, both ways a
cell is judged are run:

* the **record-and-compare** part (what reggrader scores): ``reggrader._recorder.record``
  calls the function through the cell's part of ``solutions/02_dropout/grading.py``, the
  record crosses a JSON boundary and ``reggrader.compare.score_part`` scores it;
* the cell's **visible asserts** (what a student runs; stock nbgrader also needs them).

This shows that (a) the reference solution gets every point; (b) other correct ways of
writing each function (other samplers, caches, a batched MC pass, the unbiased std,
reglib's own implementations) get every point too: the tolerances accept them; (c) each
named wrong implementation (scaling by p or by keep_prob, a mask re-drawn in backward,
dropout left on in evaluation, DropPath per element, an MC prediction that leaves the model
in training mode, averages logits, or returns the std where the mean belongs, ...) loses
the points of at least one hidden part. It also checks the statistical tolerances against
exact standard deviations, the exact MC moments against reglib's ``mc_dropout_predict``,
the static tripwire on the answers, and the notebook's nbgrader structure.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from reggrader._recorder import decode
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
    "dropout": ["dropout_visible", "dropout_hidden", "dropout_rng_hidden"],
    "gaussian_dropout": ["gaussian_dropout_visible", "gaussian_dropout_hidden", "gaussian_dropout_rng_hidden"],
    "drop_path": ["drop_path_visible", "drop_path_hidden"],
    "mc_dropout_predict": ["mc_dropout_predict_visible", "mc_dropout_predict_hidden"],
}
HELPERS = {"dropout": "dropout_helpers", "gaussian_dropout": "gaussian_dropout_helpers",
           "drop_path": "drop_path_helpers", "mc_dropout_predict": "mc_dropout_helpers"}

A = Assignment("02_dropout", functions=FUNCTIONS)
SPEC, PLANNED = A.spec, A.planned
namespace, grade = A.namespace, A.grade  # (function, replacement source)


# --------------------------------------------------------------------------- structure


def test_cells_parts_and_hidden_regions():
    check_cells_and_hidden_regions(A, HELPERS)


def test_nbgrader_metadata_and_points():
    check_nbgrader_metadata(A, autograded=14, manual=3)
    check_task_points(A, FUNCTIONS, {"dropout": 4, "gaussian_dropout": 3, "drop_path": 3, "mc_dropout_predict": 4},
                      heading=lambda f: f"task_{f.replace('_predict', '')}")


def test_reggrader_lint_accepts_the_assignment():
    check_lint(A)


def test_grading_py_is_not_released():
    check_grading_py_not_released(A)


# --------------------------------------------------------------------------- (a) the reference


@pytest.mark.parametrize("function", FUNCTIONS)
def test_reference_solution_gets_every_point(function):
    results = grade(function)
    for gid, r in results.items():
        assert r["passed"] and r["visible_error"] is None, (gid, r)


# --------------------------------------------------------------------------- (b) correct variants

CORRECT = {
    "dropout": {
        "binomial_sampler_dict_cache": '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    x = np.asarray(x, dtype=float)
    if not training:
        return x, {"mask": None}
    keep = 1 - drop_prob
    m = rng.binomial(1, keep, size=x.shape).astype(bool) if mask is None else np.asarray(mask)
    return np.where(m, x / keep, 0.0), {"mask": m, "keep": keep}

def dropout_backward(dout, cache):
    if cache["mask"] is None:
        return dout
    return np.where(cache["mask"], dout / cache["keep"], 0.0)
''',
        "uniform_sampler_scaled_mask": '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    if not training:
        return np.array(x, dtype=float), np.ones(np.shape(x))
    if mask is None:
        mask = rng.uniform(size=np.shape(x)) >= drop_prob
    scaled = mask * (1.0 / (1.0 - drop_prob))
    return x * scaled, scaled

def dropout_backward(dout, cache):
    return dout * cache
''',
        "reglib": '''
from reglib.numpy.dropout import dropout_forward as _f, dropout_backward as dropout_backward

def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    return _f(x, drop_prob, rng=rng, mask=mask, training=training)
''',
    },
    "gaussian_dropout": {
        "normal_with_loc": '''
def gaussian_dropout(x, drop_prob, rng=None, noise=None, training=True):
    if not training:
        return x
    sigma = (drop_prob / (1 - drop_prob)) ** 0.5
    xi = rng.normal(1.0, sigma, size=np.shape(x)) if noise is None else 1 + sigma * np.asarray(noise)
    return np.asarray(x) * xi
''',
        "expanded": '''
def gaussian_dropout(x, drop_prob, rng=None, noise=None, training=True):
    x = np.asarray(x, dtype=float)
    if training and drop_prob > 0:
        eps = noise if noise is not None else rng.standard_normal(size=x.shape)
        return x + x * np.sqrt(drop_prob) / np.sqrt(1 - drop_prob) * eps
    return x.copy()
''',
        "reglib": '''
from reglib.numpy.dropout import gaussian_dropout_forward as _g

def gaussian_dropout(x, drop_prob, rng=None, noise=None, training=True):
    xi = None if noise is None else 1 + np.sqrt(drop_prob / (1 - drop_prob)) * noise
    return _g(x, drop_prob, rng=rng, noise=xi, training=training)[0]
''',
    },
    "drop_path": {
        "bernoulli_timm_style": '''
def drop_path(x, drop_prob, training, generator):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob, generator=generator)
    return x.div(keep_prob) * random_tensor
''',
        "torch_bernoulli_full": '''
def drop_path(x, drop_prob, training, generator):
    if not training or drop_prob == 0:
        return x
    keep = 1.0 - drop_prob
    b = torch.bernoulli(torch.full((x.shape[0],), keep, dtype=x.dtype), generator=generator)
    return x * (b / keep).view(-1, *([1] * (x.dim() - 1)))
''',
        "rand_ge_drop_prob": '''
def drop_path(x, drop_prob, training, generator):
    if training and drop_prob > 0:
        u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype)
        alive = (u >= drop_prob).to(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        return alive * x / (1 - drop_prob)
    return x
''',
        "reglib": '''
from reglib.torch.depth import drop_path as _dp

def drop_path(x, drop_prob, training, generator):
    return _dp(x, drop_prob, training, generator)
''',
    },
    "mc_dropout_predict": {
        "dropout_layers_only": '''
def mc_dropout_predict(model, x, n_samples):
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        p = torch.stack([model(x).softmax(-1) for _ in range(n_samples)])
    for m, flag in modes:
        m.training = flag
    return p.mean(0), p.std(0, correction=0)
''',
        "one_batched_pass_unbiased_std": '''
def mc_dropout_predict(model, x, n_samples):
    was = model.training
    model.train(True)
    with torch.no_grad():
        logits = model(x.repeat(n_samples, *([1] * (x.dim() - 1))))
    model.train(was)
    p = torch.softmax(logits, dim=-1).reshape(n_samples, x.shape[0], -1)
    return p.mean(dim=0), p.std(dim=0)
''',
        "running_sums": '''
def mc_dropout_predict(model, x, n_samples):
    mode = model.training
    model.train()
    s1 = s2 = 0
    with torch.no_grad():
        for _ in range(n_samples):
            p = torch.nn.functional.softmax(model(x), dim=1)
            s1, s2 = s1 + p, s2 + p * p
    model.train(mode)
    mean = s1 / n_samples
    return mean, (s2 / n_samples - mean**2).clamp_min(0).sqrt()
''',
        "reglib": '''
from reglib.torch.dropout import mc_dropout_predict as _mc

def mc_dropout_predict(model, x, n_samples):
    return _mc(model, x, n_samples)
''',
    },
}
CORRECT_CASES = [(f, name) for f, impls in CORRECT.items() for name in impls]


@pytest.mark.parametrize(("function", "name"), CORRECT_CASES, ids=[f"{f}-{n}" for f, n in CORRECT_CASES])
def test_other_correct_implementations_get_every_point(function, name):
    results = grade(function, CORRECT[function][name])
    for gid, r in results.items():
        assert r["passed"] and r["visible_error"] is None, (gid, r)


# --------------------------------------------------------------------------- (c) wrong versions

_FORWARD = '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    x = np.asarray(x, dtype=float)
    if not training:
        return x.copy(), None
    keep = 1.0 - drop_prob
    if mask is None:
        mask = {sampler}
    mask = np.asarray(mask, dtype=bool)
    return x * mask * {scale}, (mask, {scale})
'''
_BACKWARD = '''
def dropout_backward(dout, cache):
    if cache is None:
        return np.asarray(dout, dtype=float)
    mask, scale = cache
    return dout * mask * scale
'''


def _dropout(sampler="rng.random(x.shape) < keep", scale="(1.0 / keep)") -> str:
    return _FORWARD.format(sampler=sampler, scale=scale) + _BACKWARD


_GAUSS = '''
def gaussian_dropout(x, drop_prob, rng=None, noise=None, training=True):
    x = np.asarray(x, dtype=float)
    if not training:
        return x.copy()
    eps = {draw} if noise is None else np.asarray(noise, dtype=float)
    sigma = {sigma}
    return {out}
'''


def _gauss(draw="rng.standard_normal(x.shape)", sigma="np.sqrt(drop_prob / (1 - drop_prob))",
           out="x * (1.0 + sigma * eps)") -> str:
    return _GAUSS.format(draw=draw, sigma=sigma, out=out)


_DP = '''
def drop_path(x, drop_prob, training, generator):
    if {skip}:
        return x
    keep = 1.0 - drop_prob
    shape = {shape}
    alive = {draw} < {prob}
    return {out}
'''


def _dp(skip="not training or drop_prob == 0.0", shape="(x.shape[0],) + (1,) * (x.ndim - 1)",
        draw="torch.rand(shape, generator=generator, dtype=x.dtype)", prob="keep",
        out="x * alive / keep") -> str:
    return _DP.format(skip=skip, shape=shape, draw=draw, prob=prob, out=out)


_MC = '''
def mc_dropout_predict(model, x, n_samples):
    was_training = model.training
    {on}
    with torch.no_grad():
        logits = torch.stack([model(x) for _ in range(n_samples)])
    {restore}
    probs = torch.softmax(logits, dim=-1)
    return {ret}
'''


def _mc(on="model.train()", restore="model.train(was_training)",
        ret="probs.mean(0), probs.std(0, correction=0)") -> str:
    return _MC.format(on=on, restore=restore, ret=ret)


WRONG = {
    "dropout": {
        "scale_by_p": _dropout(scale="drop_prob"),
        "scale_by_keep_prob": _dropout(scale="keep"),
        "no_scaling": _dropout(scale="1.0"),
        "on_in_eval_mode": _dropout().replace("    if not training:\n        return x.copy(), None\n", ""),
        "mask_redrawn_in_backward": '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    x = np.asarray(x, dtype=float)
    if not training:
        return x.copy(), None
    keep = 1.0 - drop_prob
    m = rng.random(x.shape) < keep if mask is None else np.asarray(mask, dtype=bool)
    return x * m / keep, (rng, m, keep)

def dropout_backward(dout, cache):
    if cache is None:
        return dout
    rng, m, keep = cache
    if rng is not None:  # draws a fresh mask: not the one of the forward pass
        m = rng.random(m.shape) < keep
    return dout * m / keep
''',
        "keeps_with_drop_prob": _dropout(sampler="rng.random(x.shape) < drop_prob"),
        "one_mask_for_all_rows": _dropout(sampler="np.broadcast_to(rng.random(x.shape[1:]) < keep, x.shape)"),
        "global_numpy_rng": _dropout(sampler="np.random.random(x.shape) < keep"),
        "backward_without_scale": _FORWARD.format(sampler="rng.random(x.shape) < keep", scale="(1.0 / keep)")
        + _BACKWARD.replace("dout * mask * scale", "dout * mask"),
        "modifies_x_in_place": '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    if not training:
        return x, None
    keep = 1.0 - drop_prob
    mask = rng.random(x.shape) < keep if mask is None else mask
    x *= mask / keep
    return x, (mask, keep)

def dropout_backward(dout, cache):
    if cache is None:
        return dout
    return dout * cache[0] / cache[1]
''',
    },
    "gaussian_dropout": {
        "variance_p": _gauss(sigma="np.sqrt(drop_prob)"),
        "std_p_over_q_no_sqrt": _gauss(sigma="drop_prob / (1 - drop_prob)"),
        "noise_taken_as_xi": _gauss(out="x * (1.0 + sigma * eps) if noise is None else x * noise"),
        "zero_mean_factor": _gauss(out="x * sigma * eps"),
        "additive_noise": _gauss(out="x + sigma * eps"),
        "on_in_eval_mode": _gauss().replace("    if not training:\n        return x.copy()\n", ""),
        "global_numpy_rng": _gauss(draw="np.random.standard_normal(x.shape)"),
        "one_draw_for_all_units": _gauss(draw="rng.standard_normal()"),
    },
    "drop_path": {
        "per_element": _dp(shape="x.shape"),
        "scale_by_keep_prob": _dp(out="x * alive * keep"),
        "no_scaling": _dp(out="x * alive"),
        "on_in_eval_mode": _dp(skip="drop_prob == 0.0"),
        "global_torch_rng": _dp(draw="torch.rand(shape, dtype=x.dtype)"),
        "keeps_with_drop_prob": _dp(prob="drop_prob"),
        "one_draw_per_batch": _dp(shape="(1,) * x.ndim"),
        "modifies_x_in_place": _dp(out="x.mul_(alive / keep)"),
    },
    "mc_dropout_predict": {
        "averages_logits": _mc(ret="torch.softmax(logits.mean(0), dim=-1), probs.std(0, correction=0)"),
        "mode_not_restored": _mc(restore="pass"),
        "eval_mode_at_the_end": _mc(restore="model.eval()"),
        "dropout_not_active": _mc(on="model.eval()"),
        "std_and_mean_swapped": _mc(ret="probs.std(0, correction=0), probs.mean(0)"),
        "std_where_the_mean_belongs": _mc(ret="probs.std(0, correction=0), probs.std(0, correction=0)"),
        "variance_instead_of_std": _mc(ret="probs.mean(0), probs.var(0, correction=0)"),
        "no_softmax": _mc(ret="logits.mean(0), logits.std(0, correction=0)"),
    },
}
WRONG_CASES = [(f, name) for f, impls in WRONG.items() for name in impls]
# wrong versions that pass every visible test and the exact parts: only the statistical part catches them
ONLY_RNG_PART_CATCHES = {
    ("dropout", "mask_redrawn_in_backward"): "dropout_rng_hidden",
    ("dropout", "keeps_with_drop_prob"): "dropout_rng_hidden",
    ("dropout", "one_mask_for_all_rows"): "dropout_rng_hidden",
    ("dropout", "global_numpy_rng"): "dropout_rng_hidden",
    ("gaussian_dropout", "global_numpy_rng"): "gaussian_dropout_rng_hidden",
}


@pytest.mark.parametrize(("function", "name"), WRONG_CASES, ids=[f"{f}-{n}" for f, n in WRONG_CASES])
def test_wrong_implementations_lose_points_in_a_hidden_part(function, name):
    results = grade(function, WRONG[function][name])
    failed = failed_parts(results)
    hidden = {g for g in FUNCTIONS[function] if not g.endswith("_visible")}
    assert failed & hidden, f"{name} gets every hidden point of {function}: {results}"
    if (function, name) in ONLY_RNG_PART_CATCHES:
        assert failed == {ONLY_RNG_PART_CATCHES[function, name]}, results
        assert all(r["visible_error"] is None for r in results.values()), results


def test_the_kernel_never_sees_an_expected_value():
    check_kernel_never_sees_an_expected_value(A)


def test_named_failures_are_reported_by_summary_without_the_expected_value():
    results = grade("drop_path", WRONG["drop_path"]["per_element"])
    why = " ".join(results["drop_path_hidden"]["why"])
    assert "'largest spread of out/x within one sample'" in why, why
    results = grade("mc_dropout_predict", WRONG["mc_dropout_predict"]["mode_not_restored"])
    assert any("'modes after the call'" in w for w in results["mc_dropout_predict_hidden"]["why"])
    results = grade("dropout", WRONG["dropout"]["modifies_x_in_place"])
    assert any("in place" in w for w in results["dropout_hidden"]["why"]), results["dropout_hidden"]
    results = grade("dropout", WRONG["dropout"]["keeps_with_drop_prob"])
    text = " ".join(results["dropout_rng_hidden"]["reasons"])
    assert "'fraction of units kept'" in text
    for case in PLANNED["dropout_rng_hidden"]["cases"]:  # neither the exact values nor the errors
        for key, value in decode(case["expected"]["result"]).items():
            if isinstance(value, float) and len(f"{value:.3g}") >= 4:  # 0.82, 1.11, ... (not 2 or 0.5)
                assert f"{value:.3g}" not in text and f"{value:.6f}" not in text, (key, value)


# --------------------------------------------------------------------------- the tolerances


G = A.grading_module()


def _args(gid):
    return [(c.args, c.label) for c in SPEC.part(gid).cases]


def test_statistical_tolerances_cover_six_exact_standard_deviations():
    """Each random summary's exact sd (worst case of the parameters used) times Z <= the part's atol."""
    for gid in ("dropout_rng_hidden",):
        atol = SPEC.part(gid).compare["atol"]
        for (shape, drop_prob, _seed, training), _ in _args(gid):
            n = math.prod(shape)
            pairs = n - math.prod(shape[1:])
            q = 1 - drop_prob
            a = q * q + (1 - q) ** 2
            cov = q**3 + (1 - q) ** 3 - a * a  # two row pairs sharing a row
            sds = [math.sqrt(q * (1 - q) / n), math.sqrt(a * (1 - a) / n),
                   math.sqrt(max(a * (1 - a) + 2 * cov, 0.0) / pairs)]
            assert G.Z * max(sds) <= atol + 1e-15
    atol = SPEC.part("gaussian_dropout_rng_hidden").compare["atol"]
    for (shape, drop_prob, _seed, _training), _ in _args("gaussian_dropout_rng_hidden"):
        n, pairs = math.prod(shape), math.prod(shape) - math.prod(shape[1:])
        s2 = drop_prob / (1 - drop_prob)
        sds = [math.sqrt(s2 / n), math.sqrt(s2 / (2 * n)), s2 / math.sqrt(pairs)]
        assert G.Z * max(sds) <= atol
    for gid in ("drop_path_visible", "drop_path_hidden"):
        atol = SPEC.part(gid).compare["atol"]
        for (shape, drop_prob, _training, _seed), _ in _args(gid):
            q = 1 - drop_prob
            a = q * q + (1 - q) ** 2
            assert G.Z * max(math.sqrt(q * (1 - q) / shape[0]), math.sqrt(a * (1 - a) / shape[0])) <= atol
    for gid in ("mc_dropout_predict_visible", "mc_dropout_predict_hidden"):
        atol = SPEC.part(gid).compare["atol"]
        for (W1, b1, W2, b2, drop_prob, x, T, _seed, _mode), _ in _args(gid):
            mean, std, probs, weights = G.mc_exact(W1, b1, W2, b2, drop_prob, x)
            var = std**2
            mu4 = np.tensordot(weights, (probs - mean) ** 4, axes=1)
            sd_mean = np.sqrt(var / T)
            # delta method for the sample std; where sigma is ~0 the std itself is ~0
            sd_std = np.where(std > 1e-6, np.sqrt(np.maximum(mu4 - var**2, 0) / T) / (2 * np.maximum(std, 1e-6)), 0)
            assert G.Z * max(sd_mean.max(), sd_std.max()) <= atol


def test_wrong_mc_versions_miss_by_several_tolerances():
    """The designed models separate the named MC mistakes from the truth by >= 3 atol (exactly computed)."""
    atol = SPEC.part("mc_dropout_predict_hidden").compare["atol"]
    for (W1, b1, W2, b2, drop_prob, x, _T, _seed, _mode), _ in _args("mc_dropout_predict_hidden"):
        mean, std, probs, weights = G.mc_exact(W1, b1, W2, b2, drop_prob, x)
        q = 1 - drop_prob
        h = np.maximum(x @ W1.T + b1, 0)
        masks = np.array(list(itertools.product([0.0, 1.0], repeat=W1.shape[0])))
        mean_logits = np.tensordot(weights, (h[None] * masks[:, None, :] / q) @ W2.T + b2, axes=1)
        assert np.abs(G._softmax(mean_logits) - mean).max() > 3 * atol, "softmax of the mean logits"
        assert std.max() > 3 * atol, "dropout switched off (std 0)"
        assert np.abs(std - std**2).max() > 3 * atol, "variance for std"
        assert np.abs(std - mean).max() > 3 * atol, "std for mean"


def test_exact_mc_moments_match_reglib_mc_dropout_predict():
    """Oracle: reglib's mc_dropout_predict with many passes on the notebook's model vs the enumeration."""
    from reglib.torch.dropout import mc_dropout_predict

    ns = namespace()
    T = 20000
    for (W1, b1, W2, b2, drop_prob, x, _T, seed, _mode), _ in _args("mc_dropout_predict_hidden")[:2]:
        model = ns["_mc_model"](W1, b1, W2, b2, drop_prob).eval()
        mean, std = mc_dropout_predict(model, torch.from_numpy(x), T, generator=torch.Generator().manual_seed(seed))
        exact_mean, exact_std, _, _ = G.mc_exact(W1, b1, W2, b2, drop_prob, x)
        bound = 6 * 0.5 / math.sqrt(T)
        assert np.abs(mean.numpy() - exact_mean).max() < bound
        assert np.abs(std.numpy() - exact_std).max() < bound
        assert not model.training


def test_summaries_in_grading_py_match_the_notebook_helpers():
    """The trusted summaries and the kernel-side helpers compute the same thing (on reglib)."""
    from reglib.numpy import dropout as npd
    from reglib.torch.depth import drop_path

    ns = namespace()
    ns["dropout_forward"] = lambda x, p, rng=None, mask=None, training=True: npd.dropout_forward(
        x, p, rng=rng, mask=mask, training=training)
    ns["dropout_backward"] = npd.dropout_backward
    ns["drop_path"] = drop_path
    ns["gaussian_dropout"] = G._gaussian_reglib
    for args in [((50, 40), 0.3, 7, True), ((20, 5, 4), 0.5, 8, False)]:
        assert ns["_grade_dropout_with_rng"](*args) == G.dropout_rng_summary(
            ns["dropout_forward"], npd.dropout_backward, *args)
        assert ns["_grade_gaussian_with_rng"](*args) == G.gaussian_rng_summary(G._gaussian_reglib, *args)
    for args in [((300, 4), 0.3, True, 9), ((100, 2, 3), 0.5, False, 10)]:
        assert ns["_grade_drop_path"](*args) == G.drop_path_summary(drop_path, *args)


# --------------------------------------------------------------------------- static tripwire


def test_answers_pass_the_static_tripwire_and_reglib_is_flagged():
    sources = [src for f, impls in CORRECT.items() for n, src in impls.items() if n != "reglib"]
    check_static_tripwire(A, sources, CORRECT["drop_path"]["reglib"])


# --------------------------------------------------------------------------- the reference, by invariants

SOLUTION = namespace()
finite = st.floats(-10, 10, allow_nan=False, width=64)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=5), elements=finite),
       st.floats(0.0, 0.95), st.integers(0, 2**32 - 1))
def test_reference_dropout_backward_is_the_adjoint_of_forward(x, drop_prob, seed):
    """For a fixed mask dropout is linear and diagonal: <f(x), g> = <x, f^T(g)>, and E[out] = x."""
    rng = np.random.default_rng(seed)
    mask = rng.random(x.shape) < 1 - drop_prob
    dout = rng.standard_normal(x.shape)
    out, cache = SOLUTION["dropout_forward"](x, drop_prob, mask=mask)
    dx = SOLUTION["dropout_backward"](dout, cache)
    assert np.isclose(np.sum(out * dout), np.sum(x * dx), rtol=1e-10, atol=1e-10)
    assert np.array_equal(out == 0, ~mask | (x == 0))
    # averaging over both masks of one unit with their probabilities gives x back exactly
    kept, _ = SOLUTION["dropout_forward"](x, drop_prob, mask=np.ones(x.shape, bool))
    assert np.allclose((1 - drop_prob) * kept, x, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.floats(0.05, 0.95), st.integers(0, 2**31))
def test_reference_drop_path_acts_per_sample(n, c, l, drop_prob, seed):
    x = torch.rand(n, c, l, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5
    out = SOLUTION["drop_path"](x, drop_prob, True, torch.Generator().manual_seed(seed + 1))
    ratio = (out / x).reshape(n, -1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-12, atol=0)
    factor = ratio[:, 0]
    assert torch.all((factor == 0) | torch.isclose(factor, torch.tensor(1 / (1 - drop_prob), dtype=x.dtype)))
    assert SOLUTION["drop_path"](x, drop_prob, False, None) is x
