"""Part (c) of ``benchmarks/multiobjective.py``: multi-objective pruning on digits CNNs.

**The problem.** A small discretized space of digits CNNs (:data:`GRID`; :data:`QUICK_GRID` for
``--quick``), every other setting at autodl's defaults (Adam, lr from the grid, batch 64). Each
config is trained **once** for ``E`` epochs (27; 3 quick) with :func:`autodl.nn.trainer.train_config`
and its validation accuracy recorded after every epoch: a trial with budget ``b`` in autodl gets
exactly the accuracy after epoch ``b`` of that run (the training horizon is ``E`` either way,
and a promoted trial resumes from its checkpoint). Its latency (median of single-row
onnxruntime calls, one thread), ONNX size and parameters are measured once on the untrained
network (:class:`autodl.nn.objectives.NetObjectives`), as a search does. The table is cached in
``benchmarks/results/multiobjective_cnn_table[_quick].json`` (configs already there are not
trained again), so seeds and methods cost lookups.

**Objectives** (both minimized): validation error ``1 - accuracy`` and latency in ms. Each is
normalized by fixed bounds (:data:`ERROR_BOUNDS`, 0 to 10% error; latency from 0 to twice the
table's median latency, rounded up: the front lies among the fast networks) and the
hypervolume's reference point is 1.1 in each normalized objective; both are written to the JSON.

**Methods** (autodl's searchers driven by ask/tell over the table; epochs counted as trained,
i.e. a promoted trial costs only its extra epochs, as with checkpoints):

* ``random-full``: random search, every trial trained ``E`` epochs (no pruning), ``N`` trials;
* ``moasha-hv``, ``moasha-crowding``, ``moasha-random``: :class:`autodl.searchers.MOASHA`
  (``min_budget=1``, ``max_budget=E``, ``eta=3``, promote mode, random new configs) with each
  tie-break;
* ``moasha-prune``: the same in define-by-run mode: every trial reports ``(error, latency)``
  after each epoch and stops when ``should_prune()`` says so.

The hypervolume counts configs trained to ``E`` epochs only (their final accuracy; a pruned
config's is unknown to the search), against the epochs trained so far. A run that spends the
table's space (3 jobs per config) ends early; its hypervolume stays where it was. Goal: MO-ASHA reaches
``random-full``'s final hypervolume with at most half its epochs (per seed; the median ratio is
reported, "not reached" counting as infinite).

**Tie-breaks on a synthetic problem** (``synthetic_table``): 192 configs whose latency is fixed
and whose error follows a learning curve with config-dependent speed and noise around a ZDT1-like
final front; many seeds are cheap, so the tie-break comparison uses both problems.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: the discretized CNN space of the full run (3 * 4 * 2 * 2 * 2 * 2 = 192 configs)
GRID = {"n_conv": [1, 2, 3], "channels": [8, 16, 32, 64], "kernel_size": [3, 5], "pooling": ["max", "none"],
        "n_layers": [0, 1], "lr": [0.001, 0.01]}
#: the quick run's space (8 configs)
QUICK_GRID = {"n_conv": [1, 2], "channels": [8, 16], "kernel_size": [3], "pooling": ["max"], "n_layers": [0],
              "lr": [0.001, 0.01]}
#: settings every config shares
FIXED = {"width": 64, "batch_size": 64, "optimizer": "adam", "activation": "relu"}
#: bounds of the validation error, for normalization: the region of useful digits classifiers
#: (a network more than 10% wrong adds no hypervolume)
ERROR_BOUNDS = (0.0, 0.1)
#: the latency bound is this multiple of the table's median latency (rounded up to two
#: significant digits): the few very large networks would otherwise squeeze the fast ones, where
#: the front is, into a sliver of the normalized range
LATENCY_BOUND_MEDIANS = 2.0
REFERENCE = 1.1
METHODS = ["random-full", "moasha-hv", "moasha-crowding", "moasha-random", "moasha-prune"]
#: the goal is judged on what a search gets by default (``searcher="auto"`` with budgets, and
#: ``--model`` with several objectives): MO-ASHA, promote mode, hypervolume tie-break
GOAL_METHOD = "moasha-hv"
ETA = 3


# ---------------------------------------------------------------------- the table
def grid_configs(grid: dict[str, list]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def tabulate(grid: dict[str, list], epochs: int, path: Path, seed: int = 0, log=print,
             meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every config of ``grid`` once for ``epochs`` epochs and measure it; rows already in
    ``path`` (same epochs and seed) are kept, new ones are written after each config. Each run
    that adds rows appends ``{"meta": <the run's record, see _meta>, "configs_added": n}`` to the
    table's ``measurements`` (the rows are pooled over those runs)."""
    import torch

    import _meta

    from autodl.nn.data import load_dataset
    from autodl.nn.objectives import NetObjectives
    from autodl.nn.trainer import build_model, train_config

    torch.set_num_threads(1)
    table = {"grid": grid, "fixed": FIXED, "epochs": epochs, "seed": seed, "dataset": "digits", "rows": {}}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("epochs") == epochs and old.get("seed") == seed and old.get("fixed") == FIXED:
            table["rows"] = old.get("rows", {})
            table["measurements"] = old.get("measurements", [])
    data = load_dataset("digits")
    targets = NetObjectives(["accuracy", "latency", "size", "params"], rows=data.X_val)
    todo = [c for c in grid_configs(grid) if _key(c) not in table["rows"]]
    for n, config in enumerate(todo, 1):
        full = {**FIXED, **config}
        net = build_model(full, "cnn", data.n_features, data.n_classes, data.image_shape, seed=seed)
        m = targets.measure(net, full)
        accs: list[float] = []
        start = time.perf_counter()
        train_config(full, data, "cnn", epochs, seed=seed, max_epochs=epochs,
                     on_epoch=lambda e, metrics: accs.append(float(metrics["val_accuracy"])))
        seconds = time.perf_counter() - start
        table["rows"][_key(config)] = {"accuracy": accs, "latency_ms": m["latency_ms"],
                                       "batch64_ms": m["batch64_ms"], "size_bytes": m["size_bytes"],
                                       "params": m["params"], "load": m["latency_load"],
                                       "train_seconds": round(seconds, 3)}
        record = {"meta": _meta.finish(meta) if meta else None, "configs_added": n}
        _meta.write_json(path, {**table, "measurements": [*table.get("measurements", []), record]})
        log(f"  table {len(table['rows'])}/{len(grid_configs(grid))}: {config} acc@{epochs} {accs[-1]:.3f}, "
            f"{m['latency_ms']:.4f} ms, {seconds / epochs:.2f} s/epoch", flush=True)
    if todo:
        table["measurements"] = [*table.get("measurements", []), record]
    return table


