"""Several objectives, a latency limit and choosing one model from a Pareto front, for tabular
searches (``autodl.search(objectives=..., max_latency_ms=..., select=...)``).

**Objectives.** The first is the search metric (its name, e.g. ``"accuracy"``, or ``"metric"``);
the others come from :data:`TABULAR_OBJECTIVES`: ``latency`` (milliseconds per single-row
onnxruntime call, one thread; see :mod:`autodl.export.latency`) and ``size`` (bytes of the ONNX
file). Both are measured on the ONNX file of the trial's *first fold model* (exported with
:func:`autodl.export.core.onnx_bytes`, ``check=False``, on that fold's held-out rows), in the
trial's own process once its training is over, and cached per configuration (and budget) in the
run folder's ``latency.json`` (in memory without a run folder). The model deployed after the
search is fitted on all rows, so its file can differ a little (a forest grows deeper on more
rows); it is measured again and reported as ``extra.deployment`` of ``result.json``.

A pipeline that cannot be exported to ONNX has no latency: such a trial **fails**, with a message
saying so (it is not a model one could deploy, and an infinite value would only hide that). A
feature step (featuretools, tsfresh) has no ONNX form at all, so it is refused before the search.

**Latency limit.** ``max_latency_ms=X`` adds the constraint ``latency - X <= 0`` to every trial
(:meth:`~autodl.study.trial.RunningTrial.set_constraint`; searchers rank feasible trials first),
and applies to the predictor as deployed: the best feasible trial, or the ensemble of feasible
trials, whose one-graph ONNX file is measured and shrunk (:func:`fit_ensemble_to_limit`) until it
meets the limit.

**Selection.** A multi-objective search predicts with one member of its Pareto front, chosen by
a rule (:func:`parse_select`, e.g. ``"accuracy, latency<=1ms"``: the constraints first, then the
best value of the named objective) or a callable taking the front's trials and returning one.
Without one, the front member with the best metric is chosen.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from autodl.errors import ExportError, UserError
from autodl.export.latency import ATTRS, LATENCY_CONSTRAINT, load_latency_fn, split_names  # noqa: F401 (names of this module too)

#: objectives a tabular search takes besides its metric (``params`` is for networks only)
TABULAR_OBJECTIVES = ("latency", "size")
#: the name that stands for the search metric in ``objectives``
METRIC_ALIAS = "metric"
#: ``spec.latency_fn`` / ``spec.select`` of a Python callable (run.json cannot hold it)
PYTHON_MARK = "python:"


# ------------------------------------------------------------------------------ objectives
def check_objectives(names: list[str] | None, metric: str | None) -> tuple[list[str] | None, str | None]:
    """``(objectives, metric)`` checked: the first objective is the metric (a metric name given
    there becomes the search metric when none is given apart), the others from
    :data:`TABULAR_OBJECTIVES`, each once. The metric's own name is checked when the task is
    known (:func:`autodl.tabular.metrics.get_metric`)."""
    if names is None:
        return None, metric
    first, rest = names[0], names[1:]
    if first in TABULAR_OBJECTIVES or first == "params":
        raise UserError(f"the first objective is the search metric (e.g. accuracy, r2, or 'metric'), "
                        f"then {', '.join(TABULAR_OBJECTIVES)}; got '{first}' first")
    if first != METRIC_ALIAS:
        if metric is None:
            metric = first
        elif first != metric:
            raise UserError(f"the first objective '{first}' is not the search metric '{metric}'; "
                            f"start with '{metric}' or '{METRIC_ALIAS}'")
    for name in rest:
        if name == "params":
            raise UserError("objective 'params' (a network's parameter count) is for --model and --nas searches; "
                            f"a tabular search takes {', '.join(TABULAR_OBJECTIVES)}")
        if name not in TABULAR_OBJECTIVES:
            raise UserError(f"unknown objective '{name}'; after the metric choose from: "
                            f"{', '.join(TABULAR_OBJECTIVES)}")
    if len(set(rest)) != len(rest):
        raise UserError(f"objectives {names} name one twice; give each once")
    return names, metric


def callable_mark(fn: Callable) -> str:
    """What run.json keeps of a Python callable (``latency_fn=`` or ``select=``)."""
    return PYTHON_MARK + getattr(fn, "__name__", type(fn).__name__)


def preload_exporters() -> None:
    """Import what measuring an ONNX file needs in a background thread (once per process)."""
    from autodl.tabular.search import _preload

    for module in ("skl2onnx", "onnxruntime"):
        _preload(module)


@dataclass
class Deployment:
    """What the trials of a search measure on their ONNX file (picklable: it travels with the
    objective to worker processes).

    Args:
        objectives: every objective's name, the metric's first (one name: the metric alone).
        metric_direction: the metric's direction.
        max_latency_ms: the latency limit (a constraint on every trial), or None.
        cache_path: ``latency.json`` of the run folder (None: kept in memory).
        latency_fn: a callable ``bytes -> ms``, or ``"module:function"`` (imported where the trial
            runs), or None to time locally.
        plan: the column plan (the ONNX file's inputs), or None.
    """

    objectives: list[str]
    metric_direction: str
    max_latency_ms: float | None = None
    cache_path: str | None = None
    latency_fn: Any = None
    plan: Any = None
    _memory: Any = field(default=None, repr=False)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled in a worker process, before its first trial: the exporters' imports (seconds
        # on a loaded machine) overlap that trial's training instead of adding to it
        self.__dict__.update(state)
        preload_exporters()

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [self.metric_direction] + ["minimize"] * (len(self.objectives) - 1)

    def _cache(self):
        from autodl.export.latency import LatencyCache

        if self.cache_path is not None:
            return LatencyCache(self.cache_path)
        if self._memory is None:
            self._memory = LatencyCache()
        return self._memory

    def _fn(self) -> Callable[[bytes], float] | None:
        if isinstance(self.latency_fn, str):
            self.latency_fn = load_latency_fn(self.latency_fn)
        return self.latency_fn

    def context(self, extra: str = "") -> str:
        fn = self.latency_fn
        name = fn if isinstance(fn, str) or fn is None else callable_mark(fn)
        return f"fn={name};{extra}"

    def measure(self, model, rows, key: str):
        """The :class:`~autodl.export.latency.Measurement` of ``model`` (rows as the pipelines take
        them), cached under ``key``. ExportError (one line) when the model has no ONNX form."""
        from autodl.export.core import onnx_bytes
        from autodl.tabular.kind import plan_sample

        sample, meta = plan_sample(self.plan, rows.iloc[:64])

        def build():
            try:
                with warnings.catch_warnings():  # converters' deprecation notes are not the user's
                    warnings.simplefilter("ignore", FutureWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return onnx_bytes(model, sample=sample, metadata=meta, check=False), sample
            except ExportError as exc:
                raise ExportError(f"latency and size are measured on the ONNX file, but this pipeline does not "
                                  f"export: {exc}") from None
        return self._cache().measure(key, build, latency_fn=self._fn())

    def evaluate(self, trial, score: float, model, rows) -> float | tuple[float, ...]:
        """The trial's result: ``score`` alone (with the latency constraint set when there is a
        limit) or one value per objective; the measurement goes to the trial's attributes."""
        from autodl.export.latency import config_key

        budget = getattr(trial, "budget", None)
        m = self.measure(model, rows, config_key(trial.config, self.context(f"budget={budget}")))
        for name, value in zip(ATTRS, (m.latency_ms, m.batch64_ms, m.size_bytes, m.load)):
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                trial.set_user_attr(name, round(float(value), 6) if name != "size_bytes" else int(value))
        if self.max_latency_ms is not None:
            trial.set_constraint(LATENCY_CONSTRAINT, float(m.latency_ms) - float(self.max_latency_ms))
        if not self.multi:
            return score
        measured = {"latency": float(m.latency_ms), "size": float(m.size_bytes)}
        return (score, *(measured[n] for n in self.objectives[1:]))


