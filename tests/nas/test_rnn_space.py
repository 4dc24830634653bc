"""The RNN model space: freeze builds exactly the chosen network, it learns a sequence task, and
every cell type exports to ONNX with a dynamic batch axis."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from autodl.nas.choices import InputChoice, LayerChoice, describe, freeze, to_space  # noqa: E402
from autodl.nas.spaces import RNNNet, rnn_space  # noqa: E402

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def waves(n: int, length: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, length, 2]`` sequences: channel 0 a sine (class 0) or a square wave (class 1) of random
    period, phase and amplitude plus noise; channel 1 pure noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :]
    period = rng.uniform(6, 14, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amp = rng.uniform(0.5, 1.5, size=(n, 1))
    y = rng.integers(0, 2, size=n)
    s = np.sin(2 * np.pi * t / period + phase)
    x0 = amp * np.where(y[:, None] == 1, np.sign(s), s) + rng.normal(0, 0.1, size=(n, length))
    x = np.stack([x0, rng.normal(0, 1, size=(n, length))], axis=-1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_description_and_space():
    desc = describe(rnn_space(2, 3))
    assert desc == {"cell": {"type": "layer", "choices": ["rnn", "lstm", "gru"]},
                    "layers": {"type": "value", "choices": [1, 2]},
                    "hidden_size": {"type": "value", "choices": [16, 32, 64]},
                    "bidirectional": {"type": "value", "choices": [False, True]},
                    "dropout": {"type": "value", "choices": [0.0, 0.2]}}
    assert len(list(to_space(desc).grid())) == 3 * 2 * 3 * 2 * 2
    with pytest.raises(ValueError, match="unknown cells"):
        rnn_space(2, 3, cells=("lstm", "transformer"))


@pytest.mark.parametrize("sample", [
    {"cell": "rnn", "layers": 1, "hidden_size": 16, "bidirectional": False, "dropout": 0.0},
    {"cell": "lstm", "layers": 2, "hidden_size": 32, "bidirectional": True, "dropout": 0.2},
    {"cell": "gru", "layers": 2, "hidden_size": 16, "bidirectional": False, "dropout": 0.2},
    {"cell": "gru", "layers": 1, "hidden_size": 64, "bidirectional": True, "dropout": 0.2},
])
def test_freeze_builds_exactly_the_chosen_network(sample):
    m = freeze(rnn_space(3, 4), sample)
    assert isinstance(m, RNNNet)
    assert not any(isinstance(x, (LayerChoice, InputChoice)) for x in m.modules())
    assert type(m.encoder) is CELLS[sample["cell"]]  # the other candidates are gone
    assert sum(isinstance(x, nn.RNNBase) for x in m.modules()) == 1
    enc = m.encoder
    assert (enc.input_size, enc.hidden_size, enc.num_layers, enc.bidirectional, enc.batch_first) == (
        3, sample["hidden_size"], sample["layers"], sample["bidirectional"], True)
    assert enc.dropout == (sample["dropout"] if sample["layers"] > 1 else 0.0)  # between layers only
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == (sample["dropout"] > 0)
    directions = 2 if sample["bidirectional"] else 1
    reference = CELLS[sample["cell"]](3, sample["hidden_size"], num_layers=sample["layers"], batch_first=True,
                                      bidirectional=sample["bidirectional"])
    head = directions * sample["hidden_size"] * 4 + 4
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in reference.parameters()) + head
    assert m(torch.randn(5, 7, 3)).shape == (5, 4)


def test_bidirectional_summary_reads_both_ends():
    """The backward direction's summary is its state after the whole (reversed) sequence: changing
    the first time step changes it even for a one-step-later cut of the forward direction."""
    m = freeze(rnn_space(1, 2), {"cell": "gru", "layers": 1, "hidden_size": 16, "bidirectional": True,
                                 "dropout": 0.0}).eval()
    x = torch.randn(1, 10, 1)
    _, h = m.encoder(x)
    summary = torch.cat([h[0], h[1]], dim=1)
    out, _ = m.encoder(x)
    assert torch.allclose(summary[:, :16], out[:, -1, :16]) and torch.allclose(summary[:, 16:], out[:, 0, 16:])
    assert torch.allclose(m(x), m.head(summary))


@pytest.mark.slow
def test_trains_above_chance_on_sine_vs_square():
    X, y = waves(600, seed=0)
    X_te, y_te = waves(300, seed=1)
    m = freeze(rnn_space(2, 2), {"cell": "gru", "layers": 1, "hidden_size": 16, "bidirectional": False,
                                 "dropout": 0.0})
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    m.train()
    for _ in range(8):
        for idx in torch.randperm(len(X), generator=gen).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(m(X[idx]), y[idx]).backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        acc = float((m(X_te).argmax(1) == y_te).float().mean())
    assert acc > 0.8, acc  # chance is 0.5


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_cell_exports_to_onnx_and_matches_torch(tmp_path, cell):
    pytest.importorskip("onnxruntime")
    import autodl
    from autodl.export import read_metadata, runtime

    m = freeze(rnn_space(2, 2), {"cell": cell, "layers": 2, "hidden_size": 16, "bidirectional": True,
                                 "dropout": 0.2}).eval()
    X, _ = waves(80, seed=2)
    path = autodl.export_onnx(m, tmp_path / "rnn.onnx", sample=X, class_labels=["sine", "square"])  # verified
    sess = runtime.make_session(path)
    meta = read_metadata(sess)
    assert meta["inputs"][0]["shape"] == [None, 24, 2] and meta["class_labels"] == ["sine", "square"]
    for b in (1, 5, 33, 80):  # one file, any batch size
        got = sess.run(None, runtime.array_to_feeds(X[:b], meta))[0]
        with torch.no_grad():
            want = m(X[:b]).numpy()
        assert got.shape == (b, 2)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
