"""The user's own data for network search: formats read, checks, and the run folder's copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from autodl.errors import DataError, StorageError
from autodl.nn.userdata import MAX_SIDE, load_net_data, read_inputs, read_net_data, save_net_data


def roundtrip(nd, tmp_path):
    """Save and reload ``nd``; the copy must equal it."""
    save_net_data(nd, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(
        ["table.parquet" if nd.kind == "table" else "X.npy", "y.npy", "data.json"])  # no temporary files left
    back = load_net_data(tmp_path / "data")
    if nd.kind == "table":
        pd.testing.assert_frame_equal(back.X, nd.X)
    else:
        assert back.X.dtype == nd.X.dtype and np.array_equal(back.X, nd.X)
    assert back.y.dtype == np.int64 and np.array_equal(back.y, nd.y)
    assert back.classes == nd.classes and [type(c) for c in back.classes] == [type(c) for c in nd.classes]
    for field in ("kind", "source", "notes", "feature_names", "target", "files", "load_seconds"):
        assert getattr(back, field) == getattr(nd, field), field
    return back


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.int16), d.target  # pixels 0..16


# ------------------------------------------------------------------------------ the formats
def test_digits_npz_grey_images_roundtrip(tmp_path, digits):
    images, target = digits
    np.savez(tmp_path / "digits8x8.npz", X=images, y=target)
    nd = read_net_data(tmp_path / "digits8x8.npz")
    assert (nd.kind, nd.image_shape, nd.n_classes, nd.source) == ("image", (1, 8, 8), 10, "digits8x8.npz")
    assert nd.X.dtype == np.int64 and np.array_equal(nd.X[:, 0], images)  # other ints -> int64
    assert nd.classes == list(range(10)) and np.array_equal(nd.y, target)
    assert any("grey images" in n and "kind='sequence'" in n for n in nd.notes)
    assert nd.load_seconds > 0
    roundtrip(nd, tmp_path)


def test_channel_last_uint8_transposed(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, (12, 16, 10, 3), dtype=np.uint8)
    labels = np.array(["cat", "dog", "emu"] * 4)
    nd = read_net_data(raw, labels)
    assert nd.X.dtype == np.uint8 and nd.X.shape == (12, 3, 16, 10)
    assert nd.X[5, 2, 7, 3] == raw[5, 7, 3, 2]
    assert np.array_equal(nd.X, np.moveaxis(raw, 3, 1))
    assert nd.classes == ["cat", "dog", "emu"] and all(type(c) is str for c in nd.classes)
    assert list(np.array(nd.classes)[nd.y]) == list(labels)
    roundtrip(nd, tmp_path)


def test_channel_first_floats_become_float32(tmp_path):
    raw = np.random.default_rng(1).random((6, 3, 9, 11))
    nd = read_net_data(raw, [0.5, 1.5] * 3)
    assert nd.X.dtype == np.float32 and np.array_equal(nd.X, raw.astype(np.float32))
    assert nd.classes == [0.5, 1.5] and type(nd.classes[0]) is float
    roundtrip(nd, tmp_path)


def test_large_array_images_downscaled_with_box(tmp_path):
    raw = np.random.default_rng(2).integers(0, 256, (3, 1, 96, 128), dtype=np.uint8)
    nd = read_net_data(raw, [0, 1, 1])
    expect = np.asarray(Image.fromarray(raw[1, 0]).resize((MAX_SIDE, 48), Image.BOX))
    assert nd.image_shape == (1, 48, 64) and np.array_equal(nd.X[1, 0], expect)
    assert nd.notes == ["images downscaled from 96x128 to 48x64 (longer side 64)"]


def test_sequences_by_shape_or_kind(tmp_path):
    seq = np.random.default_rng(3).normal(size=(10, 20, 5))
    nd = read_net_data(seq, [0, 1] * 5)
    assert nd.kind == "sequence" and nd.image_shape is None
    assert nd.X.dtype == np.float32 and np.array_equal(nd.X, seq.astype(np.float32))
    roundtrip(nd, tmp_path)
    square = np.random.default_rng(4).normal(size=(4, 12, 12))
    assert read_net_data(square, [0, 1, 0, 1]).kind == "image"
    assert read_net_data(square, [0, 1, 0, 1], kind="sequence").X.shape == (4, 12, 12)
    assert read_net_data(square[:, :, 0], [0, 1, 0, 1], kind="sequence").X.shape == (4, 12, 1)


def test_folder_grey_and_rgb_become_rgb(tmp_path):
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    write_png(tmp_path / "pets" / "cat" / "a.png", grey)
    write_png(tmp_path / "pets" / "cat" / "b.PNG", rgb)
    write_png(tmp_path / "pets" / "dog" / "c.png", rgba)
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("not an image")
    nd = read_net_data(tmp_path / "pets")
    assert nd.source == "folder pets/ (2 classes)" and nd.classes == ["cat", "dog"]
    assert nd.files == ["cat/a.png", "cat/b.PNG", "dog/c.png"] and list(nd.y) == [0, 0, 1]
    assert nd.X.dtype == np.uint8 and nd.X.shape == (3, 3, 12, 10)
    assert np.array_equal(nd.X[0], np.stack([grey] * 3))  # grey repeated into R, G, B
    assert np.array_equal(nd.X[1], rgb.transpose(2, 0, 1))
    assert np.array_equal(nd.X[2], rgba[:, :, :3].transpose(2, 0, 1))  # alpha dropped
    roundtrip(nd, tmp_path)


def test_folder_large_and_ragged_images_resized(tmp_path):
    rng = np.random.default_rng(6)
    big = [rng.integers(0, 256, (96, 128), dtype=np.uint8) for _ in range(4)]
    for i, img in enumerate(big):
        write_png(tmp_path / "big" / "ab"[i % 2] / f"{i}.png", img)
    nd = read_net_data(tmp_path / "big")
    assert nd.image_shape == (1, 48, 64) and nd.X.dtype == np.uint8
    assert np.array_equal(nd.X[0, 0], np.asarray(Image.fromarray(big[0]).resize((64, 48), Image.BOX)))
    assert nd.notes == ["images downscaled from 96x128 to 48x64 (longer side 64)"]

    sizes = [(16, 16), (16, 16), (20, 24)]  # median 16x16
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in sizes]
    for i, img in enumerate(imgs):
        write_png(tmp_path / "ragged" / "ab"[i % 2] / f"{i}.png", img)
    nd = read_net_data(tmp_path / "ragged")
    assert nd.files == ["a/0.png", "a/2.png", "b/1.png"] and list(nd.y) == [0, 0, 1]
    assert nd.image_shape == (1, 16, 16) and np.array_equal(nd.X[2, 0], imgs[1])
    assert np.array_equal(nd.X[1, 0], np.asarray(Image.fromarray(imgs[2]).resize((16, 16), Image.BOX)))
    assert len(nd.notes) == 1 and "different sizes" in nd.notes[0] and "16x16" in nd.notes[0]


def test_torch_tensor_dataset(tmp_path):
    torch = pytest.importorskip("torch")
    x = torch.rand(8, 1, 10, 10)
    labels = torch.tensor([3, 1, 3, 1, 3, 1, 3, 7])
    nd = read_net_data(torch.utils.data.TensorDataset(x, labels))
    assert nd.source == "TensorDataset" and nd.image_shape == (1, 10, 10)
    assert np.array_equal(nd.X, x.numpy()) and nd.classes == [1, 3, 7] and type(nd.classes[0]) is int
    assert list(np.array(nd.classes)[nd.y]) == labels.tolist()
    roundtrip(nd, tmp_path)


    class Pictures(torch.utils.data.Dataset):  # items (PIL image H×W×3, text label)
        def __init__(self):
            self.pixels = np.random.default_rng(10).integers(0, 256, (4, 9, 12, 3), dtype=np.uint8)

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return Image.fromarray(self.pixels[i]), "ab"[i % 2]

    ds = Pictures()
    nd = read_net_data(ds)
    assert nd.X.dtype == np.uint8 and np.array_equal(nd.X, ds.pixels.transpose(0, 3, 1, 2)) and nd.classes == ["a", "b"]


def test_tables_csv_dataframe_and_missing_target(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": list("xyzxyz"),
                       "label": ["no", "yes", None, "no", None, "yes"]})
    df.to_csv(tmp_path / "t.csv", index=False)
    nd = read_net_data(tmp_path / "t.csv", target="label")
    assert (nd.kind, nd.target, nd.feature_names, nd.source) == ("table", "label", ["a", "b"], "t.csv")
    assert nd.notes == ["2 rows without a value in 'label' were dropped"]
    assert list(nd.X["a"]) == [1.0, 2.0, 4.0, 6.0] and nd.classes == ["no", "yes"] and list(nd.y) == [0, 1, 0, 1]
    roundtrip(nd, tmp_path)
    framed = read_net_data(df.dropna(), target="label")
    assert framed.source == "DataFrame" and list(framed.X.columns) == ["a", "b"] and framed.notes == []
    rows = read_net_data(np.arange(12.0).reshape(6, 2), [True, False] * 3)
    assert rows.kind == "table" and rows.feature_names == ["x0", "x1"] and rows.classes == [False, True]


def test_mmap_above_threshold(tmp_path):
    raw = np.random.default_rng(7).integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    save_net_data(read_net_data(raw, [0, 1] * 10), tmp_path / "d")
    mapped = load_net_data(tmp_path / "d", mmap_bytes=0)
    assert isinstance(mapped.X, np.memmap) and np.array_equal(mapped.X, raw)
    assert not isinstance(load_net_data(tmp_path / "d").X, np.memmap)  # 4 kB: read whole


# --------------------------------------------------------------------------- bad inputs
def _bad_folder(tmp_path, case):
    root = tmp_path / "f"
    img = np.zeros((10, 10), np.uint8)
    if case == "one class":
        write_png(root / "only" / "a.png", img)
    elif case == "no images":
        (root / "a").mkdir(parents=True)
        (root / "b").mkdir()
        (root / "a" / "x.txt").write_text("hi")
    elif case == "broken":
        write_png(root / "a" / "ok.png", img)
        (root / "b").mkdir()
        (root / "b" / "bad.png").write_bytes(b"not a png at all")
    elif case == "tiny":
        write_png(root / "a" / "ok.png", img)
        write_png(root / "b" / "tiny.png", np.zeros((5, 9), np.uint8))
    return root


BAD = {  # name: (data, y, target, words the message must hold)
    "small images": (lambda t: np.zeros((4, 6, 6, 1), np.uint8), [0, 1] * 2, None, ["6x6", "at least 8x8"]),
    "nan pixels": (lambda t: np.where(np.arange(4)[:, None, None, None] == 2, np.nan, np.ones((4, 1, 8, 8))),
                   [0, 1] * 2, None, ["NaN", "row 2", "fix or drop"]),
    "one class": (lambda t: np.zeros((4, 1, 8, 8)), [5] * 4, None, ["at least two classes"]),
    "count mismatch": (lambda t: np.zeros((10, 1, 8, 8)), [0, 1] * 4 + [0], None, ["10 rows", "9 labels",
                                                                                    "one label per row"]),
    "nan labels": (lambda t: np.zeros((4, 1, 8, 8)), [0.0, np.nan, 1.0, 1.0], None, ["missing", "drop those rows"]),
    "text array": (lambda t: np.array([["a"] * 8] * 8), [0, 1] * 4, None, ["not numbers", "numeric array"]),
    "no channel axis": (lambda t: np.zeros((4, 5, 9, 9)), [0, 1] * 2, None, ["no channel axis", "NxCxHxW"]),
    "ragged npz": (lambda t: _savez(t, X=np.array([np.zeros((8, 8)), np.zeros((9, 9))], dtype=object), y=[0, 1]),
                   None, None, ["Python objects", "np.savez"]),
    "npz without y": (lambda t: _savez(t, X=np.zeros((4, 8, 8))), None, None, ["no array named y", "np.savez"]),
    "folder one class": (lambda t: _bad_folder(t, "one class"), None, None, ["only one class", "sub-folder"]),
    "folder no images": (lambda t: _bad_folder(t, "no images"), None, None, ["no image files", "sub-folder"]),
    "broken image": (lambda t: _bad_folder(t, "broken"), None, None, ["b/bad.png", "fix or remove"]),
    "tiny image file": (lambda t: _bad_folder(t, "tiny"), None, None, ["b/tiny.png", "5x9", "at least 8x8"]),
    "missing target": (lambda t: pd.DataFrame({"a": [1, 2], "b": [0, 1]}), None, "c", ["'c'", "columns are: a, b"]),
    "no target": (lambda t: pd.DataFrame({"a": [1, 2], "b": [0, 1]}), None, None, ["target=COLUMN"]),
    "infinite target": (lambda t: pd.DataFrame({"a": range(50), "p": np.r_[np.linspace(0, 1, 49) + 0.001, np.inf]}),
                        None, "p", ["infinite", "drop those rows"]),
    "unsupported file": (lambda t: (t / "x.json").write_text("{}") and t / "x.json", [0, 1], None,
                         ["unsupported format", ".npz"]),
}


def _savez(tmp_path, **arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_one_line_with_fix(tmp_path, case):
    make, y, target, words = BAD[case]
    with pytest.raises(DataError) as info:
        read_net_data(make(tmp_path), y, target=target)
    msg = str(info.value)
    assert "\n" not in msg and "; " in msg, msg  # one line: the problem; the fix
    for word in words:
        assert word in msg, (word, msg)


def test_a_numeric_target_of_many_values_is_a_regression_table(tmp_path):
    frame = pd.DataFrame({"a": range(50), "c": ["x", "y"] * 25, "p": np.linspace(0, 1, 50) + 0.001})
    nd = read_net_data(frame, target="p")
    assert nd.task == "regression" and nd.classes == [] and nd.kind == "table"
    np.testing.assert_array_equal(nd.y, frame["p"].to_numpy())  # the values themselves, float64
    assert list(nd.X.columns) == ["a", "c"]
    save_net_data(nd, tmp_path / "d")
    back = load_net_data(tmp_path / "d")
    assert back.task == "regression" and back.y.dtype == np.float64
    np.testing.assert_array_equal(back.y, nd.y)
    # integer targets, and floats that are whole numbers, stay classes
    assert read_net_data(frame.assign(p=np.arange(50) % 3), target="p").task == "classification"


def test_damaged_run_copy(tmp_path):
    save_net_data(read_net_data(np.zeros((4, 1, 8, 8), np.uint8), [0, 1] * 2), tmp_path / "d")
    np.save(tmp_path / "d" / "X.npy", np.zeros((3, 1, 8, 8), np.uint8))
    with pytest.raises(StorageError, match="do not match data.json"):
        load_net_data(tmp_path / "d")
    (tmp_path / "d" / "data.json").unlink()
    with pytest.raises(StorageError, match="no data.json"):
        load_net_data(tmp_path / "d")


# ----------------------------------------------------------------------------- prediction
def test_read_inputs_folder_converted_to_model_shape(tmp_path):
    rng = np.random.default_rng(8)
    grey = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    write_png(tmp_path / "new" / "z.png", grey)
    write_png(tmp_path / "new" / "sub" / "a.jpg", rgb)  # lossy; compare with PIL decoding the same file
    X, ids = read_inputs(tmp_path / "new", kind="image", image_shape=(3, 20, 20))
    assert ids == ["sub/a.jpg", "z.png"] and X.shape == (2, 3, 20, 20) and X.dtype == np.uint8
    jpg = Image.open(tmp_path / "new" / "sub" / "a.jpg").convert("RGB").resize((20, 20), Image.BOX)
    assert np.array_equal(X[0], np.asarray(jpg).transpose(2, 0, 1))
    small = np.asarray(Image.fromarray(grey).resize((20, 20), Image.BOX))
    assert np.array_equal(X[1], np.stack([small] * 3))  # grey repeated for a 3-channel model
    X1, _ = read_inputs(tmp_path / "new", kind="image", image_shape=(1, 40, 40))
    assert np.array_equal(X1[1, 0], grey) and np.array_equal(X1[0, 0], np.asarray(Image.open(
        tmp_path / "new" / "sub" / "a.jpg").convert("L")))


def test_read_inputs_npz_and_table(tmp_path):
    rgba = np.random.default_rng(9).integers(0, 256, (3, 16, 16, 4), dtype=np.uint8)
    np.savez(tmp_path / "new.npz", X=rgba, y=[0, 1, 2])
    X, ids = read_inputs(tmp_path / "new.npz", kind="image", image_shape=(3, 16, 16))
    assert ids is None and np.array_equal(X, rgba[..., :3].transpose(0, 3, 1, 2))
    with pytest.raises(DataError, match="takes 32x32; give images of 32x32"):
        read_inputs(tmp_path / "new.npz", kind="image", image_shape=(3, 32, 32))
    X, _ = read_inputs(tmp_path / "new.npz", kind="image", image_shape=(1, 16, 16))  # RGB -> luma as PIL's "L"
    luma = np.stack([np.asarray(Image.fromarray(im[..., :3]).convert("L")) for im in rgba])
    assert X.shape == (3, 1, 16, 16) and np.abs(X[:, 0].astype(int) - luma).max() <= 1
    np.savez(tmp_path / "grey.npz", X=rgba[..., 0])
    X, _ = read_inputs(tmp_path / "grey.npz", kind="image", image_shape=(3, 16, 16))
    assert np.array_equal(X, np.stack([rgba[..., 0]] * 3, axis=1))  # grey repeated for a 3-channel model
    pd.DataFrame({"b": [1, 2], "label": ["x", "y"], "a": [3.0, 4.0]}).to_csv(tmp_path / "new.csv", index=False)
    frame, ids = read_inputs(tmp_path / "new.csv", kind="table", feature_names=["a", "b"])
    assert ids is None and list(frame.columns) == ["a", "b"] and list(frame["a"]) == [3.0, 4.0]
    with pytest.raises(DataError, match="lacks the model's columns c"):
        read_inputs(tmp_path / "new.csv", kind="table", feature_names=["a", "c"])
