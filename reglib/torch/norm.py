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
xhat))``, with elementwise steps fused (``addcmul``), reductions as matrix-vector products
where they can be, and the output and gradient built in place, instead of the ~30 ops
autograd would record for the plain formula. When a graph of the gradient itself is
requested (``create_graph=True``: double backward, Hessian-vector products), the backward
falls back on autograd through the plain formula, so higher derivatives are exact too.
``benchmarks/bench_norm.py`` times these against torch's fused single-kernel versions: on
CPU, forward + backward, one thread, they take about 1.5x (batch norm on images), 1.7x
(batch norm on (256, 512)), 2.2x (group norm on images) and 2.5x (layer norm on
(256, 512)) the CPU time of torch's, on a busy 2-core machine. The comments above the
kernels say why, and the benchmark's docstring why the rest of the gap stays: about ten
passes over memory from primitives where torch's fused kernels need two or three.

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
from reglib.torch._checks import check_float_tensor

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


def _check_optional(t: Any, name: str, shape: tuple[int, ...]) -> Tensor | None:
    if t is None:
        return None
    t = check_float_tensor(t, name)
    if t.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(t.shape)}")
    return t


# Fast paths for the common argument types: these layers are called at every step, and on
# small tensors the general checks of reglib._validation cost a noticeable share of a call.


def _check_eps(eps: Any) -> float:
    if type(eps) is float and 0.0 < eps < math.inf:
        return eps
    return check_scalar(eps, "eps", min_value=0.0, include_min=False)


def _check_momentum(momentum: Any) -> float:
    if type(momentum) is float and 0.0 <= momentum <= 1.0:
        return momentum
    return check_probability(momentum, "momentum")


# ----------------------------------------------------------------------------- the kernels
#
# Three autograd Functions do the training-mode work, each with a closed-form backward:
#
# * _BatchNormTrain: x viewed as (N, C, S) (S = spatial size, 1 for (N, C) input); statistics
#   per channel over (N, S); weight/bias per channel. Saves the centred input xc = x - mean.
# * _LayerNormTrain: x viewed as (rows, K); statistics per row; weight/bias of shape (K,).
# * _GroupNormTrain: x viewed as (A, G, J * S); statistics per (a, g) over its J * S entries;
#   weight/bias of shape (G, J), the same for every a and every s: group norm is
#   (N, G, C/G, S), instance norm (N, C, 1, S).
#
# The last two save x, mean and inv_std = 1/sqrt(var + eps) and recompute x - mean in the
# backward pass (note 3). When the graph of the gradient is requested (create_graph=True:
# double backward, Hessian-vector products), a backward differentiates the plain formula
# (_plain) through autograd instead, so that higher derivatives are exact too.
#
# Why the code looks the way it does (CPU, one thread; profiled with torch.profiler, numbers
# in benchmarks/bench_norm.py's docstring):
#
# 1. Each op launched from Python costs a few microseconds before any arithmetic, a lot next
#    to the 10-40 us of one pass over a (256, 512) float32 tensor. Hence the closed-form
#    backward (about 10 tensor ops, where autograd would record and replay ~30 for the plain
#    formula) and no op that nobody needs (no gradient that was not asked for, no work for a
#    missing weight or bias).
# 2. torch's vectorized CPU loop for an elementwise op takes at most ONE operand that is
#    broadcast along the innermost dimension (a per-row value, or a per-channel value on
#    (N, C, S)). With two, as in addcmul(shift, xc, scale) with a per-channel shift and
#    scale on (N, C, S), it falls back to a scalar loop: 7x slower on a (256, 512) tensor
#    (180 us instead of 25), 2x on an 8 MB one, where memory dominates. So such parameters
#    are first copied into a contiguous (C, S) block (_spread; 1/N of the size of x), and
#    no op broadcasts two per-row or per-channel values along the same innermost dimension.
# 3. Memory traffic, not arithmetic, sets the time, and writing into memory that was just
#    allocated costs most: on 8 MB, x.mul_(c) takes ~0.4x the time of torch.mul(x, c) into a
#    new tensor, and a fresh multi-megabyte tensor may also cost page faults. So the output
#    is built in place in its own buffer (x - mean, then scaled, then the affine map), and
#    the input gradient in the buffer of the one temporary of the backward pass. Layer and
#    group norm keep no x - mean from the forward pass (one fresh buffer per call fewer; it
#    measured faster than keeping it) and recompute it in the backward pass.
# 4. The variance is the squared norm of the centred values: torch.linalg.vector_norm along
#    the last dimension is one pass that stores nothing. (torch.var_mean would give both
#    statistics in one call, but its CPU kernel took 1.2 ms on (256, 512) where a sum takes
#    15 us; vector_norm along the first dimension is slow too, 0.35 ms, so the (N, C) batch
#    norm squares into its output buffer and sums, 0.04 ms.)
# 5. The output is a tensor of its own, never a view of an internal buffer: autograd forbids
#    in-place ops (such as nn.ReLU(inplace=True)) on a view created inside a custom Function.


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


