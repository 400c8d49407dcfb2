"""Feedback, CSV export and the batch report.

* :func:`generate_feedback` runs nbgrader's ``generate_feedback`` in-process (one start-up
  for the batch) on the notebooks the grader wrote to ``autograded/`` and then checks that
  no feedback page contains a line of hidden-test source, the record cell or a traceback
  of a hidden test (the autograded notebooks carry none: test cells hold their visible
  part and a per-case summary).
* :func:`export_csv` writes nbgrader's standard grades CSV (its own ``CsvExportPlugin``)
  and a detailed CSV per notebook (status, parts, flags, timeouts, quarantine).
* :func:`write_report` writes ``report.md`` and ``report.json``: scores, timeouts and
  kernel deaths, flagged parts, repairs, quarantined files with reasons, grader errors,
  timings, and what the sandbox did or did not isolate.
"""

from __future__ import annotations

import csv
import html
import statistics
from collections import Counter
from pathlib import Path

import nbformat

from .course import Course
from .gradebook import ensure_path
from .job import read_json, write_json
from .plan import cell_role, split_hidden
from .sandbox import isolation_report

__all__ = ["generate_feedback", "check_feedback", "export_csv", "write_report", "load_results"]

LEAK_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "_reggrader_ns", "reggrader.hidden",
                "application/vnd.reggrader")


def _nbgrader_api(course: Course):
    ensure_path()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cd = CourseDirectory(config=course.config)
    cd.root = str(course.root)
    cd.db_url = course.db_url
    return NbGraderAPI(coursedir=cd, config=course.config)


def hidden_lines(course: Course, assignment: str) -> set[str]:
    """Every non-trivial line of the source's hidden regions (what must never leak)."""
    lines = set()
    for name in course.notebooks(assignment):
        nb = nbformat.read(course.source(assignment) / f"{name}.ipynb", as_version=4)
        for c in nb.cells:
            if c.cell_type == "code" and cell_role(c) == "test":
                for block in split_hidden(c.source)[1]:
                    lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 8}
    return lines


def check_feedback(course: Course, assignment: str, paths: list[Path]) -> list[str]:
    """Leaks found in feedback files (an empty list is the only acceptable answer)."""
    secret = hidden_lines(course, assignment)
    leaks = []
    for p in paths:
        text = p.read_text(errors="replace")
        for marker in LEAK_MARKERS:
            if marker in text:
                leaks.append(f"{p}: contains {marker!r}")
        for line in secret:
            if line in text or html.escape(line) in text or html.escape(line, quote=False) in text:
                leaks.append(f"{p}: contains hidden-test source {line[:60]!r}")
    return leaks


def generate_feedback(course: Course, assignment: str, student: str | None = None) -> list[Path]:
    """nbgrader ``generate_feedback`` for the assignment (all students), then a leak check."""
    api = _nbgrader_api(course)
    out = api.generate_feedback(assignment, student_id=student, force=True)
    if not out.get("success"):
        raise RuntimeError("nbgrader generate_feedback failed:\n" + str(out.get("error") or out.get("log"))[-3000:])
    root = course.root / course.feedback_directory
    paths = sorted(root.glob(f"{student or '*'}/{assignment}/*.html"))
    leaks = check_feedback(course, assignment, paths)
    if leaks:
        raise RuntimeError("feedback leaks hidden tests:\n  " + "\n  ".join(leaks[:20]))
    return paths


def load_results(work: Path) -> list[dict]:
    out = []
    for p in sorted((Path(work) / "results").glob("*.json")):
        try:
            out.append(read_json(p))
        except (OSError, ValueError):
            continue
    return out


def export_csv(course: Course, assignment: str, work: Path, to: Path | None = None) -> tuple[Path, Path]:
    """(nbgrader's grades CSV, the detailed CSV) for the assignment."""
    ensure_path()
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    folder = course.reports(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    to = Path(to) if to else folder / "grades.csv"
    plugin = CsvExportPlugin(config=course.config)
    plugin.to = str(to)
    plugin.assignment = [assignment]
    with Gradebook(course.db_url, course.course_id) as gb:
        plugin.export(gb)
    detail = to.with_name(to.stem + "_detail.csv")
    manifest = read_json(Path(work) / "manifest.json")
    results = load_results(work)
    part_ids = []
    for r in results:
        for p in r.get("parts", []):
            if p["grade_id"] not in part_ids:
                part_ids.append(p["grade_id"])
    with open(detail, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "notebook", "status", "score", "max_score", *part_ids,
                    "flagged", "timeouts", "restarts", "notes"])
        for r in sorted(results, key=lambda r: (r["student"], r["notebook"])):
            scores = {p["grade_id"]: p["score"] for p in r.get("parts", [])}
            ex = r.get("execution", {})
            flagged = [p["grade_id"] for p in r.get("parts", []) if p["status"] == "flagged"]
            w.writerow([r["student"], r["notebook"], r["status"], r.get("score", ""), r.get("max_score", ""),
                        *[scores.get(g, "") for g in part_ids], " ".join(flagged), ex.get("timeouts", ""),
                        ex.get("restarts", ""), "; ".join(r.get("intake_notes", []))[:500]])
        for q in manifest["quarantined"]:
            w.writerow([q.get("student") or "", q.get("notebook", ""), "quarantined", "", "",
                        *["" for _ in part_ids], "", "", "", q["reason"][:500]])
    return to, detail


