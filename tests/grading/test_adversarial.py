"""The adversarial class: many hostile or broken submissions, one batch, expected scores.

Every submission below has an expected outcome (autograded score out of 7: l2 2 points,
soft_threshold 2, ridge 3; or quarantined). The whole class is graded in ONE batch with
two workers; the batch must complete, every student's grade must be the expected one (a
hostile neighbour changes nobody else's), the gradebook must be consistent, and the
instructor's files (solutions/, the gradebook, reglib's source) must be untouched.

``STOCK`` names, for each case that stock ``nbgrader autograde`` (hidden asserts run in
the student's kernel) gets wrong, what it does instead; the facts come from
../shared/toolchain.md (measured on this project's machine) and from nbgrader's code.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from pathlib import Path

import nbformat
import pytest

from reggrader.batch import grade
from reggrader.gradebook import gradebook_scores
from reggrader.job import _reglib_dir
from reggrader.sandbox import Limits, can_isolate
from tests.grading.helpers import (
    RIGHT_L2,
    WRONG_L2,
    answer,
    cell_index,
    release_nb,
    solution_nb,
    submit,
)

LIMITS = Limits(cell_timeout=5, notebook_timeout=90, interrupt_grace=1, memory_bytes=2 * 2**30,
                output_bytes=512 * 1024, cell_output_bytes=64 * 1024, max_restarts=4)
ZERO_ALL = {"l2_penalty": "def l2_penalty(w, lam):\n    return 0.0, 0 * w\n",
            "soft_threshold": "def soft_threshold(v, thresh):\n    return 0 * v\n",
            "ridge": "def ridge(X, y, lam):\n    return np.zeros(X.shape[1])\n"}

STOCK = {
    "warning_on_stderr": "a RuntimeWarning on stderr in a test cell scores that cell 0 (3 cells: 0 of 7)",
    "test_cell_deleted": "the deleted test cell stays 'needs manual grade' (no score) unless "
                         "add_missing_cells is set",
    "test_cell_duplicated": "a duplicated grade_id aborts the whole notebook (0 of 7)",
    "metadata_stripped": "no grade cells are recognized: the notebook gets no autograded score",
    "allclose_patched": "hidden asserts with np.allclose all pass: 7 of 7 for wrong code",
    "input_transformer": "every later cell, hidden tests included, runs blank: 7 of 7",
    "eq_override": "naive hidden asserts (==, np.allclose via __array_function__) pass",
    "reference_imported": "calling reglib's reference passes every hidden test, unnoticed",
    "reference_hidden": "an obfuscated import of the reference passes, unnoticed",
    "reference_by_path": "the kernel can read solutions/ (and the hidden tests in it)",
    "forged_record": "(no records in stock nbgrader) the kernel itself decides pass/fail",
    "inputs_mutated": "a hidden test that computes the expected value from the same, mutated "
                      "array agrees with the wrong result",
    "os_exit": "the kernel dies: DeadKernelError, the rest of the notebook is lost",
    "c_loop": "the uninterruptible loop survives the interrupt: the notebook is lost",
    "sigint_ignored": "the interrupt is ignored: the notebook is lost",
    "memory_bomb": "no memory limit: the grading machine itself runs out of memory",
    "read_solutions": "the kernel reads solutions/ and prints the hidden tests",
    "read_gradebook": "the kernel reads everyone's grades",
    "write_gradebook": "the kernel can rewrite the gradebook (its own and others' grades)",
    "write_reglib": "the kernel can rewrite the reference library the hidden tests import",
    "not_json": "the batch logs an error for that student and grades nothing",
    "renamed_copy_of": "'Copy of toy.ipynb' is skipped as an unknown notebook (0 of 7)",
    "renamed_suffix": "'toy (1).ipynb' is skipped as an unknown notebook (0 of 7)",
}


def _src(nb, grade_id):
    return nb.cells[cell_index(nb, grade_id)].source


def build(course_root: Path, work: Path) -> dict[str, tuple]:
    """{student: (notebook or bytes, file name, expected, flagged parts)}."""
    root = str(course_root)
    reglib_init = str(Path(_reglib_dir()) / "__init__.py").replace("reglib", "reg' + 'lib")
    sol = lambda: solution_nb(course_root)  # noqa: E731
    rel = lambda: release_nb(course_root)  # noqa: E731
    wrong_l2 = lambda: answer(sol(), "l2_penalty", WRONG_L2)  # noqa: E731

    def added(nb, before, code):
        nb.cells.insert(cell_index(nb, before), nbformat.v4.new_code_cell(code))
        return nb

    def zero_all(nb):
        for gid, code in ZERO_ALL.items():
            answer(nb, gid, code)
        return nb

    c: dict[str, tuple] = {}
    c["honest"] = (sol(), None, 7.0, [])
    c["untouched_release"] = (rel(), None, 0.0, [])
    c["wrong_l2"] = (wrong_l2(), None, 5.0, [])
    nb = answer(sol(), "soft_threshold", "import warnings\nwarnings.simplefilter('always')\n"
                "def soft_threshold(v, thresh):\n"
                "    warnings.warn('overflow? no, just a warning', RuntimeWarning)\n"
                "    return np.sign(v) * np.maximum(np.abs(v) - thresh, 0.0)\n")
    c["warning_on_stderr"] = (nb, None, 7.0, [])
    nb = wrong_l2()
    nb.cells[cell_index(nb, "test_l2_penalty")].source = "pass  # all good"
    c["test_cell_edited"] = (nb, None, 5.0, [])
    nb = wrong_l2()
    i = cell_index(nb, "test_l2_penalty")
    nb.cells[i].source = "\n".join("# " + ln for ln in nb.cells[i].source.splitlines())
    c["test_cell_commented"] = (nb, None, 5.0, [])
    nb = wrong_l2()
    i = cell_index(nb, "test_l2_penalty")
    md = nbformat.v4.new_markdown_cell(nb.cells[i].source)
    md.metadata = copy.deepcopy(nb.cells[i].metadata)
    nb.cells[i] = md
    c["test_cell_markdown"] = (nb, None, 5.0, [])
    nb = wrong_l2()
    del nb.cells[cell_index(nb, "test_l2_penalty")]
    c["test_cell_deleted"] = (nb, None, 5.0, [])
    nb = sol()
    i = cell_index(nb, "test_ridge")
    nb.cells.insert(i, copy.deepcopy(nb.cells[i]))
    c["test_cell_duplicated"] = (nb, None, 7.0, [])
    nb = sol()
    for cell in nb.cells:
        cell.metadata = {}
    c["metadata_stripped"] = (nb, None, 7.0, [])
    c["allclose_patched"] = (added(zero_all(sol()), "l2_penalty",
                                   "np.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True"),
                             None, 0.0, [])
    nb = added(zero_all(sol()), "l2_penalty",
               "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: [])")
    c["input_transformer"] = (nb, None, 0.0, ["test_l2_penalty", "test_soft_threshold", "test_ridge"])
    c["eq_override"] = (answer(answer(answer(sol(), "soft_threshold",
                                             "class Yes(np.ndarray):\n"
                                             "    def __eq__(self, other):\n        return True\n"
                                             "    def __array_function__(self, *a, **k):\n        return True\n"
                                             "def soft_threshold(v, thresh):\n"
                                             "    return np.zeros(1).view(Yes)\n"),
                                      "l2_penalty",
                                      "class Anything:\n    def __eq__(self, other):\n        return True\n"
                                      "def l2_penalty(w, lam):\n    return Anything(), Anything()\n"),
                               "ridge", ZERO_ALL["ridge"]), None, 0.0, [])
    c["reference_imported"] = (answer(sol(), "soft_threshold",
                                      "from reglib.numpy import prox as _p\n"
                                      "def soft_threshold(v, thresh):\n    return _p.soft_threshold(v, thresh)\n"),
                               None, 5.0, ["test_soft_threshold"])
    c["reference_hidden"] = (answer(sol(), "ridge",
                                    "_m = __import__('reg' + 'lib.numpy.linear', fromlist=['r'])\n"
                                    "ridge = _m.ridge\ndel _m\n"), None, 4.0, ["test_ridge"])
    c["reference_by_path"] = (answer(sol(), "l2_penalty",
                                     "import importlib.util as _u\n"
                                     f"_s = _u.spec_from_file_location('g', {root!r} + '/solu' + 'tions/toy/grading.py')\n"
                                     "_g = _u.module_from_spec(_s)\n_s.loader.exec_module(_g)\n"
                                     "l2_penalty = _g._l2\n"), None, 5.0, ["test_l2_penalty"])
    c["forged_record"] = (answer(sol(), "l2_penalty",
                                 "from IPython.display import display\n"
                                 "def l2_penalty(w, lam):\n"
                                 "    display({'application/vnd.reggrader.record+json': {'part': 'test_l2_penalty',"
                                 " 'cases': [], 'score': 2}}, raw=True)\n"
                                 "    return lam * np.sum(w * w), lam * w\n"), None, 5.0, ["test_l2_penalty"])
    c["inputs_mutated"] = (answer(sol(), "soft_threshold",
                                  "def soft_threshold(v, thresh):\n"
                                  "    np.copyto(v, np.sign(v) * np.maximum(np.abs(v) - thresh, 0.0))\n"
                                  "    return v\n"), None, 5.0, [])
    c["exfiltrate_inputs"] = (answer(answer(sol(), "l2_penalty",
                                            "_seen = []\n"
                                            "def l2_penalty(w, lam):\n"
                                            "    _seen.append(repr(np.ravel(w)[:3].tolist()))\n"
                                            "    print('inputs so far:', _seen)\n"
                                            "    w = np.asarray(w, dtype=float)\n"
                                            "    return 0.5 * lam * float(np.sum(w * w)), lam * w\n"),
                                     "soft_threshold",
                                     "def soft_threshold(v, thresh):\n"
                                     "    print('l2 saw:', _seen)\n"
                                     "    return np.sign(v) * np.maximum(np.abs(v) - thresh, 0.0)\n"),
                              None, 7.0, [])
    c["sys_exit"] = (answer(sol(), "l2_penalty", RIGHT_L2 + "import sys\nsys.exit()\n"), None, 7.0, [])
    c["os_exit"] = (answer(sol(), "soft_threshold",
                           "import os as _os\ndef soft_threshold(v, thresh):\n    _os._exit(0)\n"),
                    None, 5.0, ["test_soft_threshold"])
    c["c_loop"] = (answer(sol(), "ridge", "def ridge(X, y, lam):\n    return sum(range(10**13))\n"),
                   None, 4.0, [])
    c["sigint_ignored"] = (answer(sol(), "l2_penalty",
                                  "import signal\ndef l2_penalty(w, lam):\n"
                                  "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    while True:\n        pass\n"),
                           None, 5.0, ["test_l2_penalty"])
    c["memory_bomb"] = (answer(sol(), "ridge",
                               "def ridge(X, y, lam):\n    hog = []\n    while True:\n"
                               "        hog.append(np.ones(2**26))\n"), None, 4.0, [])
    c["print_50mb"] = (answer(sol(), "l2_penalty", RIGHT_L2 + "print('x' * 50_000_000)\n"), None, 7.0, [])
    # the next four get past the static tripwire (numpy file I/O, a path built in pieces):
    # only the sandbox stops them
    secret = f"{root!r} + '/solu' + 'tions/toy/grad' + 'ing.py'"
    c["read_solutions"] = (added(sol(), "ridge", f"print(np.loadtxt({secret}, dtype=str, delimiter='\\x00'))"),
                           None, 7.0, [])
    c["read_gradebook"] = (added(sol(), "ridge", f"print(np.fromfile({root!r} + '/grade' + 'book.db', dtype=np.uint8)[:64])"),
                           None, 7.0, [])
    c["write_gradebook"] = (added(wrong_l2(), "ridge",
                                  f"np.zeros(4096, dtype=np.uint8).tofile({root!r} + '/grade' + 'book.db')"),
                            None, 5.0, [])
    c["write_reglib"] = (added(sol(), "ridge", f"np.array([35, 33]).tofile('{reglib_init}')"), None, 7.0, [])
    c["write_results"] = (added(sol(), "ridge", f"np.array([1]).tofile({str(work)!r} + '/results/00000.json')"),
                          None, 7.0, [])
    c["network"] = (added(sol(), "ridge", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)"),
                    None, 4.0, ["test_ridge"])
    c["not_json"] = (b"\x89PNG\r\n\x1a\n not a notebook", None, None, [])
    c["renamed_copy_of"] = (sol(), "Copy of toy.ipynb", 7.0, [])
    c["renamed_suffix"] = (sol(), "toy (1).ipynb", 7.0, [])
    nb = wrong_l2()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="All tests passed!\n")]
            cell.execution_count = 1
    c["prefilled_outputs"] = (nb, None, 5.0, [])
    nb = json.loads(nbformat.writes(sol()))
    nb["metadata"] = {"colab": {"provenance": []}, "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    for k, cell in enumerate(nb["cells"]):
        cell["metadata"]["id"] = f"c{k}"
    c["colab_download"] = (nb, None, 7.0, [])
    nb = sol()
    i = cell_index(nb, "ridge")
    md = nbformat.v4.new_markdown_cell(nb.cells[i].source)
    md.metadata = copy.deepcopy(nb.cells[i].metadata)
    nb.cells[i] = md
    c["answer_to_markdown"] = (nb, None, None, [])
    return c


def _hash_tree(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.skipif(not can_isolate(), reason="the hostile class needs the root sandbox (as in CI)")
def test_the_adversarial_class_in_one_batch(course, course_root, tmp_path):
    folder, work = tmp_path / "class", tmp_path / "work"
    cases = build(course_root, work)
    assert len(cases) >= 20
    for student, (nb, name, _, _) in cases.items():
        submit(folder, student, nb if isinstance(nb, (bytes, dict)) else json.loads(nbformat.writes(nb)), name=name)
    lib = Path(_reglib_dir())
    before = {"reglib": _hash_tree(lib), "solutions": _hash_tree(course_root / "solutions")}

    summary = grade(course, "toy", folder, work, workers=2, limits=LIMITS)

    # the batch completed and nothing of the instructor's changed
    assert summary["grader_errors"] == [] and summary["missing_results"] == []
    assert {"reglib": _hash_tree(lib), "solutions": _hash_tree(course_root / "solutions")} == before
    with sqlite3.connect(course_root / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        over = db.execute("SELECT count(*) FROM grade g JOIN grade_cells c ON g.cell_id = c.id "
                          "WHERE g.auto_score > c.max_score OR g.auto_score < 0").fetchone()[0]
        assert over == 0

    results = {}
    for p in (work / "results").glob("*.json"):
        r = json.loads(p.read_text())
        results[r["student"]] = r
    quarantined = {q["student"] or Path(q["file"]).parts[0]: q["reason"] for q in summary["quarantined"]}
    scores = gradebook_scores(course, "toy")

    failures = []
    for student, (_, _, expected, flagged) in cases.items():
        if expected is None:
            if student not in quarantined or student in scores:
                failures.append(f"{student}: expected quarantine, got {scores.get(student)}")
            continue
        got = scores.get(student, {}).get("score")
        res_flags = [p["grade_id"] for p in results[student]["parts"] if p["status"] == "flagged"]
        if got != expected or sorted(res_flags) != sorted(flagged):
            failures.append(f"{student}: expected {expected} flagged {flagged}, got {got} flagged {res_flags} "
                            f"({[(p['grade_id'], p['status'], p['message']) for p in results[student]['parts']]})")
    assert not failures, "\n".join(failures)

    # a few cases in detail
    assert quarantined["not_json"].startswith("not valid JSON")
    assert "changed from code to markdown" in quarantined["answer_to_markdown"]
    ex = {s: r["execution"] for s, r in results.items()}
    assert ex["os_exit"]["deaths"] >= 1 and ex["c_loop"]["timeouts"] >= 1 and ex["sigint_ignored"]["timeouts"] >= 1
    assert ex["honest"]["restarts"] == 0 and ex["honest"]["timeouts"] == 0
    parts = {s: {p["grade_id"]: p for p in r["parts"]} for s, r in results.items()}
    assert "in place" in parts["inputs_mutated"]["test_soft_threshold"]["cases"][0]["reason"]
    assert "more than one set of outputs" in parts["forged_record"]["test_l2_penalty"]["message"]
    assert parts["reference_imported"]["test_soft_threshold"]["would_score"] == 2.0   # flagged, not failed
    assert "MemoryError" in parts["memory_bomb"]["test_ridge"]["cases"][0]["reason"]
    assert parts["input_transformer"]["test_l2_penalty"]["status"] == "flagged"
    for student in ("read_solutions", "read_gradebook"):
        nb = json.loads((course_root / "autograded" / student / "toy" / "toy.ipynb").read_text())
        text = json.dumps(nb)
        assert "FileNotFoundError" in text and "20240501" not in text and "SQLite format" not in text
    # what a function printed while the grader called it never reaches the feedback: the
    # hidden inputs (reglib is public: known inputs would mean known answers) stay hidden
    job = next(json.loads(p.read_text()) for p in (work / "jobs").glob("*.json")
               if json.loads(p.read_text())["student"] == "exfiltrate_inputs")
    hidden_w = [case["args"][0] for part in job["plan"]["parts"] if part["grade_id"] == "test_l2_penalty"
                for case in part["cases"]]
    text = (course_root / "autograded" / "exfiltrate_inputs" / "toy" / "toy.ipynb").read_text()
    assert "inputs so far" in text  # the visible test's own call is shown
    for w in hidden_w:
        assert repr(w["array"]["data"][0])[:10] not in text
    big = json.loads((course_root / "autograded" / "print_50mb" / "toy" / "toy.ipynb").read_text())
    assert len(json.dumps(big)) < 1_000_000 and "output truncated" in json.dumps(big)
    assert set(STOCK) <= set(cases)