def synthetic_table(n: int = 200, epochs: int = 27, seed: int = 0) -> dict[str, Any]:
    """A table of the same shape from formulas: latency ``0.05 + x0`` ms; the error after ``b``
    epochs ``f(x) + c(x) / sqrt(b) + noise`` with ``f`` the ZDT1 front form in ``x0`` and a
    distance variable (so slow, accurate networks and fast, less accurate ones trade off), a
    config-dependent learning speed ``c`` and noise that fades with epochs: low-budget ranks are
    informative but not exact."""
    rng = np.random.default_rng([seed, 7])
    x = rng.random((n, 3))
    rows = {}
    for i in range(n):
        g = 1.0 + 4.0 * x[i, 1]
        final = 0.04 + 0.3 * g * (1.0 - math.sqrt(x[i, 0] / g)) / 5.0
        speed = 0.05 + 0.4 * x[i, 2]
        accs = []
        for b in range(1, epochs + 1):
            err = final + speed / math.sqrt(b) + rng.normal(0.0, 0.03 / math.sqrt(b))
            accs.append(float(1.0 - min(max(err, 0.0), 1.0)))
        rows[json.dumps({"i": i})] = {"accuracy": accs, "latency_ms": 0.05 + float(x[i, 0]), "size_bytes": 0,
                                      "params": 0}
    return {"grid": {"i": list(range(n))}, "fixed": {}, "epochs": epochs, "seed": seed, "dataset": "synthetic",
            "rows": rows, "bounds": [(0.0, 0.5), (0.0, 1.1)]}


