"""``searcher="auto"`` (the default of :class:`~autodl.Study`): one of autodl's searchers, chosen
from what is known when the study is created.

The rule, applied in this order (:func:`choose_searcher`; ``d`` is the number of parameters):

0. **Several objectives** (``n_objectives > 1``, which a :class:`~autodl.Study` with several
   ``directions`` passes): with budgets, :class:`~autodl.searchers.MOASHA` (multi-objective
   ASHA: it promotes by Pareto rank, so the search prunes); without,
   :class:`~autodl.searchers.MOTPE` (the better of autodl's multi-objective searchers at 50-100
   trials in ``benchmarks/multiobjective.py``).
1. **Budgets given** (``max_budget``; ``min_budget`` and ``eta`` optional): a multi-fidelity
   searcher. :class:`~autodl.searchers.BOHB` when the caller supplies at least ``d + 1``
   starting configurations (``n_initial``): they run at the largest budget and BOHB's model of
   that budget proposes from them right away; otherwise :class:`~autodl.searchers.ASHA`, which
   reached random search's best validation accuracy with 3.7x (MLP) and 4.8x (CNN) fewer epochs
   in ``benchmarks/multifidelity.py`` (medians over 5 seeds; BOHB 2.0x and 1.8x). Neither waits
   for a rung to fill (BOHB opens the next bracket meanwhile), so workers stay busy.
2. **A finite space that the trials cover** (``n_trials`` given, every parameter categorical,
   integer or stepped, and at most ``n_trials`` configurations): :class:`~autodl.searchers.GridSearch`,
   which evaluates every configuration once, so the best one is found for certain.
3. **Conditional parameters**: :class:`~autodl.searchers.TPE` (on the design half of the CASH
   problems of ``benchmarks/hpo_suite.py`` TPE has the best mean rank of autodl's searchers,
   3.80, and the GP the worst, 5.10: its one-hot and imputed inactive coordinates model the
   branches poorly).
4. **Many trials** (``n_trials`` given and above :data:`GP_MAX_TRIALS`) or **many parameters**
   (``d`` above :data:`GP_MAX_PARAMS`): TPE. A GP's fit grows with the cube of the number of
   trials (in ``benchmarks/overhead_smbo.py`` about 70 ms per trial at 300 trials in 8
   dimensions, TPE about 3 ms at 1,000). The suite has at most twelve parameters; on its five
   continuous functions in 20 and 30 dimensions (``benchmarks/hpo_auto.py --probe-dims``, 3
   seeds, 60 trials) the GP beat TPE on 9 of 15 (function, seed) pairs at 20 parameters and on 7
   of 15 at 30: no clear winner there, so above 20 the cheaper TPE is chosen.
5. Otherwise (continuous, integer and categorical parameters without conditions):
   :class:`~autodl.searchers.GaussianProcess`, the best of autodl's searchers on the design half
   of the suite's continuous, mixed and NN problems (mean ranks 2.55, 2.82 and 3.70 in the design
   part of ``benchmarks/results/hpo_auto.json``, TPE 3.85, 3.40 and 4.80).

The choice is made when the searcher is built, from ``Study(..., searcher_params={...})``:
``max_budget``/``min_budget``/``eta``, ``n_trials`` and ``n_initial``. A study does not know
``n_trials`` when it is created, so without it rules 2 and 4 (trials) do not apply. The worker
count does not enter, by measurement: the GP fantasizes pending trials, TPE counts them as bad
results, and ASHA and BOHB never wait for a rung, so every choice works with parallel workers. On
two continuous problems of ``benchmarks/hpo_parallel.py`` TPE overtook the GP from 4 workers on,
but on eight other continuous and mixed problems of the suite
(``benchmarks/results/hpo_parallel_workers.json``, 5 seeds, 60 trials) the GP kept a better mean
rank between the two at 1, 4 and 8 workers (1.27, 1.24, 1.48 against TPE's 1.73, 1.76, 1.52). Starting
configurations given to :meth:`Study.enqueue <autodl.Study.enqueue>` take the place of the chosen
searcher's random first trials whatever it is; ``n_initial`` says how many there will be (rule
1). The rule was designed on half of ``benchmarks/hpo_suite.py`` and is checked on the other
half by ``benchmarks/hpo_auto.py``.

Example:
    >>> searcher = AutoSearcher(Space({"x": Float(0, 1), "act": Categorical(["relu", "tanh"])}))
    >>> searcher.choice.name, searcher.choice.reason
    ('gp', 'no conditional parameters, 2 <= 20 parameters: Gaussian-process BO')
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from autodl.errors import UserError
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Categorical, Config, Float, Int, Space

#: above this many planned trials the GP's cost per ask outgrows its benefit (rule 4)
GP_MAX_TRIALS = 300
#: above this many parameters TPE is chosen instead of the GP (rule 4)
GP_MAX_PARAMS = 20


@dataclass(frozen=True)
class Choice:
    """What :func:`choose_searcher` picked: a registered searcher name, its arguments and why."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""


