"""Grade a whole assignment: W local worker processes, then one trusted writer.

``grade`` = ``prepare`` (intake, plans, expected outcomes) -> ``run_jobs`` (W worker
processes, each running one sandbox at a time as its own uid) -> ``merge`` (this process
alone writes the gradebook and ``autograded/``) -> CSV export and report, optionally
feedback. Nothing starts the nbgrader CLI per submission: nbgrader's Python API is used
in-process, once per batch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from pathlib import Path

from .job import job_indices, prepare, read_json, run_job
from .sandbox import Limits, SandboxConfig

__all__ = ["run_jobs", "grade"]


def _worker(slot: int, work: str, config: SandboxConfig, limits: Limits | None, tasks, done) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    while True:
        index = tasks.get()
        if index is None:
            return
        try:
            r = run_job(work, index, slot=slot, config=config, limits=limits)
            done.put((index, r.get("status"), r.get("seconds")))
        except Exception as exc:  # noqa: BLE001 - report and go on
            done.put((index, f"error: {type(exc).__name__}: {exc}", None))


def run_jobs(
    work: str | Path,
    indices: list[int] | None = None,
    workers: int = 1,
    config: SandboxConfig | None = None,
    limits: Limits | None = None,
    progress: bool = False,
    slot_offset: int = 0,
) -> list[tuple[int, str, float | None]]:
    """Run jobs with ``workers`` processes (1: in this process); returns (index, status, s).

    Worker ``k`` runs its sandboxes as uid ``config.uid_base + slot_offset + k``: give
    concurrent shards on one machine different offsets.
    """
    work = str(Path(work).resolve())
    manifest = read_json(Path(work) / "manifest.json")
    indices = list(range(len(manifest["jobs"]))) if indices is None else list(indices)
    config = config or SandboxConfig()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = []
    if workers == 1 or len(indices) <= 1:
        for n, i in enumerate(indices):
            r = run_job(work, i, slot=slot_offset, config=config, limits=limits)
            out.append((i, r["status"], r.get("seconds")))
            if progress:
                print(f"[{n + 1}/{len(indices)}] {r['student']}: {r['status']} {r.get('score', '')}", flush=True)
        return out
    ctx = mp.get_context("spawn")
    tasks, done = ctx.Queue(), ctx.Queue()
    for i in indices:
        tasks.put(i)
    procs = []
    for slot in range(workers):
        tasks.put(None)
        p = ctx.Process(target=_worker, args=(slot_offset + slot, work, config, limits, tasks, done), daemon=True)
        p.start()
        procs.append(p)
    pending = set(indices)
    while pending:
        try:
            item = done.get(timeout=5)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):  # every worker is gone: stop waiting
                for i in sorted(pending):
                    out.append((i, "error: no worker left to run it", None))
                break
            continue
        pending.discard(item[0])
        out.append(item)
        if progress:
            print(f"[{len(out)}/{len(indices)}] job {item[0]}: {item[1]}", flush=True)
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    return sorted(out)


def grade(
    course,
    assignment: str,
    submissions: str | Path | None = None,
    work: str | Path | None = None,
    workers: int = 1,
    config: SandboxConfig | None = None,
    limits: Limits | None = None,
    feedback: bool = False,
    export: bool = True,
    student_pattern: str | None = None,
    roster: dict[str, str] | None = None,
    progress: bool = False,
) -> dict:
    """The whole batch; returns the report's summary (see ``feedback.write_report``)."""
    from .feedback import export_csv, generate_feedback, write_report
    from .gradebook import merge

    submissions = Path(submissions) if submissions else course.submitted()
    work = Path(work) if work else course.reports(assignment) / "work"
    t0 = time.monotonic()
    manifest = prepare(course, assignment, submissions, work, limits=limits,
                       student_pattern=student_pattern, roster=roster)
    t1 = time.monotonic()
    run_jobs(work, job_indices(len(manifest["jobs"])), workers=workers, config=config, progress=progress)
    t2 = time.monotonic()
    summary = merge(course, work)
    t3 = time.monotonic()
    timings = {"prepare": t1 - t0, "run": t2 - t1, "merge": t3 - t2, "workers": workers}
    if export:
        export_csv(course, assignment, work)
    if feedback:
        generate_feedback(course, assignment)
        timings["feedback"] = time.monotonic() - t3
    timings["total"] = time.monotonic() - t0
    return write_report(course, work, summary, timings)
