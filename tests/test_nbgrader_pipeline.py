"""Grading end to end on assignment 01, in a temporary course directory.

nbgrader's generate_assignment -> three submissions (the solution, the untouched release, a
partly wrong one) -> one ``reggrader`` batch (intake, sandboxed kernels, record-and-compare
against reglib outside the kernel, one trusted writer of nbgrader's gradebook) -> scores read
back from the gradebook -> nbgrader's feedback HTML (which must show neither the hidden tests
nor the traceback of a failing one) -> grades as CSV (nbgrader's export). Everything runs in
this process through the Python APIs (the nbgrader CLI costs 6-9 s of start-up per call);
each submission runs in its own sandboxed kernel.

The control at the end grades the same wrong submission with stock ``nbgrader autograde`` and
stock feedback preprocessors: the hidden test and its traceback reach the student's page.
"""

from __future__ import annotations

import csv
import html
import re
import shutil
import sys
from types import SimpleNamespace

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # nbgrader's own gradebook code trips SQLAlchemy's autoflush warnings
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
]

ASSIGNMENT = "01_weight_penalties"
NOTEBOOK = ASSIGNMENT  # nbgrader's notebook id: the file name without .ipynb
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
STUDENTS = ("alice", "bob", "carol")  # the solution, the untouched release, partly wrong

# carol's answers: right for l2_penalty, soft_threshold and ridge; the elastic-net divisor
# of the penalty without its 1/2; the degrees of freedom from the diagonal of X^T X (right
# on the visible worked example, whose X is diagonal: only the hidden test catches it);
# lasso_ista left as released.
CAROL_WRONG = {
    "prox_elastic_net": '''
def prox_elastic_net(v, lam, l1_ratio):
    v = np.asarray(v, dtype=float)
    return soft_threshold(v, lam * l1_ratio) / (1 + 2 * lam * (1 - l1_ratio))
''',
    "ridge_effective_dof": '''
def ridge_effective_dof(X, lam):
    g = np.sum(np.asarray(X, dtype=float) ** 2, axis=0)
    return float(np.sum(g / (g + lam)))
''',
}
CAROL_LEFT_AS_RELEASED = {"lasso_ista"}
CAROL_EXPECTED = {  # points per test cell: full where the function is right, else 0
    "l2_penalty_visible": 1, "l2_penalty_hidden": 2,
    "soft_threshold_visible": 1, "soft_threshold_hidden": 2,
    "prox_elastic_net_visible": 0, "prox_elastic_net_hidden": 0,
    "ridge_visible": 1, "ridge_hidden": 2,
    "ridge_effective_dof_visible": 1, "ridge_effective_dof_hidden": 0,
    "lasso_ista_visible": 0, "lasso_ista_hidden": 0,
}


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _hidden_lines() -> set[str]:
    """Every non-trivial line of the source's hidden-test regions."""
    lines, inside = set(), False
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                lines.add(line.strip())
    return lines


