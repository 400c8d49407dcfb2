import numpy as np
import pytest

from reglib import _validation as v


def test_check_scalar_accepts_and_converts():
    assert v.check_scalar(3, "lam", min_value=0.0) == 3.0
    assert v.check_scalar(np.float32(0.5), "lam") == 0.5
    assert v.check_scalar(np.array(2.0), "lam") == 2.0


@pytest.mark.parametrize(
    "value, kwargs, exc, pattern",
    [
        (-1.0, dict(min_value=0.0), ValueError, r"lam must be in \[0, inf\), got -1"),
        (0.0, dict(min_value=0.0, include_min=False), ValueError, r"lam must be in \(0, inf\)"),
        (float("nan"), {}, ValueError, "lam must be finite"),
        (float("inf"), {}, ValueError, "lam must be finite"),
        ("0.1", {}, TypeError, "lam must be a real number, got str"),
        (True, {}, TypeError, "lam must be a real number, got bool"),
        (None, {}, TypeError, "lam must be a real number"),
    ],
)
def test_check_scalar_rejects(value, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        v.check_scalar(value, "lam", **kwargs)


def test_check_probability_bounds():
    assert v.check_probability(0.0, "drop_prob") == 0.0
    with pytest.raises(ValueError, match=r"drop_prob must be in \[0, 1\), got 1"):
        v.check_probability(1.0, "drop_prob", include_one=False)
    with pytest.raises(ValueError, match="drop_prob must be in"):
        v.check_probability(1.5, "drop_prob")


def test_check_int():
    assert v.check_int(np.int64(3), "n", min_value=1) == 3
    with pytest.raises(TypeError, match="n must be an integer, got float"):
        v.check_int(3.0, "n")
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        v.check_int(0, "n", min_value=1)


def test_as_float_array():
    a = v.as_float_array([1, 2, 3], "w", ndim=1)
    assert a.dtype == np.float64
    assert v.as_float_array(np.ones(2, np.float32), "w").dtype == np.float32
    with pytest.raises(ValueError, match=r"w must have 2 dimension\(s\), got shape \(3,\)"):
        v.as_float_array([1, 2, 3], "w", ndim=2)
    with pytest.raises(ValueError, match="w must be finite"):
        v.as_float_array([1.0, np.nan], "w")
    with pytest.raises(TypeError, match="w must be a numeric array"):
        v.as_float_array(["a", "b"], "w")
    with pytest.raises(TypeError, match="w must be real"):
        v.as_float_array([1j], "w")


def test_as_float_array_rejects_tensors():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="torch tensor"):
        v.as_float_array(torch.ones(2), "w")


def test_check_groups():
    groups = v.check_groups([np.array([0, 1]), [3]], 4)
    assert [g.tolist() for g in groups] == [[0, 1], [3]]
    with pytest.raises(ValueError, match="overlap"):
        v.check_groups([[0, 1], [1, 2]], 4)
    with pytest.raises(ValueError, match=r"groups\[1\] has indices outside \[0, 4\)"):
        v.check_groups([[0], [4]], 4)
    with pytest.raises(ValueError, match="non-empty"):
        v.check_groups([[]], 4)
    with pytest.raises(TypeError, match="groups must be a list"):
        v.check_groups(np.array([0, 1]), 4)


def test_check_rng():
    g = np.random.default_rng(0)
    assert v.check_rng(g) is g
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        v.check_rng(0)
