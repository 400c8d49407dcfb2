"""Intake: map the files of a class to (student, notebook), whatever the LMS or browser did.

Accepted inputs: nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb``; a
folder with one sub-folder per student; a flat folder whose file names carry the
student (Canvas ``login_12345_67890_name.ipynb``, Blackboard
``Assignment_login_attempt_2024-01-31-23-59-00_name.ipynb``, Moodle folders
``Full Name_123_assignsubmission_file_/``, or ``<student>_<notebook>.ipynb``); or a zip
of any of these (extracted with size and path checks). File names are normalized
("Copy of x", "x (1)", "x-2", ".ipynb.txt"): a student's file maps to the release
notebook its name normalizes to, or, when the assignment has a single notebook, to that
notebook. Several candidates: the newest counts, the others are listed. Files that
cannot be mapped are quarantined with the reason.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["Found", "collect", "normalize_candidates", "student_id"]

NOTEBOOK_SUFFIXES = (".ipynb", ".ipynb.txt", ".ipynb.json")
COPY_PREFIXES = ("copy of ", "copia de ", "copie de ", "kopie von ", "kopie van ", "copia di ")
SKIP_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git", "__pycache__"}

CANVAS = re.compile(r"^(?P<student>[A-Za-z0-9.\-]+)(?:_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")
BLACKBOARD = re.compile(
    r"^(?P<assignment>.+?)_(?P<student>[^_]+)_attempt_(?P<date>\d{4}(?:-\d{2}){5})(?:_(?P<file>.+))?$"
)
MOODLE_DIR = re.compile(r"^(?P<student>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_?$")

MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_MEMBER_BYTES = 512 * 2**20
MAX_ZIP_TOTAL_BYTES = 8 * 2**30


@dataclass
class Found:
    """One submitted file mapped to a student and a release notebook."""

    student: str
    notebook: str
    path: Path
    original: str
    timestamp: datetime | None = None
    notes: list[str] = field(default_factory=list)


def student_id(raw: str) -> str:
    """A safe nbgrader student id (letters, digits, ``._-@``; the rest becomes ``_``)."""
    out = re.sub(r"[^A-Za-z0-9._@-]+", "_", raw.strip()).strip("._")
    return out[:100]


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().casefold())


def _strip_suffix(name: str) -> str | None:
    low = name.casefold()
    for suf in NOTEBOOK_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return None


def normalize_candidates(stem: str) -> list[str]:
    """Names a browser/LMS-mangled stem may stand for, most literal first."""
    out = [stem]
    frontier = [stem]
    while frontier:
        s = frontier.pop()
        nexts = []
        low = s.casefold()
        for p in COPY_PREFIXES:
            if low.startswith(p):
                nexts.append(s[len(p):])
        m = re.match(r"^(.*?)\s*\(\d+\)$", s)
        if m:
            nexts.append(m.group(1))
        m = re.match(r"^(.*?)[-_ ]\d{1,2}$", s)
        if m:
            nexts.append(m.group(1))
        m = re.match(r"^(.*?)\s*-\s*colab$", s, re.IGNORECASE)
        if m:
            nexts.append(m.group(1))
        for n in nexts:
            n = n.strip()
            if n and n not in out:
                out.append(n)
                frontier.append(n)
    return out


def _match_notebook(stem: str, notebooks: list[str]) -> str | None:
    keys = {_key(n): n for n in notebooks}
    for cand in normalize_candidates(stem):
        if _key(cand) in keys:
            return keys[_key(cand)]
    return None


def _extract_zip(path: Path, dest: Path) -> list[str]:
    """Extract safely; returns notes about skipped members."""
    notes = []
    total = 0
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValueError(f"zip has {len(members)} members (limit {MAX_ZIP_MEMBERS})")
        for info in members:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if info.is_dir() or not parts:
                continue
            if name.startswith("/") or ".." in parts or ":" in parts[0]:
                notes.append(f"skipped unsafe zip member {name!r}")
                continue
            if info.file_size > MAX_ZIP_MEMBER_BYTES or total + info.file_size > MAX_ZIP_TOTAL_BYTES:
                notes.append(f"skipped oversized zip member {name!r}")
                continue
            total += info.file_size
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            try:
                ts = datetime(*info.date_time).timestamp()
                import os

                os.utime(target, (ts, ts))
            except (ValueError, OverflowError):
                pass
    return notes


def _timestamp_file(folder: Path) -> datetime | None:
    ts = folder / "timestamp.txt"
    if ts.is_file():
        try:
            from nbgrader.utils import parse_utc

            value = parse_utc(ts.read_text().strip())
            return value.replace(tzinfo=None) if value is not None else None
        except Exception:  # noqa: BLE001 - a bad timestamp is ignored
            return None
    return None


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).replace(tzinfo=None)


def _who(rel: Path, assignment: str, notebooks: list[str], pattern: re.Pattern | None) -> tuple[str | None, str]:
    """(student, file stem) for a path relative to the intake root."""
    parts = rel.parts
    stem = _strip_suffix(parts[-1]) or parts[-1]
    if pattern is not None:
        m = pattern.search(rel.as_posix())
        if m and m.groupdict().get("student"):
            return m.group("student"), stem
    for comp in parts[:-1]:
        m = MOODLE_DIR.match(comp)
        if m:
            return m.group("student"), stem
    m = CANVAS.match(parts[-1])
    if m:
        return m.group("student"), _strip_suffix(m.group("file")) or m.group("file")
    m = BLACKBOARD.match(stem)
    if m:
        return m.group("student"), _strip_suffix(m.group("file") or "") or (m.group("file") or stem)
    if len(parts) >= 2:
        return parts[0], stem
    # flat: <student>_<notebook> or <student>.ipynb
    for n in notebooks:
        for cand in normalize_candidates(stem):
            k, kn = _key(cand), _key(n)
            if k.endswith("_" + kn) and len(k) > len(kn) + 1:
                return cand[: len(cand) - len(n)].rstrip("_- ."), n
    if _match_notebook(stem, notebooks) is None and _key(stem) != _key(assignment):
        return stem, stem
    return None, stem


def collect(
    source: str | Path,
    assignment: str,
    notebooks: list[str],
    student_pattern: str | None = None,
    roster: dict[str, str] | None = None,
    workdir: str | Path | None = None,
) -> tuple[list[Found], list[dict], list[str]]:
    """Find every submitted notebook; returns (found, quarantined, notes).

    ``quarantined`` entries are ``{"file", "student", "reason"}``. ``roster`` maps an LMS
    name/login to the course's student id.
    """
    source = Path(source)
    notes: list[str] = []
    quarantined: list[dict] = []
    if not source.exists():
        raise FileNotFoundError(f"no submissions at {source}")
    root = source
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ValueError(f"{source} is neither a folder nor a zip file")
        root = Path(tempfile.mkdtemp(prefix="reggrader-intake-", dir=workdir))
        notes += _extract_zip(source, root)
    pattern = re.compile(student_pattern) if student_pattern else None
    roster = {k.casefold(): v for k, v in (roster or {}).items()}

    # nbgrader's collected layout: <root>/<student>/<assignment>/<notebook>.ipynb
    nbgrader_layout = any((d / assignment).is_dir() for d in root.iterdir() if d.is_dir())
    candidates: dict[str, list[tuple[Path, str, datetime | None]]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(p in SKIP_PARTS or p.startswith(".") for p in rel.parts):
            continue
        if _strip_suffix(path.name) is None:
            continue
        if nbgrader_layout:
            if len(rel.parts) != 3 or rel.parts[1] != assignment:
                quarantined.append({"file": rel.as_posix(), "student": None,
                                    "reason": "not in <student>/<assignment>/ of nbgrader's layout"})
                continue
            who, stem, ts = rel.parts[0], _strip_suffix(rel.parts[2]), _timestamp_file(path.parent)
        else:
            who, stem = _who(rel, assignment, notebooks, pattern)
            ts = None
        if not who:
            quarantined.append({"file": rel.as_posix(), "student": None,
                                "reason": "cannot tell whose file this is (no student in its path or name)"})
            continue
        who = roster.get(who.casefold(), who)
        sid = student_id(who)
        if not sid:
            quarantined.append({"file": rel.as_posix(), "student": None, "reason": f"bad student name {who!r}"})
            continue
        candidates.setdefault(sid, []).append((path, stem, ts))

    found: list[Found] = []
    for sid, files in sorted(candidates.items()):
        by_nb: dict[str, list[tuple[Path, str, datetime | None]]] = {}
        unmatched = []
        for path, stem, ts in files:
            nb = _match_notebook(stem, notebooks)
            (by_nb.setdefault(nb, []) if nb else unmatched).append((path, stem, ts))
        if len(notebooks) == 1 and notebooks[0] not in by_nb and len(unmatched) == 1:
            by_nb[notebooks[0]] = unmatched  # a renamed file of a one-notebook assignment
            unmatched = []
        for path, stem, ts in unmatched:
            quarantined.append({"file": path.relative_to(root).as_posix(), "student": sid,
                                "reason": f"file name {path.name!r} matches no notebook of {assignment}"})
        for nb, cands in sorted(by_nb.items()):
            cands.sort(key=lambda c: (c[2] or _mtime(c[0]), _key(c[1]) == _key(nb)), reverse=True)
            path, stem, ts = cands[0]
            f = Found(sid, nb, path, path.relative_to(root).as_posix(), ts or _mtime(path))
            if path.name != f"{nb}.ipynb":
                f.notes.append(f"file {path.name!r} taken as {nb}.ipynb")
            for other in cands[1:]:
                f.notes.append(f"newer file chosen; ignored {other[0].relative_to(root).as_posix()!r}")
            found.append(f)
    return found, quarantined, notes