def _spread(p: Tensor, s: int) -> Tensor:
    """Parameters ``(..., J)`` -> a contiguous ``(..., J * S)`` copy, each value repeated S times
    (note 2 above); ``p`` itself when ``S = 1``."""
    if s == 1:
        return p
    return p.unsqueeze(-1).expand(*p.shape, s).reshape(*p.shape[:-1], -1)


def _new_like(x: Tensor) -> Tensor:
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


class _BatchNormTrain(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, n: int, c: int, s: int
    ):
        m = n * s
        out = _new_like(x)
        if s == 1:  # (N, C): a channel is a column; per-channel vectors broadcast as they are
            xv, ov = x.reshape(n, c), out.view(n, c)
            mean = xv.mean(0)
            xc = xv - mean
            var = torch.mul(xc, xc, out=ov).mean(0)  # the squares go in the output buffer
        else:
            xv, ov = x.reshape(n, c, s), out.view(n, c, s)
            mean = xv.sum(2).sum(0).div_(m)
            xc = xv - mean.view(c, 1)
            var = torch.linalg.vector_norm(xc, dim=2).square_().sum(0).div_(m)
        inv_std = torch.rsqrt(var + eps)
        scale = inv_std if weight is None else inv_std * weight
        # out = xc * scale + bias, per channel
        if bias is None:
            torch.mul(xc, scale.view(-1, 1) if s > 1 else scale, out=ov)
        elif s == 1:
            torch.addcmul(bias, xc, scale, out=ov)
        else:
            torch.addcmul(_spread(bias, s).view(c, s), xc, _spread(scale, s).view(c, s), out=ov)
        ctx.save_for_backward(x, weight, bias, xc, inv_std, scale)
        ctx.eps, ctx.dims = eps, (n, c, s)
        ctx.mark_non_differentiable(mean, var)
        ctx.set_materialize_grads(False)  # no zero tensors for the gradients of mean and var
        return out, mean, var

    @staticmethod
    def backward(ctx: Any, dout: Tensor, _dmean: Any, _dvar: Any):  # type: ignore[override]
        if dout is None:  # only mean or var reached the loss (they carry no gradient)
            return None, None, None, None, None, None, None
        x, weight, bias, xc, inv_std, scale = ctx.saved_tensors
        n, c, s = ctx.dims
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (n, c, s), (0, 2), (1, c, 1))
            return (*grads, None, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        d = dout.reshape(xc.shape)
        dsum = d.sum(0) if s == 1 else d.sum(2).sum(0)  # per channel: the bias gradient
        dx = dweight = None
        if need_x or need_w:
            tmp = d * xc
            # per channel: sum of dout * xhat, the weight gradient
            dweight = (tmp.sum(0) if s == 1 else tmp.sum(2).sum(0)).mul_(inv_std)
            if need_x:
                # dx = scale * (dout - dsum/m - xhat * dweight/m) = dout * scale + shift + xc * coef
                k = scale * (-1.0 / (n * s))
                shift = k * dsum
                coef = k.mul_(inv_std).mul_(dweight)
                if s == 1:
                    dx = torch.addcmul(shift, xc, coef, out=tmp).addcmul_(d, scale)
                else:
                    dx = torch.addcmul(_spread(shift, s).view(c, s), xc, _spread(coef, s).view(c, s), out=tmp)
                    dx = dx.addcmul_(d, scale.view(c, 1))
                dx = dx.view(x.shape)
        return dx, dweight if need_w else None, dsum if need_b else None, None, None, None, None


def _neg_row_mean(t: Tensor, wn: Tensor | None) -> Tensor:
    """``-mean(t * w)`` over each row of a (rows, K) tensor, kept as (rows, 1), given ``wn = -w / K``
    as a (K, 1) column (a matrix-vector product: no product tensor); without weight ``-mean(t)``."""
    return t.mean(1, keepdim=True).neg_() if wn is None else torch.mm(t, wn)


class _LayerNormTrain(torch.autograd.Function):
    """Layer norm on the (rows, K) view; weight and bias flattened to (K,)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, rows: int, k: int
    ) -> Tensor:
        x2 = x.reshape(rows, k)
        out = _new_like(x)
        o2 = out.view(rows, k)
        mean = x2.mean(1, keepdim=True)
        torch.sub(x2, mean, out=o2)  # xc, computed in the output buffer (note 3)
        inv_std = torch.rsqrt(torch.linalg.vector_norm(o2, dim=1, keepdim=True).square_().div_(k).add_(eps))
        o2.mul_(inv_std)  # xhat
        w = None if weight is None else weight.reshape(k)
        if w is not None and bias is not None:
            torch.addcmul(bias.reshape(k), o2, w, out=o2)
        elif w is not None:
            o2.mul_(w)
        elif bias is not None:
            o2.add_(bias.reshape(k))
        ctx.save_for_backward(x, weight, bias, mean, inv_std)
        ctx.eps, ctx.dims = eps, (rows, k)
        return out

    @staticmethod
    def backward(ctx: Any, dout: Tensor):  # type: ignore[override]
        x, weight, bias, mean, inv_std = ctx.saved_tensors
        rows, k = ctx.dims
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (rows, 1, k, 1), (2, 3), (1, 1, k, 1))
            return (*grads, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        d = dout.reshape(rows, k)
        dbias = d.sum(0).view(bias.shape) if need_b else None
        dweight = dx = None
        if need_x or need_w:
            x2 = x.reshape(rows, k)
            # dout * xc, xc = x - mean recomputed here instead of kept from the forward pass (note 3)
            tmp = torch.sub(x2, mean).mul_(d)
            if need_w:  # sum over rows of dout * xhat, a vector-matrix product
                dweight = (inv_std.view(1, rows) @ tmp).view(weight.shape)
            if need_x:
                # dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w, means
                # over the row. With a = mean(dxhat) and c = inv_std^2 * mean(dxhat * xc), and x - mean
                # written out so that no xc buffer is needed:
                #     dx = inv_std * (dout * w + (c * mean - a) - c * x)
                wn = None if weight is None else weight.reshape(k, 1) * (-1.0 / k)
                neg_a = _neg_row_mean(d, wn)
                neg_c = _neg_row_mean(tmp, wn).mul_(inv_std).mul_(inv_std)
                shift = torch.addcmul(neg_a, neg_c, mean, value=-1.0)  # c * mean - a
                if weight is None:
                    dx = torch.add(d, shift, out=tmp)
                else:
                    dx = torch.addcmul(shift, d, weight.reshape(k), out=tmp)
                dx = dx.addcmul_(x2, neg_c).mul_(inv_std).view(x.shape)
        return dx, dweight, dbias, None, None, None


class _GroupNormTrain(torch.autograd.Function):
    """Group norm on the (A, G, J * S) view; weight and bias (G, J), the same for all a and s."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, a: int, g: int, j: int, s: int
    ) -> Tensor:
        size = j * s  # entries per group
        x3 = x.reshape(a, g, size)
        out = _new_like(x)
        o3 = out.view(a, g, size)
        mean = x3.mean(2, keepdim=True)
        torch.sub(x3, mean, out=o3)  # xc, computed in the output buffer (note 3)
        inv_std = torch.rsqrt(torch.linalg.vector_norm(o3, dim=2, keepdim=True).square_().div_(size).add_(eps))
        o3.mul_(inv_std)  # xhat
        # weight and bias as (G, J * S) blocks (note 2)
        w = None if weight is None else _spread(weight.reshape(g, j), s)
        if w is not None and bias is not None:
            torch.addcmul(_spread(bias.reshape(g, j), s), o3, w, out=o3)
        elif w is not None:
            o3.mul_(w)
        elif bias is not None:
            o3.add_(_spread(bias.reshape(g, j), s))
        ctx.save_for_backward(x, weight, bias, mean, inv_std, w)
        ctx.eps, ctx.dims = eps, (a, g, j, s)
        return out

    @staticmethod
    def backward(ctx: Any, dout: Tensor):  # type: ignore[override]
        x, weight, bias, mean, inv_std, w = ctx.saved_tensors
        a, g, j, s = ctx.dims
        if torch.is_grad_enabled():
            grads = _double_backward((x, weight, bias), dout, ctx.eps, (a, g, j, s), (2, 3), (1, g, j, 1))
            return (*grads, None, None, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        size = j * s
        d = dout.reshape(a, g, size)
        # sums over the S positions of each channel, per (a, g, j): of dout, then of dout * xc
        dsum = d.view(a, g, j) if s == 1 else d.view(a, g, j, s).sum(3)
        dbias = dsum.sum(0).view(bias.shape) if need_b else None
        dweight = dx = None
        if need_x or need_w:
            x3 = x.reshape(a, g, size)
            tmp = torch.sub(x3, mean).mul_(d)  # xc recomputed, not kept from the forward pass (note 3)
            tsum = tmp.view(a, g, j) if s == 1 else tmp.view(a, g, j, s).sum(3)
            if need_w:  # sum over a of tsum * inv_std: the sum of dout * xhat
                dweight = (tsum * inv_std).sum(0).view(weight.shape)
            if need_x:
                # as in _LayerNormTrain.backward, with means over the group: sums over j of the
                # per-channel sums dsum and tsum, small (A, G, J) tensors
                if weight is None:
                    neg_a, neg_c = dsum.sum(2, keepdim=True).div_(-size), tsum.sum(2, keepdim=True).div_(-size)
                else:
                    wn = weight.reshape(g, j) * (-1.0 / size)
                    neg_a, neg_c = (dsum * wn).sum(2, keepdim=True), (tsum * wn).sum(2, keepdim=True)
                neg_c.mul_(inv_std).mul_(inv_std)
                shift = torch.addcmul(neg_a, neg_c, mean, value=-1.0)  # c * mean - a
                if w is None:
                    dx = torch.add(d, shift, out=tmp)
                else:
                    dx = torch.addcmul(shift, d, w, out=tmp)
                dx = dx.addcmul_(x3, neg_c).mul_(inv_std).view(x.shape)
        return dx, dweight, dbias, None, None, None, None, None


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
    x = check_float_tensor(x, "x")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have 2, 3 or 4 dimensions (N, C, *), got shape {tuple(x.shape)}")
    c = x.shape[1]
    running_mean = _check_optional(running_mean, "running_mean", (c,))
    running_var = _check_optional(running_var, "running_var", (c,))
    weight = _check_optional(weight, "weight", (c,))
    bias = _check_optional(bias, "bias", (c,))
    momentum = _check_momentum(momentum)
    eps = _check_eps(eps)
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be tensors or both be None")
    n = x.shape[0]
    s = x.numel() // (n * c) if n * c else 0
    if not training:
        if running_mean is None:
            raise ValueError("running_mean is None: eval mode (training=False) needs running statistics")
        scale = torch.rsqrt(running_var + eps)
        if weight is not None:
            scale = scale * weight
        shift = -running_mean * scale
        if bias is not None:
            shift = shift + bias
        if s == 1:
            out = torch.addcmul(shift, x.reshape(n, c), scale)
        else:  # (C, S) blocks: see note 2 above _BatchNormTrain
            out = torch.addcmul(_spread(shift, s).view(c, s), x.reshape(n, c, s), _spread(scale, s).view(c, s))
        return out.view(x.shape), running_mean, running_var
    m = n * s
    if m < 2:
        raise ValueError(
            "x must hold more than one value per channel for batch norm in training "
            f"(batch size times spatial size), got shape {tuple(x.shape)}"
        )
    out, mean, var = _BatchNormTrain.apply(x, weight, bias, eps, n, c, s)
    if running_mean is None:
        return out, None, None
    with torch.no_grad():
        # lerp(a, b, t) = a + t * (b - a) = (1 - t) * a + t * b
        if mean.dtype != running_mean.dtype:
            mean, var = mean.to(running_mean.dtype), var.to(running_var.dtype)
        new_mean = torch.lerp(running_mean, mean, momentum)
        new_var = torch.lerp(running_var, var.mul_(m / (m - 1)), momentum)
    return out, new_mean, new_var


# ----------------------------------------------------------------------------- layer norm


def _as_shape(normalized_shape: Any) -> tuple[int, ...]:
    if type(normalized_shape) is tuple and all(type(s) is int and s > 0 for s in normalized_shape) and normalized_shape:
        return normalized_shape  # fast path: what LayerNorm stores
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
    x = check_float_tensor(x, "x")
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
    return _LayerNormTrain.apply(x, weight, bias, eps, rows, feat)


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
    x = check_float_tensor(x, "x")
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
    return _GroupNormTrain.apply(x, weight, bias, eps, n, g, c // g, s)


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
    x = check_float_tensor(x, "x")
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
