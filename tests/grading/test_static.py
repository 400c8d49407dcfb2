"""The static tripwire on student code: what is flagged, and what honest code never trips."""

from __future__ import annotations

import pytest

from reggrader.spec import DEFAULT_ALLOWED_IMPORTS
from reggrader.static import scan_source


def flags(src: str) -> list[str]:
    return [f.reason for f in scan_source(src, DEFAULT_ALLOWED_IMPORTS)]


@pytest.mark.parametrize("src", [
    "def soft_threshold(v, t):\n    return np.sign(v) * np.maximum(np.abs(v) - t, 0)",
    "import numpy as np\nfrom math import sqrt\nfrom functools import reduce\nimport numpy.linalg as la",
    "def ridge(X, y, lam):\n    U, s, Vt = np.linalg.svd(X, full_matrices=False)\n    return Vt.T @ (s / (s**2 + lam) * (U.T @ y))",
    "class Box:\n    def __init__(self, x):\n        self.x = x\n    def __eq__(self, other):\n        return True",
    "import warnings\nwarnings.warn('careful', RuntimeWarning)\nprint(type(3).__name__)",
    "x = getattr(np, 'linalg')\nassert hasattr(x, 'solve')",
    "def f(w, lam):\n    # uses a closed form\n    return 0.5 * lam * w @ w, lam * w",
])
def test_honest_code_is_not_flagged(src):
    assert flags(src) == []


@pytest.mark.parametrize("src, fragment", [
    ("import reglib.numpy.prox as p", "imports `reglib.numpy.prox`"),
    ("from reglib.numpy import prox", "imports from `reglib.numpy`"),
    ("m = __import__('reg' + 'lib')", "uses `__import__`"),
    ("import importlib\nm = importlib.import_module('x')", "imports `importlib`"),
    ("s = spec_from_file_location('p', '/work/solutions/grading.py')", "mentions 'solutions'"),
    ("exec(open('/tmp/x.py').read())", "uses `exec`"),
    ("f = eval('lambda v: v')", "uses `eval`"),
    ("code = compile('1', 'x', 'eval')", "uses `compile`"),
    ("import sys\nref = sys.modules['r']", "uses the attribute `.modules`"),
    ("import sys\nf = sys._getframe(1)", "uses the attribute `._getframe`"),
    ("ref = np.testing._private.utils.sys.modules", "uses the attribute `.modules`"),
    ("g = soft_threshold.__globals__", "uses the attribute `.__globals__`"),
    ("k = ().__class__.__base__.__subclasses__()", "uses the attribute `.__subclasses__`"),
    ("get_ipython().input_transformers_cleanup.append(lambda l: [])", "uses `get_ipython`"),
    ("!pip install cheat", "uses `get_ipython`"),
    ("%run /tmp/cheat.py", "uses `get_ipython`"),
    ("fn = getattr(np, name)", "computed attribute name"),
    ("import os\nos.system('cat /etc/passwd')", "imports `os`"),
    ("np.allclose = lambda *a, **k: True\nopen('/x').read()", "uses `open`"),
    ("import sqlite3", "imports `sqlite3`"),
    ("b = __builtins__", "uses `__builtins__`"),
])
def test_tricks_are_flagged(src, fragment):
    found = flags(src)
    assert any(fragment in f for f in found), found


def test_allowed_names_and_imports_can_be_extended_per_assignment():
    assert scan_source("import scipy.linalg", DEFAULT_ALLOWED_IMPORTS)
    assert scan_source("import scipy.linalg", (*DEFAULT_ALLOWED_IMPORTS, "scipy")) == []
    assert scan_source("print(open)", DEFAULT_ALLOWED_IMPORTS, allowed_names=("open",)) == []


def test_flags_carry_line_numbers_and_unparsable_cells_are_left_to_fail():
    (flag,) = scan_source("x = 1\n\nimport reglib", DEFAULT_ALLOWED_IMPORTS)
    assert flag.line == 3 and str(flag).startswith("line 3:")
    assert scan_source("def broken(:\n  pass", DEFAULT_ALLOWED_IMPORTS) == []
