"""Text progress bars that read well live (JupyterLab, Colab) and in the static website.

``tqdm.auto`` draws a widget whose state needs a CDN, so the built website would show
nothing. :func:`progress` draws a plain-text bar on stdout instead. Live, it redraws in
place. When the book is built (the build sets ``REGLIB_PROGRESS=static``, see
``tools/book_ext.py``), each bar prints only its final state, one line, e.g.::

    baseline: 100%|##########| 60/60 [00:02<00:00, 27.1it/s, train_acc=1.000, val_acc=0.640]
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, TypeVar

from tqdm.std import tqdm

__all__ = ["progress", "static_mode"]

T = TypeVar("T")


def static_mode() -> bool:
    """True when bars should print only their final line (``REGLIB_PROGRESS=static``)."""
    return os.environ.get("REGLIB_PROGRESS", "").lower() == "static"


class _LastLine:
    """A write-only text sink that remembers the last non-empty line written to it."""

    def __init__(self) -> None:
        self.last = ""

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            if part.strip():
                self.last = part.rstrip()

    def flush(self) -> None:
        pass


class _StaticTqdm(tqdm):
    """A tqdm bar that renders into a buffer and prints its final state once on close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sink = _LastLine()
        super().__init__(*args, file=self._sink, **kwargs)

    def close(self) -> None:
        if self.disable:
            return
        super().close()
        if self._sink.last:
            print(self._sink.last, file=sys.stdout, flush=True)
            self._sink.last = ""


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    disable: bool = False,
    leave: bool = True,
    **kwargs: Any,
) -> tqdm:
    """A text ``tqdm`` bar on stdout (ASCII, 100 columns, refreshed at most twice a second)."""
    options: dict[str, Any] = dict(
        iterable=iterable, total=total, desc=desc, disable=disable, leave=leave,
        ascii=True, ncols=100, dynamic_ncols=False, mininterval=0.5,
    )
    options.update(kwargs)
    if static_mode():
        return _StaticTqdm(**options)
    return tqdm(file=sys.stdout, **options)
