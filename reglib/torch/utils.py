"""Notebook set-up: seeds, device and thread count in one call."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from reglib._validation import check_int

__all__ = ["seed_everything", "get_device", "setup"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and torch (CPU and CUDA).

    reglib's own functions never rely on global state (they take ``rng``/``generator``);
    this is for third-party code and model initialisation.
    """
    seed = check_int(seed, "seed", min_value=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def get_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0, threads: int | None = 1, verbose: bool = True) -> torch.device:
    """Seed everything, pick the device and limit CPU threads; return the device.

    Small models train much faster with one CPU thread on a shared 2-core machine
    (measured: 1 s instead of 30 s for 20 epochs of an MLP on digits), so ``threads=1``
    is the default. The environment variable ``REGLIB_THREADS`` overrides it;
    ``threads=None`` leaves torch's default.
    """
    env = os.environ.get("REGLIB_THREADS")
    if env:
        threads = int(env)
    if threads is not None:
        threads = check_int(threads, "threads", min_value=1)
        torch.set_num_threads(threads)
    seed_everything(seed)
    device = get_device()
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"torch {torch.__version__} on {name} ({torch.get_num_threads()} thread(s)), seed {seed}")
    return device
