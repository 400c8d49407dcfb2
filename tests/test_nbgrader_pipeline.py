"""Grading end to end on assignments 01, 02 and 03, in one temporary course directory.

nbgrader's generate_assignment (all three) -> per assignment, three submissions (the solution,
the untouched release, a partly wrong one) -> one ``reggrader`` batch per assignment (intake,
sandboxed kernels where the helper cells call the student's functions on seeded inputs,
record-and-compare against reglib and exact statistics outside the kernel, one trusted writer
of nbgrader's gradebook) -> scores read back from the gradebook -> nbgrader's feedback HTML
(which must show neither the hidden tests nor the traceback of a failing one) -> grades as
CSV (nbgrader's export). The release must be the committed one, without ``grading.py``.
Everything runs in this process through the Python APIs (the nbgrader CLI costs 6-9 s of
start-up per call); each submission runs in its own sandboxed kernel.

The control at the end grades the wrong submission (for 02: all three) with stock ``nbgrader
autograde`` (whose hidden cells run ``reggrader.hidden.check`` in the student's kernel, finding
``grading.py`` through the course root) and stock feedback preprocessors: the hidden test and
its traceback reach the student's page (and for 02 the points per cell agree with reggrader's).

What differs between the assignments (the partly wrong submission and its expected points,
what its feedback page must say, the totals) is in one ``Case`` per assignment, ``CASES``.
"""

from __future__ import annotations

import csv
import html
import itertools
import re
import shutil
import sys
from dataclasses import dataclass
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

STUDENTS = ("alice", "bob", "carol")  # the solution, the untouched release, partly wrong
SECRETS = ("HIDDEN TESTS", "reglib.numpy", "reggrader", "check(")  # never on a feedback page


@dataclass(frozen=True)
class Case:
    """One assignment's data for the pipeline (the notebook id is the assignment's name)."""

    name: str
    autograded: float  # points of the autograded cells
    total: float  # with the written answer
    code_cells: int  # graded test cells
    carol_wrong: dict  # {answer grade_id: source} of carol's wrong answers
    carol_left_as_released: frozenset
    carol_expected: dict  # {test grade_id: points carol gets}
    written_answer: str
    shows_notebook: tuple  # strings every feedback page shows
    carol_feedback: tuple  # strings carol's feedback page shows
    stock_leak: str  # the hidden test whose check() stock feedback shows carol
    extra_secrets: tuple = ()
    hidden_cells: int = 6  # one record-and-compare line per hidden test cell
    # hidden parts carol fails whose feedback line must carry the in-process verdict's message
    carol_failing_in_process: tuple = ()
    stock_autograde_all: bool = False  # stock autograde of every student, points compared
    agrees_in_process: bool = False  # the batch's points equal reggrader.local.evaluate's

    @property
    def source(self):
        return ROOT / "solutions" / self.name / f"{self.name}.ipynb"

    @property
    def carol_score(self) -> float:
        return sum(self.carol_expected.values())


