"""``--time`` is a deadline for the whole command: how long each kind of search really takes.

For each kind (``--model mlp``, ``--model cnn``, ``--nas darts`` on digits, and a tabular search
of a CSV file), ``autodl search ... --time T`` runs as a user runs it, a new process from the
shell, ``--repeats`` times. The wall time is measured by this script from the moment it starts
the process to the moment the process has exited, so it includes Python's start-up, imports,
data loading, the search, the finishing work (refit / final scoring / final training) and
writing the run folder. The goal is ``wall <= T + 5 s``; the table shows the median and the
largest of the repeats.

On the last repeat of each kind, the other verbs run on the finished run folder and their exit
codes are recorded: ``show --json``, ``report``, ``export --onnx``, ``predict RUN --data``,
``resume --trials N+1 --time 20s`` and ``worker --time 10s`` (DARTS: ``resume --time 20s``
continues the search the deadline cut short and trains the final network again, its wall time and
search epochs recorded; ``worker`` is refused with one line and exit 2, as DARTS has no trials to
share).

    python benchmarks/deadline.py                 # T = 60 s (30 s tabular), 3 repeats: ~13 min
    python benchmarks/deadline.py --quick         # T = 12 s, 1 repeat, mlp and tabular: ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

KINDS = {
    "mlp": ["--dataset", "digits", "--model", "mlp"],
    "cnn": ["--dataset", "digits", "--model", "cnn"],
    "darts": ["--dataset", "digits", "--nas", "darts"],
    "tabular": ["--data", "{csv}", "--target", "target"],
}
#: the finishing margin the goal allows over the deadline
MARGIN = 5.0


def _autodl(*args: str, cwd: Path, timeout: float = 900) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autodl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, time.perf_counter() - t0, (proc.stderr.strip().splitlines() or [""])[-1]


def _data(folder: Path) -> tuple[Path, Path]:
    """A CSV of the digits data with its target (the tabular search's input) and one without
    (what ``predict`` reads)."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    train = folder / "digits.csv"
    frame.to_csv(train, index=False)
    new = folder / "new.csv"
    frame.drop(columns="target").head(50).to_csv(new, index=False)
    return train, new


def _verbs(kind: str, run: Path, new: Path, cwd: Path, short: bool = False) -> dict[str, int]:
    """Exit codes of every verb on the finished run; ``short`` gives resume and worker shorter
    deadlines (the tests)."""
    codes = {}
    for name, args in (("show", ["show", str(run), "--json"]), ("report", ["report", str(run)]),
                       ("export", ["export", str(run), "--onnx", str(cwd / f"{kind}.onnx")]),
                       ("predict", ["predict", str(run), "--data", str(new), "--out", str(cwd / f"{kind}.csv")])):
        codes[name] = _autodl(*args, cwd=cwd)[0]
    if kind != "darts":
        finished = json.loads((run / "result.json").read_text())
        total = finished["n_complete"] + finished["n_failed"] + finished["n_pruned"]
        codes["resume"] = _autodl("resume", str(run), "--trials", str(total + 1), "--time", "8s" if short else "20s",
                                  "--quiet",
                                  cwd=cwd)[0]
        codes["worker"] = _autodl("worker", str(run), "--time", "4s" if short else "10s", "--quiet", cwd=cwd)[0]
    else:  # the deadline cut the search short: resume searches on, then trains the final network again
        code, wall, _ = _autodl("resume", str(run), "--time", "20s", "--quiet", cwd=cwd)
        codes["resume"] = code
        codes["resume_wall"] = round(wall, 2)
        codes["resume_search_epochs"] = json.loads((run / "result.json").read_text())["extra"].get("search_epochs")
        codes["worker"] = _autodl("worker", str(run), cwd=cwd)[0]  # refused: DARTS has no trials to share
    return codes


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--time", type=float, default=60.0, help="the deadline of the torch kinds (seconds)")
    p.add_argument("--tabular-time", type=float, default=30.0, help="the deadline of the tabular search")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="12 s, 1 repeat, mlp and tabular (for the tests)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/deadline.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.time = args.tabular_time = 12.0
        args.repeats = 1
        args.kinds = [k for k in args.kinds if k in ("mlp", "tabular")]
    meta = _meta.start(__file__, argv, packages=("torch", "onnxruntime", "skl2onnx"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        train, new = _data(cwd)
        for kind in args.kinds:
            budget = args.tabular_time if kind == "tabular" else args.time
            walls, exits, lines = [], [], []
            for r in range(args.repeats):
                run = cwd / f"{kind}-{r}"
                flags = [a.replace("{csv}", str(train)) for a in KINDS[kind]]
                code, wall, last = _autodl("search", *flags, "--time", f"{budget:g}s", "--out", str(run), "--quiet",
                                           cwd=cwd)
                walls.append(round(wall, 2))
                exits.append(code)
                lines.append(last)
                print(f"{kind} repeat {r}: exit {code}, {wall:.1f}s for --time {budget:g}s ({last})", flush=True)
            result = json.loads((run / "result.json").read_text()) if (run / "result.json").is_file() else {}
            verbs = _verbs(kind, run, new, cwd, short=args.quick) if result else {}
            rows.append({"kind": kind, "time": budget, "walls": walls, "median": statistics.median(walls),
                         "max": max(walls), "exits": exits, "within": max(walls) <= budget + MARGIN,
                         "median_within": statistics.median(walls) <= budget + MARGIN,
                         "last_lines": lines, "verbs": verbs, "test_score": result.get("test_score"),
                         "n_complete": result.get("n_complete"), "n_pruned": result.get("n_pruned"),
                         "extra": {k: result.get("extra", {}).get(k)
                                   for k in ("search_seconds", "train_seconds", "stopped_by", "search_epochs")}})
    print(f"\n| kind | --time | median wall | max wall | within T + {MARGIN:g} s | test score | verbs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        verbs = ", ".join(f"{k} {v}" for k, v in r["verbs"].items())
        score = "-" if r["test_score"] is None else f"{r['test_score']:.3f}"
        print(f"| {r['kind']} | {r['time']:g} s | {r['median']:.1f} s | {r['max']:.1f} s | "
              f"{'yes' if r['median_within'] else 'NO'} | {score} | {verbs} |")
    out = Path(args.out) if args.out else _meta.default_out("deadline", args.quick)
    return _meta.write_result(out, {"quick": args.quick, "margin": MARGIN, "repeats": args.repeats, "rows": rows},
                              meta)


if __name__ == "__main__":
    main()
