"""benchmarks/hpo_parallel.py: the simulated asynchronous workers, checked against a schedule
computed here, and the quick run's cache, ranks and regret ratios recomputed from its runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

PACKAGES = ("optuna", "cmaes", "torch")


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """1 = smallest, ties share the mean of their ranks (computed here, not by the script)."""
    return {m: sum(o < v for o in values.values()) + (sum(o == v for o in values.values()) + 1) / 2
            for m, v in values.items()}


def _list_schedule(duration: list[float], workers: int) -> tuple[list[int], list[int], float]:
    """Greedy list scheduling written out plainly: trial i starts on the worker that frees first.
    Returns the order in which trials finish, how many trials are running when each one starts
    (itself excluded) and the makespan."""
    free_at = [0.0] * workers
    starts, ends = [], []
    for d in duration:
        w = min(range(workers), key=lambda k: free_at[k])
        starts.append(free_at[w])
        free_at[w] += d
        ends.append(free_at[w])
    order = sorted(range(len(duration)), key=lambda i: (ends[i], i))
    running = [sum(starts[j] <= starts[i] < ends[j] for j in range(i)) for i in range(len(duration))]
    return order, running, max(ends)


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_simulated_workers_follow_the_event_clock(bench, workers):
    hpp = bench("hpo_parallel")
    duration = hpp.durations(seed=4, n_trials=25)
    events, asked = [], []

    def ask():
        i = len(asked)
        asked.append(i)
        events.append(("ask", i, len(asked) - 1 - sum(e[0] == "tell" for e in events)))
        return i, {"i": i}

    def tell(handle, value):
        assert value == float(handle) ** 2
        events.append(("tell", handle, None))

    finished, makespan, _ = hpp.simulate(ask, tell, lambda c: float(c["i"]) ** 2, 25, workers, duration)
    order, running, end = _list_schedule(list(duration), workers)
    assert [e[1] for e in events if e[0] == "tell"] == order
    assert finished == [float(i) ** 2 for i in order]
    assert [e[2] for e in events if e[0] == "ask"] == running
    assert makespan == pytest.approx(end)
    if workers == 1:
        assert makespan == pytest.approx(float(np.sum(duration)))
    assert hpp.durations(4, 25).tolist() == duration.tolist()  # seeded: the same for every method


@pytest.mark.slow
def test_hpo_parallel_quick(tmp_path, bench, meta_ok):
    hpp = bench("hpo_parallel")
    hp = hpp.hp
    tables, cache, out = tmp_path / "tables", tmp_path / "cache.json", tmp_path / "par.json"
    argv = ["--quick", "--processes", "1", "--tables-dir", str(tables), "--cache", str(cache), "--out", str(out)]
    result = hpp.main(argv)
    data = json.loads(out.read_text())
    assert data == result
    meta_ok(data["meta"], "hpo_parallel", PACKAGES)
    assert data["config"]["method_versions"]["optuna-gp"].startswith(f"optuna {optuna.__version__}")
    workers = data["config"]["workers"]
    assert workers == [1, 2, 4, 8]

    # every method at every W > 1, the blind twins not at W = 1 (nothing is ever pending there)
    runs = data["runs"]
    expected = {(m, p, w) for m in hpp.METHODS for p in hpp.QUICK_PROBLEMS for w in workers
                if not (w == 1 and m.endswith("-blind"))}
    assert {(r["method"], r["problem"], r["workers"]) for r in runs} == expected and len(runs) == len(expected)
    stored = json.loads(cache.read_text())["runs"]
    for r in runs:
        losses = next(v["losses"] for v in stored.values() if (v["method"], v["problem"], v["seed"], v["workers"])
                      == (r["method"], r["problem"], r["seed"], r["workers"]))
        assert len(losses) == len(r["curve"]) == r["n_trials"] == 15
        assert r["curve"] == np.minimum.accumulate(losses).tolist() and r["best"] == min(losses)
        assert r["best"] >= data["problems"][r["problem"]]["f_opt"] - 1e-12
        _, _, end = _list_schedule(list(hpp.durations(r["seed"], 15)), r["workers"])
        assert r["makespan"] == pytest.approx(end)

    # with one worker the simulation is the plain sequential loop (autodl's TPE, written out here)
    from autodl.searchers import TPE

    sphere = hp.make_problem("cont-sphere-d2")
    searcher, plain = TPE(sphere.autodl_space(), seed=0), []
    for _ in range(15):
        t = searcher.ask()
        plain.append(sphere.loss(t.config))
        searcher.tell(t, plain[-1])
    seq = next(v for v in stored.values() if (v["method"], v["problem"], v["workers"]) == ("autodl-tpe", "cont-sphere-d2", 1))
    assert seq["losses"] == plain

    # ranks per family and W recomputed here; ratios to the sequential run recomputed too
    ref = {n: p["reference_loss"] for n, p in data["problems"].items()}
    f_opt = {n: p["f_opt"] for n, p in data["problems"].items()}

    def regret(r):
        return (r["best"] - f_opt[r["problem"]]) / max(ref[r["problem"]] - f_opt[r["problem"]], 1e-300)

    for family, problem in (("continuous", "cont-sphere-d2"), ("cash", "cash-tiny-wine")):
        s = data["summary"][family]
        for w in workers:
            e = s["by_workers"][f"W{w}"]
            at_w = {r["method"]: r for r in runs if r["problem"] == problem and r["workers"] == w}
            assert e["mean_rank"] == pytest.approx(_ranks({m: at_w[m]["best"] for m in hpp.MAIN_METHODS}), abs=1e-9)
            assert sum(e["mean_rank"].values()) == pytest.approx(10.0)
            assert e["mean_normalized_regret"] == pytest.approx({m: regret(at_w[m]) for m in hpp.MAIN_METHODS})
            if w > 1:
                for m, blind in hpp.ABLATION.items():
                    pair = _ranks({m: at_w[m]["best"], blind: at_w[blind]["best"]})
                    assert e["ablation"][m]["mean_rank_vs_blind"] == pytest.approx(pair[m])
        for m in hpp.METHODS:
            seq_run = next(r for r in runs if (r["method"], r["problem"], r["workers"]) == (m.removesuffix("-blind"), problem, 1))
            for w in workers[1:]:
                par = next(r for r in runs if (r["method"], r["problem"], r["workers"]) == (m, problem, w))
                ratio = s["regret_ratio_to_sequential"][m][f"W{w}"]
                if regret(seq_run) > 0:
                    assert ratio == pytest.approx(regret(par) / regret(seq_run))
                else:
                    assert ratio == (1.0 if regret(par) == 0 else None)

    # a second run computes nothing and pools the same runs
    again = hpp.main(argv)
    assert again["config"]["new_runs"] == 0
    assert again["runs"] == data["runs"] and again["summary"] == data["summary"]
