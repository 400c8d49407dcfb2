"""From a submitted notebook to an execution plan: read, check, align, repair, flag.

The grader never executes the submission as it is. It aligns the submitted cells with
the released notebook and builds the notebook it runs from two sources:

* the **release** (trusted) for everything the instructor wrote: markdown, locked cells,
  the setup cell, and the visible part of every test cell; the hidden part of a test
  cell becomes a *record* cell generated from ``grading.py``, run after all the other
  cells (its inputs never meet student code whose output reaches the feedback);
* the **submission** for what the student wrote: the answer cells (matched to the
  release's solution cells) and any cells the student added or changed (unlocked cells).

Alignment is by nbgrader ``grade_id`` when the metadata survived, otherwise by cell
source (locked cells), cell ids and position (answer cells between two matched cells),
so a notebook whose metadata was stripped by an editor, or whose test cells were
deleted, duplicated, edited, commented out or turned into markdown, still grades. What
cannot be decided safely (an answer cell missing, duplicated with different contents or
changed in type; a file that is not a notebook) is quarantined with the reason.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

from .static import scan_source

__all__ = [
    "Problem",
    "read_notebook",
    "cell_role",
    "align",
    "build_plan",
    "split_hidden",
    "record_cell_source",
]


class Problem(Exception):
    """A notebook the grader will not grade (quarantine), with the reason."""


# -- reading ---------------------------------------------------------------------------------
def read_notebook(data: bytes, max_bytes: int) -> tuple[NotebookNode, list[str]]:
    """Parse and validate a submitted notebook; returns (notebook, repairs made).

    Outputs, execution counts and unknown top-level keys are dropped before validation
    (the grader executes from scratch, so pre-filled outputs never count).
    """
    repairs: list[str] = []
    if len(data) > max_bytes:
        raise Problem(f"file is {len(data)} bytes, over the {max_bytes}-byte cap")
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Problem(f"not valid JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    if isinstance(raw, dict) and raw.get("nbformat") in (1, 2, 3) and "worksheets" in raw:
        try:  # an old notebook format: let nbformat upgrade it
            raw = json.loads(nbformat.writes(nbformat.reads(json.dumps(raw), as_version=4)))
            repairs.append("converted from an old notebook format")
        except Exception as exc:  # noqa: BLE001
            raise Problem(f"unsupported notebook format ({str(exc)[:120]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise Problem("not a Jupyter notebook (no list of cells)")
    if raw.get("nbformat", 4) != 4:
        raise Problem(f"unsupported notebook format {raw.get('nbformat')!r}")
    cells = []
    had_outputs = False
    for i, cell in enumerate(raw["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Problem(f"cell {i} is not a valid notebook cell")
        source = cell.get("source", "")
        if isinstance(source, list):
            if not all(isinstance(s, str) for s in source):
                raise Problem(f"cell {i} has a malformed source")
            source = "".join(source)
        if not isinstance(source, str):
            raise Problem(f"cell {i} has a malformed source")
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        clean = {"cell_type": cell["cell_type"], "metadata": meta, "source": source}
        if isinstance(cell.get("id"), str) and cell["id"]:
            clean["id"] = cell["id"][:64]
        if cell["cell_type"] == "code":
            had_outputs = had_outputs or bool(cell.get("outputs"))
            clean["outputs"], clean["execution_count"] = [], None
        elif cell.get("attachments") and isinstance(cell["attachments"], dict):
            clean["attachments"] = cell["attachments"]
        cells.append(clean)
    if had_outputs:
        repairs.append("ignored the outputs saved in the file (the grader runs every cell)")
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    nbdict = {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}
    nb = nbformat.from_dict(nbdict)
    for cell in nb.cells:
        if "id" not in cell:
            cell["id"] = nbformat.v4.new_code_cell().id
    seen = set()
    for cell in nb.cells:  # duplicated cell ids (copy-paste in some editors) are made unique
        if cell["id"] in seen:
            cell["id"] = nbformat.v4.new_code_cell().id
        seen.add(cell["id"])
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        # the usual culprit is editor metadata of the wrong shape: drop it and retry
        for cell in nb.cells:
            keep = {k: v for k, v in cell.metadata.items() if k in ("nbgrader", "tags")}
            if cell.metadata != keep:
                cell.metadata = nbformat.from_dict(keep)
        nb.metadata = nbformat.from_dict(
            {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
        )
        try:
            nbformat.validate(nb)
            repairs.append("dropped malformed editor metadata")
        except nbformat.ValidationError:
            raise Problem(f"invalid notebook ({str(exc).splitlines()[0][:160]})") from None
    return nb, repairs


# -- cell roles --------------------------------------------------------------------------------
def _nbg(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _gid(cell: NotebookNode) -> str | None:
    gid = _nbg(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def cell_role(cell: NotebookNode) -> str:
    """answer (solution, autograded), manual (solution or task with points), test
    (autograded test), locked (read-only), plain (no nbgrader role)."""
    m = _nbg(cell)
    if m.get("task"):
        return "manual"
    if m.get("solution") and m.get("grade"):
        return "manual"
    if m.get("solution"):
        return "answer"
    if m.get("grade"):
        return "test"
    if m.get("locked"):
        return "locked"
    return "plain"


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def _similarity(a: str, b: str) -> float:
    """1.0 for the same text (up to trailing blanks); else a line-level similarity.

    Values below 0.6 only mean "not the same cell": the cheap upper bounds stop there.
    """
    a, b = _norm(a), _norm(b)
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    sm = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines())
    if sm.real_quick_ratio() < 0.6 or sm.quick_ratio() < 0.6:
        return 0.0
    return sm.ratio()


def _uncomment(src: str) -> str:
    lines = []
    for line in src.splitlines():
        s = line.lstrip()
        lines.append(s[1:].lstrip() if s.startswith("#") else line)
    return "\n".join(lines)


def _score(r: NotebookNode, u: NotebookNode) -> float:
    """How well submitted cell ``u`` stands for released cell ``r`` (0: not at all)."""
    rg, ug = _gid(r), _gid(u)
    role = cell_role(r)
    if rg and ug:
        return 100.0 if rg == ug else 0.0
    bonus = 30.0 if r.get("id") and r.get("id") == u.get("id") else 0.0
    if ug and not rg:  # the student's cell claims a grade_id the release cell lacks
        return 0.0
    if role in ("answer", "manual"):
        if u.cell_type != r.cell_type:
            return 0.0
        return (20.0 if _norm(u.source) == _norm(r.source) else 2.0) + bonus
    sim = max(_similarity(r.source, u.source), _similarity(r.source, _uncomment(u.source)))
    if sim >= 0.999:
        return 60.0 + bonus
    if role in ("test", "locked") and sim >= 0.6:
        return 10.0 + 20.0 * sim + bonus
    if bonus and r.cell_type == u.cell_type:
        return bonus
    return 0.0


def align(release: list[NotebookNode], sub: list[NotebookNode]) -> list[tuple[int | None, int | None]]:
    """Order-preserving alignment maximizing the total match score.

    Returns the merged sequence of ``(i, j)`` pairs: both set for a match, ``(i, None)``
    for a release cell with no counterpart, ``(None, j)`` for a cell the student added.
    """
    n, m = len(release), len(sub)
    scores = [[_score(release[i], sub[j]) for j in range(m)] for i in range(n)]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            s = scores[i][j]
            best[i][j] = max(
                best[i + 1][j],
                best[i][j + 1],
                best[i + 1][j + 1] + s if s > 0 else -1.0,
            )
    out: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and scores[i][j] > 0 and best[i][j] == best[i + 1][j + 1] + scores[i][j]:
            out.append((i, j))
            i, j = i + 1, j + 1
        elif j < m and (i == n or best[i][j] == best[i][j + 1]):
            out.append((None, j))
            j += 1
        else:
            out.append((i, None))
            i += 1
    # a cell the student added is placed after the release cells that precede it
    return out


# -- hidden parts ------------------------------------------------------------------------------
def split_hidden(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> tuple[str, list[str]]:
    """(visible source, hidden blocks) of a test cell, as nbgrader's ClearHiddenTests cuts it."""
    visible, hidden, block, inside = [], [], [], False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError("nested hidden-test regions")
            inside, block = True, []
        elif end in line:
            if not inside:
                raise ValueError("END HIDDEN TESTS without BEGIN")
            inside = False
            hidden.append("\n".join(block))
        elif inside:
            block.append(line)
        else:
            visible.append(line)
    if inside:
        raise ValueError("no END HIDDEN TESTS")
    return "\n".join(visible), hidden


