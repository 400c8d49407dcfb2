"""A small, explicit training loop shared by the chapters.

``fit`` trains a classifier on tensors held in memory (MNIST-1D, digits): mini-batches
drawn with an explicit ``torch.Generator``, an optional penalty added to the loss, an
optional per-batch transform (augmentation, mixup), and a text progress bar. After each
epoch it evaluates, in eval mode, the data loss and accuracy on the whole training set
and on the validation set, so curves of different regularizers are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglib._validation import check_int, check_scalar
from reglib.progress import progress

__all__ = ["History", "mlp", "accuracy", "evaluate", "fit"]

Penalty = Callable[[nn.Module], Tensor]
BatchTransform = Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]]
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class History:
    """Per-epoch metrics recorded by :func:`fit` (validation lists stay empty without data)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> np.ndarray:
        """Epoch numbers 1..E."""
        return np.arange(1, len(self.train_loss) + 1)

    @property
    def best_epoch(self) -> int:
        """Epoch (1-based) with the lowest validation loss."""
        if not self.val_loss:
            raise ValueError("best_epoch needs validation data; fit was called without X_val")
        return int(np.argmin(self.val_loss)) + 1


def mlp(sizes: Sequence[int], *, drop_prob: float = 0.0, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]``.

    Hidden layers are ``Linear -> activation [-> Dropout(drop_prob)]``; the last layer is
    linear (logits). ``drop_prob`` is the probability of *dropping* a unit, as in torch.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must have at least 2 entries (input and output), got {list(sizes)}")
    for k, s in enumerate(sizes):
        check_int(s, f"sizes[{k}]", min_value=1)
    drop_prob = check_scalar(drop_prob, "drop_prob", min_value=0.0, max_value=1.0, include_max=False)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 2):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), activation()]
        if drop_prob > 0:
            layers.append(nn.Dropout(drop_prob))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of rows whose arg-max equals the label (``y`` integer or one-hot/soft)."""
    target = y.argmax(dim=1) if y.ndim == 2 else y
    return (logits.argmax(dim=1) == target).float().mean().item()


@torch.no_grad()
def evaluate(
    model: nn.Module, X: Tensor, y: Tensor, *, loss_fn: LossFn = F.cross_entropy, batch_size: int = 4096
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``(X, y)`` in eval mode (mode restored after)."""
    was_training = model.training
    model.eval()
    try:
        losses, correct, n = 0.0, 0.0, len(X)
        for start in range(0, n, batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb)
            losses += loss_fn(logits, yb).item() * len(xb)
            correct += accuracy(logits, yb) * len(xb)
        return losses / n, correct / n
    finally:
        model.train(was_training)


def fit(
    model: nn.Module,
    X_train: Tensor,
    y_train: Tensor,
    *,
    X_val: Tensor | None = None,
    y_val: Tensor | None = None,
    epochs: int,
    generator: torch.Generator,
    batch_size: int = 128,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: LossFn = F.cross_entropy,
    penalty: Penalty | None = None,
    transform: BatchTransform | None = None,
    callback: Callable[[int, History, nn.Module], bool] | None = None,
    desc: str = "",
    show_progress: bool = True,
) -> History:
    """Train ``model`` with mini-batches and return its :class:`History`.

    The objective of each step is ``loss_fn(model(xb), yb) + penalty(model)``.

    Args:
        model: the network (already on the device of ``X_train``).
        X_train, y_train: training tensors, ``(n, ...)`` and ``(n,)``.
        X_val, y_val: optional validation tensors, evaluated after every epoch.
        epochs: number of passes over the training set.
        generator: CPU ``torch.Generator`` that draws the mini-batch order (and is passed
            to ``transform``), so a run is reproducible.
        batch_size: mini-batch size; the last, smaller batch of an epoch is kept.
        optimizer: defaults to ``Adam(model.parameters(), lr)``.
        loss_fn: ``(logits, targets) -> scalar``; targets may be soft (mixup).
        penalty: ``model -> scalar tensor`` added to every step's loss (e.g. L2).
        transform: ``(xb, yb, generator) -> (xb, yb)`` applied to each training batch.
        callback: called as ``callback(epoch, history, model)`` after each epoch; training
            stops early when it returns ``True``.
        desc: label of the progress bar.
        show_progress: draw a text progress bar (see :mod:`reglib.progress`).
    """
    epochs = check_int(epochs, "epochs", min_value=0)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if len(X_train) != len(y_train):
        raise ValueError(f"X_train and y_train must have the same length, got {len(X_train)} and {len(y_train)}")
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=check_scalar(lr, "lr", min_value=0.0, include_min=False))
    history = History()
    n = len(X_train)
    bar = progress(range(epochs), desc=desc, disable=not show_progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(X_train.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = X_train[idx], y_train[idx]
            if transform is not None:
                xb, yb = transform(xb, yb, generator)
            loss = loss_fn(model(xb), yb)
            if penalty is not None:
                loss = loss + penalty(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        tl, ta = evaluate(model, X_train, y_train, loss_fn=loss_fn)
        history.train_loss.append(tl)
        history.train_acc.append(ta)
        postfix = {"train_acc": f"{ta:.3f}"}
        if X_val is not None and y_val is not None:
            vl, va = evaluate(model, X_val, y_val, loss_fn=loss_fn)
            history.val_loss.append(vl)
            history.val_acc.append(va)
            postfix["val_acc"] = f"{va:.3f}"
        bar.set_postfix(postfix, refresh=False)
        if callback is not None and callback(epoch + 1, history, model):
            break
    bar.close()
    model.eval()
    return history
