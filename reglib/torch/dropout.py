"""Dropout and its variants in PyTorch: pure functions, then thin ``nn.Module`` wrappers.

Conventions (the book's, and torch's):

* ``drop_prob`` is the probability of **zeroing** (torch's ``p``); ``keep_prob = 1 - drop_prob``.
* **Inverted dropout**: kept units are scaled by ``1/keep_prob`` in training; every layer is
  the identity in evaluation (``training=False``).
* A mask is a boolean tensor, ``True`` where a unit is **kept**.
* Randomness: ``generator: torch.Generator | None = None``. ``None`` uses torch's global RNG
  (as torch's built-ins do); pass a generator (on the tensor's device) for reproducible
  masks. On the CPU, ``dropout(x, p, generator=torch.Generator().manual_seed(s))`` draws
  exactly the mask that ``torch.manual_seed(s); F.dropout(x, p)`` draws (the tests check
  it); the same holds for :func:`spatial_dropout` and ``F.dropout2d``.
* Sampling is separated from applying: :func:`dropout_mask` then :func:`apply_mask`.

Variants: spatial (channel) dropout, Gaussian dropout, DropConnect, locked (variational RNN)
dropout, sparse variational dropout (Molchanov et al., 2017) and MC-dropout prediction.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglib._validation import check_int, check_probability, check_scalar
from reglib.torch._checks import check_float_tensor

__all__ = [
    "dropout_mask",
    "apply_mask",
    "dropout",
    "spatial_dropout",
    "gaussian_dropout",
    "dropconnect_linear",
    "locked_dropout",
    "Dropout",
    "SpatialDropout",
    "GaussianDropout",
    "DropConnectLinear",
    "LockedDropout",
    "VariationalDropoutLinear",
    "vd_kl_approx",
    "mc_dropout_predict",
    "STOCHASTIC_LAYERS",
]


# --------------------------------------------------------------------------- checks


def _check_training(training: Any) -> bool:
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {type(training).__name__} {training!r}")
    return training


def _check_generator(generator: Any, device: torch.device | str | None = None) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if device is not None:
        device_type = device.type if isinstance(device, torch.device) else torch.device(device).type
        if generator.device.type != device_type:
            raise ValueError(
                f"generator must be on the tensor's device type {device_type!r}, "
                f"got a generator on {generator.device.type!r}"
            )
    return generator


def _probability(value: Any, name: str, include_one: bool = True) -> float:
    """``check_probability`` with a fast path for plain floats (these functions sit in hot loops)."""
    if type(value) is float and 0.0 <= value < 1.0 or (include_one and value == 1.0 and type(value) is float):
        return value
    return check_probability(value, name, include_one=include_one)


def _noise(
    shape: Sequence[int], keep_prob: float, like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Float tensor of Bernoulli(keep_prob) / keep_prob (torch's own recipe, same RNG use)."""
    noise = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep_prob, generator=generator)
    if keep_prob > 0.0:
        noise.div_(keep_prob)
    return noise


# --------------------------------------------------------------------------- functional


