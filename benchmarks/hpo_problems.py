"""Problems of the HPO suite (``benchmarks/hpo_suite.py``): each maps a configuration to a loss.

Four families:

* ``continuous``: sphere, ellipsoid, rastrigin, rosenbrock and different-powers on
  ``[-5, 5]^d`` (d = 2, 5, 10), each with a seeded shift and rotation per (function, d); the
  minimum is 0 at the shifted optimum.
* ``mixed``: the same functions in d = 5 and 10 with some coordinates integer (16 evenly spaced
  levels, declared as ``Int(0, 15)``) and some categorical (5 levels whose values are shuffled,
  so the choice order says nothing); the shift puts the optimum on a level, so the minimum is
  still 0.
* ``cash``: a conditional choice among five scikit-learn models and their hyperparameters on a
  bundled data set (3-fold CV error), and ``nn``: an MLP on digits. Each hyperparameter has a
  small grid of levels; every grid point is evaluated once by ``--tabulate`` and stored. A
  proposed value is snapped to the nearest level (in log scale for log parameters; categories
  exactly) and its loss looked up, so runs never train.

A problem gives its autodl :class:`~autodl.space.Space`, its Optuna define-by-run suggestions
(conditional parameters suggested only when active), and ``loss(config)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

TABLES_DIR = Path(__file__).resolve().parent / "results" / "hpo_tables"
#: bump when a synthetic problem's definition changes (it is part of the cache key)
SYNTHETIC_VERSION = "1"
BOUND = 5.0

# ---------------------------------------------------------------------------- test functions


def _sphere(z: np.ndarray) -> float:
    return float(np.sum(z ** 2))


def _ellipsoid(z: np.ndarray) -> float:
    d = len(z)
    w = 10.0 ** (6.0 * np.arange(d) / max(d - 1, 1))
    return float(np.sum(w * z ** 2))


def _rastrigin(z: np.ndarray) -> float:
    return float(10.0 * (len(z) - np.sum(np.cos(2 * np.pi * z))) + np.sum(z ** 2))


def _rosenbrock(z: np.ndarray) -> float:
    z = z + 1.0  # the minimum of the classic form is at 1
    return float(np.sum(100.0 * (z[:-1] ** 2 - z[1:]) ** 2 + (z[:-1] - 1.0) ** 2))


def _different_powers(z: np.ndarray) -> float:
    d = len(z)
    p = 2.0 + 4.0 * np.arange(d) / max(d - 1, 1)
    return float(np.sqrt(np.sum(np.abs(z) ** p)))


FUNCTIONS: dict[str, tuple[int, Callable[[np.ndarray], float]]] = {
    "sphere": (1, _sphere), "ellipsoid": (2, _ellipsoid), "rastrigin": (3, _rastrigin),
    "rosenbrock": (4, _rosenbrock), "different_powers": (5, _different_powers),
}
CONT_DIMS = (2, 5, 10)
MIXED_DIMS = (5, 10)
INT_LEVELS = 16
CAT_LEVELS = np.linspace(-4.0, 4.0, 5)
CAT_CHOICES = ("a", "b", "c", "d", "e")


def _kinds(dim: int, mixed: bool) -> list[str]:
    """Coordinate kinds: ``float``, ``int`` or ``cat`` (d=5: 2/2/1; d=10: 4/3/3)."""
    if not mixed:
        return ["float"] * dim
    n_int = {5: 2, 10: 3}.get(dim, max(1, dim // 3))
    n_cat = {5: 1, 10: 3}.get(dim, max(1, dim // 4))
    return ["float"] * (dim - n_int - n_cat) + ["int"] * n_int + ["cat"] * n_cat


@dataclass
class Problem:
    """A problem of the suite. ``loss(config)`` is deterministic; ``f_opt`` is its minimum."""

    name: str
    family: str
    params: dict[str, dict]  # name -> {"kind", "low", "high", "log", "levels", "condition"}
    loss: Callable[[dict], float]
    f_opt: float
    fingerprint: str
    info: dict = field(default_factory=dict)

    @property
    def has_categorical(self) -> bool:
        return any(p["kind"] == "cat" for p in self.params.values())

    @property
    def has_condition(self) -> bool:
        return any(p.get("condition") for p in self.params.values())

    def autodl_space(self):
        from autodl.space import Categorical, Float, Int, Space

        out = {}
        for name, p in self.params.items():
            cond = p.get("condition") or None
            if p["kind"] == "cat":
                out[name] = Categorical(list(p["levels"]), condition=cond)
            elif p["kind"] == "int":
                out[name] = Int(int(p["low"]), int(p["high"]), log=p.get("log", False), condition=cond)
            else:
                out[name] = Float(float(p["low"]), float(p["high"]), log=p.get("log", False), condition=cond)
        return Space(out)

    def suggest_optuna(self, trial) -> dict:
        """Define-by-run: parameters in declaration order, conditional ones only when active."""
        config: dict[str, Any] = {}
        for name, p in self.params.items():
            cond = p.get("condition") or {}
            if any(config.get(parent, _MISSING) not in allowed for parent, allowed in cond.items()):
                continue
            if p["kind"] == "cat":
                config[name] = trial.suggest_categorical(name, list(p["levels"]))
            elif p["kind"] == "int":
                config[name] = trial.suggest_int(name, int(p["low"]), int(p["high"]), log=p.get("log", False))
            else:
                config[name] = trial.suggest_float(name, float(p["low"]), float(p["high"]),
                                                   log=p.get("log", False))
        return config


_MISSING = object()

# ---------------------------------------------------------------------------- synthetic problems


def _instance(func: str, dim: int, mixed: bool) -> dict:
    """Seeded shift and rotation of one (function, dimension); the optimum of a discrete
    coordinate lies on one of its levels."""
    index, _ = FUNCTIONS[func]
    rng = np.random.default_rng([index, dim, int(mixed), 17])
    kinds = _kinds(dim, mixed)
    x_opt = rng.uniform(-4.0, 4.0, size=dim)
    int_values = -BOUND + 2 * BOUND * np.arange(INT_LEVELS) / (INT_LEVELS - 1)
    perms = {}
    for j, kind in enumerate(kinds):
        if kind == "int":
            x_opt[j] = int_values[rng.integers(1, INT_LEVELS - 1)]
        elif kind == "cat":
            perms[j] = rng.permutation(len(CAT_LEVELS))
            x_opt[j] = CAT_LEVELS[rng.integers(len(CAT_LEVELS))]
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    rot = q * np.sign(np.diag(r))
    if func == "sphere":
        rot = np.eye(dim)
    scale = max(1.0, math.sqrt(dim) / 8.0) if func == "rosenbrock" else 1.0
    return {"kinds": kinds, "x_opt": x_opt, "rot": rot, "scale": scale, "perms": perms,
            "int_values": int_values}


def synthetic(func: str, dim: int, mixed: bool) -> Problem:
    """``func`` in ``dim`` dimensions, all continuous or ``mixed`` (see :func:`_kinds`)."""
    inst = _instance(func, dim, mixed)
    kinds, x_opt, rot, scale = inst["kinds"], inst["x_opt"], inst["rot"], inst["scale"]
    f = FUNCTIONS[func][1]
    params: dict[str, dict] = {}
    for j, kind in enumerate(kinds):
        if kind == "float":
            params[f"x{j}"] = {"kind": "float", "low": -BOUND, "high": BOUND}
        elif kind == "int":
            params[f"x{j}"] = {"kind": "int", "low": 0, "high": INT_LEVELS - 1}
        else:
            params[f"x{j}"] = {"kind": "cat", "levels": list(CAT_CHOICES)}
    # choice i of a categorical coordinate j means the value CAT_LEVELS[perm_j[i]]
    cat_value = {j: {c: float(CAT_LEVELS[p]) for c, p in zip(CAT_CHOICES, perm)}
                 for j, perm in inst["perms"].items()}
    int_values = inst["int_values"]

    def to_x(config: dict) -> np.ndarray:
        x = np.empty(dim)
        for j, kind in enumerate(kinds):
            v = config[f"x{j}"]
            x[j] = float(v) if kind == "float" else int_values[int(v)] if kind == "int" else cat_value[j][v]
        return x

    def loss(config: dict) -> float:
        return f(scale * (rot @ (to_x(config) - x_opt)))

    family = "mixed" if mixed else "continuous"
    name = f"{'mix' if mixed else 'cont'}-{func}-d{dim}"
    opt_config = {}
    for j, kind in enumerate(kinds):
        if kind == "float":
            opt_config[f"x{j}"] = float(x_opt[j])
        elif kind == "int":
            opt_config[f"x{j}"] = int(np.argmin(np.abs(int_values - x_opt[j])))
        else:
            opt_config[f"x{j}"] = next(c for c, v in cat_value[j].items() if v == x_opt[j])
    return Problem(name, family, params, loss, f_opt=0.0, fingerprint=f"syn{SYNTHETIC_VERSION}",
                   info={"function": func, "dim": dim, "kinds": kinds, "optimum": opt_config,
                         "to_x": to_x})


# ---------------------------------------------------------------------------- tabulated problems


def _levels(values, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") for v in values]


def cash_params(tiny: bool = False) -> dict[str, dict]:
    """The conditional CASH space: ``model`` and each model's grid (``tiny``: two models, 9 points)."""
    models = ["linear", "knn"] if tiny else ["linear", "knn", "svm", "rf", "hgb"]
    p: dict[str, dict] = {"model": {"kind": "cat", "levels": models}}

    def add(name, kind, levels, log=False):
        model = name.split(".")[0]
        if model in models:
            p[name] = {"kind": kind, "low": min(levels), "high": max(levels), "log": log,
                       "levels": levels, "condition": {"model": [model]}}

    add("linear.C", "float", _levels(np.logspace(-3, 3, 3 if tiny else 10)), log=True)
    add("knn.k", "int", [1, 5, 21] if tiny else [1, 2, 3, 5, 8, 13, 21, 34], log=True)
    if not tiny:
        p["knn.weights"] = {"kind": "cat", "levels": ["uniform", "distance"], "condition": {"model": ["knn"]}}
    add("svm.C", "float", _levels(np.logspace(-2, 4, 7)), log=True)
    add("svm.gamma", "float", _levels(np.logspace(-5, 1, 7)), log=True)
    add("rf.n_estimators", "int", [8, 16, 32, 64], log=True)
    add("rf.max_depth", "int", [2, 4, 8, 16], log=True)
    add("rf.max_features", "float", [0.1, 0.4, 0.7, 1.0])
    add("hgb.learning_rate", "float", _levels(np.logspace(-2, 0, 4)), log=True)
    add("hgb.max_leaf_nodes", "int", [4, 8, 16], log=True)
    add("hgb.max_iter", "int", [10, 30, 100], log=True)
    return p


