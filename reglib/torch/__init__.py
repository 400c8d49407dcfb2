"""PyTorch implementations: pure functions plus thin ``nn.Module`` wrappers.

Topic modules: :mod:`~reglib.torch.penalties`, :mod:`~reglib.torch.data`,
:mod:`~reglib.torch.training`, :mod:`~reglib.torch.utils`.
"""

from reglib.torch.utils import get_device, seed_everything, setup

__all__ = ["get_device", "seed_everything", "setup"]