# ------------------------------------------------------------------------------- selection
_TERM = re.compile(r"^([a-z_][a-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*([a-z]*)$")
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}
_SIZE_UNITS = {"": 1, "b": 1, "kb": 2**10, "k": 2**10, "mb": 2**20, "m": 2**20, "gb": 2**30, "g": 2**30}


@dataclass(frozen=True)
class SelectRule:
    """A rule choosing one trial of a front: the ``constraints`` ``(objective, op, value)`` first,
    then the best value of ``goal`` (in its own direction); ties by the metric, then the id."""

    goal: str
    constraints: tuple[tuple[str, str, float], ...]
    text: str

    def choose(self, front: Sequence, objectives: Sequence[str], directions: Sequence[str]):
        index = {n: i for i, n in enumerate(objectives)}
        ok = [t for t in front if all(_holds(t.values[index[n]], op, v) for n, op, v in self.constraints)]
        if not ok:
            parts = []
            for n, _, _ in self.constraints:
                i = index[n]
                best = min(front, key=lambda t: _sign(directions[i]) * t.values[i])
                parts.append(f"best {n} on the front {_show(n, best.values[i])} (trial {best.id})")
            raise UserError(f"no member of the Pareto front ({len(front)} trials) meets --select '{self.text}': "
                            + "; ".join(parts))
        g, m = index[self.goal], 0
        return min(ok, key=lambda t: (_sign(directions[g]) * t.values[g], _sign(directions[m]) * t.values[m], t.id))

    def describe(self) -> str:
        return self.text


