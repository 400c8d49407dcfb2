"""Normalization layers from scratch: batch, layer, group and instance norm.

Every layer is a pair of pure functions, ``*_forward(x, ...) -> (out, cache)`` and
``*_backward(dout, cache) -> (dx, dgamma, dbeta)``. Nothing is mutated: batch norm *returns*
its updated running statistics instead of changing the arrays it was given.

All four layers share one recipe. Pick a set of entries ``S`` of ``x`` (which entries depends
on the layer), compute their mean and *biased* variance

    mu = mean_S(x),    var = mean_S((x - mu)^2),

normalize with ``eps`` added once, inside the square root,

    xhat = (x - mu) / sqrt(var + eps),

and apply a learned per-feature affine map ``out = gamma * xhat + beta``. With ``M = |S|``
the backward pass has the compact closed form (``dxhat = dout * gamma``)

    dx = (1 / sqrt(var + eps)) * (dxhat - mean_S(dxhat) - xhat * mean_S(dxhat * xhat)).

Which entries are pooled:

=================  =========================================  ===================
layer              statistics over                            gamma, beta shape
=================  =========================================  ===================
batch norm         ``N`` (and every spatial position), per C  ``(C,)``
layer norm         the last ``normalized_ndim`` axes, per row  ``x.shape[-k:]``
group norm         channels of one group and positions, per    ``(C,)``
                   sample and group
instance norm      spatial positions, per sample and channel  ``(C,)``
=================  =========================================  ===================

The conventions follow PyTorch (``torch.nn.BatchNorm1d/2d``, ``LayerNorm``, ``GroupNorm``,
``InstanceNorm*d``), which the tests use as the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reglib._validation import as_float_array, check_int, check_probability, check_scalar

__all__ = [
    "BatchNormCache",
    "NormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "layernorm_forward",
    "layernorm_backward",
    "groupnorm_forward",
    "groupnorm_backward",
    "instancenorm_forward",
    "instancenorm_backward",
]


# ----------------------------------------------------------------------------- caches


@dataclass(frozen=True)
class BatchNormCache:
    """What :func:`batchnorm_backward` needs from the forward pass.

    ``xhat`` is the normalized input (shape of ``x``), ``inv_std`` is ``1/sqrt(var + eps)``
    with the batch variance in training and the running variance in eval (shape ``(C,)``),
    ``gamma`` the scale, and ``training`` says which of the two formulas was used.
    """

    xhat: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray
    training: bool


@dataclass(frozen=True)
class NormCache:
    """What the layer/group/instance-norm backward passes need.

    ``xhat`` has the shape of ``x``; ``inv_std`` has the *statistics* shape: ``(..., 1)``
    for layer norm (one value per normalized row) and ``(N, G, 1)`` for group norm; ``kind`` is
    ``"layer"`` or ``"group"`` and ``num_groups`` is ``None`` for layer norm.
    """

    xhat: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray
    kind: str
    normalized_ndim: int
    num_groups: int | None


# ----------------------------------------------------------------------------- helpers


def _check_eps(eps: Any) -> float:
    return check_scalar(eps, "eps", min_value=0.0, include_min=False)


def _check_param(arr: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    out = as_float_array(arr, name)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {out.shape}")
    return out


def _channel_view(ndim: int) -> tuple[int, ...]:
    """Broadcast shape of a per-channel vector against an (N, C, *) array."""
    return (1, -1) + (1,) * (ndim - 2)


def _check_dout(dout: Any, xhat: np.ndarray) -> np.ndarray:
    d = as_float_array(dout, "dout")
    if d.shape != xhat.shape:
        raise ValueError(f"dout must have the shape of x, {xhat.shape}, got shape {d.shape}")
    return d


def _normalize_backward(dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes) -> np.ndarray:
    """dx from dxhat for xhat = (x - mean) * inv_std with statistics over ``axes``."""
    mean_d = dxhat.mean(axis=axes, keepdims=True)
    mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_d - xhat * mean_dx)


# ----------------------------------------------------------------------------- batch norm


def batchnorm_forward(
    x: Any,
    gamma: Any,
    beta: Any,
    *,
    running_mean: Any,
    running_var: Any,
    momentum: float = 0.1,
    eps: float = 1e-5,
    training: bool = True,
) -> tuple[np.ndarray, BatchNormCache, np.ndarray, np.ndarray]:
    """Batch normalization (Ioffe & Szegedy, 2015), as ``torch.nn.BatchNorm1d/2d``.

    Training (statistics of the batch, per channel c, over the ``M = N * spatial`` entries of
    that channel)::

        mu_c = mean(x[:, c]),   var_c = mean((x[:, c] - mu_c)^2)          (biased)
        out  = gamma_c * (x - mu_c) / sqrt(var_c + eps) + beta_c
        new_running_mean = (1 - momentum) * running_mean + momentum * mu
        new_running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)

    The output uses the *biased* variance, the running variance is updated with the
    *unbiased* one (factor ``M/(M-1)``), as torch does. ``momentum`` is the weight of the new
    batch (torch's convention, default 0.1), not of the old average (Keras/seed 003 use 0.9
    the other way round).

    Eval (``training=False``): ``out = gamma * (x - running_mean) / sqrt(running_var + eps) +
    beta``, with ``eps`` added once, inside the square root, exactly as in training (seed 003
    adds it a second time); the running statistics are returned unchanged.

    Shape:
        x: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``. gamma, beta, running_mean,
        running_var: ``(C,)``. out: like x. The returned running statistics: ``(C,)``.

    Returns:
        ``(out, cache, new_running_mean, new_running_var)``; new arrays, the inputs are not
        modified.

    Raises:
        ValueError: bad shapes, NaN, ``eps <= 0``, ``momentum`` outside [0, 1], negative
            ``running_var``, or training with a single value per channel (``M == 1``, e.g.
            a batch of one row), where the variance is undefined.
    """
    x = as_float_array(x, "x", ndim=(2, 3, 4))
    c = x.shape[1]
    gamma = _check_param(gamma, "gamma", (c,))
    beta = _check_param(beta, "beta", (c,))
    running_mean = _check_param(running_mean, "running_mean", (c,))
    running_var = _check_param(running_var, "running_var", (c,))
    if np.any(running_var < 0):
        raise ValueError(f"running_var must be >= 0, got min {running_var.min():g}")
    momentum = check_probability(momentum, "momentum")
    eps = _check_eps(eps)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    axes = (0,) + tuple(range(2, x.ndim))
    view = _channel_view(x.ndim)
    if training:
        m = x.size // c
        if m < 2:
            raise ValueError(
                "x must hold more than one value per channel for batch norm in training "
                f"(batch size times spatial size), got shape {x.shape}"
            )
        mu = x.mean(axis=axes)
        xc = x - mu.reshape(view)
        var = np.mean(xc * xc, axis=axes)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = xc * inv_std.reshape(view)
        new_mean = (1.0 - momentum) * running_mean + momentum * mu
        new_var = (1.0 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        xhat = (x - running_mean.reshape(view)) * inv_std.reshape(view)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = gamma.reshape(view) * xhat + beta.reshape(view)
    cache = BatchNormCache(xhat=xhat, inv_std=inv_std, gamma=gamma, training=bool(training))
    return out, cache, new_mean, new_var


def batchnorm_backward(dout: Any, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch norm, in the compact closed form.

    With ``dxhat = gamma * dout`` and sums over the ``M`` entries of each channel::

        dgamma = sum(dout * xhat),   dbeta = sum(dout)
        dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))   (training)
        dx     = inv_std * dxhat                                                      (eval)

    In eval the running statistics are constants, so the layer is a per-channel affine map.

    Shape:
        dout: like x. Returns dx like x, dgamma and dbeta ``(C,)``.
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache must be the BatchNormCache from batchnorm_forward, got {type(cache).__name__}")
    xhat = cache.xhat
    dout = _check_dout(dout, xhat)
    axes = (0,) + tuple(range(2, xhat.ndim))
    view = _channel_view(xhat.ndim)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * cache.gamma.reshape(view)
    inv_std = cache.inv_std.reshape(view)
    if cache.training:
        dx = _normalize_backward(dxhat, xhat, inv_std, axes)
    else:
        dx = dxhat * inv_std
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- layer norm


def layernorm_forward(
    x: Any, gamma: Any, beta: Any, *, eps: float = 1e-5, normalized_ndim: int = 1
) -> tuple[np.ndarray, NormCache]:
    """Layer normalization (Ba et al., 2016), as ``torch.nn.LayerNorm(x.shape[-k:])``.

    Each sample is normalized over its last ``k = normalized_ndim`` axes (torch's
    ``normalized_shape``), independently of the rest of the batch::

        mu = mean(x[i]),  var = mean((x[i] - mu)^2)    (biased, over the last k axes)
        out = gamma * (x - mu) / sqrt(var + eps) + beta    (gamma, beta elementwise)

    Adding a constant to a row leaves the output unchanged exactly; scaling a row by ``a > 0``
    changes it only through ``eps`` (``var + eps`` becomes ``a^2 var + eps``).

    Shape:
        x: ``(*, D_1, ..., D_k)`` with ``k = normalized_ndim <= x.ndim``. gamma, beta:
        ``(D_1, ..., D_k)``. out: like x.
    """
    x = as_float_array(x, "x")
    k = check_int(normalized_ndim, "normalized_ndim", min_value=1)
    if k > x.ndim:
        raise ValueError(f"normalized_ndim must be <= x.ndim = {x.ndim}, got {k}")
    shape = x.shape[x.ndim - k :]
    gamma = _check_param(gamma, "gamma", shape)
    beta = _check_param(beta, "beta", shape)
    eps = _check_eps(eps)
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = xc * inv_std
    out = gamma * xhat + beta
    return out, NormCache(xhat, inv_std, gamma, "layer", k, None)


def layernorm_backward(dout: Any, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of layer norm: the closed form of the module docstring, per row.

    Shape:
        dout: like x. Returns dx like x, dgamma and dbeta like gamma.
    """
    if not isinstance(cache, NormCache) or cache.kind != "layer":
        raise TypeError(f"cache must be the NormCache from layernorm_forward, got {type(cache).__name__}")
    xhat = cache.xhat
    dout = _check_dout(dout, xhat)
    k = cache.normalized_ndim
    lead = tuple(range(xhat.ndim - k))
    stat_axes = tuple(range(xhat.ndim - k, xhat.ndim))
    dbeta = dout.sum(axis=lead)
    dgamma = (dout * xhat).sum(axis=lead)
    dx = _normalize_backward(dout * cache.gamma, xhat, cache.inv_std, stat_axes)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- group norm


