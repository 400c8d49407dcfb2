"""Argument checks shared by ``reglib.numpy`` and ``reglib.torch``.

Every public function validates its inputs with these helpers so that bad input fails
early with a ``ValueError``/``TypeError`` that names the argument and shows the value,
for example ``ValueError: drop_prob must be in [0, 1), got 1.5``.

This module imports numpy only (never torch): tensors are recognised by duck typing.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

__all__ = [
    "check_scalar",
    "check_probability",
    "check_int",
    "as_float_array",
    "check_finite",
    "check_ndim",
    "check_groups",
    "check_rng",
]


def _fmt(value: Any) -> str:
    """Short representation of a value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_scalar(
    value: Any,
    name: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
) -> float:
    """Return ``value`` as a Python float after checking type, finiteness and range.

    Raises:
        TypeError: if ``value`` is not a real number (bools are rejected too).
        ValueError: if it is NaN or infinite, or outside the requested interval.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # zero-dimensional arrays and tensors are accepted if they hold a real number
        if hasattr(value, "shape") and tuple(getattr(value, "shape")) == () and hasattr(value, "item"):
            return check_scalar(
                value.item(),
                name,
                min_value=min_value,
                max_value=max_value,
                include_min=include_min,
                include_max=include_max,
            )
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_fmt(value)}")
    out = float(value)
    if math.isnan(out) or math.isinf(out):
        raise ValueError(f"{name} must be finite, got {out}")
    lo_ok = min_value is None or (out >= min_value if include_min else out > min_value)
    hi_ok = max_value is None or (out <= max_value if include_max else out < max_value)
    if not (lo_ok and hi_ok):
        lo = "-inf" if min_value is None else f"{min_value:g}"
        hi = "inf" if max_value is None else f"{max_value:g}"
        left = "[" if (include_min and min_value is not None) else "("
        right = "]" if (include_max and max_value is not None) else ")"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {out:g}")
    return out


def check_probability(
    value: Any, name: str, *, include_zero: bool = True, include_one: bool = True
) -> float:
    """Check that ``value`` is a probability in [0, 1] (ends optionally excluded)."""
    return check_scalar(
        value, name, min_value=0.0, max_value=1.0, include_min=include_zero, include_max=include_one
    )


def check_int(value: Any, name: str, *, min_value: int | None = None) -> int:
    """Check that ``value`` is an integer (not a bool), optionally ``>= min_value``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {_fmt(value)}")
    out = int(value)
    if min_value is not None and out < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {out}")
    return out


def as_float_array(x: Any, name: str, *, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Convert ``x`` to a floating numpy array, checking dimensions and finiteness.

    Integer and boolean inputs are converted to float64; float32 stays float32.
    """
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        raise TypeError(f"{name} must be a numpy array, got a torch tensor; use reglib.torch instead")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if ndim is not None:
        check_ndim(arr, name, ndim)
    check_finite(arr, name)
    return arr


def check_finite(arr: Any, name: str) -> None:
    """Raise ``ValueError`` if an array (numpy or torch) holds NaN or infinity."""
    if hasattr(arr, "isfinite") and hasattr(arr, "all") and not isinstance(arr, np.ndarray):
        ok = bool(arr.isfinite().all())  # torch tensor
    else:
        ok = bool(np.all(np.isfinite(arr)))
    if not ok:
        raise ValueError(f"{name} must be finite, got an array containing NaN or inf")


def check_ndim(arr: Any, name: str, ndim: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``arr.ndim`` is ``ndim`` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    got = arr.ndim if hasattr(arr, "ndim") else np.ndim(arr)
    if got not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(
            f"{name} must have {want} dimension(s), got shape {tuple(arr.shape)}"
        )


def check_groups(groups: Any, size: int, name: str = "groups") -> list[np.ndarray]:
    """Check a partition-like list of index arrays over ``range(size)``.

    Groups must be non-empty, hold valid integer indices and must not overlap. They need
    not cover every index: indices in no group are left unpenalized.
    """
    if isinstance(groups, np.ndarray) or not isinstance(groups, (list, tuple)):
        raise TypeError(f"{name} must be a list of index arrays, got {type(groups).__name__}")
    seen = np.zeros(size, dtype=bool)
    out = []
    for k, g in enumerate(groups):
        idx = np.asarray(g)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"{name}[{k}] must be a non-empty 1-d index array, got {_fmt(g)}")
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{name}[{k}] must hold integers, got dtype {idx.dtype}")
        if idx.min() < 0 or idx.max() >= size:
            raise ValueError(f"{name}[{k}] has indices outside [0, {size}): {_fmt(g)}")
        if len(np.unique(idx)) != idx.size or seen[idx].any():
            raise ValueError(f"{name} must not overlap or repeat indices; {name}[{k}] does")
        seen[idx] = True
        out.append(idx)
    return out


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """Require an explicit ``numpy.random.Generator`` (no global state, no bare seeds)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng
