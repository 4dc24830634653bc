"""``autodl search --objectives / --max-latency-ms / --select / --latency-fn`` and ``autodl export
RUN --trial N`` (issue 19), checked against hand computations over ``show --json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autodl.cli.main import main

SMALL = ["--dataset", "breast_cancer", "--trials", "5", "--cv", "3", "--quiet"]


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def front_run(tmp_path_factory, autodl_cli):
    """One accuracy x latency x size search chosen by a --select rule, shared by the tests below."""
    base = tmp_path_factory.mktemp("mo")
    proc = autodl_cli("search", *SMALL, "--objectives", "metric,latency,size",
                      "--select", "accuracy, size<=100KB", "--out", "run", cwd=base)
    _ok(proc)
    shown = autodl_cli("show", "run", "--json", cwd=base)
    _ok(shown)
    return base, json.loads(shown.stdout), proc


def test_show_json_carries_directions_names_and_the_front(front_run):
    _, shown, proc = front_run
    result = shown["result"]
    assert result["metric"] == ["accuracy", "latency", "size"]
    assert result["direction"] == ["maximize", "minimize", "minimize"]
    complete = [t for t in shown["trials"] if t["state"] == "complete"]
    signs = np.array([-1.0, 1.0, 1.0])
    pts = {t["id"]: signs * np.array(t["values"]) for t in complete}
    front = {i for i, p in pts.items() if not any(np.all(q <= p) and np.any(q < p) for j, q in pts.items() if j != i)}
    assert {f["trial_id"] for f in result["extra"]["front"]} == front
    assert {t["id"] for t in complete if t["pareto_optimal"]} == front
    assert "Pareto front" in proc.stdout and "chosen by --select" in proc.stdout


def test_select_picks_what_a_hand_computation_over_the_front_picks(front_run):
    _, shown, _ = front_run
    front = shown["result"]["extra"]["front"]
    ok = [f for f in front if f["values"][2] <= 100 * 1024]
    expected = max(ok, key=lambda f: (f["values"][0], -f["trial_id"])) if ok else None
    assert expected is not None, "the size limit should admit a front member (linear models are ~8 kB)"
    assert shown["result"]["best_trial"] == expected["trial_id"]
    assert shown["result"]["best_value"] == expected["values"]


def test_export_trial_refits_that_config_and_predicts_like_it(front_run, autodl_cli):
    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer

    from autodl.tabular.pipeline import build_pipeline

    base, shown, _ = front_run
    front = shown["result"]["extra"]["front"]
    other = next((f for f in front if f["trial_id"] != shown["result"]["best_trial"]), front[0])
    n = other["trial_id"]
    proc = autodl_cli("export", "run", "--trial", str(n), "--onnx", "t.onnx", cwd=base)
    _ok(proc)
    assert f"refitting trial {n}'s configuration on all training rows" in proc.stderr
    config = next(t["config"] for t in shown["trials"] if t["id"] == n)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    by_hand = build_pipeline(config, X, "classification", 0).fit(X, y)
    sess = ort.InferenceSession(str(base / "t.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rows = X.iloc[:100]
    feeds = ({names[0]: rows.to_numpy(np.float32)} if len(names) == 1 else
             {name: rows[[col]].to_numpy(np.float64) for name, col in zip(names, X.columns)})
    label, proba = sess.run(None, feeds)[:2]
    assert (np.asarray(label).ravel() == by_hand.predict(rows)).mean() >= 0.99
    got = np.array([[p[k] for k in sorted(p)] for p in proba]) if isinstance(proba, list) else np.asarray(proba)
    assert np.abs(got - by_hand.predict_proba(rows)).max() < 1e-4


def test_export_of_an_unknown_trial_is_one_line_and_writes_nothing(front_run, capsys):
    base, _, _ = front_run
    code = main(["export", str(base / "run"), "--trial", "999", "--onnx", str(base / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "has no trial 999" in err and err.count("\n") == 1
    assert not (base / "x.onnx").exists()


@pytest.mark.slow
def test_max_latency_ms_flag_deploys_a_model_under_the_limit(tmp_path, autodl_cli):
    """The k-NN of the portfolio is over 0.25 ms per row; the deployed file, timed here with
    onnxruntime on one thread, is under it."""
    import statistics
    import time

    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer

    from autodl.export.runtime import read_metadata, table_to_feeds

    proc = autodl_cli("search", *SMALL, "--max-latency-ms", "0.25", "--out", "run", "--export-onnx", "m.onnx",
                      cwd=tmp_path)
    _ok(proc)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["extra"]["deployment"]["meets_limit"] is True
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), sess_options=opts, providers=["CPUExecutionProvider"])
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    meta = read_metadata(sess)
    feeds = [table_to_feeds(X.iloc[[i]], meta) for i in range(16)]
    times = []
    for k in range(60):
        t0 = time.perf_counter()
        sess.run(None, feeds[k % 16])
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) * 1e3 <= 0.25


@pytest.mark.parametrize("flags, message", [
    (["--objectives", "metric,params"], "'params' (a network's parameter count) is for --model and --nas"),
    (["--objectives", "metric,latency", "--select", "accuracy, latency<=1parsec"], "unknown unit 'parsec'"),
    (["--objectives", "metric,latency", "--select", "accuracy, latency"], "names two objectives"),
    (["--select", "accuracy"], "give several objectives too"),
    (["--max-latency-ms", "-3"], "must be a positive number"),
    (["--max-latency-ms", "1e-6", "--trials", "2"], "no trial meets --max-latency-ms 1e-06"),
    (["--max-latency-ms", "1", "--latency-fn", "no_such_module:f"], "cannot import module 'no_such_module'"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, flags, message):
    try:
        code = main(["search", "--dataset", "breast_cancer", "--trials", "1", "--cv", "3", "--quiet",
                     "--out", str(tmp_path / "run"), *flags])
    except SystemExit as exc:  # argparse's own checks (a flag's type)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.strip().count("\n") == 0, err
    if "no trial meets" not in message:  # refused before the run folder is made
        assert not (tmp_path / "run").exists()


def test_the_flags_are_declared_for_tabular_searches():
    from autodl.cli.flags import SEARCH_FLAGS

    declared = {f.names[0]: f.kinds for f in SEARCH_FLAGS}
    for flag in ("--objectives", "--max-latency-ms", "--select", "--latency-fn"):
        assert "tabular" in declared[flag]


@pytest.mark.slow
def test_latency_fn_module_function_is_used(tmp_path, autodl_cli):
    (tmp_path / "remote_machine.py").write_text("def latency_ms(data):\n    return len(data) / 1e5\n")
    proc = autodl_cli("search", "--dataset", "breast_cancer", "--trials", "3", "--cv", "3", "--quiet",
                      "--objectives", "metric,latency", "--latency-fn", "remote_machine:latency_ms", "--out", "run",
                      cwd=tmp_path)
    _ok(proc)
    cache = json.loads((tmp_path / "run" / "latency.json").read_text())
    assert cache and all(m["latency_ms"] == pytest.approx(m["size_bytes"] / 1e5) for m in cache.values())


def test_export_trial_of_a_run_without_trials_is_one_line(tmp_path, capsys):
    run = Path(tmp_path / "nn")
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "nn", "format": 2, "dataset": "digits"}))
    code = main(["export", str(run), "--trial", "0", "--onnx", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "has no study.db, so no trials to export" in err and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()
