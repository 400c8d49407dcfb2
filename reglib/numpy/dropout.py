"""Dropout and its relatives, from scratch in NumPy (forward and backward passes).

Conventions used throughout (the book's, and torch's):

* ``drop_prob`` is the probability of **zeroing** a unit (torch's ``p``);
  ``keep_prob = 1 - drop_prob`` is written ``q`` in the formulas.
* **Inverted dropout**: in training a kept unit is scaled by ``1/keep_prob`` so that the
  expected output equals the input; in evaluation the layer is the identity. (The original
  paper instead scaled by ``keep_prob`` at test time; the two agree in expectation.)
* A mask is a boolean array, ``True`` where the unit is **kept**.
* Sampling is separated from applying: :func:`dropout_mask` draws a mask from an explicit
  ``rng: np.random.Generator``; the ``*_forward`` functions accept a given ``mask`` (or
  ``noise``), which makes them pure and exactly testable.
* Layers are ``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache)``.

This module never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reglib._validation import as_float_array, check_probability, check_rng

__all__ = [
    "dropout_mask",
    "apply_mask",
    "dropout_forward",
    "dropout_backward",
    "gaussian_dropout_noise",
    "gaussian_dropout_forward",
    "gaussian_dropout_backward",
    "dropconnect_forward",
    "dropconnect_backward",
    "dropout_moments",
    "linear_dropout_penalty",
]


# --------------------------------------------------------------------------- helpers


def _check_training(training: Any) -> bool:
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__} {training!r}")
    return bool(training)


def _as_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
        ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape)
    except TypeError:
        ok = False
    if not ok or any(s < 0 for s in out):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    return out


def _check_mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """A boolean mask broadcastable to ``shape`` (0/1 integer arrays are accepted)."""
    if hasattr(mask, "detach") and hasattr(mask, "numpy"):
        raise TypeError(f"{name} must be a numpy array, got a torch tensor")
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        if not np.issubdtype(m.dtype, np.number) or not np.all((m == 0) | (m == 1)):
            raise ValueError(f"{name} must be boolean (True = kept) or hold only 0 and 1, got dtype {m.dtype}")
        m = m.astype(bool)
    try:
        np.broadcast_shapes(m.shape, shape)
        ok = np.broadcast_shapes(m.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {m.shape} does not broadcast to the input shape {shape}")
    return m


# --------------------------------------------------------------------------- dropout


def dropout_mask(shape: int | tuple[int, ...], drop_prob: float, *, rng: np.random.Generator) -> np.ndarray:
    """Sample a dropout mask: ``True`` (kept) with probability ``keep_prob = 1 - drop_prob``.

    Each entry is an independent Bernoulli(keep_prob) variable, drawn as
    ``rng.random(shape) < keep_prob``; so ``drop_prob = 0`` keeps everything and
    ``drop_prob = 1`` drops everything.

    Shape:
        returns a boolean array of shape ``shape``. Pass a shape with ones where the mask
        should be shared, e.g. ``(N, C, 1, 1)`` to drop whole channels (spatial dropout).
    """
    shape = _as_shape(shape)
    drop_prob = check_probability(drop_prob, "drop_prob")
    rng = check_rng(rng)
    return rng.random(shape) < (1.0 - drop_prob)


def apply_mask(x: Any, mask: Any, keep_prob: float) -> np.ndarray:
    """Inverted dropout with a given mask: ``out = x * mask / keep_prob``.

    ``keep_prob = 0`` returns zeros (nothing is kept, and nothing is divided by zero).

    Shape:
        x: any shape; mask: boolean, broadcastable to ``x.shape``; out: ``x.shape``.
    """
    x = as_float_array(x, "x")
    keep_prob = check_probability(keep_prob, "keep_prob")
    m = _check_mask(mask, x.shape)
    if keep_prob == 0.0:
        return np.zeros_like(x)
    return x * m * x.dtype.type(1.0 / keep_prob)


def dropout_forward(
    x: Any,
    drop_prob: float,
    *,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: Any = None,
) -> tuple[np.ndarray, dict]:
    """Inverted dropout layer, forward pass.

    Training: ``out = x * m / keep_prob`` with ``m_i ~ Bernoulli(keep_prob)`` independent,
    so ``E[out] = x`` and ``Var[out_i] = x_i^2 * drop_prob / keep_prob`` (see
    :func:`dropout_moments`). Evaluation (``training=False``): ``out = x``.

    Args:
        x: input activations.
        drop_prob: probability of zeroing each unit, in [0, 1]. ``0`` is the identity;
            ``1`` returns zeros.
        training: apply dropout (True) or the identity (False).
        rng: generator for the mask; required in training unless ``mask`` is given.
        mask: a given boolean mask (``True`` = kept), broadcastable to ``x.shape``; used
            instead of sampling (for exact tests, or to share a mask between layers).

    Returns:
        ``(out, cache)``; ``cache`` holds the mask and scale for :func:`dropout_backward`.

    Shape:
        x: any shape; mask: broadcastable to ``x.shape``; out: ``x.shape``.
    """
    x = as_float_array(x, "x")
    drop_prob = check_probability(drop_prob, "drop_prob")
    training = _check_training(training)
    if mask is not None and rng is not None:
        raise ValueError("give either rng or mask, not both (got both)")
    keep_prob = 1.0 - drop_prob
    if not training or (drop_prob == 0.0 and mask is None):
        return x.copy(), {"mask": None, "scale": 1.0, "shape": x.shape}
    if mask is None:
        if rng is None:
            raise ValueError("rng must be a numpy.random.Generator in training (or pass mask), got None")
        mask = dropout_mask(x.shape, drop_prob, rng=rng)
    else:
        mask = _check_mask(mask, x.shape)
    scale = 0.0 if keep_prob == 0.0 else 1.0 / keep_prob
    out = x * mask * x.dtype.type(scale)
    return out, {"mask": mask, "scale": scale, "shape": x.shape}


def dropout_backward(dout: Any, cache: dict) -> np.ndarray:
    """Backward pass of :func:`dropout_forward`: ``dx = dout * m / keep_prob``.

    The cached mask is reused, so the gradient flows only through the kept units.

    Shape:
        dout: the output's shape; dx: the same.
    """
    dout = as_float_array(dout, "dout")
    if tuple(dout.shape) != tuple(cache["shape"]):
        raise ValueError(f"dout must have the forward output's shape {cache['shape']}, got {dout.shape}")
    if cache["mask"] is None:
        return dout.copy()
    return dout * cache["mask"] * dout.dtype.type(cache["scale"])


# --------------------------------------------------------------------------- Gaussian dropout


def _check_gaussian_drop_prob(drop_prob: Any) -> float:
    # drop_prob = 1 would need infinite noise variance drop_prob / keep_prob
    return check_probability(drop_prob, "drop_prob", include_one=False)


def gaussian_dropout_noise(
    shape: int | tuple[int, ...], drop_prob: float, *, rng: np.random.Generator
) -> np.ndarray:
    """Sample multiplicative Gaussian noise ``xi ~ N(1, drop_prob / keep_prob)``.

    The variance ``drop_prob / keep_prob`` is that of inverted-dropout's factor
    ``m / keep_prob``, so ``x * xi`` has the same mean and variance as inverted dropout
    (Srivastava et al., 2014, section 10). ``drop_prob`` must be in [0, 1).

    Shape:
        returns a float64 array of shape ``shape``.
    """
    shape = _as_shape(shape)
    drop_prob = _check_gaussian_drop_prob(drop_prob)
    rng = check_rng(rng)
    return 1.0 + np.sqrt(drop_prob / (1.0 - drop_prob)) * rng.standard_normal(shape)


def gaussian_dropout_forward(
    x: Any,
    drop_prob: float,
    *,
    training: bool = True,
    rng: np.random.Generator | None = None,
    noise: Any = None,
) -> tuple[np.ndarray, dict]:
    """Gaussian dropout, forward pass: ``out = x * xi`` with ``xi ~ N(1, drop_prob/keep_prob)``.

    Same first two moments as inverted dropout with the same ``drop_prob``:
    ``E[out] = x``, ``Var[out_i] = x_i^2 * drop_prob / keep_prob``. Identity in evaluation.

    Args:
        x: input activations.
        drop_prob: in [0, 1) (``1`` would need infinite variance); ``0`` is the identity.
        training: apply the noise (True) or the identity (False).
        rng: generator for the noise; required in training unless ``noise`` is given.
        noise: a given multiplicative noise array ``xi`` (broadcastable to ``x.shape``).

    Returns:
        ``(out, cache)`` for :func:`gaussian_dropout_backward`.

    Shape:
        x: any shape; noise: broadcastable to ``x.shape``; out: ``x.shape``.
    """
    x = as_float_array(x, "x")
    drop_prob = _check_gaussian_drop_prob(drop_prob)
    training = _check_training(training)
    if noise is not None and rng is not None:
        raise ValueError("give either rng or noise, not both (got both)")
    if not training or (drop_prob == 0.0 and noise is None):
        return x.copy(), {"noise": None, "shape": x.shape}
    if noise is None:
        if rng is None:
            raise ValueError("rng must be a numpy.random.Generator in training (or pass noise), got None")
        noise = gaussian_dropout_noise(x.shape, drop_prob, rng=rng)
    else:
        noise = as_float_array(noise, "noise")
        try:
            ok = np.broadcast_shapes(noise.shape, x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"noise of shape {noise.shape} does not broadcast to the input shape {x.shape}")
    noise = noise.astype(x.dtype, copy=False)
    return x * noise, {"noise": noise, "shape": x.shape}


def gaussian_dropout_backward(dout: Any, cache: dict) -> np.ndarray:
    """Backward pass of :func:`gaussian_dropout_forward`: ``dx = dout * xi``.

    Shape:
        dout: the output's shape; dx: the same.
    """
    dout = as_float_array(dout, "dout")
    if tuple(dout.shape) != tuple(cache["shape"]):
        raise ValueError(f"dout must have the forward output's shape {cache['shape']}, got {dout.shape}")
    if cache["noise"] is None:
        return dout.copy()
    return dout * cache["noise"]


# --------------------------------------------------------------------------- DropConnect


def dropconnect_forward(
    x: Any,
    W: Any,
    b: Any,
    drop_prob: float,
    *,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: Any = None,
) -> tuple[np.ndarray, dict]:
    """DropConnect dense layer (Wan et al., 2013), forward pass.

    Training: ``y = x @ (M * W) / keep_prob + b`` where ``M`` is a Bernoulli(keep_prob)
    mask over the **weights** (one mask per call, shared by the rows of the batch).
    Evaluation: ``y = x @ W + b`` (inverted scaling, so the expectation over ``M`` of the
    training output equals the evaluation output). The bias is never dropped.

    Args:
        x: inputs; W: weights in the ``(d_in, d_out)`` layout (``y = x @ W``, *not*
            torch's ``(out, in)``); b: bias.
        drop_prob: probability of dropping each weight, in [0, 1]; ``1`` leaves ``y = b``.
        training, rng, mask: as in :func:`dropout_forward`; ``mask`` has ``W``'s shape.

    Returns:
        ``(y, cache)`` for :func:`dropconnect_backward`.

    Shape:
        x: ``(N, d_in)``; W: ``(d_in, d_out)``; b: ``(d_out,)``; mask: ``(d_in, d_out)``;
        y: ``(N, d_out)``.
    """
    x = as_float_array(x, "x", ndim=2)
    W = as_float_array(W, "W", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    if W.shape[0] != x.shape[1]:
        raise ValueError(f"W must have shape (d_in, d_out) with d_in = x.shape[1] = {x.shape[1]}, got {W.shape}")
    if b.shape[0] != W.shape[1]:
        raise ValueError(f"b must have shape (d_out,) = ({W.shape[1]},), got {b.shape}")
    drop_prob = check_probability(drop_prob, "drop_prob")
    training = _check_training(training)
    if mask is not None and rng is not None:
        raise ValueError("give either rng or mask, not both (got both)")
    if not training or (drop_prob == 0.0 and mask is None):
        W_eff, mask, scale = W, None, 1.0
    else:
        if mask is None:
            if rng is None:
                raise ValueError("rng must be a numpy.random.Generator in training (or pass mask), got None")
            mask = dropout_mask(W.shape, drop_prob, rng=rng)
        else:
            mask = _check_mask(mask, W.shape)
            if mask.shape != W.shape:
                raise ValueError(f"mask must have W's shape {W.shape}, got {mask.shape}")
        keep_prob = 1.0 - drop_prob
        scale = 0.0 if keep_prob == 0.0 else 1.0 / keep_prob
        W_eff = W * mask * scale
    y = x @ W_eff + b
    return y, {"x": x, "W_eff": W_eff, "mask": mask, "scale": scale}


def dropconnect_backward(dout: Any, cache: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`dropconnect_forward`.

    With ``W_eff = M * W / keep_prob``: ``dx = dout @ W_eff.T``,
    ``dW = (x.T @ dout) * M / keep_prob``, ``db = dout.sum(axis=0)``.

    Shape:
        dout: ``(N, d_out)``; returns ``dx (N, d_in)``, ``dW (d_in, d_out)``, ``db (d_out,)``.
    """
    x, W_eff = cache["x"], cache["W_eff"]
    dout = as_float_array(dout, "dout", ndim=2)
    if dout.shape != (x.shape[0], W_eff.shape[1]):
        raise ValueError(f"dout must have shape {(x.shape[0], W_eff.shape[1])}, got {dout.shape}")
    dx = dout @ W_eff.T
    dW = x.T @ dout
    if cache["mask"] is not None:
        dW = dW * cache["mask"] * cache["scale"]
    db = dout.sum(axis=0)
    return dx, dW, db


# --------------------------------------------------------------------------- theory


def dropout_moments(h: Any, drop_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and variance of an inverted-dropout unit ``h * m / q``, ``m ~ Bernoulli(q)``.

    With keep probability ``q = 1 - drop_prob``:
    ``E = h`` and ``Var = h^2 (1 - q) / q = h^2 * drop_prob / keep_prob``.
    ``drop_prob`` must be in [0, 1) (at ``q = 0`` inverted dropout is undefined).

    Shape:
        h: any shape; returns ``(mean, var)``, each of ``h``'s shape.
    """
    h = as_float_array(h, "h")
    drop_prob = check_probability(drop_prob, "drop_prob", include_one=False)
    return h.copy(), h**2 * (drop_prob / (1.0 - drop_prob))


def linear_dropout_penalty(X: Any, w: Any, drop_prob: float) -> float:
    """The penalty that input dropout adds to least squares, in expectation over masks.

    For inverted dropout on the inputs of a linear model, with an independent mask
    ``M_ij ~ Bernoulli(q)``, ``q = keep_prob = 1 - drop_prob``, the identity

        ``E_M ||y - ((M * X) / q) w||^2 = ||y - X w||^2 + ((1 - q) / q) sum_j w_j^2 sum_i X_ij^2``

    holds exactly (each row's prediction is unbiased; its variance is the penalty's
    row term). This function returns the last term,
    ``(drop_prob / keep_prob) * sum_j w_j^2 * sum_i X_ij^2``: an L2 penalty whose weight on
    ``w_j`` grows with the energy of feature ``j`` (an "adaptive" ridge, Wager et al., 2013).

    Shape:
        X: ``(n, d)``; w: ``(d,)``; returns a float.
    """
    X = as_float_array(X, "X", ndim=2)
    w = as_float_array(w, "w", ndim=1)
    if w.shape[0] != X.shape[1]:
        raise ValueError(f"w must have shape (d,) = ({X.shape[1]},) to match X {X.shape}, got {w.shape}")
    drop_prob = check_probability(drop_prob, "drop_prob", include_one=False)
    ratio = drop_prob / (1.0 - drop_prob)
    return float(ratio * np.sum(w**2 * np.sum(X**2, axis=0)))
