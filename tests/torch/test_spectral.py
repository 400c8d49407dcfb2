"""reglib.torch.spectral against torch.linalg and torch.nn.utils.parametrizations.spectral_norm."""

import numpy as np
import pytest
import torch
from torch import nn

from reglib.numpy import spectral as nps
from reglib.torch import spectral
from reglib.torch.training import mlp

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _with_spectrum(s, m, n, g):
    r = len(s)
    U, _ = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=D))
    V, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=D))
    return U @ torch.diag(torch.tensor(s, dtype=D)) @ V.T


def _unit(x):
    return x / torch.linalg.vector_norm(x)


@pytest.mark.parametrize("shape", [(8, 5), (4, 12), (6, 3, 3, 3)])
def test_power_iteration_matches_matrix_norm(shape):
    g = _gen(1)
    W = torch.randn(*shape, generator=g, dtype=D)
    sigma, u, v = spectral.power_iteration(W, torch.randn(shape[0], generator=g, dtype=D), 500)
    mat = W.reshape(shape[0], -1)
    assert sigma.item() == pytest.approx(torch.linalg.matrix_norm(mat, ord=2).item(), rel=1e-10)
    assert sigma.item() == pytest.approx(np.linalg.svd(mat.numpy(), compute_uv=False)[0], rel=1e-10)
    torch.testing.assert_close(mat @ v, sigma * u, rtol=0, atol=1e-8)
    assert v.shape == (mat.shape[1],)


def test_power_iteration_equals_numpy_step_by_step():
    g = _gen(2)
    W = torch.randn(7, 4, generator=g, dtype=D)
    u0 = torch.randn(7, generator=g, dtype=D)
    u = u0
    prev = -1.0
    for k in range(1, 8):
        s_t, u_t, v_t = spectral.power_iteration(W, u0, k)
        s_n, u_n, v_n = nps.power_iteration(W.numpy(), k, u0=u0.numpy())
        assert s_t.item() == pytest.approx(s_n, rel=1e-13)
        np.testing.assert_allclose(u_t.numpy(), u_n, atol=1e-13)
        np.testing.assert_allclose(v_t.numpy(), v_n, atol=1e-13)
        # one step at a time from the previous u gives the same sequence, increasing
        s1, u, _ = spectral.power_iteration(W, u, 1)
        assert s1.item() == pytest.approx(s_n, rel=1e-12) and s1.item() >= prev - 1e-12
        prev = s1.item()


def test_power_iteration_gradient_is_u_v_transpose():
    """Once converged, d sigma / dW = u1 v1^T, the gradient of torch.linalg.matrix_norm(W, 2)."""
    g = _gen(3)
    W = _with_spectrum([3.0, 1.5, 1.0, 0.5], 6, 5, g).requires_grad_(True)
    u0 = torch.randn(6, generator=g, dtype=D)
    sigma, u, v = spectral.power_iteration(W, u0, 60)
    (grad,) = torch.autograd.grad(sigma, W)
    torch.testing.assert_close(grad, torch.outer(u, v), rtol=0, atol=1e-14)
    (oracle,) = torch.autograd.grad(torch.linalg.matrix_norm(W, ord=2), W)
    torch.testing.assert_close(grad, oracle, rtol=0, atol=1e-10)
    assert torch.autograd.gradcheck(lambda w: spectral.power_iteration(w, u0, 60)[0], (W,))


