"""Time reglib's torch dropout and drop_path against torch built-in equivalents.

    OMP_NUM_THREADS=1 python benchmarks/bench_dropout.py [--repeats 30] [--device cpu]

Compared, forward and forward+backward, on each size:

* ``reglib.torch.dropout.dropout(x, p, generator=g)`` vs ``torch.nn.functional.dropout(x, p)``;
* ``reglib.torch.depth.drop_path(x, p, generator=g)`` vs the built-in one-liner
  ``x * torch.empty(N, 1, ..., 1).bernoulli_(keep).div_(keep)``.

Each timing is the median over ``--repeats`` rounds of the mean time of a batch of calls
(calls per batch chosen so that a batch lasts about 20 ms); the two contenders are timed
alternately within each round, so background load hits both alike. Prints a table and the
ratio reglib / built-in (the target is <= 1.3x). Timings on a shared machine are inflated
by the other processes' load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from reglib.torch.depth import drop_path
from reglib.torch.dropout import dropout


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _calls_per_batch(fn: Callable[[], None], device: torch.device, target_s: float = 0.02) -> int:
    for _ in range(3):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(10_000, int(target_s / dt)))


def _time_batch(fn: Callable[[], None], k: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / k


def compare(ours: Callable[[], None], builtin: Callable[[], None], repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds per call of ``ours`` and ``builtin``, timed alternately."""
    k = _calls_per_batch(builtin, device)
    _calls_per_batch(ours, device)  # warm-up
    t_ours, t_builtin = [], []
    for r in range(repeats):
        pair = [(ours, t_ours), (builtin, t_builtin)]
        for fn, out in pair if r % 2 == 0 else pair[::-1]:
            out.append(_time_batch(fn, k, device))
    return statistics.median(t_ours), statistics.median(t_builtin)


def _cases(x: torch.Tensor, drop_prob: float, backward: bool, device: torch.device):
    keep = 1.0 - drop_prob
    g = torch.Generator(device=device).manual_seed(0)
    row_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    grad = torch.ones_like(x)
    xr = x.detach().clone().requires_grad_(backward)

    def run(f):
        def call():
            out = f()
            if backward:
                out.backward(grad)
        return call

    def builtin_drop_path():
        return xr * torch.empty(row_shape, dtype=x.dtype, device=device).bernoulli_(keep).div_(keep)

    yield "dropout", run(lambda: dropout(xr, drop_prob, generator=g)), run(lambda: F.dropout(xr, drop_prob))
    yield "drop_path", run(lambda: drop_path(xr, drop_prob, generator=g)), run(builtin_drop_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--drop-prob", type=float, default=0.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s), "
          f"drop_prob {args.drop_prob}, median of {args.repeats} rounds")
    print(f"{'op':<10}{'shape':<20}{'pass':<14}{'reglib (us)':>12}{'built-in (us)':>15}{'ratio':>8}")
    worst = 0.0
    for shape in [(256, 1024), (64, 64, 16, 16)]:
        x = torch.randn(shape, device=device)
        for backward in (False, True):
            for name, ours, builtin in _cases(x, args.drop_prob, backward, device):
                t_ours, t_builtin = compare(ours, builtin, args.repeats, device)
                ratio = t_ours / t_builtin
                worst = max(worst, ratio)
                pass_name = "fwd+bwd" if backward else "fwd"
                print(f"{name:<10}{str(shape):<20}{pass_name:<14}{t_ours * 1e6:>12.1f}{t_builtin * 1e6:>15.1f}{ratio:>7.2f}x")
    print(f"worst ratio {worst:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
