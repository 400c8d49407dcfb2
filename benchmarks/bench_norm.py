"""Time reglib's torch normalization layers against torch's native (fused) modules.

    OMP_NUM_THREADS=1 python benchmarks/bench_norm.py [--repeats 31] [--device cpu] [--dtype float32]
                                                      [--case LayerNorm ...] [--profile]

Cases (training mode, typical shapes):

* batch norm on ``(256, 512)``: ``reglib.torch.norm.BatchNorm`` vs ``nn.BatchNorm1d``;
* layer norm on ``(256, 512)``: ``LayerNorm`` vs ``nn.LayerNorm``;
* batch norm on ``(32, 64, 16, 16)``: ``BatchNorm`` vs ``nn.BatchNorm2d``;
* group norm on ``(32, 64, 16, 16)``, 8 groups: ``GroupNorm`` vs ``nn.GroupNorm``.

For each, the forward pass alone (under ``torch.no_grad``) and forward + backward (input and
parameters requiring gradients). Each timing is the median, over ``--repeats`` rounds, of the
mean time per call in a batch of calls lasting about 20 ms; within a round the two contenders
run alternately, so background load hits both alike. Both the wall-clock time and the
process CPU time (``time.process_time``; with one thread it leaves out the time spent
preempted, which dominates the wall clock on a busy shared machine) are printed, with the
ratio reglib / torch; the target is <= 1.5x for forward + backward. The load average is
printed before and after: on a shared machine the absolute times are inflated by the other
processes' load, the ratios much less.

``--profile`` runs a few forward + backward steps of each contender under ``torch.profiler``
and prints, per step, the tensor ops launched (views and allocations excluded) and those that
read or write a whole input-sized tensor ("full passes": each one streams the data through
memory once more; a fused torch kernel counts as one, though inside it reads its inputs
about twice).

Measured on this project's 2-core machine with one torch thread, the machine shared with
other jobs (load average 1.1-2.0). CPU-time ratios reglib / torch for forward + backward:
"before" is the previous version of reglib.torch.norm and "after" this one, timed side by
side against torch in the same processes (several runs, which vary by about +-0.2x; issue 4
had recorded 2.2x, 3.5x, 1.7x and 2.5x for the previous version), then the op counts of
``--profile``:

    case                          before     after      tensor ops / full passes per step
                                                        reglib        torch
    BatchNorm1d (256, 512)        1.9-2.0x   1.6-1.9x   21 / 10       3 / 2
    LayerNorm   (256, 512)        3.2-3.4x   2.4-2.6x   22 / 14       2 / 2
    BatchNorm2d (32, 64, 16, 16)  1.7x       1.2-1.6x   27 / 9        3 / 2
    GroupNorm/8 (32, 64, 16, 16)  2.8-2.9x   2.1-2.5x   27 / 12       2 / 2

Only batch norm on images meets the 1.5x target, and not in every run. Why the others do
not: torch's fused CPU kernels (aten/src/ATen/native/cpu/layer_norm_kernel.cpp,
group_norm_kernel.cpp) go over x twice in the forward pass (the row's or group's moments,
then its output) and over dout and x twice in the backward pass (their sums, then dx), one
row or group at a time so that the second visit finds it in cache, and write each result
once. From primitives every statistic and every elementwise step is a pass of its own over
memory. The stable (two-pass) statistics already take three (mean, x - mean, its norm); the
output two more (the per-row 1/std, then the affine map: a per-row and a per-column factor
cannot share one vectorized op, see the notes in reglib/torch/norm.py); the closed-form
backward seven to nine (x - mean again and dout * (x - mean), the column sums for the
parameter gradients, the row sums for the two means, three elementwise passes for dx). That
is 14 passes for layer norm and 12 for group norm against torch's two kernels, and the two
that write into freshly allocated memory (the output, the gradient) cost the most, as they
do for torch. On the (256, 512) tensors, 512 KB each, which mostly stay in the 2 MB L2
cache, each pass is cheap (15-40 us) but the ~25 ops and the autograd Function also cost a
few microseconds each: on a (4, 8) tensor, where the arithmetic is nothing, reglib's layer
norm takes ~0.2 ms more than torch's per forward + backward, about half of torch's whole
time on (256, 512). torch's own batch norm is comparatively slow on CPU (BatchNorm1d on
(256, 512) takes ~0.65 ms forward + backward, its LayerNorm on the same tensor 0.3-0.45 ms),
which is why the batch norms come closest. torch.var_mean, which would give both statistics
in one call, is no way out: its CPU kernel (Welford's update) took ~1.2 ms on (256, 512),
against ~15 us for a sum.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
from torch import nn

from reglib.torch import norm


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _calls_per_batch(fn: Callable[[], None], device: torch.device, target_s: float = 0.02) -> int:
    for _ in range(3):  # warm-up
        fn()
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(10_000, int(target_s / dt)))


def _time_per_call(fn: Callable[[], None], k: int, device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds per call, over a batch of ``k`` calls."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(k):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / k, (time.process_time() - c0) / k


def compare(
    a: Callable[[], None], b: Callable[[], None], repeats: int, device: torch.device
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, CPU) seconds per call of ``a`` and of ``b``, timed alternately."""
    ka, kb = _calls_per_batch(a, device), _calls_per_batch(b, device)
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_time_per_call(a, ka, device))
        tb.append(_time_per_call(b, kb, device))

    def med(ts: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)

    return med(ta), med(tb)