def test_spectral_normalize_linear_and_conv_reach_unit_norm():
    g = _gen(4)
    lin = nn.Linear(12, 7).double()
    conv = nn.Conv2d(3, 5, 3).double()
    spectral.spectral_normalize_(lin, init_iters=0, generator=g)
    spectral.spectral_normalize_(conv, init_iters=0, generator=g)
    x, img = torch.randn(4, 12, generator=g, dtype=D), torch.randn(2, 3, 6, 6, generator=g, dtype=D)
    norms = []
    for _ in range(300):  # one power-iteration step per training forward
        lin(x)
        conv(img)
        norms.append(torch.linalg.matrix_norm(lin.weight.detach(), ord=2).item())
    assert norms[0] >= 1.0 - 1e-12  # the estimate is from below, so the norm starts >= 1
    assert norms[-1] == pytest.approx(1.0, abs=1e-8)
    w_conv = conv.weight.detach().reshape(5, -1)
    assert torch.linalg.matrix_norm(w_conv, ord=2).item() == pytest.approx(1.0, abs=1e-8)
    # the raw weight is untouched and the output uses the normalized one
    raw = lin.parametrizations.weight.original
    sigma = torch.linalg.matrix_norm(raw.detach(), ord=2)
    torch.testing.assert_close(lin(x), x @ (raw / sigma).T + lin.bias, rtol=1e-7, atol=1e-9)


def test_matches_torch_spectral_norm_with_the_same_start_vector():
    g = _gen(5)
    W0 = torch.randn(5, 8, generator=g, dtype=D) * 3
    u0 = torch.randn(5, generator=g, dtype=D)
    ours, theirs = nn.Linear(8, 5).double(), nn.Linear(8, 5).double()
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(W0)
            m.bias.zero_()
    spectral.spectral_normalize_(ours, init_iters=0, u0=u0)
    with torch.random.fork_rng():  # torch draws its own start vectors; we overwrite them
        torch.nn.utils.parametrizations.spectral_norm(theirs)
    p_ours, p_theirs = ours.parametrizations.weight[0], theirs.parametrizations.weight[0]
    # registering ran no step: u is the start vector, v the matching right vector
    torch.testing.assert_close(p_ours.u, _unit(u0), rtol=0, atol=1e-15)
    torch.testing.assert_close(p_ours.v, _unit(W0.T @ _unit(u0)), rtol=0, atol=1e-15)
    with torch.no_grad():
        p_theirs._u.copy_(p_ours.u)
        p_theirs._v.copy_(p_ours.v)  # v = W^T u0 / ||W^T u0||
    for _ in range(6):
        w_ours, w_theirs = ours.weight, theirs.weight  # one training step each
        # the same left vectors; torch's v is half a step ahead (see the module docstring)
        torch.testing.assert_close(p_ours.u, p_theirs._u, rtol=0, atol=1e-13)
        torch.testing.assert_close(p_theirs._v, _unit(W0.T @ p_ours.u), rtol=0, atol=1e-13)
        torch.testing.assert_close(w_ours, W0 / torch.linalg.vector_norm(W0 @ p_ours.v), rtol=1e-13, atol=0)
        torch.testing.assert_close(w_theirs, W0 / torch.linalg.vector_norm(W0.T @ p_theirs._u), rtol=1e-13, atol=0)
    for _ in range(200):
        w_ours, w_theirs = ours.weight, theirs.weight
    torch.testing.assert_close(w_ours, w_theirs, rtol=1e-10, atol=0)
    x = torch.randn(3, 8, generator=g, dtype=D)
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-10, atol=1e-12)


def test_eval_mode_freezes_the_vectors_and_gradient_has_the_closed_form():
    g = _gen(6)
    lin = spectral.spectral_normalize_(nn.Linear(6, 4).double(), generator=g)
    x = torch.randn(5, 6, generator=g, dtype=D)
    lin(x)  # a training step
    sn = lin.parametrizations.weight[0]
    u, v = sn.u.clone(), sn.v.clone()
    lin.eval()
    w1 = lin.weight
    w2 = lin.weight
    assert torch.equal(sn.u, u) and torch.equal(sn.v, v) and torch.equal(w1, w2)
    # gradient of L(W / sigma) with sigma = u^T W v, u and v constant:
    # dL/dW = G / sigma - <G, W> / sigma^2 * u v^T, with G = dL/dW_sn
    W = lin.parametrizations.weight.original
    out = lin(x)
    dout = torch.randn(out.shape, generator=g, dtype=D)
    out.backward(dout)
    sigma = u @ W.detach() @ v
    G = dout.T @ x
    expected = G / sigma - (G * W.detach()).sum() / sigma**2 * torch.outer(u, v)
    torch.testing.assert_close(W.grad, expected, rtol=1e-12, atol=1e-13)


