"""How an assignment declares its hidden tests: cases, a reference and a comparison.

An assignment's hidden tests live in ``solutions/<NN_name>/grading.py`` (next to the
source notebook; nbgrader is configured never to release it). The file builds a
:class:`Spec`::

    import numpy as np
    from reggrader.spec import Part, Spec, case, close
    from reglib.numpy import prox

    rng = np.random.default_rng(0)
    SPEC = Spec(parts=[
        Part(test="test_soft_threshold",          # grade_id of the graded test cell
             call="soft_threshold",                # the student's function
             cases=[case(rng.standard_normal(5), 0.3),
                    case(rng.standard_normal((3, 4)), 1.0, label="a matrix")],
             reference=prox.soft_threshold,        # trusted: computes the expected values
             compare=close(rtol=1e-10, atol=1e-12)),
    ])

and the hidden part of that test cell is one line (``hidden_block`` writes it)::

    ### BEGIN HIDDEN TESTS
    from reggrader.hidden import check; check("test_soft_threshold")
    ### END HIDDEN TESTS

When the grader runs a submission, the hidden part only *records*: it calls the
student's function on the cases and emits the outputs as data. The expected values are
computed here, outside the student's kernel, and compared in the grader's process.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ._recorder import Rng, decode, encode

__all__ = [
    "Case",
    "Part",
    "Spec",
    "Rng",
    "case",
    "close",
    "equal",
    "load_spec",
    "hidden_block",
    "DEFAULT_ALLOWED_IMPORTS",
    "SPEC_FILENAME",
]

SPEC_FILENAME = "grading.py"

#: Modules a solution cell may import without being flagged for review.
DEFAULT_ALLOWED_IMPORTS = (
    "numpy",
    "math",
    "cmath",
    "functools",
    "itertools",
    "operator",
    "typing",
    "collections",
    "dataclasses",
    "numbers",
    "warnings",
    "time",
    "random",
    "statistics",
    "copy",
    "string",
    "re",
    "heapq",
    "bisect",
    "fractions",
    "decimal",
    "enum",
    "abc",
    "contextlib",
    "sys",
    "__future__",
)


@dataclass
class Case:
    """One call of the student's function: positional and keyword arguments."""

    args: tuple
    kwargs: dict
    label: str | None = None
    call: str | None = None


def case(*args: Any, label: str | None = None, call: str | None = None, **kwargs: Any) -> Case:
    """Declare a case: ``case(x, 0.5, label="a 3x4 matrix")``.

    Arguments are numpy arrays, numbers, bools, strings, None, tuples/lists/dicts of
    those, torch tensors, or :class:`Rng` (a fresh ``np.random.default_rng(seed)``).
    ``call`` overrides the part's function name for this case.
    """
    return Case(tuple(args), dict(kwargs), label, call)


def close(rtol: float = 1e-7, atol: float = 0.0, equal_nan: bool = True, size1_as_scalar: bool = True) -> dict:
    """Numbers/arrays match when ``|actual - expected| <= atol + rtol*|expected|`` elementwise.

    Shapes must match exactly; where a scalar is expected, a size-1 array is accepted
    unless ``size1_as_scalar=False`` (then only a number or a 0-d array is). Tuples and
    lists are compared item by item; NaN matches NaN when ``equal_nan``.
    """
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    return {"kind": "close", "rtol": float(rtol), "atol": float(atol), "equal_nan": bool(equal_nan),
            "scalar_from_size1": bool(size1_as_scalar)}


def equal() -> dict:
    """Exact equality (ints, bools, strings, integer arrays)."""
    return {"kind": "equal"}


@dataclass
class Part:
    """The record-and-compare definition of one graded test cell.

    ``test`` is the test cell's nbgrader ``grade_id`` (its points come from the notebook);
    ``call`` the function the student writes; ``reference`` computes the expected value of
    each case in the trusted process (an exception it raises becomes "the student's
    function must raise the same"); ``compare`` is :func:`close` or :func:`equal`.
    ``check_inputs`` fails a case whose function modified an argument in place;
    ``scoring`` is ``"all"`` (the points need every case) or ``"fraction"``.
    """

    test: str
    call: str
    cases: list[Case]
    reference: Callable[..., Any]
    compare: dict = field(default_factory=close)
    check_inputs: bool = True
    scoring: str = "all"
    names: list[str] | None = None
    notebook: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.test, str) or not self.test:
            raise ValueError(f"test must be a grade_id string, got {self.test!r}")
        if not isinstance(self.call, str) or not self.call.isidentifier():
            raise ValueError(f"call must be a function name, got {self.call!r}")
        if not self.cases:
            raise ValueError(f"cases must not be empty (part {self.test!r})")
        if not all(isinstance(c, Case) for c in self.cases):
            raise TypeError(f"cases must be made with case(...), got {self.cases!r:.80}")
        if self.scoring not in ("all", "fraction"):
            raise ValueError(f"scoring must be 'all' or 'fraction', got {self.scoring!r}")
        if not callable(self.reference):
            raise TypeError(f"reference must be callable, got {type(self.reference).__name__}")


