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
xhat))``, with elementwise steps fused (``addcmul``) and buffers reused, instead of the
~15 elementwise nodes autograd would record. When a graph of the gradient itself is
requested (``create_graph=True``: double backward, Hessian-vector products), the backward
falls back on autograd through the plain formula, so higher derivatives are exact too.
``benchmarks/bench_norm.py`` times these against torch's fused single-kernel versions: on
CPU, forward + backward, they take about 1.7x (batch norm on images) to 3.5x (layer norm
on (256, 512)) the CPU time of torch's (measured on a busy 2-core machine; a dozen small
tensor ops per call cannot match one fused kernel).

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


# ----------------------------------------------------------------------------- the kernels
#
# Three autograd Functions do the training-mode work, each with a closed-form backward
# written to sweep memory and launch ops as few times as possible (elementwise ops fused
# with addcmul, buffers reused in place, matrix-vector products for weighted sums):
#
# * _BatchNormTrain: x viewed as (N, C, S) (S = spatial size, 1 for (N, C) input); statistics
#   per channel over (N, S); weight/bias per channel.
# * _RowNorm (layer norm): x viewed as (rows, K), K = prod(normalized_shape); statistics per
#   row; weight/bias of shape (K,).
# * _GroupwiseNorm: x viewed as (A, G, J, S); statistics per (a, g) over (J, S); weight/bias
#   of shape (G, J), broadcast over A and S: group norm is (N, G, C/G, S), instance norm
#   (N, C, 1, S).
#
# Both save the centred input xc = x - mean and inv_std = 1/sqrt(var + eps) (so that
# xhat = xc * inv_std). When the graph of the gradient is requested (create_graph=True), the
# backward differentiates the plain formula (_plain) through autograd instead.


def _plain(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    view: tuple[int, ...],
    stat_dims: tuple[int, ...],
    param_view: tuple[int, ...],
) -> Tensor:
    """The normalization through autograd (for double backward)."""
    xv = x.reshape(view)
    mean = xv.mean(stat_dims, keepdim=True)
    xc = xv - mean
    var = (xc * xc).mean(stat_dims, keepdim=True)
    out = xc * torch.rsqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(param_view)
    if bias is not None:
        out = out + bias.reshape(param_view)
    return out.reshape(x.shape)


def _double_backward(
    saved: tuple[Tensor | None, Tensor | None, Tensor | None],
    dout: Tensor,
    eps: float,
    view: tuple[int, ...],
    stat_dims: tuple[int, ...],
    param_view: tuple[int, ...],
) -> list[Tensor | None]:
    inputs = [t for t in saved if t is not None and t.requires_grad]
    with torch.enable_grad():
        out = _plain(*saved, eps, view, stat_dims, param_view)
        grads = iter(torch.autograd.grad(out, inputs, dout, create_graph=True))
    return [next(grads) if (t is not None and t.requires_grad) else None for t in saved]


def _sum_ns(t: Tensor) -> Tensor:
    """Sum of an (N, C, S) tensor over N and S -> (C,)."""
    if t.shape[2] == 1:
        return t.sum(0).reshape(t.shape[1])
    return t.sum(2).sum(0)


