"""Spectral norm, power iteration, spectral normalization and Lipschitz bounds (NumPy).

The spectral norm of a matrix is its largest singular value,

    ||W||_2 = sigma_1(W) = max_{h != 0} ||W h|| / ||h||,

the Lipschitz constant of ``h -> W h`` in the Euclidean norm. It is *not* the spectral radius
``rho(W) = max |lambda_i(W)|`` (largest eigenvalue modulus): always ``rho(W) <= ||W||_2``,
with equality for normal matrices (``W W^T = W^T W``, e.g. symmetric ones) but not in
general (``[[0, 1], [0, 0]]`` has ``rho = 0`` and ``||W||_2 = 1``). Spectral normalization
(Miyato et al., 2018) divides a weight by an estimate of ``sigma_1`` obtained by power
iteration; a network ``W_L o phi o ... o phi o W_1`` with 1-Lipschitz activations ``phi`` is
then Lipschitz with constant at most ``prod_l ||W_l||_2``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from reglib._validation import as_float_array, check_int, check_rng

__all__ = [
    "power_iteration",
    "spectral_norm",
    "spectral_normalize",
    "spectral_radius",
    "lipschitz_upper_bound",
]

_TINY = 1e-12  # guards the normalization of a zero vector, as torch's F.normalize(eps=1e-12)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), _TINY)


def _start_vector(m: int, u0: Any, rng: Any) -> np.ndarray:
    if u0 is not None and rng is not None:
        raise ValueError("pass either u0 or rng, not both (u0 is the start vector, rng draws one)")
    if u0 is None:
        if rng is None:
            raise TypeError(
                "power_iteration needs a start vector: pass u0 (shape (m,)) or "
                "rng=np.random.default_rng(seed)"
            )
        return _unit(check_rng(rng).standard_normal(m))
    u = as_float_array(u0, "u0", ndim=1)
    if u.shape != (m,):
        raise ValueError(f"u0 must have shape ({m},) (one entry per row of W), got shape {u.shape}")
    if not np.any(u):
        raise ValueError("u0 must be non-zero, got the zero vector")
    return _unit(u.astype(np.float64))


def power_iteration(
    W: Any, n_iters: int = 50, *, u0: Any = None, rng: np.random.Generator | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Estimate the largest singular value of ``W`` and its singular vectors.

    Starting from a unit vector ``u`` (``u0``, or drawn from ``rng``), each iteration does
    (Miyato et al., 2018, Algorithm 1)::

        v <- W^T u / ||W^T u||,    u <- W v / ||W v||

    and the estimate is ``sigma = u^T W v`` (``= ||W v||``) for the final pair. This is the
    power method on ``W^T W``: if ``u0`` is not orthogonal to the top left singular vector,
    the direction error of ``v`` shrinks by ``(sigma_2 / sigma_1)^2`` per iteration and the
    error of ``sigma`` by ``(sigma_2 / sigma_1)^4``; ``sigma`` never decreases from one
    iteration to the next and never exceeds ``sigma_1``.

    Iterating is resumable: ``power_iteration(W, a + b, u0=u)`` equals
    ``power_iteration(W, b, u0=power_iteration(W, a, u0=u)[1])`` (this is how spectral
    normalization carries ``u`` from one training step to the next).

    Shape:
        W: ``(m, n)``; u0: ``(m,)``. Returns ``sigma`` (float), ``u``: ``(m,)``, ``v``: ``(n,)``.

    Raises:
        TypeError: if neither ``u0`` nor ``rng`` is given. ValueError: if both are, or on a
            zero ``u0``, bad shapes, NaN, or ``n_iters < 1``.
    """
    W = as_float_array(W, "W", ndim=2).astype(np.float64, copy=False)
    n_iters = check_int(n_iters, "n_iters", min_value=1)
    u = _start_vector(W.shape[0], u0, rng)
    for _ in range(n_iters):
        v = _unit(W.T @ u)
        u = _unit(W @ v)
    sigma = float(u @ W @ v)
    return sigma, u, v


def spectral_norm(W: Any) -> float:
    """Exact spectral norm ``||W||_2 = sigma_1(W)``: the largest singular value, by SVD.

    The reference that :func:`power_iteration` is checked against.

    Shape:
        W: ``(m, n)``. Returns a float.
    """
    W = as_float_array(W, "W", ndim=2)
    if W.size == 0:
        raise ValueError(f"W must not be empty, got shape {W.shape}")
    return float(np.linalg.svd(W.astype(np.float64), compute_uv=False)[0])


def spectral_normalize(
    W: Any, n_iters: int, *, u0: Any = None, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``W / sigma_est`` with ``sigma_est`` from :func:`power_iteration` (``n_iters`` steps).

    Since ``sigma_est <= sigma_1``, the result has spectral norm ``sigma_1 / sigma_est >= 1``,
    tending to 1 as the estimate converges.

    Shape:
        W: ``(m, n)``; u0: ``(m,)``. Returns ``(m, n)``.

    Raises:
        ValueError: if the estimate is 0 (e.g. ``W == 0``), plus those of power_iteration.
    """
    W = as_float_array(W, "W", ndim=2)
    sigma, _, _ = power_iteration(W, n_iters, u0=u0, rng=rng)
    if sigma <= 0:
        raise ValueError(f"W has spectral-norm estimate {sigma:g}; cannot normalize by it")
    return W / sigma


def spectral_radius(W: Any) -> float:
    """Spectral radius ``rho(W) = max_i |lambda_i(W)|`` of a square matrix.

    Not the spectral norm: ``rho(W) <= ||W||_2``, with equality for normal matrices only
    (seed 000 calls ``rho`` the spectral regularizer; spectral normalization uses
    ``||W||_2``).

    Shape:
        W: ``(n, n)``. Returns a float.
    """
    W = as_float_array(W, "W", ndim=2)
    if W.shape[0] != W.shape[1] or W.size == 0:
        raise ValueError(f"W must be a non-empty square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W.astype(np.float64)))))


def lipschitz_upper_bound(weights: Sequence[Any]) -> float:
    """Upper bound ``prod_l ||W_l||_2`` on the Lipschitz constant of a feed-forward network.

    For ``f(x) = W_L phi(... phi(W_1 x + b_1) ...) + b_L`` with 1-Lipschitz activations
    ``phi`` (ReLU, tanh, leaky ReLU with slope <= 1), ``||f(x) - f(y)|| <= (prod_l
    ||W_l||_2) ||x - y||``. Biases do not matter, and the bound is the same for ``(out, in)``
    and ``(in, out)`` layouts (``||W^T||_2 = ||W||_2``). It is usually far from tight.

    Shape:
        weights: a non-empty sequence of 2-d arrays. Returns a float.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of 2-d arrays, got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError("weights must contain at least one matrix, got an empty list")
    bound = 1.0
    for k, w in enumerate(weights):
        arr = as_float_array(w, f"weights[{k}]", ndim=2)
        bound *= spectral_norm(arr)
    return bound
