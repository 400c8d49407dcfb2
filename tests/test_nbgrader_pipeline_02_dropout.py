"""Grading end to end on assignment 02 (dropout), in a temporary course directory.

As for assignment 01 (``tests/test_nbgrader_pipeline.py``): nbgrader's generate_assignment
-> three submissions (the solution, the untouched release, a partly wrong one) -> one
``reggrader`` batch (intake, sandboxed kernels where the helper cells call the student's
functions on seeded inputs, record-and-compare against reglib and exact statistics outside
the kernel, one trusted writer of nbgrader's gradebook) -> scores read back from the
gradebook -> nbgrader's feedback HTML (which must show neither the hidden tests nor a
traceback of a failing one) -> grades as CSV (nbgrader's export). The release must not
contain ``grading.py``.

The control at the end grades the same three submissions with stock ``nbgrader autograde``
(whose hidden cells run ``reggrader.hidden.check`` in the student's kernel, finding
``grading.py`` through the course root) and stock feedback preprocessors: the points per
cell agree with reggrader's, and the hidden test and its traceback reach the student's page.
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

ASSIGNMENT = "02_dropout"
NOTEBOOK = ASSIGNMENT
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
STUDENTS = ("alice", "bob", "carol")  # the solution, the untouched release, partly wrong
TOTAL, AUTOGRADED = 17, 14

# carol: inverted dropout whose backward pass draws a fresh mask from the rng it kept (right
# whenever the mask is given, so only the rng test catches it); Gaussian dropout right;
# DropPath per element instead of per sample; MC dropout left as released.
CAROL_WRONG = {
    "dropout": '''
def dropout_forward(x, drop_prob, rng=None, mask=None, training=True):
    x = np.asarray(x, dtype=float)
    if not training:
        return x.copy(), None
    keep = 1.0 - drop_prob
    m = rng.random(x.shape) < keep if mask is None else np.asarray(mask, dtype=bool)
    return x * m / keep, (rng, m, keep)


def dropout_backward(dout, cache):
    if cache is None:
        return dout
    rng, m, keep = cache
    if rng is not None:
        m = rng.random(m.shape) < keep
    return dout * m / keep
''',
    "drop_path": '''
def drop_path(x, drop_prob, training, generator):
    if not training or drop_prob == 0.0:
        return x
    keep = 1.0 - drop_prob
    alive = torch.rand(x.shape, generator=generator, dtype=x.dtype) < keep
    return x * alive / keep
''',
}
CAROL_LEFT_AS_RELEASED = {"mc_dropout_predict"}
CAROL_EXPECTED = {  # points per test cell
    "dropout_visible": 1, "dropout_hidden": 2, "dropout_rng_hidden": 0,
    "gaussian_dropout_visible": 1, "gaussian_dropout_hidden": 1, "gaussian_dropout_rng_hidden": 1,
    "drop_path_visible": 0, "drop_path_hidden": 0,
    "mc_dropout_predict_visible": 0, "mc_dropout_predict_hidden": 0,
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


def _answers(student: str) -> dict[str, str]:
    source = nbformat.read(SOURCE, as_version=4)
    solution = {_meta(c)["grade_id"]: _without_markers(c.source) for c in source.cells if _meta(c).get("solution")}
    if student == "alice":
        return solution
    if student == "bob":
        return {}
    carol = {gid: src for gid, src in solution.items() if gid not in CAROL_LEFT_AS_RELEASED}
    carol.update({gid: src.strip() for gid, src in CAROL_WRONG.items()})
    carol["written_answer"] = "Inverted dropout already has the right mean; the penalty grows with each feature's energy."
    return carol


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

    root = tmp_path_factory.mktemp("course02")
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT, ignore=release.IGNORE)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    release.ensure_tools_on_path()  # nbgrader runs `alembic` to create the gradebook
    config = _load_config(root)
    api = NbGraderAPI(config=config)

    result = api.generate_assignment(ASSIGNMENT)
    assert result["success"], result.get("error")
    released = root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    for student in STUDENTS:
        _submit(root, student, released, _answers(student))

    grader_course = load_course(root, db_url=config.CourseDirectory.db_url)
    summary = grade(grader_course, ASSIGNMENT, root / "submitted", workers=2,
                    limits=Limits(cell_timeout=120, notebook_timeout=600))  # the whole batch
    assert summary["graded"] == 3 and not summary["quarantined"] and not summary["grader_errors"], summary
    generate_feedback(grader_course, ASSIGNMENT)  # nbgrader's generate_feedback, then a leak check
    return SimpleNamespace(root=root, api=api, config=config, db_url=config.CourseDirectory.db_url,
                           summary=summary, released=released)


def _grades(db_url, student):
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        notebook = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        cells = {g.name: (g.score, g.max_score, g.needs_manual_grade, g.cell_type) for g in notebook.grades}
        return submission.score, submission.max_score, cells


def test_the_release_is_the_committed_one_and_holds_no_grading_spec(course):
    assert sorted(p.name for p in course.released.parent.iterdir()) == [f"{NOTEBOOK}.ipynb"]
    assert course.released.read_bytes() == (ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_bytes()


def test_the_solution_gets_full_marks_on_every_autograded_cell(course):
    score, max_score, cells = _grades(course.db_url, "alice")
    code = {k: v for k, v in cells.items() if v[3] == "code"}
    assert len(code) == 10 and all(s == m for s, m, _, _ in code.values()), code
    assert (score, max_score) == (AUTOGRADED, TOTAL)
    assert cells["written_answer"][2], "the written answer waits for a human grader"


def test_the_untouched_release_gets_zero(course):
    score, max_score, cells = _grades(course.db_url, "bob")
    assert (score, max_score) == (0, TOTAL)
    assert all(s == 0 for s, _, _, _ in cells.values()), cells
    assert not cells["written_answer"][2], "an unchanged answer cell is graded 0 automatically"


def test_a_partly_wrong_submission_gets_partial_credit(course):
    score, _, cells = _grades(course.db_url, "carol")
    assert {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"} == CAROL_EXPECTED
    assert 0 < score == sum(CAROL_EXPECTED.values()) < AUTOGRADED


def test_feedback_hides_hidden_tests_and_their_failures(course):
    hidden = _hidden_lines()
    assert len(hidden) == 6, hidden  # one record-and-compare line per hidden test cell
    for student in STUDENTS:
        text = _visible_text(course.root / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html")
        assert "def dropout_forward" in text and "def _grade_drop_path" in text, "the feedback shows the notebook"
        assert not [line for line in hidden if line in text], student
        for secret in ("HIDDEN TESTS", "reglib.numpy", "reggrader", "check(", "grading.py"):
            assert secret not in text, f"{student}: {secret!r} in the feedback"
    carol = _visible_text(course.root / "feedback" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    # her failing rng test is reported by part, case and summary, without code or traceback
    assert "Hidden tests (dropout_rng_hidden): 0 of 1 points." in carol and "HiddenTestsFailed" in carol
    assert "'backward: largest |dx - dout * out / x|': wrong values" in carol
    alice = _visible_text(course.root / "feedback" / "alice" / ASSIGNMENT / f"{NOTEBOOK}.html")
    assert "Traceback (most recent call last)" not in alice
    assert f"{ASSIGNMENT} (Score: {sum(CAROL_EXPECTED.values()):.1f} / {TOTAL:.1f})" in carol


def test_stock_nbgrader_agrees_on_the_points_but_its_feedback_would_leak(course):
    """The control: stock autograde (check() in the student's kernel) + stock feedback preprocessors."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.preprocessors import GetGrades

    config = _load_config(course.root)
    # a gradebook and folders of its own: the grades above stay as reggrader wrote them
    stock_db = f"sqlite:///{course.root / 'stock.db'}"
    config.CourseDirectory.db_url = stock_db
    config.CourseDirectory.autograded_directory = "autograded_stock"
    config.CourseDirectory.feedback_directory = "feedback_stock"
    config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor]
    api = NbGraderAPI(config=config)
    for step in (lambda: api.generate_assignment(ASSIGNMENT), lambda: api.autograde(ASSIGNMENT, "*"),
                 lambda: api.generate_feedback(ASSIGNMENT, "carol")):
        result = step()
        assert result["success"], result.get("error")
    for student in STUDENTS:
        stock = {k: v[0] for k, v in _grades(stock_db, student)[2].items() if v[3] == "code"}
        ours = {k: v[0] for k, v in _grades(course.db_url, student)[2].items() if v[3] == "code"}
        assert stock == ours, (student, stock, ours)
    text = _visible_text(course.root / "feedback_stock" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    assert "BEGIN HIDDEN TESTS" in text and any(line in text for line in _hidden_lines())
    assert "Traceback" in text and 'check("dropout_rng_hidden")' in text


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
        assert float(row["max_score"]) == max_score == TOTAL
    assert [float(rows[s]["score"]) for s in STUDENTS] == [AUTOGRADED, 0.0, sum(CAROL_EXPECTED.values())]