def nn_params() -> dict[str, dict]:
    """The MLP space on digits: 4 x 3 x 2 x 2 x 3 x 2 = 288 grid points."""
    def num(kind, levels, log):
        return {"kind": kind, "low": min(levels), "high": max(levels), "log": log, "levels": levels}

    return {
        "learning_rate": num("float", [1e-4, 1e-3, 1e-2, 1e-1], True),
        "width": num("int", [16, 48, 128], True),
        "depth": num("int", [1, 2], False),
        "batch_size": num("int", [32, 256], True),
        "weight_decay": num("float", [1e-5, 1e-3, 1e-1], True),
        "activation": {"kind": "cat", "levels": ["relu", "tanh"]},
    }


NN_EPOCHS = 10
CASH_DATASETS = ("breast_cancer", "wine", "digits", "diabetes")


def _active(params: dict[str, dict], config: dict) -> list[str]:
    out = []
    for name, p in params.items():
        cond = p.get("condition") or {}
        if all(config.get(parent, _MISSING) in allowed for parent, allowed in cond.items()):
            out.append(name)
    return out


def snap(params: dict[str, dict], config: dict) -> dict:
    """``config`` with each active value on its nearest grid level (log scale for log params)."""
    out = {}
    for name in _active(params, config):
        p, v = params[name], config[name]
        if p["kind"] == "cat":
            out[name] = v
            continue
        levels = np.asarray(p["levels"], dtype=float)
        if p.get("log"):
            i = int(np.argmin(np.abs(np.log(levels) - math.log(float(v)))))
        else:
            i = int(np.argmin(np.abs(levels - float(v))))
        out[name] = p["levels"][i]
    return out