def _n_values(param: Any) -> int | None:
    """Number of values of a discrete parameter; None for a continuous one."""
    if isinstance(param, Categorical):
        return len(param.choices)
    if isinstance(param, Int):
        return param.high - param.low + 1 if param.log else param._n_steps + 1  # noqa: SLF001
    if isinstance(param, Float) and param.step is not None:
        return param._n_steps + 1  # noqa: SLF001
    return None


def finite_size(space: Space, limit: int) -> int | None:
    """The number of configurations of ``space`` if every parameter is discrete and there are
    at most ``limit`` of them (inactive conditional parameters counted once); else None."""
    counts = [_n_values(space.params[n]) for n in space.names]
    if any(c is None or c > limit for c in counts):
        return None
    if math.prod(counts) <= limit and not space.is_conditional:
        return math.prod(counts)
    # conditions make the product an upper bound: enumerate, stopping past the limit
    n = sum(1 for _ in itertools.islice(space.grid(limit), limit + 1))
    return n if n <= limit else None


def choose_searcher(space: Space, n_trials: int | None = None, n_initial: int = 0,
                    min_budget: float | None = None, max_budget: float | None = None,
                    eta: float | None = None, n_objectives: int = 1) -> Choice:
    """The searcher the documented rule picks (see the module docstring).

    Args:
        space: the search space.
        n_trials: trials the search is planned to run, starting configurations included (None:
            unknown).
        n_initial: starting configurations the caller supplies (``Study.enqueue``).
        min_budget, max_budget, eta: the fidelity range; giving ``max_budget`` selects a
            multi-fidelity searcher.
        n_objectives: how many values the objective returns (rule 0).

    Example:
        >>> choose_searcher(Space({"lr": Float(1e-4, 1e-1, log=True)})).name
        'gp'
    """
    d = len(space)
    fidelity = {k: v for k, v in (("min_budget", min_budget), ("max_budget", max_budget),
                                  ("eta", eta)) if v is not None}
    if n_objectives > 1:
        if max_budget is not None:
            return Choice("moasha", fidelity, f"{n_objectives} objectives and budgets: "
                          "multi-objective ASHA (promotes by Pareto rank)")
        return Choice("motpe", {}, f"{n_objectives} objectives: multi-objective TPE")
    if max_budget is not None:
        if n_initial >= d + 1:
            return Choice("bohb", fidelity, f"budgets and {n_initial} starting configurations "
                          f"(>= {d + 1}, enough for BOHB's model of the largest budget)")
        return Choice("asha", fidelity, "budgets given: asynchronous successive halving")
    if n_trials is not None:
        size = finite_size(space, n_trials)
        if size is not None:
            return Choice("grid", {"points": n_trials}, f"finite space of {size} configurations "
                          f"<= {n_trials} trials: every one is evaluated")
    if space.is_conditional:
        return Choice("tpe", {}, "conditional parameters: TPE")
    if n_trials is not None and n_trials > GP_MAX_TRIALS:
        return Choice("tpe", {}, f"{n_trials} trials > {GP_MAX_TRIALS}: TPE (a GP's asks grow "
                      "too costly)")
    if d > GP_MAX_PARAMS:
        return Choice("tpe", {}, f"{d} parameters > {GP_MAX_PARAMS}: TPE")
    return Choice("gp", {}, f"no conditional parameters, {d} <= {GP_MAX_PARAMS} parameters: "
                  "Gaussian-process BO")


def _check_count(value: Any, what: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"`{what}` is {value!r}, but must be an integer >= {low}")
    return int(value)


