"""``reggrader``: the command line (run it from the course root, or pass ``--course``).

    reggrader grade ASSIGNMENT [--submissions DIR|ZIP] [--workers 2] [--feedback]
    reggrader prepare ASSIGNMENT --submissions DIR|ZIP --work DIR      # then, anywhere:
    reggrader run --work DIR [--workers W] [--shard I --shards N]      # or one job:
    reggrader run-job --work DIR [--index I]   # I defaults to $JOB_COMPLETION_INDEX,
                                               # $SLURM_ARRAY_TASK_ID or $REGGRADER_INDEX
    reggrader merge --work DIR                 # the one writer: gradebook, autograded/, CSV, report
    reggrader feedback ASSIGNMENT              # nbgrader generate_feedback + leak check
    reggrader export ASSIGNMENT --work DIR [--to grades.csv]
    reggrader lint ASSIGNMENT                  # record-and-compare set-up + the solution's full marks
    reggrader jobs --work DIR                  # number of jobs (size of an array job)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from .course import load_course
from .sandbox import Limits, SandboxConfig

INDEX_VARS = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "REGGRADER_INDEX")


def _limits(args) -> Limits:
    lim = Limits()
    if getattr(args, "cell_timeout", None):
        lim.cell_timeout = args.cell_timeout
    if getattr(args, "notebook_timeout", None):
        lim.notebook_timeout = args.notebook_timeout
    if getattr(args, "memory_gb", None):
        lim.memory_bytes = int(args.memory_gb * 2**30)
    if getattr(args, "output_mb", None):
        lim.output_bytes = int(args.output_mb * 2**20)
    return lim


def _config(args) -> SandboxConfig:
    cfg = SandboxConfig()
    if getattr(args, "no_isolation", False):
        cfg.isolate = False
    return cfg


def _roster(path: str | None) -> dict[str, str] | None:
    if not path:
        return None
    with open(path, newline="") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if len(row) >= 2 and not row[0].startswith("#")}


def _env_index() -> int | None:
    for var in INDEX_VARS:
        if os.environ.get(var, "").strip():
            return int(os.environ[var])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reggrader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", help="course root (default: the nbgrader_config.py above the cwd)")
    parser.add_argument("--db-url", help="gradebook URL (default: nbgrader_config.py / $NBGRADER_DB_URL)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def limits_args(p):
        p.add_argument("--cell-timeout", type=float, help="seconds per cell (default 60)")
        p.add_argument("--notebook-timeout", type=float, help="seconds per notebook (default 600)")
        p.add_argument("--memory-gb", type=float, help="address-space limit (default 6)")
        p.add_argument("--output-mb", type=float, help="outputs kept per notebook (default 2)")

    p = sub.add_parser("grade", help="intake, run, merge, export and report in one command")
    p.add_argument("assignment")
    p.add_argument("--submissions", help="folder or zip (default: submitted/)")
    p.add_argument("--work", help="work folder (default: autograded/reggrader-<assignment>/work)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--feedback", action="store_true", help="also generate feedback")
    p.add_argument("--student-pattern", help="regex with a (?P<student>...) group, matched on each path")
    p.add_argument("--roster", help="CSV of lms_name,student_id")
    p.add_argument("--no-isolation", action="store_true", help="do not use namespaces/uids even as root")
    limits_args(p)

    p = sub.add_parser("prepare", help="intake and job files (trusted machine)")
    p.add_argument("assignment")
    p.add_argument("--submissions", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--student-pattern")
    p.add_argument("--roster")
    limits_args(p)

    p = sub.add_parser("run", help="run jobs (all, or one shard) with W workers")
    p.add_argument("--work", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--shard", type=int)
    p.add_argument("--shards", type=int)
    p.add_argument("--slot-offset", type=int, default=0,
                   help="first sandbox uid offset (distinct per concurrent shard on one machine)")
    p.add_argument("--no-isolation", action="store_true")

    p = sub.add_parser("run-job", help="run one job (index from --index or the array-job variable)")
    p.add_argument("--work", required=True)
    p.add_argument("--index", type=int)
    p.add_argument("--slot", type=int, default=0, help="sandbox uid offset (distinct per concurrent job)")
    p.add_argument("--no-isolation", action="store_true")

    p = sub.add_parser("merge", help="write results into the gradebook (the one trusted writer)")
    p.add_argument("--work", required=True)
    p.add_argument("--feedback", action="store_true")

    p = sub.add_parser("feedback", help="nbgrader generate_feedback (+ leak check)")
    p.add_argument("assignment")
    p.add_argument("--student")

    p = sub.add_parser("export", help="grades CSV (nbgrader's) and the detailed CSV")
    p.add_argument("assignment")
    p.add_argument("--work", required=True)
    p.add_argument("--to")

    p = sub.add_parser("lint", help="check an assignment's record-and-compare set-up")
    p.add_argument("assignment")

    p = sub.add_parser("jobs", help="print the number of jobs in a work folder")
    p.add_argument("--work", required=True)

    args = parser.parse_args(argv)

    if args.cmd in ("run", "run-job", "jobs"):
        from .job import job_indices, read_json, run_job

        work = Path(args.work)
        n = len(read_json(work / "manifest.json")["jobs"])
        if args.cmd == "jobs":
            print(n)
            return 0
        if args.cmd == "run-job":
            index = args.index if args.index is not None else _env_index()
            if index is None:
                parser.error("run-job needs --index or one of $" + ", $".join(INDEX_VARS))
            if index >= n:  # arrays are often rounded up: nothing to do
                print(f"index {index}: no such job (there are {n})")
                return 0
            r = run_job(work, index, slot=args.slot, config=_config(args))
            print(json.dumps({k: r.get(k) for k in ("index", "student", "status", "score", "max_score", "seconds")}))
            return 0 if r["status"] == "graded" else 1
        from .batch import run_jobs

        shard = args.shard if args.shard is not None else (_env_index() if args.shards else None)
        out = run_jobs(work, job_indices(n, shard=shard, shards=args.shards), workers=args.workers,
                       config=_config(args), progress=True, slot_offset=args.slot_offset)
        return 0 if all(s == "graded" for _, s, _ in out) else 1

    course = load_course(args.course, db_url=args.db_url)
    if args.cmd == "grade":
        from .batch import grade

        summary = grade(course, args.assignment, args.submissions, args.work, workers=args.workers,
                        config=_config(args), limits=_limits(args), feedback=args.feedback,
                        student_pattern=args.student_pattern, roster=_roster(args.roster), progress=True)
        print(Path(summary["report_md"]).read_text())
        return 0 if not summary["grader_errors"] else 1
    if args.cmd == "prepare":
        from .job import prepare

        m = prepare(course, args.assignment, args.submissions, args.work, limits=_limits(args),
                    student_pattern=args.student_pattern, roster=_roster(args.roster))
        print(f"{len(m['jobs'])} jobs, {len(m['quarantined'])} quarantined -> {args.work}")
        for q in m["quarantined"]:
            print(f"  quarantined {q['file']}: {q['reason']}")
        return 0
    if args.cmd == "merge":
        from .feedback import export_csv, generate_feedback, write_report
        from .gradebook import merge

        summary = merge(course, args.work)
        export_csv(course, summary["assignment"], Path(args.work))
        if args.feedback:
            generate_feedback(course, summary["assignment"])
        report = write_report(course, Path(args.work), summary)
        print(Path(report["report_md"]).read_text())
        return 0 if not (summary["errors"] or summary["missing"]) else 1
    if args.cmd == "feedback":
        from .feedback import generate_feedback

        paths = generate_feedback(course, args.assignment, args.student)
        print(f"{len(paths)} feedback files, no hidden test leaked")
        return 0
    if args.cmd == "export":
        from .feedback import export_csv

        a, b = export_csv(course, args.assignment, Path(args.work), Path(args.to) if args.to else None)
        print(f"wrote {a} and {b}")
        return 0
    if args.cmd == "lint":
        from .job import lint
        from .local import evaluate

        problems = lint(course, args.assignment)
        if not problems:
            for name in course.notebooks(args.assignment):
                for gid, v in evaluate(course, args.assignment, notebook=name).items():
                    if v.score < v.points:
                        problems.append(f"{name}: the reference solution fails {gid}: {v.message}")
        for p_ in problems:
            print(p_)
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 0 if not problems else 1
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
