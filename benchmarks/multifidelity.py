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
   ``NNObjective``, checkpoint writes synchronous as by default, and in the background) vs a
   bare PyTorch loop training the same configs for the same number of epochs on the same data,
   paired trial by trial in the same process (median over repeats; see :func:`measure_overhead`;
   ``--overhead-only`` runs just this).

A run of the script is a *measurement*, recorded with its commit, versions and load average
(``benchmarks/_meta.py``). Results are pooled, never replaced: a measurement written to an
``--out`` that already holds some is added to them (``--replace`` starts afresh), and
``--merge`` pools the measurements of several files (:func:`pool`): seeds of a space are
concatenated, overhead runs measured the same way are pooled (medians over all runs, each
measurement also shown alone), and the tables name the measurements and commits behind them.

    python benchmarks/multifidelity.py                 # 5 seeds, both spaces (~30-60 min, 1 core)
    python benchmarks/multifidelity.py --spaces cnn --seeds 1 --first-seed 3 --overhead-repeats 0 --out s3.json
    python benchmarks/multifidelity.py --merge s0.json s1.json ... --out all.json
    python benchmarks/multifidelity.py --overhead-only --overhead-repeats 11 --out o.json   # adds to o.json
    python benchmarks/multifidelity.py --quick         # ~2 minutes; run by the tests

Uses one torch thread. Writes ``benchmarks/results/multifidelity.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

from autodl.nn import checkpoint as ckpt  # noqa: E402
from autodl.nn.data import load_dataset  # noqa: E402
from autodl.nn.search import NNObjective  # noqa: E402
from autodl.nn.trainer import budget_to_epochs, build_model, build_optimizer, train_config  # noqa: E402
from autodl.searchers import make_searcher  # noqa: E402
from autodl.space import Categorical, Float, Int, Space  # noqa: E402
from autodl.study import Study  # noqa: E402

METHODS = ("hyperband", "bohb", "asha", "optuna")
#: distributions whose versions the result records
PACKAGES = ("torch", "optuna")


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
            "autodl_ms_per_epoch_per_run": autodl_ms, "bare_ms_per_epoch_per_run": bare_ms,
            "load_average": _meta.load_average()}


def measure_overheads(space: Space, data, kind: str, seed: int, n_trials: int, max_budget: int,
                      repeats: int) -> list[dict]:
    """:func:`measure_overhead` with background and with synchronous checkpoint writes, the two
    alternating run by run (so that a change of the machine's load hits both)."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for r in range(repeats):
        for background in (True, False):
            runs[background].append(measure_overhead(space, data, kind, seed, n_trials, max_budget, 1,
                                                     background=background, first_repeat=r))
    return [_pool_overhead(parts, load_average=_meta.load_average()) for parts in runs.values()]


#: the lists of an overhead record with one value per paired run (pooled by concatenation)
_PER_RUN = ("overhead_pct_per_run", "cpu_overhead_pct_per_run", "autodl_ms_per_epoch_per_run",
            "bare_ms_per_epoch_per_run")


def _pool_overhead(parts: list[dict], **extra) -> dict:
    """One overhead record from several of the same space, writes and trials: the per-run
    lists concatenated, the medians taken over all of their runs."""
    out = dict(parts[0], **{k: [x for p in parts for x in p[k]] for k in _PER_RUN})
    out.update(repeats=len(out["overhead_pct_per_run"]),
               paired_overhead_pct=statistics.median(out["overhead_pct_per_run"]),
               cpu_overhead_pct=statistics.median(out["cpu_overhead_pct_per_run"]),
               autodl_ms_per_epoch=statistics.median(out["autodl_ms_per_epoch_per_run"]),
               bare_ms_per_epoch=statistics.median(out["bare_ms_per_epoch_per_run"]), **extra)
    return out


# ---------------------------------------------------------------------- report
def _fmt_ratio(r: float) -> str:
    return "not reached" if not math.isfinite(r) else f"{r:.3f}"


def _label(m: dict) -> str:
    """``abc1234``, ``abc1234+dirty`` (uncommitted changes) or ``...+changed-mid-run`` for a
    measurement's code."""
    git = m["meta"]["git"]
    if not git.get("commit"):
        return "no git"
    return (git["commit"][:7] + ("+dirty" if git.get("dirty") else "")
            + ("+changed-mid-run" if git.get("same_at_end") is False else ""))


def _loads(m: dict) -> str:
    la = m["meta"]["load_average"]
    fmt = lambda v: f"{v[0]:.1f}" if v else "-"  # noqa: E731
    return f"{fmt(la['start'])} -> {fmt(la['end'])}"


