"""Judging an assignment's test cells in this process, the way ``reggrader`` judges them.

Shared by ``tests/assignments/test_<NN_name>.py``. ``Assignment(name)`` reads the nbgrader
source notebook ``solutions/<name>/<name>.ipynb`` and its ``grading.py``, and sorts the cells:
the context cells (imports, read-only helpers; the setup cell left out), the answer cells
(``SOLUTIONS``, by grade_id), the graded test cells (``TESTS``) and their points; every test
cell's part is planned once (``PLANNED``: inputs and expected outcomes).

A test cell is judged in two ways, as in the sandbox:

* **record-and-compare** (what ``reggrader`` scores): ``reggrader._recorder.record`` calls the
  student's function on the cases of the cell's part, the record crosses a JSON boundary as
  data, and ``reggrader.compare.score_part`` compares it with the expected values outside
  the namespace;
* the cell's **visible asserts** (what a student runs), in the same namespace.

The module-level ``check_*`` functions hold the structural assertions every assignment
makes (metadata, the kernel never seeing an expected value, lint, the release without
``grading.py``, the static tripwire); each test file calls them and adds its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from types import ModuleType
from typing import Callable, Iterable

import nbformat

from reggrader import _recorder
from reggrader.compare import score_part
from reggrader.course import load_course
from reggrader.job import lint
from reggrader.plan import split_hidden
from reggrader.spec import kernel_part, load_spec, plan_part
from reggrader.static import scan_source
from tests.conftest import ROOT


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def strip_markers(source: str) -> str:
    """An answer cell without its ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(line for line in source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


class Assignment:
    """One assignment's source notebook, spec and planned parts.

    ``functions``: the graded test cells of each answer cell (for :meth:`grade`).
    ``record_first``: judge a cell by recording before running its visible asserts (the
    order assignment 03's tests use) instead of after them.
    """

    def __init__(self, name: str, *, functions: dict[str, list[str]] | None = None,
                 record_first: bool = False) -> None:
        self.name = name
        self.functions = functions or {}  # answer cell -> its graded test cells, in notebook order
        self.record_first = record_first
        self.notebook = ROOT / "solutions" / name / f"{name}.ipynb"
        self.grading = ROOT / "solutions" / name / "grading.py"
        self.spec = load_spec(self.grading)
        self.nb = nbformat.read(self.notebook, as_version=4)
        code = [c for c in self.nb.cells if c.cell_type == "code"]
        self.context = [c.source for c in code if not nbgrader_meta(c).get("solution")
                        and not nbgrader_meta(c).get("grade") and "setup" not in c.metadata.get("tags", [])]
        self.solutions = {nbgrader_meta(c)["grade_id"]: c.source for c in code if nbgrader_meta(c).get("solution")}
        self.tests = {nbgrader_meta(c)["grade_id"]: c.source for c in code if nbgrader_meta(c).get("grade")}
        self.points = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
                       for c in self.nb.cells if nbgrader_meta(c).get("grade")}
        # expected outcomes, computed once
        self.planned = {gid: plan_part(self.spec.part(gid), self.points[gid]) for gid in self.tests}

    # ------------------------------------------------------------------ cells

    def cell(self, grade_id: str):
        return next(c for c in self.nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)

    def answer_sources(self) -> list[str]:
        return [strip_markers(s) for s in self.solutions.values()]

    def grading_module(self) -> ModuleType:
        """``grading.py`` as a module (its helpers: summaries, tolerances, exact moments)."""
        spec = importlib.util.spec_from_file_location(f"_grading_{self.name[:2]}", self.grading)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    # ------------------------------------------------------------------ judging

    def namespace(self, function: str | None = None, replacement: str | Callable | None = None) -> dict:
        """Context cells and every reference answer; then ``replacement`` takes ``function``'s place.

        ``replacement``: the source of an answer cell (executed in the namespace) or a Python
        function (bound to the name ``function``).
        """
        ns: dict = {"__name__": "__main__"}
        for source in self.context + self.answer_sources():
            exec(compile(source, "<cell>", "exec"), ns)
        if callable(replacement):
            ns[function] = replacement
        elif replacement is not None:
            exec(compile(replacement, f"<{function}>", "exec"), ns)
        return ns

    def record(self, gid: str, ns: dict) -> dict:
        """The grader's record of test cell ``gid`` in ``ns``: exactly what crosses the kernel boundary."""
        with contextlib.redirect_stderr(io.StringIO()):
            rec = _recorder.record(ns, kernel_part(self.planned[gid]))
        return json.loads(json.dumps(rec))

    def verdict(self, gid: str, ns: dict):
        """The grader's verdict on test cell ``gid``: record in ``ns``, compare outside it."""
        return score_part(self.planned[gid], self.record(gid, ns))

    def visible_error(self, gid: str, ns: dict) -> str | None:
        """Run the visible part of test cell ``gid`` in ``ns``: None if it passes, else the exception.

        Output is swallowed: under reggrader a warning on stderr is not a failure.
        """
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(split_hidden(self.tests[gid])[0], gid, "exec"), ns)
        except Exception as exc:  # noqa: BLE001 (any exception fails the visible asserts)
            return f"{type(exc).__name__}: {exc}"
        return None

    def judge(self, gids: Iterable[str], ns: dict) -> dict[str, dict]:
        """For each test cell: the record-and-compare verdict and the visible asserts' fate."""
        out = {}
        for gid in gids:
            planned = self.planned[gid]
            if self.record_first:
                rec = self.record(gid, ns)
                visible_error = self.visible_error(gid, ns)
            else:
                visible_error = self.visible_error(gid, ns)
                rec = self.record(gid, ns)
            verdict = score_part(planned, rec)
            out[gid] = {
                "score": verdict.score,
                "passed": verdict.status == "passed" and verdict.score == planned["points"],
                "why": [f"{c.label}: {c.reason}" for c in verdict.cases if not c.ok],
                "reasons": [c.reason for c in verdict.cases if not c.ok],
                "visible_error": visible_error,
                "verdict": verdict,
                "record": rec,
            }
        return out


    def grade(self, function: str, replacement: str | Callable | None = None) -> dict[str, dict]:
        """For each test cell of ``function``: the record-and-compare verdict and the visible asserts' fate."""
        return self.judge(self.functions[function], self.namespace(function, replacement))


