import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reglib.numpy.data import Split
from reglib.torch import data as tdata
from reglib.torch import training, utils


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    X = torch.randn(n, 5, generator=g) * 0.3 + F.one_hot(y, 5).float() * 2
    return X, y


def test_mlp_structure():
    m = training.mlp([4, 8, 8, 3], drop_prob=0.5)
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert m[2].p == 0.5
    assert [type(layer).__name__ for layer in training.mlp([4, 3])] == ["Linear"]
    with pytest.raises(ValueError, match="drop_prob"):
        training.mlp([4, 3], drop_prob=1.0)
    with pytest.raises(ValueError, match="sizes"):
        training.mlp([4])


def test_accuracy_against_manual_count():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert training.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert training.accuracy(logits, torch.tensor([[1.0, 0], [0.2, 0.8], [0.9, 0.1]])) == 1.0


def test_evaluate_matches_cross_entropy_and_restores_mode():
    X, y = _blobs()
    m = training.mlp([5, 3])
    m.train()
    loss, acc = training.evaluate(m, X, y, batch_size=7)
    with torch.no_grad():
        assert loss == pytest.approx(F.cross_entropy(m(X), y).item(), rel=1e-5)
        assert acc == pytest.approx(training.accuracy(m(X), y))
    assert m.training


def test_fit_learns_and_is_reproducible(capsys):
    X, y = _blobs()
    histories, weights = [], []
    for _ in range(2):
        torch.manual_seed(0)
        m = training.mlp([5, 16, 3])
        h = training.fit(m, X, y, X_val=X, y_val=y, epochs=15, generator=torch.Generator().manual_seed(1), desc="t", lr=0.02)
        histories.append(h)
        weights.append(m[0].weight.detach().clone())
    assert histories[0].train_acc[-1] > 0.95
    assert histories[0].train_loss[-1] < histories[0].train_loss[0]
    assert torch.equal(weights[0], weights[1])
    assert histories[0].val_loss == histories[1].val_loss
    assert 1 <= histories[0].best_epoch <= 15
    assert len(histories[0].epochs) == 15


def test_fit_penalty_transform_and_callback():
    X, y = _blobs()
    seen = []

    def transform(xb, yb, gen):
        seen.append(len(xb))
        return xb, yb

    torch.manual_seed(0)
    big = training.mlp([5, 3])
    training.fit(big, X, y, epochs=20, generator=torch.Generator().manual_seed(0), show_progress=False,
                 lr=0.05)
    torch.manual_seed(0)
    small = training.mlp([5, 3])
    h = training.fit(small, X, y, epochs=20, generator=torch.Generator().manual_seed(0), show_progress=False,
                     lr=0.05, penalty=lambda m: 1.0 * m[0].weight.pow(2).sum(), transform=transform,
                     callback=lambda epoch, hist, model: epoch >= 5)
    assert len(h.train_loss) == 5  # stopped by the callback
    assert sum(seen) == 5 * len(X)
    assert small[0].weight.norm() < big[0].weight.norm()


def test_fit_validates():
    X, y = _blobs()
    m = training.mlp([5, 3])
    with pytest.raises(TypeError, match="generator"):
        training.fit(m, X, y, epochs=1, generator=0)
    with pytest.raises(ValueError, match="same length"):
        training.fit(m, X, y[:-1], epochs=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="together"):
        training.fit(m, X, y, X_val=X, epochs=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="best_epoch needs validation"):
        training.History(train_loss=[1.0]).best_epoch


def test_to_tensors_and_setup():
    split = Split(np.ones((3, 2), np.float64), np.arange(3), np.zeros((1, 2)), np.array([1]))
    Xtr, ytr, Xte, yte = tdata.to_tensors(split)
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert tdata.to_tensors(split).X_test.shape == (1, 2)
    with pytest.raises(TypeError, match="split"):
        tdata.to_tensors((1, 2, 3, 4))
    dev = utils.setup(seed=3, threads=1, verbose=False)
    a = torch.rand(1)
    utils.setup(seed=3, threads=1, verbose=False)
    assert torch.equal(a, torch.rand(1)) and dev.type in ("cpu", "cuda")
    assert torch.get_num_threads() == 1