def record_cell_source(kernel_part: dict) -> str:
    """The cell the grader runs in place of a hidden block: record, never compare."""
    from pathlib import Path

    from . import _recorder

    recorder = Path(_recorder.__file__).read_text()
    payload = json.dumps(kernel_part, separators=(",", ":"))
    return (
        "# reggrader: call the function on the grader's inputs and emit its outputs\n"
        "_reggrader_ns = {}\n"
        f"exec({recorder!r}, _reggrader_ns)\n"
        f"_reggrader_ns['emit'](_reggrader_ns['record'](globals(), _reggrader_ns['json'].loads({payload!r})))\n"
        "del _reggrader_ns\n"
    )


# -- the plan ------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Everything a job needs about one notebook (serialized into the job file)."""

    notebook: dict                      # the notebook to execute (release + student answers)
    items: list[dict]                   # what to run, in order
    parts: list[dict]                   # planned parts (with expected outcomes)
    manual: list[dict]                  # manually graded cells: grade_id, points, answered
    repairs: list[str] = field(default_factory=list)
    flags: list[dict] = field(default_factory=list)


def _strip_nbgrader(cell: NotebookNode) -> NotebookNode:
    c = copy.deepcopy(cell)
    c.metadata.pop("nbgrader", None)
    return c


def build_plan(
    release_nb: NotebookNode,
    sub_nb: NotebookNode,
    parts: dict[str, dict],
    allowed_imports: tuple[str, ...] | list[str],
    allowed_names: tuple[str, ...] | list[str] = (),
) -> Plan:
    """Align ``sub_nb`` with ``release_nb`` and build the plan; raises :class:`Problem`."""
    from nbgrader.utils import compute_checksum

    R, U = release_nb.cells, sub_nb.cells
    pairs = align(R, U)
    match = {i: j for i, j in pairs if i is not None and j is not None}
    repairs: list[str] = []
    problems: list[str] = []
    grade_ids = {_gid(c): k for k, c in enumerate(R) if _gid(c)}

    # release cells with no counterpart
    for i, c in enumerate(R):
        role, gid = cell_role(c), _gid(c)
        if i in match:
            u = U[match[i]]
            if role in ("answer", "manual") and u.cell_type != c.cell_type:
                problems.append(f"answer cell {gid!r} was changed from {c.cell_type} to {u.cell_type}")
            elif role in ("test", "locked"):
                if u.cell_type != c.cell_type:
                    repairs.append(f"restored {role} cell {gid!r} (it was turned into {u.cell_type})")
                elif _norm(u.source) != _norm(c.source):
                    repairs.append(f"restored {role} cell {gid!r} (it was edited)")
            if role in ("answer", "manual", "test", "locked") and not _gid(u):
                repairs.append(f"restored the nbgrader metadata of cell {gid!r}")
        elif role in ("answer", "manual"):
            # a cell type change is reported as such, not as a missing answer
            changed = [u for u in U if _gid(u) == gid and u.cell_type != c.cell_type]
            if changed:
                problems.append(f"answer cell {gid!r} was changed from {c.cell_type} to {changed[0].cell_type}")
            else:
                problems.append(f"answer cell {gid!r} is missing")
        elif role in ("test", "locked"):
            repairs.append(f"restored deleted {role} cell {gid!r}")

    # a notebook of another assignment shares (almost) nothing with the release
    anchors = [i for i, c in enumerate(R) if cell_role(c) in ("test", "locked", "answer", "manual")]
    if anchors and sum(1 for i in anchors if i in match) < max(1, len(anchors) // 3):
        raise Problem("does not match the released notebook (wrong assignment or an empty file?)")

    # cells the student added (or duplicated)
    extra: dict[int, str] = {}
    for i, j in pairs:
        if i is not None or j is None:
            continue
        u = U[j]
        gid = _gid(u)
        if gid in grade_ids:
            k = grade_ids[gid]
            role = cell_role(R[k])
            if role in ("test", "locked"):
                repairs.append(f"dropped a duplicate of {role} cell {gid!r}")
                extra[j] = "drop"
                continue
            if k in match and _norm(U[match[k]].source) == _norm(u.source):
                repairs.append(f"dropped an identical duplicate of answer cell {gid!r}")
                extra[j] = "drop"
                continue
            if k in match and u.cell_type == U[match[k]].cell_type:
                problems.append(f"answer cell {gid!r} appears twice with different contents")
                continue
        if not gid and any(
            cell_role(r) in ("test", "locked") and _similarity(r.source, u.source) >= 0.999 for r in R
        ):
            repairs.append("dropped a copy of a locked cell")
            extra[j] = "drop"
            continue
        extra[j] = "added"
    if problems:
        raise Problem("; ".join(dict.fromkeys(problems)))

    # build the notebook to execute and the run items
    cells: list[NotebookNode] = []
    items: list[dict] = []
    records: list[dict] = []
    flags: list[dict] = []
    manual: list[dict] = []
    planned_parts: list[dict] = []
    last_answer: str | None = None
    added_flags_before: list[str] = []

    def scan(src: str, where: str) -> list[str]:
        found = [str(f) for f in scan_source(src, allowed_imports, allowed_names)]
        if found:
            flags.append({"cell": where, "reasons": found})
        return found

    for i, j in pairs:
        if i is None:
            if extra.get(j) != "added":
                continue
            u = _strip_nbgrader(U[j])
            cells.append(u)
            if u.cell_type == "code":
                where = f"added cell {len(cells)}"
                if scan(u.source, where):
                    added_flags_before.append(where)
                items.append({"kind": "added", "cell": len(cells) - 1, "code": u.source})
            continue
        r = R[i]
        role, gid = cell_role(r), _gid(r)
        u = U[j] if j is not None else None
        if role in ("answer", "manual"):
            cell = copy.deepcopy(r)
            cell.source = u.source if u is not None else r.source
            if u is not None and u.get("attachments"):
                cell["attachments"] = u["attachments"]
            cells.append(cell)
            answered = compute_checksum(cell) != _nbg(r).get("checksum", compute_checksum(r))
            if role == "manual":
                manual.append({"grade_id": gid, "points": float(_nbg(r).get("points", 0)), "answered": answered})
            if cell.cell_type == "code":
                found = scan(cell.source, f"answer cell {gid!r}")
                items.append({"kind": "solution", "cell": len(cells) - 1, "code": cell.source,
                              "grade_id": gid, "flagged": bool(found)})
                if role == "answer":
                    last_answer = gid
            continue
        if role == "test":
            cell = copy.deepcopy(r)
            visible, hidden = split_hidden(r.source)
            cell.source = visible.rstrip("\n")
            cells.append(cell)
            if cell.source.strip():
                items.append({"kind": "visible", "cell": len(cells) - 1, "code": cell.source, "grade_id": gid})
            part = parts.get(gid)
            if part is None:
                raise ValueError(f"grading.py has no part for the test cell {gid!r}")
            part = dict(part, points=float(_nbg(r).get("points", 0)))
            reasons = []
            answer_flag = next((f for f in flags if f["cell"] == f"answer cell {last_answer!r}"), None)
            if answer_flag:
                reasons.append(f"its answer cell {last_answer!r} was flagged")
            if added_flags_before:
                reasons.append("flagged code runs before it (" + ", ".join(added_flags_before) + ")")
            part["flagged"] = reasons
            part["answer"] = last_answer
            planned_parts.append(part)
            from .spec import kernel_part

            # record cells run after every cell of the notebook: no student code runs after
            # them whose output could carry the grader's inputs into the feedback
            records.append({"kind": "record", "cell": len(cells) - 1, "grade_id": gid,
                            "code": record_cell_source(kernel_part(part))})
            continue
        # markdown, locked and plain cells come from the release; a plain (unlocked) code
        # cell the student changed is the student's code
        if r.cell_type == "code" and role == "plain" and u is not None and _norm(u.source) != _norm(r.source) \
                and u.cell_type == "code":
            cell = _strip_nbgrader(u)
            cells.append(cell)
            where = f"changed cell {len(cells)}"
            if scan(cell.source, where):
                added_flags_before.append(where)
            items.append({"kind": "added", "cell": len(cells) - 1, "code": cell.source})
            continue
        cell = copy.deepcopy(r)
        cells.append(cell)
        if cell.cell_type == "code":
            items.append({"kind": "context", "cell": len(cells) - 1, "code": cell.source})

    items += records
    missing = [gid for gid in parts if gid not in {p["grade_id"] for p in planned_parts}]
    if missing:
        raise ValueError(f"grading.py has parts for cells not in the release: {missing}")
    nb = copy.deepcopy(release_nb)
    nb.cells = cells
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return Plan(json.loads(nbformat.writes(nb)), items, planned_parts, manual, list(dict.fromkeys(repairs)), flags)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "notebook": plan.notebook,
        "items": plan.items,
        "parts": plan.parts,
        "manual": plan.manual,
        "repairs": plan.repairs,
        "flags": plan.flags,
    }
