"""Record-and-compare core: the wire format, the trusted comparison, the spec helpers.

Oracles: numpy's own ``np.allclose``/``np.array_equal`` for the comparison rule (the grader
re-implements the rule outside the kernel and must agree with numpy everywhere), exact
round trips for the JSON encoding, and hand-made records for every malformed case.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reggrader import _recorder
from reggrader._recorder import DecodeError, Rng, decode, encode, record
from reggrader.compare import compare_value, score_part
from reggrader.spec import Part, Spec, case, close, equal, hidden_block, kernel_part, plan_part

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)


def wire(x):
    """Encode, go through JSON text as the kernel's message does, decode."""
    return decode(json.loads(json.dumps(encode(x))))


@settings(max_examples=50, deadline=None)
@given(arrays)
def test_arrays_round_trip_exactly(a):
    b = wire(a)
    assert isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == a.shape
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@settings(max_examples=50, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | floats | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner),
    max_leaves=12,
))
def test_nested_values_round_trip(x):
    y = wire(x)

    def same(a, b):
        if isinstance(a, float):
            return isinstance(b, float) and (a == b or (np.isnan(a) and np.isnan(b)))
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
        return type(a) is type(b) and a == b

    assert same(x, y)


def test_unsupported_objects_become_opaque_and_never_compare_equal():
    class Sneaky:
        def __eq__(self, other):
            return True

        def __array_function__(self, *a, **k):
            return True

    enc = encode(Sneaky())
    assert enc == {"object": "Sneaky"}
    reason = compare_value(decode(enc), np.zeros(3), close())
    assert "object of type Sneaky" in reason


@pytest.mark.parametrize("bad", [
    {"array": {"dtype": "<f8", "shape": [2], "data": [1.0]}},          # size mismatch
    {"array": {"dtype": "|O", "shape": [1], "data": [1]}},              # object dtype
    {"array": {"dtype": "<f8", "shape": [-1], "data": []}},             # negative shape
    {"float": "one"},
    {"int": "9" * 5000},                                                # beyond int limits
    {"weird": 1},
    [1, 2],
])
def test_malformed_wire_values_are_rejected(bad):
    with pytest.raises((DecodeError, ValueError)):
        decode(bad)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=5),
               elements=st.floats(-1e6, 1e6, allow_nan=False)),
    st.floats(0, 1e-2), st.floats(0, 1e-3), st.integers(0, 2**32 - 1),
)
def test_close_agrees_with_numpy_allclose(expected, rtol, atol, seed):
    """The trusted rule is numpy's: |a - e| <= atol + rtol*|e|, same shape."""
    rng = np.random.default_rng(seed)
    actual = expected + rng.normal(scale=rng.choice([0, 1e-9, 1e-4, 1.0]), size=expected.shape)
    rule = close(rtol=rtol, atol=atol)
    mine = compare_value(actual, expected, rule) == ""
    assert mine == bool(np.allclose(actual, expected, rtol=rtol, atol=atol))


@pytest.mark.parametrize("actual, expected, fragment", [
    (np.zeros((3, 1)), np.zeros(3), "wrong shape: got (3, 1), expected (3,)"),
    ((1.0, np.zeros(2)), (1.0, np.zeros(3)), "item 1: wrong shape"),
    ([1.0], (1.0, 2.0), "returned 1 values, expected 2"),
    (np.array([np.nan]), np.array([1.0]), "NaN"),
    ("3.0", 3.0, "returned a string"),
    (np.array([np.inf]), np.array([-np.inf]), "infinite"),
    (2.0, 1.0, "wrong values: 1 of 1 entries far off"),
    (1.0 + 1e-6, 1.0, "wrong values: 1 of 1 entries close, but outside the tolerance"),
])
def test_close_reasons_name_the_problem_without_the_expected_values(actual, expected, fragment):
    reason = compare_value(actual, expected, close(rtol=1e-9))
    assert fragment in reason


