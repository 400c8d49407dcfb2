"""Grading speed: stock ``nbgrader autograde`` against ``reggrader`` with 1 and 2 workers.

    python benchmarks/bench_grading.py            # 40 submissions of assignment 01
    python benchmarks/bench_grading.py --n 12     # fewer (a quick look)
    python benchmarks/bench_grading.py --json out.json

One run builds a temporary course (``solutions/`` released with ``tools/release.py``'s
nbgrader pipeline) and N synthetic submissions of assignment 01, mixed: honest (the
reference solution and every alternative correct implementation of
``tests/assignments/test_01_weight_penalties.py``), wrong (its named wrong
implementations) and broken (the untouched release, a syntax error, a name error, a
function returning None, an answer cell that raises). It then grades the same class three
times, each into its own gradebook:

* stock: nbgrader's ``autograde`` for all students in ONE in-process call (no CLI start-up
  per submission; each submission still gets its own Jupyter kernel; the hidden tests run
  in that kernel);
* reggrader with 1 worker and with 2 workers (intake, sandboxed kernels, record-and-compare
  outside the kernel, one writer of the gradebook; also in-process, no CLI per submission).

It prints seconds per submission and the ratios, and checks that every honest submission
gets the same score from all three (wrong and broken ones are listed when they differ).
Nothing is asserted about time: the machine is shared, so numbers are upper bounds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
for key, value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "REGLIB_THREADS": "1",
                   "PYDEVD_DISABLE_FILE_VALIDATION": "1"}.items():
    os.environ[key] = value
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

ASSIGNMENT = "01_weight_penalties"


def _cell_source(function: str, impl) -> str:
    """A notebook answer cell defining ``function`` as the test module's ``impl``."""
    from tests.assignments import test_01_weight_penalties as t

    helpers = [t._S_where, t._ista] if impl.__module__ == t.__name__ else []
    parts = [inspect.getsource(h) for h in helpers if h is not impl]
    parts.append(inspect.getsource(impl))
    if impl.__name__ != function:
        parts.append(f"{function} = {impl.__name__}\n")
    return "\n".join(parts)


