"""Stored models load without running pickled code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import autodl


class Untrusted:
    """A type outside scikit-learn/NumPy/SciPy: a model file naming it must be refused."""

    def __init__(self):
        self.payload = [1, 2, 3]


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


def test_no_pickle_loading_of_stored_files_and_torch_loads_weights_only():
    """Source check over the whole package: ``torch.load`` only with ``weights_only=True``
    (covers ``autodl.nn`` once it exists), and no ``pickle.load`` of files."""
    root = Path(autodl.__file__).parent
    torch_calls = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start(): text.find(")", m.start()) + 200]
            torch_calls.append(path.name)
            assert "weights_only=True" in call, f"{path}: torch.load without weights_only=True"
        assert not re.search(r"\bpickle\.load\(", text), f"{path} unpickles a file"
    print(f"\ntorch.load calls checked: {len(torch_calls)}")