def dropout_mask(
    shape: Sequence[int] | torch.Size,
    drop_prob: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Sample a boolean dropout mask, ``True`` (kept) with probability ``1 - drop_prob``.

    Entries are independent Bernoulli(keep_prob) draws. The random stream is the one
    :func:`dropout` and ``F.dropout`` use, so ``apply_mask(x, dropout_mask(x.shape, p,
    g), 1 - p)`` equals ``dropout(x, p, generator=g')`` for a generator ``g'`` in the same
    state as ``g``.

    Shape:
        returns a ``torch.bool`` tensor of shape ``shape`` on ``device`` (default: the
        generator's device, else CPU). Use ones to share the mask along a dimension, e.g.
        ``(N, C, 1, 1)`` for whole channels.
    """
    try:
        shape = tuple(check_int(s, "shape entry", min_value=0) for s in shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a sequence of non-negative integers, got {shape!r}") from exc
    drop_prob = check_probability(drop_prob, "drop_prob")
    if device is None:
        device = generator.device if isinstance(generator, torch.Generator) else torch.device("cpu")
    generator = _check_generator(generator, device)
    return torch.empty(shape, dtype=torch.bool, device=device).bernoulli_(1.0 - drop_prob, generator=generator)


def apply_mask(x: Tensor, mask: Tensor, keep_prob: float) -> Tensor:
    """Inverted dropout with a given mask: ``x * mask / keep_prob``.

    ``keep_prob = 0`` returns ``x * 0`` (zeros, no division by zero). Differentiable in ``x``.

    Shape:
        x: any; mask: boolean (or 0/1), broadcastable to ``x.shape``; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    keep_prob = check_probability(keep_prob, "keep_prob")
    try:
        ok = torch.broadcast_shapes(mask.shape, x.shape) == x.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to x's shape {tuple(x.shape)}")
    scale = mask.to(dtype=x.dtype, device=x.device)
    if keep_prob > 0.0:
        scale = scale.div(keep_prob)
    else:
        scale = scale.mul(0.0)
    return x * scale


def dropout(
    x: Tensor, drop_prob: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Inverted dropout: ``x * m / keep_prob``, ``m ~ Bernoulli(keep_prob)`` per element.

    ``E[out] = x`` and ``Var[out] = x^2 * drop_prob / keep_prob``. Returns ``x`` itself
    when ``training`` is False or ``drop_prob == 0`` (as ``F.dropout`` does), and ``x * 0``
    when ``drop_prob == 1``. Same result as ``torch.nn.functional.dropout`` for the same
    random state, but takes a ``generator``.

    Shape:
        x: any shape; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    drop_prob = _probability(drop_prob, "drop_prob")
    if not _check_training(training) or drop_prob == 0.0:
        return x
    generator = _check_generator(generator, x.device)
    return x * _noise(x.shape, 1.0 - drop_prob, x, generator)


def spatial_dropout(
    x: Tensor, drop_prob: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Spatial (channel) dropout: zero whole feature maps, scale the kept ones by ``1/keep_prob``.

    One Bernoulli(keep_prob) variable per (sample, channel) pair, shared over all the
    positions ``*`` (Tompson et al., 2015). Same distribution as ``nn.Dropout1d/2d/3d``
    (and the same mask as ``F.dropout2d`` for the same random state on the CPU).

    Shape:
        x: ``(N, C, *)`` with at least one position dimension; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    if x.ndim < 3:
        raise ValueError(f"x must have shape (N, C, *) with at least 3 dimensions, got {tuple(x.shape)}")
    drop_prob = _probability(drop_prob, "drop_prob")
    if not _check_training(training) or drop_prob == 0.0:
        return x
    generator = _check_generator(generator, x.device)
    shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)
    return x * _noise(shape, 1.0 - drop_prob, x, generator)


def gaussian_dropout(
    x: Tensor, drop_prob: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Gaussian dropout: ``x * xi``, ``xi ~ N(1, drop_prob / keep_prob)`` per element.

    Matches inverted dropout's mean (``x``) and variance (``x^2 drop_prob/keep_prob``)
    (Srivastava et al., 2014, section 10). ``drop_prob`` in [0, 1); identity in evaluation.

    Shape:
        x: any shape; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    drop_prob = _probability(drop_prob, "drop_prob", include_one=False)
    if not _check_training(training) or drop_prob == 0.0:
        return x
    generator = _check_generator(generator, x.device)
    std = math.sqrt(drop_prob / (1.0 - drop_prob))
    noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return x * noise.mul_(std).add_(1.0)


def dropconnect_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    drop_prob: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DropConnect linear layer (Wan et al., 2013): drop weights, not units.

    Training: ``y = x @ (M * W / keep_prob)^T + b`` with ``M ~ Bernoulli(keep_prob)`` of
    the weight's shape, one mask per call (shared by the batch). Evaluation:
    ``F.linear(x, W, b)``. The bias is never dropped.

    Shape:
        x: ``(*, in)``; weight: ``(out, in)`` (torch's layout); bias: ``(out,)`` or None;
        y: ``(*, out)``.
    """
    x = check_float_tensor(x)
    weight = check_float_tensor(weight, "weight")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"weight must have shape (out, in) with in = x.shape[-1]; got weight {tuple(weight.shape)}, "
            f"x {tuple(x.shape)}"
        )
    if bias is not None:
        bias = check_float_tensor(bias, "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    drop_prob = _probability(drop_prob, "drop_prob")
    if not _check_training(training) or drop_prob == 0.0:
        return F.linear(x, weight, bias)
    generator = _check_generator(generator, weight.device)
    return F.linear(x, weight * _noise(weight.shape, 1.0 - drop_prob, weight, generator), bias)


def locked_dropout(
    x: Tensor,
    drop_prob: float,
    training: bool = True,
    generator: torch.Generator | None = None,
    batch_first: bool = False,
) -> Tensor:
    """Locked (variational) dropout for sequences: one mask per sequence, shared over time.

    Each (sample, feature) pair is kept with probability ``keep_prob`` for **all** time
    steps, and scaled by ``1/keep_prob`` (Gal & Ghahramani, 2016; "locked dropout" of
    Merity et al., 2018). Identity in evaluation.

    Shape:
        x: ``(T, N, F)`` (``batch_first=False``, ``nn.LSTM``'s default) or ``(N, T, F)``;
        the mask has shape ``(1, N, F)`` or ``(N, 1, F)``; out: ``x.shape``.
    """
    x = check_float_tensor(x)
    if x.ndim != 3:
        raise ValueError(f"x must have 3 dimensions (T, N, F) or (N, T, F), got shape {tuple(x.shape)}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first must be a bool, got {type(batch_first).__name__}")
    drop_prob = _probability(drop_prob, "drop_prob")
    if not _check_training(training) or drop_prob == 0.0:
        return x
    generator = _check_generator(generator, x.device)
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    return x * _noise(shape, 1.0 - drop_prob, x, generator)


# --------------------------------------------------------------------------- modules


class _StochasticLayer(nn.Module):
    """Base of reglib's random layers: a ``drop_prob`` and an optional ``generator``.

    ``mc_dropout_predict`` recognises these layers (and torch's dropout layers).
    """

    def __init__(self, drop_prob: float, generator: torch.Generator | None = None, *, allow_one: bool = True):
        super().__init__()
        self.drop_prob = check_probability(drop_prob, "drop_prob", include_one=allow_one)
        self.generator = _check_generator(generator)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Dropout(_StochasticLayer):
    """Module form of :func:`dropout` (like ``nn.Dropout(p=drop_prob)``, plus a generator)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.drop_prob, self.training, self.generator)


class SpatialDropout(_StochasticLayer):
    """Module form of :func:`spatial_dropout` (like ``nn.Dropout2d``, any ``(N, C, *)``)."""

    def forward(self, x: Tensor) -> Tensor:
        return spatial_dropout(x, self.drop_prob, self.training, self.generator)


class GaussianDropout(_StochasticLayer):
    """Module form of :func:`gaussian_dropout` (``drop_prob`` in [0, 1))."""

    def __init__(self, drop_prob: float, generator: torch.Generator | None = None):
        super().__init__(drop_prob, generator, allow_one=False)

    def forward(self, x: Tensor) -> Tensor:
        return gaussian_dropout(x, self.drop_prob, self.training, self.generator)


class LockedDropout(_StochasticLayer):
    """Module form of :func:`locked_dropout`."""

    def __init__(self, drop_prob: float, batch_first: bool = False, generator: torch.Generator | None = None):
        super().__init__(drop_prob, generator)
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first must be a bool, got {type(batch_first).__name__}")
        self.batch_first = batch_first

    def forward(self, x: Tensor) -> Tensor:
        return locked_dropout(x, self.drop_prob, self.training, self.generator, self.batch_first)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, batch_first={self.batch_first}"


class DropConnectLinear(nn.Linear):
    """``nn.Linear`` with DropConnect on its weights (see :func:`dropconnect_linear`).

    Same parameters and initialisation as ``nn.Linear(in_features, out_features, bias)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        drop_prob: float,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self.drop_prob = check_probability(drop_prob, "drop_prob")
        self.generator = _check_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return dropconnect_linear(x, self.weight, self.bias, self.drop_prob, self.training, self.generator)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", drop_prob={self.drop_prob}"


# --------------------------------------------------------------------------- sparse variational dropout

# constants of the approximation in Molchanov, Ashukha & Vetrov (2017), eq. (14)
_K1, _K2, _K3 = 0.63576, 1.87320, 1.48695


def vd_kl_approx(log_alpha: Tensor) -> Tensor:
    """Molchanov et al.'s (2017) approximation of ``KL(q(w|theta, alpha) || p(w))``, per weight.

    For the log-uniform prior and ``q = N(theta, alpha theta^2)`` the paper fits
    ``-KL ~= k1 sigmoid(k2 + k3 log_alpha) - 0.5 log(1 + 1/alpha) + C`` with
    ``k1 = 0.63576, k2 = 1.87320, k3 = 1.48695`` and ``C = -k1`` (so KL -> 0 as
    alpha -> inf). This returns the (positive) KL:
    ``k1 - k1 sigmoid(k2 + k3 log_alpha) + 0.5 softplus(-log_alpha)``.

    Shape:
        log_alpha: any shape; out: same shape (sum it for the layer's KL).
    """
    log_alpha = check_float_tensor(log_alpha, "log_alpha")
    return _K1 - _K1 * torch.sigmoid(_K2 + _K3 * log_alpha) + 0.5 * F.softplus(-log_alpha)


class VariationalDropoutLinear(nn.Module):
    """Linear layer with sparse variational dropout (Molchanov, Ashukha & Vetrov, 2017).

    Each weight has a Gaussian posterior ``w_ij ~ N(theta_ij, sigma2_ij)`` with its own
    dropout rate ``alpha_ij = sigma2_ij / theta_ij^2`` (Gaussian-dropout variance
    ``alpha = drop_prob/keep_prob``). Parameters, as in the paper's additive
    reparameterisation: ``weight`` (theta, torch layout ``(out, in)``), ``log_sigma2`` and
    ``bias``; ``log_alpha = clamp(log_sigma2 - log(theta^2), -8, 8)`` (the clamp is the
    authors' code's).

    * training, local reparameterisation: ``y = mu + sqrt(s2) * eps`` with
      ``mu = x theta^T + b``, ``s2 = x^2 sigma2^T``, ``eps ~ N(0, 1)`` per output;
    * evaluation: deterministic ``y = x (theta * [log_alpha <= threshold])^T + b``: weights
      with ``log_alpha > threshold`` (default 3, i.e. alpha > 20, keep_prob < 0.05) are
      pruned;
    * :meth:`kl` is the layer's KL term (:func:`vd_kl_approx` summed); add
      ``kl() / n_train`` (times a weight annealed from 0 to 1) to the mean data loss.

    Shape:
        x: ``(*, in_features)``; out: ``(*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        threshold: float = 3.0,
        init_log_sigma2: float = -10.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", min_value=1)
        self.out_features = check_int(out_features, "out_features", min_value=1)
        self.threshold = check_scalar(threshold, "threshold")
        init_log_sigma2 = check_scalar(init_log_sigma2, "init_log_sigma2")
        self.generator = _check_generator(generator)
        ref = nn.Linear(self.in_features, self.out_features, bias=bias)  # torch's initialisation
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if bias else None
        self.log_sigma2 = nn.Parameter(torch.full_like(self.weight, init_log_sigma2))

    @property
    def log_alpha(self) -> Tensor:
        """Per-weight ``log(sigma2 / theta^2)``, clamped to [-8, 8]; shape ``(out, in)``."""
        return torch.clamp(self.log_sigma2 - torch.log(self.weight**2 + 1e-16), -8.0, 8.0)

    def weight_mask(self) -> Tensor:
        """Boolean ``(out, in)`` mask of the weights kept in evaluation (``log_alpha <= threshold``)."""
        return self.log_alpha <= self.threshold

    def sparsity(self) -> float:
        """Fraction of weights pruned in evaluation (``log_alpha > threshold``)."""
        with torch.no_grad():
            return float((~self.weight_mask()).float().mean())

    def kl(self) -> Tensor:
        """Sum over weights of the approximate KL (:func:`vd_kl_approx`); a scalar tensor."""
        return vd_kl_approx(self.log_alpha).sum()

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mu = F.linear(x, self.weight, self.bias)
            s2 = F.linear(x * x, torch.exp(self.log_sigma2))
            eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=self.generator)
            return mu + torch.sqrt(s2 + 1e-8) * eps
        return F.linear(x, self.weight * self.weight_mask(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, threshold={self.threshold}"
        )


# --------------------------------------------------------------------------- MC dropout

#: Module types that ``mc_dropout_predict`` keeps in training mode (reglib's random layers
#: are found through their base class; ``reglib.torch.depth`` layers are added there).
STOCHASTIC_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    _StochasticLayer,
    DropConnectLinear,
    VariationalDropoutLinear,
)


def _is_stochastic(module: nn.Module) -> bool:
    return isinstance(module, STOCHASTIC_LAYERS) or getattr(module, "_reglib_stochastic", False)


def mc_dropout_predict(
    model: nn.Module, x: Tensor, n_samples: int, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Monte Carlo dropout prediction (Gal & Ghahramani, 2016).

    Runs ``n_samples`` stochastic forward passes with every dropout-like layer in training
    mode and everything else (batch norm, ...) in evaluation mode, and returns the mean and
    the standard deviation (``unbiased=False``) over the passes of the softmax
    probabilities. The model's train/eval flags are restored afterwards, even on error.
    Gradients are not tracked.

    Randomness (honest version): with ``generator=None`` every layer uses its own generator
    or torch's global RNG. With a ``generator``, each reglib layer uses it (its own
    ``generator`` attribute is restored afterwards), and torch's built-in dropout layers,
    which cannot take a generator, draw from torch's global RNG **seeded from**
    ``generator`` inside ``torch.random.fork_rng`` (the global state is left as it was). So
    the result is reproducible for a given generator state, but the built-in layers'
    masks are not drawn from ``generator``'s own stream. The generator must be on ``x``'s
    device type.

    Dropout-like layers: ``STOCHASTIC_LAYERS`` (torch's ``nn.Dropout*``, ``AlphaDropout``,
    reglib's dropout layers, ``DropPath``/``StochasticDepthBlock``/``LayerDropSequential``
    of :mod:`reglib.torch.depth`).

    Shape:
        x: the model's input ``(N, ...)``; the model returns logits ``(N, K)``;
        returns ``(mean, std)``, each ``(N, K)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_float_tensor(x)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    generator = _check_generator(generator)
    modes = [(m, m.training) for m in model.modules()]
    saved_gens: list[tuple[nn.Module, Any]] = []
    try:
        model.eval()
        for m in model.modules():
            if _is_stochastic(m):
                m.training = True  # this module only: its children (a branch's batch norm) stay in eval
                if generator is not None and hasattr(m, "generator"):
                    saved_gens.append((m, m.generator))
                    m.generator = generator
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices, enabled=generator is not None):
            if generator is not None:
                seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
                torch.manual_seed(seed)
            probs = torch.stack([torch.softmax(model(x), dim=-1) for _ in range(n_samples)])
    finally:
        for m, g in saved_gens:
            m.generator = g
        for m, flag in modes:
            m.training = flag
    return probs.mean(0), probs.std(0, unbiased=False)