def make_class(n: int) -> list[tuple[str, str, dict[str, str]]]:
    """[(student, kind, answers)] for n submissions (answers: grade_id -> source)."""
    from tests.assignments import test_01_weight_penalties as t

    solution = {gid: "\n".join(ln for ln in src.splitlines() if "SOLUTION" not in ln)
                for gid, src in t.SOLUTIONS.items()}
    honest = [("honest", dict(solution))]
    for function, impls in t.CORRECT.items():
        for impl in impls:
            # scikit-learn is correct but not "NumPy only": reggrader flags it for review
            kind = "flagged" if "sklearn" in inspect.getsource(impl) else "honest"
            honest.append((kind, {**solution, function: _cell_source(function, impl)}))
    wrong = [("wrong", {**solution, f: _cell_source(f, impl)}) for f, impls in t.WRONG.items() for impl in impls]
    broken = [
        ("broken", {}),  # the untouched release
        ("broken", {**solution, "ridge": "def ridge(X, y, lam)\n    return X"}),
        ("broken", {**solution, "lasso_ista": "def lasso_ista(X, y, lam, n_iters):\n    return helper(X)"}),
        ("broken", {**solution, "soft_threshold": "def soft_threshold(v, thresh):\n    pass"}),
        ("broken", {**solution, "l2_penalty": solution["l2_penalty"] + "\n1 / 0"}),
    ]
    # interleave the kinds (honest, wrong, broken, ...) so that any prefix of the class is a mix
    lists, pool = [honest, wrong, broken], []
    while any(lists):
        for lst in lists:
            if lst:
                pool.append(lst.pop(0))
    picked = (pool * (n // len(pool) + 1))[:n]
    return [(f"s{k:03d}_{kind}", kind, answers) for k, (kind, answers) in enumerate(picked)]


def build_course(tmp: Path, students) -> Path:
    """A released course with the class in submitted/ and a gradebook that knows the assignment."""
    import nbformat
    import release
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    root = tmp / "template"
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=release.IGNORE)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    result = NbGraderAPI(config=config).generate_assignment(ASSIGNMENT)
    if not result["success"]:
        raise RuntimeError(result.get("error"))
    released = root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    for student, _, answers in students:
        nb = nbformat.read(released, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
        dest = root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)
    return root


def scores(db_url: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {s.student.id: float(s.score) for s in gb.find_assignment(ASSIGNMENT).submissions}


def run_stock(root: Path) -> tuple[float, dict[str, float]]:
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    db = f"sqlite:///{root / 'gradebook.db'}"
    config.CourseDirectory.db_url = db
    api = NbGraderAPI(config=config)
    t0 = time.perf_counter()
    result = api.autograde(ASSIGNMENT, "*")  # the whole class in one call
    seconds = time.perf_counter() - t0
    if not result["success"]:
        print("stock autograde reported errors (kept going):", str(result.get("error"))[-500:])
    return seconds, scores(db)


def run_reggrader(root: Path, workers: int) -> tuple[float, dict[str, float], dict]:
    from reggrader.batch import grade
    from reggrader.course import load_course
    from reggrader.sandbox import Limits

    course = load_course(root, db_url=f"sqlite:///{root / 'gradebook.db'}")
    t0 = time.perf_counter()
    summary = grade(course, ASSIGNMENT, root / "submitted", workers=workers,
                    limits=Limits(cell_timeout=60, notebook_timeout=600))
    seconds = time.perf_counter() - t0
    return seconds, scores(course.db_url), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    students = make_class(args.n)
    kinds = {s: k for s, k, _ in students}
    print(f"{len(students)} submissions: " + ", ".join(
        f"{k} {sum(1 for v in kinds.values() if v == k)}" for k in ("honest", "wrong", "broken", "flagged")))
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        template = build_course(Path(tmp), students)
        runs = {}
        for name in ("stock", "reggrader-1", "reggrader-2"):
            root = Path(tmp) / name
            shutil.copytree(template, root)
            if name == "stock":
                runs[name] = run_stock(root) + ({},)
            else:
                runs[name] = run_reggrader(root, int(name[-1]))
            print(f"{name:12s} {runs[name][0]:7.1f} s  {runs[name][0] / len(students):6.2f} s/submission",
                  flush=True)
    stock_s, stock_scores, _ = runs["stock"]
    one_s, one_scores, one_summary = runs["reggrader-1"]
    two_s, two_scores, two_summary = runs["reggrader-2"]
    print(f"ratios: stock / reggrader-1 = {stock_s / one_s:.2f}, reggrader-1 / reggrader-2 = {one_s / two_s:.2f}, "
          f"stock / reggrader-2 = {stock_s / two_s:.2f}")
    print(f"reggrader-1 phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in one_summary["timings"].items()
                                              if k != "workers"))
    differ = {s: (stock_scores.get(s), one_scores.get(s), two_scores.get(s)) for s in kinds
              if not (stock_scores.get(s) == one_scores.get(s) == two_scores.get(s))}
    honest_differ = {s: v for s, v in differ.items() if kinds[s] == "honest"}
    for s, v in sorted(differ.items()):
        print(f"  differs: {s} ({kinds[s]}): stock {v[0]}, reggrader-1 {v[1]}, reggrader-2 {v[2]}")
    print(f"honest submissions with identical scores in all three: "
          f"{sum(1 for s, k in kinds.items() if k == 'honest') - len(honest_differ)}"
          f"/{sum(1 for k in kinds.values() if k == 'honest')}")
    print(f"machine: {os.cpu_count()} cores, {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.1f} (shared: these are upper bounds)")
    if args.json:
        args.json.write_text(json.dumps({
            "n": len(students), "stock_s": stock_s, "reggrader1_s": one_s, "reggrader2_s": two_s,
            "scores": {"stock": stock_scores, "reggrader1": one_scores, "reggrader2": two_scores},
            "kinds": kinds, "differ": differ, "reggrader1_timings": one_summary["timings"],
            "reggrader2_timings": two_summary["timings"],
        }, indent=1))
    return 1 if honest_differ else 0


if __name__ == "__main__":
    sys.exit(main())
