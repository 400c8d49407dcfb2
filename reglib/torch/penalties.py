"""Differentiable weight penalties for PyTorch, with the scalings of :mod:`reglib.numpy.penalties`.

=====================  ==============================================================
function               value (a 0-d tensor)
=====================  ==============================================================
``l1(w, lam)``         ``lam * sum_i |w_i|``
``l2(w, lam)``         ``(lam / 2) * ||w||_2^2``
``elastic_net``        ``lam * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2)``
``group_lasso``        ``lam * sum_g sqrt(|g|) * ||w_g||_2``
``nuclear(W, lam)``    ``lam * sum_k sigma_k(W)``
=====================  ==============================================================

Use them through :func:`parameter_penalty` as the ``penalty=`` of
:func:`reglib.torch.training.fit`::

    penalty = lambda m: parameter_penalty(m, lambda w: l2(w, 1e-3))

Note that ``l2(w, lam)`` added to the loss is *weight decay* ``lam`` for plain SGD
(gradient ``lam * w``), but not for Adam, whose per-coordinate scaling also rescales the
penalty's gradient; ``torch.optim.AdamW(weight_decay=...)`` decouples the two.

Also here: :func:`apply_max_norm_` (max-norm constraint after each optimizer step) and
:func:`soft_threshold` (the proximal step of proximal SGD).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from reglib._validation import check_groups, check_ndim, check_probability, check_scalar
from reglib.torch._checks import check_float_tensor

__all__ = [
    "l1",
    "l2",
    "elastic_net",
    "group_lasso",
    "nuclear",
    "parameter_penalty",
    "apply_max_norm_",
    "soft_threshold",
]


def _lam(lam: float, name: str = "lam") -> float:
    return check_scalar(lam, name, min_value=0.0)


def l1(w: Tensor, lam: float) -> Tensor:
    """L1 penalty ``lam * sum_i |w_i|`` (a 0-d tensor; autograd gives ``lam * sign(w)``).

    Shape:
        ``w``: any shape.

    Args:
        w: a floating-point tensor.
        lam: strength, ``>= 0``.

    Returns:
        A 0-d tensor on the device and dtype of ``w``.

    Raises:
        TypeError: if ``w`` is not a floating tensor or ``lam`` not a real number.
        ValueError: if ``lam < 0`` or NaN/inf appear.
    """
    w = check_float_tensor(w, "w", finite=True)
    return _lam(lam) * w.abs().sum()


def l2(w: Tensor, lam: float) -> Tensor:
    """L2 penalty ``(lam / 2) * ||w||_2^2`` (gradient ``lam * w``).

    Shape:
        ``w``: any shape.

    Args:
        w: a floating-point tensor.
        lam: strength, ``>= 0``.

    Returns:
        A 0-d tensor.

    Raises:
        TypeError, ValueError: as for :func:`l1`.
    """
    w = check_float_tensor(w, "w", finite=True)
    return 0.5 * _lam(lam) * w.pow(2).sum()


def elastic_net(w: Tensor, lam: float, l1_ratio: float) -> Tensor:
    """Elastic net ``lam * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2)`` (scikit-learn's).

    Shape:
        ``w``: any shape.

    Args:
        w: a floating-point tensor.
        lam: strength, ``>= 0``.
        l1_ratio: L1 fraction in ``[0, 1]``.

    Returns:
        A 0-d tensor.

    Raises:
        TypeError, ValueError: as for :func:`l1`, and for ``l1_ratio`` outside ``[0, 1]``.
    """
    w = check_float_tensor(w, "w", finite=True)
    lam = _lam(lam)
    a = check_probability(l1_ratio, "l1_ratio")
    return lam * (a * w.abs().sum() + 0.5 * (1.0 - a) * w.pow(2).sum())


def group_lasso(w: Tensor, groups: Sequence[object], lam: float) -> Tensor:
    """Group lasso ``lam * sum_g sqrt(|g|) * ||w_g||_2``; indices in no group are free.

    The gradient of ``||w_g||`` at ``w_g = 0`` is taken as 0 (torch's convention for
    ``vector_norm``), the minimum-norm subgradient.

    Shape:
        ``w``: ``(d,)``; ``groups``: list of disjoint, non-empty 1-d integer index arrays
        (lists, numpy arrays or tensors) into ``range(d)``.

    Args:
        w: a 1-d floating-point tensor.
        groups: the groups.
        lam: strength, ``>= 0``.

    Returns:
        A 0-d tensor.

    Raises:
        TypeError, ValueError: for a bad ``w`` or ``lam``, or bad groups (as
            :func:`reglib.numpy.penalties.group_lasso`).
    """
    w = check_float_tensor(w, "w", finite=True)
    check_ndim(w, "w", 1)
    lam = _lam(lam)
    if not isinstance(groups, (list, tuple)):
        raise TypeError(f"groups must be a list of index arrays, got {type(groups).__name__}")
    as_np = [g.detach().cpu().numpy() if isinstance(g, Tensor) else g for g in groups]
    checked = check_groups(as_np, w.shape[0])
    total = w.new_zeros(())
    for g in checked:
        idx = torch.as_tensor(g, dtype=torch.long, device=w.device)
        total = total + math.sqrt(g.size) * torch.linalg.vector_norm(w[idx])
    return lam * total


def nuclear(W: Tensor, lam: float) -> Tensor:
    """Nuclear norm ``lam * sum_k sigma_k(W)`` (sum of singular values).

    Its gradient is ``lam * U V^T`` (reduced SVD) where the singular values are distinct
    and nonzero.

    Shape:
        ``W``: ``(m, n)``.

    Args:
        W: a 2-d floating-point tensor.
        lam: strength, ``>= 0``.

    Returns:
        A 0-d tensor.

    Raises:
        TypeError, ValueError: for a bad ``W`` (not 2-d) or ``lam``.
    """
    W = check_float_tensor(W, "W", finite=True)
    check_ndim(W, "W", 2)
    return _lam(lam) * torch.linalg.svdvals(W).sum()


def parameter_penalty(
    model: nn.Module, penalty_fn: Callable[[Tensor], Tensor], *, include_bias: bool = False
) -> Tensor:
    """Sum of ``penalty_fn(p)`` over the model's trainable weight tensors.

    By default only parameters with at least 2 dimensions are penalized (weight matrices
    and convolution kernels); 1-d parameters (biases, normalization scales and shifts)
    are skipped, as is usual, unless ``include_bias=True``. Parameters with
    ``requires_grad=False`` are skipped.

    Example, as the ``penalty=`` of :func:`reglib.torch.training.fit`::

        penalty = lambda m: parameter_penalty(m, lambda w: l2(w, 1e-3))

    Args:
        model: the network.
        penalty_fn: ``tensor -> 0-d tensor``, e.g. ``lambda w: l1(w, 1e-4)``.
        include_bias: also penalize 1-d (and 0-d) parameters.

    Returns:
        A 0-d tensor (0 if nothing is penalized), differentiable in the parameters.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``penalty_fn`` is not callable.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(penalty_fn):
        raise TypeError(f"penalty_fn must be callable, got {type(penalty_fn).__name__}")
    if not isinstance(include_bias, (bool, np.bool_)):
        raise TypeError(f"include_bias must be a bool, got {type(include_bias).__name__} {include_bias!r}")
    total: Tensor | None = None
    for p in model.parameters():
        if not p.requires_grad or (p.ndim < 2 and not include_bias):
            continue
        term = penalty_fn(p)
        total = term if total is None else total + term
    if total is None:
        first = next(model.parameters(), None)
        return torch.zeros((), device=first.device if first is not None else None)
    return total


@torch.no_grad()
def apply_max_norm_(module: nn.Module, max_norm: float, dim: int = 1) -> nn.Module:
    """Max-norm constraint, in place: rescale every ``nn.Linear`` weight row with a larger norm.

        w_j  ->  w_j * min(1, max_norm / ||w_j||_2)

    ``dim`` is the dimension the norm is taken over. An ``nn.Linear`` weight has shape
    ``(out_features, in_features)``, so with the default ``dim=1`` each row ``w_j`` is the
    vector of incoming weights of unit ``j`` (Srebro et al. 2005; Srivastava et al. 2014
    use it with dropout). Call it after every ``optimizer.step()``. Biases are not touched.
    Same operation as :func:`reglib.numpy.prox.project_max_norm` with ``axis=dim``.

    Args:
        module: a module; every ``nn.Linear`` in ``module.modules()`` is projected.
        max_norm: the radius, ``> 0``.
        dim: 1 (rows, the default) or 0 (columns).

    Returns:
        ``module`` (modified in place).

    Raises:
        TypeError: if ``module`` is not an ``nn.Module``.
        ValueError: if ``max_norm <= 0`` or ``dim`` is not 0, 1, -1 or -2.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    max_norm = check_scalar(max_norm, "max_norm", min_value=0.0, include_min=False)
    if isinstance(dim, bool) or dim not in (0, 1, -1, -2):
        raise ValueError(f"dim must be 0 or 1 (a dimension of a Linear weight), got {dim!r}")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            norms = torch.linalg.vector_norm(m.weight, dim=dim, keepdim=True)
            scale = torch.clamp(max_norm / norms, max=1.0)  # a zero row gives inf -> 1
            m.weight.mul_(scale)
    return module


def soft_threshold(v: Tensor, thresh: float | Tensor) -> Tensor:
    """Soft-thresholding ``sign(v) * max(|v| - thresh, 0)`` on tensors (the prox of ``thresh * ||.||_1``).

    For proximal SGD on ``loss + lam * ||w||_1``: after ``optimizer.step()`` with learning
    rate ``lr``, set ``w.data = soft_threshold(w.data, lr * lam)`` (under ``no_grad``).
    Entries with ``|v_i| <= thresh`` become exactly 0.

    Shape:
        ``v``: any shape; ``thresh``: a number or a tensor broadcastable to ``v.shape``.
        The result has the shape of ``v``.

    Args:
        v: a floating-point tensor.
        thresh: threshold(s), ``>= 0``.

    Returns:
        A new tensor (differentiable in ``v``).

    Raises:
        TypeError, ValueError: for a bad ``v``, a negative or non-finite threshold, or a
            tensor threshold that does not broadcast to ``v.shape``.
    """
    v = check_float_tensor(v, "v", finite=True)
    if isinstance(thresh, Tensor) and thresh.ndim > 0:
        check_float_tensor(thresh, "thresh", finite=True)
        if bool((thresh < 0).any()):
            raise ValueError(f"thresh must be >= 0 everywhere, got minimum {thresh.min().item():g}")
        try:
            shape = torch.broadcast_shapes(thresh.shape, v.shape)
        except RuntimeError:
            shape = None
        if shape != v.shape:
            raise ValueError(f"thresh must broadcast to the shape of v {tuple(v.shape)}, got shape {tuple(thresh.shape)}")
        t: float | Tensor = thresh.to(dtype=v.dtype, device=v.device)
    else:
        t = check_scalar(thresh, "thresh", min_value=0.0)
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0.0)