def test_reasons_do_not_give_the_expected_value_away():
    """Knowing its own output, a student could recover the expected value from the error."""
    for expected in (4.883268633216044, np.array([0.1234567, -7.654321])):
        reason = compare_value(np.zeros_like(expected), expected, close(rtol=1e-9))
        for v in np.atleast_1d(expected):
            assert f"{v:.3g}" not in reason and f"{abs(v):.2g}" not in reason


def test_close_accepts_equivalent_forms():
    rule = close(rtol=1e-9)
    assert compare_value([1.0, np.arange(3.0)], (1.0, np.arange(3.0)), rule) == ""  # list for tuple
    assert compare_value(np.array([2.5]), 2.5, rule) == ""                          # size-1 for scalar
    assert compare_value(np.float32(2.5), 2.5, rule) == ""
    assert compare_value(np.arange(3), np.arange(3.0), rule) == ""                   # ints for floats
    assert compare_value(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), rule) == ""


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-5, 5)),
       hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-5, 5)))
def test_equal_agrees_with_numpy_array_equal(a, b):
    assert (compare_value(a, b, equal()) == "") == bool(np.array_equal(a, b))


# -- record -----------------------------------------------------------------------------------------
def _part(reference, call="f", cases=None, **kw):
    p = Part(test="t", call=call, cases=cases or [case(np.arange(3.0), 2.0)], reference=reference, **kw)
    return plan_part(p, points=2.0)


def test_record_then_score_full_and_partial_credit():
    cases = [case(np.arange(3.0) - k, 2.0) for k in range(4)]
    planned = _part(lambda x, a: a * x, cases=cases, scoring="fraction")
    ns = {"f": lambda x, a: a * x if x[0] != -2 else a * x + 1}
    rec = json.loads(json.dumps(record(ns, kernel_part(planned))))
    verdict = score_part(planned, rec)
    assert verdict.score == pytest.approx(2.0 * 3 / 4) and verdict.status == "failed"
    assert [c.ok for c in verdict.cases] == [True, True, False, True]
    planned_all = _part(lambda x, a: a * x, cases=cases)
    assert score_part(planned_all, rec).score == 0.0


def test_the_kernel_never_receives_expected_values():
    planned = _part(lambda x, a: a * x + 12345.678)
    sent = json.dumps(kernel_part(planned))
    assert "expected" not in sent and "12345.678" not in sent
    assert "expected" in json.dumps(planned)


def test_in_place_mutation_is_caught_and_rng_arguments_are_not_mistaken_for_it():
    def inplace(x, a):
        x *= a
        return x

    planned = _part(lambda x, a: a * x)
    rec = json.loads(json.dumps(record({"f": inplace}, kernel_part(planned))))
    verdict = score_part(planned, rec)
    assert verdict.score == 0 and "changed its argument `x` in place" in verdict.cases[0].reason

    planned = _part(lambda x, rng: x + rng.standard_normal(x.shape), cases=[case(np.zeros(4), Rng(7))])
    ns = {"f": lambda x, rng: x + rng.standard_normal(x.shape)}
    assert score_part(planned, json.loads(json.dumps(record(ns, kernel_part(planned))))).score == 2.0


def test_exceptions_expected_by_the_reference_must_be_raised_by_the_student():
    def ref(x, a):
        if a < 0:
            raise ValueError("a must be >= 0")
        return a * x

    planned = _part(ref, cases=[case(np.ones(2), -1.0), case(np.ones(2), 1.0)])
    good = {"f": lambda x, a: (_ for _ in ()).throw(ValueError("no")) if a < 0 else a * x}
    lax = {"f": lambda x, a: a * x}
    wrong_type = {"f": lambda x, a: (_ for _ in ()).throw(TypeError("no")) if a < 0 else a * x}
    scores = [score_part(planned, json.loads(json.dumps(record(ns, kernel_part(planned))))) for ns in (good, lax, wrong_type)]
    assert [s.score for s in scores] == [2.0, 0.0, 0.0]
    assert "did not raise ValueError" in scores[1].cases[0].reason
    assert "raised TypeError, expected it to raise ValueError" in scores[2].cases[0].reason


