"""The setup cell that opens every chapter and every assignment notebook.

The repository URL is written once, in ``_config.yml`` (``repository.url``); this script
builds the setup cell from it and writes it as the first code cell of every notebook in
``book/`` and ``solutions/`` (the released ``exercises/`` inherit it through nbgrader).

    python tools/setup_cell.py --write   # insert or update the cell everywhere
    python tools/setup_cell.py --check   # exit 1 and list notebooks whose cell differs

The cell works in a fresh Colab runtime: it installs reglib from the repository when it
is missing (torch is not a dependency of reglib, so Colab's torch is never replaced),
then seeds everything, sets one CPU thread and picks CUDA when present.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP_TAG = "setup"


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def repository_branch() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"].get("branch", "main")


def setup_source() -> str:
    url, branch = repository_url(), repository_branch()
    return (
        "# Setup (the same in every notebook): installs reglib if it is missing, e.g. in a\n"
        "# fresh Colab runtime (torch is never reinstalled), seeds every random generator,\n"
        "# uses one CPU thread (fastest for small models) and picks CUDA when present.\n"
        "import importlib.util, subprocess, sys\n"
        'if importlib.util.find_spec("reglib") is None:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
        f'                    "reglib @ git+{url}@{branch}"], check=True)\n'
        "from reglib.torch import setup\n"
        "device = setup(seed=0)"
    )


def notebooks() -> list[Path]:
    paths = sorted((ROOT / "book").rglob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))
    return [p for p in paths if ".ipynb_checkpoints" not in p.parts]


def first_code_cell(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            return i
    return None


def is_current(nb) -> bool:
    i = first_code_cell(nb)
    return i is not None and nb.cells[i].source == setup_source()


def write(path: Path) -> bool:
    """Insert or update the setup cell (and drop jupytext's metadata); True if changed."""
    nb = nbformat.read(path, as_version=4)
    changed = nb.metadata.pop("jupytext", None) is not None
    if not is_current(nb):
        changed = True
        i = first_code_cell(nb)
        if i is not None and SETUP_TAG in nb.cells[i].metadata.get("tags", []):
            nb.cells[i].source = setup_source()
        else:
            cell = nbformat.v4.new_code_cell(setup_source())
            # no nbgrader metadata on this cell: it is plain context in assignments too
            cell.metadata["tags"] = [SETUP_TAG, "hide-input"]
            # after the title cell (the first markdown cell), before everything else
            at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
            nb.cells.insert(at, cell)
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        for path in notebooks():
            if write(path):
                print(f"updated {path.relative_to(ROOT)}")
        return 0
    stale = [p for p in notebooks() if not is_current(nbformat.read(p, as_version=4))]
    for p in stale:
        print(f"setup cell missing or outdated: {p.relative_to(ROOT)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
