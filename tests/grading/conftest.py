"""Fixtures for the grader's tests: a small course (assignment ``toy``) in a temp folder.

The course in ``fixtures/course`` has a source notebook with record-and-compare hidden
tests and its ``grading.py``. Per session it is copied once, released in memory with
nbgrader's own preprocessors (what ``generate_assignment`` does, without a gradebook), and
given a freshly migrated empty gradebook; each test then gets its own copy (cheap).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.grading.helpers import FIXTURE, release_in_memory

# the fixture notebooks are inputs, not tests: nbval must not execute them
collect_ignore_glob = ["fixtures/*"]

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def course_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template") / "course"
    shutil.copytree(FIXTURE, root)
    release_in_memory(root, "toy")
    from nbgrader.api import Gradebook

    Gradebook(f"sqlite:///{root / 'gradebook.db'}").close()  # migrated, empty
    return root


@pytest.fixture
def course_root(course_template, tmp_path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(course_template, root)
    return root


@pytest.fixture
def course(course_root):
    from reggrader.course import load_course

    return load_course(course_root)
