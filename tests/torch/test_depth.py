"""Oracle tests for reglib.torch.depth: torchvision's documented stochastic_depth, scipy, gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from reglib.torch import depth
from reglib.torch.dropout import mc_dropout_predict


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def torchvision_stochastic_depth(x, p, mode, training=True):
    """torchvision.ops.stochastic_depth as documented (torchvision is not installable here).

    "Randomly drops entire rows/batches of the input with probability p"; the kept ones are
    divided by the survival rate 1 - p; the identity in evaluation or when p == 0. The noise
    is drawn from torch's global RNG, with shape (N, 1, ..., 1) for "row", (1, ..., 1) for "batch".
    """
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


def with_seed(fn, seed, *args, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- drop_path


@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("drop_prob", [0.0, 0.2, 0.5, 1.0])
def test_drop_path_equals_torchvision_definition(mode, drop_prob):
    x = torch.randn(16, 3, 4, 4, generator=gen(0))
    for seed in range(4):
        ref = with_seed(torchvision_stochastic_depth, seed, x, drop_prob, mode)
        assert torch.equal(depth.drop_path(x, drop_prob, generator=gen(seed), mode=mode), ref)
    assert depth.drop_path(x, drop_prob, training=False) is x


def test_drop_path_rows_and_rate():
    drop_prob = 0.3
    x = torch.rand(4000, 5, generator=gen(1)) + 0.5
    out = depth.drop_path(x, drop_prob, generator=gen(2))
    dropped = (out == 0).all(1)
    assert torch.all(dropped | (out != 0).all(1))  # whole rows
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - drop_prob), rtol=1e-6, atol=0)
    assert stats.binomtest(int(dropped.sum()), len(x), drop_prob).pvalue > 1e-4
    unscaled = depth.drop_path(x, drop_prob, generator=gen(2), scale_by_keep=False)
    assert torch.equal(unscaled == 0, out == 0)
    assert torch.equal(unscaled[~dropped], x[~dropped])


def test_drop_path_gradcheck_and_module():
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: depth.drop_path(z, 0.5, generator=gen(3)), (x,))
    module = depth.DropPath(0.4, generator=gen(4))
    assert torch.equal(module(x), depth.drop_path(x, 0.4, generator=gen(4)))
    assert module.eval()(x) is x


# --------------------------------------------------------------------------- stochastic depth block (C37)


def _branch(d=6, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, d), nn.Tanh()).double()


@pytest.mark.parametrize("scaling", ["train", "test"])
def test_stochastic_depth_train_expectation_equals_eval_c37(scaling):
    survival_prob, n = 0.6, 40_000
    block = depth.StochasticDepthBlock(_branch(), survival_prob, scaling=scaling, generator=gen(5))
    x0 = torch.randn(6, generator=gen(6), dtype=torch.float64)
    x = x0.expand(n, 6)
    with torch.no_grad():
        y_train = block.train()(x)
        y_eval = block.eval()(x0[None])[0]
        f = block.branch(x0[None])[0]
    expected_eval = x0 + (f if scaling == "train" else survival_prob * f)
    torch.testing.assert_close(y_eval, expected_eval, rtol=1e-14, atol=1e-14)
    err = (y_train.mean(0) - y_eval).abs()
    assert torch.all(err < 5 * y_train.std(0) / n**0.5)
    # each training output is either x (branch dropped) or x + f * scale (kept)
    scale = 1 / survival_prob if scaling == "train" else 1.0
    kept = ~torch.isclose(y_train, x).all(1)
    torch.testing.assert_close(y_train[kept], (x0 + scale * f).expand(int(kept.sum()), 6))
    assert stats.binomtest(int(kept.sum()), n, survival_prob).pvalue > 1e-4


def test_test_scaling_equals_train_scaling_with_branch_times_survival_prob_c37():
    # Huang et al.'s block with branch f is the inverted block with branch p*f: same outputs
    p = 0.7
    f = _branch(seed=1)
    x = torch.randn(50, 6, generator=gen(7), dtype=torch.float64)
    scaled = nn.Sequential(f, _Scale(p))
    for training in (True, False):
        a = depth.stochastic_depth(x, f, p, training, "test", gen(8))
        b = depth.stochastic_depth(x, scaled, p, training, "train", gen(8))
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


class _Scale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return self.c * x


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2 * x


def test_batch_mode_skips_the_branch_and_matches_torchvision():
    survival_prob, trials = 0.25, 400
    branch = _Counting()
    block = depth.StochasticDepthBlock(branch, survival_prob, mode="batch", generator=gen(9))
    x = torch.ones(3, 2)
    outs = [block(x) for _ in range(trials)]
    assert stats.binomtest(branch.calls, trials, survival_prob).pvalue > 1e-4
    assert sum(not torch.equal(o, x) for o in outs) == branch.calls  # skipped passes return x
    for seed in range(6):
        ref = x + with_seed(torchvision_stochastic_depth, seed, 2 * x, 1 - survival_prob, "batch")
        torch.testing.assert_close(depth.stochastic_depth(x, branch, survival_prob, True, "train", gen(seed), "batch"), ref)


def test_stochastic_depth_gradcheck_and_edges():
    f = _branch(d=3, seed=2)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: depth.stochastic_depth(z, f, 0.5, True, "train", gen(10)), (x,))
    block = depth.StochasticDepthBlock(f, 0.5, scaling="test", generator=gen(11))
    assert torch.equal(block(x), depth.stochastic_depth(x, f, 0.5, True, "test", gen(11)))
    with torch.no_grad():
        assert torch.equal(depth.stochastic_depth(x, f, 0.0, True, "train", gen(0)), x)  # never survives
        torch.testing.assert_close(depth.stochastic_depth(x, f, 1.0, True, "train", gen(0)), x + f(x))


# --------------------------------------------------------------------------- schedules and LayerDrop


def test_linear_decay_survival_rule():
    L = 54  # the 110-layer ResNet of Huang et al. has 54 residual blocks
    probs = depth.linear_decay_survival(L, 0.5)
    np.testing.assert_allclose(probs, np.linspace(1.0, 0.5, L + 1)[1:], rtol=1e-14)
    # expected number of active blocks: sum_l p_l = (3L - 1)/4 = 40.25 ("about 40" in the paper)
    assert sum(probs) == pytest.approx((3 * L - 1) / 4)
    assert depth.linear_decay_survival(1, 0.8) == [pytest.approx(0.8)]


def test_layer_drop_rate_order_and_eval():
    layers = [nn.Identity() for _ in range(10)]
    assert depth.layer_drop(layers, 0.5, training=False) == layers
    g = gen(11)
    kept_total = 0
    for _ in range(300):
        kept = depth.layer_drop(layers, 0.3, generator=g)
        idx = [layers.index(k) for k in kept]
        assert idx == sorted(idx)
        kept_total += len(kept)
    assert stats.binomtest(kept_total, 3000, 0.7).pvalue > 1e-4
    assert depth.layer_drop(layers, 1.0, generator=g) == []


def test_layer_drop_sequential_runs_the_kept_layers():
    blocks = [_Scale(c) for c in (2.0, 3.0, 5.0, 7.0)]
    seq = depth.LayerDropSequential(blocks, 0.5, generator=gen(12))
    x = torch.ones(2)
    for _ in range(5):
        state = seq.generator.get_state()
        out = seq(x)
        g = torch.Generator()
        g.set_state(state)
        kept = depth.layer_drop(blocks, 0.5, generator=g)
        assert torch.equal(out, x * float(np.prod([b.c for b in kept])))
    assert torch.equal(seq.eval()(x), x * 210.0)


def test_mc_dropout_keeps_depth_layers_active_and_batchnorm_frozen():
    torch.manual_seed(13)
    branch = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model = nn.Sequential(depth.StochasticDepthBlock(branch, 0.5), nn.Linear(4, 3))
    model.eval()
    before = branch[1].running_mean.clone()
    x = torch.randn(8, 4, generator=gen(14))
    mean, std = mc_dropout_predict(model, x, 50, generator=gen(15))
    assert torch.all(std.sum(-1) > 0)
    assert torch.equal(branch[1].running_mean, before)
    assert not any(m.training for m in model.modules())


# --------------------------------------------------------------------------- invariants and bad input


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(1, 5), drop_prob=st.floats(0.01, 0.99), seed=st.integers(0, 2**31))
def test_rows_zero_or_exactly_scaled(n, d, drop_prob, seed):
    x = torch.rand(n, d, generator=gen(seed), dtype=torch.float64) + 0.1
    out = depth.drop_path(x, drop_prob, generator=gen(seed + 1))
    dropped = (out == 0).all(1)
    assert torch.all(dropped | (out != 0).all(1))
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - drop_prob), rtol=1e-15, atol=0)


X = torch.ones(4, 3)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: depth.drop_path(X, 1.2), ValueError, "drop_prob"),
        (lambda: depth.drop_path(X, 0.5, mode="col"), ValueError, "mode"),
        (lambda: depth.drop_path(X, 0.5, training=1), TypeError, "training"),
        (lambda: depth.drop_path(X, 0.5, generator="g"), TypeError, "generator"),
        (lambda: depth.drop_path(X, 0.5, scale_by_keep=None), TypeError, "scale_by_keep"),
        (lambda: depth.DropPath(-0.1), ValueError, "drop_prob"),
        (lambda: depth.StochasticDepthBlock(nn.Identity(), 1.5), ValueError, "survival_prob"),
        (lambda: depth.StochasticDepthBlock(nn.Identity(), 0.5, scaling="both"), ValueError, "scaling"),
        (lambda: depth.StochasticDepthBlock(lambda z: z, 0.5), TypeError, "branch"),
        (lambda: depth.stochastic_depth(X, nn.Linear(3, 2), 0.5), ValueError, "branch"),
        (lambda: depth.linear_decay_survival(0, 0.5), ValueError, "num_blocks"),
        (lambda: depth.linear_decay_survival(5, float("nan")), ValueError, "final_survival_prob"),
        (lambda: depth.layer_drop([nn.Identity()], 2.0), ValueError, "drop_prob"),
        (lambda: depth.LayerDropSequential([nn.Identity()], -1.0), ValueError, "drop_prob"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
