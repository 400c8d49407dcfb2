"""Static tripwires on the student's code cells: reaching for the reference or for tricks.

A solution that calls the reference implementation (``reglib``), or that uses
``exec``/``eval``/``__import__``/``importlib``/frame and module introspection to get at
it, would pass any comparison. Such cells are *flagged*: the parts that depend on them
score 0 pending a human review (nbgrader's "needs manual grade"), with the reason.

This is a tripwire, not a proof: it reads the code (after IPython's own transformation of
magics and ``!`` commands) and flags constructs a from-scratch numpy solution never needs.
The sandbox is the other layer (the kernel cannot read ``solutions/`` or the gradebook).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

__all__ = ["Flag", "scan_source", "FORBIDDEN_CALLS", "FORBIDDEN_ATTRS"]

#: builtins whose use in a solution is flagged
FORBIDDEN_CALLS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "open",
        "input",
        "breakpoint",
        "get_ipython",
        "memoryview",
        "help",
        "setattr",
        "delattr",
    }
)
#: attribute names that reach modules, frames, code objects or the import system
FORBIDDEN_ATTRS = frozenset(
    {
        "modules",
        "_getframe",
        "settrace",
        "setprofile",
        "meta_path",
        "path_hooks",
        "path_importer_cache",
        "addaudithook",
        "import_module",
        "spec_from_file_location",
        "module_from_spec",
        "exec_module",
        "load_module",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "f_code",
        "gi_frame",
        "cr_frame",
        "tb_frame",
        "co_code",
        "system",
        "popen",
        "ctypeslib",
        "load_library",
    }
)
#: dunder attributes that are harmless in ordinary code
ALLOWED_DUNDERS = frozenset({"__name__", "__doc__", "__init__", "__class__", "__call__", "__len__"})
#: strings whose appearance in a solution is suspicious
FORBIDDEN_SUBSTRINGS = ("reglib", "solutions", "gradebook", "grading.py")


@dataclass(frozen=True)
class Flag:
    """Why a cell was flagged (line numbers are those of the cell)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _transform(source: str) -> str:
    """IPython's transformation (magics, ``!cmd``) so that ``ast`` can read the cell."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # pragma: no cover - IPython missing or confused: read it as Python
        return source


def scan_source(
    source: str,
    allowed_imports: tuple[str, ...] | list[str],
    allowed_names: tuple[str, ...] | list[str] = (),
) -> list[Flag]:
    """Flags for one code cell (an unparsable cell is not flagged: it will simply fail)."""
    code = _transform(source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    allowed = {m.split(".")[0] for m in allowed_imports}
    names_ok = set(allowed_names)
    flags: list[Flag] = []

    def add(node: ast.AST, reason: str) -> None:
        flags.append(Flag(getattr(node, "lineno", 0), reason))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top not in allowed:
                    add(node, f"imports `{alias.name}` (allowed here: {', '.join(sorted(allowed))})")
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            if node.level or top not in allowed:
                add(node, f"imports from `{'.' * node.level}{node.module or ''}` (not allowed here)")
        elif isinstance(node, ast.Name):
            if node.id in FORBIDDEN_CALLS and node.id not in names_ok:
                add(node, f"uses `{node.id}`")
            elif node.id.startswith("__") and node.id.endswith("__") and node.id not in (
                "__name__", "__doc__"
            ) and node.id not in names_ok:
                add(node, f"uses `{node.id}`")
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr in names_ok:
                continue
            if attr in FORBIDDEN_ATTRS:
                add(node, f"uses the attribute `.{attr}`")
            elif attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS:
                add(node, f"uses the attribute `.{attr}`")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "getattr", "hasattr"
        ):
            if len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant):
                add(node, f"calls `{node.func.id}` with a computed attribute name")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            low = node.value.lower()
            for word in FORBIDDEN_SUBSTRINGS:
                if word in low:
                    add(node, f"mentions {word!r} in a string")
                    break
    # one flag per (line, reason)
    seen: set[tuple[int, str]] = set()
    out = []
    for f in flags:
        if (f.line, f.reason) not in seen:
            seen.add((f.line, f.reason))
            out.append(f)
    return out
