"""Multi-fidelity search on digits: epochs needed to match random search, checkpoint savings,
and the trainer's overhead over a bare PyTorch loop.

For each space (``mlp``, ``cnn``) and seed:

1. **random**: ``N`` configs trained for the full budget (27 epochs). Its best validation
   accuracy is the *target*; its epochs (``N * 27``) the reference.
2. **hyperband**, **bohb**, **asha** (autodl, ask/tell, training resumed from checkpoints) and
   **optuna** (``TPESampler`` + ``HyperbandPruner``, same space, epoch-by-epoch reports) run
   until one finished job (a trial's final value at its budget) reaches the target, or until
   they have trained as many epochs as random search. Reported: epochs needed (trained, i.e.
   after checkpoint savings), ratio to random's epochs (median over seeds; "not reached" counts
   as infinite), and for autodl's multi-fidelity runs the epochs checkpoints saved (trained vs
   restart-from-scratch).
3. **overhead**: time per epoch of a Hyperband study run through autodl (``Study`` with SQLite,
   ``NNObjective``, checkpoint writes in the background as by default, and synchronous) vs a
   bare PyTorch loop training the same
   configs for the same number of epochs on the same data, paired trial by trial in the same
   process (median over repeats; see :func:`measure_overhead`; ``--overhead-only`` runs just this).

    python benchmarks/multifidelity.py                 # 5 seeds, both spaces (~30-60 min, 1 core)
    python benchmarks/multifidelity.py --spaces cnn --seeds 1 --first-seed 3 --overhead-repeats 0 --out s3.json
    python benchmarks/multifidelity.py --merge s0.json s1.json ... --out all.json
    python benchmarks/multifidelity.py --quick         # seconds; run by the tests

Uses one torch thread. Writes ``benchmarks/results/multifidelity.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from autodl.nn import checkpoint as ckpt
from autodl.nn.data import load_dataset
from autodl.nn.search import NNObjective
from autodl.nn.trainer import budget_to_epochs, build_model, build_optimizer, train_config
from autodl.searchers import make_searcher
from autodl.space import Categorical, Float, Int, Space
from autodl.study import Study

RESULTS_DIR = Path(__file__).resolve().parent / "results"
METHODS = ("hyperband", "bohb", "asha", "optuna")


# ---------------------------------------------------------------------- one method, one seed
def run_random(space: Space, data, kind: str, seed: int, n: int, max_budget: int) -> dict:
    searcher = make_searcher("random", space, seed=seed)
    best, epochs, curve = -math.inf, 0, []
    for _ in range(n):
        t = searcher.ask()
        out = train_config(t.config, data, kind, max_budget, seed=seed, max_epochs=max_budget)
        searcher.tell(t, -out.val_accuracy)
        epochs += out.epochs_trained
        best = max(best, out.val_accuracy)
        curve.append((epochs, best))
    return {"target": best, "epochs": epochs, "curve": curve}


def run_autodl(name: str, space: Space, data, kind: str, seed: int, target: float, cap: int,
               min_budget: int, max_budget: int, eta: int) -> dict:
    searcher = make_searcher(name, space, seed=seed, min_budget=min_budget, max_budget=max_budget, eta=eta)
    trained = resumed = 0
    best = -math.inf
    reached = None
    with tempfile.TemporaryDirectory() as root:
        while trained < cap:
            t = searcher.ask()
            epochs = budget_to_epochs(t.budget, max_budget)
            out = train_config(t.config, data, kind, epochs, seed=seed, max_epochs=max_budget,
                               checkpoint_root=root, background_save=True)
            searcher.tell(t, -out.val_accuracy)
            trained += out.epochs_trained
            resumed += out.epochs_resumed
            best = max(best, out.val_accuracy)
            if out.val_accuracy >= target - 1e-9:
                reached = trained
                break
        ckpt.flush()
    return {"epochs": reached, "trained": trained, "resumed": resumed, "best": best}


def _suggest(trial, space: Space) -> dict:
    """An autodl config drawn through Optuna's define-by-run API (conditions respected)."""
    config: dict = {}
    for name in space.order:
        if not space.is_active(name, config):
            continue
        p = space[name]
        if isinstance(p, Categorical):
            config[name] = trial.suggest_categorical(name, list(p.choices))
        elif isinstance(p, Int):
            config[name] = trial.suggest_int(name, int(p.low), int(p.high), log=bool(p.log),
                                             **({"step": int(p.step)} if p.step and not p.log else {}))
        elif isinstance(p, Float):
            config[name] = trial.suggest_float(name, p.low, p.high, log=bool(p.log),
                                               **({"step": p.step} if p.step and not p.log else {}))
    return {n: config[n] for n in space.names if n in config}