# ---------------------------------------------------------------------- simulation
def bounds_of(table: dict[str, Any]) -> list[tuple[float, float]]:
    """Fixed normalization bounds: :data:`ERROR_BOUNDS`, and latency from 0 to
    :data:`LATENCY_BOUND_MEDIANS` times the table's median latency, rounded up to 2 significant
    digits (a synthetic table states its own)."""
    if "bounds" in table:
        return [tuple(b) for b in table["bounds"]]
    top = LATENCY_BOUND_MEDIANS * statistics.median(r["latency_ms"] for r in table["rows"].values())
    digits = -int(math.floor(math.log10(top))) + 1
    return [ERROR_BOUNDS, (0.0, math.ceil(top * 10 ** digits) / 10 ** digits)]


def hypervolume_of(points: list[tuple[float, float]], bounds: list[tuple[float, float]]) -> float:
    from autodl.searchers.pareto import hypervolume

    if not points:
        return 0.0
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    y = (np.asarray(points, dtype=float) - lo) / (hi - lo)
    return hypervolume(y, np.full(len(bounds), REFERENCE))


def make_searcher(method: str, space, epochs: int, seed: int):
    from autodl.searchers import MOASHA, RandomSearch

    if method == "random-full":
        return RandomSearch(space, seed=seed)
    if method == "moasha-prune":
        return MOASHA(space, min_budget=1, max_budget=epochs, eta=ETA, mode="prune", seed=seed)
    tie = method.removeprefix("moasha-")
    return MOASHA(space, min_budget=1, max_budget=epochs, eta=ETA, tie_break=tie, seed=seed)


def simulate(table: dict[str, Any], method: str, seed: int, budget: int) -> dict[str, Any]:
    """Run ``method`` over ``table`` until it has trained ``budget`` epochs; the hypervolume of
    the configs trained to the full epochs, after each job, against the epochs trained."""
    from autodl.searchers.brackets import same_budget
    from autodl.space import Categorical, Space

    epochs = int(table["epochs"])
    grid = table["grid"]
    space = Space({k: Categorical(list(v)) for k, v in grid.items()})
    rows = table["rows"]
    bounds = bounds_of(table)
    s = make_searcher(method, space, epochs, seed)
    trained: dict[str, int] = {}  # config -> epochs its checkpoint holds
    full: dict[str, tuple[float, float]] = {}
    used, jobs, pruned, idle = 0, 0, 0, 0
    curve = [(0, 0.0)]

    def charge(key: str, b: int) -> int:
        """Epochs trained for ``b`` epochs of a config: the checkpoint is continued when it
        holds fewer, the model trained from scratch when it holds more (as autodl.nn does)."""
        have = trained.get(key, 0)
        if have > b:
            return b
        trained[key] = b
        return b - have

    # a spent space ends a run early: 200 jobs in a row that trained nothing, or 3 jobs per
    # config of the table (define-by-run pruning then only re-runs configs it pruned)
    while used < budget and idle < 200 and jobs < 3 * len(rows):
        t = s.ask()
        key = _key(dict(t.config))
        row = rows[key]
        err = [1.0 - a for a in row["accuracy"]]
        lat = row["latency_ms"]
        jobs += 1
        if method == "moasha-prune":
            done = 0
            for e in range(1, epochs + 1):
                done = e
                s.report(t, (err[e - 1], lat), e)
                if e < epochs and s.should_prune(t):
                    break
            cost = charge(key, done)
            s.tell(t, [err[done - 1], lat])
            reached = done == epochs
            pruned += not reached
        else:
            b = epochs if t.budget is None else int(round(t.budget))
            cost = charge(key, b)
            s.tell(t, [err[b - 1], lat])
            reached = same_budget(float(b), float(epochs))
        used += cost
        idle = idle + 1 if cost == 0 else 0
        if reached and key not in full:
            full[key] = (err[-1], lat)
            curve.append((used, hypervolume_of(list(full.values()), bounds)))
    return {"method": method, "seed": seed, "epochs_used": used, "jobs": jobs, "pruned": pruned,
            "n_full": len(full), "full": list(full), "curve": curve, "final_hypervolume": curve[-1][1]}


def hv_at(curve: list, epochs: float) -> float:
    """The hypervolume after ``epochs`` epochs trained (the last point at or before them)."""
    best = 0.0
    for e, hv in curve:
        if e <= epochs:
            best = hv
    return best


