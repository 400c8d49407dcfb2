"""Helpers for the grader's tests: the fixture course and ways to build submissions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "course"
ASSIGNMENT = "toy"


def release_in_memory(course_root: Path, assignment: str) -> None:
    """Write ``exercises/<assignment>/`` as nbgrader's generate_assignment would."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    src = course_root / "solutions" / assignment
    dst = course_root / "exercises" / assignment
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        res = {"nbgrader": {"assignment": assignment, "notebook": path.stem}}
        for cls in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
                    ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata):
            nb, res = cls(config=config).preprocess(nb, res)
        nbformat.write(nb, dst / path.name)


# -- building submissions ---------------------------------------------------------------------
def solution_nb(course_root: Path) -> nbformat.NotebookNode:
    """The reference solution as a student would submit it (release + answers filled in)."""
    rel = nbformat.read(course_root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    src = nbformat.read(course_root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {c.metadata.nbgrader["grade_id"]: c.source for c in src.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(rel)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if c.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            c.source = "\n".join(ln for ln in answers[gid].splitlines() if "SOLUTION" not in ln)
    return nb


def release_nb(course_root: Path) -> nbformat.NotebookNode:
    return nbformat.read(course_root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def answer(nb: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            c.source = source
            return nb
    raise KeyError(grade_id)


def cell_index(nb: nbformat.NotebookNode, grade_id: str) -> int:
    for i, c in enumerate(nb.cells):
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def submit(folder: Path, student: str, nb_or_bytes, name: str | None = None) -> Path:
    """Place a submission in nbgrader's layout: folder/<student>/toy/<name>."""
    d = folder / student / ASSIGNMENT
    d.mkdir(parents=True, exist_ok=True)
    path = d / (name or f"{ASSIGNMENT}.ipynb")
    if isinstance(nb_or_bytes, (bytes, bytearray)):
        path.write_bytes(nb_or_bytes)
    elif isinstance(nb_or_bytes, str):
        path.write_text(nb_or_bytes)
    else:
        path.write_text(json.dumps(nb_or_bytes, indent=1))
    return path


WRONG_L2 = "def l2_penalty(w, lam):\n    w = np.asarray(w, dtype=float)\n    return lam * np.sum(w * w), lam * w\n"
RIGHT_L2 = "def l2_penalty(w, lam):\n    w = np.asarray(w, dtype=float)\n    return 0.5 * lam * float(np.sum(w * w)), lam * w\n"
