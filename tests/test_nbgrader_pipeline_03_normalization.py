"""Grading end to end on assignment 03 (normalization), in a temporary course directory.

As for assignment 01 (``tests/test_nbgrader_pipeline.py``):

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

ASSIGNMENT = "03_normalization"
NOTEBOOK = ASSIGNMENT  # nbgrader's notebook id: the file name without .ipynb
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
STUDENTS = ("alice", "bob", "carol")  # the solution, the untouched release, partly wrong

# carol: batch norm with the momentum the wrong way round (Keras' convention: her training
# outputs are right but her running statistics are not, so she keeps the evaluation point and
# every backward point, whose cache holds her correct x-hat); layer norm right; group norm left
# as released; power iteration one step short (right for n_iters = 1, the visible worked
# example, so only the hidden test catches it).
CAROL_WRONG = {
    "batchnorm_forward": '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    axes = (0,) + tuple(range(2, x.ndim))
    view = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        m = x.size // x.shape[1]
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        new_mean = momentum * running_mean + (1 - momentum) * mu
        new_var = momentum * running_var + (1 - momentum) * var * m / (m - 1)
    else:
        mu, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu.reshape(view)) * inv_std.reshape(view)
    return gamma.reshape(view) * xhat + beta.reshape(view), (xhat, inv_std, gamma, training), new_mean, new_var
''',
    "power_iteration": '''
def power_iteration(W, n_iters, u0):
    u = u0 / np.linalg.norm(u0)
    for _ in range(max(n_iters - 1, 1)):
        v = W.T @ u
        v = v / np.linalg.norm(v)
        u = W @ v
        u = u / np.linalg.norm(u)
    return float(u @ W @ v), u, v
''',
}
CAROL_LEFT_AS_RELEASED = {"groupnorm_forward"}
CAROL_EXPECTED = {
    "batchnorm_forward_visible": 0, "batchnorm_forward_hidden": 0, "batchnorm_forward_eval_hidden": 1,
    "batchnorm_backward_visible": 1, "batchnorm_backward_hidden": 2,
    "layernorm_forward_visible": 1, "layernorm_forward_hidden": 2,
    "groupnorm_forward_visible": 0, "groupnorm_forward_hidden": 0,
    "power_iteration_visible": 1, "power_iteration_hidden": 0,
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

    root = tmp_path_factory.mktemp("course03")
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


def _answers(student: str) -> dict[str, str]:
    """{grade_id: source} of every answer cell as the student submits it."""
    source = nbformat.read(SOURCE, as_version=4)
    solution = {_meta(c)["grade_id"]: _without_markers(c.source) for c in source.cells if _meta(c).get("solution")}
    released = nbformat.read(ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    stubs = {_meta(c)["grade_id"]: c.source for c in released.cells if _meta(c).get("solution")}
    if student == "alice":
        return solution
    if student == "bob":  # the untouched release
        return stubs
    carol = {gid: stubs[gid] if gid in CAROL_LEFT_AS_RELEASED else src for gid, src in solution.items()}
    carol.update({gid: src.strip() for gid, src in CAROL_WRONG.items()})
    carol["written_answer"] = "Evaluation uses running averages; with two rows every normalized value is +1 or -1."
    return carol


def _in_process_verdicts(student: str) -> dict:
    """{grade_id: PartScore} of the same answers judged in this process (``reggrader.local``)."""
    from reggrader.course import load_course
    from reggrader.local import evaluate

    answers = {gid: src for gid, src in _answers(student).items() if gid != "written_answer"}
    return evaluate(load_course(ROOT), ASSIGNMENT, answers)


def _autograded_points() -> float:
    return sum(_meta(c)["points"] for c in nbformat.read(SOURCE, as_version=4).cells
               if _meta(c).get("grade") and c.cell_type == "code")


def test_the_release_is_the_committed_one_without_grading_py(course):
    assert sorted(p.name for p in course.released.parent.iterdir()) == [f"{NOTEBOOK}.ipynb"]
    assert course.released.read_bytes() == (ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_bytes()


def test_the_solution_gets_full_marks_on_every_autograded_cell(course):
    score, max_score, cells = _grades(course.db_url, "alice")
    code = {k: v for k, v in cells.items() if v[3] == "code"}
    assert len(code) == 11 and all(s == m for s, m, _, _ in code.values()), code
    assert score == _autograded_points() == 16
    assert max_score == 19, "16 autograded points and 3 for the written answer"
    assert cells["written_answer"][2], "the written answer waits for a human grader"


def test_the_untouched_release_gets_zero(course):
    score, max_score, cells = _grades(course.db_url, "bob")
    assert score == 0 and max_score == 19
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
        assert "def batchnorm_forward" in text and "_grade_batchnorm_backward" in text, "the notebook"
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden-test lines in the feedback: {leaked[:3]}"
        for secret in ("HIDDEN TESTS", "reglib.numpy", "reggrader", "check("):
            assert secret not in text, f"{student}: {secret!r} in the feedback"
    carol = _visible_text(course.root / "feedback" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    # her failing hidden tests are reported by name, case and wrong output, without code or
    # traceback; the counts are those of the in-process evaluation of the same answers
    verdicts = _in_process_verdicts("carol")
    for gid in ("batchnorm_forward_hidden", "power_iteration_hidden"):
        v = verdicts[gid]
        assert v.score == 0 and f"Hidden tests ({gid}): 0 of {v.points:g} points. {v.message}" in carol
    assert "HiddenTestsFailed" in carol
    assert "case 9 (training, momentum=0: the running statistics stay): 'new running_mean': wrong values" in carol
    assert "(W (7, 2), u0 far from unit length): item 0: wrong values" in carol
    # the only tracebacks on a page are those of visible asserts (alice passes them all)
    alice = _visible_text(course.root / "feedback" / "alice" / ASSIGNMENT / f"{NOTEBOOK}.html")
    assert "Traceback (most recent call last)" not in alice
    score = float(sum(CAROL_EXPECTED.values()))
    assert f"{ASSIGNMENT} (Score: {score:.1f} / 19.0)" in carol, "the page states her score"


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
    assert "Traceback" in text and 'check("power_iteration_hidden")' in text


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
        assert float(row["max_score"]) == max_score == 19
    assert [float(rows[s]["score"]) for s in STUDENTS] == [16.0, 0.0, sum(CAROL_EXPECTED.values())]


def test_the_sandboxed_batch_agrees_with_the_in_process_evaluation(course):
    """Per cell, the points reggrader wrote equal those of ``reggrader.local.evaluate``."""
    for student in STUDENTS:
        _, _, cells = _grades(course.db_url, student)
        got = {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"}
        assert got == {gid: v.score for gid, v in _in_process_verdicts(student).items()}, student
