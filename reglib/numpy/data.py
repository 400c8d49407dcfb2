"""Data sets that ship offline: MNIST-1D (generated locally), scikit-learn's digits,
and synthetic sets with a known truth.

Nothing here downloads. MNIST-1D is generated procedurally by the ``mnist1d`` package
(Greydanus, 2020) with its published arguments, which reproduces the published data set
(4000 training and 1000 test signals of length 40), and is cached on disk after the
first call (``$REGLIB_CACHE``, default ``~/.cache/reglib``).

Every generator of random data takes an explicit ``rng: np.random.Generator``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from reglib._validation import (
    check_int,
    check_probability,
    check_rng,
    check_scalar,
)

__all__ = [
    "Split",
    "load_mnist1d",
    "load_digits",
    "make_sparse_regression",
    "make_correlated_regression",
    "make_polynomial_regression",
    "polynomial_features",
    "train_val_split",
]


@dataclass(frozen=True)
class Split:
    """A train/test split. ``X_*`` are ``(n, d)`` float arrays, ``y_*`` are ``(n,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        """Number of classes (for integer labels)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _cache_dir() -> Path:
    return Path(os.environ.get("REGLIB_CACHE", Path.home() / ".cache" / "reglib"))


@lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    path = _cache_dir() / f"mnist1d_n{num_samples}_seed{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["x"], z["y"], z["x_test"], z["y_test"]
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    # mnist1d seeds the global RNGs; restore them so callers' state is untouched
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        data["x"].astype(np.float32),
        data["y"].astype(np.int64),
        data["x_test"].astype(np.float32),
        data["y_test"].astype(np.int64),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=arrays[0], y=arrays[1], x_test=arrays[2], y_test=arrays[3])
        os.replace(tmp, path)
    except OSError:  # read-only home: generation is cheap, caching is optional
        pass
    return arrays


def load_mnist1d(num_samples: int = 5000, seed: int = 42) -> Split:
    """MNIST-1D (Greydanus, 2020), generated locally.

    With the defaults this is the published data set: 4000 training and 1000 test
    signals of length 40 in 10 classes, standardised to zero mean and unit variance.
    Published test accuracies: logistic regression 32%, MLP 68%, CNN 94%.

    Args:
        num_samples: total number of signals (80% train, 20% test).
        seed: the generator's seed (42 reproduces the published set).

    Returns:
        A :class:`Split` with float32 signals of shape ``(n, 40)`` and int64 labels.
    """
    num_samples = check_int(num_samples, "num_samples", min_value=10)
    seed = check_int(seed, "seed", min_value=0)
    arrays = _mnist1d_arrays(num_samples, seed)
    return Split(*(a.copy() for a in arrays))


def load_digits(
    test_fraction: float = 0.25, *, rng: np.random.Generator, standardize: bool = True
) -> Split:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), split at random.

    Args:
        test_fraction: fraction of the images in the test split, in (0, 1).
        rng: generator for the shuffle.
        standardize: scale pixels to zero mean and unit variance using training
            statistics only (constant pixels are left at 0).

    Returns:
        A :class:`Split` with float32 inputs of shape ``(n, 64)`` and int64 labels.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    test_fraction = check_probability(test_fraction, "test_fraction", include_zero=False, include_one=False)
    rng = check_rng(rng)
    X, y = _sk_load_digits(return_X_y=True)
    perm = rng.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    X_train, X_test = X[train].astype(np.float64), X[test].astype(np.float64)
    if standardize:
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std[std == 0] = 1.0
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return Split(
        X_train.astype(np.float32), y[train].astype(np.int64), X_test.astype(np.float32), y[test].astype(np.int64)
    )


def make_sparse_regression(
    n_samples: int,
    n_features: int,
    n_informative: int,
    *,
    noise: float = 1.0,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear data ``y = X w* + noise`` whose true weights have ``n_informative`` non-zeros.

    ``X`` has i.i.d. standard normal entries; the non-zero weights are drawn as
    ``sign * U(1, 3)`` at random positions, so each is well above the noise.

    Returns:
        ``(X, y, w_true)`` with shapes ``(n, d)``, ``(n,)``, ``(d,)``.
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_features = check_int(n_features, "n_features", min_value=1)
    n_informative = check_int(n_informative, "n_informative", min_value=0)
    if n_informative > n_features:
        raise ValueError(f"n_informative must be <= n_features={n_features}, got {n_informative}")
    noise = check_scalar(noise, "noise", min_value=0.0)
    rng = check_rng(rng)
    X = rng.standard_normal((n_samples, n_features))
    w = np.zeros(n_features)
    support = rng.choice(n_features, size=n_informative, replace=False)
    w[support] = rng.choice([-1.0, 1.0], size=n_informative) * rng.uniform(1.0, 3.0, size=n_informative)
    y = X @ w + noise * rng.standard_normal(n_samples)
    return X, y, w


def make_correlated_regression(
    n_samples: int,
    n_groups: int,
    group_size: int,
    *,
    correlation: float = 0.95,
    n_informative_groups: int = 1,
    noise: float = 1.0,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features in blocks of strongly correlated copies; the truth uses whole blocks.

    Within a block every pair of features has correlation ``correlation`` (a shared
    latent factor plus independent noise); blocks are independent. The first
    ``n_informative_groups`` blocks carry equal weights 1 on every feature.

    Returns:
        ``(X, y, w_true)`` with ``X`` of shape ``(n, n_groups * group_size)``.
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_groups = check_int(n_groups, "n_groups", min_value=1)
    group_size = check_int(group_size, "group_size", min_value=1)
    correlation = check_scalar(correlation, "correlation", min_value=0.0, max_value=1.0, include_max=False)
    n_informative_groups = check_int(n_informative_groups, "n_informative_groups", min_value=0)
    if n_informative_groups > n_groups:
        raise ValueError(f"n_informative_groups must be <= n_groups={n_groups}, got {n_informative_groups}")
    noise = check_scalar(noise, "noise", min_value=0.0)
    rng = check_rng(rng)
    latent = rng.standard_normal((n_samples, n_groups, 1))
    own = rng.standard_normal((n_samples, n_groups, group_size))
    X = (np.sqrt(correlation) * latent + np.sqrt(1.0 - correlation) * own).reshape(n_samples, -1)
    w = np.zeros(n_groups * group_size)
    w[: n_informative_groups * group_size] = 1.0
    y = X @ w + noise * rng.standard_normal(n_samples)
    return X, y, w


def make_polynomial_regression(
    n_samples: int,
    *,
    coef: np.ndarray | None = None,
    noise: float = 0.3,
    x_range: tuple[float, float] = (-1.0, 1.0),
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-d data ``y = sum_k coef[k] x^k + noise`` with ``x ~ U(x_range)``.

    Args:
        coef: true polynomial coefficients, lowest degree first; the default
            ``[0.5, -1, 0, 2]`` is the cubic ``0.5 - x + 2 x^3``.

    Returns:
        ``(x, y, coef)`` with ``x`` and ``y`` of shape ``(n,)``.
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    noise = check_scalar(noise, "noise", min_value=0.0)
    rng = check_rng(rng)
    coef = np.array([0.5, -1.0, 0.0, 2.0]) if coef is None else np.asarray(coef, dtype=float)
    lo, hi = (check_scalar(v, "x_range") for v in x_range)
    if not lo < hi:
        raise ValueError(f"x_range must satisfy low < high, got {x_range}")
    x = rng.uniform(lo, hi, size=n_samples)
    y = np.polynomial.polynomial.polyval(x, coef) + noise * rng.standard_normal(n_samples)
    return x, y, coef


def polynomial_features(x: np.ndarray, degree: int) -> np.ndarray:
    """Vandermonde matrix ``[1, x, x^2, ..., x^degree]`` of shape ``(n, degree + 1)``."""
    degree = check_int(degree, "degree", min_value=0)
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-d, got shape {x.shape}")
    return np.vander(x, degree + 1, increasing=True)


def train_val_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random split of ``(X, y)`` into ``(X_train, y_train, X_val, y_val)``."""
    val_fraction = check_probability(val_fraction, "val_fraction", include_zero=False, include_one=False)
    rng = check_rng(rng)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    perm = rng.permutation(len(y))
    n_val = max(1, int(round(val_fraction * len(y))))
    val, train = perm[:n_val], perm[n_val:]
    return X[train], y[train], X[val], y[val]
