"""reglib: reference implementations for the course *Regularization in Deep Learning*.

Two halves with the same topics:

* :mod:`reglib.numpy` -- from scratch, NumPy only (it never imports torch);
* :mod:`reglib.torch` -- PyTorch functions and thin ``nn.Module`` wrappers.

Importing :mod:`reglib` itself loads neither; import the half you need, e.g.
``from reglib.numpy import penalties``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