def _forward(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            module(x)

    return run


def _forward_backward(module: nn.Module, x: torch.Tensor, dout: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).backward(dout)

    return run


def cases(device: torch.device, dtype: torch.dtype):
    kw = {"device": device, "dtype": dtype}
    yield "BatchNorm1d (256, 512)", (256, 512), norm.BatchNorm(512, **kw), nn.BatchNorm1d(512, **kw)
    yield "LayerNorm   (256, 512)", (256, 512), norm.LayerNorm(512, **kw), nn.LayerNorm(512, **kw)
    yield "BatchNorm2d (32, 64, 16, 16)", (32, 64, 16, 16), norm.BatchNorm(64, **kw), nn.BatchNorm2d(64, **kw)
    yield "GroupNorm/8 (32, 64, 16, 16)", (32, 64, 16, 16), norm.GroupNorm(8, 64, **kw), nn.GroupNorm(8, 64, **kw)


# ops that move no data: views, allocations, bookkeeping
_NO_DATA = {
    "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::unsqueeze", "aten::squeeze", "aten::expand",
    "aten::as_strided", "aten::t", "aten::numpy_T", "aten::permute", "aten::transpose", "aten::detach",
    "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resize_", "aten::alias", "aten::lift_fresh",
    "aten::result_type", "aten::resolve_conj", "aten::resolve_neg", "aten::to", "aten::zero_", "aten::zeros",
}


def profile_step(step: Callable[[], None], numel: int, steps: int = 10) -> tuple[float, float]:
    """Per forward + backward step: tensor ops launched (views and allocations excluded) and
    those with an operand of ``numel`` entries (full passes over the data)."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    ops = full = 0
    for ev in prof.events():
        parent = ev.cpu_parent
        if not ev.name.startswith("aten::") or (parent is not None and parent.name.startswith("aten::")):
            continue  # only the ops launched from Python or by autograd, not their internals
        if ev.name in _NO_DATA:
            continue
        ops += 1
        shapes = [s for s in (ev.input_shapes or []) if isinstance(s, list)]
        if any(_prod(s) == numel for s in shapes):
            full += 1
    return ops / steps, full / steps


def _prod(shape: list) -> int:
    out = 1
    for s in shape:
        if not isinstance(s, int):
            return -1
        out *= s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--case", action="append", help="only the cases whose name starts with this (repeatable)")
    parser.add_argument("--profile", action="store_true", help="also count tensor ops and full passes per step")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator(device=device).manual_seed(0)
    load0 = os.getloadavg()
    print(
        f"torch {torch.__version__}, {device}, {dtype}, {torch.get_num_threads()} thread(s), "
        f"median of {args.repeats} rounds; load average {load0[0]:.2f} (1 min), {load0[1]:.2f} (5 min), "
        f"{os.cpu_count()} CPUs"
    )
    header = (
        f"{'case':30s} {'pass':8s} {'reglib ms':>10s} {'torch ms':>10s} {'ratio':>7s}"
        f" {'reglib cpu':>11s} {'torch cpu':>10s} {'ratio':>7s}  {'<= 1.5x':>7s}"
    )
    print(header)
    print("-" * len(header))
    worst = {"wall": 0.0, "cpu": 0.0}
    profiles = []
    for name, shape, mine, theirs in cases(device, dtype):
        if args.case and not any(name.startswith(c) for c in args.case):
            continue
        mine.train()
        theirs.train()
        x = torch.randn(shape, generator=g, device=device, dtype=dtype) * 2 + 1
        dout = torch.randn(shape, generator=g, device=device, dtype=dtype)
        # same output before timing anything
        with torch.no_grad():
            torch.testing.assert_close(mine(x), theirs(x), rtol=1e-4, atol=1e-4)
        t_fwd = compare(_forward(mine, x), _forward(theirs, x), args.repeats, device)
        xg = x.clone().requires_grad_(True)
        fb_mine, fb_theirs = _forward_backward(mine, xg, dout), _forward_backward(theirs, xg, dout)
        t_bwd = compare(fb_mine, fb_theirs, args.repeats, device)
        for label, (a, b) in (("fwd", t_fwd), ("fwd+bwd", t_bwd)):
            verdict = ("yes" if a[1] / b[1] <= 1.5 else "no") if label == "fwd+bwd" else ""
            print(
                f"{name:30s} {label:8s} {a[0] * 1e3:10.3f} {b[0] * 1e3:10.3f} {a[0] / b[0]:6.2f}x"
                f" {a[1] * 1e3:11.3f} {b[1] * 1e3:10.3f} {a[1] / b[1]:6.2f}x  {verdict:>7s}"
            )
        worst["wall"] = max(worst["wall"], t_bwd[0][0] / t_bwd[1][0])
        worst["cpu"] = max(worst["cpu"], t_bwd[0][1] / t_bwd[1][1])
        if args.profile:
            numel = x.numel()
            profiles.append((name, profile_step(fb_mine, numel), profile_step(fb_theirs, numel)))
    load1 = os.getloadavg()
    print(
        f"worst forward+backward ratio: {worst['wall']:.2f}x wall, {worst['cpu']:.2f}x CPU time "
        f"(target <= 1.5x); load average now {load1[0]:.2f} (1 min)"
    )
    if profiles:
        print("\nper forward + backward step (torch.profiler; views and allocations not counted):")
        head = f"{'case':30s} {'':6s} {'tensor ops':>10s} {'full passes':>12s}"
        print(head)
        print("-" * len(head))
        for name, ours, ref in profiles:
            for who, (ops, full) in (("reglib", ours), ("torch", ref)):
                print(f"{name:30s} {who:6s} {ops:10.0f} {full:12.0f}")


if __name__ == "__main__":
    main()
