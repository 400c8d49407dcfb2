"""Intake: mapping files to students, normalizing names, checking, repairing, quarantining."""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile

import nbformat
import pytest

from reggrader.intake import collect, normalize_candidates, student_id
from reggrader.plan import Problem, build_plan, read_notebook
from reggrader.spec import load_spec, plan_part
from tests.grading.helpers import ASSIGNMENT, answer, cell_index, release_nb, solution_nb, submit


def _bytes(nb) -> bytes:
    return json.dumps(nb if isinstance(nb, dict) else json.loads(nbformat.writes(nb))).encode()


def plan_for(course_root, nb):
    spec = load_spec(course_root / "solutions" / ASSIGNMENT / "grading.py")
    rel = release_nb(course_root)
    parts = {c.metadata.nbgrader["grade_id"]: plan_part(spec.part(c.metadata.nbgrader["grade_id"]), 0)
             for c in rel.cells if c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata.nbgrader.get("solution")}
    parsed, repairs = read_notebook(_bytes(nb), 10**7)
    plan = build_plan(rel, parsed, parts, spec.allowed_imports)
    return plan, repairs


def kinds(plan):
    return [(i["kind"], i.get("grade_id")) for i in plan.items]


@pytest.mark.parametrize("stem", ["toy", "Copy of toy", "toy (1)", "toy-2", "Copy of Copy of toy (3)",
                                  "TOY", "copia de toy", "toy - Colab"])
def test_browser_and_lms_renames_normalize_to_the_notebook(stem):
    assert any(c.casefold() == "toy" for c in normalize_candidates(stem))


def test_student_ids_are_made_safe():
    assert student_id("Ada Lovelace") == "Ada_Lovelace"
    assert student_id("../../etc") == "etc"
    assert student_id("a@b.edu") == "a@b.edu"


def test_an_lms_zip_maps_every_layout_and_quarantines_the_unknown(tmp_path, course_root):
    good = _bytes(solution_nb(course_root))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("alice_123_456_toy.ipynb", good)                                  # Canvas
        zf.writestr("bob_LATE_124_457_Copy of toy.ipynb", good)                       # Canvas, late, renamed
        zf.writestr("Carol Smith_789_assignsubmission_file_/toy (1).ipynb", good)     # Moodle
        zf.writestr("toy_dave_attempt_2024-01-31-23-59-00_toy.ipynb", good)           # Blackboard
        zf.writestr("erin_toy.ipynb", good)                                           # <student>_<notebook>
        zf.writestr("frank.ipynb", good)                                              # <student>.ipynb
        zf.writestr("toy.ipynb", good)                                                # nobody's
        zf.writestr("gina/notes.txt", "not a notebook")
        zf.writestr("gina/toy.ipynb.txt", good)                                       # browser suffix
        zf.writestr("__MACOSX/._toy.ipynb", b"\x00\x05")
        zf.writestr("../evil.ipynb", good)                                            # zip slip
    path = tmp_path / "class.zip"
    path.write_bytes(buf.getvalue())
    found, quarantined, notes = collect(path, ASSIGNMENT, [ASSIGNMENT], workdir=tmp_path)
    assert sorted(f.student for f in found) == ["Carol_Smith", "alice", "bob", "dave", "erin", "frank", "gina"]
    assert all(f.notebook == ASSIGNMENT for f in found)
    assert [q["file"] for q in quarantined] == ["toy.ipynb"]
    assert "cannot tell whose file" in quarantined[0]["reason"]
    assert any("unsafe zip member" in n for n in notes)
    assert not (tmp_path / "evil.ipynb").exists()


def test_nbgrader_layout_newest_file_wins_and_timestamps_are_read(tmp_path, course_root):
    tmp_path = tmp_path / "in"
    good = _bytes(solution_nb(course_root))
    old = submit(tmp_path, "alice", good)
    new = submit(tmp_path, "alice", good, name="toy (1).ipynb")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    (tmp_path / "bob" / ASSIGNMENT).mkdir(parents=True)
    submit(tmp_path, "bob", good, name="scratch.ipynb")
    (tmp_path / "bob" / ASSIGNMENT / "timestamp.txt").write_text("2024-02-01 10:00:00.000000 UTC")
    found, quarantined, _ = collect(tmp_path, ASSIGNMENT, [ASSIGNMENT])
    by = {f.student: f for f in found}
    assert by["alice"].path == new and any("ignored" in n for n in by["alice"].notes)
    # a one-notebook assignment takes a renamed file and notes it
    assert by["bob"].path.name == "scratch.ipynb" and "taken as toy.ipynb" in by["bob"].notes[0]
    assert by["bob"].timestamp.year == 2024 and not quarantined


@pytest.mark.parametrize("data, reason", [
    (b"this is not json", "not valid JSON"),
    (b"[1, 2, 3]", "not a Jupyter notebook"),
    (b'{"cells": [{"cell_type": "python"}]}', "not a valid notebook cell"),
    (b'{"cells": []}' + b" " * 2000, "over the 1000-byte cap"),
])
def test_unreadable_files_are_quarantined_with_the_reason(data, reason):
    with pytest.raises(Problem, match=reason):
        read_notebook(data, 1000)