class AutoSearcher(Searcher):
    """The searcher :func:`choose_searcher` picks, built with this seed; every protocol call is
    passed on to it (:attr:`chosen`), so ``AutoSearcher(space, seed=s)`` proposes exactly what
    the chosen searcher built with ``seed=s`` proposes.

    Args:
        space: the search space.
        seed: seed of the chosen searcher.
        n_trials: trials the search is planned to run, starting configurations included
            (None: unknown); enables rules 2 and 4.
        n_initial: starting configurations the caller will supply with ``Study.enqueue``.
        min_budget, max_budget, eta: a fidelity range; ``max_budget`` selects a multi-fidelity
            searcher (rule 1).
        n_objectives: values the objective returns (a study with several directions passes
            it; rule 0).

    Example:
        >>> study = Study(space)                     # searcher="auto"
        >>> study.searcher.choice.name               # 'gp', 'tpe', 'asha', ...
    """

    name = "auto"

    def __init__(self, space: Space, seed: int | None = None, n_trials: int | None = None,
                 n_initial: int = 0, min_budget: float | None = None, max_budget: float | None = None,
                 eta: float | None = None, n_objectives: int = 1):
        super().__init__(space, seed)
        self.n_trials = _check_count(n_trials, "n_trials", 1)
        self.n_initial = _check_count(n_initial, "n_initial", 0)
        self.n_objectives = _check_count(n_objectives, "n_objectives", 1)
        if max_budget is None and (min_budget is not None or eta is not None):
            raise UserError("`min_budget` and `eta` need `max_budget` (the largest budget) too")
        self.min_budget, self.max_budget, self.eta = min_budget, max_budget, eta
        self.choice = choose_searcher(space, self.n_trials, self.n_initial, min_budget, max_budget, eta,
                                      self.n_objectives)
        from autodl.searchers import SEARCHERS

        #: the searcher doing the work
        self.chosen: Searcher = SEARCHERS[self.choice.name](space, seed=seed, **self.choice.params)
        # what the study asks of a searcher's class is a property of the chosen one here
        for attr in ("uses_budget", "multi_objective", "handles_constraints"):
            setattr(self, attr, getattr(self.chosen, attr, False))
        self.max_budget = self.chosen.max_budget

    def get_params(self) -> dict[str, Any]:
        params = {"n_trials": self.n_trials, "n_initial": self.n_initial, "min_budget": self.min_budget,
                  "max_budget": self.max_budget, "eta": self.eta}
        if self.n_objectives > 1:
            params["n_objectives"] = self.n_objectives
        return params

    # ------------------------------------------------------------------ protocol, passed on
    def ask(self) -> Trial:
        return self._track(self.chosen.ask())

    def tell(self, trial: Trial, value: float | Sequence[float] | None,
             constraints: Sequence[float] | None = None) -> None:
        self.chosen.tell(trial, value, constraints)
        super().tell(trial, value, constraints)

    def report(self, trial: Trial, value: float | Sequence[float], step: int) -> None:
        self.chosen.report(trial, value, step)
        super().report(trial, value, step)

    def reseed(self, entropy: int | Sequence[int]) -> None:
        super().reseed(entropy)
        self.chosen.reseed(entropy)

    def adopt(self, config: Config, budget: float | None = None,
              info: Mapping[str, Any] | None = None) -> Trial:
        return self._track(self.chosen.adopt(config, budget, info))

    def discard(self, trial: Trial) -> None:
        self.chosen.discard(trial)
        self.pending.pop(trial.id, None)
        self.intermediate.pop(trial.id, None)

    def worth_keeping(self, trial: Trial, value: float | None) -> bool:
        return self.chosen.worth_keeping(trial, value)

    def should_prune(self, trial: Trial) -> bool:
        return self.chosen.should_prune(trial)

    def best(self) -> Observation | None:
        return self.chosen.best()

    def _track(self, trial: Trial) -> Trial:
        """Keep this searcher's view (pending trials, ids) the same as the chosen one's."""
        self.pending[trial.id] = trial
        self._next_id = max(self._next_id, trial.id + 1)
        return trial

    def __repr__(self) -> str:
        return f"{super().__repr__()} -> {self.chosen!r}"


__all__ = ["AutoSearcher", "Choice", "choose_searcher", "finite_size", "GP_MAX_TRIALS", "GP_MAX_PARAMS"]
