"""Stored models and checkpoints load without running code from the file.

Each test crafts a hostile file whose payload leaves a visible trace when it runs (it creates a
marker path), checks that an unguarded loader does run it (so the payload is live), then checks
that autodl's loader refuses the file and the marker was never created.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest


class Untrusted:
    """A type outside scikit-learn/NumPy/SciPy: a model file naming it must be refused."""

    def __init__(self):
        self.payload = [1, 2, 3]


class Payload:
    """Restoring its state creates the directory ``state["marker"]`` (as any code could)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        os.mkdir(state["marker"])
        self.__dict__.update(state)


class PicklePayload:
    """Unpickling it calls ``os.mkdir(marker)``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


# ---------------------------------------------------------------------- skops model files
def test_skops_model_round_trips(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from autodl.tabular.persist import load_model, save_model

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path = save_model(model, tmp_path / "model.skops")
    loaded = load_model(path)
    assert loaded.predict([[0.2], [2.8]]).tolist() == [0, 1]


def test_a_crafted_skops_file_naming_an_untrusted_type_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from autodl.tabular.persist import load_model

    crafted = tmp_path / "model.skops"
    sio.dump(Pipeline([("scale", StandardScaler())]).set_params(scale=Untrusted()), crafted)
    assert any("Untrusted" in t for t in sio.get_untrusted_types(file=crafted))
    with pytest.raises(ValueError, match="Untrusted.*not loading it"):
        load_model(crafted)


def test_a_skops_file_whose_object_runs_code_on_load_is_refused_before_it_runs(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    from autodl.tabular.persist import load_model

    def crafted(name: str) -> tuple[Path, Path]:
        marker = tmp_path / f"ran-{name}"
        path = tmp_path / f"{name}.skops"
        sio.dump(Pipeline([("step", Payload(marker))]), path)
        return path, marker

    control, control_marker = crafted("control")
    sio.load(control, trusted=sio.get_untrusted_types(file=control))  # trusting everything runs it
    assert control_marker.is_dir()

    path, marker = crafted("model")
    with pytest.raises(ValueError, match="Payload.*not loading it"):
        load_model(path)
    assert not marker.exists()


def _two_member_ensemble():
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from autodl.tabular.ensemble import EnsembleModel

    X = np.random.default_rng(0).normal(size=(80, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    members = [(0.7, LogisticRegression().fit(X, y)), (0.3, RandomForestClassifier(5, random_state=0).fit(X, y))]
    return EnsembleModel(members, "classification"), X


def test_an_ensemble_round_trips_with_members_serialized_ahead(tmp_path):
    """Members serialized during the search (MemberBlobs) and members serialized at the save give
    one file that loads to the same predictions as the ensemble in memory."""
    import numpy as np

    from autodl.tabular.persist import SKOPS_OVER_PICKLE, MemberBlobs, load_model, save_model

    ens, X = _two_member_ensemble()
    blobs = MemberBlobs()
    assert blobs.seconds_for("forest", 1000, 0.5) == 0.5 * SKOPS_OVER_PICKLE  # not measured: the worst ratio
    blobs.dump(ens.members[1][1], "forest")
    assert 0 < blobs.seconds_for("forest", 1000, 0.5) < 0.5 * SKOPS_OVER_PICKLE
    for given in (None, blobs):
        loaded = load_model(save_model(ens, tmp_path / "model.skops", given))
        assert [w for w, _ in loaded.members] == [0.7, 0.3]
        np.testing.assert_array_equal(loaded.predict_proba(X), ens.predict_proba(X))


def test_an_ensemble_file_with_a_hostile_member_is_refused_before_it_runs(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    from autodl.tabular.persist import ENSEMBLE_FORMAT, load_model

    ens, _ = _two_member_ensemble()
    marker = tmp_path / "ran"
    hostile = sio.dumps(Pipeline([("step", Payload(marker))]))
    path = tmp_path / "model.skops"
    sio.dump({"autodl_format": ENSEMBLE_FORMAT, "task": "classification", "weights": [0.5, 0.5],
              "members": [sio.dumps(ens.members[0][1]), hostile]}, path)
    with pytest.raises(ValueError, match=r"member 1.*Payload.*not loading it"):
        load_model(path)
    assert not marker.exists()


# ---------------------------------------------------------------------- torch weights (model.pt)
def _pickled_payload(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A ``torch.save`` file holding a state dict with a pickled ``os.mkdir`` call in it."""
    torch = pytest.importorskip("torch")
    marker = tmp_path / f"ran-{name}"
    path = tmp_path / f"{name}.pt"
    torch.save({"weight": torch.zeros(2), "bias": PicklePayload(marker)}, path)
    return path, marker