def tables(result: dict) -> str:
    measurements = result["measurements"]
    lines = ["\n### Measurements pooled here\n",
             "| measurement | commit | started (UTC) | wall (s) | load average (1 min) | nproc | what |",
             "|---|---|---|---|---|---|---|"]
    for m in measurements:
        what = ", ".join(f"{k} seeds {v}" for k, v in m["seeds"].items()) or "-"
        if m["overhead"]:
            what += f"; overhead {', '.join(m['overhead'])}"
        lines.append(f"| {m['id']} | {_label(m)} | {m['meta']['started']} | {m['meta']['wall_seconds']:.0f} | "
                     f"{_loads(m)} | {m['meta']['nproc']} | {what} |")
    commits = sorted({_label(m) for m in measurements})
    if len(commits) > 1:
        lines.append(f"\nPooled over {len(commits)} code versions ({', '.join(commits)}): "
                     "figures below mix them.")
    for kind, block in result["spaces"].items():
        lines.append(f"\n### {kind}: epochs to reach random search's best validation accuracy "
                     f"(random: {block['n_random']} configs x {result['max_budget']} epochs)\n")
        seen = [r["seed"] for r in block["random"]]
        heads = [f"seed {r['seed']}" + (f" (m{r['measurement']})" if seen.count(r["seed"]) > 1 else "")
                 for r in block["random"]]
        lines.append("| method | " + " | ".join(heads) + " | median ratio | median speed-up |")
        lines.append("|---" * (len(heads) + 3) + "|")
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
    if result["overhead"]:
        lines.append("\n### Trainer overhead (Hyperband study through autodl vs bare PyTorch loop)\n")
        lines.append("Pooled rows take the median over the runs of every measurement listed; the rows "
                     "below them give each measurement alone.\n")
        lines.append("| space | checkpoint writes | measurements | epochs per run | runs | autodl ms/epoch | "
                     "bare ms/epoch | wall-clock overhead (median) | CPU-time overhead (median) | load average |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        by_id = {m["id"]: m for m in measurements}

        def row(o: dict, which: str, load: str) -> str:
            return (f"| {o['space']} | {o['writes']} | {which} | {o['epochs_per_run']} | {o['repeats']} | "
                    f"{o['autodl_ms_per_epoch']:.2f} | {o['bare_ms_per_epoch']:.2f} | "
                    f"{o['paired_overhead_pct']:+.1f} % | {o['cpu_overhead_pct']:+.1f} % | {load} |")

        for o in result["overhead"]:
            ids = o["measurements"]
            which = ("all: " if len(ids) > 1 else "") + ", ".join(
                f"m{i} ({_label(by_id[i])})" for i in ids)
            lines.append(row(o, which, "-" if len(ids) > 1 else _loads(by_id[ids[0]])))
            if len(ids) > 1:
                for one in result["overhead_measured"]:
                    if _overhead_key(one) == _overhead_key(o):
                        i = one["measurement"]
                        lines.append(row(one, f"m{i} ({_label(by_id[i])})", _loads(by_id[i])))
    return "\n".join(lines)


# ---------------------------------------------------------------------- one measurement
def _settings(args) -> dict:
    """The settings every measurement pooled with this one must share (see :func:`pool`)."""
    return {"dataset": "digits", "max_budget": args.max_budget, "min_budget": 1, "eta": 3, "quick": args.quick,
            "torch_threads": 1}


def measure(args, meta: dict) -> dict:
    """One measurement (a run of this script) in the pooled layout of :func:`pool`."""
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    result: dict = {**_settings(args), "spaces": {}, "overhead_measured": []}
    data = load_dataset(result["dataset"], seed=0)
    min_budget, eta = result["min_budget"], result["eta"]
    for kind in args.spaces.split(","):
        space = Space.load(kind)
        seeds = [] if args.overhead_only else list(range(args.first_seed, args.first_seed + args.seeds))
        block = {"seeds": seeds, "n_random": args.n_random, "methods": methods, "random": [],
                 "runs": {m: [] for m in methods}}
        for seed in seeds:
            t0 = time.perf_counter()
            rnd = run_random(space, data, kind, seed, args.n_random, args.max_budget)
            rnd.pop("curve", None)
            block["random"].append(dict(rnd, seed=seed, measurement=0))
            for m in methods:
                fn = run_optuna if m == "optuna" else (lambda *a, m=m: run_autodl(m, *a))
                r = fn(space, data, kind, seed, rnd["target"], rnd["epochs"], min_budget, args.max_budget, eta)
                r["ratio"] = r["epochs"] / rnd["epochs"] if r["epochs"] is not None else math.inf
                block["runs"][m].append(dict(r, seed=seed, measurement=0))
            print(f"[{kind} seed {seed}] target {rnd['target']:.4f} in {rnd['epochs']} epochs; " + ", ".join(
                f"{m} {block['runs'][m][-1]['epochs']}" for m in methods) + f" ({time.perf_counter() - t0:.0f}s)",
                flush=True)
        if seeds:
            result["spaces"][kind] = block
        if args.overhead_repeats > 0:
            for o in measure_overheads(space, data, kind, 0, 13 if args.quick else 40,
                                       9 if args.quick else args.max_budget, args.overhead_repeats):
                result["overhead_measured"].append(dict(o, measurement=0))
    result["measurements"] = [{"id": 0, "meta": _meta.finish(meta)}]
    return result


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
    ap.add_argument("--out", type=Path, help="JSON path (default: results/multifidelity[_quick].json); a "
                                             "measurement is added to the ones already in it")
    ap.add_argument("--replace", action="store_true",
                    help="start --out afresh, dropping the measurements already in it")
    ap.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                    help="pool the measurements of these files (other spaces, seeds, or more overhead runs) "
                         "into --out")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or _meta.default_out("multifidelity", False))
    if args.quick:
        args.seeds, args.spaces, args.n_random, args.max_budget, args.overhead_repeats = 1, "mlp", 4, 9, 1
    out = args.out or _meta.default_out("multifidelity", args.quick)
    earlier = [] if args.replace or not out.is_file() else [_read(out)]
    if earlier:  # fail before measuring, not after
        _check_shared(earlier[0], _settings(args))
    meta = _meta.start(__file__, argv, PACKAGES)
    result = pool(earlier + [measure(args, meta)])
    print(result["markdown"])
    _meta.write_json(out, result)
    print(f"wrote {out} ({len(result['measurements'])} measurement(s))")
    return _meta.jsonable(result)


