"""PyTorch implementations: pure functions plus thin ``nn.Module`` wrappers.

Topic modules: :mod:`~reglib.torch.penalties`, :mod:`~reglib.torch.data`,
:mod:`~reglib.torch.training`, :mod:`~reglib.torch.utils`.
:mod:`~reglib.torch.dropout` (dropout variants, variational dropout, MC dropout).
:mod:`~reglib.torch.depth` (DropPath, stochastic depth, LayerDrop).
:mod:`~reglib.torch.norm` (batch, layer, group, instance norm: functions and modules).
:mod:`~reglib.torch.spectral` (power iteration, SpectralNorm, network Lipschitz bound).
"""

from reglib.torch.utils import get_device, seed_everything, setup

__all__ = ["get_device", "seed_everything", "setup"]
