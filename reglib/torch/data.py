"""Tensors from :mod:`reglib.numpy.data`, placed on a device."""

from __future__ import annotations

import torch

from reglib.numpy.data import Split, load_mnist1d

__all__ = ["TensorSplit", "to_tensors", "mnist1d_tensors"]


class TensorSplit(tuple):
    """``(X_train, y_train, X_test, y_test)`` as tensors; unpack it like a tuple."""

    __slots__ = ()

    def __new__(cls, X_train: torch.Tensor, y_train: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor):
        return super().__new__(cls, (X_train, y_train, X_test, y_test))

    X_train = property(lambda self: self[0])
    y_train = property(lambda self: self[1])
    X_test = property(lambda self: self[2])
    y_test = property(lambda self: self[3])


def to_tensors(split: Split, device: torch.device | str = "cpu") -> TensorSplit:
    """Convert a :class:`~reglib.numpy.data.Split` to float32/int64 tensors on ``device``."""
    if not isinstance(split, Split):
        raise TypeError(f"split must be a reglib.numpy.data.Split, got {type(split).__name__}")

    def f(a):
        t = torch.as_tensor(a)
        t = t.float() if t.is_floating_point() else t.long()
        return t.to(device)

    return TensorSplit(f(split.X_train), f(split.y_train), f(split.X_test), f(split.y_test))


def mnist1d_tensors(device: torch.device | str = "cpu", *, num_samples: int = 5000, seed: int = 42) -> TensorSplit:
    """MNIST-1D (4000 train / 1000 test, length 40) as tensors on ``device``."""
    return to_tensors(load_mnist1d(num_samples=num_samples, seed=seed), device)
