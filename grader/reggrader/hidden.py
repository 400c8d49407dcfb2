"""``check(grade_id)``: the one line in the hidden part of a record-and-compare test cell.

Where it runs, and what it does there:

* In the **instructor's** Jupyter or under ``pytest --nbval-lax solutions/...`` (reggrader
  installed, ``grading.py`` reachable): it records the student's (here: the reference
  solution's) outputs and compares them with the spec's expected values in the same
  process, raising ``AssertionError`` with a per-case summary on a mismatch. This is how an
  author checks the solution notebook.
* Under **stock** ``nbgrader autograde`` it does the same inside the student's kernel
  (it finds the spec through the course root): that keeps nbgrader usable, but with
  nbgrader's weaknesses (the kernel is the student's).
* Under **reggrader** this line is never executed: the grader replaces the hidden part of
  the cell by a record-only cell and compares in its own process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import _recorder
from .compare import score_part
from .spec import SPEC_FILENAME, Spec, kernel_part, load_spec, plan_part

__all__ = ["check", "find_spec_file"]

_CACHE: dict[tuple[str, float], Spec] = {}


def find_spec_file(start: str | Path | None = None) -> Path:
    """Locate the ``grading.py`` that belongs to the notebook running in ``start`` (cwd).

    Order: ``$REGGRADER_SPEC``; ``grading.py`` in the directory; else the course root
    above it (the folder with ``nbgrader_config.py``) and
    ``<source_directory>/<this folder's name>/grading.py`` (as in nbgrader's autograded/).
    """
    env = os.environ.get("REGGRADER_SPEC")
    if env:
        return Path(env)
    here = Path(start or os.getcwd()).resolve()
    if (here / SPEC_FILENAME).is_file():
        return here / SPEC_FILENAME
    from .course import find_course_root, load_course

    root = find_course_root(here)
    if root is not None:
        course = load_course(root)
        candidate = course.spec_path(here.name)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"reggrader: no {SPEC_FILENAME} for the notebook in {here} "
        "(set REGGRADER_SPEC or run from the assignment folder)"
    )


def _spec(path: Path) -> Spec:
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = load_spec(path)
    return _CACHE[key]


def check(grade_id: str, namespace: dict | None = None) -> None:
    """Record and compare in this process; raise AssertionError unless every case passes."""
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    spec = _spec(find_spec_file())
    part = spec.part(grade_id)
    if part is None:
        raise KeyError(f"{SPEC_FILENAME} has no part for the test cell {grade_id!r}")
    planned = plan_part(part, points=1.0)
    rec = _recorder.record(ns, kernel_part(planned))
    rec = json.loads(json.dumps(rec))  # exactly what would cross the kernel boundary
    verdict = score_part(planned, rec)
    if verdict.status != "passed":
        lines = [f"{grade_id}: {verdict.message}"]
        lines += [f"  {c.label}: {c.reason}" for c in verdict.cases if not c.ok]
        raise AssertionError("\n".join(lines))
