"""Shared test configuration: one torch thread, a private data cache, the repo root."""

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("REGLIB_THREADS", "1")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

