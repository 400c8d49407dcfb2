"""The course directory as nbgrader sees it (read from the course's ``nbgrader_config.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .spec import SPEC_FILENAME

__all__ = ["Course", "load_course", "find_course_root"]


def find_course_root(start: str | Path) -> Path | None:
    """The nearest directory at or above ``start`` holding an ``nbgrader_config.py``."""
    here = Path(start).resolve()
    for d in (here, *here.parents):
        if (d / "nbgrader_config.py").is_file():
            return d
    return None


@dataclass
class Course:
    root: Path
    config: Config
    course_id: str
    source_directory: str
    release_directory: str
    submitted_directory: str
    autograded_directory: str
    feedback_directory: str
    db_url: str
    ignore: list[str]

    def source(self, assignment: str) -> Path:
        return self.root / self.source_directory / assignment

    def release(self, assignment: str) -> Path:
        return self.root / self.release_directory / assignment

    def submitted(self) -> Path:
        return self.root / self.submitted_directory

    def autograded(self, student: str, assignment: str) -> Path:
        return self.root / self.autograded_directory / student / assignment

    def spec_path(self, assignment: str) -> Path:
        return self.source(assignment) / SPEC_FILENAME

    def notebooks(self, assignment: str) -> list[str]:
        """Notebook names (without .ipynb) of an assignment, from its source folder."""
        return sorted(p.stem for p in self.source(assignment).glob("*.ipynb"))

    def reports(self, assignment: str) -> Path:
        """Where the grader writes its report, CSV and work files (inside autograded/)."""
        return self.root / self.autograded_directory / f"reggrader-{assignment}"


def load_course(root: str | Path | None = None, db_url: str | None = None) -> Course:
    """Read ``<root>/nbgrader_config.py`` (root: the nearest one above the cwd)."""
    root = Path(root).resolve() if root else find_course_root(os.getcwd())
    if root is None or not (root / "nbgrader_config.py").is_file():
        raise FileNotFoundError(f"no nbgrader_config.py in {root or os.getcwd()} or above")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    from nbgrader.coursedir import CourseDirectory

    cd = CourseDirectory(config=config)
    if not os.path.isabs(cd.root) or Path(cd.root).resolve() != root:
        cd.root = str(root)
    if db_url:
        cd.db_url = db_url
    return Course(
        root=root,
        config=config,
        course_id=cd.course_id,
        source_directory=cd.source_directory,
        release_directory=cd.release_directory,
        submitted_directory=cd.submitted_directory,
        autograded_directory=cd.autograded_directory,
        feedback_directory=cd.feedback_directory,
        db_url=cd.db_url,
        ignore=list(cd.ignore),
    )