def _sign(direction: str) -> float:
    return 1.0 if direction == "minimize" else -1.0


def _holds(x: float, op: str, v: float) -> bool:
    return {"<=": x <= v, "<": x < v, ">=": x >= v, ">": x > v}[op]


def _show(name: str, value: float) -> str:
    return f"{value:.4g} ms" if name == "latency" else f"{int(value)} bytes" if name == "size" else f"{value:.4g}"


def parse_select(text: str, objectives: Sequence[str]) -> SelectRule:
    """``"accuracy, latency<=1ms"`` as a :class:`SelectRule` over ``objectives`` (the metric's name
    first; ``metric`` stands for it). Terms are comma-separated: ``name OP value[unit]`` with OP one
    of ``<= < >= >`` (latency in ms, s or us; size in bytes, KB, MB, GB; the metric plain), and at
    most one bare ``name``, the objective to optimize (default: the metric). One UserError line for
    anything else."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"--select is {text!r}; give e.g. \"{objectives[0]}, latency<=1ms\"")
    names = list(objectives)
    goal, constraints = None, []
    for raw in text.split(","):
        term = raw.strip().lower().replace(" ", "")
        if not term:
            raise UserError(f"--select '{text}' has an empty term; separate terms by single commas")
        match = _TERM.match(term)
        name = (match.group(1) if match else term)
        name = names[0] if name == METRIC_ALIAS else name
        if name not in names:
            if match is None and not re.fullmatch(r"[a-z_][a-z0-9_]*", term):
                raise UserError(f"--select term '{raw.strip()}' is not 'objective' or 'objective<=value' "
                                "(operators <=, <, >=, >)")
            raise UserError(f"--select names '{name}', which is not an objective of this search "
                            f"({', '.join(names)})")
        if match is None:
            if goal is not None:
                raise UserError(f"--select '{text}' names two objectives to optimize ('{goal}' and '{name}'); "
                                "give one, the others as limits such as latency<=1ms")
            goal = name
            continue
        _, op, number, unit = match.groups()
        try:
            value = float(number)
        except ValueError:
            raise UserError(f"--select term '{raw.strip()}': '{number}' is not a number") from None
        units = _LATENCY_UNITS if name == "latency" else _SIZE_UNITS if name == "size" else {"": 1.0}
        if unit not in units:
            raise UserError(f"--select term '{raw.strip()}': unknown unit '{unit}' for {name} "
                            f"(use {', '.join(u for u in units if u) or 'no unit'})")
        constraints.append((name, op, value * units[unit]))
    return SelectRule(goal or names[0], tuple(constraints), text.strip())


def choose_from_front(front: Sequence, objectives: Sequence[str], directions: Sequence[str], select: Any):
    """``(trial, how)``: the front member ``select`` (a :class:`SelectRule`, a callable taking the
    front's trials and returning one of them or its id, or None: the best metric) picks."""
    if not front:
        raise UserError("the search has no Pareto front: no (feasible) trial completed")
    if select is None:
        rule = SelectRule(objectives[0], (), objectives[0])
        return rule.choose(front, objectives, directions), f"the best {objectives[0]} on the front (default)"
    if isinstance(select, SelectRule):
        return select.choose(front, objectives, directions), f"--select '{select.text}'"
    picked = select(list(front))
    ids = {t.id: t for t in front}
    tid = getattr(picked, "id", picked)
    if isinstance(tid, bool) or not isinstance(tid, int) or tid not in ids:
        raise UserError(f"select= returned {picked!r}, but must return one of the front's trials (ids "
                        f"{sorted(ids)}) or its id")
    return ids[tid], f"select={callable_mark(select)[len(PYTHON_MARK):]}"


def front_summary(front: Sequence) -> list[dict[str, Any]]:
    """The front as ``result.json`` keeps it: each trial's id, values and measurement."""
    return [{"trial_id": t.id, "values": list(t.values), "model": t.config.get("model"),
             **{k: t.user_attrs[k] for k in ("batch64_ms",) if k in t.user_attrs}} for t in front]


# ---------------------------------------------------------------------- the deployed model
def no_feasible_message(study, limit: float) -> str:
    """Why no trial is a best trial under ``max_latency_ms=limit`` (one line)."""
    from autodl.study import TrialState

    done = [t for t in study.get_trials([TrialState.COMPLETE]) if "latency_ms" in t.user_attrs]
    if not done:
        return f"no trial completed, so none meets the latency limit of {limit:g} ms"
    fastest = min(done, key=lambda t: (t.user_attrs["latency_ms"], t.id))
    return (f"no trial meets --max-latency-ms {limit:g}: the fastest of {len(done)} complete trials measured "
            f"{fastest.user_attrs['latency_ms']:.4g} ms (trial {fastest.id}, {fastest.config.get('model')}); "
            "raise the limit or search more trials")


#: with a latency limit, single trials tried (best first) when the deployed refit is over it
MAX_SINGLE_TRIES = 3


def deployed_key(members, deployment: Deployment) -> str:
    """The cache key of a predictor made of ``members`` (``[(weight, trial), ...]``) refit on all
    rows (so the limit check and the reported measurement are one measurement)."""
    from autodl.export.latency import config_key

    return config_key({"deployed": [[t.id, round(float(w), 6)] for w, t in members]}, deployment.context("refit-all"))


def fit_to_limit(members, limit: float, *, model_of: Callable, measure: Callable, rechoose: Callable,
                 alternatives: Sequence) -> tuple[list, dict[str, Any]]:
    """Members of a predictor whose ONNX file meets the latency ``limit``.

    ``members``: ``[(weight, trial), ...]`` as chosen; ``model_of(members)``: the predictor fitted
    on all rows; ``measure(members, model)``: its :class:`~autodl.export.latency.Measurement`;
    ``rechoose(trials)``: ensemble selection again over fewer trials; ``alternatives``: the
    feasible trials, best first. While an ensemble is over the limit its slowest member (by its
    trial's measured latency) is dropped and the weights are chosen again over the rest; once one
    model is left, the best feasible trials are tried alone (at most :data:`MAX_SINGLE_TRIES`: a
    trial met the limit with a fold model, its refit on all rows may not). Returns the members
    and ``{"steps": [{"members", "latency_ms"}, ...], "met": bool}``; when nothing meets the
    limit, the best feasible trial alone with ``met`` False."""
    steps: list[dict[str, Any]] = []
    singles: list[int] = []
    while True:
        m = measure(members, model_of(members))
        steps.append({"members": [t.id for _, t in members], "latency_ms": round(float(m.latency_ms), 6)})
        if m.latency_ms <= limit:
            return members, {"steps": steps, "met": True}
        if len(members) > 1:
            slowest = max((t for _, t in members), key=lambda t: (t.user_attrs.get("latency_ms", 0.0), t.id))
            kept = [t for _, t in members if t.id != slowest.id]
            members = rechoose(kept) if len(kept) > 1 else []
            if len(members) > 1:
                continue
        else:
            singles.append(members[0][1].id)
        following = [t for t in alternatives if t.id not in singles]
        if not following or len(singles) >= MAX_SINGLE_TRIES:
            best = alternatives[0]
            return [(1.0, best)], {"steps": steps, "met": False}
        members = [(1.0, following[0])]
