"""Self-contained grading jobs: prepare them, run one, run many.

``prepare`` (trusted, on the instructor's machine, reads ``solutions/``): intake, checks,
plans and the expected outcomes of every hidden case -> ``WORK/manifest.json`` and one
``WORK/jobs/NNNNN.json`` per submitted notebook (the notebook to run, the run items, the
inputs and expected outcomes, the limits) with the submission beside it.

``run_job`` (any machine with the course's Python environment; needs neither
``solutions/`` nor the gradebook nor reglib's source): runs the items in a sandbox,
compares the records with the expected outcomes in its own process and writes
``WORK/results/NNNNN.json``. Jobs are independent, so they can be sharded by index
(``JOB_COMPLETION_INDEX``, ``SLURM_ARRAY_TASK_ID``, GNU parallel) and merged later by
one trusted writer (``reggrader.gradebook.merge``).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .compare import PartScore, score_part
from .execute import execute_items
from .sandbox import Limits, SandboxConfig, isolation_report
from .spec import SPEC_FILENAME, Spec, load_spec, plan_part

# run_job (the part that runs on every grading machine) imports neither nbformat nor
# nbgrader: a fresh process per job starts fast. prepare/lint import them when called.

__all__ = ["prepare", "run_job", "lint", "job_indices", "write_json", "read_json"]

JOB_FORMAT = "reggrader-job/1"
RESULT_FORMAT = "reggrader-result/1"
MAX_NOTEBOOK_BYTES = 20 * 2**20


def write_json(path: Path, data: Any) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# -- the assignment's own consistency ----------------------------------------------------------
def lint(course, assignment: str, spec: Spec | None = None) -> list[str]:
    """Problems with an assignment's record-and-compare set-up (empty list: fine).

    Every graded test cell of the source must have a part in ``grading.py`` (it sets the
    cell's score); a hidden region, where there is one, must be exactly the
    record-and-compare line; the release must have the same grade cells (ids, types,
    points) as the source.
    """
    import nbformat

    from .plan import cell_role, split_hidden

    problems = []
    spec = spec or load_spec(course.spec_path(assignment))
    covered = set()
    for name in course.notebooks(assignment):
        src = nbformat.read(course.source(assignment) / f"{name}.ipynb", as_version=4)
        rel_path = course.release(assignment) / f"{name}.ipynb"
        if not rel_path.is_file():
            problems.append(f"{name}: no release at {rel_path} (run `make exercises`)")
            continue
        rel = nbformat.read(rel_path, as_version=4)
        grade_src = {c.metadata.nbgrader["grade_id"]: (c.cell_type, cell_role(c), c.metadata.nbgrader.get("points"))
                     for c in src.cells if "nbgrader" in c.metadata and "grade_id" in c.metadata.nbgrader}
        grade_rel = {c.metadata.nbgrader["grade_id"]: (c.cell_type, cell_role(c), c.metadata.nbgrader.get("points"))
                     for c in rel.cells if "nbgrader" in c.metadata and "grade_id" in c.metadata.nbgrader}
        if grade_src != grade_rel:
            problems.append(f"{name}: the release's grade cells differ from the source's (run `make exercises`)")
        for c in src.cells:
            if cell_role(c) != "test":
                continue
            gid = c.metadata.nbgrader["grade_id"]
            if c.cell_type != "code":
                continue
            part = spec.part(gid, name)
            if part is None:
                problems.append(f"{name}: test cell {gid!r} has no part in {SPEC_FILENAME}")
                continue
            covered.add((name, gid))
            try:
                _, hidden = split_hidden(c.source)
            except ValueError as exc:
                problems.append(f"{name}: test cell {gid!r}: {exc}")
                continue
            lines = [ln.strip() for block in hidden for ln in block.splitlines()
                     if ln.strip() and not ln.strip().startswith("#")]
            want = f'from reggrader.hidden import check; check("{gid}")'
            if hidden and lines != [want]:
                problems.append(
                    f"{name}: test cell {gid!r}: its hidden region must be exactly `{want}` "
                    f"(record-and-compare), found {lines!r:.120}"
                )
    for part in spec.parts:
        if not any(gid == part.test for _, gid in covered):
            problems.append(f"{SPEC_FILENAME}: part {part.test!r} matches no graded test cell")
    return problems


# -- prepare ------------------------------------------------------------------------------------
def prepare(
    course,
    assignment: str,
    submissions: str | Path,
    work: str | Path,
    limits: Limits | None = None,
    student_pattern: str | None = None,
    roster: dict[str, str] | None = None,
) -> dict:
    """Intake + plans + expected outcomes -> job files; returns the manifest."""
    import nbformat

    from .intake import collect
    from .plan import Problem, build_plan, cell_role, plan_to_dict, read_notebook

    t0 = time.monotonic()
    work = Path(work)
    if (work / "jobs").exists():
        shutil.rmtree(work / "jobs")
    if (work / "results").exists():
        shutil.rmtree(work / "results")
    (work / "jobs").mkdir(parents=True)
    (work / "results").mkdir()
    os.chmod(work, 0o700)
    limits = limits or Limits()
    spec = load_spec(course.spec_path(assignment))
    problems = lint(course, assignment, spec)
    if problems:
        raise ValueError("the assignment is not ready for grading:\n  " + "\n  ".join(problems))
    notebooks = course.notebooks(assignment)
    release = {n: nbformat.read(course.release(assignment) / f"{n}.ipynb", as_version=4) for n in notebooks}
    planned: dict[str, dict[str, dict]] = {}
    for n in notebooks:
        planned[n] = {}
        for c in release[n].cells:
            if cell_role(c) == "test" and c.cell_type == "code":
                gid = c.metadata.nbgrader["grade_id"]
                planned[n][gid] = plan_part(spec.part(gid, n), float(c.metadata.nbgrader.get("points", 0)))
    # files shipped with the release (data the notebook reads) go into every scratch dir
    extra_dir = work / "release"
    if extra_dir.exists():
        shutil.rmtree(extra_dir)
    extras = {}
    for p in sorted(course.release(assignment).rglob("*")):
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts:
            rel = p.relative_to(course.release(assignment))
            (extra_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, extra_dir / rel)
            extras[rel.as_posix()] = f"release/{rel.as_posix()}"

    found, quarantined, notes = collect(
        submissions, assignment, notebooks, student_pattern=student_pattern, roster=roster, workdir=work
    )
    jobs = []
    for f in found:
        data = f.path.read_bytes()
        entry = {"student": f.student, "notebook": f.notebook, "file": f.original}
        try:
            nb, repairs = read_notebook(data, MAX_NOTEBOOK_BYTES)
            plan = build_plan(release[f.notebook], nb, planned[f.notebook], spec.allowed_imports, spec.allowed_names)
        except Problem as exc:
            quarantined.append(dict(entry, reason=str(exc)))
            continue
        index = len(jobs)
        sub_rel = f"jobs/{index:05d}/{f.notebook}.ipynb"
        (work / sub_rel).parent.mkdir(parents=True, exist_ok=True)
        (work / sub_rel).write_bytes(data)
        files = {f"{f.notebook}.ipynb": sub_rel, **extras}
        job = {
            "format": JOB_FORMAT,
            "index": index,
            "assignment": assignment,
            "student": f.student,
            "notebook": f.notebook,
            "submitted_file": f.original,
            "sha256": hashlib.sha256(data).hexdigest(),
            "timestamp": f.timestamp.isoformat() if f.timestamp else None,
            "course_root": str(course.root),
            "files": files,
            "limits": limits.__dict__,
            "intake_notes": f.notes + repairs,
            "plan": plan_to_dict(plan),
        }
        write_json(work / "jobs" / f"{index:05d}.json", job)
        jobs.append(dict(entry, index=index))
    manifest = {
        "format": "reggrader-manifest/1",
        "reggrader": __version__,
        "assignment": assignment,
        "course_root": str(course.root),
        "created": datetime.now().isoformat(timespec="seconds"),
        "submissions": str(submissions),
        "jobs": jobs,
        "quarantined": quarantined,
        "notes": notes,
        "limits": limits.__dict__,
        "prepare_seconds": round(time.monotonic() - t0, 3),
    }
    write_json(work / "manifest.json", manifest)
    return manifest


# -- run ------------------------------------------------------------------------------------------
def _reglib_dir() -> str | None:
    try:
        spec = importlib.util.find_spec("reglib")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent)


def sandbox_paths(work: Path, course_root: str | None) -> tuple[list[str], list[str]]:
    """(hide, expose) for this machine: hide the course, homes, temp dirs and ``work``."""
    hide = ["/root", "/home", "/tmp", "/var/tmp", "/dev/shm", str(Path(work).resolve())]
    if course_root and Path(course_root).is_dir():
        hide.insert(0, str(Path(course_root).resolve()))
    expose = [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    lib = _reglib_dir()
    if lib:
        expose.append(lib)
    hidden = [Path(h) for h in hide]
    expose = [e for e in dict.fromkeys(expose) if any(Path(e) == h or h in Path(e).parents for h in hidden)]
    return hide, expose


def job_indices(n_jobs: int, index: int | None = None, shard: int | None = None, shards: int | None = None) -> list[int]:
    """Which jobs a process runs: one index, a shard (``i % shards == shard``) or all."""
    if index is not None:
        if not 0 <= index < n_jobs:
            raise ValueError(f"index must be in [0, {n_jobs}), got {index}")
        return [index]
    if shards is not None:
        if shards < 1 or shard is None or not 0 <= shard < shards:
            raise ValueError(f"shard must be in [0, shards), got shard={shard}, shards={shards}")
        return [i for i in range(n_jobs) if i % shards == shard]
    return list(range(n_jobs))


def _text(v) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "".join(v)
    return None


def clean_output(o) -> dict | None:
    """A well-formed nbformat output built from untrusted data (None: dropped)."""
    if not isinstance(o, dict):
        return None
    kind = o.get("output_type")
    if kind == "stream":
        text = _text(o.get("text"))
        if text is None or o.get("name") not in ("stdout", "stderr"):
            return None
        return {"output_type": "stream", "name": o["name"], "text": text}
    if kind == "error":
        tb = o.get("traceback")
        tb = [str(x) for x in tb][:200] if isinstance(tb, list) else []
        return {"output_type": "error", "ename": str(o.get("ename", ""))[:200],
                "evalue": str(o.get("evalue", ""))[:10000], "traceback": tb}
    if kind in ("display_data", "execute_result"):
        data = o.get("data")
        if not isinstance(data, dict):
            return None
        clean = {}
        for mime, v in data.items():
            if not isinstance(mime, str) or "/" not in mime:
                continue
            if mime.endswith("json"):
                clean[mime] = v if isinstance(v, (dict, list)) else {}
            else:
                t = _text(v)
                if t is not None:
                    clean[mime] = t
        if not clean:
            return None
        meta = o.get("metadata") if isinstance(o.get("metadata"), dict) else {}
        out = {"output_type": kind, "data": clean, "metadata": json.loads(json.dumps(meta, default=str))}
        if kind == "execute_result":
            ec = o.get("execution_count")
            out["execution_count"] = ec if isinstance(ec, int) and not isinstance(ec, bool) else None
        return out
    return None


def _feedback_outputs(part: dict, verdict: PartScore) -> list[dict]:
    lines = [f"Hidden tests ({verdict.grade_id}): {verdict.score:g} of {verdict.points:g} points. {verdict.message}"]
    for c in verdict.cases:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.label}" + ("" if c.ok else f": {c.reason}"))
    out = [{"output_type": "stream", "name": "stdout", "text": "\n".join(lines) + "\n"}]
    if verdict.score < verdict.points:
        out.append({
            "output_type": "error",
            "ename": "HiddenTestsFailed",
            "evalue": verdict.message,
            "traceback": [f"HiddenTestsFailed: {verdict.message}"],
        })
    return out


def _score_job(job: dict, runs: list, info: dict) -> dict:
    plan = job["plan"]
    items = plan["items"]
    nb = copy.deepcopy(plan["notebook"])  # plain JSON: run-job never needs nbformat
    parts = {p["grade_id"]: p for p in plan["parts"]}
    verdicts: dict[str, PartScore] = {}
    for item, run in zip(items, runs):
        cell = nb["cells"][item["cell"]]
        if item["kind"] == "record":
            part = parts[item["grade_id"]]
            recs = [r for r in run.records if isinstance(r, dict) and r.get("part") == part["id"]]
            if run.status in ("timeout", "died", "skipped"):
                v = PartScore(part["grade_id"], part["points"], 0.0, run.status,
                              message={"timeout": "timed out", "died": "the kernel died while running it",
                                       "skipped": "not run (the notebook's time limit was spent)"}[run.status])
            elif len(recs) > 1 or len(run.records) > 1:
                v = PartScore(part["grade_id"], part["points"], 0.0, "no-record",
                              message="the grader received more than one set of outputs (forged?)")
            else:
                v = score_part(part, recs[0] if recs else None)
            if part.get("flagged"):
                would = v.score
                v = PartScore(v.grade_id, v.points, 0.0, "flagged", v.cases,
                              f"flagged for review ({'; '.join(part['flagged'])}); score 0 pending "
                              f"review; the comparison gave {would:g} ({v.message})")
                v.would_score = would  # type: ignore[attr-defined]
            verdicts[part["grade_id"]] = v
            cell["outputs"] = cell.get("outputs", []) + _feedback_outputs(part, v)
        else:
            outs = [o for o in map(clean_output, run.outputs) if o is not None]
            if run.status in ("timeout", "died", "skipped"):
                outs.append({"output_type": "stream", "name": "stderr",
                             "text": f"[grader: {run.status}: {run.note}]\n"})
            cell["outputs"] = cell.get("outputs", []) + outs
    part_dicts = []
    for p in plan["parts"]:
        v = verdicts[p["grade_id"]]
        d = v.to_dict()
        d["flagged"] = p.get("flagged", [])
        if hasattr(v, "would_score"):
            d["would_score"] = v.would_score
        part_dicts.append(d)
    score = sum(d["score"] for d in part_dicts)
    return {
        "parts": part_dicts,
        "score": score,
        "max_score": sum(d["points"] for d in part_dicts),
        "notebook_json": nb,
    }


def run_job(work: str | Path, index: int, slot: int = 0, config: SandboxConfig | None = None,
            limits: Limits | None = None) -> dict:
    """Run job ``index`` of ``work`` and write its result file; returns the result."""
    work = Path(work)
    job = read_json(work / "jobs" / f"{index:05d}.json")
    if job.get("format") != JOB_FORMAT:
        raise ValueError(f"job {index} has format {job.get('format')!r}, expected {JOB_FORMAT}")
    config = config or SandboxConfig()
    limits = limits or Limits.from_dict(job.get("limits"))
    files = {name: str((work / rel).resolve()) for name, rel in job["files"].items()}
    hide, expose = sandbox_paths(work, job.get("course_root"))
    t0 = time.monotonic()
    result = {
        "format": RESULT_FORMAT,
        "index": index,
        "assignment": job["assignment"],
        "student": job["student"],
        "notebook": job["notebook"],
        "submitted_file": job["submitted_file"],
        "sha256": job["sha256"],
        "timestamp": job["timestamp"],
        "intake_notes": job["intake_notes"],
        "flags": job["plan"]["flags"],
        "manual": job["plan"]["manual"],
        "host": os.uname().nodename,
    }
    try:
        runs, info = execute_items(job["plan"]["items"], files, limits, config, slot=slot, hide=hide, expose=expose)
        if info.get("start_failed"):
            raise RuntimeError("the sandbox did not start: " + "; ".join(info["events"]) + " " + info["console"][-500:])
        scored = _score_job(job, runs, info)
        result.update(scored)
        result["status"] = "graded"
        result["execution"] = {k: v for k, v in info.items() if k != "console"}
        result["execution"]["isolation"] = isolation_report(info["isolated"])
        result["console_tail"] = info["console"][-2000:]
    except Exception as exc:  # noqa: BLE001 - the grader's failure, not the student's
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {exc}"[:4000]
    result["seconds"] = round(time.monotonic() - t0, 3)
    write_json(work / "results" / f"{index:05d}.json", result)
    return result
