"""The student versions in exercises/ are exactly what the release makes, and leak nothing.

``tools/release.py`` (``make exercises``) regenerates them from ``solutions/`` with nbgrader;
a regeneration into a temporary folder must reproduce ``exercises/`` byte for byte. The
released notebooks must hold no solution (each solution cell is its source with the solution
region replaced by the stub), no hidden test (each test cell is its source without the hidden
region) and no call of reglib in a graded cell.
"""

from __future__ import annotations

import re
import sys

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402

ASSIGNMENTS = release.assignments()
CONFIG = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
CODE_STUB = CONFIG.ClearSolutions.code_stub["python"]
TEXT_STUB = CONFIG.ClearSolutions.text_stub


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _pairs():
    """(assignment, source notebook path, released notebook path) for every source notebook."""
    return [(a, src, ROOT / "exercises" / a / src.name)
            for a in ASSIGNMENTS for src in sorted((ROOT / "solutions" / a).glob("*.ipynb"))]


PAIRS = _pairs()
IDS = [f"{a}/{src.name}" for a, src, _ in PAIRS]


def _region(source: str, begin: str, end: str) -> list[str]:
    """The lines strictly between the begin and end markers (all regions of a cell)."""
    inside, lines = False, []
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def _replace_region(source: str, begin: str, end: str, stub: str | None) -> str:
    """nbgrader's transformation: the region (markers included) becomes the indented stub (or nothing)."""
    out, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
            if stub is not None:
                indent = re.match(r"\s*", line).group(0)
                out.extend(indent + s for s in stub.split("\n"))
        elif end in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def test_there_is_an_assignment():
    assert "01_weight_penalties" in ASSIGNMENTS
    assert "02_dropout" in ASSIGNMENTS


def test_no_release_holds_a_grading_spec():
    """solutions/<name>/grading.py (record-and-compare cases and references) is never released."""
    specs = [a for a in ASSIGNMENTS if (ROOT / "solutions" / a / "grading.py").is_file()]
    assert "02_dropout" in specs
    assert "grading.py" in CONFIG.CourseDirectory.ignore
    for assignment in specs:
        assert not list((ROOT / "exercises" / assignment).rglob("grading.py")), assignment


def test_every_released_folder_has_a_source():
    released = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS, "exercises/ and solutions/ hold the same assignments"


def test_regenerating_reproduces_exercises_byte_for_byte(tmp_path):
    release.generate(ASSIGNMENTS, tmp_path)
    for assignment in ASSIGNMENTS:
        fresh, committed = _files(tmp_path / assignment), _files(ROOT / "exercises" / assignment)
        assert sorted(fresh) == sorted(committed), f"{assignment}: files differ; run `make exercises`"
        for name in fresh:
            assert fresh[name] == committed[name], f"{assignment}/{name} is stale; run `make exercises`"


@pytest.mark.parametrize(("assignment", "source", "released"), PAIRS, ids=IDS)
def test_release_leaks_no_solution_and_no_hidden_test(assignment, source, released):
    src_nb = nbformat.read(source, as_version=4)
    rel_nb = nbformat.read(released, as_version=4)
    text = released.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{marker} in {released}"

    src_cells = {_grade_id(c): c for c in src_nb.cells if _grade_id(c)}
    rel_cells = {_grade_id(c): c for c in rel_nb.cells if _grade_id(c)}
    assert sorted(src_cells) == sorted(rel_cells), "the release keeps every nbgrader cell"

    secret_lines = set()
    for gid, src in src_cells.items():
        meta, rel = src.metadata["nbgrader"], rel_cells[gid]
        if meta.get("solution"):
            if src.cell_type == "code":
                expected = _replace_region(src.source, "BEGIN SOLUTION", "END SOLUTION", CODE_STUB)
                secret_lines.update(_region(src.source, "BEGIN SOLUTION", "END SOLUTION"))
                if expected == src.source:  # a solution cell without a region is replaced whole
                    expected = CODE_STUB
            else:
                expected = TEXT_STUB
                secret_lines.update(src.source.split("\n"))
            assert rel.source == expected, f"{gid}: the solution cell must be the stub"
        if meta.get("grade") and src.cell_type == "code":
            expected = _replace_region(src.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", None)
            secret_lines.update(_region(src.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"))
            assert rel.source == expected, f"{gid}: the test cell must lose exactly its hidden region"
        if meta.get("grade") or meta.get("solution"):
            assert "reglib" not in rel.source, f"{gid}: a graded cell calls reglib"

    # no line of a solution or of a hidden test survives anywhere (trivial lines aside)
    released_lines = {line.strip() for c in rel_nb.cells for line in c.source.split("\n")}
    leaked = {line.strip() for line in secret_lines if len(line.strip()) > 12} & released_lines
    assert not leaked, f"solution or hidden-test lines in the release: {sorted(leaked)[:5]}"
    assert secret_lines, "the source has solutions and hidden tests to hide"
