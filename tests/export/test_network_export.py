"""Exported networks a deployment uses as is: raw uint8 images in, raw table columns in (the
preprocessor and the network in one graph), labels and probabilities computed in the graph.
The expected values are computed here directly with torch / scikit-learn, not by autodl."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
nn = torch.nn

import autodl
from autodl.errors import DataError, ExportError
from autodl.export import core, network, read_metadata, runtime

MEAN, STD = [125.0, 120.0, 110.0], [60.0, 55.0, 65.0]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cnn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3))
    with torch.no_grad():
        net[-1].weight.mul_(20)  # distinct classes for distinct images
    return net


def _images(n, seed):
    rng = np.random.default_rng(seed)
    tint = rng.integers(0, 160, size=(n, 3, 1, 1))
    return (tint + rng.integers(0, 96, size=(n, 3, 32, 32))).astype(np.uint8)


def _torch_expected(net, x, labels):
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = net.eval()((torch.from_numpy(x).float() - mean) / std).double()
    proba = torch.softmax(logits, 1).numpy()
    return np.asarray(labels, dtype=object)[proba.argmax(1)], proba


def _session_outputs(path, x):
    meta = read_metadata(onnx.load(path))
    return meta, runtime.run(runtime.make_session(path), runtime.array_to_feeds(x, meta))


def test_uint8_images_with_string_labels(tmp_path):
    net, labels = _cnn(), ["cat", "dog", "frog"]
    path = autodl.export_onnx(network.image_input(net, MEAN, STD), tmp_path / "cnn.onnx", sample=_images(24, 0),
                              class_labels=labels)
    session = runtime.make_session(path)
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert [o.name for o in session.get_outputs()] == ["output", "label", "probabilities"]
    new = _images(40, 1)
    meta, out = _session_outputs(path, new)
    assert meta["inputs"] == [{"name": "input", "type": "uint8", "shape": [None, 3, 32, 32]}]
    assert [o["role"] for o in meta["outputs"]] == ["logits", "label", "probabilities"]
    want_labels, want_proba = _torch_expected(net, new, labels)
    assert len(set(want_labels)) > 1
    assert out["label"].tolist() == want_labels.tolist()
    np.testing.assert_allclose(out["probabilities"], want_proba, atol=1e-5)
    frame = runtime.predictions_frame(out, meta)
    assert list(frame.columns) == ["prediction", "proba_cat", "proba_dog", "proba_frog"]
    assert frame["prediction"].tolist() == want_labels.tolist()
    np.testing.assert_allclose(frame.iloc[:, 1:].to_numpy(), want_proba, atol=1e-5)
    # int64 pixel values are fed as uint8; values a uint8 input cannot hold are refused, not wrapped
    assert runtime.array_to_feeds(new.astype(np.int64), meta)["input"].dtype == np.uint8
    with pytest.raises(DataError, match=r"uint8 values \(0..255\)"):
        runtime.array_to_feeds(new.astype(np.int64) + 200, meta)


def test_verify_checks_the_graph_labels(tmp_path):
    """A label table in the wrong order leaves logits and probabilities right: verify must see it."""
    model = network.image_input(_cnn(), MEAN, STD)
    x = _images(24, 0)
    path = autodl.export_onnx(model, tmp_path / "cnn.onnx", sample=x, class_labels=["cat", "dog", "frog"])
    proto = onnx.load(path)
    table = next(t for t in proto.graph.initializer if t.name == "autodl_class_labels")
    table.string_data[:] = list(reversed(table.string_data))
    with pytest.raises(ExportError, match="ONNX output 'label' gives label"):
        core.verify(model, proto.SerializeToString(), read_metadata(proto), x)


@pytest.mark.parametrize("labels, onnx_type", [([3, 7, 11], "tensor(int64)"), ([0.5, 1.5, 2.5], "tensor(double)")])
def test_numeric_labels_keep_their_type(tmp_path, labels, onnx_type):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(30, 4) * 3
    path = autodl.export_onnx(net, tmp_path / "mlp.onnx", sample=x, class_labels=labels)
    assert runtime.make_session(path).get_outputs()[1].type == onnx_type
    _, out = _session_outputs(path, x.numpy())
    with torch.no_grad():
        want = np.asarray(labels)[net(x).argmax(1).numpy()]
    assert out["label"].dtype == want.dtype and (out["label"] == want).all()


def _table(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(10, 3, n), "color": rng.choice(["red", "green", "blue"], n).astype(object)})
    frame.loc[rng.random(n) < 0.15, "size"] = np.nan
    frame.loc[rng.random(n) < 0.15, "color"] = np.nan
    return frame


def test_table_network_one_graph_from_raw_columns(tmp_path):
    from autodl.tabular.pipeline import build_pipeline

    X = _table(200, 0)
    config = {"model": "linear", "impute": "mean", "scaler": "standard", "encoder": "onehot"}
    pre = build_pipeline(config, X, "classification").steps[0][1].fit(X)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        net[0].weight.mul_(3)
    labels = ["low", "mid", "high"]
    model = network.table_network(pre, net, feature_frame=X, class_labels=labels)
    path = autodl.export_onnx(model, tmp_path / "table.onnx", sample=X.iloc[150:])
    meta = read_metadata(onnx.load(path))
    assert (meta["kind"], meta["task"], meta["input_scheme"]) == ("torch", "classification", "columns")
    assert [(i["column"], i["type"]) for i in meta["inputs"]] == [("size", "double"), ("color", "string")]
    assert meta["feature_names"] == ["size", "color"] and meta["class_labels"] == labels
    assert [o["role"] for o in meta["outputs"]] == ["logits", "label", "probabilities"]

    new = pd.concat([_table(30, 1), pd.DataFrame({"size": [np.nan, 4.0], "color": ["purple", np.nan]})],
                    ignore_index=True)  # an unseen category and missing values
    features = torch.from_numpy(np.asarray(pre.transform(new), dtype=np.float32))
    with torch.no_grad():
        proba = torch.softmax(net(features).double(), 1).numpy()
    want = np.asarray(labels, dtype=object)[proba.argmax(1)]
    assert len(set(want)) > 1
    preds = runtime.predict_table(path, new)
    assert list(preds.columns) == ["prediction", "proba_low", "proba_mid", "proba_high"]
    assert preds["prediction"].tolist() == want.tolist()
    np.testing.assert_allclose(preds.iloc[:, 1:].to_numpy(), proba, atol=1e-5)
    out = runtime.run(runtime.make_session(path), runtime.table_to_feeds(new, meta))
    np.testing.assert_allclose(out["probabilities"], proba, atol=1e-5)

    with pytest.raises(ExportError, match="cannot take the preprocessor's output"):
        network.table_network(pre, nn.Linear(7, 3), feature_frame=X, class_labels=labels)


def test_logits_only_file_still_predicts(tmp_path):
    """A file written before labels were in the graph (outputs: logits only) predicts as before."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    labels = ["a", "b", "c"]
    path = autodl.export_onnx(net, tmp_path / "new.onnx", sample=x, class_labels=labels)
    old = onnx.load(path)
    del old.graph.output[1:]
    for prop in old.metadata_props:
        if prop.key == "autodl.outputs":
            prop.value = '[{"name": "output", "role": "logits"}]'
    onnx.save(old, tmp_path / "old.onnx")
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    got_old = runtime.predict_table(tmp_path / "old.onnx", frame)
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).double()
    assert got_old["prediction"].tolist() == np.asarray(labels)[logits.argmax(1).numpy()].tolist()
    np.testing.assert_allclose(got_old.iloc[:, 1:].to_numpy(), torch.softmax(logits, 1).numpy(), atol=1e-5)
    pd.testing.assert_frame_equal(runtime.predict_table(path, frame), got_old, check_dtype=False)


def test_image_input_errors():
    with pytest.raises(ExportError, match="one value per channel"):
        network.image_input(_cnn(), [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ExportError, match="std finite and > 0"):
        network.image_input(_cnn(), [1.0, 2.0, 3.0], [1.0, 0.0, 1.0])
