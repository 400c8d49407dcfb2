"""Compare half of record-and-compare: trusted checks of recorded outputs against expected ones.

Runs in the grader's own process, never in the student's kernel. Inputs are plain data:
the expected value (computed by the assignment's reference when the job was prepared) and
the record the kernel emitted (untrusted JSON). A comparison is described by data too
(``{"kind": "close", "rtol": ..., "atol": ...}``), so a job file carries everything needed
to score it. Messages are written for the student: they name the case and what went wrong
(shape, type, size of the error) and never print the expected values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._recorder import DecodeError, Opaque, decode

__all__ = ["CaseResult", "PartScore", "compare_value", "score_part"]

_DECODE_ERRORS = (DecodeError, ValueError, TypeError, OverflowError, RecursionError, KeyError)


@dataclass
class CaseResult:
    label: str
    ok: bool
    reason: str = ""


@dataclass
class PartScore:
    """The trusted verdict for one graded test cell."""

    grade_id: str
    points: float
    score: float
    status: str  # "passed", "failed", "no-record", "flagged", "timeout", "error"
    cases: list[CaseResult] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict:
        return {
            "grade_id": self.grade_id,
            "points": self.points,
            "score": self.score,
            "status": self.status,
            "message": self.message,
            "cases": [{"label": c.label, "ok": c.ok, "reason": c.reason} for c in self.cases],
        }


def _describe(x: Any) -> str:
    if isinstance(x, Opaque):
        return repr(x)
    if isinstance(x, bool):
        return "a bool"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} (dtype {x.dtype})"
    if isinstance(x, tuple):
        return f"a tuple of {len(x)} items"
    if isinstance(x, list):
        return f"a list of {len(x)} items"
    if isinstance(x, dict):
        return "a dict"
    if isinstance(x, str):
        return "a string"
    if x is None:
        return "None"
    return f"an object of type {type(x).__name__}"


def _as_numeric(x: Any) -> np.ndarray | None:
    """A real numeric array for a number, a numeric array or a tensor; None otherwise."""
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return np.asarray(float(x))
    if isinstance(x, np.ndarray) and x.dtype.kind in "iuf":
        return x.astype(np.float64)
    return None


def _close(actual: Any, expected: Any, rule: dict, where: str) -> str:
    """Return '' when ``actual`` matches ``expected`` under ``rule``, else a reason."""
    rtol = float(rule.get("rtol", 1e-7))
    atol = float(rule.get("atol", 0.0))
    equal_nan = bool(rule.get("equal_nan", True))
    prefix = f"{where}: " if where else ""
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            return f"{prefix}returned {_describe(actual)}, expected {len(expected)} values (a tuple)"
        if len(actual) != len(expected):
            return f"{prefix}returned {len(actual)} values, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            reason = _close(a, e, rule, f"{where}[{i}]" if where else f"item {i}")
            if reason:
                return reason
        return ""
    if expected is None or isinstance(expected, (str, bool)):
        if type(actual) is type(expected) and actual == expected:
            return ""
        return f"{prefix}returned {_describe(actual)}, expected {_describe(expected)}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return f"{prefix}returned {_describe(actual)}, expected a dict with keys {sorted(expected)}"
        for k in expected:
            reason = _close(actual[k], expected[k], rule, f"{where}[{k!r}]" if where else repr(k))
            if reason:
                return reason
        return ""
    if hasattr(expected, "detach"):  # a torch tensor: compare as arrays
        expected = expected.detach().cpu().numpy()
    if hasattr(actual, "detach"):
        actual = actual.detach().cpu().numpy()
    exp = _as_numeric(expected)
    if exp is None:
        return f"{prefix}cannot compare {_describe(expected)}"
    act = _as_numeric(actual)
    if act is None:
        return f"{prefix}returned {_describe(actual)}, expected " + (
            "a number" if exp.shape == () else f"an array of shape {exp.shape}"
        )
    if exp.shape == () and act.size == 1 and rule.get("scalar_from_size1", True):
        act = act.reshape(())
    if act.shape != exp.shape:
        if exp.shape == ():
            return f"{prefix}returned an array of shape {act.shape}, expected a scalar"
        return f"{prefix}wrong shape: got {act.shape}, expected {exp.shape}"
    a_nan, e_nan = np.isnan(act), np.isnan(exp)
    if equal_nan:
        if (a_nan != e_nan).any():
            return f"{prefix}NaN where a number was expected (or a number where NaN was expected)"
    elif a_nan.any() or e_nan.any():
        return f"{prefix}NaN in the result"
    mask = ~(a_nan | e_nan)
    a, e = act[mask], exp[mask]
    inf = np.isinf(a) | np.isinf(e)
    if (a[inf] != e[inf]).any():
        return f"{prefix}infinite values do not match"
    a, e = a[~inf], e[~inf]
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.abs(a - e)
        bad = err > atol + rtol * np.abs(e)
    if bad.any():
        # never the size of the error: with their own output known, it would give the
        # expected value away; only a coarse hint (near miss or not)
        n_bad = int(bad.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = err / np.maximum(np.abs(e), 1e-300)
        hint = "close, but outside the tolerance" if float(np.max(rel[bad])) < 1e-3 else "far off"
        return (
            f"{prefix}wrong values: {n_bad} of {a.size} entries {hint} "
            f"(tolerance: rtol={rtol:g}, atol={atol:g})"
        )
    return ""


def _equal(actual: Any, expected: Any, where: str) -> str:
    prefix = f"{where}: " if where else ""
    if isinstance(expected, np.ndarray):
        if not isinstance(actual, np.ndarray) or actual.shape != expected.shape:
            return f"{prefix}returned {_describe(actual)}, expected {_describe(expected)}"
        return "" if np.array_equal(actual, expected) else f"{prefix}wrong values"
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return f"{prefix}returned {_describe(actual)}, expected {_describe(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            reason = _equal(a, e, f"{where}[{i}]" if where else f"item {i}")
            if reason:
                return reason
        return ""
    if type(actual) is not type(expected) and not (
        isinstance(actual, (int, float)) and isinstance(expected, (int, float))
        and not isinstance(actual, bool) and not isinstance(expected, bool)
    ):
        return f"{prefix}returned {_describe(actual)}, expected {_describe(expected)}"
    return "" if actual == expected else f"{prefix}wrong value"


def compare_value(actual: Any, expected: Any, rule: dict) -> str:
    """Compare decoded values under a rule; '' means they match."""
    kind = rule.get("kind", "close")
    if kind == "close":
        return _close(actual, expected, rule, "")
    if kind == "equal":
        return _equal(actual, expected, "")
    raise ValueError(f"unknown comparison kind {kind!r}")


def compare_case(expected: dict, entry: Any, rule: dict, check_inputs: bool) -> str:
    """Compare one recorded case (untrusted) with its expected outcome; '' means passed."""
    if not isinstance(entry, dict):
        return "malformed record"
    if "undefined" in entry:
        return f"`{str(entry['undefined'])[:80]}` is not defined"
    if check_inputs and entry.get("mutated"):
        names = ", ".join(f"`{str(n)[:40]}`" for n in list(entry["mutated"])[:5])
        return f"changed its argument {names} in place (it must not modify its inputs)"
    if "raised" in expected:
        want = expected["raised"][0]
        got = entry.get("raised")
        if isinstance(got, list) and want in got:
            return ""
        if isinstance(got, list) and got:
            return f"raised {str(got[0])[:80]}, expected it to raise {want}"
        return f"did not raise {want}"
    if "raised" in entry:
        # the type only: a message is the student's own text and could smuggle the hidden
        # inputs into the feedback (reglib is public: known inputs mean known answers)
        got = entry["raised"]
        name = str(got[0])[:80] if isinstance(got, list) and got else "an exception"
        return f"raised {name} (run the visible tests to see the message)"
    if "result" not in entry:
        return "malformed record"
    try:
        actual = decode(entry["result"], torch_ok=False)
        want = decode(expected["result"], torch_ok=False)
    except _DECODE_ERRORS:
        return "malformed record"
    return compare_value(actual, want, rule)


def score_part(part: dict, rec: Any) -> PartScore:
    """Score one graded test cell from its plan (``part``) and the record (or None)."""
    points = float(part["points"])
    result = PartScore(part["grade_id"], points, 0.0, "failed")
    labels = [c["label"] for c in part["cases"]]
    if rec is None:
        result.status = "no-record"
        result.message = "the grader received no outputs from this test (see the messages above)"
        return result
    if not isinstance(rec, dict) or rec.get("part") != part["id"] or not isinstance(rec.get("cases"), list):
        result.status = "no-record"
        result.message = "the grader received malformed outputs for this test"
        return result
    if len(rec["cases"]) != len(part["cases"]):
        result.status = "no-record"
        result.message = "the grader received outputs for the wrong number of cases"
        return result
    rule = part["compare"]
    passed = 0
    for label, case, entry in zip(labels, part["cases"], rec["cases"]):
        reason = compare_case(case["expected"], entry, rule, part.get("check_inputs", True))
        result.cases.append(CaseResult(label, not reason, reason))
        passed += not reason
    n = len(part["cases"])
    if part.get("scoring", "all") == "fraction":
        result.score = round(points * passed / n, 4) if n else points
    else:
        result.score = points if passed == n else 0.0
    result.status = "passed" if passed == n else "failed"
    result.message = f"{passed} of {n} cases passed"
    return result

