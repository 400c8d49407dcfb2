"""Dropping whole residual branches and layers: DropPath, stochastic depth, LayerDrop.

Conventions: ``drop_prob`` is the probability of dropping a branch (or a layer),
``survival_prob = 1 - drop_prob`` the probability of keeping it (Huang et al. call it
``p_l``). Randomness comes from ``generator: torch.Generator | None = None`` (``None``: torch's
global RNG). A Bernoulli variable is drawn per **sample** (``mode="row"``, the default, as in
timm's ``drop_path`` and torchvision's ``stochastic_depth(mode="row")``) or once for the
whole mini-batch (``mode="batch"``, as in the original stochastic-depth paper).

* :func:`drop_path`: ``x * b / survival_prob``, ``b ~ Bernoulli(survival_prob)`` per sample.
* :func:`stochastic_depth` / :class:`StochasticDepthBlock`: ``y = x + drop(branch(x))``, with
  the scaling in training (``scaling="train"``, inverted, torchvision's) or at test
  (``scaling="test"``, Huang et al. 2016): the two give the same expected output.
* :func:`linear_decay_survival`: Huang et al.'s linear rule for ``survival_prob`` per block.
* :func:`layer_drop` / :class:`LayerDropSequential`: LayerDrop (Fan et al., 2019).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from reglib._validation import check_int, check_probability
from reglib.torch import dropout as _dropout
from reglib.torch._checks import check_float_tensor
from reglib.torch.dropout import _check_generator, _check_training, _noise, _probability

__all__ = [
    "drop_path",
    "DropPath",
    "stochastic_depth",
    "StochasticDepthBlock",
    "linear_decay_survival",
    "layer_drop",
    "LayerDropSequential",
]

_MODES = ("row", "batch")
_SCALINGS = ("train", "test")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def drop_path(
    x: Tensor,
    drop_prob: float,
    training: bool = True,
    generator: torch.Generator | None = None,
    scale_by_keep: bool = True,
    mode: str = "row",
) -> Tensor:
    """Drop whole samples of a residual branch's output ("DropPath", per-sample stochastic depth).

    Training: ``out[n] = x[n] * b_n / survival_prob`` with ``b_n ~ Bernoulli(survival_prob)``,
    ``survival_prob = 1 - drop_prob``; without the ``1/survival_prob`` factor when
    ``scale_by_keep`` is False. ``mode="batch"`` draws a single ``b`` for the whole batch.
    Returns ``x`` itself in evaluation or when ``drop_prob == 0``; ``x * 0`` when
    ``drop_prob == 1``. This is torchvision's ``stochastic_depth(x, p=drop_prob, mode,
    training)`` (and timm's ``drop_path``), with a generator.

    Shape:
        x: ``(N, *)``; the mask has shape ``(N, 1, ..., 1)`` (``(1, ..., 1)`` for ``"batch"``);
        out: ``x.shape``.
    """
    x = check_float_tensor(x)
    drop_prob = _probability(drop_prob, "drop_prob")
    if not isinstance(scale_by_keep, bool):
        raise TypeError(f"scale_by_keep must be a bool, got {type(scale_by_keep).__name__}")
    _check_choice(mode, "mode", _MODES)
    if not _check_training(training) or drop_prob == 0.0:
        return x
    if x.ndim < 1:
        raise ValueError(f"x must have a batch dimension (N, *), got shape {tuple(x.shape)}")
    generator = _check_generator(generator, x.device)
    shape = ((x.shape[0] if mode == "row" else 1),) + (1,) * (x.ndim - 1)
    keep_prob = 1.0 - drop_prob
    if scale_by_keep:
        return x * _noise(shape, keep_prob, x, generator)
    noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep_prob, generator=generator)
    return x * noise


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (place it at the end of a residual branch)."""

    _reglib_stochastic = True  # kept active by mc_dropout_predict

    def __init__(
        self,
        drop_prob: float,
        scale_by_keep: bool = True,
        mode: str = "row",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.drop_prob = check_probability(drop_prob, "drop_prob")
        if not isinstance(scale_by_keep, bool):
            raise TypeError(f"scale_by_keep must be a bool, got {type(scale_by_keep).__name__}")
        self.scale_by_keep = scale_by_keep
        self.mode = _check_choice(mode, "mode", _MODES)
        self.generator = _check_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.drop_prob, self.training, self.generator, self.scale_by_keep, self.mode)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, scale_by_keep={self.scale_by_keep}, mode={self.mode!r}"


def stochastic_depth(
    x: Tensor,
    branch: Callable[[Tensor], Tensor],
    survival_prob: float,
    training: bool = True,
    scaling: str = "train",
    generator: torch.Generator | None = None,
    mode: str = "row",
) -> Tensor:
    """A residual block with stochastic depth: ``y = x + gate * branch(x)``.

    With ``b ~ Bernoulli(survival_prob)`` per sample (``mode="row"``) or per batch
    (``mode="batch"``, Huang et al.'s original; the branch is then not evaluated at all when
    dropped):

    * ``scaling="train"`` (inverted, torchvision's): training ``y = x + b branch(x) /
      survival_prob``; evaluation ``y = x + branch(x)``;
    * ``scaling="test"`` (Huang et al., 2016): training ``y = x + b branch(x)``; evaluation
      ``y = x + survival_prob * branch(x)``.

    In both cases ``E_b[y_train] = y_eval`` for a fixed branch (the two conventions are equal
    in expectation; they differ by the factor ``1/survival_prob`` on the learned branch).

    Shape:
        x: ``(N, *)``; ``branch(x)`` must have ``x``'s shape; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    survival_prob = check_probability(survival_prob, "survival_prob")
    _check_choice(scaling, "scaling", _SCALINGS)
    _check_choice(mode, "mode", _MODES)
    training = _check_training(training)
    if not callable(branch):
        raise TypeError(f"branch must be callable (an nn.Module), got {type(branch).__name__}")
    drop_prob = 1.0 - survival_prob
    if training and mode == "batch" and drop_prob > 0.0:
        generator = _check_generator(generator, x.device)
        alive = bool(torch.empty((), device=x.device).bernoulli_(survival_prob, generator=generator))
        if not alive:
            return x  # the branch is skipped entirely
    out = branch(x)
    if out.shape != x.shape:
        raise ValueError(f"branch(x) must have x's shape {tuple(x.shape)}, got {tuple(out.shape)}")
    if training and mode == "batch" and drop_prob > 0.0:
        return x + (out / survival_prob if scaling == "train" else out)
    if not training:
        return x + out if scaling == "train" else x + survival_prob * out
    return x + drop_path(out, drop_prob, True, generator, scale_by_keep=(scaling == "train"))


class StochasticDepthBlock(nn.Module):
    """Residual block ``y = x + branch(x)`` whose branch is dropped at random in training.

    See :func:`stochastic_depth` for the two ``scaling`` conventions and ``mode``.
    ``survival_prob`` is the probability of keeping the branch (``1 - drop_prob``).
    """

    _reglib_stochastic = True  # kept active by mc_dropout_predict

    def __init__(
        self,
        branch: nn.Module,
        survival_prob: float,
        scaling: str = "train",
        mode: str = "row",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(branch, nn.Module):
            raise TypeError(f"branch must be an nn.Module, got {type(branch).__name__}")
        self.branch = branch
        self.survival_prob = check_probability(survival_prob, "survival_prob")
        self.scaling = _check_choice(scaling, "scaling", _SCALINGS)
        self.mode = _check_choice(mode, "mode", _MODES)
        self.generator = _check_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return stochastic_depth(x, self.branch, self.survival_prob, self.training, self.scaling, self.generator, self.mode)

    def extra_repr(self) -> str:
        return f"survival_prob={self.survival_prob}, scaling={self.scaling!r}, mode={self.mode!r}"


def linear_decay_survival(num_blocks: int, final_survival_prob: float) -> list[float]:
    """Huang et al.'s linear decay rule: ``p_l = 1 - (l / L) (1 - p_L)`` for ``l = 1..L``.

    The input (``l = 0``) would have ``p_0 = 1``; the last block has ``p_L =
    final_survival_prob`` (0.5 in the paper). Returns the ``L`` survival probabilities of the
    blocks, in order.
    """
    num_blocks = check_int(num_blocks, "num_blocks", min_value=1)
    final_survival_prob = check_probability(final_survival_prob, "final_survival_prob")
    return [1.0 - (l / num_blocks) * (1.0 - final_survival_prob) for l in range(1, num_blocks + 1)]


def layer_drop(
    layers: Sequence[nn.Module],
    drop_prob: float,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> list[nn.Module]:
    """LayerDrop (Fan et al., 2019): the layers that run in this forward pass.

    In training each layer is skipped independently with probability ``drop_prob``
    (no rescaling: the layers are residual blocks whose identity path carries the signal);
    in evaluation all layers run. Returns the kept layers in their original order.
    """
    layers = list(layers)
    drop_prob = check_probability(drop_prob, "drop_prob")
    if not _check_training(training) or drop_prob == 0.0:
        return layers
    generator = _check_generator(generator)
    device = generator.device if generator is not None else torch.device("cpu")
    keep = _dropout.dropout_mask((len(layers),), drop_prob, generator, device=device).tolist()
    return [layer for layer, k in zip(layers, keep) if k]


class LayerDropSequential(nn.Module):
    """Run ``layers`` in sequence, each skipped with probability ``drop_prob`` in training.

    Each layer must map its input to the same shape (residual blocks). See :func:`layer_drop`.
    """

    _reglib_stochastic = True  # kept active by mc_dropout_predict

    def __init__(self, layers: Sequence[nn.Module], drop_prob: float, generator: torch.Generator | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.drop_prob = check_probability(drop_prob, "drop_prob")
        self.generator = _check_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return functools.reduce(lambda h, f: f(h), layer_drop(self.layers, self.drop_prob, training=self.training, generator=self.generator), x)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