def test_a_colab_download_with_outputs_plans_like_the_original(course_root):
    base, _ = plan_for(course_root, solution_nb(course_root))
    colab = json.loads(nbformat.writes(solution_nb(course_root)))
    colab["metadata"] = {"colab": {"provenance": [], "name": "toy.ipynb"},
                         "kernelspec": {"name": "python3", "display_name": "Python 3"},
                         "language_info": {"name": "python"}, "accelerator": "GPU"}
    for i, c in enumerate(colab["cells"]):
        c["id"] = f"colab{i}"
        c["metadata"]["id"] = f"colab{i}"
        if c["cell_type"] == "code":
            c["metadata"]["outputId"] = "abc"
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "all tests passed!\n"}]
            c["execution_count"] = i
    plan, repairs = plan_for(course_root, colab)
    assert kinds(plan) == kinds(base) and [i["code"] for i in plan.items] == [i["code"] for i in base.items]
    assert any("ignored the outputs" in r for r in repairs)


def test_stripped_metadata_deleted_duplicated_and_edited_test_cells_are_repaired(course_root):
    base, _ = plan_for(course_root, solution_nb(course_root))
    nb = solution_nb(course_root)
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)                                   # an editor dropped it all
    plan, _ = plan_for(course_root, nb)
    assert kinds(plan) == kinds(base)
    assert [i["code"] for i in plan.items] == [i["code"] for i in base.items]
    assert sum("restored the nbgrader metadata" in r for r in plan.repairs) >= 6

    nb = solution_nb(course_root)
    i = cell_index(nb, "test_soft_threshold")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))                     # duplicated test cell
    nb.cells[cell_index(nb, "test_ridge")].source = "# " + nb.cells[cell_index(nb, "test_ridge")].source.replace("\n", "\n# ")
    md = nbformat.v4.new_markdown_cell(nb.cells[cell_index(nb, "test_l2_penalty")].source)
    md.metadata = copy.deepcopy(nb.cells[cell_index(nb, "test_l2_penalty")].metadata)
    nb.cells[cell_index(nb, "test_l2_penalty")] = md                        # test cell -> markdown
    plan, _ = plan_for(course_root, nb)
    assert kinds(plan) == kinds(base)
    text = " | ".join(plan.repairs)
    assert "dropped a duplicate of test cell 'test_soft_threshold'" in text
    assert "restored test cell 'test_ridge' (it was edited)" in text
    assert "restored test cell 'test_l2_penalty' (it was turned into markdown)" in text

    nb = solution_nb(course_root)
    del nb.cells[cell_index(nb, "test_ridge")]                              # deleted test cell
    plan, _ = plan_for(course_root, nb)
    assert kinds(plan) == kinds(base) and "restored deleted test cell 'test_ridge'" in plan.repairs


def test_added_and_changed_cells_are_the_students_and_are_scanned(course_root):
    nb = solution_nb(course_root)
    nb.cells.insert(cell_index(nb, "ridge"), nbformat.v4.new_code_cell("helper = 2\nimport reglib"))
    nb.cells[1].source = "import numpy as np\nimport scipy"                  # the (unlocked) setup cell
    plan, _ = plan_for(course_root, nb)
    added = [i for i in plan.items if i["kind"] == "added"]
    assert [a["code"] for a in added] == ["import numpy as np\nimport scipy", "helper = 2\nimport reglib"]
    flagged = {p["grade_id"]: p["flagged"] for p in plan.parts}
    # flagged code runs before every test cell: all of them wait for review
    assert all(flagged[g] for g in ("test_l2_penalty", "test_soft_threshold", "test_ridge"))


def test_a_flagged_answer_flags_its_own_part_only(course_root):
    nb = answer(solution_nb(course_root), "soft_threshold",
                "from reglib.numpy.prox import soft_threshold as _s\ndef soft_threshold(v, t):\n    return _s(v, t)")
    plan, _ = plan_for(course_root, nb)
    flagged = {p["grade_id"]: bool(p["flagged"]) for p in plan.parts}
    assert flagged == {"test_l2_penalty": False, "test_soft_threshold": True, "test_ridge": False}
    assert any("imports from `reglib.numpy.prox`" in r for f in plan.flags for r in f["reasons"])


@pytest.mark.parametrize("damage, reason", [
    ("answer_to_markdown", "answer cell 'ridge' was changed from code to markdown"),
    ("answer_deleted", "answer cell 'ridge' is missing"),
    ("answer_twice", "answer cell 'ridge' appears twice with different contents"),
    ("other_assignment", "does not match the released notebook"),
])
def test_what_cannot_be_repaired_is_quarantined(course_root, damage, reason):
    nb = solution_nb(course_root)
    i = cell_index(nb, "ridge")
    if damage == "answer_to_markdown":
        md = nbformat.v4.new_markdown_cell(nb.cells[i].source)
        md.metadata = nb.cells[i].metadata
        nb.cells[i] = md
    elif damage == "answer_deleted":
        del nb.cells[i]
        del nb.cells[i - 1]  # and the markdown before it, so no code cell stands in for it
    elif damage == "answer_twice":
        twin = copy.deepcopy(nb.cells[i])
        twin.source = "def ridge(X, y, lam):\n    return None"
        nb.cells.insert(i + 1, twin)
    else:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Another assignment"),
                                             nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(Problem, match=reason):
        plan_for(course_root, nb)


def test_identical_duplicate_answers_are_merged(course_root):
    nb = solution_nb(course_root)
    i = cell_index(nb, "ridge")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    plan, _ = plan_for(course_root, nb)
    assert "dropped an identical duplicate of answer cell 'ridge'" in plan.repairs


def test_the_release_untouched_plans_the_stubs(course_root):
    plan, _ = plan_for(course_root, release_nb(course_root))
    sol = [i for i in plan.items if i["kind"] == "solution"]
    assert len(sol) == 3 and all("raise NotImplementedError()" in i["code"] for i in sol)
    assert plan.manual == [{"grade_id": "why_l1", "points": 1.0, "answered": False}]
    assert not plan.repairs and not plan.flags