def test_network_lipschitz_bound_dominates_measured_ratios():
    """Claim C28: prod ||W_l||_2 bounds ||f(x) - f(y)|| / ||x - y||."""
    torch.manual_seed(0)  # nn.Linear's initialisation
    g = _gen(7)
    model = mlp([10, 32, 32, 4]).double()
    bound = spectral.network_lipschitz_bound(model)
    expected = np.prod([torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() for m in model if isinstance(m, nn.Linear)])
    assert bound == pytest.approx(expected, rel=1e-12)
    x1 = torch.randn(2000, 10, generator=g, dtype=D)
    with torch.no_grad():
        for x2 in (torch.randn(2000, 10, generator=g, dtype=D), x1 + 1e-4 * torch.randn(2000, 10, generator=g, dtype=D)):
            ratio = torch.linalg.vector_norm(model(x1) - model(x2), dim=1) / torch.linalg.vector_norm(x1 - x2, dim=1)
            assert ratio.max().item() <= bound
            assert ratio.max().item() > 0.05 * bound
    # sigmoids are 1/4-Lipschitz
    sig = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)).double()
    ws = [m.weight.detach() for m in sig if isinstance(m, nn.Linear)]
    assert spectral.network_lipschitz_bound(sig) == pytest.approx(
        0.25 * np.prod([torch.linalg.matrix_norm(w, ord=2).item() for w in ws]), rel=1e-12
    )


def test_network_lipschitz_bound_of_spectrally_normalized_net_is_one_and_has_no_side_effects():
    g = _gen(8)
    torch.manual_seed(1)
    model = mlp([6, 16, 3]).double()
    for m in model:
        if isinstance(m, nn.Linear):
            spectral.spectral_normalize_(m, init_iters=200, generator=g)
    model.train()
    before = [b.clone() for b in model.buffers()]
    bound = spectral.network_lipschitz_bound(model)
    assert bound == pytest.approx(1.0, abs=1e-8)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))  # no power-iteration step
    assert all(m.training for m in model.modules())  # modes restored


_W = torch.arange(12.0, dtype=D).reshape(3, 4)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: spectral.power_iteration(_W[0], torch.ones(3, dtype=D)), ValueError, "weight"),
        (lambda: spectral.power_iteration(_W, torch.ones(4, dtype=D)), ValueError, "u"),
        (lambda: spectral.power_iteration(_W, torch.ones(3, dtype=D), 0), ValueError, "n_iters"),
        (lambda: spectral.power_iteration(_W, torch.ones(3, dtype=D), eps=0.0), ValueError, "eps"),
        (lambda: spectral.power_iteration(_W.numpy(), torch.ones(3, dtype=D)), TypeError, "weight"),
        (lambda: spectral.power_iteration(_W.long(), torch.ones(3, dtype=D)), TypeError, "weight"),
        (lambda: spectral.SpectralNorm(_W, u0=torch.ones(4, dtype=D)), ValueError, "u0"),
        (lambda: spectral.SpectralNorm(_W, u0=torch.zeros(3, dtype=D)), ValueError, "u0"),
        (lambda: spectral.SpectralNorm(_W, n_power_iterations=0), ValueError, "n_power_iterations"),
        (lambda: spectral.SpectralNorm(_W, init_iters=-1), ValueError, "init_iters"),
        (lambda: spectral.spectral_normalize_(nn.BatchNorm1d(3)), TypeError, "module"),
        (lambda: spectral.spectral_normalize_(nn.Linear(3, 2), name="bias2"), ValueError, "name"),
        (lambda: spectral.network_lipschitz_bound(nn.Linear(3, 2)), TypeError, "model"),
        (lambda: spectral.network_lipschitz_bound(nn.Sequential(nn.Linear(3, 2), nn.GELU())), TypeError, r"model\[1\]"),
        (lambda: spectral.network_lipschitz_bound(nn.Sequential(nn.ReLU())), ValueError, "model"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