CASES = [
    Case(
        name="01_weight_penalties",
        autograded=19, total=22, code_cells=12,
        # carol's answers: right for l2_penalty, soft_threshold and ridge; the elastic-net
        # divisor of the penalty without its 1/2; the degrees of freedom from the diagonal of
        # X^T X (right on the visible worked example, whose X is diagonal: only the hidden
        # test catches it); lasso_ista left as released.
        carol_wrong={
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
        },
        carol_left_as_released=frozenset({"lasso_ista"}),
        carol_expected={  # points per test cell: full where the function is right, else 0
            "l2_penalty_visible": 1, "l2_penalty_hidden": 2,
            "soft_threshold_visible": 1, "soft_threshold_hidden": 2,
            "prox_elastic_net_visible": 0, "prox_elastic_net_hidden": 0,
            "ridge_visible": 1, "ridge_hidden": 2,
            "ridge_effective_dof_visible": 1, "ridge_effective_dof_hidden": 0,
            "lasso_ista_visible": 0, "lasso_ista_hidden": 0,
        },
        written_answer="L1 has a kink at zero; the degrees of freedom go from p to 0.",
        shows_notebook=("def l2_penalty",),
        # her failing hidden test is reported by name and case, without code or traceback
        carol_feedback=("Hidden tests (ridge_effective_dof_hidden): 0 of 2 points. 0 of 8 cases passed",
                        "HiddenTestsFailed", "case 1 (X of shape (25, 5), lam="),
        stock_leak="ridge_effective_dof_hidden",
    ),
    Case(
        name="02_dropout",
        autograded=14, total=17, code_cells=10,
        # carol: inverted dropout whose backward pass draws a fresh mask from the rng it kept
        # (right whenever the mask is given, so only the rng test catches it); Gaussian dropout
        # right; DropPath per element instead of per sample; MC dropout left as released.
        carol_wrong={
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
        },
        carol_left_as_released=frozenset({"mc_dropout_predict"}),
        carol_expected={  # points per test cell
            "dropout_visible": 1, "dropout_hidden": 2, "dropout_rng_hidden": 0,
            "gaussian_dropout_visible": 1, "gaussian_dropout_hidden": 1, "gaussian_dropout_rng_hidden": 1,
            "drop_path_visible": 0, "drop_path_hidden": 0,
            "mc_dropout_predict_visible": 0, "mc_dropout_predict_hidden": 0,
        },
        written_answer="Inverted dropout already has the right mean; the penalty grows with each feature's energy.",
        shows_notebook=("def dropout_forward", "def _grade_drop_path"),
        # her failing rng test is reported by part, case and summary, without code or traceback
        carol_feedback=("Hidden tests (dropout_rng_hidden): 0 of 1 points.", "HiddenTestsFailed",
                        "'backward: largest |dx - dout * out / x|': wrong values"),
        stock_leak="dropout_rng_hidden",
        extra_secrets=("grading.py",),
        stock_autograde_all=True,
    ),
    Case(
        name="03_normalization",
        autograded=16, total=19, code_cells=11,
        # carol: batch norm with the momentum the wrong way round (Keras' convention: her
        # training outputs are right but her running statistics are not, so she keeps the
        # evaluation point and every backward point, whose cache holds her correct x-hat); layer
        # norm right; group norm left as released; power iteration one step short (right for
        # n_iters = 1, the visible worked example, so only the hidden test catches it).
        carol_wrong={
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
        },
        carol_left_as_released=frozenset({"groupnorm_forward"}),
        carol_expected={
            "batchnorm_forward_visible": 0, "batchnorm_forward_hidden": 0, "batchnorm_forward_eval_hidden": 1,
            "batchnorm_backward_visible": 1, "batchnorm_backward_hidden": 2,
            "layernorm_forward_visible": 1, "layernorm_forward_hidden": 2,
            "groupnorm_forward_visible": 0, "groupnorm_forward_hidden": 0,
            "power_iteration_visible": 1, "power_iteration_hidden": 0,
        },
        written_answer="Evaluation uses running averages; with two rows every normalized value is +1 or -1.",
        shows_notebook=("def batchnorm_forward", "_grade_batchnorm_backward"),
        # her failing hidden tests are reported by name, case and wrong output, without code or
        # traceback; the counts are those of the in-process evaluation of the same answers
        carol_feedback=("HiddenTestsFailed",
                        "case 9 (training, momentum=0: the running statistics stay): 'new running_mean': wrong values",
                        "(W (7, 2), u0 far from unit length): item 0: wrong values"),
        carol_failing_in_process=("batchnorm_forward_hidden", "power_iteration_hidden"),
        stock_leak="power_iteration_hidden",
        agrees_in_process=True,
    ),
]
BY_NAME = {c.name: c for c in CASES}


def each(cases=CASES):
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _hidden_lines(case: Case) -> set[str]:
    """Every non-trivial line of the source's hidden-test regions."""
    lines, inside = set(), False
    for cell in nbformat.read(case.source, as_version=4).cells:
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


def _feedback(root, case: Case, student: str, folder: str = "feedback") -> str:
    return _visible_text(root / folder / student / case.name / f"{case.name}.html")


def _answers(case: Case, student: str, released) -> dict[str, str]:
    """{grade_id: source} of every answer cell as the student submits it (``released``: the
    release notebook, whose stubs stand where an answer is left as released)."""
    source = nbformat.read(case.source, as_version=4)
    solution = {_meta(c)["grade_id"]: _without_markers(c.source) for c in source.cells if _meta(c).get("solution")}
    stubs = {_meta(c)["grade_id"]: c.source for c in nbformat.read(released, as_version=4).cells
             if _meta(c).get("solution")}
    if student == "alice":
        return solution
    if student == "bob":  # the untouched release
        return stubs
    carol = {gid: stubs[gid] if gid in case.carol_left_as_released else src for gid, src in solution.items()}
    carol.update({gid: src.strip() for gid, src in case.carol_wrong.items()})
    carol["written_answer"] = case.written_answer
    return carol