class _BatchNormTrain(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float):  # type: ignore[override]
        n, c = x.shape[0], x.shape[1]
        xv = x.reshape(n, c, -1)
        m = n * xv.shape[2]
        mean = _sum_ns(xv) / m
        xc = xv - mean.view(1, c, 1)
        out = torch.mul(xc, xc)  # holds the squares first, then the output
        var = _sum_ns(out) / m
        inv_std = torch.rsqrt(var + eps)
        scale = inv_std if weight is None else inv_std * weight
        if bias is None:
            torch.mul(xc, scale.view(1, c, 1), out=out)
        else:
            torch.addcmul(bias.view(1, c, 1), xc, scale.view(1, c, 1), out=out)
        ctx.save_for_backward(x, weight, bias, xc, inv_std)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        return out.view(x.shape), mean, var

    @staticmethod
    def backward(ctx: Any, dout: Tensor, _dmean: Any, _dvar: Any):  # type: ignore[override]
        x, weight, bias, xc, inv_std = ctx.saved_tensors
        n, c, s = xc.shape
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (n, c, s), (0, 2), (1, c, 1))
            return (*grads, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        m = n * s
        da = dout.reshape(n, c, s)
        dsum = _sum_ns(da)  # sum of dout per channel
        tmp = da * xc
        dcsum = _sum_ns(tmp)  # sum of dout * xc per channel; times inv_std: sum of dout * xhat
        dx = None
        if need_x:
            # dx = scale * (dout - dsum/m - xhat * sum(dout * xhat)/m), scale = weight * inv_std
            scale = inv_std if weight is None else inv_std * weight
            shift = (-scale * dsum / m).view(1, c, 1)
            coef = (scale * inv_std * inv_std * dcsum / m).view(1, c, 1)
            dx = torch.addcmul(shift, xc, coef, value=-1.0, out=tmp).addcmul_(da, scale.view(1, c, 1))
            dx = dx.view(x.shape)
        dweight = inv_std * dcsum if need_w else None
        dbias = dsum if need_b else None
        return dx, dweight, dbias, None


class _RowNorm(torch.autograd.Function):
    """Layer norm on the (rows, K) view, weight and bias of shape (K,)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, rows: int, k: int
    ) -> Tensor:
        x2 = x.reshape(rows, k)
        xc = x2 - x2.mean(1, keepdim=True)
        inv_std = torch.linalg.vector_norm(xc, dim=1, keepdim=True).square_().div_(k).add_(eps).rsqrt_()
        out = xc * inv_std
        if weight is not None and bias is not None:
            torch.addcmul(bias.reshape(k), out, weight.reshape(k), out=out)
        elif weight is not None:
            out.mul_(weight.reshape(k))
        elif bias is not None:
            out.add_(bias.reshape(k))
        ctx.save_for_backward(x, weight, bias, xc, inv_std)
        ctx.eps = eps
        return out.view(x.shape)

    @staticmethod
    def backward(ctx: Any, dout: Tensor):  # type: ignore[override]
        x, weight, bias, xc, inv_std = ctx.saved_tensors
        rows, k = xc.shape
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (rows, k), (1,), (k,))
            return (*grads, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        da = dout.reshape(rows, k)
        w = weight.reshape(k) if weight is not None else None
        dbias = da.sum(0).reshape(bias.shape) if need_b else None
        dweight = dx = None
        if need_w or need_x:
            tmp = da * xc
            if need_w:
                dweight = (inv_std.view(rows) @ tmp).reshape(weight.shape)  # sum_rows dout * xhat
            if need_x:
                # dx = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w,
                # xhat = xc * inv: the coefficient of xc in the bracket is inv^2 * mean(dxhat * xc)
                if w is None:
                    mean_d, mean_dx = da.sum(1, keepdim=True), tmp.sum(1, keepdim=True)
                else:
                    mean_d, mean_dx = (da @ w).unsqueeze(1), (tmp @ w).unsqueeze(1)
                mean_d.div_(-k)
                mean_dx.mul_(inv_std * inv_std).div_(k)
                dx = torch.addcmul(mean_d, xc, mean_dx, value=-1.0, out=tmp)
                dx = dx.add_(da) if w is None else dx.addcmul_(da, w)
                dx = dx.mul_(inv_std).view(x.shape)
        return dx, dweight, dbias, None, None, None


def _rowdot(t: Tensor, w: Tensor) -> Tensor:
    """sum_j t[a, g, j] * w[g, j] -> (A, G); a matrix-vector product when G = 1."""
    if t.shape[1] == 1:
        return (t.reshape(t.shape[0], -1) @ w.reshape(-1)).unsqueeze(1)
    return (t * w).sum(-1)


def _colsum_weighted(t: Tensor, c: Tensor) -> Tensor:
    """sum_a t[a, g, j] * c[a, g] -> (G, J); a vector-matrix product when G = 1."""
    if t.shape[1] == 1:
        return (c.reshape(-1) @ t.reshape(t.shape[0], -1)).unsqueeze(0)
    return (t * c.unsqueeze(-1)).sum(0)


class _GroupwiseNorm(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, view: tuple[int, int, int, int]
    ):
        a, g, j, s = view
        flat = x.reshape(a, g, j * s)
        mean = flat.mean(-1, keepdim=True)
        xc = (flat - mean).view(view)
        sq = torch.linalg.vector_norm(xc.view(a, g, j * s), dim=-1)
        inv_std = torch.rsqrt(sq * sq / (j * s) + eps).view(a, g, 1, 1)
        pv = (1, g, j, 1)
        scale = inv_std if weight is None else inv_std * weight.view(pv)  # (A, G, J, 1)
        out = torch.mul(xc, scale) if bias is None else torch.addcmul(bias.view(pv), xc, scale)
        ctx.save_for_backward(x, weight, bias, xc, inv_std)
        ctx.eps = eps
        return out.view(x.shape)

    @staticmethod
    def backward(ctx: Any, dout: Tensor):  # type: ignore[override]
        x, weight, bias, xc, inv_std = ctx.saved_tensors
        a, g, j, s = xc.shape
        pv = (1, g, j, 1)
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (a, g, j, s), (2, 3), pv)
            return (*grads, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        da = dout.reshape(a, g, j, s)
        inv = inv_std.view(a, g)
        dsum = da.sum(3) if s > 1 else da.view(a, g, j)  # (A, G, J): sums over S
        dbias = dsum.sum(0).reshape(bias.shape) if need_b else None
        dweight = dx = None
        if need_w or need_x:
            tmp = da * xc
            tsum = tmp.sum(3) if s > 1 else tmp.view(a, g, j)  # sums over S of dout * xc
            if need_w:
                dweight = _colsum_weighted(tsum, inv).reshape(weight.shape)
            if need_x:
                # dx = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * weight
                msize = j * s
                if weight is None:
                    mean_d = dsum.sum(-1) / msize
                    mean_dx = inv * tsum.sum(-1) / msize
                else:
                    mean_d = _rowdot(dsum, weight.view(g, j)) / msize
                    mean_dx = inv * _rowdot(tsum, weight.view(g, j)) / msize
                mean_d, mean_dx = mean_d.view(a, g, 1, 1), mean_dx.view(a, g, 1, 1)
                scale = inv_std if weight is None else inv_std * weight.view(pv)
                dx = torch.addcmul(-inv_std * mean_d, xc, inv_std * inv_std * mean_dx, value=-1.0, out=tmp)
                dx.addcmul_(da, scale)
                dx = dx.view(x.shape)
        return dx, dweight, dbias, None, None


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
    out, mean, var = _BatchNormTrain.apply(x, weight, bias, eps)
    if running_mean is None:
        return out, None, None
    with torch.no_grad():
        # lerp(a, b, t) = a + t * (b - a) = (1 - t) * a + t * b
        new_mean = torch.lerp(running_mean, mean.to(running_mean.dtype), momentum)
        new_var = torch.lerp(running_var, var.to(running_var.dtype) * (m / (m - 1)), momentum)
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
    return _RowNorm.apply(x, weight, bias, eps, rows, feat)


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
    return _GroupwiseNorm.apply(x, weight, bias, eps, (n, g, c // g, s))


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