def failed_parts(results: dict) -> set[str]:
    return {gid for gid, r in results.items() if not r["passed"]}


# ---------------------------------------------------------------------- shared structural checks


def check_cells_and_hidden_regions(a: Assignment, helpers: dict[str, str], *,
                                   hidden_cells_name_the_call: bool = False) -> None:
    """One answer cell per function; its (read-only, reglib-free) helper cell, then its test
    cells; visible cells with plain asserts and no hidden region, hidden cells with no visible
    assert and the one-line hidden region; one part per graded test cell."""
    functions = a.functions
    assert sorted(a.solutions) == sorted(functions)
    assert sorted(a.tests) == sorted(g for gids in functions.values() for g in gids)
    assert {p.test for p in a.spec.parts} == set(a.tests), "one part per graded test cell"
    order = [nbgrader_meta(c).get("grade_id") for c in a.nb.cells]
    for function, gids in functions.items():
        chain = [function] + ([helpers[function]] if function in helpers else []) + gids
        positions = [order.index(g) for g in chain]
        assert positions == sorted(positions), f"{function}: answer, helper cell, then its test cells"
        for gid in gids:
            visible, hidden = split_hidden(a.tests[gid])
            assert "reglib" not in a.tests[gid], "the reference is called by the grader, outside the kernel"
            if gid.endswith("_visible"):  # plain asserts; the grader scores it on their examples
                assert hidden == [] and "HIDDEN TESTS" not in visible
                assert "assert " in visible and "visible tests passed" in visible
            else:  # record-and-compare: the hidden region only names the cell's part in grading.py
                assert hidden == [f'from reggrader.hidden import check; check("{gid}")'], (gid, hidden)
                assert "assert" not in visible, f"{gid}: the hidden cells have no visible asserts"
                if hidden_cells_name_the_call:
                    assert f"the grader calls {a.spec.part(gid).call} on its" in " ".join(
                        ln.lstrip("# ") for ln in visible.splitlines()), gid
    for helper in helpers.values():
        cell = a.cell(helper)
        assert nbgrader_meta(cell)["locked"] and not nbgrader_meta(cell)["grade"], "helper cells are read-only"
        assert "reglib" not in cell.source