def write_report(course: Course, work: Path, merge_summary: dict | None = None, timings: dict | None = None) -> dict:
    """Summary of a batch -> ``<autograded>/reggrader-<assignment>/report.{md,json}``."""
    work = Path(work)
    manifest = read_json(work / "manifest.json")
    assignment = manifest["assignment"]
    results = load_results(work)
    graded = [r for r in results if r.get("status") == "graded"]
    errors = [r for r in results if r.get("status") != "graded"]
    scores = [r["score"] for r in graded]
    parts = Counter()
    passed = Counter()
    for r in graded:
        for p in r["parts"]:
            parts[p["grade_id"]] += 1
            passed[p["grade_id"]] += p["score"] >= p["points"]
    timeouts = [(r["student"], r["notebook"], r["execution"]["timeouts"], r["execution"]["deaths"])
                for r in graded if r["execution"]["timeouts"] or r["execution"]["deaths"]]
    flagged = [(r["student"], p["grade_id"], p["message"]) for r in graded for p in r["parts"]
               if p["status"] == "flagged"]
    repaired = [(r["student"], n) for r in graded for n in r.get("intake_notes", [])]
    isolated = all(r["execution"]["isolated"] for r in graded) if graded else None
    seconds = [r["seconds"] for r in results if "seconds" in r]
    summary = {
        "assignment": assignment,
        "submissions": len(manifest["jobs"]) + len(manifest["quarantined"]),
        "graded": len(graded),
        "quarantined": manifest["quarantined"],
        "grader_errors": [{"index": r["index"], "student": r.get("student"), "error": r.get("error")} for r in errors],
        "missing_results": (merge_summary or {}).get("missing", []),
        "max_score": graded[0]["max_score"] if graded else None,
        "scores": {
            "mean": statistics.fmean(scores) if scores else None,
            "median": statistics.median(scores) if scores else None,
            "min": min(scores) if scores else None,
            "max": max(scores) if scores else None,
        },
        "parts_passed": {g: f"{passed[g]}/{parts[g]}" for g in parts},
        "timeouts_or_deaths": [{"student": s, "notebook": n, "timeouts": t, "deaths": d} for s, n, t, d in timeouts],
        "flagged": [{"student": s, "part": g, "message": m} for s, g, m in flagged],
        "repairs": [{"student": s, "note": n} for s, n in repaired],
        "isolation": isolation_report(bool(isolated)) if isolated is not None else [],
        "seconds_per_submission": statistics.fmean(seconds) if seconds else None,
        "timings": timings or {},
        "notes": manifest.get("notes", []),
    }
    folder = course.reports(assignment)
    write_json(folder / "report.json", summary)
    md = [f"# Grading report: {assignment}", ""]
    md.append(f"- submissions: {summary['submissions']}, graded: {summary['graded']}, "
              f"quarantined: {len(summary['quarantined'])}, grader errors: {len(summary['grader_errors'])}")
    if scores:
        s = summary["scores"]
        md.append(f"- scores (of {summary['max_score']:g}): mean {s['mean']:.2f}, median {s['median']:g}, "
                  f"min {s['min']:g}, max {s['max']:g}")
    for key, label in (("parts_passed", "full marks per test cell"),):
        md.append(f"- {label}: " + ", ".join(f"{g} {v}" for g, v in summary[key].items()))
    if timings:
        md.append(f"- workers: {timings.get('workers', 1)}; timings: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in timings.items() if k != "workers" and isinstance(v, (int, float))))
    sections = [
        ("Quarantined (not graded)", [f"`{q['file']}` ({q.get('student') or 'unknown student'}): {q['reason']}"
                                      for q in summary["quarantined"]]),
        ("Grader errors (re-run these jobs)", [f"job {e['index']} ({e['student']}): {e['error']}"
                                               for e in summary["grader_errors"]]),
        ("Timeouts and kernel deaths", [f"{t['student']}/{t['notebook']}: {t['timeouts']} timeout(s), "
                                        f"{t['deaths']} death(s)" for t in summary["timeouts_or_deaths"]]),
        ("Flagged for review (score 0 pending review; see formgrader)",
         [f"{f['student']}: {f['part']}: {f['message']}" for f in summary["flagged"]]),
        ("Repairs and intake notes", [f"{r['student']}: {r['note']}" for r in summary["repairs"]]),
        ("Isolation", summary["isolation"]),
    ]
    for title, rows in sections:
        md += ["", f"## {title}", ""]
        md += [f"- {row}" for row in rows] or ["- none"]
    (folder / "report.md").write_text("\n".join(md) + "\n")
    summary["report_md"] = str(folder / "report.md")
    return summary

