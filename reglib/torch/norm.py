"""Batch, layer, group and instance normalization in PyTorch, from tensor primitives.

Pure functions first (``batch_norm``, ``layer_norm``, ``group_norm``, ``instance_norm``),
then thin modules (``BatchNorm``, ``LayerNorm``, ``GroupNorm``, ``InstanceNorm``). None of
them calls torch's own ``batch_norm``/``layer_norm``/``group_norm``/``instance_norm``; the
tests compare them with those built-ins. The formulas are those of
:mod:`reglib.numpy.norm`: statistics ``mu`` and the *biased* variance ``var`` over a set of
entries, ``xhat = (x - mu) / sqrt(var + eps)`` (``eps`` once, inside the root), then
``weight * xhat + bias``.

Speed: the training-mode normalization is a custom ``torch.autograd.Function`` whose
backward is the closed form ``dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat *
xhat))`` (a few passes over memory instead of the ~15 elementwise nodes autograd would
record). When a graph of the gradient itself is requested (``create_graph=True``:
double backward, Hessian-vector products), the backward falls back on autograd through the
plain formula, so higher derivatives are exact too. ``benchmarks/bench_norm.py`` times
these against torch's fused kernels.

Unlike the NumPy versions, these functions do not scan tensors for NaN (that would cost a
pass over the data and, on a GPU, a synchronization at every call); NaN propagates as in
torch.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from reglib._validation import check_int, check_probability, check_scalar

__all__ = [
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
]


# ----------------------------------------------------------------------------- checks


def _check_tensor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_optional(t: Any, name: str, shape: tuple[int, ...]) -> Tensor | None:
    if t is None:
        return None
    t = _check_tensor(t, name)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(t.shape)}")
    return t


def _check_eps(eps: Any) -> float:
    return check_scalar(eps, "eps", min_value=0.0, include_min=False)


# ----------------------------------------------------------------------------- the kernel
#
# x is viewed two ways (both views of the same contiguous memory):
#   stat view  (A, B, S): statistics over dims ``stat_dims`` of it,
#   affine view (P, Q, R): weight/bias broadcast as ``affine_shape``; dweight and dbias are
#                          sums over ``affine_dims``.
# batch norm: stat view (N, C, S) over dims (0, 2); affine view the same, weight (1, C, 1).
# layer norm: stat view (rows, 1, K) over dim 2;     affine view (rows, K, 1)... see callers.
# group norm: stat view (N, G, C/G*S) over dim 2;    affine view (N, C, S), weight (1, C, 1).


def _plain_normalize(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    stat_shape: tuple[int, ...],
    stat_dims: tuple[int, ...],
    affine_shape: tuple[int, ...],
    param_shape: tuple[int, ...],
) -> tuple[Tensor, Tensor, Tensor]:
    """The same computation through autograd (used for double backward)."""
    xs = x.reshape(stat_shape)
    mean = xs.mean(stat_dims, keepdim=True)
    xc = xs - mean
    var = (xc * xc).mean(stat_dims, keepdim=True)
    out = (xc * torch.rsqrt(var + eps)).reshape(affine_shape)
    if weight is not None:
        out = out * weight.reshape(param_shape)
    if bias is not None:
        out = out + bias.reshape(param_shape)
    return out.reshape(x.shape), mean, var


class _Normalize(torch.autograd.Function):
    """Normalize + affine with a closed-form backward (see the module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        eps: float,
        stat_shape: tuple[int, ...],
        stat_dims: tuple[int, ...],
        affine_shape: tuple[int, ...],
        param_shape: tuple[int, ...],
        affine_dims: tuple[int, ...],
        shared: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        xs = x.reshape(stat_shape)
        mean = xs.mean(stat_dims, keepdim=True)
        xhat = xs - mean
        var = (xhat * xhat).mean(stat_dims, keepdim=True)
        inv_std = torch.rsqrt(var + eps)
        xhat.mul_(inv_std)
        xa = xhat.reshape(affine_shape)
        if weight is not None and bias is not None:
            out = torch.addcmul(bias.reshape(param_shape), xa, weight.reshape(param_shape))
        elif weight is not None:
            out = xa * weight.reshape(param_shape)
        elif bias is not None:
            out = xa + bias.reshape(param_shape)
        else:
            out = xa.clone()
        ctx.save_for_backward(x, weight, bias, xhat, inv_std)
        ctx.cfg = (eps, stat_shape, stat_dims, affine_shape, param_shape, affine_dims, shared)
        ctx.mark_non_differentiable(mean, var)
        return out.reshape(x.shape), mean, var

    @staticmethod
    def backward(ctx: Any, dout: Tensor, _dmean: Any, _dvar: Any):  # type: ignore[override]
        x, weight, bias, xhat, inv_std = ctx.saved_tensors
        eps, stat_shape, stat_dims, affine_shape, param_shape, affine_dims, shared = ctx.cfg
        nones = (None,) * 7
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the plain formula so that the gradient is
            # itself differentiable (double backward)
            inputs = [t for t in (x, weight, bias) if t is not None and t.requires_grad]
            with torch.enable_grad():
                out, _, _ = _plain_normalize(
                    x, weight, bias, eps, stat_shape, stat_dims, affine_shape, param_shape
                )
                grads = iter(torch.autograd.grad(out, inputs, dout, create_graph=True))
            res = [next(grads) if (t is not None and t.requires_grad) else None for t in (x, weight, bias)]
            return (*res, *nones)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        da = dout.reshape(affine_shape)
        xa = xhat.reshape(affine_shape)
        m = math.prod(stat_shape[d] for d in stat_dims)
        dweight = dbias = dx = None
        dsum = dxsum = None
        if need_b or (need_x and shared):
            dsum = da.sum(affine_dims, keepdim=True)
            if need_b:
                dbias = dsum.reshape(bias.shape)
        if need_w or (need_x and shared):
            dxsum = (da * xa).sum(affine_dims, keepdim=True)
            if need_w:
                dweight = dxsum.reshape(weight.shape)
        if need_x:
            w = weight.reshape(param_shape) if weight is not None else None
            if shared:
                # statistics and affine parameters pool the same entries (batch norm):
                # sum(dxhat) = w * sum(dout), sum(dxhat * xhat) = w * sum(dout * xhat)
                scale = inv_std.reshape(param_shape) if w is None else inv_std.reshape(param_shape) * w
                mean_d = dsum / m
                mean_dx = dxsum / m
                dx = torch.addcmul(da - mean_d, xa, mean_dx, value=-1.0).mul_(scale)
            else:
                dxhat = (da * w if w is not None else da).reshape(stat_shape)
                mean_d = dxhat.mean(stat_dims, keepdim=True)
                mean_dx = (dxhat * xhat).mean(stat_dims, keepdim=True)
                dx = torch.addcmul(dxhat - mean_d, xhat, mean_dx, value=-1.0).mul_(inv_std)
            dx = dx.reshape(x.shape)
        return (dx, dweight, dbias, *nones)


# ----------------------------------------------------------------------------- batch norm


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Batch normalization; returns ``(out, new_running_mean, new_running_var)``.

    Training: per channel c, over the ``M = N * spatial`` entries of the channel::

        out = weight_c * (x - mu_c) / sqrt(var_c + eps) + bias_c          (var biased)
        new_running_mean = (1 - momentum) * running_mean + momentum * mu
        new_running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)

    (torch's momentum convention and its unbiased running variance.) Eval: the running
    statistics replace the batch ones, ``eps`` again once inside the root, and the running
    statistics come back unchanged. Nothing is modified in place: the caller stores the
    returned statistics (``BatchNorm`` does). ``running_mean``/``running_var`` may be
    ``None`` in training (then ``None`` is returned for them), as for torch's
    ``track_running_stats=False``. The new statistics carry no gradient.

    Shape:
        x: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; running_mean, running_var, weight,
        bias: ``(C,)``. out: like x.

    Raises:
        ValueError: bad shapes, ``eps <= 0``, ``momentum`` outside [0, 1], or training with
            one value per channel (``M == 1``, a batch of one row).
    """
    x = _check_tensor(x, "x")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have 2, 3 or 4 dimensions (N, C, *), got shape {tuple(x.shape)}")
    c = x.shape[1]
    running_mean = _check_optional(running_mean, "running_mean", (c,))
    running_var = _check_optional(running_var, "running_var", (c,))
    weight = _check_optional(weight, "weight", (c,))
    bias = _check_optional(bias, "bias", (c,))
    momentum = check_probability(momentum, "momentum")
    eps = _check_eps(eps)
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be tensors or both be None")
    param_shape = (1, c, 1)
    n = x.shape[0]
    x3 = (n, c, x.numel() // (n * c) if n * c else 0)
    if not training:
        if running_mean is None:
            raise ValueError("running_mean is None: eval mode (training=False) needs running statistics")
        scale = torch.rsqrt(running_var + eps)
        if weight is not None:
            scale = scale * weight
        shift = -running_mean * scale
        if bias is not None:
            shift = shift + bias
        out = torch.addcmul(shift.reshape(param_shape), x.reshape(x3), scale.reshape(param_shape))
        return out.reshape(x.shape), running_mean, running_var
    m = x3[0] * x3[2]
    if m < 2:
        raise ValueError(
            "x must hold more than one value per channel for batch norm in training "
            f"(batch size times spatial size), got shape {tuple(x.shape)}"
        )
    out, mean, var = _Normalize.apply(
        x, weight, bias, eps, x3, (0, 2), x3, param_shape, (0, 2), True
    )
    if running_mean is None:
        return out, None, None
    with torch.no_grad():
        mean = mean.reshape(c).to(running_mean.dtype)
        var_unbiased = var.reshape(c).to(running_var.dtype) * (m / (m - 1))
        new_mean = running_mean * (1.0 - momentum) + mean * momentum
        new_var = running_var * (1.0 - momentum) + var_unbiased * momentum
    return out, new_mean, new_var


# ----------------------------------------------------------------------------- layer norm


def _as_shape(normalized_shape: Any) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int,)) and not isinstance(normalized_shape, bool):
        shape: Sequence[Any] = (normalized_shape,)
    elif isinstance(normalized_shape, (tuple, list, torch.Size)):
        shape = normalized_shape
    else:
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, got {type(normalized_shape).__name__}"
        )
    if len(shape) == 0:
        raise ValueError("normalized_shape must not be empty, got ()")
    return tuple(check_int(s, "normalized_shape", min_value=1) for s in shape)


def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalization over the trailing ``normalized_shape`` dimensions of ``x``.

    For each leading index (each sample, each token)::

        out = weight * (x - mean) / sqrt(var + eps) + bias

    with the mean and biased variance over the last ``len(normalized_shape)`` dims and
    ``weight``/``bias`` elementwise over them, as ``torch.nn.LayerNorm``. The same in training
    and eval; no statistic crosses samples.

    Shape:
        x: ``(*, *normalized_shape)``; weight, bias: ``normalized_shape``. out: like x.
    """
    x = _check_tensor(x, "x")
    shape = _as_shape(normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise ValueError(
            f"normalized_shape must match the last dimensions of x, got {shape} for x of shape {tuple(x.shape)}"
        )
    weight = _check_optional(weight, "weight", shape)
    bias = _check_optional(bias, "bias", shape)
    eps = _check_eps(eps)
    feat = math.prod(shape)
    rows = x.numel() // feat if feat else 0
    out, _, _ = _Normalize.apply(
        x, weight, bias, eps, (rows, 1, feat), (2,), (rows, 1, feat), (1, 1, feat), (0, 1), False
    )
    return out


# ----------------------------------------------------------------------------- group norm


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalization: per sample, over each group of ``C / num_groups`` channels.

    ``out = weight_c * (x - mean_g) / sqrt(var_g + eps) + bias_c`` with the mean and biased
    variance of the group's channels and positions, as ``torch.nn.GroupNorm``. Groups are
    consecutive channels; ``num_groups = 1`` is layer norm over ``(C, *)`` with a per-channel
    affine map, ``num_groups = C`` is instance norm.

    Shape:
        x: ``(N, C, *)``; weight, bias: ``(C,)``. out: like x.

    Raises:
        ValueError: if ``num_groups`` does not divide C.
    """
    x = _check_tensor(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, C, *) with at least 2 dimensions, got shape {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    g = check_int(num_groups, "num_groups", min_value=1)
    if c % g:
        raise ValueError(f"num_groups must divide the number of channels C = {c}, got {g}")
    weight = _check_optional(weight, "weight", (c,))
    bias = _check_optional(bias, "bias", (c,))
    eps = _check_eps(eps)
    s = x.numel() // (n * c) if n * c else 0
    out, _, _ = _Normalize.apply(
        x, weight, bias, eps, (n, g, (c // g) * s), (2,), (n, c, s), (1, c, 1), (0, 2), False
    )
    return out


def instance_norm(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Instance normalization: each channel of each sample over its spatial positions.

    ``out = weight_c * (x[n, c] - mean) / sqrt(var + eps) + bias_c`` (biased variance), i.e.
    group norm with C groups; equals ``torch.nn.InstanceNorm1d/2d(C, affine=True)`` with its
    default ``track_running_stats=False`` (the same in training and eval).

    Shape:
        x: ``(N, C, L)`` or ``(N, C, H, W)`` (any ``(N, C, *spatial)``); weight, bias: ``(C,)``.

    Raises:
        ValueError: with a single spatial position (the variance would be 0).
    """
    x = _check_tensor(x, "x")
    if x.ndim < 3:
        raise ValueError(
            f"x must have shape (N, C, *spatial) with at least 3 dimensions, got shape {tuple(x.shape)}"
        )
    if math.prod(x.shape[2:]) < 2:
        raise ValueError(f"x must have more than one spatial position for instance norm, got shape {tuple(x.shape)}")
    return group_norm(x, x.shape[1], weight, bias, eps)


# ----------------------------------------------------------------------------- modules


def _factory(device: Any, dtype: Any) -> dict[str, Any]:
    return {"device": device, "dtype": dtype}


class BatchNorm(nn.Module):
    """Batch norm for ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` inputs (torch's
    ``BatchNorm1d`` and ``BatchNorm2d`` in one module; the input's ndim decides).

    Parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers
    ``running_mean`` (zeros) and ``running_var`` (ones), replaced after each training forward
    by the statistics :func:`batch_norm` returns. The state-dict keys match torch's modules
    (which add ``num_batches_tracked``, not kept here).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "num_features", min_value=1)
        self.eps = _check_eps(eps)
        self.momentum = check_probability(momentum, "momentum")
        kw = _factory(device, dtype)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **kw))
            self.bias = nn.Parameter(torch.zeros(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features, **kw))
        self.register_buffer("running_var", torch.ones(num_features, **kw))

    def forward(self, x: Tensor) -> Tensor:
        out, self.running_mean, self.running_var = batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps
        )
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


class LayerNorm(nn.Module):
    """Layer norm over the trailing ``normalized_shape`` dims (see :func:`layer_norm`)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = _check_eps(eps)
        kw = _factory(device, dtype)
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, **kw))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class GroupNorm(nn.Module):
    """Group norm with ``num_groups`` groups of consecutive channels (see :func:`group_norm`)."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_groups = check_int(num_groups, "num_groups", min_value=1)
        self.num_channels = check_int(num_channels, "num_channels", min_value=1)
        if num_channels % num_groups:
            raise ValueError(f"num_groups must divide num_channels = {num_channels}, got {num_groups}")
        self.eps = _check_eps(eps)
        kw = _factory(device, dtype)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, **kw))
            self.bias = nn.Parameter(torch.zeros(num_channels, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.weight is not None}"


class InstanceNorm(GroupNorm):
    """Instance norm with a per-channel affine map: ``GroupNorm(C, C)`` (see
    :func:`instance_norm`); like ``torch.nn.InstanceNorm1d/2d(C, affine=True)``."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, affine: bool = True, *, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(num_features, num_features, eps, affine, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return instance_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.weight is not None}"