def key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def grid_points(params: dict[str, dict]) -> list[dict]:
    """Every configuration of the grid (inactive parameters absent), in a fixed order."""
    points: list[dict] = [{}]
    for name, p in params.items():
        nxt = []
        for c in points:
            cond = p.get("condition") or {}
            if all(c.get(parent, _MISSING) in allowed for parent, allowed in cond.items()):
                nxt.extend({**c, name: v} for v in p["levels"])
            else:
                nxt.append(c)
        points = nxt
    return points


def _load_data(dataset: str, max_rows: int | None = None):
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    if max_rows is not None and len(y) > max_rows:
        idx = np.random.default_rng(0).permutation(len(y))[:max_rows]
        x, y = x[idx], y[idx]
    return x.astype(float), y, dataset == "diabetes"


def _cash_estimator(config: dict, regression: bool):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import (
        HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    m = config["model"]
    if m == "linear":
        est = Ridge(alpha=1.0 / config["linear.C"]) if regression else LogisticRegression(
            C=config["linear.C"], max_iter=500)
    elif m == "knn":
        cls = KNeighborsRegressor if regression else KNeighborsClassifier
        est = cls(n_neighbors=int(config["knn.k"]), weights=config.get("knn.weights", "uniform"))
    elif m == "svm":
        est = (SVR if regression else SVC)(C=config["svm.C"], gamma=config["svm.gamma"])
    elif m == "rf":
        cls = RandomForestRegressor if regression else RandomForestClassifier
        est = cls(n_estimators=int(config["rf.n_estimators"]), max_depth=int(config["rf.max_depth"]),
                  max_features=config["rf.max_features"], random_state=0, n_jobs=1)
    else:
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        est = cls(learning_rate=config["hgb.learning_rate"], max_leaf_nodes=int(config["hgb.max_leaf_nodes"]),
                  max_iter=int(config["hgb.max_iter"]), early_stopping=False, random_state=0)
    if m in ("linear", "knn", "svm"):
        est = make_pipeline(StandardScaler(), est)
    if regression:
        est = TransformedTargetRegressor(regressor=est, transformer=StandardScaler())
    return est


def _cv_loss(make_est: Callable[[], Any], x, y, regression: bool) -> float:
    """Mean 3-fold CV error: 1 - accuracy, or 1 - R^2 for regression (fixed folds)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = (KFold if regression else StratifiedKFold)(3, shuffle=True, random_state=0)
    errs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tr, te in folds.split(x, y):
            est = make_est().fit(x[tr], y[tr])
            errs.append(1.0 - est.score(x[te], y[te]))
    return float(np.mean(errs))


def evaluate_cash(dataset: str, config: dict, max_rows: int | None = None) -> float:
    """Train and score one CASH configuration (what the table stores)."""
    x, y, regression = _load_data(dataset, max_rows)
    return _cv_loss(lambda: _cash_estimator(config, regression), x, y, regression)


def evaluate_nn(config: dict, max_rows: int | None = None, epochs: int = NN_EPOCHS) -> float:
    """Train and score one MLP configuration on digits (sklearn MLPClassifier, Adam)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, _ = _load_data("digits", max_rows)

    def make():
        return make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(int(config["width"]),) * int(config["depth"]),
            activation=config["activation"], alpha=config["weight_decay"],
            batch_size=int(config["batch_size"]), learning_rate_init=config["learning_rate"],
            max_iter=epochs, shuffle=True, random_state=0, n_iter_no_change=epochs + 1))

    return _cv_loss(make, x, y, False)


