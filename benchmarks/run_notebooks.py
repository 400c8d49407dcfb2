"""Time the book's notebooks: execute each in a fresh kernel, print seconds per notebook.

    python benchmarks/run_notebooks.py                    # every notebook page of _toc.yml
    python benchmarks/run_notebooks.py book/penalties/l1_sparsity.ipynb
    python benchmarks/run_notebooks.py --write-page       # also rewrite the table in
                                                          # book/appendix/performance.md

Each notebook runs with nbclient in a new ``python3`` kernel from its own folder, with one
CPU thread (``OMP_NUM_THREADS=1``, ``REGLIB_THREADS=1``) and static progress bars, as in the
book build. The time is wall-clock, kernel start-up included. Released exercises are never
run (their stubs raise ``NotImplementedError`` by design). Nothing is asserted: the budget
(about a minute per chapter on 2 cores) is measured here, not in the tests. The exit status
is 1 if a notebook failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "appendix" / "performance.md"
BUDGET_S = 60.0
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

# the same single-threaded set-up as `make book` and the test suite
for key, value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "REGLIB_THREADS": "1",
                   "REGLIB_PROGRESS": "static", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}.items():
    os.environ[key] = value
# the kernel must find the venv's tools (e.g. `jupyter`) like `make` does
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def toc_notebooks() -> list[Path]:
    """The notebook pages of ``_toc.yml``, in book order, without the released exercises."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    files = list(parse_toc_yaml(str(ROOT / "_toc.yml")))  # docnames in book order
    paths = [ROOT / f"{f}.ipynb" for f in files]
    return [p for p in paths if p.exists() and "exercises" not in p.relative_to(ROOT).parts]


def run(path: Path, timeout: int) -> tuple[float, str | None]:
    """Execute the notebook at ``path`` (not saved); return (seconds, error or None)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return time.perf_counter() - start, lines[-1][:200] if lines else type(exc).__name__
    return time.perf_counter() - start, None


STUB_TEXT = "This chapter is being written."


def is_stub(path: Path) -> bool:
    """A chapter still being written (one markdown cell saying so, plus the setup cell)."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    return len(cells) <= 2 and any(c.cell_type == "markdown" and STUB_TEXT in c.source for c in cells)


def title(path: Path) -> str:
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^# (.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return path.stem


def machine() -> str:
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = "not installed"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"torch {torch_version}, one torch thread")


def table(rows: list[tuple[Path, float, str | None]]) -> str:
    lines = ["| chapter | notebook | seconds | note |", "|---|---|--:|---|"]
    for path, seconds, error in rows:
        rel = path.relative_to(ROOT)
        link = os.path.relpath(path, PAGE.parent)
        status = (f"failed: {error}" if error else "stub: the chapter is being written" if is_stub(path)
                  else "" if seconds <= BUDGET_S else "over the 1-minute budget")
        lines.append(f"| [{title(path)}]({link}) | `{rel}` | {seconds:.1f} | {status} |")
    total = sum(s for _, s, _ in rows)
    lines.append(f"| **total** | {len(rows)} notebooks | **{total:.1f}** | |")
    return "\n".join(lines)


def write_page(rows, note: str) -> None:
    today = dt.date.today().isoformat()
    block = (f"{START}\nMeasured on {today} ({machine()}) with "
             f"`python benchmarks/run_notebooks.py --write-page`: wall-clock seconds per notebook, "
             f"kernel start-up included.{(' ' + note) if note else ''}\n\n{table(rows)}\n{END}")
    text = PAGE.read_text() if PAGE.exists() else ""
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = (
            "# Performance\n\n"
            "How long each chapter takes to execute from a fresh kernel. The budget is about a minute per\n"
            "chapter on 2 CPU cores with one torch thread (the setup cell sets it); the book build and the\n"
            "test suite execute every chapter, so these times add up to theirs. Re-measure with\n"
            "`make bench` (all chapters) or `python benchmarks/run_notebooks.py <notebook>`.\n\n"
            f"{block}\n"
        )
    PAGE.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all in _toc.yml)")
    parser.add_argument("--write-page", action="store_true", help=f"rewrite the table in {PAGE.relative_to(ROOT)}")
    parser.add_argument("--note", default="", help="a sentence to print under the table's heading")
    parser.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds (default 900)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"notebooks not found: {missing}")
    rows = []
    for path in paths:
        seconds, error = run(path, args.timeout)
        rows.append((path, seconds, error))
        print(f"{seconds:8.1f} s  {path.relative_to(ROOT)}" + (f"  FAILED: {error}" if error else ""), flush=True)
    print(f"{sum(s for _, s, _ in rows):8.1f} s  total ({len(rows)} notebooks)")
    if args.write_page:
        write_page(rows, args.note)
        print(f"wrote {PAGE.relative_to(ROOT)}")
    return 1 if any(error for _, _, error in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
