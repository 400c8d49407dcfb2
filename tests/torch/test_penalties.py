"""Tests for reglib.torch.penalties against reglib.numpy (itself checked against oracles),
central differences and torch built-ins (renorm, SGD's weight_decay, the SVD)."""

import numpy as np
import pytest
import torch
from torch import nn

from reglib.numpy import penalties as NP
from reglib.numpy import prox as NPX
from reglib.torch import penalties as TP
from reglib.torch.training import fit, mlp
from tests.helpers import numerical_gradient, rel_error


def randn(*shape, seed=0, away_from_zero=True):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g, dtype=torch.float64)
    if away_from_zero:
        w = w + 0.1 * torch.sign(w)  # keep entries off the kink of |.|
    return w


def test_values_equal_numpy_versions():
    w = randn(5, 4)
    v = w.reshape(-1)[:12]
    groups = [np.array([0, 3, 5]), np.array([1, 2]), np.array([10, 11])]
    pairs = [
        (TP.l1(w, 0.3), NP.l1(w.numpy(), 0.3)),
        (TP.l2(w, 0.3), NP.l2(w.numpy(), 0.3)),
        (TP.elastic_net(w, 0.3, 0.2), NP.elastic_net(w.numpy(), 0.3, 0.2)),
        (TP.group_lasso(v, groups, 0.3), NP.group_lasso(v.numpy(), groups, 0.3)),
        (TP.nuclear(w, 0.3), NP.nuclear(w.numpy(), 0.3)),
    ]
    for t, n in pairs:
        assert t.ndim == 0 and t.dtype == torch.float64
        assert t.item() == pytest.approx(n, rel=1e-12)