def _submit(root, case: Case, student: str, released, answers: dict[str, str]) -> None:
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    # nbgrader's submitted/ (the stock control's) and the assignment's own intake folder for its
    # reggrader batch (a batch quarantines files of other assignments)
    for folder in (root / "submitted", _intake(root, case)):
        dest = folder / student / case.name / f"{case.name}.ipynb"
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)


def _intake(root, case: Case):
    return root / "intake" / case.name


def _load_config(root):
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """One course directory: every assignment generated, submitted and graded (a batch each)."""
    from nbgrader.apps import NbGraderAPI
    from reggrader.batch import grade
    from reggrader.course import load_course
    from reggrader.feedback import generate_feedback
    from reggrader.sandbox import Limits

    root = tmp_path_factory.mktemp("course")
    for case in CASES:
        shutil.copytree(ROOT / "solutions" / case.name, root / "solutions" / case.name, ignore=release.IGNORE)
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    release.ensure_tools_on_path()  # nbgrader runs `alembic` to create the gradebook
    config = _load_config(root)
    api = NbGraderAPI(config=config)
    grader_course = load_course(root, db_url=config.CourseDirectory.db_url)

    released, summaries = {}, {}
    for case in CASES:
        result = api.generate_assignment(case.name)
        assert result["success"], result.get("error")
        released[case.name] = root / "exercises" / case.name / f"{case.name}.ipynb"
        for student in STUDENTS:
            _submit(root, case, student, released[case.name], _answers(case, student, released[case.name]))
    for case in CASES:
        summary = grade(grader_course, case.name, _intake(root, case), workers=2,
                        limits=Limits(cell_timeout=120, notebook_timeout=600))  # the whole batch
        assert summary["graded"] == 3 and not summary["quarantined"] and not summary["grader_errors"], summary
        generate_feedback(grader_course, case.name)  # nbgrader's generate_feedback, then a leak check
        summaries[case.name] = summary
    return SimpleNamespace(root=root, api=api, config=config, db_url=config.CourseDirectory.db_url,
                           summaries=summaries, released=released)


def _grades(db_url, case: Case, student):
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = gb.find_submission(case.name, student)
        notebook = gb.find_submission_notebook(case.name, case.name, student)
        cells = {g.name: (g.score, g.max_score, g.needs_manual_grade, g.cell_type) for g in notebook.grades}
        return submission.score, submission.max_score, cells


def _autograded_points(case: Case) -> float:
    return sum(_meta(c)["points"] for c in nbformat.read(case.source, as_version=4).cells
               if _meta(c).get("grade") and c.cell_type == "code")


def _in_process_verdicts(course, case: Case, student: str) -> dict:
    """{grade_id: PartScore} of the same answers judged in this process (``reggrader.local``)."""
    from reggrader.course import load_course
    from reggrader.local import evaluate

    answers = {gid: src for gid, src in _answers(case, student, course.released[case.name]).items()
               if gid != "written_answer"}
    return evaluate(load_course(ROOT), case.name, answers)


@each()
def test_the_release_is_the_committed_one_without_grading_py(course, case):
    released = course.released[case.name]
    assert sorted(p.name for p in released.parent.iterdir()) == [f"{case.name}.ipynb"]
    assert released.read_bytes() == (ROOT / "exercises" / case.name / f"{case.name}.ipynb").read_bytes()


@each()
def test_the_solution_gets_full_marks_on_every_autograded_cell(course, case):
    score, max_score, cells = _grades(course.db_url, case, "alice")
    code = {k: v for k, v in cells.items() if v[3] == "code"}
    assert len(code) == case.code_cells and all(s == m for s, m, _, _ in code.values()), code
    assert score == _autograded_points(case) == case.autograded
    assert max_score == case.total, "the autograded points and 3 for the written answer"
    assert cells["written_answer"][2], "the written answer waits for a human grader"


@each()
def test_the_untouched_release_gets_zero(course, case):
    score, max_score, cells = _grades(course.db_url, case, "bob")
    assert score == 0 and max_score == case.total
    assert all(s == 0 for s, _, _, _ in cells.values()), cells
    assert not cells["written_answer"][2], "an unchanged answer cell is graded 0 automatically"


