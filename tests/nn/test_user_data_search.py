"""PyTorch and NAS searches on the user's own data: tables, image arrays, ``.npz`` files and
folders of PNGs, from the CLI and from Python; export with raw inputs and the user's labels;
``autodl predict`` on the same formats. Quick budgets (the 60 s runs are benchmarks/user_data.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from autodl.testing.images import digits_csv, digits_npz, shapes, write_image_folder  # noqa: E402

QUICK_NN = ["--searcher", "random", "--trials", "3", "--max-budget", "4", "--quiet"]


def _majority(labels) -> float:
    return pd.Series(labels).value_counts(normalize=True).iloc[0]


def _held_out(run):
    """The run's test rows (indices into the data as read) and its recorded test accuracy."""
    split = np.load(run / "split.npz")
    return split["test"], json.loads((run / "result.json").read_text())


def _predict_cli(autodl_cli, run, data, cwd):
    r = autodl_cli("predict", str(run), "--data", str(data), "--out", "pred.csv", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return pd.read_csv(cwd / "pred.csv")


@pytest.mark.slow
def test_csv_table_mlp_exports_with_raw_columns(autodl_cli, tmp_path):
    from autodl import NetworkResult

    csv = digits_csv(tmp_path / "digits.csv")
    r = autodl_cli("search", "--data", str(csv), "--target", "target", "--model", "mlp", *QUICK_NN,
                   "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    test, result = _held_out(run)
    frame = pd.read_csv(csv)
    assert result["test_score"] > _majority(frame["target"]) + 0.5
    assert result["extra"]["data"]["kind"] == "table" and result["extra"]["data"]["read_seconds"] >= 0
    pred = _predict_cli(autodl_cli, run, csv, tmp_path)  # the target column is ignored
    res = NetworkResult(run)
    assert list(pred["prediction"]) == list(res.predict(frame.drop(columns="target")))
    # held-out accuracy of the exported file = the recorded test accuracy
    acc = (pred["prediction"].to_numpy()[test] == frame["target"].to_numpy()[test]).mean()
    assert acc == pytest.approx(result["test_score"])
    from autodl.export.runtime import read_metadata

    meta = read_metadata(run / "model.onnx")
    assert meta["input_scheme"] == "columns" and meta["feature_names"][0] == "pixel_0_0"


@pytest.mark.slow
def test_npz_digits_cnn_and_darts_predict_through_the_cli(autodl_cli, tmp_path):
    from autodl import NetworkResult

    npz = digits_npz(tmp_path / "digits8x8.npz")
    X, y = np.load(npz)["X"], np.load(npz)["y"]
    runs = {"cnn": ["--model", "cnn", *QUICK_NN],
            "darts": ["--nas", "darts", "--epochs", "2", "--train-epochs", "2", "--quiet"]}
    for name, flags in runs.items():
        r = autodl_cli("search", "--data", str(npz), *flags, "--out", name, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        run = tmp_path / name
        test, result = _held_out(run)
        assert result["test_score"] > _majority(y) + 0.3, name
        pred = _predict_cli(autodl_cli, run, npz, tmp_path)
        python = NetworkResult(run).predict(X)
        assert list(pred["prediction"]) == [int(v) for v in python], name
        assert (pred["prediction"].to_numpy()[test] == y[test]).mean() == pytest.approx(result["test_score"])
        # the raw integer pixels go in: the file's input is the user's dtype and image shape
        from autodl.export.runtime import read_metadata

        assert read_metadata(run / "model.onnx")["inputs"][0]["shape"] == [None, 1, 8, 8]


@pytest.mark.slow
def test_rgb_uint8_channel_last_cnn_takes_raw_pixels_and_returns_string_labels(tmp_path):
    import onnxruntime as ort

    from autodl import search_network

    X, y = shapes(600, 32, channels=3, seed=0)  # N x H x W x C uint8
    res = search_network(X, y, model="cnn", searcher="random", n_trials=2, max_budget=3,
                         out=tmp_path / "run")
    assert res.classes == sorted(set(y)) and res.test_score is not None
    assert {"value"} <= set(res.leaderboard.columns)
    onnx_path = res.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [3, 32, 32]
    new, _ = shapes(20, 32, channels=3, seed=9)
    outs = {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {inp.name: new.transpose(0, 3, 1, 2)}))}
    labels = [str(v) for v in outs["label"]]
    assert labels == list(res.predict(new))  # N x H x W x C in Python, N x C x H x W in the file
    np.testing.assert_allclose(outs["probabilities"], res.predict_proba(new), atol=1e-5)


@pytest.mark.slow
def test_png_folder_search_and_predict_by_file(autodl_cli, tmp_path):
    from autodl import NetworkResult

    X, y = shapes(240, 20, channels=1, seed=3)
    folder = write_image_folder(X, y, tmp_path / "pngs")
    r = autodl_cli("search", "--data", str(folder), "--model", "cnn", *QUICK_NN, "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pred = _predict_cli(autodl_cli, tmp_path / "run", folder, tmp_path)
    assert len(pred) == 240 and pred["file"].iloc[0].endswith(".png")
    assert set(pred["prediction"]) <= set(y)
    python = NetworkResult(tmp_path / "run").predict(folder)
    assert list(pred["prediction"]) == list(python)


@pytest.mark.slow
def test_nas_evolution_mlp_space_on_a_dataframe(tmp_path):
    from sklearn.datasets import load_wine

    from autodl import search_network

    frame = load_wine(as_frame=True).frame
    frame["color"] = np.where(frame["alcohol"] > 13, "dark", "light")  # a categorical column
    frame.loc[::7, "magnesium"] = np.nan
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    res = search_network(frame, target="target", nas="evolution", n_trials=3, candidate_epochs=5,
                         train_epochs=10, out=tmp_path / "run")
    assert res.test_score > _majority(frame["target"]) + 0.3
    assert set(res.predict(frame.drop(columns="target"))) <= {"barolo", "grignolino", "barbera"}
    out = res.export_onnx(tmp_path / "m.onnx")
    from autodl.export.runtime import predict_table

    pred = predict_table(out, frame.drop(columns="target"))
    assert list(pred["prediction"]) == list(res.predict(frame.drop(columns="target")))


@pytest.mark.slow
def test_sequences_search_the_rnn_space_and_predict_from_npz(autodl_cli, tmp_path):
    from autodl import NetworkResult

    rng = np.random.default_rng(0)
    n, steps = 300, 12
    y = rng.integers(0, 2, n)
    t = np.arange(steps)
    freq = np.where(y == 1, 0.9, 0.3)[:, None]  # the class is the frequency of a noisy sine
    X = np.stack([np.sin(freq * t + rng.uniform(0, 6, (n, 1))), rng.normal(0, 1, (n, steps))], axis=2)
    X[:, :, 0] += rng.normal(0, 0.3, (n, steps))
    np.savez(tmp_path / "seq.npz", X=X.astype(np.float32), y=np.where(y == 1, "fast", "slow"))
    r = autodl_cli("search", "--data", "seq.npz", "--nas", "evolution", "--nas-space", "rnn", "--trials", "3",
                   "--max-budget", "8", "--train-epochs", "30", "--quiet", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    test, result = _held_out(tmp_path / "run")
    assert result["best_config"]["cell"] in ("rnn", "lstm", "gru")
    assert result["test_score"] > 0.8  # majority ~0.5
    pred = _predict_cli(autodl_cli, tmp_path / "run", tmp_path / "seq.npz", tmp_path)
    assert list(pred["prediction"]) == list(NetworkResult(tmp_path / "run").predict(X.astype(np.float32)))


def _r2(y, pred) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    return 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()


@pytest.mark.slow
def test_regression_table_mlp_and_nas_predict_values_in_the_targets_units(autodl_cli, tmp_path):
    from autodl import NetworkResult, search_network

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "shop": rng.choice(["a", "b"], n)})
    frame["price"] = 100 + 20 * frame["x1"] - 10 * frame["x2"] ** 2 + np.where(frame["shop"] == "a", 15, 0) \
        + rng.normal(0, 2, n)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    r = autodl_cli("search", "--data", "prices.csv", "--target", "price", "--model", "mlp", "--searcher", "random",
                   "--trials", "4", "--max-budget", "20", "--quiet", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    test, result = _held_out(tmp_path / "run")
    assert result["metric"] == "r2" and result["test_score"] > 0.6
    pred = _predict_cli(autodl_cli, tmp_path / "run", tmp_path / "prices.csv", tmp_path)
    res = NetworkResult(tmp_path / "run")
    assert res.task == "regression" and res.classes == []
    np.testing.assert_allclose(pred["prediction"], res.predict(frame.drop(columns="price")), rtol=1e-4, atol=1e-3)
    # the file predicts prices (around 100), and its held-out R² is the recorded one
    assert abs(pred["prediction"].mean() - frame["price"].mean()) < 10
    assert _r2(frame["price"].to_numpy()[test], pred["prediction"].to_numpy()[test]) == pytest.approx(
        result["test_score"], abs=1e-3)
    with pytest.raises(AttributeError):
        res.predict_proba(frame)
    nas = search_network(frame, target="price", nas="evolution", n_trials=3, candidate_epochs=10, train_epochs=30,
                         out=tmp_path / "nas")
    assert nas.metric == "r2" and nas.test_score > 0.6
    values = nas.predict(frame.drop(columns="price"))
    assert _r2(frame["price"], values) > 0.6


@pytest.mark.parametrize("make, flags, message", [
    (lambda p: np.savez(p / "one.npz", X=np.zeros((20, 8, 8), np.uint8), y=np.zeros(20)), ["--model", "cnn"],
     "two classes"),
    (lambda p: (p / "empty").mkdir() or (p / "empty" / "a").mkdir(), ["--model", "cnn"], "image"),
    (lambda p: pd.DataFrame({"a": [1.0, 2, 3, 4] * 5, "t": [0, 1] * 10}).to_csv(p / "t.csv", index=False),
     ["--model", "cnn", "--target", "t"], "--model mlp"),
])
def test_bad_user_data_is_one_line_and_leaves_no_run(tmp_path, capsys, make, flags, message):
    from autodl.cli.main import main

    make(tmp_path)
    data = next(p for p in tmp_path.iterdir() if p.name in ("one.npz", "empty", "t.csv"))
    code = main(["search", "--data", str(data), *flags, "--trials", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_search_network_on_a_built_in_set_predicts_raw_rows(tmp_path):
    from sklearn.datasets import load_digits

    from autodl import search_network

    res = search_network("digits", model="mlp", searcher="random", n_trials=2, max_budget=3, out=tmp_path / "run")
    X, y = load_digits(return_X_y=True)
    pred = res.predict(X)  # raw pixel values 0..16, as scikit-learn ships them
    assert (pred.astype(int) == y).mean() > 0.5 and res.predict_proba(X[:3]).shape == (3, 10)