def test_autograd_gradients_equal_numpy_gradients():
    w = randn(3, 4, seed=1).requires_grad_()
    for tfun, ngrad in [
        (lambda x: TP.l1(x, 0.7), NP.l1_grad(w.detach().numpy(), 0.7)),
        (lambda x: TP.l2(x, 0.7), NP.l2_grad(w.detach().numpy(), 0.7)),
        (lambda x: TP.elastic_net(x, 0.7, 0.4), NP.elastic_net_grad(w.detach().numpy(), 0.7, 0.4)),
    ]:
        (g,) = torch.autograd.grad(tfun(w), w)
        np.testing.assert_allclose(g.numpy(), ngrad, rtol=1e-14, atol=1e-15)
    # at exactly zero autograd of |.| gives 0, the same subgradient as numpy
    z = torch.tensor([0.0, 1.5, -2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(TP.elastic_net(z, 2.0, 0.5), z)
    np.testing.assert_allclose(g.numpy(), NP.elastic_net_grad(z.detach().numpy(), 2.0, 0.5), rtol=1e-15)
    assert g[0].item() == 0.0


def test_group_lasso_and_nuclear_gradients_match_central_differences():
    v = randn(7, seed=2).requires_grad_()
    groups = [[0, 1, 2], [3, 4], [6]]  # index 5 in no group
    (g,) = torch.autograd.grad(TP.group_lasso(v, groups, 0.9), v)
    num = numerical_gradient(lambda x: NP.group_lasso(x, [np.array(k) for k in groups], 0.9), v.detach().numpy())
    assert rel_error(g.numpy(), num) < 1e-7
    assert g[5].item() == 0.0
    # a zero group gets gradient 0 (minimum-norm subgradient), not NaN
    z = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    (gz,) = torch.autograd.grad(TP.group_lasso(z, [[0, 1], [2, 3]], 1.0), z)
    assert torch.equal(gz, torch.zeros(4, dtype=torch.float64))

    W = randn(4, 3, seed=3).requires_grad_()
    (G,) = torch.autograd.grad(TP.nuclear(W, 0.5), W)
    num = numerical_gradient(lambda X: NP.nuclear(X, 0.5), W.detach().numpy())
    assert rel_error(G.numpy(), num) < 1e-7
    U, _, Vt = np.linalg.svd(W.detach().numpy(), full_matrices=False)
    np.testing.assert_allclose(G.numpy(), 0.5 * U @ Vt, atol=1e-12)  # closed form lam U V^T


def test_group_lasso_accepts_tensor_and_array_groups():
    v = randn(6, seed=4)
    as_lists = TP.group_lasso(v, [[0, 1], [2, 3, 4]], 0.5)
    as_tensors = TP.group_lasso(v, [torch.tensor([0, 1]), torch.tensor([2, 3, 4])], 0.5)
    as_arrays = TP.group_lasso(v, (np.array([0, 1]), np.array([2, 3, 4])), 0.5)
    assert as_lists.item() == as_tensors.item() == as_arrays.item()


def test_parameter_penalty_sums_weight_matrices_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model[1].weight.data.uniform_(0.5, 1.5)
    weights = [model[0].weight, model[3].weight]
    expected = sum(0.5 * 1e-2 * (w**2).sum() for w in weights)
    got = TP.parameter_penalty(model, lambda w: TP.l2(w, 1e-2))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    everything = TP.parameter_penalty(model, lambda w: TP.l1(w, 1.0), include_bias=True)
    assert everything.item() == pytest.approx(sum(p.abs().sum().item() for p in model.parameters()), rel=1e-6)
    # frozen parameters are skipped
    model[0].weight.requires_grad_(False)
    frozen = TP.parameter_penalty(model, lambda w: TP.l2(w, 1e-2))
    assert frozen.item() == pytest.approx((0.5 * 1e-2 * (model[3].weight ** 2).sum()).item(), rel=1e-6)
    # a model with nothing to penalize gives a zero tensor
    assert TP.parameter_penalty(nn.ReLU(), lambda w: TP.l2(w, 1.0)).item() == 0.0


def test_l2_penalty_with_sgd_equals_torch_weight_decay():
    """One SGD step on loss + l2(w, lam) (all parameters) equals SGD(weight_decay=lam)."""
    X = randn(16, 5, seed=5, away_from_zero=False).float()
    y = torch.arange(16) % 3
    lam, lr = 0.1, 0.5
    torch.manual_seed(1)
    a = mlp([5, 7, 3])
    b = mlp([5, 7, 3])
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, weight_decay=lam)
    loss_a = nn.functional.cross_entropy(a(X), y) + TP.parameter_penalty(a, lambda w: TP.l2(w, lam), include_bias=True)
    loss_a.backward()
    opt_a.step()
    nn.functional.cross_entropy(b(X), y).backward()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def test_parameter_penalty_works_as_fit_penalty_and_shrinks_weights():
    X = randn(64, 5, seed=6, away_from_zero=False).float()
    y = (X[:, 0] > 0).long()
    norms = []
    for lam in (0.0, 0.05):
        torch.manual_seed(0)
        m = mlp([5, 16, 2])
        fit(m, X, y, epochs=30, generator=torch.Generator().manual_seed(0), lr=0.02, show_progress=False,
            penalty=lambda mod: TP.parameter_penalty(mod, lambda w: TP.l2(w, lam)))
        norms.append(sum((p**2).sum().item() for p in m.parameters() if p.ndim == 2))
    assert norms[1] < norms[0]


def test_apply_max_norm_matches_torch_renorm_and_numpy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    with torch.no_grad():
        model[0].weight.mul_(torch.tensor([[0.1], [5.0], [1.0], [0.01], [3.0]]))  # some rows inside, some out
    before = [m.weight.detach().clone() for m in (model[0], model[2])]
    biases = [m.bias.detach().clone() for m in (model[0], model[2])]
    out = TP.apply_max_norm_(model, 0.5)
    assert out is model
    for m, W in zip((model[0], model[2]), before):
        # torch.renorm's dim is the dimension it slices along (rows: 0); it divides by norm + 1e-7
        torch.testing.assert_close(m.weight.detach(), torch.renorm(W, 2, 0, 0.5), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.weight.detach().numpy(), NPX.project_max_norm(W.numpy(), 0.5, axis=1), rtol=1e-6)
        row_norms = m.weight.norm(dim=1)
        assert torch.all(row_norms <= 0.5 * (1 + 1e-6))
        inside = W.norm(dim=1) <= 0.5
        assert torch.equal(m.weight.detach()[inside], W[inside])  # rows inside the ball untouched
    for m, bias in zip((model[0], model[2]), biases):
        assert torch.equal(m.bias.detach(), bias)
    # dim=0 constrains columns
    W = before[1].clone()
    lin = nn.Linear(5, 4)
    with torch.no_grad():
        lin.weight.copy_(W)
    TP.apply_max_norm_(lin, 0.3, dim=0)
    torch.testing.assert_close(lin.weight.detach(), torch.renorm(W, 2, 1, 0.3), rtol=1e-5, atol=1e-6)
    assert not lin.weight.requires_grad or lin.weight.grad is None


def test_soft_threshold_equals_numpy_and_has_the_right_gradient():
    v = randn(20, seed=7, away_from_zero=False).requires_grad_()
    out = TP.soft_threshold(v, 0.5)
    np.testing.assert_array_equal(out.detach().numpy(), NPX.soft_threshold(v.detach().numpy(), 0.5))
    (g,) = torch.autograd.grad(out.sum(), v)
    np.testing.assert_array_equal(g.numpy(), (np.abs(v.detach().numpy()) > 0.5).astype(float))
    t = torch.linspace(0, 1, 20, dtype=torch.float64)
    np.testing.assert_array_equal(TP.soft_threshold(v, t).detach().numpy(), NPX.soft_threshold(v.detach().numpy(), t.numpy()))


def test_proximal_sgd_with_soft_threshold_reaches_the_lasso_solution():
    """Full-batch proximal gradient in torch (ISTA) with our soft_threshold reaches the lasso
    solution (reglib.numpy.linear.lasso, checked against scikit-learn in tests/numpy)."""
    from reglib.numpy.linear import lasso, lasso_ista

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=60)
    lam = 0.1
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    w = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    L = float(np.linalg.eigvalsh(X.T @ X / 60).max())
    opt = torch.optim.SGD([w], lr=1 / L)
    for k in range(200):
        opt.zero_grad()
        (0.5 * ((yt - Xt @ w) ** 2).mean()).backward()
        opt.step()
        with torch.no_grad():
            w.copy_(TP.soft_threshold(w, lam / L))
        if k == 4:  # the same iterates as the numpy ISTA
            np.testing.assert_allclose(w.detach().numpy(), lasso_ista(X, y, lam, 5), rtol=1e-10, atol=1e-13)
    w_star = lasso(X, y, lam)
    np.testing.assert_allclose(w.detach().numpy(), w_star, atol=1e-8)
    np.testing.assert_array_equal(w.detach().numpy() == 0, w_star == 0)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: TP.l1(torch.ones(3), -1.0), ValueError, "lam"),
        (lambda: TP.l2(np.ones(3), 1.0), TypeError, "w"),
        (lambda: TP.l2(torch.ones(3, dtype=torch.long), 1.0), TypeError, "w"),
        (lambda: TP.l1(torch.tensor([1.0, float("nan")]), 1.0), ValueError, "w"),
        (lambda: TP.elastic_net(torch.ones(3), 1.0, 1.2), ValueError, "l1_ratio"),
        (lambda: TP.group_lasso(torch.ones(3), [[0, 1], [1]], 1.0), ValueError, "groups"),
        (lambda: TP.group_lasso(torch.ones(3), "01", 1.0), TypeError, "groups"),
        (lambda: TP.group_lasso(torch.ones(2, 2), [[0]], 1.0), ValueError, "w"),
        (lambda: TP.nuclear(torch.ones(3), 1.0), ValueError, "W"),
        (lambda: TP.parameter_penalty("model", lambda w: w.sum()), TypeError, "model"),
        (lambda: TP.parameter_penalty(nn.Linear(2, 2), 3.0), TypeError, "penalty_fn"),
        (lambda: TP.apply_max_norm_(nn.Linear(2, 2), 0.0), ValueError, "max_norm"),
        (lambda: TP.apply_max_norm_(nn.Linear(2, 2), 1.0, dim=2), ValueError, "dim"),
        (lambda: TP.apply_max_norm_([nn.Linear(2, 2)], 1.0), TypeError, "module"),
        (lambda: TP.soft_threshold(torch.ones(3), -0.1), ValueError, "thresh"),
        (lambda: TP.soft_threshold(torch.ones(3), torch.tensor([0.1, -0.1, 0.0])), ValueError, "thresh"),
        (lambda: TP.soft_threshold(torch.ones(3), torch.ones(2)), ValueError, "thresh"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