@each()
def test_a_partly_wrong_submission_gets_partial_credit(course, case):
    score, _, cells = _grades(course.db_url, case, "carol")
    got = {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"}
    assert got == case.carol_expected
    assert 0 < score < _autograded_points(case) == case.autograded
    assert score == case.carol_score


@each()
def test_feedback_hides_hidden_tests_and_their_failures(course, case):
    hidden = _hidden_lines(case)
    assert len(hidden) == case.hidden_cells, hidden  # one record-and-compare line per hidden test cell
    for student in STUDENTS:
        text = _feedback(course.root, case, student)
        assert all(s in text for s in case.shows_notebook), "the feedback shows the notebook"
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden-test lines in the feedback: {leaked[:3]}"
        for secret in SECRETS + case.extra_secrets:
            assert secret not in text, f"{student}: {secret!r} in the feedback"
    carol = _feedback(course.root, case, "carol")
    for expected in case.carol_feedback:
        assert expected in carol, expected
    if case.carol_failing_in_process:
        verdicts = _in_process_verdicts(course, case, "carol")
        for gid in case.carol_failing_in_process:
            v = verdicts[gid]
            assert v.score == 0 and f"Hidden tests ({gid}): 0 of {v.points:g} points. {v.message}" in carol
    # the only tracebacks on a page are those of visible asserts (alice passes them all)
    assert "Traceback (most recent call last)" not in _feedback(course.root, case, "alice")
    assert f"{case.name} (Score: {case.carol_score:.1f} / {case.total:.1f})" in carol, "the page states her score"


@each()
def test_stock_feedback_would_leak(course, case):
    """The control: stock autograde (check() in the student's kernel) + stock feedback preprocessors
    show the hidden tests; where every student is autograded, the points agree with reggrader's."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.preprocessors import GetGrades

    config = _load_config(course.root)
    # a gradebook and folders of its own: the grades above stay as reggrader wrote them
    stock_db = f"sqlite:///{course.root / f'stock_{case.name}.db'}"
    config.CourseDirectory.db_url = stock_db
    config.CourseDirectory.autograded_directory = "autograded_stock"
    config.CourseDirectory.feedback_directory = "feedback_stock"
    config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor]
    api = NbGraderAPI(config=config)
    who = "*" if case.stock_autograde_all else "carol"
    for step in (lambda: api.generate_assignment(case.name), lambda: api.autograde(case.name, who),
                 lambda: api.generate_feedback(case.name, "carol")):
        result = step()
        assert result["success"], result.get("error")
    if case.stock_autograde_all:
        for student in STUDENTS:
            stock = {k: v[0] for k, v in _grades(stock_db, case, student)[2].items() if v[3] == "code"}
            ours = {k: v[0] for k, v in _grades(course.db_url, case, student)[2].items() if v[3] == "code"}
            assert stock == ours, (student, stock, ours)
    text = _feedback(course.root, case, "carol", folder="feedback_stock")
    assert "BEGIN HIDDEN TESTS" in text and any(line in text for line in _hidden_lines(case))
    assert "Traceback" in text and f'check("{case.stock_leak}")' in text


@each()
def test_grades_export_to_csv(course, case, tmp_path):
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    path = tmp_path / "grades.csv"
    with Gradebook(course.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    every = list(csv.DictReader(path.open()))
    # one row per student and assignment of the shared gradebook
    assert sorted((r["student_id"], r["assignment"]) for r in every) == sorted(
        itertools.product(STUDENTS, BY_NAME))
    rows = {row["student_id"]: row for row in every if row["assignment"] == case.name}
    assert sorted(rows) == sorted(STUDENTS)
    for student in STUDENTS:
        score, max_score, _ = _grades(course.db_url, case, student)
        row = rows[student]
        assert row["assignment"] == case.name
        assert float(row["raw_score"]) == float(row["score"]) == score
        assert float(row["max_score"]) == max_score == case.total
    assert [float(rows[s]["score"]) for s in STUDENTS] == [case.autograded, 0.0, case.carol_score]


@each([c for c in CASES if c.agrees_in_process])
def test_the_sandboxed_batch_agrees_with_the_in_process_evaluation(course, case):
    """Per cell, the points reggrader wrote equal those of ``reggrader.local.evaluate``."""
    for student in STUDENTS:
        _, _, cells = _grades(course.db_url, case, student)
        got = {name: s for name, (s, _, _, kind) in cells.items() if kind == "code"}
        assert got == {gid: v.score for gid, v in _in_process_verdicts(course, case, student).items()}, student
