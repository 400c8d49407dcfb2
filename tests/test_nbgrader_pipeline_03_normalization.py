"""Assignment 03 (normalization) end to end, in a temporary course directory, both ways.

Stock nbgrader: generate_assignment -> three submissions (the solution, the untouched
release, a partly wrong one) -> one autograde batch, whose hidden cells run
``reggrader.hidden.check`` in the student's kernel (it finds ``grading.py`` through the
course root) -> scores from the gradebook -> feedback HTML without the hidden tests or
their tracebacks -> CSV. The release must not contain ``grading.py``.

reggrader: the same three submissions graded by ``reggrader.batch.grade`` (record in a
sandboxed kernel, compare in the trusted process) give the same points per cell.
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
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
]

ASSIGNMENT = "03_normalization"
NOTEBOOK = ASSIGNMENT
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
STUDENTS = ("alice", "bob", "carol")
TOTAL, AUTOGRADED = 19, 16

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


def _visible_text(path) -> str:
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
    carol["written_answer"] = "Evaluation uses running averages; with two rows every normalized value is +1 or -1."
    return carol


def _submit(folder, student: str, released, answers: dict[str, str]) -> None:
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    dest = folder / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
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

    root = tmp_path_factory.mktemp("course03")
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT, ignore=release.IGNORE)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    release.ensure_tools_on_path()
    config = _load_config(root)
    api = NbGraderAPI(config=config)
    result = api.generate_assignment(ASSIGNMENT)
    assert result["success"], result.get("error")
    released = root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    for student in STUDENTS:
        _submit(root / "submitted", student, released, _answers(student))
    result = api.autograde(ASSIGNMENT, "*")
    assert result["success"], result.get("error")
    result = api.generate_feedback(ASSIGNMENT)
    assert result["success"], result.get("error")
    return SimpleNamespace(root=root, api=api, config=config, db_url=config.CourseDirectory.db_url,
                           released=released)


def _grades(db_url, student):
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        notebook = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        cells = {g.name: (g.score, g.max_score, g.needs_manual_grade, g.cell_type) for g in notebook.grades}
        return submission.score, submission.max_score, cells


def test_release_is_the_committed_one_without_grading_py(course):
    files = sorted(p.name for p in course.released.parent.iterdir())
    assert files == [f"{NOTEBOOK}.ipynb"], files
    committed = ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert course.released.read_bytes() == committed.read_bytes()


def test_the_solution_gets_full_marks_on_every_autograded_cell(course):
    score, max_score, cells = _grades(course.db_url, "alice")
    code = {k: v for k, v in cells.items() if v[3] == "code"}
    assert len(code) == 11 and all(s == m for s, m, _, _ in code.values()), code
    assert (score, max_score) == (AUTOGRADED, TOTAL)
    assert cells["written_answer"][2], "the written answer waits for a human grader"


def test_the_untouched_release_gets_zero(course):
    score, max_score, cells = _grades(course.db_url, "bob")
    assert (score, max_score) == (0, TOTAL)
    assert all(s == 0 for s, _, _, _ in cells.values()), cells


def test_a_partly_wrong_submission_gets_partial_credit(course):
    score, _, cells = _grades(course.db_url, "carol")
    assert {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"} == CAROL_EXPECTED
    assert score == sum(CAROL_EXPECTED.values())


def test_feedback_hides_the_hidden_tests_and_their_failures(course):
    for student in STUDENTS:
        text = _visible_text(course.root / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html")
        assert "def batchnorm_forward" in text and "_grade_batchnorm_backward" in text, "the feedback shows the notebook"
        for secret in ("HIDDEN TESTS", "reggrader", "check(", "grading.py", "reglib.numpy", "Traceback (most recent"):
            assert secret not in text, f"{student}: {secret!r} in the feedback"
    carol = _visible_text(course.root / "feedback" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html")
    # her failing hidden tests are reported by the output they got wrong, without a traceback
    # or a reference value
    assert "A hidden test failed (AssertionError:" in carol
    assert "'new running_mean': wrong values" in carol
    assert "W (7, 2), u0 far from unit length" in carol
    assert f"{ASSIGNMENT} (Score: {sum(CAROL_EXPECTED.values()):.1f} / {TOTAL:.1f})" in carol


def test_grades_export_to_csv(course, tmp_path):
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    path = tmp_path / "grades.csv"
    with Gradebook(course.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    rows = {row["student_id"]: row for row in csv.DictReader(path.open())}
    assert sorted(rows) == sorted(STUDENTS)
    assert [float(rows[s]["score"]) for s in STUDENTS] == [AUTOGRADED, 0.0, sum(CAROL_EXPECTED.values())]
    assert all(float(rows[s]["max_score"]) == TOTAL for s in STUDENTS)


def test_reggrader_gives_the_same_points_per_cell(course, tmp_path):
    """The record-and-compare grader (sandboxed kernel, trusted comparison) agrees with stock nbgrader."""
    from reggrader.batch import grade
    from reggrader.course import load_course
    from reggrader.gradebook import gradebook_scores
    from reggrader.sandbox import Limits

    root = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT, ignore=release.IGNORE)
    shutil.copytree(course.released.parent, root / "exercises" / ASSIGNMENT)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    from nbgrader.api import Gradebook

    Gradebook(f"sqlite:///{root / 'gradebook.db'}").close()
    for student in STUDENTS:
        _submit(tmp_path / "in", student, course.released, _answers(student))
    rg_course = load_course(root, db_url=f"sqlite:///{root / 'gradebook.db'}")
    summary = grade(rg_course, ASSIGNMENT, tmp_path / "in", tmp_path / "work", workers=1,
                    limits=Limits(cell_timeout=60, notebook_timeout=400))
    assert summary["graded"] == 3 and not summary["quarantined"] and not summary["grader_errors"], summary
    scores = gradebook_scores(rg_course, ASSIGNMENT)
    stock = {s: _grades(course.db_url, s) for s in STUDENTS}
    for student in STUDENTS:
        autograded = {k: v[0] for k, v in stock[student][2].items() if v[3] == "code"}
        got = {k: v for k, v in scores[student]["grades"].items() if k in autograded}
        assert got == autograded, (student, got, autograded)
    assert scores["alice"]["score"] == AUTOGRADED and scores["bob"]["score"] == 0
