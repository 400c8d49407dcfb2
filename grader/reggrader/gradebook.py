"""The one trusted writer: merge job results into nbgrader's gradebook and autograded/.

Only this module writes the gradebook, and only from result files (data) produced by
``run_job``. Per graded notebook it records, as ``nbgrader autograde`` would: the
student, the submission (with its timestamp), every grade cell's ``auto_score``
(autograded tests: the trusted comparison; written answers: 0 when untouched, otherwise
left for manual grading), the comments, and ``flagged`` when something needs review.
A part flagged by the static tripwire scores 0 with ``needs_manual_grade`` set, so it
shows up in formgrader for a human decision. Late penalties are assigned by nbgrader's own
``AssignLatePenalties`` (due date in the gradebook, ``LateSubmissionPlugin`` in the config). The executed notebook (release cells, the
student's answers, outputs, and a summary of the hidden cases instead of the hidden
code) is written to ``autograded/<student>/<assignment>/`` where nbgrader's
``generate_feedback`` and formgrader read it.

With several graders, point ``db_url`` at one PostgreSQL database (nbgrader supports it);
run one merge per assignment at a time.
"""

from __future__ import annotations

import os
import sys
import warnings
from datetime import datetime
from pathlib import Path

import nbformat

from .course import Course
from .job import RESULT_FORMAT, read_json

__all__ = ["ensure_path", "ensure_assignment", "merge", "gradebook_scores"]


def ensure_path() -> None:
    """nbgrader's Gradebook runs the ``alembic`` CLI: make the venv's bin/ reachable."""
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path


def ensure_assignment(course: Course, assignment: str) -> None:
    """Record the assignment's notebooks and cells in the gradebook if they are missing.

    Runs nbgrader's own ``generate_assignment`` preprocessors on the source notebooks in
    memory (nothing is written to the release folder), ending with ``SaveCells``.
    """
    ensure_path()
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
        SaveCells,
    )

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            a = gb.find_assignment(assignment)
            have = {nb.name: {c.name for c in nb.grade_cells} for nb in a.notebooks}
        except MissingEntry:
            gb.update_or_create_assignment(assignment)
            have = {}
    for name in course.notebooks(assignment):
        nb = nbformat.read(course.source(assignment) / f"{name}.ipynb", as_version=4)
        want = {c.metadata.nbgrader["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade") or c.metadata.get("nbgrader", {}).get("task")}
        if have.get(name) == want:
            continue
        resources = {"nbgrader": {"db_url": course.db_url, "assignment": assignment, "notebook": name}}
        for cls in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums, SaveCells):
            nb, resources = cls(config=course.config).preprocess(nb, resources)


def _write_notebook(course: Course, result: dict) -> Path:
    folder = course.autograded(result["student"], result["assignment"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['notebook']}.ipynb"
    nb = nbformat.from_dict(result["notebook_json"])
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError:  # odd outputs never break the autograded notebook
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("output_type") in ("stream", "error")]
    nbformat.write(nb, path)
    if result.get("timestamp"):
        (folder / "timestamp.txt").write_text(result["timestamp"].replace("T", " "))
    return path


def merge(course: Course, work: str | Path, indices: list[int] | None = None) -> dict:
    """Write every result of ``work`` (or those in ``indices``) into the gradebook.

    Returns ``{"merged": [...], "errors": [...], "missing": [...]}``; results that are not
    ``graded`` (a grader-side failure) are reported and not written.
    """
    ensure_path()
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties
    from nbgrader.utils import parse_utc
    from sqlalchemy.exc import SAWarning

    work = Path(work)
    manifest = read_json(work / "manifest.json")
    assignment = manifest["assignment"]
    ensure_assignment(course, assignment)
    wanted = indices if indices is not None else [j["index"] for j in manifest["jobs"]]
    merged, errors, missing = [], [], []
    results = []
    for i in wanted:
        path = work / "results" / f"{i:05d}.json"
        if not path.is_file():
            missing.append(i)
            continue
        r = read_json(path)
        if r.get("format") != RESULT_FORMAT or r.get("assignment") != assignment:
            errors.append({"index": i, "error": "not a result of this assignment"})
            continue
        if r.get("status") != "graded":
            errors.append({"index": i, "student": r.get("student"), "error": r.get("error", "not graded")})
            continue
        results.append(r)
    with Gradebook(course.db_url, course.course_id) as gb, warnings.catch_warnings():
        # nbgrader's own submission bookkeeping trips SQLAlchemy's autoflush warnings
        warnings.simplefilter("ignore", SAWarning)
        for r in results:
            student, nb_name = r["student"], r["notebook"]
            gb.update_or_create_student(student)
            ts = parse_utc(r["timestamp"].replace("T", " ")) if r.get("timestamp") else None
            if ts is not None:
                gb.update_or_create_submission(assignment, student, timestamp=ts)
            else:
                gb.update_or_create_submission(assignment, student)
            snb = gb.find_submission_notebook(nb_name, assignment, student)
            flagged_answers = {}
            for flag in r.get("flags", []):
                if flag["cell"].startswith("answer cell "):
                    flagged_answers[flag["cell"][len("answer cell "):].strip("'\"")] = flag["reasons"]
            for part in r["parts"]:
                grade = gb.find_grade(part["grade_id"], nb_name, assignment, student)
                grade.auto_score = float(part["score"])
                grade.needs_manual_grade = part["status"] == "flagged" or grade.manual_score is not None
            for m in r["manual"]:
                grade = gb.find_grade(m["grade_id"], nb_name, assignment, student)
                if m["answered"]:
                    grade.auto_score = None
                    grade.needs_manual_grade = True if grade.manual_score is None else grade.needs_manual_grade
                else:
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = grade.manual_score is not None
            for sc in snb.comments:
                if sc.name in flagged_answers:
                    sc.auto_comment = "Flagged for review: " + "; ".join(flagged_answers[sc.name])[:2000]
                else:
                    unanswered = {m["grade_id"] for m in r["manual"] if not m["answered"]}
                    sc.auto_comment = "No response." if sc.name in unanswered else None
            snb.flagged = bool(r.get("flags")) or any(p["status"] == "flagged" for p in r["parts"])
            gb.db.commit()
            # late penalties exactly as nbgrader's autograde assigns them (its own preprocessor
            # and the course's LateSubmissionPlugin settings; none by default)
            AssignLatePenalties(config=course.config).preprocess(nbformat.v4.new_notebook(), {"nbgrader": {
                "notebook": nb_name, "assignment": assignment, "student": student, "db_url": course.db_url}})
            gb.db.expire_all()
            _write_notebook(course, r)
            merged.append({"index": r["index"], "student": student, "notebook": nb_name, "score": r["score"]})
    return {"assignment": assignment, "merged": merged, "errors": errors, "missing": missing,
            "merged_at": datetime.now().isoformat(timespec="seconds")}


def gradebook_scores(course: Course, assignment: str) -> dict[str, dict]:
    """{student: {"score", "auto", "needs_manual", "flagged", "grades": {grade_id: auto_score}}}."""
    ensure_path()
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            return {}
        for sub in a.submissions:
            grades = {}
            flagged = False
            for snb in sub.notebooks:
                flagged = flagged or bool(snb.flagged)
                for g in snb.grades:
                    grades[g.name] = g.auto_score
            out[sub.student.id] = {
                "score": float(sub.score),
                "needs_manual": bool(sub.needs_manual_grade),
                "flagged": flagged,
                "grades": grades,
            }
    return out


