"""Tensor-argument checks shared by the ``reglib.torch`` modules (private).

The scalar and array checks live in :mod:`reglib._validation`, which never imports torch;
the checks that need ``torch.Tensor`` itself live here, once, instead of being repeated in
``dropout``, ``norm``, ``penalties`` and ``spectral``. The messages name the argument, as
everywhere in reglib (the tests match them).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from reglib._validation import check_finite

__all__ = ["check_float_tensor"]


def check_float_tensor(x: Any, name: str = "x", *, finite: bool = False) -> Tensor:
    """Return ``x`` if it is a floating-point ``torch.Tensor``; raise ``TypeError`` otherwise.

    With ``finite=True`` a tensor holding NaN or inf also raises ``ValueError`` (a pass over
    the data; the layers that run at every step leave it off and let NaN propagate as torch).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if finite:
        check_finite(x, name)
    return x