def epochs_to_reach(curve: list, target: float) -> float:
    for e, hv in curve:
        if hv >= target - 1e-12:
            return float(e)
    return math.inf


def run_part_c(table: "dict[str, Any] | Callable[[int], dict[str, Any]]", methods: list[str], seeds: list[int],
               n_full: int) -> dict[str, Any]:
    """Every method on every seed with the epochs of ``n_full`` unpruned trials; the summary.
    ``table``: one table, or a function of the seed giving each seed its own (synthetic)."""
    table_of = table if callable(table) else (lambda seed: table)
    epochs = int(table_of(seeds[0])["epochs"])
    budget = n_full * epochs
    runs = []
    for s in seeds:
        tab = table_of(s)
        runs += [simulate(tab, m, s, budget) for m in methods]
    target = {r["seed"]: r["final_hypervolume"] for r in runs if r["method"] == "random-full"}
    for r in runs:
        if r["seed"] in target:
            need = epochs_to_reach(r["curve"], target[r["seed"]])
            r["epochs_to_random_final"] = need
            base = next(x["epochs_used"] for x in runs if x["method"] == "random-full" and x["seed"] == r["seed"])
            r["ratio_to_random_epochs"] = need / base if math.isfinite(need) else math.inf
    summary: dict[str, Any] = {}
    for m in methods:
        mine = [r for r in runs if r["method"] == m]
        ratios = [r.get("ratio_to_random_epochs", math.inf) for r in mine]
        summary[m] = {
            "final_hypervolume": {"mean": float(np.mean([r["final_hypervolume"] for r in mine])),
                                  "std": float(np.std([r["final_hypervolume"] for r in mine]))},
            "hypervolume_at_half_budget": float(np.mean([hv_at(r["curve"], budget / 2) for r in mine])),
            "hypervolume_at_quarter_budget": float(np.mean([hv_at(r["curve"], budget / 4) for r in mine])),
            "median_ratio_to_random_epochs": float(statistics.median(ratios)) if ratios else None,
            "reached_within_half": sum(1 for x in ratios if x <= 0.5),
            "n_seeds": len(mine),
            "mean_full_trainings": float(np.mean([r["n_full"] for r in mine])),
            "mean_jobs": float(np.mean([r["jobs"] for r in mine])),
        }
    goal = None
    if GOAL_METHOD in methods and "random-full" in methods:
        ratio = summary[GOAL_METHOD]["median_ratio_to_random_epochs"]
        goal = {"method": GOAL_METHOD, "median_ratio": ratio, "met": ratio <= 0.5,
                "others": {m: summary[m]["median_ratio_to_random_epochs"] for m in methods
                           if m.startswith("moasha") and m != GOAL_METHOD}}
    return {"budget_epochs": budget, "n_full_trials": n_full, "summary": summary, "goal": goal, "runs": runs}


def print_part_c(name: str, res: dict[str, Any]) -> None:
    print(f"\n{name}: hypervolume (normalized, ref {REFERENCE}) vs epochs trained; budget "
          f"{res['budget_epochs']} epochs = {res['n_full_trials']} unpruned trials")
    print(f"{'method':<17}{'HV final':>18}{'HV @1/2':>10}{'HV @1/4':>10}{'epochs ratio':>14}{'<=1/2':>7}"
          f"{'full':>7}{'jobs':>7}")
    for m, s in res["summary"].items():
        ratio = s["median_ratio_to_random_epochs"]
        shown = "-" if ratio is None else ("not reached" if math.isinf(ratio) else f"{ratio:.2f}")
        print(f"{m:<17}{s['final_hypervolume']['mean']:>10.4f} ± {s['final_hypervolume']['std']:.4f}"
              f"{s['hypervolume_at_half_budget']:>10.4f}{s['hypervolume_at_quarter_budget']:>10.4f}{shown:>14}"
              f"{s['reached_within_half']:>4}/{s['n_seeds']:<2}{s['mean_full_trainings']:>7.1f}{s['mean_jobs']:>7.1f}")
    g = res.get("goal")
    if g:
        others = ", ".join(f"{m} {r:.2f}" for m, r in g["others"].items())
        print(f"goal (median epochs to random-full's final HV <= 1/2 of its epochs): "
              f"{'met' if g['met'] else 'missed'} by {g['method']} ({g['median_ratio']:.2f}; {others})")
