"""ONNX export of torch modules (MLP, CNN, RNNs) with a dynamic batch axis."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
nn = torch.nn

import autodl  # noqa: E402
from autodl.errors import ExportError  # noqa: E402
from autodl.export import read_metadata, runtime  # noqa: E402


class CNN(nn.Module):
    """Conv/BN/pool plus a dilated conv and a depthwise-separable conv (DARTS-style ops)."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dil = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.sep = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16))
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1)
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.dil(x)) + x
        x = self.avg(self.pool(self.sep(x)))
        return self.head(x.mean(dim=(2, 3)))


class RNNClassifier(nn.Module):
    def __init__(self, cell="lstm", n_in=3, hidden=16, n_classes=4):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](n_in, hidden, batch_first=True,
                                                                         num_layers=2)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _train_some(model, x, steps=5):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):  # move BatchNorm statistics and weights away from their init
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return model


def _check(model, x, tmp_path, labels=None):
    path = autodl.export_onnx(model, tmp_path / "m.onnx", sample=x, class_labels=labels)
    meta = read_metadata(__import__("onnx").load(path))
    sess = runtime.make_session(path)
    for b in (1, 5, 33):
        got = sess.run(None, runtime.array_to_feeds(x[:b], meta))[0]
        with torch.no_grad():
            want = model.eval()(x[:b]).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
    return meta


def test_mlp(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
    x = torch.randn(40, 8)
    meta = _check(_train_some(model, x), x, tmp_path, labels=["a", "b", "c"])
    assert meta["kind"] == "torch" and meta["class_labels"] == ["a", "b", "c"]
    assert meta["outputs"][0]["role"] == "logits"
    model.train()
    autodl.export_onnx(model, tmp_path / "again.onnx", sample=x)
    assert model.training  # the caller's mode is restored


def test_cnn(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(40, 1, 8, 8)
    _check(_train_some(CNN(), x), x, tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_rnn(tmp_path, cell):
    torch.manual_seed(0)
    x = torch.randn(40, 6, 3)
    _check(RNNClassifier(cell), x, tmp_path)


class ValueBranch(nn.Module):
    """Data-dependent Python control flow: tracing freezes one branch."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x * 3


def test_traced_branch_fails_verification(tmp_path):
    x = torch.cat([torch.ones(3, 4), -torch.ones(3, 4)])
    with pytest.raises(ExportError, match="output 'output' differs from the model by"):
        autodl.export_onnx(ValueBranch(), tmp_path / "m.onnx", sample=x)
    assert list(tmp_path.iterdir()) == []


class Unexportable(nn.Module):
    def forward(self, x):
        return torch.linalg.eigh(x @ x.transpose(-1, -2)).eigenvalues


def test_unsupported_operator_fails_cleanly(tmp_path):
    with pytest.raises(ExportError, match="cannot export Unexportable"):
        autodl.export_onnx(Unexportable(), tmp_path / "m.onnx", sample=torch.randn(4, 3, 3))
    assert list(tmp_path.iterdir()) == []
