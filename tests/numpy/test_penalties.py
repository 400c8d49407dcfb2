"""Oracle tests for reglib.numpy.penalties: closed forms, numpy built-ins, central differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reglib.numpy import penalties as P
from tests.helpers import numerical_gradient, rel_error

W_HAND = np.array([3.0, -4.0, 0.0])


def test_closed_forms_on_hand_worked_arrays():
    # |3| + |-4| + |0| = 7 and 9 + 16 = 25
    assert P.l1(W_HAND, 0.5) == pytest.approx(3.5, abs=1e-15)
    assert P.l2(W_HAND, 0.5) == pytest.approx(6.25, abs=1e-15)  # (0.5 / 2) * 25
    # 2 * (0.25 * 7 + 0.75 / 2 * 25) = 3.5 + 18.75
    assert P.elastic_net(W_HAND, 2.0, 0.25) == pytest.approx(22.25, abs=1e-14)
    # groups {0,1}: sqrt(2) * 5, {3}: 1 * |1|; index 2 and 4 in no group
    w = np.array([3.0, -4.0, 7.0, 1.0, 9.0])
    assert P.group_lasso(w, [np.array([0, 1]), np.array([3])], 2.0) == pytest.approx(2 * (5 * np.sqrt(2) + 1), abs=1e-14)
    # singular values of diag(3, -4) are 4 and 3
    assert P.nuclear(np.diag([3.0, -4.0]), 0.5) == pytest.approx(3.5, abs=1e-14)
    # a rank-one matrix u v^T has one singular value |u| |v| = 5 * 13
    assert P.nuclear(np.outer([3.0, 4.0], [5.0, 12.0, 0.0]), 1.0) == pytest.approx(65.0, rel=1e-14)
    # lam1 * (1 + 1 + 3 + 0) + lam2 * (0 + 2 + 3)
    assert P.fused_lasso(np.array([1.0, 1.0, 3.0, 0.0]), 1.0, 2.0) == pytest.approx(15.0, abs=1e-14)


def test_penalties_return_python_floats_and_accept_any_shape(rng):
    W = rng.normal(size=(3, 4, 2))
    for value in (P.l1(W, 1.0), P.l2(W, 1.0), P.elastic_net(W, 1.0, 0.5), P.nuclear(W[0], 1.0)):
        assert type(value) is float
    assert P.l2(W, 2.0) == pytest.approx(np.linalg.norm(W.ravel()) ** 2, rel=1e-13)
    assert P.l1([[1, -2], [3, 0]], 1.0) == 6.0  # integer lists are converted


def test_against_numpy_norms(rng):
    W = rng.normal(size=(5, 3))
    assert P.nuclear(W, 0.3) == pytest.approx(0.3 * np.linalg.norm(W, "nuc"), rel=1e-13)
    w = rng.normal(size=7)
    assert P.l1(w, 0.3) == pytest.approx(0.3 * np.linalg.norm(w, 1), rel=1e-13)
    assert P.fused_lasso(w, 0.0, 0.3) == pytest.approx(0.3 * np.linalg.norm(np.diff(w), 1), rel=1e-13)


def test_special_cases_reduce_to_each_other(rng):
    w = rng.normal(size=9)
    assert P.elastic_net(w, 0.7, 1.0) == pytest.approx(P.l1(w, 0.7), rel=1e-14)
    assert P.elastic_net(w, 0.7, 0.0) == pytest.approx(P.l2(w, 0.7), rel=1e-14)
    singletons = [np.array([i]) for i in range(9)]
    assert P.group_lasso(w, singletons, 0.7) == pytest.approx(P.l1(w, 0.7), rel=1e-14)
    # one group of everything: sqrt(d) * ||w||
    assert P.group_lasso(w, [np.arange(9)], 0.7) == pytest.approx(0.7 * 3 * np.linalg.norm(w), rel=1e-14)
    assert P.fused_lasso(w, 0.7, 0.0) == pytest.approx(P.l1(w, 0.7), rel=1e-14)
    assert P.l1(w, 0.0) == P.l2(w, 0.0) == P.nuclear(w[:, None], 0.0) == 0.0


def test_gradients_match_central_differences_away_from_zero(rng):
    w = rng.normal(size=(4, 3))
    w += np.sign(w) * 0.1  # keep every entry away from the kink of |.|
    lam, a = 0.37, 0.6
    cases = [
        (P.l1_grad(w, lam), lambda z: P.l1(z, lam)),
        (P.l2_grad(w, lam), lambda z: P.l2(z, lam)),
        (P.elastic_net_grad(w, lam, a), lambda z: P.elastic_net(z, lam, a)),
    ]
    for analytic, f in cases:
        assert analytic.shape == w.shape
        assert rel_error(analytic, numerical_gradient(f, w)) < 1e-7


def test_subgradient_is_zero_at_zero_and_in_the_subdifferential():
    w = np.array([0.0, 2.0, -1e-12, 0.0])
    np.testing.assert_array_equal(P.l1_grad(w, 3.0), [0.0, 3.0, -3.0, 0.0])
    g = P.elastic_net_grad(w, 2.0, 0.25)
    np.testing.assert_allclose(g, [0.0, 2 * (0.25 + 0.75 * 2), 2 * (-0.25 - 0.75 * 1e-12), 0.0], rtol=1e-15)
    np.testing.assert_array_equal(P.l2_grad(w, 2.0), 2.0 * w)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    w=arrays(np.float64, st.integers(1, 6), elements=st.floats(-5, 5, allow_subnormal=False)),
    z=arrays(np.float64, 6, elements=st.floats(-5, 5, allow_subnormal=False)),
    lam=st.floats(0, 3),
    a=st.floats(0, 1),
)
def test_subgradient_inequality(w, z, lam, a):
    """g is a subgradient of a convex f at w iff f(z) >= f(w) + <g, z - w> for every z."""
    z = z[: w.size]
    for f, g in [
        (lambda x: P.l1(x, lam), P.l1_grad(w, lam)),
        (lambda x: P.elastic_net(x, lam, a), P.elastic_net_grad(w, lam, a)),
        (lambda x: P.l2(x, lam), P.l2_grad(w, lam)),
    ]:
        assert f(z) >= f(w) + g @ (z - w) - 1e-9 * (1 + abs(f(z)))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    x=arrays(np.float64, 5, elements=st.floats(-3, 3, allow_subnormal=False)),
    y=arrays(np.float64, 5, elements=st.floats(-3, 3, allow_subnormal=False)),
    t=st.floats(0, 1),
)
def test_penalties_are_convex_and_nonnegative(x, y, t):
    groups = [np.array([0, 2]), np.array([1, 3, 4])]
    fs = [
        lambda w: P.l1(w, 1.3),
        lambda w: P.l2(w, 1.3),
        lambda w: P.elastic_net(w, 1.3, 0.4),
        lambda w: P.group_lasso(w, groups, 1.3),
        lambda w: P.fused_lasso(w, 0.5, 1.3),
        lambda w: P.nuclear(np.append(w, 1.0).reshape(2, 3), 1.3),
    ]
    for f in fs:
        mid = f(t * x + (1 - t) * y)
        assert mid <= t * f(x) + (1 - t) * f(y) + 1e-9
        assert f(x) >= 0.0


def test_float32_gradients_stay_float32():
    w = np.array([1.0, -2.0], dtype=np.float32)
    for g in (P.l1_grad(w, 0.1), P.l2_grad(w, 0.1), P.elastic_net_grad(w, 0.1, 0.5)):
        assert g.dtype == np.float32


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: P.l1([1.0], -0.1), ValueError, "lam"),
        (lambda: P.l2([1.0], float("nan")), ValueError, "lam"),
        (lambda: P.l2([1.0], "0.1"), TypeError, "lam"),
        (lambda: P.l1([1.0, np.nan], 0.1), ValueError, "w"),
        (lambda: P.l1(["a"], 0.1), TypeError, "w"),
        (lambda: P.elastic_net([1.0], 0.1, 1.5), ValueError, "l1_ratio"),
        (lambda: P.elastic_net_grad([1.0], 0.1, -0.1), ValueError, "l1_ratio"),
        (lambda: P.group_lasso([1.0, 2.0], [[0], [0, 1]], 0.1), ValueError, "groups"),
        (lambda: P.group_lasso([1.0, 2.0], [[2]], 0.1), ValueError, "groups"),
        (lambda: P.group_lasso([1.0, 2.0], np.array([[0, 1]]), 0.1), TypeError, "groups"),
        (lambda: P.group_lasso(np.ones((2, 2)), [[0]], 0.1), ValueError, "w"),
        (lambda: P.nuclear(np.ones(3), 0.1), ValueError, "W"),
        (lambda: P.fused_lasso(np.ones((2, 2)), 0.1, 0.1), ValueError, "w"),
        (lambda: P.fused_lasso(np.ones(3), -1.0, 0.1), ValueError, "lam1"),
        (lambda: P.fused_lasso(np.ones(3), 0.1, np.inf), ValueError, "lam2"),
        (lambda: P.l1_grad([1.0], -2), ValueError, "lam"),
        (lambda: P.l2_grad([np.inf], 1.0), ValueError, "w"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