def run_optuna(space: Space, data, kind: str, seed: int, target: float, cap: int, min_budget: int,
               max_budget: int, eta: int) -> dict:
    import optuna

    from autodl.nn.trainer import Trainer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=min_budget, max_resource=max_budget,
                                                                      reduction_factor=eta))
    state = {"trained": 0, "best": -math.inf, "reached": None}

    def objective(trial):
        config = _suggest(trial, space)
        trainer = Trainer(config, data, kind, seed=seed, max_epochs=max_budget)
        acc = float("nan")
        try:
            for epoch in range(1, max_budget + 1):
                trainer.train_epochs(1)
                state["trained"] += 1
                acc = trainer.history[-1]["val_accuracy"]
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        finally:  # a pruned trial's last value is its job's final value
            state["best"] = max(state["best"], acc) if acc == acc else state["best"]
            if state["reached"] is None and acc >= target - 1e-9:
                state["reached"] = state["trained"]
        return acc

    def stop(study, _trial):
        if state["reached"] is not None or state["trained"] >= cap:
            study.stop()

    study.optimize(objective, callbacks=[stop], catch=(RuntimeError, ValueError))
    return {"epochs": state["reached"], "trained": state["trained"], "resumed": 0, "best": state["best"]}


# ---------------------------------------------------------------------- overhead
def _bare_train(config: dict, data, kind: str, epochs: int, seed: int) -> None:
    """A plain PyTorch loop doing the work the trainer must do per epoch: the same model,
    optimizer, batch size, shuffled batches (one gather per epoch, then slices, as the trainer
    does), gradient clipping and a validation pass (loss and accuracy) after every epoch.
    Left out: learning-rate schedules, dropout reseeding, train-loss tracking, history."""
    model = build_model(config, kind, data.n_features, data.n_classes, data.image_shape, seed)
    opt = build_optimizer(config, model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.as_tensor(data.X_train), torch.as_tensor(data.y_train)
    Xv, yv = torch.as_tensor(data.X_val), torch.as_tensor(data.y_val)
    bs = int(config.get("batch_size", 64))
    g = torch.Generator().manual_seed(seed)
    clip = float(config.get("grad_clip", 0) or 0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        Xp, yp = X[perm], y[perm]
        for start in range(0, len(y), bs):
            xb, yb = Xp[start:start + bs], yp[start:start + bs]
            if len(yb) < 2:
                continue
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(Xv)
            float(loss_fn(logits, yv)), float((logits.argmax(1) == yv).float().mean())


def measure_overhead(space: Space, data, kind: str, seed: int, n_trials: int, max_budget: int,
                     repeats: int, background: bool = True, first_repeat: int = 0) -> dict:
    """Time per epoch of a Hyperband study through autodl against the bare loop, paired trial
    by trial so that other processes' load hits both alike.

    After each trial, a study callback trains the same config for the same number of epochs
    with :func:`_bare_train`. autodl's time is the study's time (SQLite storage, searcher,
    ``NNObjective``, trainer, checkpoint reads and writes) minus the bare runs.

    ``background=True`` is autodl's default: the trial serializes its checkpoint and a writer
    thread writes the file while training goes on, here while the bare run that follows trains
    (as in a search, where the next trial trains meanwhile); pending writes are waited for at
    the end and counted. The CPU-time figure counts the writer thread's CPU to autodl (the bare
    runs' CPU is the main thread's only). ``background=False`` writes synchronously, so the
    whole write is on the trial's wall clock: the figure for a process with no spare core.
    """
    wall_ratio, cpu_ratio, autodl_ms, bare_ms = [], [], [], []
    epochs_total = 0
    for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):  # first use imports torch._dynamo
        build_optimizer({"optimizer": name}, torch.nn.Linear(2, 2).parameters())
    for r in range(first_repeat, first_repeat + repeats):
        bare = {"wall": 0.0, "cpu": 0.0, "epochs": 0}

        def pair(_study, trial):
            epochs = int(trial.user_attrs.get("epochs_trained", 0))
            w, c = time.perf_counter(), time.thread_time()
            _bare_train(trial.config, data, kind, epochs, seed)
            bare["wall"] += time.perf_counter() - w
            bare["cpu"] += time.thread_time() - c
            bare["epochs"] += epochs

        with tempfile.TemporaryDirectory() as root:
            w, c = time.perf_counter(), time.process_time()
            study = Study(space, searcher="hyperband", direction="maximize", storage=Path(root) / "study.db",
                          seed=seed + r, searcher_params={"min_budget": 1, "max_budget": max_budget, "eta": 3})
            objective = NNObjective(data, kind, seed=seed, max_epochs=max_budget, background_save=background)
            study.optimize(objective, n_trials=n_trials, callbacks=[pair])
            ckpt.flush()
            wall, cpu = time.perf_counter() - w - bare["wall"], time.process_time() - c - bare["cpu"]
            study.storage.close()
        epochs_total = bare["epochs"]
        wall_ratio.append(wall / bare["wall"])
        cpu_ratio.append(cpu / bare["cpu"])
        autodl_ms.append(wall / bare["epochs"] * 1000)
        bare_ms.append(bare["wall"] / bare["epochs"] * 1000)
    return {"space": kind, "writes": "background" if background else "synchronous",
            "trials_per_run": n_trials, "epochs_per_run": epochs_total, "repeats": repeats,
            "autodl_ms_per_epoch": statistics.median(autodl_ms), "bare_ms_per_epoch": statistics.median(bare_ms),
            "paired_overhead_pct": (statistics.median(wall_ratio) - 1) * 100,
            "cpu_overhead_pct": (statistics.median(cpu_ratio) - 1) * 100,
            "overhead_pct_per_run": [(x - 1) * 100 for x in wall_ratio],
            "cpu_overhead_pct_per_run": [(x - 1) * 100 for x in cpu_ratio],
            "load_average": _load()}


def measure_overheads(space: Space, data, kind: str, seed: int, n_trials: int, max_budget: int,
                      repeats: int) -> list[dict]:
    """:func:`measure_overhead` with background and with synchronous checkpoint writes, the two
    alternating run by run (so that a change of the machine's load hits both)."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for r in range(repeats):
        for background in (True, False):
            runs[background].append(measure_overhead(space, data, kind, seed, n_trials, max_budget, 1,
                                                     background=background, first_repeat=r))
    out = []
    for background, parts in runs.items():
        wall = [x for p in parts for x in p["overhead_pct_per_run"]]
        cpu = [x for p in parts for x in p["cpu_overhead_pct_per_run"]]
        out.append(dict(parts[0], repeats=repeats, overhead_pct_per_run=wall, cpu_overhead_pct_per_run=cpu,
                        paired_overhead_pct=statistics.median(wall), cpu_overhead_pct=statistics.median(cpu),
                        autodl_ms_per_epoch=statistics.median(p["autodl_ms_per_epoch"] for p in parts),
                        bare_ms_per_epoch=statistics.median(p["bare_ms_per_epoch"] for p in parts),
                        load_average=_load()))
    return out


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------- report
def _fmt_ratio(r: float) -> str:
    return "not reached" if not math.isfinite(r) else f"{r:.3f}"


def tables(result: dict) -> str:
    lines = []
    for kind, block in result["spaces"].items():
        lines.append(f"\n### {kind}: epochs to reach random search's best validation accuracy "
                     f"(random: {block['n_random']} configs x {result['max_budget']} epochs)\n")
        lines.append("| method | " + " | ".join(f"seed {s}" for s in block["seeds"]) +
                     " | median ratio | median speed-up |")
        lines.append("|---" * (len(block["seeds"]) + 3) + "|")
        rnd = block["random"]
        lines.append("| random (target acc) | " + " | ".join(
            f"{r['epochs']} ({r['target']:.4f})" for r in rnd) + " | 1.000 | 1.0x |")
        for m in block["methods"]:
            runs = block["runs"][m]
            cells = [f"{r['epochs']}" if r["epochs"] is not None else f">{r['trained']}" for r in runs]
            med = block["median_ratio"][m]
            sp = f"{1 / med:.1f}x" if math.isfinite(med) and med > 0 else "-"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {_fmt_ratio(med)} | {sp} |")
        lines.append(f"\nCheckpoint resumption ({kind}, all seeds, runs up to the target):\n")
        lines.append("| method | epochs trained | epochs from scratch | saved |")
        lines.append("|---|---|---|---|")
        for m, c in block["checkpoints"].items():
            lines.append(f"| {m} | {c['trained']} | {c['from_scratch']} | {c['saved_pct']:.1f} % |")
    if result.get("overhead"):
        lines.append("\n### Trainer overhead (Hyperband study through autodl vs bare PyTorch loop)\n")
        lines.append("| space | checkpoint writes | epochs per run | runs | autodl ms/epoch | bare ms/epoch | "
                     "wall-clock overhead (median) | CPU-time overhead (median) | load average |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for o in result["overhead"]:
            cpu = f"{o['cpu_overhead_pct']:+.1f} %" if o.get("cpu_overhead_pct") is not None else "-"
            load = " / ".join(f"{x:.1f}" for x in o["load_average"]) if o.get("load_average") else "-"
            lines.append(f"| {o['space']} | {o.get('writes', 'synchronous')} | {o['epochs_per_run']} | "
                         f"{o.get('repeats', '-')} | "
                         f"{o['autodl_ms_per_epoch']:.2f} | {o['bare_ms_per_epoch']:.2f} | "
                         f"{o['paired_overhead_pct']:+.1f} % | {cpu} | {load} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, MLP, max budget 9, few configs")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    ap.add_argument("--spaces", default="mlp,cnn")
    ap.add_argument("--n-random", type=int, default=27, help="full-budget random configs (default 27)")
    ap.add_argument("--max-budget", type=int, default=27)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--overhead-repeats", type=int, default=5, help="0: skip the overhead measurement")
    ap.add_argument("--overhead-only", action="store_true", help="only the overhead measurement")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                    help="combine results of separate runs (other spaces or seeds, or a newer overhead "
                         "measurement) into --out")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or RESULTS_DIR / "multifidelity.json")
    if args.quick:
        args.seeds, args.spaces, args.n_random, args.max_budget, args.overhead_repeats = 1, "mlp", 4, 9, 1
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    data = load_dataset("digits", seed=0)
    min_budget, eta = 1, 3
    result: dict = {"dataset": "digits", "max_budget": args.max_budget, "min_budget": min_budget, "eta": eta,
                    "quick": args.quick, "torch_threads": 1, "spaces": {}, "overhead": []}
    for kind in args.spaces.split(","):
        space = Space.load(kind)
        seeds = [] if args.overhead_only else list(range(args.first_seed, args.first_seed + args.seeds))
        block = {"seeds": seeds, "n_random": args.n_random, "methods": methods, "random": [],
                 "runs": {m: [] for m in methods}}
        for seed in seeds:
            t0 = time.perf_counter()
            rnd = run_random(space, data, kind, seed, args.n_random, args.max_budget)
            block["random"].append(rnd)
            for m in methods:
                fn = run_optuna if m == "optuna" else (lambda *a, m=m: run_autodl(m, *a))
                r = fn(space, data, kind, seed, rnd["target"], rnd["epochs"], min_budget, args.max_budget, eta)
                r["ratio"] = r["epochs"] / rnd["epochs"] if r["epochs"] is not None else math.inf
                block["runs"][m].append(r)
            print(f"[{kind} seed {seed}] target {rnd['target']:.4f} in {rnd['epochs']} epochs; " + ", ".join(
                f"{m} {block['runs'][m][-1]['epochs']}" for m in methods) + f" ({time.perf_counter() - t0:.0f}s)",
                flush=True)
        if seeds:
            result["spaces"][kind] = _summarize(block)
        if args.overhead_repeats > 0:
            result["overhead"] += measure_overheads(space, data, kind, 0, 13 if args.quick else 40,
                                                    9 if args.quick else args.max_budget, args.overhead_repeats)
    for block in result["spaces"].values():
        for rnd in block["random"]:
            rnd.pop("curve", None)
    text = tables(result)
    print(text)
    result["markdown"] = text
    out = args.out or RESULTS_DIR / ("multifidelity_quick.json" if args.quick else "multifidelity.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(result), indent=2))
    return result


def _summarize(block: dict) -> dict:
    """Median ratios and checkpoint savings of a space's runs (all its seeds)."""
    methods = block["methods"]
    block["median_ratio"] = {m: statistics.median(math.inf if r["ratio"] is None else r["ratio"]
                                                  for r in block["runs"][m]) for m in methods}
    block["checkpoints"] = {}
    for m in methods:
        if m == "optuna":
            continue
        tr = sum(r["trained"] for r in block["runs"][m])
        rs = sum(r["resumed"] for r in block["runs"][m])
        block["checkpoints"][m] = {"trained": tr, "from_scratch": tr + rs, "saved_pct": 100 * rs / max(tr + rs, 1)}
    return block


def merge(paths: list[Path], out: Path) -> dict:
    """One result (and its tables) from runs over different spaces or seeds: the seeds of a
    space are concatenated (same settings required); a later overhead measurement of a space
    replaces an earlier one."""
    parts = [json.loads(p.read_text()) for p in paths]
    result = {k: v for k, v in parts[0].items() if k not in ("spaces", "overhead", "markdown")}
    result["spaces"], overhead = {}, {}
    for part in parts:
        if part["max_budget"] != result["max_budget"] and part["spaces"]:
            raise SystemExit("cannot merge runs with different --max-budget")
        for kind, block in part["spaces"].items():
            have = result["spaces"].get(kind)
            if have is None:
                result["spaces"][kind] = block
                continue
            if have["methods"] != block["methods"] or have["n_random"] != block["n_random"]:
                raise SystemExit(f"cannot merge {kind} runs with different methods or --n-random")
            have["seeds"] += block["seeds"]
            have["random"] += block["random"]
            for m in have["methods"]:
                have["runs"][m] += block["runs"][m]
        for o in part["overhead"]:
            overhead[o["space"], o.get("writes", "synchronous")] = o
    result["overhead"] = list(overhead.values())
    for block in result["spaces"].values():
        _summarize(block)
    text = tables(result)
    print(text)
    result["markdown"] = text
    out.write_text(json.dumps(_jsonable(result), indent=2))
    return result


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    return o


if __name__ == "__main__":
    main()
