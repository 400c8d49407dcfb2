"""NumPy reference implementations (from scratch; this package never imports torch).

Topic modules: :mod:`~reglib.numpy.penalties`, :mod:`~reglib.numpy.prox`,
:mod:`~reglib.numpy.linear`, :mod:`~reglib.numpy.data`.
:mod:`~reglib.numpy.dropout` (dropout, Gaussian dropout, DropConnect; forward/backward).
:mod:`~reglib.numpy.norm` (batch, layer, group, instance norm; forward/backward).
:mod:`~reglib.numpy.spectral` (power iteration, spectral norm and radius, Lipschitz bound).
"""
