"""Weight penalties Omega(w) and their (sub)gradients, in NumPy.

Every penalty is scaled exactly as written in its docstring; the scalings follow
scikit-learn so that the solvers of :mod:`reglib.numpy.linear` can be checked against it:

=====================  ==============================================================
function               value
=====================  ==============================================================
``l1(w, lam)``         ``lam * sum_i |w_i|``
``l2(w, lam)``         ``(lam / 2) * ||w||_2^2`` (the 1/2 makes the gradient ``lam * w``)
``elastic_net``        ``lam * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2)``
``group_lasso``        ``lam * sum_g sqrt(|g|) * ||w_g||_2``
``nuclear(W, lam)``    ``lam * sum_k sigma_k(W)`` (sum of singular values)
``fused_lasso``        ``lam1 * ||w||_1 + lam2 * sum_i |w_{i+1} - w_i|``
=====================  ==============================================================

Penalties return Python floats. Gradients return arrays of the shape and floating dtype
of ``w``; where ``|.|`` is not differentiable (``w_i = 0``) they return the subgradient 0,
the element of the subdifferential ``[-lam, lam]`` of smallest magnitude.

The proximal operators of these penalties are in :mod:`reglib.numpy.prox`, the torch
versions in :mod:`reglib.torch.penalties`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from reglib._validation import as_float_array, check_groups, check_probability, check_scalar

__all__ = [
    "l1",
    "l2",
    "elastic_net",
    "group_lasso",
    "nuclear",
    "fused_lasso",
    "l1_grad",
    "l2_grad",
    "elastic_net_grad",
]


def _lam(lam: float, name: str = "lam") -> float:
    return check_scalar(lam, name, min_value=0.0)


def l1(w: ArrayLike, lam: float) -> float:
    """L1 (lasso) penalty ``lam * ||w||_1 = lam * sum_i |w_i|``.

    Shape:
        ``w``: any shape; the sum runs over every entry.

    Args:
        w: weights.
        lam: strength, ``lam >= 0``.

    Returns:
        The penalty as a Python float.

    Raises:
        TypeError: if ``w`` is not a real numeric array or ``lam`` not a real number.
        ValueError: if ``lam < 0`` or either holds NaN/inf.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    return lam * float(np.sum(np.abs(w)))


def l2(w: ArrayLike, lam: float) -> float:
    """L2 (ridge, weight-decay) penalty ``(lam / 2) * ||w||_2^2``.

    Convention: the factor 1/2 is included, so the gradient is ``lam * w`` and
    gradient descent with step ``eta`` multiplies the weights by ``1 - eta * lam``.

    Shape:
        ``w``: any shape (for a matrix this is the squared Frobenius norm).

    Args:
        w: weights.
        lam: strength, ``lam >= 0``.

    Returns:
        The penalty as a Python float.

    Raises:
        TypeError, ValueError: as for :func:`l1`.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    return 0.5 * lam * float(np.sum(w * w))


def elastic_net(w: ArrayLike, lam: float, l1_ratio: float) -> float:
    """Elastic-net penalty in scikit-learn's scaling.

    ``lam * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2)``

    This is the penalty of ``sklearn.linear_model.ElasticNet(alpha=lam, l1_ratio=l1_ratio)``.
    ``l1_ratio = 1`` gives :func:`l1`, ``l1_ratio = 0`` gives :func:`l2`. Note the 1/2 on the
    quadratic part: without it (``lam * ((1 - a) ||w||^2 + a ||w||_1)``, as some texts write
    it) the proximal operator changes, see :func:`reglib.numpy.prox.prox_elastic_net`.

    Shape:
        ``w``: any shape.

    Args:
        w: weights.
        lam: overall strength, ``lam >= 0``.
        l1_ratio: mix between L1 and L2, in ``[0, 1]``.

    Returns:
        The penalty as a Python float.

    Raises:
        TypeError: for non-numeric input.
        ValueError: if ``lam < 0``, ``l1_ratio`` outside ``[0, 1]``, or NaN/inf.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    l1_ratio = check_probability(l1_ratio, "l1_ratio")
    return lam * (l1_ratio * float(np.sum(np.abs(w))) + 0.5 * (1.0 - l1_ratio) * float(np.sum(w * w)))


