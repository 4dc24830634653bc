"""The PyTorch trainer: models from configs, determinism, safe checkpoints, exact resumption."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nn import load_dataset, train_config  # noqa: E402
from autodl.nn import checkpoint as ckpt  # noqa: E402
from autodl.nn.trainer import (ACTIVATIONS, OPTIMIZERS, SCHEDULES, LRSchedule, Trainer,  # noqa: E402
                               build_model, conv_plan)
from autodl.space import Space  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits", seed=0)


class _Evil:
    """Stands for an arbitrary pickled object (unpickling it could run code)."""


MLP_CFG = {"n_layers": 2, "width": 64, "activation": "elu", "dropout": 0.2, "batch_norm": True, "init": "xavier",
           "optimizer": "sgd", "lr": 0.05, "sgd.momentum": 0.9, "sgd.nesterov": True, "schedule": "cosine",
           "warmup_epochs": 1, "batch_size": 64, "grad_clip": 1.0, "weight_decay": 1e-4}
CNN_CFG = {"n_conv": 2, "channels": 8, "kernel_size": 5, "stride": 2, "padding": "valid", "pooling": "avg",
           "n_layers": 1, "width": 32, "activation": "relu6", "dropout": 0.3, "batch_norm": True, "init": "he",
           "optimizer": "adamw", "lr": 3e-3, "schedule": "plateau", "plateau.patience": 1, "batch_size": 128}


@pytest.mark.parametrize("kind, config", [("mlp", MLP_CFG), ("cnn", CNN_CFG)])
def test_three_then_six_epochs_from_checkpoint_equals_nine_straight(digits, tmp_path, kind, config):
    first = train_config(config, digits, kind, 3, seed=1, max_epochs=9, checkpoint_root=tmp_path)
    assert (first.epochs_trained, first.epochs_resumed) == (3, 0)
    resumed = train_config(config, digits, kind, 9, seed=1, max_epochs=9, checkpoint_root=tmp_path)
    assert (resumed.epochs_trained, resumed.epochs_resumed, resumed.epochs) == (6, 3, 9)
    straight = train_config(config, digits, kind, 9, seed=1, max_epochs=9)
    assert resumed.val_loss == pytest.approx(straight.val_loss, rel=1e-6, abs=1e-7)
    assert resumed.val_accuracy == straight.val_accuracy
    a, b = resumed.trainer.model.state_dict(), straight.trainer.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-6, atol=1e-7), k
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in straight.history])


def test_same_seed_same_run_other_seed_differs(digits):
    a = train_config(MLP_CFG, digits, "mlp", 2, seed=3)
    b = train_config(MLP_CFG, digits, "mlp", 2, seed=3)
    c = train_config(MLP_CFG, digits, "mlp", 2, seed=4)
    assert a.val_loss == b.val_loss
    assert a.val_loss != c.val_loss


def test_global_rng_untouched(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_config(MLP_CFG, digits, "mlp", 1, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_checkpoint_is_safe_and_atomic(digits, tmp_path):
    train_config(MLP_CFG, digits, "mlp", 2, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    folders = list((tmp_path / "checkpoints").iterdir())
    assert len(folders) == 1
    assert [p.name for p in folders[0].iterdir()] == ["checkpoint.safetensors"]  # no temp files left
    path = folders[0] / "checkpoint.safetensors"
    ckpt.clear_cache()  # read the file, not this process's copy
    meta = ckpt.read_meta(folders[0])
    assert meta["epoch"] == 2 and meta["config"] == MLP_CFG
    state = ckpt.load_state(folders[0])
    assert set(state) >= {"model", "optimizer", "schedule", "rng", "epoch"}
    # a standard safetensors file: any safetensors reader gets the same tensors
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["format"] == ckpt.FORMAT
        raw = {k: f.get_tensor(k) for k in f.keys()}
    flat = [state["rng"], *state["model"].values()]
    assert all(any(t.dtype == r.dtype and t.shape == r.shape and torch.equal(t, r) for r in raw.values())
               for t in flat)
    # a pickle put in its place is never unpickled: it is no checkpoint, and training starts over
    torch.save({"model": {}, "evil": _Evil()}, path)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_state(folders[0])
    assert ckpt.read_meta(folders[0]) is None
    again = train_config(MLP_CFG, digits, "mlp", 3, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    assert (again.epochs_trained, again.epochs_resumed) == (3, 0)
    ckpt.clear_cache()
    assert ckpt.read_meta(folders[0])["epoch"] == 3


def test_damaged_checkpoint_files_are_refused(digits, tmp_path):
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": 1}
    good = ckpt.serialize(state, {"epoch": 1})
    assert torch.equal(ckpt.deserialize(good)["w"], state["w"])
    n = int.from_bytes(good[:8], "little")
    damaged = {
        "truncated data": good[:-4],
        "header longer than the file": (10**9).to_bytes(8, "little") + good[8:],
        "not json": good[:8] + b"{" * n + good[8 + n:],
        "wrong format tag": good.replace(ckpt.FORMAT.encode(), b"x" * len(ckpt.FORMAT)),
        "empty": b"",
    }
    for why, data in damaged.items():
        with pytest.raises(ckpt.CheckpointError):
            ckpt.deserialize(data)
        folder = tmp_path / why.replace(" ", "_")
        folder.mkdir()
        (folder / ckpt.STATE_FILE).write_bytes(data)
        assert ckpt.read_meta(folder) is None or why == "truncated data", why  # header alone intact there
        with pytest.raises(ckpt.CheckpointError):
            ckpt.load_state(folder)


def _crafted(tensors: dict, data: bytes, meta="{}", skeleton='{"w": {"__tensor__": "0"}}') -> bytes:
    header = dict(tensors, __metadata__={"format": ckpt.FORMAT, "meta": meta, "skeleton": skeleton})
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + data


@pytest.mark.parametrize("why, blob", [
    ("negative shape", _crafted({"0": {"dtype": "F32", "shape": [-1, -1], "data_offsets": [0, 4]}}, bytes(4))),
    ("float offsets", _crafted({"0": {"dtype": "F32", "shape": [1], "data_offsets": [0.5, 4.5]}}, bytes(5))),
    ("huge shape", _crafted({"0": {"dtype": "F32", "shape": [2**70], "data_offsets": [0, 4]}}, bytes(4))),
    ("wrapping shape", _crafted({"0": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 0]}}, b"")),
    ("shape as text", _crafted({"0": {"dtype": "F32", "shape": "12", "data_offsets": [0, 8]}}, bytes(8))),
    ("unknown dtype", _crafted({"0": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, bytes(4))),
    ("overlapping ranges", _crafted({str(i): {"dtype": "U8", "shape": [1024], "data_offsets": [0, 1024]}
                                     for i in range(200)}, bytes(1024))),
    ("gap in the data", _crafted({"0": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}, bytes(8))),
    ("deep nesting", _crafted({}, b"", skeleton="[" * 100000 + "]" * 100000)),
    ("meta not a dict", _crafted({}, b"", meta="[1, 2]", skeleton="{}")),
    ("bool bytes", _crafted({"0": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07")),
    ("unknown tensor", _crafted({}, b"", skeleton='{"w": {"__tensor__": "9"}}')),
])
def test_hostile_checkpoint_files_are_refused_cheaply(tmp_path, why, blob):
    """Each is a CheckpointError (no other exception, no memory blow-up), and to a trainer it is
    no checkpoint at all."""
    with pytest.raises(ckpt.CheckpointError):
        ckpt.decode(blob)
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / ckpt.STATE_FILE).write_bytes(blob)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_state(folder)


def test_a_checkpoint_that_does_not_fit_the_model_is_replaced(digits, tmp_path):
    """Same config and setup in the metadata, but the tensors of another model (e.g. a layout
    changed between versions): the trial trains from scratch, and exactly like a fresh run."""
    train_config(MLP_CFG, digits, "mlp", 2, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    folder = ckpt.checkpoint_dir(tmp_path, MLP_CFG)
    state, meta = ckpt.load_checkpoint(folder)
    state["model"] = {k: v[:1] if v.dim() else v for k, v in state["model"].items()}  # wrong shapes
    (folder / ckpt.STATE_FILE).write_bytes(ckpt.serialize(state, meta))
    ckpt.clear_cache()
    out = train_config(MLP_CFG, digits, "mlp", 3, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    assert (out.epochs_trained, out.epochs_resumed) == (3, 0)
    fresh = train_config(MLP_CFG, digits, "mlp", 3, seed=0, max_epochs=9)
    assert out.val_loss == fresh.val_loss
    ckpt.clear_cache()
    assert ckpt.read_meta(folder)["epoch"] == 3


def test_state_layout_survives_the_format():
    """Everything optimizers and schedules put in a state: int keys, tuples, inf, None, bf16."""
    state = {"opt": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 2)}},
                     "param_groups": [{"betas": (0.9, 0.999), "lr": 1e-3, "params": [0], "foreach": None}]},
             "best": float("inf"), "flag": True, "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
             "mask": torch.tensor([True, False]), "empty": torch.zeros(0, 3), "__odd": {"__tensor__": "x"}}
    data = ckpt.serialize(state, {})
    back = ckpt.deserialize(data)
    from safetensors.torch import load as safetensors_load
    assert sorted(t.shape for t in safetensors_load(data).values()) == sorted(
        [(), (2, 2), (2,), (2,), (0, 3)])
    assert back["opt"]["state"][0]["step"].item() == 3.0 and back["opt"]["state"][0]["step"].shape == ()
    assert list(back["opt"]["state"]) == [0]
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["opt"]["param_groups"][0]["foreach"] is None
    assert back["best"] == float("inf") and back["flag"] is True
    assert back["half"].dtype == torch.bfloat16 and torch.equal(back["half"], state["half"])
    assert torch.equal(back["mask"], state["mask"]) and back["empty"].shape == (0, 3)
    assert back["__odd"] == {"__tensor__": "x"}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_resumes_exactly_from_the_file(digits, tmp_path, name):
    cfg = dict(MLP_CFG, optimizer=name, lr=0.01 if name != "sgd" else 0.05, schedule="plateau")
    train_config(cfg, digits, "mlp", 2, seed=5, max_epochs=9, checkpoint_root=tmp_path)
    ckpt.clear_cache()
    resumed = train_config(cfg, digits, "mlp", 4, seed=5, max_epochs=9, checkpoint_root=tmp_path)
    assert (resumed.epochs_trained, resumed.epochs_resumed) == (2, 2)
    straight = train_config(cfg, digits, "mlp", 4, seed=5, max_epochs=9)
    a, b = resumed.trainer.model.state_dict(), straight.trainer.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_another_setup_is_ignored(digits, tmp_path):
    train_config(MLP_CFG, digits, "mlp", 3, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    other_seed = train_config(MLP_CFG, digits, "mlp", 4, seed=1, max_epochs=9, checkpoint_root=tmp_path)
    assert other_seed.epochs_resumed == 0 and other_seed.epochs_trained == 4
    # more epochs in the checkpoint than asked: trained from scratch, checkpoint kept
    fewer = train_config(MLP_CFG, digits, "mlp", 2, seed=1, max_epochs=9, checkpoint_root=tmp_path)
    assert fewer.epochs_trained == 2
    assert ckpt.read_meta(ckpt.checkpoint_dir(tmp_path, MLP_CFG))["epoch"] == 4


def test_early_stopping(digits):
    cfg = dict(MLP_CFG, lr=5.0, optimizer="sgd", schedule="constant", batch_norm=False, grad_clip=0)
    out = train_config(cfg, digits, "mlp", 27, seed=0, patience=2)
    assert out.stopped_early and out.epochs < 27


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains(digits, name):
    cfg = {"optimizer": name, "lr": 0.01 if name != "sgd" else 0.1, "n_layers": 1, "width": 32}
    out = train_config(cfg, digits, "mlp", 2, seed=0)
    assert out.val_accuracy > 0.5


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules(name):
    s = LRSchedule({"schedule": name, "warmup_epochs": 2, "step.step_size": 2}, max_epochs=10)
    factors = [s.factor(e) for e in range(10)]
    assert factors[0] == pytest.approx(1 / 3) and factors[1] == pytest.approx(2 / 3 * factors[1] / (2 / 3))
    if name == "cosine":
        assert factors[5] == pytest.approx(0.5) and factors[-1] < 0.05
    if name == "plateau":
        for _ in range(5):
            s.step(1.0)
        assert s.factor(5) < 1.0


def test_cnn_configs_never_shrink_below_one_pixel():
    space = Space.load("cnn")
    rng = np.random.default_rng(0)
    for _ in range(300):
        c = space.sample(rng)
        for layer in conv_plan(c, (1, 8, 8)):
            assert layer["h"] >= 1 and layer["w"] >= 1
    worst = {"n_conv": 3, "kernel_size": 5, "stride": 2, "padding": "valid", "pooling": "max", "channels": 8}
    model = build_model(worst, "cnn", 64, 10, (1, 8, 8))
    assert model(torch.zeros(2, 64)).shape == (2, 10)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_every_activation_builds(act):
    model = build_model({"activation": act, "init": "he", "n_layers": 1}, "mlp", 64, 10)
    assert model(torch.zeros(3, 64)).shape == (3, 10)


def test_spaces_sample_configs_the_trainer_accepts(digits):
    rng = np.random.default_rng(1)
    for kind in ("mlp", "cnn"):
        space = Space.load(kind)
        for _ in range(3):
            config = space.sample(rng)
            t = Trainer(config, digits, kind, seed=0, max_epochs=3)
            assert t.train_epochs(1) == 1


def test_cpu_default_without_gpu(digits):
    t = Trainer(MLP_CFG, digits, "mlp")
    assert t.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("source", ["memory", "disk"])
def test_resume_from_the_in_memory_copy_or_from_disk_is_the_same(digits, tmp_path, monkeypatch, source):
    """A promoted trial in the same process resumes from the copy kept in memory (no file is
    read); after clear_cache (or in another process) from the files; both equal straight runs."""
    first = train_config(MLP_CFG, digits, "mlp", 2, seed=2, max_epochs=9, checkpoint_root=tmp_path,
                         background_save=True)
    assert first.epochs_trained == 2
    if source == "disk":
        ckpt.clear_cache()
    else:
        def no_file_reads(*args, **kwargs):
            raise AssertionError("the checkpoint file was read although this process holds it")
        monkeypatch.setattr(ckpt, "_read_file", no_file_reads)
    resumed = train_config(MLP_CFG, digits, "mlp", 5, seed=2, max_epochs=9, checkpoint_root=tmp_path,
                           background_save=True)
    monkeypatch.undo()
    ckpt.flush()
    assert (resumed.epochs_trained, resumed.epochs_resumed) == (3, 2)
    straight = train_config(MLP_CFG, digits, "mlp", 5, seed=2, max_epochs=9)
    a, b = resumed.trainer.model.state_dict(), straight.trainer.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the in-memory copy is a copy: training on did not change what is kept for this folder
    folder = ckpt.checkpoint_dir(tmp_path, MLP_CFG)
    again = ckpt.load_state(folder)
    assert again["epoch"] == 5 and all(torch.equal(again["model"][k], a[k]) for k in a)


def test_a_checkpoint_replaced_by_another_process_is_read_from_disk(digits, tmp_path):
    train_config(MLP_CFG, digits, "mlp", 2, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    folder = ckpt.checkpoint_dir(tmp_path, MLP_CFG)
    state, meta = ckpt.load_checkpoint(folder)
    state["epoch"] = 3  # another writer's newer checkpoint of the same config, written in place
    (folder / ckpt.STATE_FILE).write_bytes(ckpt.serialize(state, dict(meta, epoch=3)))
    assert ckpt.read_meta(folder)["epoch"] == 3
    assert ckpt.load_state(folder)["epoch"] == 3


def test_the_in_memory_copies_stay_within_their_limit(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "CACHE_BYTES", 1)  # nothing fits: every read goes to the files
    ckpt.clear_cache()
    train_config(MLP_CFG, digits, "mlp", 1, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    assert ckpt._RECENT_BYTES == 0 and not ckpt._RECENT
    resumed = train_config(MLP_CFG, digits, "mlp", 2, seed=0, max_epochs=9, checkpoint_root=tmp_path)
    assert resumed.epochs_resumed == 1


def test_cnn_adapts_to_larger_and_non_square_images_and_exports():
    """Any config of cnn.yaml builds for images up to 64x64 of any aspect, stays small (pooled
    while the map is wide, average-pooled to at most 4x4 before the head) and exports to ONNX
    (adaptive pooling to a size that does not divide the map does not)."""
    pytest.importorskip("onnxruntime")
    import autodl

    space = Space.load("cnn")
    rng = np.random.default_rng(1)
    exported = 0
    for shape in [(3, 32, 32), (1, 13, 40), (3, 64, 64), (1, 28, 28)]:
        n = int(np.prod(shape))
        for i in range(25):
            c = space.sample(rng)
            model = build_model(c, "cnn", n, 4, shape)
            assert model(torch.zeros(2, n)).shape == (2, 4)
            assert sum(p.numel() for p in model.parameters()) < 2_000_000, (shape, c)
            if i == 0:
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    autodl.export_onnx(model.eval(), f"{tmp}/m.onnx", sample=np.random.rand(8, n).astype(np.float32),
                                       class_labels=["a", "b", "c", "d"])
                exported += 1
    assert exported == 4