def _visible_text(path) -> str:
    """The text a reader of an HTML page sees (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def _submit(root, student: str, released, answers: dict[str, str]) -> None:
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    dest = root / "submitted" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    dest.parent.mkdir(parents=True)
    nbformat.write(nb, dest)


def _load_config(root):
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from nbgrader.apps import NbGraderAPI
    from reggrader.batch import grade
    from reggrader.course import load_course
    from reggrader.feedback import generate_feedback
    from reggrader.sandbox import Limits

    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=release.IGNORE)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    release.ensure_tools_on_path()  # nbgrader runs `alembic` to create the gradebook
    config = _load_config(root)
    api = NbGraderAPI(config=config)

    result = api.generate_assignment(ASSIGNMENT)
    assert result["success"], result.get("error")
    released = root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

    source = nbformat.read(SOURCE, as_version=4)
    solution = {_meta(c)["grade_id"]: _without_markers(c.source) for c in source.cells if _meta(c).get("solution")}
    _submit(root, "alice", released, solution)
    _submit(root, "bob", released, {})
    carol = {gid: src for gid, src in solution.items() if gid not in CAROL_LEFT_AS_RELEASED}
    carol.update({gid: src.strip() for gid, src in CAROL_WRONG.items()})
    carol["written_answer"] = "L1 has a kink at zero; the degrees of freedom go from p to 0."
    _submit(root, "carol", released, carol)

    grader_course = load_course(root, db_url=config.CourseDirectory.db_url)
    summary = grade(grader_course, ASSIGNMENT, root / "submitted", workers=2,
                    limits=Limits(cell_timeout=120, notebook_timeout=600))  # the whole batch
    assert summary["graded"] == 3 and not summary["quarantined"] and not summary["grader_errors"], summary
    generate_feedback(grader_course, ASSIGNMENT)  # nbgrader's generate_feedback, then a leak check
    return SimpleNamespace(root=root, api=api, config=config, db_url=config.CourseDirectory.db_url,
                           summary=summary)


def _grades(db_url, student):
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        notebook = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        cells = {g.name: (g.score, g.max_score, g.needs_manual_grade, g.cell_type) for g in notebook.grades}
        return submission.score, submission.max_score, cells


def _autograded_points() -> float:
    return sum(_meta(c)["points"] for c in nbformat.read(SOURCE, as_version=4).cells
               if _meta(c).get("grade") and c.cell_type == "code")


def test_the_solution_gets_full_marks_on_every_autograded_cell(course):
    score, max_score, cells = _grades(course.db_url, "alice")
    code = {k: v for k, v in cells.items() if v[3] == "code"}
    assert len(code) == 12 and all(s == m for s, m, _, _ in code.values()), code
    assert score == _autograded_points() == 19
    assert max_score == 22, "19 autograded points and 3 for the written answer"
    assert cells["written_answer"][2], "the written answer waits for a human grader"


def test_the_untouched_release_gets_zero(course):
    score, max_score, cells = _grades(course.db_url, "bob")
    assert score == 0 and max_score == 22
    assert all(s == 0 for s, _, _, _ in cells.values()), cells
    assert not cells["written_answer"][2], "an unchanged answer cell is graded 0 automatically"


def test_a_partly_wrong_submission_gets_partial_credit(course):
    score, _, cells = _grades(course.db_url, "carol")
    got = {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"}
    assert got == CAROL_EXPECTED
    assert 0 < score < _autograded_points()
    assert score == sum(CAROL_EXPECTED.values())


def test_feedback_hides_hidden_tests_and_their_failures(course):
    hidden = _hidden_lines()
    assert len(hidden) == 6, hidden  # one record-and-compare line per hidden test cell
    for student in STUDENTS:
        page = course.root / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html"
        text = _visible_text(page)
        assert "def l2_penalty" in text, "the feedback shows the notebook"
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden-test lines in the feedback: {leaked[:3]}"
        for secret in ("HIDDEN TESTS", "reglib.numpy", "reggrader", "check("):
            assert secret not in text, f"{student}: {secret!r} in the feedback"
    carol = _visible_text(course.root / "feedback" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    # her failing hidden test is reported by name and case, without code or traceback
    assert "Hidden tests (ridge_effective_dof_hidden): 0 of 2 points. 0 of 8 cases passed" in carol
    assert "HiddenTestsFailed" in carol and "case 1 (X of shape (25, 5), lam=" in carol
    # the only tracebacks on a page are those of visible asserts (alice passes them all)
    alice = _visible_text(course.root / "feedback" / "alice" / ASSIGNMENT / f"{NOTEBOOK}.html")
    assert "Traceback (most recent call last)" not in alice
    score = float(sum(CAROL_EXPECTED.values()))
    assert f"{ASSIGNMENT} (Score: {score:.1f} / 22.0)" in carol, "the page states her score"


def test_stock_feedback_would_leak(course):
    """The control: stock autograde + stock feedback preprocessors show the hidden tests."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.preprocessors import GetGrades

    config = _load_config(course.root)
    # a gradebook and folders of its own: the grades above stay as reggrader wrote them
    config.CourseDirectory.db_url = f"sqlite:///{course.root / 'stock.db'}"
    config.CourseDirectory.autograded_directory = "autograded_stock"
    config.CourseDirectory.feedback_directory = "feedback_stock"
    config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor]
    api = NbGraderAPI(config=config)
    for step in (lambda: api.generate_assignment(ASSIGNMENT), lambda: api.autograde(ASSIGNMENT, "carol"),
                 lambda: api.generate_feedback(ASSIGNMENT, "carol")):
        result = step()
        assert result["success"], result.get("error")
    text = _visible_text(course.root / "feedback_stock" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    assert "BEGIN HIDDEN TESTS" in text and any(line in text for line in _hidden_lines())
    assert "Traceback" in text and 'check("ridge_effective_dof_hidden")' in text


def test_grades_export_to_csv(course, tmp_path):
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    path = tmp_path / "grades.csv"
    with Gradebook(course.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    rows = {row["student_id"]: row for row in csv.DictReader(path.open())}
    assert sorted(rows) == sorted(STUDENTS)
    for student in STUDENTS:
        score, max_score, _ = _grades(course.db_url, student)
        row = rows[student]
        assert row["assignment"] == ASSIGNMENT
        assert float(row["raw_score"]) == float(row["score"]) == score
        assert float(row["max_score"]) == max_score == 22
    assert [float(rows[s]["score"]) for s in STUDENTS] == [19.0, 0.0, sum(CAROL_EXPECTED.values())]
