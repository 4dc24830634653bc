"""``check_space``: a tabular space naming an unknown model, hyperparameter or preprocessing
option is refused before any trial runs (it would fail, or be silently ignored, in every trial)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from autodl import Categorical, Float, Int, Space, SpaceError
from autodl.tabular.pipeline import (CLASS_WEIGHT_MODELS, HYPERPARAMETERS, MODELS, PREPROCESSING, build_model,
                                     build_pipeline, check_space)

KNOWN = "known models: linear, knn, svm, random_forest, extra_trees, hist_gb, mlp"


def from_yaml(text: str) -> Space:
    return Space.from_dict(yaml.safe_load(text))


def test_the_built_in_tabular_space_passes():
    check_space(Space.load("tabular"))


def test_a_small_valid_space_passes():
    check_space(Space({
        "model": Categorical(["linear", "hist_gb"]),
        "scaler": Categorical(["standard", "none"]),
        "linear.alpha": Float(1e-3, 10.0, log=True, condition={"model": ["linear"]}),
        "hist_gb.max_iter": Int(10, 100, condition={"model": ["hist_gb"]}),
    }))


BAD = {
    "misspelt model choice": (
        "parameters:\n  model: {type: categorical, choices: [linear, xgboostt]}\n",
        f"search space: unknown model 'xgboostt' among the choices of 'model'; {KNOWN}"),
    "two unknown models": (
        "parameters:\n  model: {type: categorical, choices: [lightgbm, knn, catboost]}\n",
        f"search space: unknown models 'lightgbm', 'catboost' among the choices of 'model'; {KNOWN}"),
    "parameter of an unknown model": (
        "parameters:\n  model: {type: categorical, choices: [linear]}\n"
        "  xgboost.max_depth: {type: int, low: 2, high: 8}\n",
        f"search space: parameter 'xgboost.max_depth' is for an unknown model 'xgboost'; {KNOWN}"),
    "misspelt hyperparameter": (
        "parameters:\n  model: {type: categorical, choices: [hist_gb]}\n"
        "  hist_gb.max_iterr: {type: int, low: 10, high: 100}\n",
        "search space: parameter 'hist_gb.max_iterr': hist_gb has no hyperparameter 'max_iterr'; its "
        "hyperparameters: learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization"),
    "unknown top-level parameter": (
        "parameters:\n  model: {type: categorical, choices: [linear]}\n"
        "  scaling: {type: categorical, choices: [standard]}\n",
        "search space: unknown parameter 'scaling'; a tabular space has 'model', 'impute', 'scaler', "
        "'encoder', 'class_weight' and '<model>.<hyperparameter>' parameters"),
    "unknown encoder": (
        "parameters:\n  model: {type: categorical, choices: [linear]}\n"
        "  encoder: {type: categorical, choices: [onehot, target]}\n",
        "search space: unknown encoder 'target'; choose from onehot, ordinal"),
    "numeric scaler": (
        "parameters:\n  model: {type: categorical, choices: [linear]}\n"
        "  scaler: {type: float, low: 0, high: 1}\n",
        "search space: 'scaler' must be a categorical over standard, minmax, robust, none; got Float"),
    "numeric model": (
        "parameters:\n  model: {type: int, low: 0, high: 3}\n",
        f"search space: 'model' must be a categorical over the models ({KNOWN[len('known models: '):]}); "
        "got Int"),
    "no model": (
        "parameters:\n  linear.alpha: {type: float, low: 0.1, high: 1}\n",
        "the tabular search space needs a 'model' parameter"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_space_is_one_line_naming_the_problem(case):
    text, message = BAD[case]
    with pytest.raises(SpaceError) as info:
        check_space(from_yaml(text))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


class _Recording(dict):
    """A config that records which keys are read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


@pytest.mark.parametrize("model", MODELS)
def test_the_hyperparameter_table_is_what_build_model_reads(model):
    read = set()
    for task in ("classification", "regression"):
        config = _Recording({"model": model})
        build_model(config, task)
        read |= config.read
    # and class_weight, a top-level parameter, for the families whose classifiers take it
    assert ("class_weight" in read) == (model in CLASS_WEIGHT_MODELS)
    assert read - {"model", "class_weight"} == {f"{model}.{h}" for h in HYPERPARAMETERS[model]}
    assert set(HYPERPARAMETERS) == set(MODELS)


def test_the_preprocessing_table_is_what_build_pipeline_reads_and_every_value_fits():
    X = pd.DataFrame({"num": [1.0, 2.0, None, 4.0, 5.0, 6.0], "cat": ["a", "b", "a", None, "b", "a"]})
    y = [0, 1, 0, 1, 0, 1]
    config = _Recording({"model": "linear"})
    build_pipeline(config, X, "classification")
    assert config.read - {"model", "linear.alpha"} == set(PREPROCESSING)
    for name, values in PREPROCESSING.items():
        for value in values:  # each allowed value builds a pipeline that fits
            build_pipeline({"model": "linear", name: value}, X, "classification").fit(X, y)


def test_the_cli_refuses_an_unknown_model_before_any_trial(tmp_path, monkeypatch, capsys):
    from autodl.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(BAD["misspelt model choice"][0])
    code = main(["search", "--dataset", "iris", "--space", "bad.yaml", "--trials", "2", "--out", "X"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [f"autodl search: error: {BAD['misspelt model choice'][1]}"]
    assert out == ""
    assert not (tmp_path / "X").exists() and not (tmp_path / "runs").exists()