def check_nbgrader_metadata(a: Assignment, *, autograded: float, manual: float) -> None:
    """nbgrader's schema on every cell but the setup cell; 1-3 points per graded cell; the totals,
    and the instructions stating the total."""
    grade_ids, got_auto, got_manual = [], 0.0, 0.0
    for cell in a.nb.cells:
        meta = nbgrader_meta(cell)
        if "setup" in cell.metadata.get("tags", []):
            assert not meta, "the setup cell carries no nbgrader metadata"
            continue
        assert meta, f"cell without nbgrader metadata: {cell.source[:60]!r}"
        assert meta["schema_version"] == 3
        assert set(meta) <= {"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}
        grade_ids.append(meta["grade_id"])
        if meta["grade"]:
            assert 1 <= meta["points"] <= 3, "1-3 points per graded cell"
            if cell.cell_type == "code":
                assert meta["locked"] and not meta["solution"], "test cells are locked, not solutions"
                got_auto += meta["points"]
            else:  # the written answer
                assert meta["solution"] and not meta["locked"]
                got_manual += meta["points"]
        else:
            assert "points" not in meta
            assert meta["locked"] != meta["solution"], "a cell is either a solution or read-only"
    assert len(grade_ids) == len(set(grade_ids)), "grade_id must be unique"
    assert (got_auto, got_manual) == (autograded, manual)
    instructions = a.cell("instructions").source
    assert f"{got_auto + got_manual:g} in total" in instructions, "the instructions state the total"


def check_task_points(a: Assignment, functions: dict[str, list[str]], per_task: dict[str, float],
                      heading: Callable[[str], str] = lambda f: f"task_{f}") -> None:
    """Each task's points are the sum of its test cells' and its heading states them."""
    got = {f: sum(a.points[g] for g in gids) for f, gids in functions.items()}
    assert got == per_task
    for function, pts in got.items():
        assert f"({pts:g} points)" in a.cell(heading(function)).source.splitlines()[0]


def check_kernel_never_sees_an_expected_value(a: Assignment) -> None:
    for gid, planned in a.planned.items():
        sent = json.dumps(kernel_part(planned))
        assert "expected" not in sent and "expected" in json.dumps(planned), gid


def check_lint(a: Assignment) -> None:
    assert lint(load_course(ROOT), a.name, a.spec) == []


def check_grading_py_not_released(a: Assignment) -> None:
    released = ROOT / "exercises" / a.name
    assert (released / f"{a.name}.ipynb").is_file()
    assert not (released / "grading.py").exists(), "grading.py holds the hidden cases: never release it"


def check_static_tripwire(a: Assignment, sources: Iterable[str], reglib_source: str) -> None:
    """The answers and ``sources`` pass the static scan; ``reglib_source`` is flagged for reglib."""
    for src in [*a.answer_sources(), *sources]:
        assert scan_source(src, a.spec.allowed_imports, a.spec.allowed_names) == [], src[:80]
    flags = scan_source(reglib_source, a.spec.allowed_imports, a.spec.allowed_names)
    assert any("reglib" in str(f) for f in flags)


__all__ = [
    "Assignment", "nbgrader_meta", "strip_markers", "failed_parts", "check_cells_and_hidden_regions",
    "check_nbgrader_metadata",
    "check_task_points", "check_kernel_never_sees_an_expected_value", "check_lint",
    "check_grading_py_not_released", "check_static_tripwire",
]
