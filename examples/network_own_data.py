"""Search a CNN for your own images, from arrays in memory and from a folder of PNGs; export it
to ONNX with raw uint8 pixels in and your labels out; predict with onnxruntime alone.

    python examples/network_own_data.py            # 3,000 generated 32x32 RGB images, 60 s
    python examples/network_own_data.py --quick    # 400 images, a few trials (used by the tests)

The images are generated (four shapes on noisy backgrounds, see ``autodl.testing.images``);
replace ``X, y`` with your own: uint8 or float, N x H x W (grey), N x H x W x C or N x C x H x W.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import autodl
from autodl.testing.images import shapes, write_image_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="autodl-own-data-"))
    n = 400 if args.quick else 3000
    budget = {"n_trials": 3, "max_budget": 3, "searcher": "random"} if args.quick else {"time_budget": 60}

    # 1. arrays in memory: uint8, channel-last, string labels
    X, y = shapes(n, 32, channels=3, seed=0)
    res = autodl.search_network(X, y, model="cnn", out=out / "arrays", **budget)
    print(f"classes {res.classes}; validation accuracy {res.best_score:.3f}, held-out test {res.test_score:.3f}")
    X_new, y_new = shapes(200, 32, channels=3, seed=1)
    print(f"accuracy on 200 new images: {(res.predict(X_new) == y_new).mean():.3f}")

    # 2. the network as ONNX: raw uint8 pixels (N x C x H x W) in, labels and probabilities out
    import onnxruntime as ort

    path = res.export_onnx(out / "shapes.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    labels, probabilities = session.run(["label", "probabilities"], {name: X_new.transpose(0, 3, 1, 2)})[:2]
    print(f"ONNX input {session.get_inputs()[0].type}; ONNX labels equal Python's: "
          f"{list(labels) == list(res.predict(X_new))}")

    # 3. a folder of PNGs in class sub-folders, searched the same way (autodl search --data folder/)
    folder = write_image_folder(*shapes(n // 2, 24, channels=1, seed=2), out / "pngs")
    res = autodl.search_network(folder, model="cnn", out=out / "folder", **budget)
    print(f"folder {folder.name}/: {len(res.classes)} classes, held-out test accuracy {res.test_score:.3f}; "
          f"predictions for the first files: {list(res.predict(folder)[:3])}")
    print(f"run folders under {out} (autodl show / report / export / predict work on them)")


if __name__ == "__main__":
    main()
