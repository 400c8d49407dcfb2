"""reglib.torch.norm against torch's built-in normalization layers (float64), gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from reglib.torch import norm

TOL = dict(rtol=1e-10, atol=1e-10)
D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, g, scale=1.0, shift=0.0, grad=False):
    return (torch.randn(*shape, generator=g, dtype=D) * scale + shift).requires_grad_(grad)


def _copy_affine(ref, weight, bias):
    with torch.no_grad():
        ref.weight.copy_(weight)
        ref.bias.copy_(bias)


# ----------------------------------------------------------------------------- batch norm

BN_CASES = [((16, 5), nn.BatchNorm1d), ((8, 4, 7), nn.BatchNorm1d), ((6, 3, 4, 5), nn.BatchNorm2d)]


@pytest.mark.parametrize("shape, module", BN_CASES)
def test_batch_norm_matches_torch_over_steps_then_eval(shape, module):
    g = _gen(1)
    c = shape[1]
    weight, bias = _randn(c, g=g, scale=0.3, shift=1.0), _randn(c, g=g)
    ref = module(c, momentum=0.2, eps=1e-3).double()
    _copy_affine(ref, weight, bias)
    rm, rv = torch.zeros(c, dtype=D), torch.ones(c, dtype=D)
    for _ in range(4):
        x = _randn(*shape, g=g, scale=3.0, shift=2.0)
        rm_in, rv_in = rm, rv
        rm_copy, rv_copy = rm.clone(), rv.clone()
        out, rm, rv = norm.batch_norm(x, rm, rv, weight, bias, True, 0.2, 1e-3)
        # pure: the statistics passed in are untouched, new ones are returned
        assert torch.equal(rm_in, rm_copy) and torch.equal(rv_in, rv_copy)
        assert not torch.equal(rm, rm_in)
        torch.testing.assert_close(out, ref(x), **TOL)
        torch.testing.assert_close(rm, ref.running_mean, **TOL)
        torch.testing.assert_close(rv, ref.running_var, **TOL)
    ref.eval()
    x = _randn(*shape, g=g, scale=3.0, shift=2.0)
    out, rm2, rv2 = norm.batch_norm(x, rm, rv, weight, bias, False, 0.2, 1e-3)
    torch.testing.assert_close(out, ref(x), **TOL)
    assert torch.equal(rm2, rm) and torch.equal(rv2, rv)


def test_batch_norm_inputs_not_mutated():
    g = _gen(2)
    x = _randn(5, 3, g=g)
    rm, rv = _randn(3, g=g), torch.rand(3, generator=g, dtype=D) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    _, new_m, new_v = norm.batch_norm(x, rm, rv, training=True)
    assert torch.equal(rm, rm0) and torch.equal(rv, rv0)
    assert new_m.data_ptr() != rm.data_ptr() and not new_m.requires_grad


@pytest.mark.parametrize("shape", [(16, 5), (8, 4, 7), (6, 3, 4, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_torch(shape, training):
    g = _gen(3)
    c = shape[1]
    x = _randn(*shape, g=g, scale=2.0, shift=1.0, grad=True)
    w, b = _randn(c, g=g, shift=1.0, grad=True), _randn(c, g=g, grad=True)
    rm, rv = _randn(c, g=g), torch.rand(c, generator=g, dtype=D) + 0.5
    dout = _randn(*shape, g=g)
    out, _, _ = norm.batch_norm(x, rm, rv, w, b, training)
    mine = torch.autograd.grad(out, (x, w, b), dout)
    ref = F.batch_norm(x, rm.clone(), rv.clone(), w, b, training)
    theirs = torch.autograd.grad(ref, (x, w, b), dout)
    torch.testing.assert_close(out, ref, **TOL)
    for a, t in zip(mine, theirs):
        torch.testing.assert_close(a, t, **TOL)


def test_batch_norm_gradcheck_and_gradgradcheck():
    g = _gen(4)
    x = _randn(5, 3, 2, g=g, grad=True)
    w, b = _randn(3, g=g, shift=1.0, grad=True), _randn(3, g=g, grad=True)
    f = lambda x, w, b: norm.batch_norm(x, None, None, w, b, True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))
    # without affine parameters, and with only some inputs requiring a gradient
    assert torch.autograd.gradcheck(lambda x: norm.batch_norm(x, None, None, training=True)[0], (x,))
    assert torch.autograd.gradcheck(lambda w: f(x.detach(), w, b.detach()), (w,))
    assert torch.autograd.gradcheck(lambda x, b: norm.batch_norm(x, None, None, None, b, True)[0], (x, b))
    rm, rv = torch.zeros(3, dtype=D), torch.ones(3, dtype=D)
    assert torch.autograd.gradcheck(lambda x, w, b: norm.batch_norm(x, rm, rv, w, b, False)[0], (x, w, b))


def test_batch_norm_float32_close_to_torch():
    g = _gen(5)
    x = torch.randn(64, 8, 4, 4, generator=g) * 2 + 3
    w, b = torch.rand(8, generator=g) + 0.5, torch.randn(8, generator=g)
    out, m, v = norm.batch_norm(x, torch.zeros(8), torch.ones(8), w, b, True)
    rm, rv = torch.zeros(8), torch.ones(8)
    ref = F.batch_norm(x, rm, rv, w, b, True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v, rv, rtol=1e-5, atol=1e-6)


def test_batch_norm_rejects_single_value_per_channel():
    g = _gen(6)
    with pytest.raises(ValueError, match="more than one value per channel"):
        norm.batch_norm(_randn(1, 4, g=g), None, None, training=True)
    with pytest.raises(ValueError, match="x must"):
        norm.BatchNorm(4).double()(_randn(1, 4, 1, 1, g=g))
    # torch agrees that this is an error
    with pytest.raises(ValueError):
        F.batch_norm(_randn(1, 4, g=g), None, None, training=True)
    # a single image has several positions per channel; eval mode takes a single row
    norm.batch_norm(_randn(1, 4, 3, 3, g=g), None, None, training=True)
    norm.batch_norm(_randn(1, 4, g=g), torch.zeros(4, dtype=D), torch.ones(4, dtype=D), training=False)


def test_batch_norm_module_tracks_torch_module_and_state_dict():
    g = _gen(7)
    mine, ref = norm.BatchNorm(6, momentum=0.3).double(), nn.BatchNorm2d(6, momentum=0.3).double()
    _copy_affine(mine, _randn(6, g=g, shift=1.0), _randn(6, g=g))
    _copy_affine(ref, mine.weight, mine.bias)
    for _ in range(3):
        x = _randn(4, 6, 3, 3, g=g, scale=2.0, shift=-1.0)
        # the module's forward is the functional call on its own state, which it then replaces
        expected, new_m, new_v = norm.batch_norm(
            x, mine.running_mean, mine.running_var, mine.weight, mine.bias, True, 0.3, 1e-5
        )
        out = mine(x)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
        assert torch.equal(mine.running_mean, new_m) and torch.equal(mine.running_var, new_v)
        torch.testing.assert_close(out, ref(x), **TOL)
        torch.testing.assert_close(mine.running_mean, ref.running_mean, **TOL)
        torch.testing.assert_close(mine.running_var, ref.running_var, **TOL)
    mine.eval()
    ref.eval()
    x = _randn(2, 6, 3, 3, g=g)
    expected, _, _ = norm.batch_norm(x, mine.running_mean, mine.running_var, mine.weight, mine.bias, False)
    torch.testing.assert_close(mine(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(mine(x), ref(x), **TOL)
    # 1d inputs go through the same module; the state dict loads into torch's module
    mine1 = norm.BatchNorm(6).double()
    torch.testing.assert_close(mine1(_randn(10, 6, g=g)).mean(0), torch.zeros(6, dtype=D), rtol=0, atol=1e-12)
    fresh = nn.BatchNorm2d(6).double()
    fresh.load_state_dict(mine.state_dict())  # strict: same keys (torch fills num_batches_tracked)
    torch.testing.assert_close(fresh.running_var, mine.running_var, rtol=0, atol=0)
    assert "running_mean" in dict(mine.named_buffers()) and mine.running_mean.dtype == D


def test_batch_norm_module_without_affine():
    g = _gen(8)
    m = norm.BatchNorm(3, affine=False).double()
    assert m.weight is None and list(m.parameters()) == []
    x = _randn(6, 3, g=g)
    torch.testing.assert_close(m(x), F.batch_norm(x, None, None, training=True), **TOL)


# ----------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize("shape, nshape", [((6, 10), (10,)), ((3, 4, 5), (5,)), ((3, 4, 5), (4, 5)), ((2, 3), (2, 3))])
def test_layer_norm_matches_torch(shape, nshape):
    g = _gen(9)
    x = _randn(*shape, g=g, scale=2.0, shift=1.0, grad=True)
    w, b = _randn(*nshape, g=g, shift=1.0, grad=True), _randn(*nshape, g=g, grad=True)
    ref = nn.LayerNorm(nshape, eps=1e-4).double()
    _copy_affine(ref, w, b)
    mod = norm.LayerNorm(nshape, eps=1e-4).double()
    _copy_affine(mod, w, b)
    out = norm.layer_norm(x, nshape, w, b, 1e-4)
    expected = ref(x)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(mod(x), out, rtol=0, atol=0)
    dout = _randn(*shape, g=g)
    mine = torch.autograd.grad(out, (x, w, b), dout)
    theirs = torch.autograd.grad(expected, (x, ref.weight, ref.bias), dout)
    for a, t in zip(mine, theirs):
        torch.testing.assert_close(a, t, **TOL)


def test_layer_norm_gradcheck():
    g = _gen(10)
    x = _randn(3, 2, 4, g=g, grad=True)
    w, b = _randn(2, 4, g=g, shift=1.0, grad=True), _randn(2, 4, g=g, grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: norm.layer_norm(x, (2, 4), w, b), (x, w, b))
    assert torch.autograd.gradgradcheck(lambda x, w, b: norm.layer_norm(x, (2, 4), w, b), (x, w, b))
    assert torch.autograd.gradcheck(lambda x: norm.layer_norm(x, 4), (x,))


def test_layer_norm_translation_invariant_and_batch_independent():
    g = _gen(11)
    x = _randn(5, 7, g=g)
    out = norm.layer_norm(x, 7)
    torch.testing.assert_close(norm.layer_norm(x + 100 * _randn(5, 1, g=g), 7), out, rtol=0, atol=1e-12)
    torch.testing.assert_close(norm.layer_norm(x[3:4], 7), out[3:4], rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- group / instance norm


@pytest.mark.parametrize("shape, groups", [((3, 6), 3), ((4, 6, 5), 2), ((2, 6, 3, 4), 1), ((2, 6, 3, 4), 3), ((2, 6, 3, 4), 6)])
def test_group_norm_matches_torch(shape, groups):
    g = _gen(12)
    c = shape[1]
    x = _randn(*shape, g=g, scale=2.0, shift=1.0, grad=True)
    w, b = _randn(c, g=g, shift=1.0, grad=True), _randn(c, g=g, grad=True)
    ref = nn.GroupNorm(groups, c, eps=1e-4).double()
    _copy_affine(ref, w, b)
    mod = norm.GroupNorm(groups, c, eps=1e-4).double()
    _copy_affine(mod, w, b)
    out = norm.group_norm(x, groups, w, b, 1e-4)
    expected = ref(x)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(mod(x), out, rtol=0, atol=0)
    dout = _randn(*shape, g=g)
    mine = torch.autograd.grad(out, (x, w, b), dout)
    theirs = torch.autograd.grad(expected, (x, ref.weight, ref.bias), dout)
    for a, t in zip(mine, theirs):
        torch.testing.assert_close(a, t, **TOL)


def test_group_norm_gradcheck():
    g = _gen(13)
    x = _randn(2, 4, 3, g=g, grad=True)
    w, b = _randn(4, g=g, shift=1.0, grad=True), _randn(4, g=g, grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: norm.group_norm(x, 2, w, b), (x, w, b))
    assert torch.autograd.gradgradcheck(lambda x, w, b: norm.group_norm(x, 2, w, b), (x, w, b))
    assert torch.autograd.gradcheck(lambda x, b: norm.group_norm(x, 4, None, b), (x, b))


@pytest.mark.parametrize("shape, module", [((3, 4, 6), nn.InstanceNorm1d), ((2, 3, 4, 5), nn.InstanceNorm2d)])
def test_instance_norm_matches_torch(shape, module):
    g = _gen(14)
    c = shape[1]
    x = _randn(*shape, g=g, scale=2.0, shift=1.0, grad=True)
    w, b = _randn(c, g=g, shift=1.0, grad=True), _randn(c, g=g, grad=True)
    ref = module(c, affine=True).double()
    _copy_affine(ref, w, b)
    mod = norm.InstanceNorm(c).double()
    _copy_affine(mod, w, b)
    out = norm.instance_norm(x, w, b)
    expected = ref(x)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(mod(x), out, rtol=0, atol=0)
    dout = _randn(*shape, g=g)
    mine = torch.autograd.grad(out, (x, w, b), dout)
    theirs = torch.autograd.grad(expected, (x, ref.weight, ref.bias), dout)
    for a, t in zip(mine, theirs):
        torch.testing.assert_close(a, t, **TOL)
    assert torch.autograd.gradcheck(lambda x, w, b: norm.instance_norm(x, w, b), (x, w, b))


# ----------------------------------------------------------------------------- every affine combination


def _ones_if_none(w, n):
    return torch.ones(n, dtype=D) if w is None else w


@pytest.mark.parametrize("use_w, use_b", [(True, False), (False, True), (False, False)])
def test_partial_affine_matches_torch(use_w, use_b):
    g = _gen(15)
    x4 = _randn(3, 4, 2, 3, g=g, grad=True)
    x2 = _randn(5, 6, g=g, grad=True)
    w4, b4 = _randn(4, g=g, shift=1.0, grad=True), _randn(4, g=g, grad=True)
    w6, b6 = _randn(6, g=g, shift=1.0, grad=True), _randn(6, g=g, grad=True)
    w4, b4, w6, b6 = (w4 if use_w else None), (b4 if use_b else None), (w6 if use_w else None), (b6 if use_b else None)
    pairs = [
        (lambda x, w, b: norm.batch_norm(x, None, None, w, b, True)[0], lambda x, w, b: F.batch_norm(x, None, None, w, b, True), x4, w4, b4),
        (lambda x, w, b: norm.layer_norm(x, 6, w, b), lambda x, w, b: F.layer_norm(x, (6,), w, b), x2, w6, b6),
        # torch 2.13's own group-norm backward fails with weight=None and a bias ("tensor does
        # not have a device"), so the reference uses an explicit all-ones weight there
        (lambda x, w, b: norm.group_norm(x, 2, w, b), lambda x, w, b: F.group_norm(x, 2, _ones_if_none(w, 4), b), x4, w4, b4),
    ]
    for mine, theirs, x, w, b in pairs:
        inputs = [t for t in (x, w, b) if t is not None]
        out, ref = mine(x, w, b), theirs(x, w, b)
        torch.testing.assert_close(out, ref, **TOL)
        dout = _randn(*x.shape, g=g)
        for a, t in zip(torch.autograd.grad(out, inputs, dout), torch.autograd.grad(ref, inputs, dout)):
            torch.testing.assert_close(a, t, **TOL)


def test_non_contiguous_inputs_match_torch():
    g = _gen(16)
    x = _randn(6, 5, 4, 4, g=g).to(memory_format=torch.channels_last).requires_grad_(True)
    w, b = _randn(5, g=g, shift=1.0, grad=True), _randn(5, g=g, grad=True)
    dout = _randn(6, 5, 4, 4, g=g).to(memory_format=torch.channels_last)
    for mine, theirs in (
        (lambda: norm.batch_norm(x, None, None, w, b, True)[0], lambda: F.batch_norm(x, None, None, w, b, True)),
        (lambda: norm.group_norm(x, 5, w, b), lambda: F.group_norm(x, 5, w, b)),
    ):
        out, ref = mine(), theirs()
        torch.testing.assert_close(out, ref, **TOL)
        for a, t in zip(torch.autograd.grad(out, (x, w, b), dout), torch.autograd.grad(ref, (x, w, b), dout)):
            torch.testing.assert_close(a, t, **TOL)
    xt = _randn(7, 3, g=g).T.requires_grad_(True)  # (3, 7), not contiguous
    out, ref = norm.layer_norm(xt, 7), F.layer_norm(xt, (7,))
    torch.testing.assert_close(out, ref, **TOL)
    d = _randn(7, 3, g=g).T
    torch.testing.assert_close(torch.autograd.grad(out, xt, d)[0], torch.autograd.grad(ref, xt, d)[0], **TOL)


# ----------------------------------------------------------------------------- random shapes, affine maps, layouts


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["batch", "layer", "group"]),
    n=st.integers(1, 5),
    c_per_group=st.integers(1, 4),
    groups=st.integers(1, 3),
    spatial=st.sampled_from([(), (1,), (3,), (2, 3)]),
    use_w=st.booleans(),
    use_b=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_shapes_match_torch(kind, n, c_per_group, groups, spatial, use_w, use_b, seed):
    """Outputs and all three gradients equal torch's on random shapes: every branch of the
    kernels (S = 1 or not, one group or several, each affine combination) against the oracle."""
    g = _gen(seed)
    c = c_per_group * groups
    shape = (n, c, *spatial)
    if kind == "batch" and n * math.prod(spatial) < 2:
        shape = (n + 1, c, *spatial)  # batch norm in training needs two values per channel
    # torch refuses a group of one value (F.group_norm goes through its batch norm)
    assume(kind != "group" or c_per_group * math.prod(spatial) > 1)
    pshape = shape[1:] if kind == "layer" else (c,)
    x = _randn(*shape, g=g, scale=2.0, shift=1.0, grad=True)
    w = _randn(*pshape, g=g, shift=1.0, grad=True) if use_w else None
    b = _randn(*pshape, g=g, grad=True) if use_b else None
    if kind == "batch":
        out, ref = norm.batch_norm(x, None, None, w, b, True), F.batch_norm(x, None, None, w, b, True)
        out = out[0]
    elif kind == "layer":
        out, ref = norm.layer_norm(x, pshape, w, b), F.layer_norm(x, pshape, w, b)
    else:
        # torch 2.13's group-norm backward needs a weight when there is a bias (see above)
        wt = torch.ones(c, dtype=D) if (w is None and b is not None) else w
        out, ref = norm.group_norm(x, groups, w, b), F.group_norm(x, groups, wt, b)
    torch.testing.assert_close(out, ref, **TOL)
    inputs = [t for t in (x, w, b) if t is not None]
    dout = _randn(*shape, g=g)
    for a, t in zip(torch.autograd.grad(out, inputs, dout), torch.autograd.grad(ref, inputs, dout)):
        torch.testing.assert_close(a, t, **TOL)


def test_outputs_take_in_place_ops_and_expanded_gradients():
    """The outputs are tensors of their own (an in-place ReLU after the layer works, as after
    torch's), and an upstream gradient with zero strides (from .sum()) is handled."""
    g = _gen(17)
    x = _randn(4, 6, 3, 3, g=g, scale=2.0, shift=1.0, grad=True)
    pairs = [
        (norm.BatchNorm(6).double(), nn.BatchNorm2d(6).double()),
        (norm.LayerNorm((3, 3)).double(), nn.LayerNorm((3, 3)).double()),
        (norm.GroupNorm(3, 6).double(), nn.GroupNorm(3, 6).double()),
        (norm.InstanceNorm(6).double(), nn.InstanceNorm2d(6, affine=True).double()),
    ]
    for mine, ref in pairs:
        _copy_affine(mine, _randn(*mine.weight.shape, g=g, shift=1.0), _randn(*mine.bias.shape, g=g))
        _copy_affine(ref, mine.weight, mine.bias)
        for train in (True, False):
            mine.train(train)
            ref.train(train)
            if not train and isinstance(mine, norm.InstanceNorm):
                continue  # torch's InstanceNorm in eval without running stats is the same map
            ours = torch.autograd.grad(mine(x).relu_().sum(), (x, mine.weight, mine.bias))
            theirs = torch.autograd.grad(ref(x).relu_().sum(), (x, ref.weight, ref.bias))
            for a, t in zip(ours, theirs):
                torch.testing.assert_close(a, t, **TOL)


@pytest.mark.parametrize("kind", ["batch", "layer", "group"])
def test_float32_gradients_far_from_zero_mean_as_accurate_as_torch(kind):
    """With a mean 100 standard deviations away from 0, float32 gradients stay as close to the
    float64 ones as torch's own float32 gradients (the backward passes recompute x - mean or
    keep it; they never subtract two large sums of dout * x)."""
    g = _gen(18)
    shape = (16, 8, 4, 4)
    x64 = _randn(*shape, g=g, scale=1.0, shift=100.0)
    d64 = _randn(*shape, g=g)
    w64, b64 = _randn(8, g=g, shift=1.0), _randn(8, g=g)

    def grads(fn, dtype):
        x, w, b = (t.to(dtype).requires_grad_(True) for t in (x64, w64, b64))
        return [t.double() for t in torch.autograd.grad(fn(x, w, b), (x, w, b), d64.to(dtype))]

    if kind == "batch":
        mine, ref = (lambda x, w, b: norm.batch_norm(x, None, None, w, b, True)[0]), (
            lambda x, w, b: F.batch_norm(x, None, None, w, b, True)
        )
    elif kind == "layer":
        w64, b64 = _randn(4, 4, g=g, shift=1.0), _randn(4, 4, g=g)
        mine, ref = (lambda x, w, b: norm.layer_norm(x, (4, 4), w, b)), (lambda x, w, b: F.layer_norm(x, (4, 4), w, b))
    else:
        mine, ref = (lambda x, w, b: norm.group_norm(x, 2, w, b)), (lambda x, w, b: F.group_norm(x, 2, w, b))
    exact = grads(ref, D)
    for ours, theirs, e in zip(grads(mine, torch.float32), grads(ref, torch.float32), exact):
        err_ours, err_torch = (ours - e).abs().max().item(), (theirs - e).abs().max().item()
        assert err_ours <= 2 * err_torch + 1e-6 * e.abs().max().item(), (err_ours, err_torch)


# ----------------------------------------------------------------------------- bad input

_X = torch.arange(12.0, dtype=D).reshape(4, 3)
_ONES, _ZEROS = torch.ones(3, dtype=D), torch.zeros(3, dtype=D)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: norm.batch_norm(_X, _ZEROS, _ONES, eps=0.0), ValueError, "eps"),
        (lambda: norm.batch_norm(_X, _ZEROS, _ONES, momentum=-0.1), ValueError, "momentum"),
        (lambda: norm.batch_norm(_X, _ZEROS, _ONES, torch.ones(4, dtype=D)), ValueError, "weight"),
        (lambda: norm.batch_norm(_X, _ZEROS, _ONES, None, torch.ones(1, 3, dtype=D)), ValueError, "bias"),
        (lambda: norm.batch_norm(_X, torch.zeros(2, dtype=D), _ONES), ValueError, "running_mean"),
        (lambda: norm.batch_norm(_X, _ZEROS, None, training=True), ValueError, "running_var"),
        (lambda: norm.batch_norm(_X, None, None, training=False), ValueError, "running_mean"),
        (lambda: norm.batch_norm(_X.numpy(), _ZEROS, _ONES), TypeError, "x"),
        (lambda: norm.batch_norm(_X.long(), _ZEROS, _ONES), TypeError, "x"),
        (lambda: norm.batch_norm(_X[0], _ZEROS, _ONES), ValueError, "x"),
        (lambda: norm.batch_norm(_X, _ZEROS, _ONES, training=1), TypeError, "training"),
        (lambda: norm.layer_norm(_X, 4), ValueError, "normalized_shape"),
        (lambda: norm.layer_norm(_X, (3, 4)), ValueError, "normalized_shape"),
        (lambda: norm.layer_norm(_X, ()), ValueError, "normalized_shape"),
        (lambda: norm.layer_norm(_X, 3.0), TypeError, "normalized_shape"),
        (lambda: norm.layer_norm(_X, 3, torch.ones(4, dtype=D)), ValueError, "weight"),
        (lambda: norm.layer_norm(_X, 3, eps=float("nan")), ValueError, "eps"),
        (lambda: norm.group_norm(_X, 2), ValueError, "num_groups"),
        (lambda: norm.group_norm(_X, 0), ValueError, "num_groups"),
        (lambda: norm.group_norm(_X[0], 1), ValueError, "x"),
        (lambda: norm.group_norm(_X, 3, _ONES, torch.ones(2, dtype=D)), ValueError, "bias"),
        (lambda: norm.instance_norm(_X), ValueError, "x"),
        (lambda: norm.instance_norm(_X.reshape(4, 3, 1)), ValueError, "x"),
        (lambda: norm.BatchNorm(0), ValueError, "num_features"),
        (lambda: norm.BatchNorm(3, momentum=2.0), ValueError, "momentum"),
        (lambda: norm.GroupNorm(4, 6), ValueError, "num_groups"),
        (lambda: norm.LayerNorm(5, eps=0), ValueError, "eps"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
