"""In-process record-and-compare for assignment authors and fast tests (no sandbox).

``evaluate(course, assignment, answers)`` runs the source notebook's setup and locked
cells, the given answer sources (default: the reference solution) and, for every graded
test cell, its visible asserts and its record-and-compare part, in this process. It is
the quick way to check that the reference solution gets full marks, that alternative
correct implementations are accepted and that known wrong ones are caught, with exactly
the comparison the grader uses. It trusts the code it runs: never use it on submissions.
"""

from __future__ import annotations

import json
import re

import nbformat

from . import _recorder
from .compare import PartScore, score_part
from .course import Course
from .plan import cell_role, split_hidden
from .spec import kernel_part, load_spec, plan_part

__all__ = ["evaluate", "solution_sources"]

_SOLUTION = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def solution_sources(course: Course, assignment: str, notebook: str | None = None) -> dict[str, str]:
    """{grade_id: source} of the reference solution's answer cells (markers removed)."""
    name = notebook or course.notebooks(assignment)[0]
    nb = nbformat.read(course.source(assignment) / f"{name}.ipynb", as_version=4)
    return {
        c.metadata.nbgrader["grade_id"]: _SOLUTION.sub("", c.source)
        for c in nb.cells
        if c.cell_type == "code" and cell_role(c) == "answer"
    }


def evaluate(
    course: Course,
    assignment: str,
    answers: dict[str, str] | None = None,
    notebook: str | None = None,
    run_visible: bool = False,
) -> dict[str, PartScore]:
    """{test grade_id: PartScore} for the given answer sources (missing: the solution's).

    ``run_visible`` also executes the visible asserts of each test cell (their failures
    are reported as a part status ``"visible-failed"`` but do not change the score, as in
    the grader).
    """
    name = notebook or course.notebooks(assignment)[0]
    nb = nbformat.read(course.source(assignment) / f"{name}.ipynb", as_version=4)
    spec = load_spec(course.spec_path(assignment))
    reference = solution_sources(course, assignment, name)
    answers = {**reference, **(answers or {})}
    ns: dict = {"__name__": "__main__"}
    out: dict[str, PartScore] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        role = cell_role(cell)
        if role == "answer":
            try:
                exec(compile(answers[cell.metadata.nbgrader["grade_id"]], "<answer>", "exec"), ns)
            except Exception:  # noqa: BLE001 - a broken answer fails its tests below
                pass
        elif role == "test":
            gid = cell.metadata.nbgrader["grade_id"]
            visible_ok = True
            if run_visible:
                try:
                    exec(compile(split_hidden(cell.source)[0], "<visible>", "exec"), ns)
                except Exception:  # noqa: BLE001
                    visible_ok = False
            planned = plan_part(spec.part(gid, name), float(cell.metadata.nbgrader.get("points", 0)))
            rec = json.loads(json.dumps(_recorder.record(ns, kernel_part(planned))))
            verdict = score_part(planned, rec)
            if not visible_ok and verdict.status == "passed":
                verdict.status = "visible-failed"
            out[gid] = verdict
        elif role in ("plain", "locked"):
            exec(compile(cell.source, "<context>", "exec"), ns)
    return out