def test_the_payload_of_a_pickled_weights_file_is_live(tmp_path):
    torch = pytest.importorskip("torch")
    path, marker = _pickled_payload(tmp_path, "control")
    torch.load(path, weights_only=False)  # an unguarded torch.load runs it
    assert marker.is_dir()


def test_load_weights_refuses_a_pickled_payload(tmp_path):
    pytest.importorskip("torch")
    from autodl.nn.checkpoint import load_weights

    path, marker = _pickled_payload(tmp_path, "model")
    with pytest.raises(pickle.UnpicklingError):
        load_weights(path)
    assert not marker.exists()


@pytest.mark.slow
def test_a_darts_run_folder_with_a_pickled_payload_in_model_pt_is_refused(tmp_path):
    pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    from autodl.nas.darts import load_model, run_darts

    X, y = load_digits(return_X_y=True)
    run = tmp_path / "run"
    run_darts(X / 16.0, y, C=2, layers=2, nodes=2, epochs=1, batch_size=64, train_epochs=1, max_rows=120,
              seed=0, run_dir=run)
    load_model(run)  # the folder as written loads
    path, marker = _pickled_payload(tmp_path, "model")
    os.replace(path, run / "model.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_model(run)
    assert not marker.exists()


# ---------------------------------------------------------------------- training checkpoints
def _checkpoint(tmp_path: Path, name: str, data: bytes) -> Path:
    from autodl.nn.checkpoint import STATE_FILE

    folder = tmp_path / name
    folder.mkdir()
    (folder / STATE_FILE).write_bytes(data)
    return folder


def _hostile_header(header: dict, body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + body


def _meta(skeleton) -> dict:
    from autodl.nn.checkpoint import FORMAT

    return {"format": FORMAT, "meta": json.dumps({"epoch": 1}), "skeleton": json.dumps(skeleton)}


def test_a_checkpoint_round_trips(tmp_path):
    torch = pytest.importorskip("torch")
    from autodl.nn.checkpoint import load_checkpoint, serialize

    folder = _checkpoint(tmp_path, "ok", serialize({"w": torch.arange(3.0), "epoch": 2}, {"epoch": 2}))
    state, meta = load_checkpoint(folder)
    assert state["w"].tolist() == [0.0, 1.0, 2.0] and state["epoch"] == 2 and meta == {"epoch": 2}


def test_a_pickled_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    pytest.importorskip("torch")
    from autodl.nn.checkpoint import CheckpointError, load_checkpoint, read_meta

    path, marker = _pickled_payload(tmp_path, "state")
    folder = _checkpoint(tmp_path, "pickled", path.read_bytes())
    with pytest.raises(CheckpointError):
        load_checkpoint(folder)
    assert read_meta(folder) is None  # a foreign file counts as no checkpoint
    assert not marker.exists()


HOSTILE = [
    # a length prefix claiming more bytes than the file has
    ("long", (2**62).to_bytes(8, "little") + b"{}", "header longer than the file"),
    # a tensor of 2**40 float32 values (4 TiB) backed by 8 bytes: refused before any allocation
    ("huge", _hostile_header({"__metadata__": _meta({"w": {"__tensor__": "0"}}),
                              "0": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}, b"\0" * 8),
     "does not fill the file"),
    # two tensors reading the same bytes
    ("overlap", _hostile_header({"__metadata__": _meta({}),
                                 "0": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "1": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
     "overlaps or leaves gaps"),
    # a state that refers to a tensor the file does not hold
    ("missing", _hostile_header({"__metadata__": _meta({"w": {"__tensor__": "7"}})}), "unreadable state layout"),
    # a skeleton nested deeper than any parser's stack
    ("deep", _hostile_header({"__metadata__": {**_meta({}), "skeleton": "[" * 100_000 + "]" * 100_000}}),
     "unreadable state layout"),
    # not an autodl checkpoint at all
    ("foreign", _hostile_header({"__metadata__": {"format": "pt"}}), "not an autodl checkpoint"),
]


@pytest.mark.parametrize("name, data, message", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_checkpoint_with_a_hostile_header_is_refused(tmp_path, name, data, message):
    pytest.importorskip("torch")
    from autodl.nn.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_checkpoint(tmp_path, name, data))


def test_a_checkpoint_state_naming_code_stays_plain_data(tmp_path):
    """The state layout only ever builds dicts, lists, tuples and tensors: names of callables in
    it are strings, never looked up or called."""
    pytest.importorskip("torch")
    from autodl.nn.checkpoint import load_checkpoint

    skeleton = {"__reduce__": ["os", "mkdir", str(tmp_path / "ran")], "__class__": "os.system"}
    state, _ = load_checkpoint(_checkpoint(tmp_path, "names", _hostile_header({"__metadata__": _meta(skeleton)})))
    assert state == skeleton
    assert not (tmp_path / "ran").exists()
