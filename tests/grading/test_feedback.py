"""Feedback, export and the batch report.

Stock nbgrader gets two of these wrong (see ../shared/toolchain.md): its feedback HTML
contains the hidden tests' source and the traceback of a failing hidden test, and a
correct answer that prints a RuntimeWarning on stderr scores 0. Here the feedback is
nbgrader's own ``generate_feedback`` run on the notebooks the grader wrote, and both are
asserted.
"""

from __future__ import annotations

import csv
import json

from reggrader.batch import grade
from reggrader.feedback import check_feedback, hidden_lines
from reggrader.sandbox import Limits
from tests.grading.helpers import answer, release_nb, solution_nb, submit

LIMITS = Limits(cell_timeout=6, notebook_timeout=120, interrupt_grace=1)
# passes the visible test (X = I) but not the hidden cases: only a hidden test fails
HIDDEN_ONLY_WRONG = ("def ridge(X, y, lam):\n"
                     "    return np.linalg.solve(X.T @ X + lam * (X.T @ X), X.T @ y)\n")
WARNS = ("import warnings\n"
         "def soft_threshold(v, thresh):\n"
         "    warnings.warn('soft_threshold is deprecated', RuntimeWarning)\n"
         "    return np.sign(v) * np.maximum(np.abs(v) - thresh, 0.0)\n")
SLOW = "def ridge(X, y, lam):\n    import time\n    time.sleep(60)\n"


def test_feedback_export_and_report(course, course_root, tmp_path):
    folder = tmp_path / "in"
    submit(folder, "ann", solution_nb(course_root))
    submit(folder, "ben", answer(solution_nb(course_root), "ridge", HIDDEN_ONLY_WRONG))
    nb = answer(solution_nb(course_root), "soft_threshold", WARNS)
    nb.cells.insert(2, nb.cells[1].copy())
    nb.cells[2].source = "import warnings\nwarnings.simplefilter('always')"
    submit(folder, "cat", nb)
    submit(folder, "dan", answer(solution_nb(course_root), "ridge", SLOW))
    submit(folder, "eve", release_nb(course_root))
    submit(folder, "fay", b"{not json")
    summary = grade(course, "toy", folder, tmp_path / "work", workers=2, limits=LIMITS, feedback=True)

    # scores: the warning costs nothing; a timeout costs its part only
    rows = {r["student"]: r for r in csv.DictReader(open(course_root / "autograded" / "reggrader-toy" / "grades_detail.csv"))}
    assert {s: rows[s]["score"] for s in ("ann", "ben", "cat", "dan", "eve")} == \
        {"ann": "7.0", "ben": "4.0", "cat": "7.0", "dan": "4.0", "eve": "0.0"}
    # the visible test and the hidden cases both call the slow function: two cell timeouts
    assert rows["dan"]["test_ridge"] == "0.0" and rows["dan"]["timeouts"] == "2" and not rows["dan"]["flagged"]
    quarantined = [r for r in csv.DictReader(open(course_root / "autograded" / "reggrader-toy" / "grades_detail.csv"))
                   if r["status"] == "quarantined"]
    assert [(r["student"], r["notes"][:18]) for r in quarantined] == [("fay", "not valid JSON (JS")]

    # nbgrader's own CSV export, from the gradebook
    nbg = {r["student_id"]: r for r in csv.DictReader(open(course_root / "autograded" / "reggrader-toy" / "grades.csv"))}
    assert {s: float(nbg[s]["raw_score"]) for s in ("ann", "ben", "cat", "dan", "eve")} == \
        {"ann": 7.0, "ben": 4.0, "cat": 7.0, "dan": 4.0, "eve": 0.0}
    assert float(nbg["ann"]["max_score"]) == 8.0  # 7 autograded + 1 written answer

    # the warning is shown to the student (stderr kept) and did not count as a failure
    cat_nb = json.loads((course_root / "autograded" / "cat" / "toy" / "toy.ipynb").read_text())
    texts = ["".join(o.get("text", "")) for c in cat_nb["cells"] for o in c.get("outputs", [])]
    assert any("RuntimeWarning" in t for t in texts)

    # feedback: no hidden source, no record cell, no traceback of a hidden test
    pages = {p.parent.parent.name: p.read_text() for p in (course_root / "feedback").glob("*/toy/toy.html")}
    assert sorted(pages) == ["ann", "ben", "cat", "dan", "eve"]
    secret = hidden_lines(course, "toy")
    assert secret and all(line not in page for line in secret for page in pages.values())
    assert check_feedback(course, "toy", list((course_root / "feedback").glob("*/toy/toy.html"))) == []
    ben = pages["ben"]
    assert "HiddenTestsFailed" in ben and "wrong values" in ben
    assert "Traceback (most recent call last)" not in ben and "Cell In[" not in ben
    assert "case 1 (X of shape (30, 4), y of shape (30,), lam=0.7)" in ben
    assert "timed out" in pages["dan"]

    # the report
    assert summary["graded"] == 5 and [q["file"] for q in summary["quarantined"]] == ["fay/toy/toy.ipynb"]
    assert summary["timeouts_or_deaths"] == [{"student": "dan", "notebook": "toy", "timeouts": 2, "deaths": 0}]
    assert summary["scores"]["max"] == 7.0 and summary["parts_passed"]["test_ridge"] == "2/5"
    md = (course_root / "autograded" / "reggrader-toy" / "report.md").read_text()
    assert "## Quarantined (not graded)" in md and "not valid JSON" in md and "dan/toy: 2 timeout(s)" in md


def test_the_leak_check_catches_hidden_source(course, tmp_path):
    page = tmp_path / "page.html"
    line = sorted(hidden_lines(course, "toy"))[0]
    page.write_text(f"<pre>{line}</pre>")
    assert check_feedback(course, "toy", [page])
    page.write_text("<pre>all fine</pre>")
    assert check_feedback(course, "toy", [page]) == []