@pytest.mark.parametrize("rec, status", [
    (None, "no-record"),
    ("not a dict", "no-record"),
    ({"part": "other", "cases": []}, "no-record"),
    ({"part": "t", "cases": []}, "no-record"),                        # wrong number of cases
    ({"part": "t", "cases": [{"result": {"array": "x"}}]}, "failed"),  # malformed value
    ({"part": "t", "cases": [{"undefined": "f"}]}, "failed"),
    ({"part": "t", "cases": [{"raised": ["SystemExit", "BaseException"], "message": "0"}]}, "failed"),
])
def test_malformed_or_missing_records_score_zero(rec, status):
    planned = _part(lambda x, a: a * x)
    verdict = score_part(planned, rec)
    assert verdict.score == 0 and verdict.status == status


def test_a_missing_function_is_reported_by_name():
    planned = _part(lambda x, a: a * x)
    rec = json.loads(json.dumps(record({}, kernel_part(planned))))
    verdict = score_part(planned, rec)
    assert verdict.score == 0 and "`f` is not defined" in verdict.cases[0].reason


def test_keyboard_interrupt_is_not_swallowed_by_the_recorder():
    planned = _part(lambda x, a: a * x)

    def interrupted(x, a):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        record({"f": interrupted}, kernel_part(planned))


def test_spec_validation_and_helpers():
    with pytest.raises(ValueError, match="call"):
        Part(test="t", call="not a name", cases=[case(1)], reference=abs)
    with pytest.raises(ValueError, match="cases"):
        Part(test="t", call="f", cases=[], reference=abs)
    with pytest.raises(ValueError, match="scoring"):
        Part(test="t", call="f", cases=[case(1)], reference=abs, scoring="most")
    with pytest.raises(ValueError, match="rtol"):
        close(rtol=-1)
    with pytest.raises(ValueError, match="two parts"):
        Spec(parts=[Part("t", "f", [case(1)], abs), Part("t", "g", [case(1)], abs)])
    block = hidden_block("test_x")
    assert block.splitlines() == ["### BEGIN HIDDEN TESTS",
                                  'from reggrader.hidden import check; check("test_x")',
                                  "### END HIDDEN TESTS"]


def test_case_labels_describe_shapes_and_scalars_only():
    planned = plan_part(Part("t", "f", [case(np.ones((3, 2)), 0.25), case(1.0, label="mine")],
                             reference=lambda w, lam=0: w), 1)
    assert planned["cases"][0]["label"] == "case 1 (w of shape (3, 2), lam=0.25)"
    assert planned["cases"][1]["label"] == "case 2 (mine)"


def test_recorder_source_is_self_contained():
    """The record cell execs the module's source in an empty namespace: it must work there."""
    ns: dict = {}
    exec(open(_recorder.__file__).read(), ns)
    planned = _part(lambda x, a: a * x)
    rec = ns["record"]({"f": lambda x, a: a * x}, json.loads(json.dumps(kernel_part(planned))))
    assert score_part(planned, json.loads(json.dumps(rec))).score == 2.0


def test_local_evaluate_judges_answers_like_the_grader(course):
    """The author's in-process check: reference full marks, a wrong answer loses its part."""
    from reggrader.local import evaluate, solution_sources
    from tests.grading.helpers import WRONG_L2

    assert set(solution_sources(course, "toy")) == {"l2_penalty", "soft_threshold", "ridge"}
    ok = evaluate(course, "toy", run_visible=True)
    assert {g: v.score for g, v in ok.items()} == {"test_l2_penalty": 2.0, "test_soft_threshold": 2.0, "test_ridge": 3.0}
    bad = evaluate(course, "toy", {"l2_penalty": WRONG_L2}, run_visible=True)
    assert bad["test_l2_penalty"].score == 0 and bad["test_ridge"].score == 3.0
