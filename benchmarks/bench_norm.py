"""Time reglib's torch normalization layers against torch's native (fused) modules.

    OMP_NUM_THREADS=1 python benchmarks/bench_norm.py [--repeats 25] [--device cpu] [--dtype float32]

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
ratio reglib / torch (the target is <= 1.5x for forward + backward). On a shared machine the
absolute times are inflated by the other processes' load.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator(device=device).manual_seed(0)
    print(f"torch {torch.__version__}, {device}, {dtype}, {torch.get_num_threads()} thread(s), "
          f"median of {args.repeats} rounds")
    header = (
        f"{'case':30s} {'pass':8s} {'reglib ms':>10s} {'torch ms':>10s} {'ratio':>7s}"
        f" {'reglib cpu':>11s} {'torch cpu':>10s} {'ratio':>7s}"
    )
    print(header)
    print("-" * len(header))
    worst = {"wall": 0.0, "cpu": 0.0}
    for name, shape, mine, theirs in cases(device, dtype):
        mine.train()
        theirs.train()
        x = torch.randn(shape, generator=g, device=device, dtype=dtype) * 2 + 1
        dout = torch.randn(shape, generator=g, device=device, dtype=dtype)
        # same output before timing anything
        with torch.no_grad():
            torch.testing.assert_close(mine(x), theirs(x), rtol=1e-4, atol=1e-4)
        t_fwd = compare(_forward(mine, x), _forward(theirs, x), args.repeats, device)
        xg = x.clone().requires_grad_(True)
        t_bwd = compare(_forward_backward(mine, xg, dout), _forward_backward(theirs, xg, dout), args.repeats, device)
        for label, (a, b) in (("fwd", t_fwd), ("fwd+bwd", t_bwd)):
            print(
                f"{name:30s} {label:8s} {a[0] * 1e3:10.3f} {b[0] * 1e3:10.3f} {a[0] / b[0]:6.2f}x"
                f" {a[1] * 1e3:11.3f} {b[1] * 1e3:10.3f} {a[1] / b[1]:6.2f}x"
            )
        worst["wall"] = max(worst["wall"], t_bwd[0][0] / t_bwd[1][0])
        worst["cpu"] = max(worst["cpu"], t_bwd[0][1] / t_bwd[1][1])
    print(
        f"worst forward+backward ratio: {worst['wall']:.2f}x wall, {worst['cpu']:.2f}x CPU time "
        "(target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
