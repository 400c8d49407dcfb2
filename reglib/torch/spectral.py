"""Spectral normalization (Miyato et al., 2018) and Lipschitz bounds in PyTorch.

``power_iteration`` estimates the largest singular value ``sigma_1`` of a weight (a conv
weight ``(out, in, kh, kw)`` is read as the ``(out, in*kh*kw)`` matrix, as in the paper and in
torch). ``SpectralNorm`` is a parametrization (``torch.nn.utils.parametrize``) that replaces
a layer's weight by ``W / sigma`` with one power-iteration step per training forward and a
persistent vector ``u``; ``spectral_normalize_`` registers it on a ``nn.Linear`` or
``nn.Conv*d``. ``network_lipschitz_bound`` multiplies the layers' spectral norms.

Ordering of a step: from the stored left vector ``u`` (Miyato et al., Algorithm 1)::

    v <- W^T u / ||W^T u||,   u <- W v / ||W v||,   sigma = u^T W v  (= ||W v||).

``torch.nn.utils.parametrizations.spectral_norm`` does the same two half-steps starting from
its stored ``v`` (``u <- W v``, then ``v <- W^T u``) and reports ``u^T W v = ||W^T u||``: the
sequences of vectors are the same, shifted by half a step, and both estimates converge to
``sigma_1`` from below. The gradient treats ``u`` and ``v`` as constants:
``d sigma / d W = u v^T``, exact once the vectors have converged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from reglib._validation import check_int, check_scalar
from reglib.torch._checks import check_float_tensor

__all__ = [
    "power_iteration",
    "SpectralNorm",
    "spectral_normalize_",
    "network_lipschitz_bound",
]


def _as_matrix(weight: Tensor) -> Tensor:
    """``(out, *)`` -> ``(out, prod(*))``: dim 0 (the outputs) stays the row index."""
    return weight.reshape(weight.shape[0], -1)


def _unit(v: Tensor, eps: float) -> Tensor:
    return v / torch.linalg.vector_norm(v).clamp_min(eps)


def power_iteration(
    weight: Tensor, u: Tensor, n_iters: int = 1, *, eps: float = 1e-12
) -> tuple[Tensor, Tensor, Tensor]:
    """``n_iters`` power-iteration steps from ``u``; returns ``(sigma, u, v)``.

    Each step: ``v <- W^T u / ||W^T u||``, ``u <- W v / ||W v||``; then ``sigma = u^T W v``,
    an estimate of the largest singular value of ``W`` that increases towards it with the
    iterations (``eps`` guards the division by a zero norm). The vectors are computed
    without gradient; ``sigma`` is differentiable in ``weight`` with ``d sigma / d W = u v^T``
    (``u``, ``v`` held fixed). Nothing is modified in place.

    Shape:
        weight: ``(m, *)``, read as the ``(m, n)`` matrix ``weight.reshape(m, -1)``;
        u: ``(m,)``. Returns sigma (0-d tensor), u ``(m,)``, v ``(n,)``.
    """
    weight = check_float_tensor(weight, "weight")
    if weight.ndim < 2:
        raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
    u = check_float_tensor(u, "u")
    if tuple(u.shape) != (weight.shape[0],):
        raise ValueError(f"u must have shape ({weight.shape[0]},) (one entry per output), got shape {tuple(u.shape)}")
    n_iters = check_int(n_iters, "n_iters", min_value=1)
    eps = check_scalar(eps, "eps", min_value=0.0, include_min=False)
    mat = _as_matrix(weight)
    with torch.no_grad():
        w = mat.detach()
        u = _unit(u.to(w.dtype), eps)
        for _ in range(n_iters):
            v = _unit(w.mT @ u, eps)
            u = _unit(w @ v, eps)
    sigma = torch.dot(u, mat @ v)
    return sigma, u, v


class SpectralNorm(nn.Module):
    """Parametrization ``W -> W / sigma(W)`` with a persistent power-iteration vector.

    Register it with :func:`spectral_normalize_` (or
    ``torch.nn.utils.parametrize.register_parametrization``). In training mode every access
    to the weight runs ``n_power_iterations`` steps of :func:`power_iteration` from the
    stored ``u`` and stores the new ``u`` and ``v`` (buffers, so they move with ``.to()`` and
    are saved in the state dict); in eval mode the stored vectors are reused, so
    ``sigma = u^T W v`` is the estimate of the last training step.

    Args:
        weight: the weight to be normalized (used for shapes and the warm-up).
        n_power_iterations: steps per training forward (1 in the paper and in torch).
        init_iters: warm-up steps at construction (torch does 15; 0 starts cold).
        u0: start vector ``(out,)``; if ``None`` it is drawn from ``generator``
            (``None``: torch's global RNG).
        eps: guard of the vector normalizations.

    Shape:
        weight: ``(out, *)``; ``u``: ``(out,)``; ``v``: ``(prod(*),)``.
    """

    u: Tensor
    v: Tensor

    def __init__(
        self,
        weight: Tensor,
        *,
        n_power_iterations: int = 1,
        init_iters: int = 15,
        u0: Tensor | None = None,
        generator: torch.Generator | None = None,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        weight = check_float_tensor(weight, "weight")
        if weight.ndim < 2:
            raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
        self.n_power_iterations = check_int(n_power_iterations, "n_power_iterations", min_value=1)
        init_iters = check_int(init_iters, "init_iters", min_value=0)
        self.eps = check_scalar(eps, "eps", min_value=0.0, include_min=False)
        m = weight.shape[0]
        if u0 is None:
            dev = generator.device if generator is not None else weight.device
            u0 = torch.randn(m, generator=generator, device=dev, dtype=weight.dtype).to(weight.device)
        else:
            u0 = check_float_tensor(u0, "u0")
            if tuple(u0.shape) != (m,):
                raise ValueError(f"u0 must have shape ({m},), got shape {tuple(u0.shape)}")
            if not bool(u0.ne(0).any()):
                raise ValueError("u0 must be non-zero, got the zero vector")
            u0 = u0.detach().to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            w = _as_matrix(weight.detach())
            u = _unit(u0, self.eps)
            for _ in range(init_iters):
                v = _unit(w.mT @ u, self.eps)
                u = _unit(w @ v, self.eps)
            v = _unit(w.mT @ u, self.eps)  # a consistent v for eval before any training step
        self.register_buffer("u", u.clone())
        self.register_buffer("v", v.clone())

    def forward(self, weight: Tensor) -> Tensor:
        if self.training:
            sigma, self.u, self.v = power_iteration(weight, self.u, self.n_power_iterations, eps=self.eps)
        else:
            sigma = torch.dot(self.u, _as_matrix(weight) @ self.v)
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        """Assigning to the weight stores the value as given (as torch's spectral_norm)."""
        return value

    def extra_repr(self) -> str:
        return f"n_power_iterations={self.n_power_iterations}"


_SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def spectral_normalize_(
    module: nn.Module,
    name: str = "weight",
    *,
    n_power_iterations: int = 1,
    init_iters: int = 15,
    u0: Tensor | None = None,
    generator: torch.Generator | None = None,
    eps: float = 1e-12,
) -> nn.Module:
    """Register :class:`SpectralNorm` on ``module.<name>`` in place and return the module.

    Works for ``nn.Linear`` (weight ``(out, in)``) and ``nn.Conv1d/2d/3d`` (weight
    ``(out, in/groups, *kernel)``, normalized as the matrix ``(out, in/groups*prod(kernel))``,
    a surrogate for the conv's true operator norm, as in the paper). The raw weight lives in
    ``module.parametrizations.<name>.original``; remove with
    ``torch.nn.utils.parametrize.remove_parametrizations(module, name)``. Registering runs
    exactly ``init_iters`` power-iteration steps (torch's ``spectral_norm`` runs one more,
    inside the parametrization's registration check).
    """
    if not isinstance(module, _SUPPORTED):
        raise TypeError(
            f"module must be an nn.Linear or nn.Conv1d/2d/3d, got {type(module).__name__}"
        )
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"name must be the name of a tensor of module, got {name!r}")
    parametrize.register_parametrization(
        module,
        name,
        SpectralNorm(
            weight,
            n_power_iterations=n_power_iterations,
            init_iters=init_iters,
            u0=u0,
            generator=generator,
            eps=eps,
        ),
        # unsafe=True skips torch's consistency check, which would call forward once and so
        # run a power-iteration step at registration (the output keeps shape and dtype)
        unsafe=True,
    )
    return module


# Lipschitz constants of the element-wise maps allowed between linear layers
def _activation_constant(layer: nn.Module) -> float | None:
    if isinstance(layer, (nn.ReLU, nn.Tanh, nn.Identity, nn.Flatten, nn.Hardtanh, nn.Softsign)):
        return 1.0
    if isinstance(layer, nn.Sigmoid):
        return 0.25
    if isinstance(layer, nn.LeakyReLU):
        return max(1.0, abs(float(layer.negative_slope)))
    if isinstance(layer, nn.Dropout):
        return 1.0  # identity in eval mode, which is where the bound is meant
    return None


def network_lipschitz_bound(model: nn.Module) -> float:
    """Upper bound on the Lipschitz constant (Euclidean norms) of an MLP in eval mode.

    For ``model = Sequential(Linear, act, Linear, act, ..., Linear)``::

        ||f(x) - f(y)|| <= prod_l ||W_l||_2 * prod_a Lip(a) * ||x - y||

    with the exact spectral norms ``||W_l||_2`` (``torch.linalg.matrix_norm(W, 2)``) of the
    weights as the forward pass uses them (the normalized weight for spectrally normalized
    layers) and ``Lip(a) = 1`` for ReLU, tanh, identity, hardtanh, softsign and leaky ReLU
    with slope <= 1, ``1/4`` for the sigmoid; dropout counts as the identity (eval mode).
    The model is not modified: reading a spectrally normalized weight is done in eval mode so
    that no power-iteration step runs.

    Raises:
        TypeError: if ``model`` is not an ``nn.Sequential`` of those layers.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential of Linear layers and activations, got {type(model).__name__}")
    modes = {m: m.training for m in model.modules()}
    bound = 1.0
    n_linear = 0
    try:
        model.eval()
        with torch.no_grad():
            for k, layer in enumerate(model):
                if isinstance(layer, nn.Linear):
                    w = layer.weight.detach().to(torch.float64)
                    bound *= float(torch.linalg.matrix_norm(w, ord=2))
                    n_linear += 1
                else:
                    c = _activation_constant(layer)
                    if c is None:
                        raise TypeError(
                            f"model[{k}] must be nn.Linear or a known Lipschitz activation "
                            f"(ReLU, LeakyReLU, Tanh, Sigmoid, ...), got {type(layer).__name__}"
                        )
                    bound *= c
    finally:
        for m, mode in modes.items():
            m.train(mode)
    if n_linear == 0:
        raise ValueError("model must contain at least one nn.Linear layer")
    return bound