def groupnorm_forward(
    x: Any, gamma: Any, beta: Any, num_groups: int, *, eps: float = 1e-5
) -> tuple[np.ndarray, NormCache]:
    """Group normalization (Wu & He, 2018), as ``torch.nn.GroupNorm(num_groups, C)``.

    The C channels are split into ``G = num_groups`` consecutive groups of ``C/G``; each
    sample is normalized per group, over the group's channels and all spatial positions::

        x_g = x[n, g*C/G:(g+1)*C/G, ...]
        out = gamma_c * (x - mean(x_g)) / sqrt(var(x_g) + eps) + beta_c     (biased var)

    ``G = 1`` pools all channels of a sample (layer norm over (C, *), per-channel affine);
    ``G = C`` is instance norm. No statistic crosses samples, so the output of a sample
    does not depend on the batch.

    Shape:
        x: ``(N, C, *)``. gamma, beta: ``(C,)``. out: like x.

    Raises:
        ValueError: if ``num_groups`` does not divide C (or is < 1), plus the usual checks.
    """
    x = as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, C, *) with at least 2 dimension(s), got shape {x.shape}")
    n, c = x.shape[0], x.shape[1]
    g = check_int(num_groups, "num_groups", min_value=1)
    if c % g:
        raise ValueError(f"num_groups must divide the number of channels C = {c}, got {g}")
    gamma = _check_param(gamma, "gamma", (c,))
    beta = _check_param(beta, "beta", (c,))
    eps = _check_eps(eps)
    xg = x.reshape(n, g, -1)
    mu = xg.mean(axis=2, keepdims=True)
    xc = xg - mu
    var = np.mean(xc * xc, axis=2, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (xc * inv_std).reshape(x.shape)
    view = _channel_view(x.ndim)
    out = gamma.reshape(view) * xhat + beta.reshape(view)
    return out, NormCache(xhat, inv_std, gamma, "group", 0, g)


def groupnorm_backward(dout: Any, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of group norm: the closed form, with statistics per (sample, group).

    Shape:
        dout: like x. Returns dx like x, dgamma and dbeta ``(C,)``.
    """
    if not isinstance(cache, NormCache) or cache.kind != "group":
        raise TypeError(
            f"cache must be the NormCache from groupnorm_forward or instancenorm_forward, "
            f"got {type(cache).__name__}"
        )
    xhat = cache.xhat
    dout = _check_dout(dout, xhat)
    n, g = xhat.shape[0], cache.num_groups
    axes = (0,) + tuple(range(2, xhat.ndim))
    view = _channel_view(xhat.ndim)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = (dout * cache.gamma.reshape(view)).reshape(n, g, -1)
    dx = _normalize_backward(dxhat, xhat.reshape(n, g, -1), cache.inv_std, 2)
    return dx.reshape(xhat.shape), dgamma, dbeta


# ----------------------------------------------------------------------------- instance norm


def instancenorm_forward(
    x: Any, gamma: Any, beta: Any, *, eps: float = 1e-5
) -> tuple[np.ndarray, NormCache]:
    """Instance normalization (Ulyanov et al., 2016) with a per-channel affine map.

    Each channel of each sample is normalized over its spatial positions::

        out = gamma_c * (x[n, c] - mean(x[n, c])) / sqrt(var(x[n, c]) + eps) + beta_c

    This is group norm with ``num_groups = C``, and equals
    ``torch.nn.InstanceNorm1d/2d(C, affine=True)`` (which, by default, keeps no running
    statistics and uses the instance statistics in eval as well).

    Shape:
        x: ``(N, C, L)`` or ``(N, C, H, W)`` (any ``(N, C, *)`` with at least one spatial
        axis). gamma, beta: ``(C,)``. out: like x.

    Raises:
        ValueError: if a channel has a single spatial position (its variance is 0).
    """
    x = as_float_array(x, "x")
    if x.ndim < 3:
        raise ValueError(f"x must have shape (N, C, *spatial) with at least 3 dimension(s), got shape {x.shape}")
    if int(np.prod(x.shape[2:])) < 2:
        raise ValueError(f"x must have more than one spatial position for instance norm, got shape {x.shape}")
    return groupnorm_forward(x, gamma, beta, x.shape[1], eps=eps)


def instancenorm_backward(dout: Any, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of instance norm (those of group norm with C groups)."""
    return groupnorm_backward(dout, cache)
