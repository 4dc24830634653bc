"""NAS on digits at matched CPU time: DARTS (first order, with and without the collapse guard),
regularized evolution and random architectures over the same cell space.

Per seed, in one process (one torch thread, trials run inline, so CPU seconds are this
process's ``time.process_time``):

1. DARTS with the ``pf-stop`` guard (:mod:`autodl.nas.darts`), ``--epochs`` search epochs;
2. plain DARTS (no guard), the same epochs;
3. random architectures from :func:`autodl.nas.cell_space.cell_space` (the space DARTS derives
   from), each trained ``--candidate-epochs`` on the train split and scored on the validation
   split, until ``--budget-multiple`` x the guarded DARTS search's CPU seconds are spent;
4. regularized evolution over the same space with the same CPU budget.

Every method then trains its architecture from scratch the same way (``--train-epochs``, SGD
with cosine schedule, train + validation rows) and is scored on the same held-out test rows.
Reported: test accuracy, parameters, search CPU seconds, and the parameter-free share of the
normal cell. ``--part stress`` shows the collapse guard where plain DARTS does collapse: the
reduced space S2 of RobustDARTS (Zela et al. 2020: every edge chooses between a skip connection
and a 3x3 separable convolution), plain vs ``pf-stop``, ``--stress-epochs`` epochs. Goal (issue #5): guarded DARTS at least as accurate as the best random
architecture with at most a fifth of random search's compute, and at most half its cell
parameter-free.

The JSON also records the run's commit, versions and load average (``benchmarks/_meta.py``).

    python benchmarks/nas.py                  # 2 seeds, writes benchmarks/results/nas.json
    python benchmarks/nas.py --part stress    # the guard where DARTS collapses (writes nas_stress.json)
    python benchmarks/nas.py --quick          # a smoke run (small data, tiny budgets; ~1 min)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: distributions whose versions the result records
PACKAGES = ("torch",)


def _cpu() -> float:
    return time.process_time()


def run_seed(seed: int, args) -> list[dict]:
    import torch

    from autodl.nas.cell_space import cell_space, sample_to_genotype
    from autodl.nas.darts import run_darts
    from autodl.nas.evolution import evolutionary_nas, make_study
    from autodl.nas.genotypes import parameter_free_share
    from autodl.nas.search import NasSpec, load_nas_data

    torch.set_num_threads(1)
    spec = NasSpec(dataset="digits", seed=seed, C=args.C, layers=args.layers, nodes=args.nodes,
                   max_rows=args.max_rows)
    data = load_nas_data(spec)
    splits = (data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test)
    X_all = np.concatenate([data.X_train, data.X_val, data.X_test])
    y_all = np.concatenate([data.y_train, data.y_val, data.y_test])
    rows = []

    darts_cpu = None
    for name, guard in (("DARTS + pf-stop guard", "pf-stop"), ("DARTS (no guard)", None)):
        res = run_darts(X_all, y_all, image_shape=(1, 8, 8), C=args.C, layers=args.layers, nodes=args.nodes,
                        epochs=args.epochs, guard=guard, train_epochs=args.train_epochs, seed=seed,
                        splits=splits)
        cpu = res.settings["search_cpu_seconds"]
        if guard == "pf-stop":
            darts_cpu = cpu
        rows.append({"seed": seed, "method": name, "test_accuracy": res.test_accuracy, "n_params": res.n_params,
                     "search_cpu_s": round(cpu, 1), "parameter_free_share": res.parameter_free_share,
                     "epochs_run": res.settings["epochs_run"], "stopped_by": res.settings["stopped_by"],
                     "genotype": res.genotype})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "genotype"}), flush=True)

    budget = args.budget_multiple * darts_cpu
    factory = cell_space(data.n_classes, C=args.C, layers=args.layers, nodes=args.nodes)
    for name, searcher in (("random architectures", "random"), ("regularized evolution", "evolution")):
        study = make_study(factory, searcher=searcher, population=args.population, sample_size=args.sample_size,
                           epochs=args.candidate_epochs, seed=seed)
        from autodl.nas.evolution import ArchObjective

        objective = ArchObjective(factory, data, epochs=args.candidate_epochs, seed=seed)
        c0 = _cpu()
        while _cpu() - c0 < budget:
            study.optimize(objective, n_trials=1)
        cpu = _cpu() - c0
        res = evolutionary_nas(factory, data, n_trials=0, study=study, epochs=args.candidate_epochs,
                               train_epochs=args.train_epochs, seed=seed)
        genotype = sample_to_genotype(res.best_config, args.nodes)
        rows.append({"seed": seed, "method": name, "test_accuracy": res.test_accuracy, "n_params": res.n_params,
                     "search_cpu_s": round(cpu, 1), "parameter_free_share": parameter_free_share(genotype),
                     "n_architectures": len(res.history), "best_val_accuracy": res.best_val_accuracy,
                     "genotype": genotype})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "genotype"}), flush=True)
    return rows


def run_stress(seed: int, args) -> list[dict]:
    """The guard where DARTS collapses: RobustDARTS' reduced space S2 (skip or 3x3 separable
    convolution on every edge), plain vs pf-stop, the same search length and split."""
    import torch

    from autodl.nas.darts import run_darts
    from autodl.nas.search import NasSpec, load_nas_data

    torch.set_num_threads(1)
    data = load_nas_data(NasSpec(dataset="digits", seed=seed, max_rows=args.max_rows))
    splits = (data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test)
    X_all = np.concatenate([data.X_train, data.X_val, data.X_test])
    y_all = np.concatenate([data.y_train, data.y_val, data.y_test])
    rows = []
    for name, guard in (("S2: DARTS (no guard)", None), ("S2: DARTS + pf-stop guard", "pf-stop")):
        shares: list[float] = []
        res = run_darts(X_all, y_all, image_shape=(1, 8, 8), C=args.C, layers=args.layers, nodes=args.nodes,
                        epochs=args.stress_epochs, guard=guard, train_epochs=args.train_epochs, seed=seed,
                        splits=splits, primitives=["skip_connect", "sep_conv_3x3"],
                        on_epoch=lambda e, info: shares.append(info["parameter_free_share"]))
        rows.append({"seed": seed, "method": name, "test_accuracy": res.test_accuracy, "n_params": res.n_params,
                     "search_cpu_s": res.settings["search_cpu_seconds"],
                     "parameter_free_share": res.parameter_free_share, "epochs_run": res.settings["epochs_run"],
                     "stopped_by": res.settings["stopped_by"], "share_per_epoch": shares, "genotype": res.genotype})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "genotype"}), flush=True)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        out.append({"method": method,
                    "test_accuracy_mean": round(statistics.mean(r["test_accuracy"] for r in rs), 4),
                    "test_accuracy_per_seed": [round(r["test_accuracy"], 4) for r in rs],
                    "n_params_mean": int(statistics.mean(r["n_params"] for r in rs)),
                    "search_cpu_s_mean": round(statistics.mean(r["search_cpu_s"] for r in rs), 1),
                    "parameter_free_share_per_seed": [r["parameter_free_share"] for r in rs]})
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=20, help="DARTS search epochs")
    p.add_argument("--train-epochs", type=int, default=20)
    p.add_argument("--candidate-epochs", type=int, default=5, help="epochs per sampled architecture")
    p.add_argument("--budget-multiple", type=float, default=5.0,
                   help="random/evolution CPU budget as a multiple of guarded DARTS' search CPU")
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--sample-size", type=int, default=3)
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--max-rows", type=int, default=None)
    p.add_argument("--part", choices=["main", "stress"], default="main",
                   help="main: the matched-CPU comparison; stress: the guard on RobustDARTS' S2 space")
    p.add_argument("--stress-epochs", type=int, default=30)
    p.add_argument("--quick", action="store_true", help="tiny smoke run (300 rows, 2 epochs, 1 seed)")
    p.add_argument("--out", default=None, help="results JSON (default benchmarks/results/nas.json)")
    args = p.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.seeds, args.epochs, args.train_epochs, args.candidate_epochs = [0], 2, 1, 1
        args.budget_multiple, args.max_rows, args.C, args.layers = 1.0, 300, 4, 2
        args.population, args.sample_size, args.stress_epochs = 2, 1, 2
    stem = "nas" if args.part == "main" else "nas_stress"
    out = Path(args.out) if args.out else _meta.default_out(stem, args.quick)
    start = time.time()
    rows = []
    for seed in args.seeds:
        rows += run_seed(seed, args) if args.part == "main" else run_stress(seed, args)
    summary = summarize(rows)
    result = {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows, "summary": summary,
              "wall_seconds": round(time.time() - start, 1)}
    result = _meta.write_result(out, result, meta)
    print()
    print("| method | test accuracy (mean; per seed) | parameters | search CPU s | parameter-free share of normal cell |")
    print("|---|---|---|---|---|")
    for s in summary:
        per = ", ".join(f"{a:.3f}" for a in s["test_accuracy_per_seed"])
        pf = ", ".join(f"{v:.2f}" for v in s["parameter_free_share_per_seed"])
        print(f"| {s['method']} | {s['test_accuracy_mean']:.3f} ({per}) | {s['n_params_mean']} | "
              f"{s['search_cpu_s_mean']:.0f} | {pf} |")
    print(f"({result['wall_seconds']:.0f}s)")
    return result


if __name__ == "__main__":
    main()