def _evaluate_row(task: tuple) -> dict:
    kind, dataset, config, max_rows = task
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(1)
    except ImportError:  # pragma: no cover
        limiter = None
    t0 = time.perf_counter()
    loss = evaluate_nn(config, max_rows) if kind == "nn" else evaluate_cash(dataset, config, max_rows)
    if limiter is not None:
        limiter.unregister()
    return {"config": config, "loss": loss, "seconds": time.perf_counter() - t0}


def tabulate(kind: str, dataset: str, tiny: bool = False, workers: int = 1,
             max_rows: int | None = None) -> dict:
    """Evaluate every grid point of a CASH (``kind="cash"``) or NN space; returns the table."""
    from importlib import metadata

    params = nn_params() if kind == "nn" else cash_params(tiny)
    tasks = [(kind, dataset, c, max_rows) for c in grid_points(params)]
    t0 = time.perf_counter()
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_evaluate_row, tasks, chunksize=1))
    else:
        rows = [_evaluate_row(t) for t in tasks]
    return {
        "kind": kind, "dataset": dataset, "params": params, "rows": rows,
        "settings": {"cv": "3-fold (stratified for classification), shuffle, random_state=0",
                     "loss": "1 - R^2" if dataset == "diabetes" else "1 - accuracy",
                     "epochs": NN_EPOCHS if kind == "nn" else None, "max_rows": max_rows,
                     "tiny": tiny, "threads": 1, "workers": workers},
        "versions": {d: metadata.version(d) for d in ("scikit-learn", "numpy", "scipy")},
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": float(sum(r["seconds"] for r in rows)),
    }


