import numpy as np
import pytest

from reglib.numpy import data


def test_mnist1d_matches_published_shapes_and_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("REGLIB_CACHE", str(tmp_path))
    data._mnist1d_arrays.cache_clear()
    state = np.random.get_state()
    split = data.load_mnist1d()
    # generating must not touch the global RNG
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert split.X_train.shape == (4000, 40) and split.X_test.shape == (1000, 40)
    assert split.y_train.shape == (4000,) and split.n_classes == 10
    assert np.bincount(np.concatenate([split.y_train, split.y_test])).tolist() == [500] * 10
    # standardised as a whole (train and test together)
    allx = np.concatenate([split.X_train, split.X_test])
    assert abs(allx.mean()) < 1e-4 and abs(allx.std() - 1) < 1e-4
    # cached on disk, and the cached copy is identical
    assert list(tmp_path.glob("mnist1d_*.npz"))
    data._mnist1d_arrays.cache_clear()
    again = data.load_mnist1d()
    assert np.array_equal(again.X_train, split.X_train) and np.array_equal(again.y_test, split.y_test)
    # callers get copies: mutating one does not change the next load
    again.X_train[:] = 0
    assert not np.all(data.load_mnist1d().X_train == 0)


def test_mnist1d_matches_mnist1d_package_generation():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 500
    ref = make_dataset(args)
    split = data.load_mnist1d(num_samples=500)
    np.testing.assert_allclose(split.X_train, ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(split.y_test, ref["y_test"])


def test_digits_split_and_standardization(rng):
    split = data.load_digits(0.25, rng=rng)
    assert split.X_train.shape[1] == 64 and len(split.X_train) + len(split.X_test) == 1797
    assert len(split.X_test) == round(0.25 * 1797)
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0, atol=1e-5)
    raw = data.load_digits(0.25, rng=np.random.default_rng(1), standardize=False)
    assert raw.X_train.max() == 16


def test_sparse_regression_truth(rng):
    X, y, w = data.make_sparse_regression(200, 30, 5, noise=0.0, rng=rng)
    assert np.count_nonzero(w) == 5 and np.all(np.abs(w[w != 0]) >= 1)
    np.testing.assert_allclose(y, X @ w)


def test_correlated_regression_correlation(rng):
    X, y, w = data.make_correlated_regression(20000, 3, 4, correlation=0.9, rng=rng)
    c = np.corrcoef(X, rowvar=False)
    assert abs(c[0, 1] - 0.9) < 0.02 and abs(c[0, 5]) < 0.03
    assert w[:4].tolist() == [1, 1, 1, 1] and not w[4:].any()


def test_polynomial_regression(rng):
    x, y, coef = data.make_polynomial_regression(50, noise=0.0, rng=rng)
    np.testing.assert_allclose(data.polynomial_features(x, 3) @ coef, y)
    np.testing.assert_allclose(data.polynomial_features(np.array([2.0]), 2), [[1, 2, 4]])


def test_train_val_split(rng):
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    Xt, yt, Xv, yv = data.train_val_split(X, y, 0.3, rng=rng)
    assert len(yv) == 3 and sorted(np.concatenate([yt, yv]).tolist()) == list(range(10))
    np.testing.assert_array_equal(Xv[:, 1] // 2, yv)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda r: data.make_sparse_regression(10, 5, 6, rng=r), "n_informative must be <= n_features"),
        (lambda r: data.make_sparse_regression(10, 5, 2, noise=-1, rng=r), "noise"),
        (lambda r: data.make_sparse_regression(10, 5, 2, rng=0), "rng must be a numpy.random.Generator"),
        (lambda r: data.load_digits(1.5, rng=r), "test_fraction"),
        (lambda r: data.make_correlated_regression(10, 2, 2, correlation=1.0, rng=r), "correlation"),
        (lambda r: data.train_val_split(np.ones((3, 1)), np.ones(2), 0.5, rng=r), "same length"),
        (lambda r: data.polynomial_features(np.ones((2, 2)), 2), "x must be 1-d"),
        (lambda r: data.load_mnist1d(num_samples=0), "num_samples"),
    ],
)
def test_bad_input(rng, call, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        call(rng)
