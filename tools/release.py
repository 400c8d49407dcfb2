"""Make the student versions of the assignments: ``solutions/<name>/`` -> ``exercises/<name>/``.

    python tools/release.py                      # every assignment in solutions/ (make exercises)
    python tools/release.py 01_weight_penalties  # only these
    python tools/release.py --output DIR         # write DIR/<name>/ instead of exercises/<name>/

Each assignment goes through nbgrader's ``generate_assignment --force`` (run in-process, with
the repository's ``nbgrader_config.py``) inside a temporary course directory that has its
own throw-away gradebook, so releasing never touches a real gradebook. The result then
replaces ``exercises/<name>/``. nbgrader's output is deterministic: releasing twice gives
byte-identical files (``tests/test_exercises.py`` regenerates and diffs).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
# what must never reach a student
FORBIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store")


def assignments() -> list[str]:
    """Every assignment in ``solutions/``: a folder holding at least one notebook."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def load_config(course: Path):
    """The repository's nbgrader config, rooted at ``course`` with a gradebook inside it."""
    from traitlets.config.loader import PyFileConfigLoader

    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = "sqlite:///" + str(course / "gradebook.db")
    return config


def ensure_tools_on_path() -> None:
    """nbgrader creates a gradebook by running the ``alembic`` command: find this interpreter's."""
    bindir = str(Path(sys.executable).parent)
    if shutil.which("alembic") is None and bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def generate(names: list[str], output: Path = EXERCISES) -> list[Path]:
    """Release ``names`` into ``output/<name>/`` (replaced); return the released folders."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    unknown = [n for n in names if not (SOLUTIONS / n).is_dir()]
    if unknown:
        raise ValueError(f"names must be assignments in {SOLUTIONS}, got {unknown}")
    ensure_tools_on_path()
    released = []
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        course = Path(tmp)
        config = load_config(course)
        for name in names:
            shutil.copytree(SOLUTIONS / name, course / "solutions" / name, ignore=IGNORE)
            coursedir = CourseDirectory(config=config)
            coursedir.assignment_id = name
            converter = GenerateAssignment(coursedir=coursedir, config=config)
            converter.force = True
            converter.start()  # raises NbGraderException on failure
            result = course / config.CourseDirectory.release_directory / name
            leaks = [str(p.relative_to(result)) for p in result.rglob("*")
                     if p.is_file() and any(m in p.read_text(errors="ignore") for m in FORBIDDEN_MARKERS)]
            if leaks:
                raise RuntimeError(f"{name}: the release still holds solution or hidden-test markers: {leaks}")
            dest = output / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(result, dest)
            released.append(dest)
    return released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help="folders of solutions/ to release (default: all)")
    parser.add_argument("--output", type=Path, default=EXERCISES,
                        help="where the released folders go (default: exercises/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    for dest in generate(args.assignments or assignments(), args.output):
        print(f"released {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
