"""A Hyperband search of PyTorch models writes checkpoints only for trials the searcher may
continue, and gets exactly the same results as when it writes every checkpoint."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from autodl.nn import load_dataset  # noqa: E402
from autodl.nn import checkpoint as ckpt  # noqa: E402
from autodl.nn.search import NNObjective  # noqa: E402
from autodl.space import Space  # noqa: E402
from autodl.study import Study  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits", seed=0)


def _run(digits, root, skip: bool, n_workers: int = 1, n_trials: int = 13):
    ckpt.clear_cache()
    study = Study(Space.load("mlp"), searcher="hyperband", direction="maximize", storage=root / "study.db",
                  seed=3, searcher_params={"min_budget": 1, "max_budget": 9, "eta": 3})
    writes = []
    real_save = ckpt.save_checkpoint

    def counting_save(folder, *args, **kwargs):
        writes.append(folder)
        return real_save(folder, *args, **kwargs)

    ckpt.save_checkpoint = counting_save
    try:
        study.optimize(NNObjective(digits, "mlp", seed=0, max_epochs=9, skip_dead_checkpoints=skip),
                       n_trials=n_trials, n_workers=n_workers)
    finally:
        ckpt.save_checkpoint = real_save
    trials = sorted(study.trials, key=lambda t: t.id)
    return trials, writes, len(list((root / "checkpoints").iterdir()))


def test_skipping_dead_checkpoints_changes_nothing_but_the_writes(digits, tmp_path):
    (tmp_path / "all").mkdir()
    (tmp_path / "skip").mkdir()
    every, writes_all, folders_all = _run(digits, tmp_path / "all", skip=False)
    some, writes_skip, folders_skip = _run(digits, tmp_path / "skip", skip=True)
    assert [t.config for t in some] == [t.config for t in every]
    assert [t.value for t in some] == [t.value for t in every]
    # no promoted trial lost its checkpoint: the same epochs were trained and resumed
    for key in ("epochs_trained", "epochs_resumed"):
        assert [t.user_attrs[key] for t in some] == [t.user_attrs[key] for t in every]
    assert sum(t.user_attrs["epochs_resumed"] for t in some) > 0
    assert len(writes_all) == 13 and folders_all == 9
    # bracket 9 -> 3 -> 1: the 6 configs not promoted from rung 0 and the 2 from rung 1 need no
    # checkpoint unless they looked promotable when they finished
    assert len(writes_skip) < len(writes_all) and folders_skip < folders_all


def test_worker_processes_ask_the_driver(digits, tmp_path):
    """With worker processes the question travels over the pipe: checkpoints are skipped there
    too, and every promoted trial still resumes from its lower rung's checkpoint."""
    # (with two workers a waiting rung lets the next bracket start: more trials to see promotions)
    trials, _, folders = _run(digits, tmp_path, skip=True, n_workers=2, n_trials=22)
    configs = {t.info["config_key"] for t in trials}
    promoted = [t for t in trials if t.info["rung"] > 0]
    assert promoted
    for t in promoted:
        assert t.user_attrs["epochs_resumed"] == t.budget / 3, t  # eta = 3: from the rung below
    assert folders < len(configs)