def group_lasso(w: ArrayLike, groups: Sequence[ArrayLike], lam: float) -> float:
    """Group-lasso penalty ``lam * sum_g sqrt(|g|) * ||w_g||_2``.

    Each group's Euclidean norm is weighted by the square root of its size (Yuan and
    Lin, 2006), so that large groups are not favoured. Indices that belong to no group
    are not penalized. A group of size 1 contributes ``lam * |w_i|``, so singleton groups
    give back :func:`l1`.

    Shape:
        ``w``: ``(d,)``; ``groups``: a list of 1-d integer index arrays into ``range(d)``,
        non-empty and pairwise disjoint (see :func:`reglib._validation.check_groups`).
        Flatten a matrix first (and build the indices for the flat array) to penalize
        groups of a weight matrix.

    Args:
        w: weights.
        groups: the groups, as index arrays.
        lam: strength, ``lam >= 0``.

    Returns:
        The penalty as a Python float.

    Raises:
        TypeError: if ``groups`` is not a list/tuple of integer index arrays.
        ValueError: if ``w`` is not 1-d, a group is empty, out of range or overlaps
            another, ``lam < 0``, or NaN/inf.
    """
    w = as_float_array(w, "w", ndim=1)
    groups = check_groups(groups, w.shape[0])
    lam = _lam(lam)
    total = sum(np.sqrt(g.size) * float(np.linalg.norm(w[g])) for g in groups)
    return lam * float(total)


def nuclear(W: ArrayLike, lam: float) -> float:
    """Nuclear-norm (trace-norm) penalty ``lam * sum_k sigma_k(W)``.

    ``sigma_k`` are the singular values of ``W``; the nuclear norm is the convex envelope
    of the rank on the unit spectral-norm ball, which is why it favours low rank.

    Shape:
        ``W``: ``(m, n)``.

    Args:
        W: a matrix.
        lam: strength, ``lam >= 0``.

    Returns:
        The penalty as a Python float.

    Raises:
        ValueError: if ``W`` is not 2-d, ``lam < 0``, or NaN/inf.
        TypeError: for non-numeric input.
    """
    W = as_float_array(W, "W", ndim=2)
    lam = _lam(lam)
    if W.size == 0:
        return 0.0
    return lam * float(np.sum(np.linalg.svd(W, compute_uv=False)))


def fused_lasso(w: ArrayLike, lam1: float, lam2: float) -> float:
    """Fused-lasso penalty ``lam1 * ||w||_1 + lam2 * sum_{i=0}^{d-2} |w_{i+1} - w_i|``.

    The second term is the 1-d total variation of ``w`` (Tibshirani et al., 2005): it
    favours piecewise-constant weights along the order of the coordinates.

    Shape:
        ``w``: ``(d,)``.

    Args:
        w: weights, in their natural order (time, position).
        lam1: sparsity strength, ``>= 0``.
        lam2: fusion (total-variation) strength, ``>= 0``.

    Returns:
        The penalty as a Python float.

    Raises:
        ValueError: if ``w`` is not 1-d, a strength is negative, or NaN/inf.
        TypeError: for non-numeric input.
    """
    w = as_float_array(w, "w", ndim=1)
    lam1 = _lam(lam1, "lam1")
    lam2 = _lam(lam2, "lam2")
    return lam1 * float(np.sum(np.abs(w))) + lam2 * float(np.sum(np.abs(np.diff(w))))


def l1_grad(w: ArrayLike, lam: float) -> np.ndarray:
    """Subgradient ``lam * sign(w)`` of :func:`l1` (0 where ``w_i = 0``).

    Shape:
        ``w``: any shape; the result has the same shape.

    Args:
        w: weights.
        lam: strength, ``lam >= 0``.

    Returns:
        An array like ``w``. At ``w_i = 0`` it is 0, the minimum-norm element of the
        subdifferential ``[-lam, lam]``: a subgradient method therefore never makes an
        exact zero, which is why proximal methods are used for sparsity.

    Raises:
        TypeError, ValueError: as for :func:`l1`.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    return (lam * np.sign(w)).astype(w.dtype, copy=False)


def l2_grad(w: ArrayLike, lam: float) -> np.ndarray:
    """Gradient ``lam * w`` of :func:`l2` (``(lam/2) ||w||^2``).

    Shape:
        ``w``: any shape; the result has the same shape.

    Args:
        w: weights.
        lam: strength, ``lam >= 0``.

    Returns:
        An array like ``w``.

    Raises:
        TypeError, ValueError: as for :func:`l1`.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    return (lam * w).astype(w.dtype, copy=False)


def elastic_net_grad(w: ArrayLike, lam: float, l1_ratio: float) -> np.ndarray:
    """Subgradient ``lam * (l1_ratio * sign(w) + (1 - l1_ratio) * w)`` of :func:`elastic_net`.

    The L1 part contributes 0 where ``w_i = 0`` (minimum-norm subgradient).

    Shape:
        ``w``: any shape; the result has the same shape.

    Args:
        w: weights.
        lam: strength, ``lam >= 0``.
        l1_ratio: mix, in ``[0, 1]``.

    Returns:
        An array like ``w``.

    Raises:
        TypeError, ValueError: as for :func:`elastic_net`.
    """
    w = as_float_array(w, "w")
    lam = _lam(lam)
    l1_ratio = check_probability(l1_ratio, "l1_ratio")
    return (lam * (l1_ratio * np.sign(w) + (1.0 - l1_ratio) * w)).astype(w.dtype, copy=False)
