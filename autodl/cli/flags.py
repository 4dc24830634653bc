"""The flags of ``autodl search``/``resume``/``worker`` and the kinds of run each applies to.

:data:`SEARCH_FLAGS` is the one table: the parser is built from it, and a flag given for a kind
it does not apply to is a one-line error naming the kinds it does apply to (never ignored).
A kind here is a *variant* of a run kind (:meth:`autodl.runs.RunKind.variant`): ``tabular``,
``nn`` (``--model``), ``darts`` and ``nas`` (``--nas evolution|random``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from autodl.cli._units import parse_size
from autodl.cli.common import fraction, number, parse_duration, positive_float, positive_int
from autodl.errors import UserError

ALL = ("tabular", "nn", "darts", "nas")
#: variants that search through a Study: trials, workers, executors, resume and worker
STUDY = ("tabular", "nn", "nas")
LABELS = {"tabular": "tabular searches", "nn": "--model", "darts": "--nas darts", "nas": "--nas evolution|random"}


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    group: str = "search"

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.names[0].lstrip("-").replace("-", "_")


def _f(names, kinds, group="search", **kwargs) -> Flag:
    return Flag(tuple([names] if isinstance(names, str) else names), tuple(kinds), kwargs, group)


SEARCH_FLAGS: list[Flag] = [
    # data
    _f("--target", ALL, help="the column to predict in a --data table or --entityset"),
    _f("--task", ["tabular"], choices=["auto", "classification", "regression", "timeseries"],
       help="default: inferred from the target"),
    _f("--metric", ["tabular"], help="accuracy, balanced_accuracy, f1, roc_auc, log_loss, r2, rmse, mae"),
    _f("--cv", ["tabular"], help="cross-validation folds, holdout (one 80/20 split), time (5 expanding windows "
                                 "in date order; the test rows are the latest) or auto (default: with --time, "
                                 "holdout from 1,000 training rows per second of it, 3 folds from 333; else 5)"),
    _f("--time-column", ["tabular"], metavar="COL",
       help="with --cv time: the date column ordering the rows (default: the one date column)"),
    _f("--weight", ["tabular"], metavar="COL", help="a column of sample weights (>= 0) for every fit and score; "
                                                    "not a feature"),
    _f("--groups", ["tabular"], metavar="COL",
       help="a column of group labels: no group is on both sides of a fold or of the test split; not a feature"),
    _f("--test-size", ALL, type=fraction, help="fraction held out for a final test score (default 0.2; 0 for none)"),
    _f("--seed", ALL, type=int, default=0, help="seeds the searcher, the split and the training (default 0)"),
    # the search
    _f("--space", ["tabular", "nn"], help="a built-in space name or a YAML file (default: tabular; the model's with --model)"),
    _f("--searcher", ["tabular", "nn"],
       help="auto, random, grid, tpe, gp, evolution, sh, hyperband, asha, bohb (default: tpe; hyperband with --model)"),
    _f("--trials", STUDY, type=positive_int, help="number of trials"),
    _f("--time", ALL, type=parse_duration,
       help="deadline for the whole command from its start, final training/refit and saving included "
            "(e.g. 90s, 10m, 1h)"),
    _f("--out", ALL, help="run folder (default: runs/<data>-<time>)"),
    _f("--export-onnx", ALL, metavar="FILE", help="export the winner to this .onnx file (verified)"),
    _f("--no-ensemble", ["tabular"], action="store_true",
       help="predict with the best trial alone (default: a weighted ensemble of the trials, chosen by greedy "
            "ensemble selection on their out-of-fold predictions, when it validates better)"),
    _f("--no-refit", ["tabular"], action="store_true",
       help="predict with the models each trial's cross-validation fitted (a member averages its fold models; "
            "nothing is fitted after the search, the ONNX file holds k models per member); default: refit the "
            "ensemble's members on all rows"),
    _f("--require-onnx", ["tabular"], action="store_true",
       help="the winner is the best trial whose model exports to ONNX and passes the check"),
    # several objectives, a latency limit (see autodl.tabular.objectives, autodl.nn.objectives)
    _f("--objectives", ["tabular", "nn", "nas"], group="objectives", metavar="METRIC,latency[,size]",
       help="search several objectives: the metric (its name or 'metric') first, then latency (ms per "
            "single-row onnxruntime call, one thread) and/or size (ONNX bytes), measured on each trial's "
            "ONNX file, and for --model / --nas evolution|random params (trainable parameters); the search "
            "finds a Pareto front and predicts with one member (--select; networks: the best metric)"),
    _f("--max-latency-ms", ["tabular", "nn", "nas"], group="objectives", type=positive_float, metavar="MS",
       help="a latency limit for the deployed predictor: trials over it are infeasible, and an ensemble is "
            "shrunk until its ONNX file meets it"),
    _f("--select", ["tabular"], group="objectives", metavar="RULE",
       help="with --objectives: which front member predicts, e.g. \"accuracy, latency<=1ms\" (limits first, "
            "then the best named objective; default: the best metric)"),
    _f("--latency-fn", ["tabular", "nn", "nas"], group="objectives", metavar="MODULE:FUNCTION",
       help="measure latency with this function (ONNX bytes -> ms), e.g. for another deployment machine"),
    # column roles (tabular; see autodl.tabular.columns)
    _f("--ignore", ["tabular"], group="columns", metavar="COL[,COL]", help="columns not to learn from"),
    _f("--categorical", ["tabular"], group="columns", metavar="COL[,COL]",
       help="columns to treat as categories (e.g. numeric codes such as zip codes)"),
    _f("--datetime", ["tabular"], group="columns", metavar="COL[,COL]",
       help="date columns (ISO 8601 text, or numbers as epoch seconds); ISO date columns are found without it"),
    # where trials run
    _f("--workers", STUDY, type=positive_int, group="execution",
       help="trials run in parallel processes (default 1; a tabular search under --time: one per core "
            "the available memory holds)"),
    _f("--executor", STUDY, group="execution", choices=["local", "dask"],
       help="where trials run: local worker processes or a Dask cluster (default: in this process for "
            "--workers 1 without --time, else local)"),
    _f("--dask-scheduler", STUDY, group="execution", metavar="ADDRESS",
       help="join a running Dask cluster, e.g. tcp://host:8786 (with --executor dask)"),
    _f("--trial-timeout", STUDY, group="execution", type=parse_duration, metavar="DURATION",
       help="stop a trial after this long (e.g. 90s, 5m); it is recorded as failed"),
    _f("--trial-memory", STUDY, group="execution", type=parse_size, metavar="SIZE",
       help="cap each trial's worker process memory, e.g. 2G (Linux); a trial past it is recorded as failed"),
    # budgets
    _f("--budget-resource", ["tabular"], group="budgets", choices=["auto", "iterations", "rows"],
       help="with --searcher sh|hyperband|asha|bohb: what a trial's budget cuts, the model's iterations or "
            "each fold's training rows (default auto)"),
    _f("--min-budget", ["tabular", "nn", "nas"], group="budgets", type=number,
       help="smallest budget: a share of the fit (tabular, default 1 of 9), epochs (--model, default 1; "
            "--nas evolution|random: successive halving from this many epochs)"),
    _f("--max-budget", ["tabular", "nn", "nas"], group="budgets", type=number,
       help="largest budget: the full fit (tabular, default 9), epochs (--model default 27; --nas: a "
            "candidate's epochs, default 10)"),
    _f("--eta", ["tabular", "nn"], group="budgets", type=number, help="halving rate, > 1 (default 3)"),
    # PyTorch and NAS
    _f("--model", ["nn"], group="torch", choices=["mlp", "cnn"],
       help="search a PyTorch MLP or CNN's hyperparameters instead of scikit-learn pipelines"),
    _f("--nas", ["darts", "nas"], group="torch", choices=["darts", "evolution", "random"],
       help="search network architectures: DARTS (gradient), regularized evolution or random"),
    _f("--nas-space", ["darts", "nas"], group="torch", choices=["cell", "mlp", "rnn"],
       help="cell: DARTS-style CNN cells (images; default); mlp: depth/width/activation (evolution, random); "
            "rnn: RNN/LSTM/GRU over sequences N x T x F (evolution, random)"),
    _f("--epochs", ["darts"], group="torch", type=positive_int, help="DARTS search epochs (default 20)"),
    _f("--train-epochs", ["darts", "nas"], group="torch", type=positive_int,
       help="epochs to train the winning architecture from scratch (default 20; fewer if --time runs short)"),
    _f("--order", ["darts"], group="torch", type=int, choices=[1, 2], help="DARTS gradient order (default 1)"),
    _f("--guard", ["darts"], group="torch", choices=["none", "pf-stop", "darts-"],
       help="DARTS collapse guard (default pf-stop)"),
    # feature engineering
    _f("--features", ["tabular"], group="features", help="feature step before the model: featuretools or tsfresh"),
    _f("--feature-set", ["tabular"], group="features", choices=["minimal", "efficient", "comprehensive"],
       help="tsfresh features to extract before selection (default: efficient)"),
    _f("--id-column", ["tabular"], group="features", help="--task timeseries: the column holding each series' id"),
    _f("--sort-column", ["tabular"], group="features", help="--task timeseries: the column ordering observations"),
    _f("--labels", ["tabular"], group="features", metavar="FILE",
       help="--task timeseries: a table with the id column and --target (one row per series)"),
]

#: flags of ``autodl resume RUN`` and ``autodl worker RUN`` (the run's kind decides)
RESUME_FLAGS: list[Flag] = [
    _f("--trials", STUDY, type=positive_int, help="new total number of trials"),
    _f("--time", ALL, type=parse_duration, help="a new deadline for this command, from its start"),
    _f("--workers", STUDY, type=positive_int, help="trials run in parallel processes"),
    *[f for f in SEARCH_FLAGS if f.group == "execution" and f.names[0] != "--workers"],
]
WORKER_FLAGS: list[Flag] = [f for f in RESUME_FLAGS if f.names[0] != "--trials"]

GROUP_TITLES = {"search": None, "objectives": "several objectives and a latency limit (ONNX, measured)",
                "columns": "column roles (inferred; these flags win)", "execution": "where trials run", "budgets": "budgets (multi-fidelity searchers)",
                "torch": "PyTorch models and architecture search", "features": "feature engineering"}


def add_flags(parser: argparse.ArgumentParser, flags: list[Flag]) -> None:
    groups: dict[str, Any] = {}
    for flag in flags:
        title = GROUP_TITLES.get(flag.group)
        target = parser if title is None else groups.setdefault(flag.group, parser.add_argument_group(title))
        kwargs = dict(flag.kwargs)
        kwargs.setdefault("default", None)
        target.add_argument(*flag.names, **kwargs)


def given(args: argparse.Namespace, flag: Flag) -> bool:
    value = getattr(args, flag.dest, None)
    default = flag.kwargs.get("default")
    return value is not None and value is not False and value != default


def check_flags(args: argparse.Namespace, flags: list[Flag], variant: str) -> None:
    """A flag given for a variant it does not apply to is one UserError line."""
    for flag in flags:
        if given(args, flag) and variant not in flag.kinds:
            where = ", ".join(LABELS[k] for k in flag.kinds)
            raise UserError(f"{flag.names[0]} does not apply to {LABELS[variant]}; it applies to: {where}")


def search_variant(args: argparse.Namespace) -> str:
    """The variant ``autodl search`` was asked for."""
    if getattr(args, "nas", None):
        if getattr(args, "model", None):
            raise UserError("--nas and --model are alternatives: --model tunes a fixed network family's "
                            "hyperparameters, --nas searches architectures; give one")
        return "darts" if args.nas == "darts" else "nas"
    return "nn" if getattr(args, "model", None) else "tabular"