@dataclass
class Spec:
    """All hidden tests of one assignment, plus what solution cells may import."""

    parts: list[Part]
    allowed_imports: tuple[str, ...] = DEFAULT_ALLOWED_IMPORTS
    allowed_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen = set()
        for p in self.parts:
            key = (p.notebook, p.test)
            if key in seen:
                raise ValueError(f"two parts for the same test cell {p.test!r}")
            seen.add(key)

    def part(self, grade_id: str, notebook: str | None = None) -> Part | None:
        for p in self.parts:
            if p.test == grade_id and (p.notebook is None or notebook is None or p.notebook == notebook):
                return p
        return None


def load_spec(path: str | Path) -> Spec:
    """Import a ``grading.py`` (trusted instructor code) and return its ``SPEC``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no record-and-compare spec at {path}")
    name = f"_reggrader_spec_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, Spec):
        raise TypeError(f"{path} must define SPEC = reggrader.spec.Spec(...), got {type(spec).__name__}")
    return spec


def hidden_block(grade_id: str) -> str:
    """The hidden part of a record-and-compare test cell, delimiters included."""
    return (
        "### BEGIN HIDDEN TESTS\n"
        f'from reggrader.hidden import check; check("{grade_id}")\n'
        "### END HIDDEN TESTS"
    )


def _describe_arg(name: str, value: Any) -> str:
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"{name} of shape {tuple(value.shape)}"
    if isinstance(value, float):
        return f"{name}={value:.4g}"
    if isinstance(value, (int, bool, str)) or value is None:
        return f"{name}={value!r}"
    if isinstance(value, Rng):
        return f"{name}=default_rng({value.seed})"
    return name


def _param_names(part: Part, n_args: int) -> list[str]:
    if part.names:
        return list(part.names)
    try:
        params = [
            p.name
            for p in inspect.signature(part.reference).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params[:n_args] + [f"argument {i}" for i in range(len(params), n_args)]


def expected_of(part: Part, c: Case) -> dict:
    """Run the reference on a decoded copy of the case (exactly what the student gets)."""
    args = [decode(encode(a)) for a in c.args]
    kwargs = {k: decode(encode(v)) for k, v in c.kwargs.items()}
    try:
        out = part.reference(*args, **kwargs)
    except Exception as exc:  # the student's function must raise the same
        return {"raised": [k.__name__ for k in type(exc).__mro__]}
    return {"result": encode(copy.deepcopy(out))}


def plan_part(part: Part, points: float) -> dict:
    """The data a job carries for one test cell: inputs, expected outcomes, the rule."""
    n_args = max(len(c.args) for c in part.cases)
    names = _param_names(part, n_args)
    cases = []
    for i, c in enumerate(part.cases):
        if c.label:
            label = f"case {i + 1} ({c.label})"
        else:
            bits = [_describe_arg(names[j], a) for j, a in enumerate(c.args)]
            bits += [_describe_arg(k, v) for k, v in c.kwargs.items()]
            label = f"case {i + 1} ({', '.join(bits)})"
        entry = {
            "label": label,
            "args": [encode(a) for a in c.args],
            "kwargs": {k: encode(v) for k, v in c.kwargs.items()},
            "expected": expected_of(part, c),
        }
        if c.call:
            entry["call"] = c.call
        cases.append(entry)
    return {
        "id": part.test,
        "grade_id": part.test,
        "call": part.call,
        "names": names,
        "points": float(points),
        "compare": dict(part.compare),
        "check_inputs": bool(part.check_inputs),
        "scoring": part.scoring,
        "cases": cases,
    }


def kernel_part(planned: dict) -> dict:
    """What the record cell sends into the kernel: the inputs, never the expected values."""
    return {
        "id": planned["id"],
        "call": planned["call"],
        "names": planned["names"],
        "cases": [
            {k: v for k, v in c.items() if k in ("args", "kwargs", "call")} for c in planned["cases"]
        ],
    }
