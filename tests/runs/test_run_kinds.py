"""One run model for every kind of search (issue #14): the same run folder, result envelope and
verbs (show, report, export, predict, resume, worker) for tabular, ``--model``, ``--nas
evolution`` and ``--nas darts`` runs, and the flag table that refuses a flag for a kind it does
not apply to before anything is loaded.

Every command runs in this process (``autodl.cli.main.main``); one small run per kind is shared
by the module (tests that change a run work on a copy).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from autodl.cli.flags import SEARCH_FLAGS  # noqa: E402
from autodl.cli.main import main  # noqa: E402

#: the fields of every result.json, whatever the kind (the envelope of issue #14)
ENVELOPE_KEYS = ["kind", "format", "metric", "direction", "best_value", "best_config", "best_trial",
                 "best_budget", "test_score", "n_complete", "n_failed", "n_pruned", "extra"]
#: the run-folder layout version this autodl writes
FORMAT = 2
#: how the CLI names each variant in its one-line flag errors
LABEL = {"tabular": "tabular searches", "nn": "--model", "darts": "--nas darts", "nas": "--nas evolution|random"}
#: the variants that search through a Study (trials, resume, worker)
STUDY_VARIANTS = ("tabular", "nn", "nas")

#: one small run per variant: (run kind, built-in data set, search flags, share of the non-test
#: rows that goes to validation: tabular cross-validates on its training rows, so none)
RUNS = {
    "tabular": ("tabular", "iris", ["--trials", "4", "--cv", "3"], 0.0),
    "nn": ("nn", "digits", ["--model", "mlp", "--trials", "4", "--max-budget", "2"], 0.2),
    "nas": ("nas", "iris", ["--nas", "evolution", "--nas-space", "mlp", "--trials", "3", "--max-budget", "2",
                            "--train-epochs", "2"], 0.5),
    "darts": ("nas", "digits", ["--nas", "darts", "--epochs", "1", "--train-epochs", "1"], 0.5),
}


def cli(*args) -> tuple[int, str, str]:
    """``autodl ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def ok(code: int, out: str, err: str) -> str:
    assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err
    return out


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def raw_data(dataset: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The data set's columns as scikit-learn ships them, and its labels."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{dataset}")(as_frame=True)
    return bunch.data, np.asarray(bunch.target)


def result_of(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


def finished(result: dict) -> int:
    return result["n_complete"] + result["n_failed"] + result["n_pruned"]


def trial_values(run: Path) -> dict[int, float]:
    code, out, err = cli("show", run, "--json")
    return {t["id"]: t["value"] for t in json.loads(ok(code, out, err))["trials"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """variant -> its run folder, searched once for the module."""
    from threadpoolctl import threadpool_limits

    base = tmp_path_factory.mktemp("runs")
    folders = {}
    with threadpool_limits(limits=1):  # small models: one thread each, leave the other core alone
        for variant, (_, dataset, flags, _) in RUNS.items():
            run = base / variant
            code, out, err = cli("search", "--dataset", dataset, *flags, "--out", run, "--quiet")
            ok(code, out, err)
            assert err == "", err  # --quiet: nothing but the result on stdout
            folders[variant] = run
    return folders


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    """data set -> a CSV of all its rows, the columns as scikit-learn names them."""
    base = tmp_path_factory.mktemp("csv")
    paths = {}
    for dataset in ("iris", "digits"):
        paths[dataset] = base / f"{dataset}.csv"
        raw_data(dataset)[0].to_csv(paths[dataset], index=False)
    return paths


VARIANTS = list(RUNS)


# ------------------------------------------------------------------------------ the folder
@pytest.mark.parametrize("variant", VARIANTS)
def test_result_json_is_the_envelope(runs, variant):
    kind = RUNS[variant][0]
    result = result_of(runs[variant])
    assert list(result) == ENVELOPE_KEYS
    assert result["kind"] == kind and result["format"] == FORMAT
    assert result["metric"] == "accuracy" and result["direction"] == "maximize"
    assert 0 < result["best_value"] <= 1 and 0 < result["test_score"] <= 1
    assert isinstance(result["best_config"], dict) and result["best_config"]
    assert isinstance(result["extra"], dict)
    if variant == "darts":  # no trials: the supernet's last validation accuracy and the derived genotype
        assert result["best_trial"] is None
        assert result["best_value"] == result["extra"]["supernet_val_accuracy"]
        assert result["best_config"] == {"genotype": json.loads((runs[variant] / "genotype.json").read_text())}
    else:
        assert isinstance(result["best_trial"], int)
        assert finished(result) == int(RUNS[variant][2][RUNS[variant][2].index("--trials") + 1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_run_json_names_kind_and_format_first(runs, variant):
    from autodl.runs import open_run, read_run

    run = runs[variant]
    spec = json.loads((run / "run.json").read_text())
    assert list(spec)[:2] == ["kind", "format"]
    assert spec["kind"] == RUNS[variant][0] and spec["format"] == FORMAT
    kind, fields = read_run(run)
    assert kind == RUNS[variant][0] and "kind" not in fields
    opened = open_run(run)
    assert opened.kind.name == kind and opened.kind.variant(opened.spec) == variant
    assert not hasattr(opened.spec, "kind")  # the spec dataclasses no longer carry the kind


@pytest.mark.parametrize("variant", VARIANTS)
def test_split_npz_holds_disjoint_row_indices_covering_the_data(runs, variant):
    _, dataset, _, val_share = RUNS[variant]
    with np.load(runs[variant] / "split.npz", allow_pickle=False) as z:
        split = {k: z[k] for k in z.files}
    assert set(split) <= {"train", "val", "test"} and {"train", "test"} <= set(split)
    parts = {k: split.get(k, np.zeros(0, np.int64)) for k in ("train", "val", "test")}
    _, y = raw_data(dataset)
    n = len(y)
    for name, idx in parts.items():
        assert idx.ndim == 1 and np.issubdtype(idx.dtype, np.integer), name
        assert len(np.unique(idx)) == len(idx), f"{name} repeats rows"
        assert len(idx) == 0 or (idx.min() >= 0 and idx.max() < n), name
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not set(parts[a]) & set(parts[b]), f"{a} and {b} share rows"
    # together every row of the data set (no --max-rows here)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(n))
    # the default --test-size 0.2, stratified; the rest split into train and validation
    test, val = parts["test"], parts["val"]
    assert abs(len(test) - 0.2 * n) < 1
    assert abs(len(val) - val_share * (n - len(test))) < 1
    for c in np.unique(y):
        assert abs((y[test] == c).sum() - 0.2 * (y == c).sum()) <= 1, f"class {c} not stratified"
    if RUNS[variant][0] == "nas":  # the envelope's counts are those rows
        x = result_of(runs[variant])["extra"]
        assert (x["n_train"], x["n_val"], x["n_test"]) == (len(parts["train"]), len(val), len(test))


@pytest.mark.parametrize("variant", ["tabular", "nn", "nas", "darts"])
def test_split_npz_has_the_documented_parts(runs, variant):
    with np.load(runs[variant] / "split.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["test", "train", "val"]


# ------------------------------------------------------------------------- show and report
@pytest.mark.parametrize("variant", VARIANTS)
def test_show_json_prints_the_result_and_the_trials(runs, variant):
    run = runs[variant]
    code, out, err = cli("show", run, "--json")
    shown = json.loads(ok(code, out, err))
    assert set(shown) == {"result", "trials"}
    result = result_of(run)
    assert shown["result"] == result
    if variant == "darts":
        assert shown["trials"] == []
        assert not (run / "study.db").exists()
    else:
        trials = {t["id"]: t for t in shown["trials"]}
        assert len(trials) == finished(result)
        best = trials[result["best_trial"]]
        assert best["state"] == "complete" and best["value"] == pytest.approx(result["best_value"])
        # a bare study file still prints the list of trials
        code, out, err = cli("show", run / "study.db", "--json")
        assert json.loads(ok(code, out, err)) == shown["trials"]
    code, out, err = cli("show", run)  # the human-readable form ends with the kind's lines
    assert f"run folder: {run}" in ok(code, out, err)


@pytest.mark.parametrize("variant", VARIANTS)
def test_report_writes_one_page(runs, variant, tmp_path):
    page_path = tmp_path / "report.html"
    code, out, err = cli("report", runs[variant], "--out", page_path)
    assert f"report written to {page_path}" in ok(code, out, err)
    page = page_path.read_text()
    assert "<h2>Summary</h2>" in page and "<h2>Settings</h2>" in page
    if variant == "darts":
        assert "<h2>Derived cell</h2>" in page
    else:
        assert "<h2>Leaderboard</h2>" in page


# ----------------------------------------------------------------------- export and predict
@pytest.mark.parametrize("variant", VARIANTS)
def test_export_onnx_records_the_run(runs, variant, tmp_path):
    from autodl.export import read_metadata

    run = runs[variant]
    path = tmp_path / "model.onnx"
    code, out, err = cli("export", run, "--onnx", path)
    assert out.startswith(f"wrote {path} (verified with onnxruntime on"), (out, err)
    ok(code, out, err)
    if variant != "tabular":  # the network scores the recorded test accuracy on the run's test rows
        assert "as recorded" in out
    meta = read_metadata(str(path))
    result = result_of(run)
    assert meta["run_kind"] == RUNS[variant][0]
    assert meta["config"] == result["best_config"] and meta["score"] == result["best_value"]
    assert meta["test_score"] == result["test_score"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_predict_on_the_run_folder_scores_the_recorded_test_accuracy(runs, csvs, variant, tmp_path):
    run = runs[variant]
    dataset = RUNS[variant][1]
    X, y = raw_data(dataset)
    code, out, err = cli("predict", run, "--data", csvs[dataset], "--out", tmp_path / "p.csv")
    ok(code, out, err)
    assert "exported the run's model to" in err and (run / "model.onnx").is_file()
    preds = pd.read_csv(tmp_path / "p.csv")
    assert len(preds) == len(X) and preds.columns[0] == "prediction"
    assert list(preds.columns[1:]) == [f"proba_{c}" for c in np.unique(y)]
    # the run's own test rows, from split.npz and scikit-learn's data set
    with np.load(run / "split.npz", allow_pickle=False) as z:
        test = z["test"]
    hits = preds["prediction"].to_numpy()[test] == y[test]
    accuracy = float(hits.mean())
    recorded = result_of(run)["test_score"]
    half_a_row = 0.5 / len(test)
    # a tabular winner is refit on all rows (test rows included) after it is scored: at least as good
    assert accuracy >= recorded - half_a_row, (accuracy, recorded)
    if variant != "tabular":  # the network that was scored is the one exported
        assert abs(accuracy - recorded) < half_a_row, (accuracy, recorded)
    # RUN/model.onnx is exported once, then reused
    stamp = (run / "model.onnx").stat().st_mtime_ns
    code, out, err = cli("predict", run, "--data", csvs[dataset], "--out", tmp_path / "q.csv")
    ok(code, out, err)
    assert "exported" not in err and (run / "model.onnx").stat().st_mtime_ns == stamp
    assert pd.read_csv(tmp_path / "q.csv").equals(preds)


@pytest.mark.parametrize("variant", STUDY_VARIANTS)
def test_export_trial_rebuilds_the_best_trial_as_the_run_built_it(runs, csvs, variant, tmp_path):
    """``export --trial N`` on the run's best trial: the file scores what the run recorded on its
    test rows (networks: the same network, from its checkpoint or trained again the same way;
    tabular: refit on all rows, so at least as well), and its metadata names the trial."""
    from autodl.export import read_metadata

    run = runs[variant]
    result = result_of(run)
    dataset = RUNS[variant][1]
    path = tmp_path / "trial.onnx"
    code, out, err = cli("export", run, "--trial", result["best_trial"], "--onnx", path)
    assert out.startswith(f"wrote {path} (verified with onnxruntime on"), (out, err)
    ok(code, out, err)
    assert ("refit" if variant == "tabular" else f"trial {result['best_trial']}") in err
    meta = read_metadata(str(path))
    assert meta["trial_id"] == result["best_trial"] and meta["config"] == result["best_config"]
    code, out, err = cli("predict", path, "--data", csvs[dataset], "--out", tmp_path / "p.csv")
    ok(code, out, err)
    X, y = raw_data(dataset)
    with np.load(run / "split.npz", allow_pickle=False) as z:
        test = z["test"]
    accuracy = float((pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()[test] == y[test]).mean())
    half_a_row = 0.5 / len(test)
    assert accuracy >= result["test_score"] - half_a_row, (accuracy, result["test_score"])
    if variant != "tabular":
        assert abs(accuracy - result["test_score"]) < half_a_row, (accuracy, result["test_score"])


@pytest.mark.parametrize("variant, trial, message", [
    ("darts", 1, "is a DARTS run: it has one architecture and no trials"),
    ("nn", 999, "has no trial 999"),
    ("nas", 999, "has no trial 999"),
])
def test_export_trial_that_cannot_be_exported_is_one_line(runs, variant, trial, message, tmp_path):
    code, out, err = cli("export", runs[variant], "--trial", trial, "--onnx", tmp_path / "t.onnx")
    assert code == 2 and message in one_line(err)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- resume, worker
def _copy(runs, variant, tmp_path) -> Path:
    copy = tmp_path / variant
    shutil.copytree(runs[variant], copy)
    return copy


@pytest.mark.parametrize("variant", STUDY_VARIANTS)
def test_resume_with_more_trials_keeps_the_finished_ones(runs, variant, tmp_path):
    run = _copy(runs, variant, tmp_path)
    before = trial_values(run)
    total = len(before) + 1
    code, out, err = cli("resume", run, "--trials", total, "--quiet")
    assert f"run folder: {run}" in ok(code, out, err)
    result = result_of(run)
    assert list(result) == ENVELOPE_KEYS and finished(result) == total
    after = trial_values(run)
    assert len(after) == total and {k: after[k] for k in before} == before
    assert json.loads((run / "run.json").read_text())["n_trials"] == total


@pytest.mark.parametrize("variant", STUDY_VARIANTS)
def test_worker_runs_trials_of_the_run(runs, variant, tmp_path):
    from autodl.runs import update_run

    run = _copy(runs, variant, tmp_path)
    before = trial_values(run)
    result = (run / "result.json").read_text()
    total = len(before) + 1
    update_run(run, n_trials=total)  # a search of one more trial, whose driver is gone
    code, out, err = cli("worker", run, "--quiet")
    ok(code, out, err)
    assert one_line(err) == f"autodl worker: ran 1 trials; {run} has {total}/{total} finished"
    after = trial_values(run)
    assert len(after) == total and {k: after[k] for k in before} == before
    assert (run / "result.json").read_text() == result  # the search (or resume) writes the result
    # with the total reached a worker has nothing to do
    code, out, err = cli("worker", run, "--quiet")
    ok(code, out, err)
    assert one_line(err) == f"autodl worker: ran 0 trials; {run} has {total}/{total} finished"


def test_a_finished_darts_run_has_nothing_to_resume_and_cannot_be_joined(runs):
    run = runs["darts"]
    before = sorted(p.name for p in run.iterdir())
    code, _, err = cli("resume", run)
    assert code == 2 and "nothing to resume" in one_line(err)
    code, _, err = cli("resume", run, "--trials", "5")
    assert code == 2
    assert one_line(err) == ("autodl resume: error: --trials does not apply to --nas darts; it applies to: "
                             "tabular searches, --model, --nas evolution|random")
    code, _, err = cli("worker", run)
    assert code == 2 and one_line(err).startswith("autodl worker: error: ")
    code, _, err = cli("worker", run, "--workers", "2")
    assert code == 2 and "--workers does not apply to --nas darts" in one_line(err)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


def test_an_interrupted_darts_search_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    """Ctrl-C during epoch 2 of 3: `autodl resume` goes on with epochs 2 and 3 (not from zero),
    trains the final network, and the run folder then works like any finished one."""
    import autodl.nas.darts as darts

    calls = {"n": 0}
    share = darts.parameter_free_share

    def interrupt_at_epoch_2(genotype):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return share(genotype)

    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", X=digits.images[:500].astype(np.uint8), y=digits.target[:500])
    run = tmp_path / "run"
    monkeypatch.setattr(darts, "parameter_free_share", interrupt_at_epoch_2)
    code, out, err = cli("search", "--data", tmp_path / "digits.npz", "--nas", "darts", "--epochs", "3",
                         "--train-epochs", "4", "--out", run)
    assert code == 130 and "interrupted" in err and not (run / "result.json").exists()
    monkeypatch.setattr(darts, "parameter_free_share", share)
    code, out, err = cli("resume", run)
    ok(code, out, err)
    assert "resuming after search epoch 1/3" in err
    assert "epoch 1/3" not in err.replace("after search epoch 1/3", "")  # epoch 1 is not searched again
    result = json.loads((run / "result.json").read_text())
    assert result["extra"]["search_epochs"] == 3
    assert len(json.loads((run / "alphas.json").read_text())["history"]["normal"]) == 3
    assert result["test_score"] > 0.5  # 10 classes: chance 0.1
    code, _, err = cli("resume", run)
    assert code == 2 and "nothing to resume" in one_line(err)
    ok(*cli("show", run))


def test_worker_says_why_a_darts_run_is_refused(runs):
    code, _, err = cli("worker", runs["darts"])
    assert code == 2 and "no trials to share" in one_line(err)


# ---------------------------------------------------------------------------- the flag table
#: a minimal search of each variant (never run here: the flag error must come first)
BASE = {
    "tabular": ["--dataset", "iris", "--trials", "1"],
    "nn": ["--dataset", "digits", "--model", "mlp", "--trials", "1"],
    "darts": ["--dataset", "digits", "--nas", "darts"],
    "nas": ["--dataset", "iris", "--nas", "evolution", "--nas-space", "mlp", "--trials", "1"],
}
#: flags that choose the variant: given to another study variant they change it (not an error),
#: given next to the other one they are "alternatives"
SELECTORS = {"--model": ("darts", "nas"), "--nas": ("nn",)}


def _value(flag) -> list[str]:
    """The flag with a value its type accepts (a number, a fraction, a duration, a size, ...)."""
    kw = flag.kwargs
    if kw.get("action") == "store_true":
        return [flag.names[0]]
    if kw.get("choices"):
        return [flag.names[0], str(kw["choices"][0])]
    kind = kw.get("type") or str
    for text in ("2", "0.1", "30s", "2G", "x.csv"):
        try:
            kind(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        return [flag.names[0], text]
    raise AssertionError(f"no valid value known for {flag.names[0]}")


def _misapplied():
    cases = []
    for flag in SEARCH_FLAGS:
        name = flag.names[0]
        for variant in BASE:
            if variant in flag.kinds or (name in SELECTORS and variant not in SELECTORS[name]):
                continue
            cases.append(pytest.param(flag, variant, id=f"{name}-{variant}"))
    return cases


@pytest.fixture
def nothing_loaded(monkeypatch):
    """Fail if a search starts: every kind's start/run and the data loaders raise."""
    from autodl.runs import KINDS, get_kind

    calls: list[str] = []

    class Loaded(BaseException):  # not caught by the CLI's handlers
        pass

    def refuse(what):
        def f(*args, **kwargs):
            calls.append(what)
            raise Loaded(what)
        return f

    for name in KINDS:
        kind = get_kind(name)
        monkeypatch.setattr(kind, "start", refuse(f"{name}.start"))
        monkeypatch.setattr(kind, "run", refuse(f"{name}.run"))
    import autodl.nn.data
    import autodl.tabular.data

    monkeypatch.setattr(autodl.tabular.data, "load_builtin", refuse("tabular data"))
    monkeypatch.setattr(autodl.nn.data, "raw_dataset", refuse("nn data"))
    monkeypatch.setattr(autodl.nn.data, "load_dataset", refuse("nn data"))
    return calls, Loaded


def test_the_bases_would_start_a_search(nothing_loaded, tmp_path):
    """The check below means something: each minimal argv alone reaches the kind's start."""
    calls, loaded = nothing_loaded
    for variant, base in BASE.items():
        with pytest.raises(loaded):
            cli("search", *base, "--out", tmp_path / variant)
    assert len(calls) == len(BASE)


def test_the_flag_table_has_misapplied_cases_for_every_variant():
    """The table covers every variant at least once (so the parametrized test is not empty)."""
    cases = _misapplied()
    assert {c.values[1] for c in cases} == set(BASE)
    assert len(cases) >= 40


@pytest.mark.parametrize("flag, variant", _misapplied())
def test_misapplied_flag_is_one_line_before_anything_loads(flag, variant, nothing_loaded, tmp_path, monkeypatch):
    calls, _ = nothing_loaded
    monkeypatch.chdir(tmp_path)  # a default runs/ folder would land here
    name = flag.names[0]
    code, out, err = cli("search", *BASE[variant], *_value(flag), "--out", tmp_path / "r")
    assert code == 2 and out == ""
    line = one_line(err)
    if name in SELECTORS:
        assert line.startswith("autodl search: error: --nas and --model are alternatives"), line
    else:
        where = ", ".join(LABEL[k] for k in flag.kinds)
        assert line == f"autodl search: error: {name} does not apply to {LABEL[variant]}; it applies to: {where}"
    assert calls == []
    assert list(tmp_path.iterdir()) == []  # no run folder (and no default runs/)
