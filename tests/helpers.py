"""Small helpers shared by the tests (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def rel_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|), the CS231n relative error (0 when both are zero)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    denom = np.max(np.abs(a) + np.abs(b))
    return 0.0 if denom == 0 else float(np.max(np.abs(a - b)) / denom)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function ``f`` at ``x`` (float64, x is not modified)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x.copy())
        x[idx] = old - h
        fm = f(x.copy())
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
    return grad


def numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``."""
    return numerical_gradient(lambda z: float(np.sum(f(z) * dout)), x, h)