def table_problem(table: dict, name: str | None = None) -> Problem:
    """A problem that looks losses up in ``table`` (values snapped to the grid first)."""
    params = table["params"]
    lookup = {key(r["config"]): float(r["loss"]) for r in table["rows"]}
    fingerprint = hashlib.sha1(json.dumps([params, sorted(lookup.items())]).encode()).hexdigest()[:10]

    def loss(config: dict) -> float:
        return lookup[key(snap(params, config))]

    family = "nn" if table["kind"] == "nn" else "cash"
    name = name or (f"nn-{table['dataset']}" if family == "nn" else f"cash-{table['dataset']}")
    return Problem(name, family, params, loss, f_opt=min(lookup.values()), fingerprint=fingerprint,
                   info={"n_grid": len(lookup), "dataset": table["dataset"]})


def table_path(kind: str, dataset: str, tables_dir: Path = TABLES_DIR) -> Path:
    return Path(tables_dir) / f"{kind}-{dataset}.json"


def load_table(kind: str, dataset: str, tables_dir: Path = TABLES_DIR) -> dict:
    return json.loads(table_path(kind, dataset, tables_dir).read_text())


# ---------------------------------------------------------------------------- the suite


def suite_names(families: tuple[str, ...] = ("continuous", "mixed", "cash", "nn")) -> list[str]:
    names = []
    if "continuous" in families:
        names += [f"cont-{f}-d{d}" for d in CONT_DIMS for f in FUNCTIONS]
    if "mixed" in families:
        names += [f"mix-{f}-d{d}" for d in MIXED_DIMS for f in FUNCTIONS]
    if "cash" in families:
        names += [f"cash-{ds}" for ds in CASH_DATASETS]
    if "nn" in families:
        names += ["nn-digits"]
    return names


def make_problem(name: str, tables_dir: Path = TABLES_DIR) -> Problem:
    """The problem called ``name`` (``cont-sphere-d5``, ``mix-rastrigin-d10``, ``cash-wine``,
    ``nn-digits``); tabulated ones read their table from ``tables_dir``."""
    kind, rest = name.split("-", 1)
    if kind in ("cont", "mix"):
        func, d = rest.rsplit("-d", 1)
        return synthetic(func, int(d), kind == "mix")
    return table_problem(load_table(kind, rest, tables_dir), name)


def reference_loss(problem: Problem, n: int = 1000, seed: int = 12345) -> float:
    """Median loss of ``n`` configurations drawn from the autodl space (the scale of the
    normalized regret ``(best - f_opt) / (reference - f_opt)``)."""
    space = problem.autodl_space()
    rng = np.random.default_rng(seed)
    return float(np.median([problem.loss(space.sample(rng)) for _ in range(n)]))