# ---------------------------------------------------------------------- pooling
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


def _overhead_key(o: dict) -> tuple:
    """Overhead records measured the same way (pooled together)."""
    return o["space"], o["writes"], o["trials_per_run"], o["epochs_per_run"]


#: settings every pooled measurement must share
_SHARED = ("dataset", "max_budget", "min_budget", "eta", "quick", "torch_threads")


def _read(path: Path) -> dict:
    part = json.loads(Path(path).read_text())
    if "measurements" not in part:
        raise SystemExit(f"{path} records no measurements (written before runs recorded their commit, "
                         "versions and load): re-measure, or pass --replace to overwrite it")
    return part


def _check_shared(a: dict, b: dict) -> None:
    for k in _SHARED:
        if a[k] != b[k]:
            raise SystemExit(f"cannot pool measurements with different {k}: {a[k]!r} and {b[k]!r}")


def pool(parts: list[dict]) -> dict:
    """The measurements of ``parts`` (results of this script, each pooling one or more) in one
    result: every measurement kept with its metadata (renumbered in order), the seeds of a space
    concatenated (settings must agree), every overhead measurement kept in ``overhead_measured``
    and pooled in ``overhead`` with the others of its space, writes and trials (medians over all
    of their runs); nothing a part measured is dropped or replaced."""
    result = {k: parts[0][k] for k in _SHARED}
    result.update(measurements=[], spaces={}, overhead_measured=[])
    for part in parts:
        _check_shared(result, part)
        ids = {m["id"]: len(result["measurements"]) + i for i, m in enumerate(part["measurements"])}
        for m in part["measurements"]:
            result["measurements"].append(dict(m, id=ids[m["id"]]))
        for kind, block in part["spaces"].items():
            block = json.loads(json.dumps(block))  # a copy
            for r in block["random"] + [r for m in block["methods"] for r in block["runs"][m]]:
                r["measurement"] = ids[r["measurement"]]
            have = result["spaces"].get(kind)
            if have is None:
                result["spaces"][kind] = {k: block[k] for k in ("seeds", "n_random", "methods", "random", "runs")}
                continue
            if have["methods"] != block["methods"] or have["n_random"] != block["n_random"]:
                raise SystemExit(f"cannot pool {kind} measurements with different methods or --n-random")
            have["seeds"] += block["seeds"]
            have["random"] += block["random"]
            for m in have["methods"]:
                have["runs"][m] += block["runs"][m]
        for o in part["overhead_measured"]:
            result["overhead_measured"].append(dict(o, measurement=ids[o["measurement"]]))
    for block in result["spaces"].values():
        _summarize(block)
    groups: dict[tuple, list[dict]] = {}
    for o in result["overhead_measured"]:
        groups.setdefault(_overhead_key(o), []).append(o)
    result["overhead"] = [_pool_overhead(g, measurements=[o["measurement"] for o in g],
                                         load_average=None) for g in groups.values()]
    for o in result["overhead"]:
        o.pop("measurement", None)
    for m in result["measurements"]:
        m["seeds"] = {k: [r["seed"] for r in b["random"] if r["measurement"] == m["id"]]
                      for k, b in result["spaces"].items()}
        m["seeds"] = {k: v for k, v in m["seeds"].items() if v}
        m["overhead"] = sorted({o["space"] for o in result["overhead_measured"] if o["measurement"] == m["id"]})
    result["markdown"] = tables(result)
    return result


def merge(paths: list[Path], out: Path) -> dict:
    """:func:`pool` the measurements of the result files ``paths`` into ``out``."""
    result = pool([_read(p) for p in paths])
    print(result["markdown"])
    _meta.write_json(out, result)
    print(f"wrote {out} ({len(result['measurements'])} measurement(s))")
    return _meta.jsonable(result)


if __name__ == "__main__":
    main()
