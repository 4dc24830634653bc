"""Multi-fidelity searchers: successive halving, Hyperband, ASHA and BOHB.

They speak the ordinary ask/tell protocol; every trial carries a ``budget`` (epochs,
iterations, ...) and ``info`` with its place in the schedule::

    info = {"bracket": b, "s": s, "rung": k, "slot": j, "config_key": "3f2a..."}

``config_key`` is a stable hash of the config: a trial promoted to a higher rung has the same
key as its lower-rung run, so an objective can resume training from that run's checkpoint and
train only the extra budget (see :mod:`autodl.nn`). ``bracket``/``rung``/``slot`` let
:meth:`restore` rebuild the schedule from stored trials, so a killed run continues without
redoing completed rungs (trials that were running are retried by the study with their info).

**Synchronous searchers** (:class:`SuccessiveHalving`, :class:`Hyperband`, :class:`BOHB`):
a rung is promoted only when all its trials have results. While a rung waits, :meth:`ask`
does not block: it opens the *next* bracket (for Hyperband the next ``s`` in the cycle
``s_max, ..., 0, s_max, ...``; for successive halving another copy of its bracket) and
returns one of its trials. Told sequentially (ask, tell, ask, tell...) they run exactly the
schedule of Li et al. (2018); with ``k`` parallel workers up to about ``k`` brackets are open.
They never exhaust: after the last bracket the cycle starts again with new configs.

**ASHA** (Li et al. 2020): on each ask, the best not-yet-promoted config among the top
``1/eta`` of the highest rung that has one is promoted; otherwise a new config starts at the
bottom rung. No worker ever idles.

**Define-by-run** (``mode="prune"``, SH and ASHA): every ask is a new config with
``budget = max_budget``; the objective reports ``trial.report(value, step)`` with ``step`` the
resource used so far (epochs done, 1-based) and asks ``trial.should_prune()``, which applies
the successive-halving/ASHA rule at steps ``min_budget * eta ** k`` (see
:class:`~autodl.searchers.brackets.RungPruner`). In the default ``mode="promote"``
``should_prune`` is always False: selection happens through promotions.

**Best result**: :meth:`best` is the best value at the largest budget that has a success
(lower-budget values are not comparable).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from autodl.searchers.base import Observation, Searcher, Trial
from autodl.searchers.brackets import (AshaRungs, BracketSpec, RungPruner, SyncBracket, bracket_spec,
                                       config_hash, max_bracket, rung_budgets, same_budget,
                                       validate_fidelity)
from autodl.space import Config, Space

_MODES = ("promote", "prune")


class _MultiFidelity(Searcher):
    """Shared parts: validation, the inner sampler, define-by-run pruning, best()."""

    uses_budget = True

    def __init__(self, space: Space, seed: int | None, min_budget: float, max_budget: float,
                 eta: float, searcher: "None | str | Searcher", mode: str = "promote"):
        super().__init__(space, seed)
        self.min_budget, self.max_budget, self.eta = validate_fidelity(min_budget, max_budget, eta)
        if mode not in _MODES:
            raise ValueError(f"`mode` is {mode!r}, but must be 'promote' or 'prune'")
        self.mode = mode
        self.s_max = max_bracket(self.min_budget, self.max_budget, self.eta)
        self._inner = self._make_inner(searcher)
        self._inner_trials: dict[tuple[int, int], Trial] = {}
        self._pruner = RungPruner(self.min_budget, self.max_budget, self.eta)

    def _make_inner(self, searcher: "None | str | Searcher") -> Searcher | None:
        if searcher is None or searcher == "random":
            return None
        if isinstance(searcher, Searcher):
            if searcher.space is not self.space and searcher.space != self.space:
                raise ValueError("`searcher` works on another space than this searcher")
            return searcher
        if isinstance(searcher, str):
            from autodl.searchers import make_searcher

            seed = None if self.seed is None else int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0])
            inner = make_searcher(searcher, self.space, seed=seed)
            if inner.uses_budget:
                raise ValueError(f"`searcher` is {searcher!r}, but must be a full-budget searcher")
            return inner
        raise ValueError(f"`searcher` is {searcher!r}, but must be None, 'random', a name or a Searcher")

    def reseed(self, entropy: int | Sequence[int]) -> None:
        """A new stream for this searcher and its inner searcher (from ``entropy + [1]``)."""
        super().reseed(entropy)
        if self._inner is not None:
            self._inner.reseed([*self.entropy, 1])

    def _fidelity_params(self) -> dict[str, Any]:
        inner = None if self._inner is None else self._inner.name
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta,
                "searcher": inner}

    # ------------------------------------------------------------------ sampling
    def _sample(self, key: tuple[int, int], budget: float) -> Config:
        """A new config for slot ``key`` that will first run with ``budget``."""
        if self._inner is None:
            return self.space.sample(self.rng)
        t = self._inner.ask()
        self._inner_trials[key] = t
        return dict(t.config)

    def _tell_inner(self, key: tuple[int, int], config: Config, value: float | None) -> None:
        """The inner searcher learns each of its configs' first-rung result."""
        if self._inner is None:
            return
        t = self._inner_trials.pop(key, None)
        self._inner.tell(t if t is not None else self._inner.adopt(config), value)

    def _discard_inner(self, key: tuple[int, int]) -> None:
        """The inner searcher forgets the config it proposed for ``key`` (it will not run)."""
        t = self._inner_trials.pop(key, None)
        if t is not None and self._inner is not None:
            self._inner.discard(t)

    def _info(self, bracket: int, s: int, rung: int, slot: int, config: Config) -> dict[str, Any]:
        return {"bracket": bracket, "s": s, "rung": rung, "slot": slot, "config_key": config_hash(config)}

    @staticmethod
    def _slot_info(trial: Trial) -> tuple[int, int, int] | None:
        info = trial.info or {}
        try:
            b, k, j = info["bracket"], info["rung"], info["slot"]
        except (KeyError, TypeError):
            return None
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (b, k, j)):
            return None
        if b < 0 or k < 0 or j < 0:
            return None
        return int(b), int(k), int(j)

    def _new_config_trial(self) -> Trial:
        """Define-by-run mode: a fresh config with the full budget."""
        config = self._sample((-1, self._next_id), self.max_budget)
        return self._new_trial(config, self.max_budget, config_key=config_hash(config))

    def _observe_prune_mode(self, obs: Observation) -> None:
        if self._inner is not None:
            self._tell_inner((-1, obs.trial.id), obs.trial.config, obs.value)
        self._pruner.passed.pop(obs.trial.id, None)

    def _discard_prune_mode(self, trial: Trial) -> None:
        self._discard_inner((-1, trial.id))
        self._pruner.passed.pop(trial.id, None)

    # ------------------------------------------------------------------ define-by-run
    def should_prune(self, trial: Trial) -> bool:
        """The successive-halving rule on ``trial``'s intermediate values (``mode="prune"``)."""
        if self.mode != "prune":
            return False
        return self._pruner.should_prune(trial.id, self.intermediate.get(trial.id, {}))

    def worth_keeping(self, trial: Trial, value: float | None) -> bool:
        """False when the promotion rule can no longer continue ``trial`` (see
        :meth:`_promotable`) and it is not the best so far at the top rung; a failure is never
        promoted. Define-by-run mode keeps everything (the trial runs to the end anyway)."""
        if self.mode == "prune":
            return True
        return value is not None and self._promotable(trial, value)

    def _promotable(self, trial: Trial, value: float) -> bool:
        """Whether a success with ``value`` may still be promoted (or be the best at the top)."""
        return True

    def _could_be_best(self, budget: float | None, value: float) -> bool:
        """Whether ``value`` at ``budget`` is at least as good as every success at that budget
        so far (a top-rung trial is never continued; only the best one's state is wanted, and
        on a tie the study may pick either)."""
        return not any(same_budget(o.trial.budget, budget) and o.value < value for o in self.successes)

    def best(self) -> Observation | None:
        ok = [o for o in self.successes if o.trial.budget is not None]
        if not ok:
            return super().best()
        top = max(o.trial.budget for o in ok)
        return min((o for o in ok if same_budget(o.trial.budget, top)), key=lambda o: o.value)


class Hyperband(_MultiFidelity):
    """Hyperband (Li et al. 2018): successive-halving brackets ``s = s_max, ..., 0`` in turn.

    Args:
        space: the search space.
        min_budget: smallest budget a config runs with (``r``), > 0.
        max_budget: largest budget (``R``), >= ``min_budget``.
        eta: halving rate (> 1): each rung keeps the best ``1/eta``.
        searcher: where new configs come from: None/``"random"`` (uniform), the name of a
            full-budget searcher or a :class:`Searcher` instance on the same space (it is told
            each of its configs' first-rung result).
        seed: seed of the generator.

    Example:
        >>> hb = Hyperband(space, min_budget=1, max_budget=27, eta=3, seed=0)
        >>> t = hb.ask(); hb.tell(t, train(t.config, epochs=t.budget))
    """

    name = "hyperband"

    def __init__(self, space: Space, min_budget: float = 1.0, max_budget: float = 27.0, eta: float = 3.0,
                 searcher: "None | str | Searcher" = None, seed: int | None = None):
        super().__init__(space, seed, min_budget, max_budget, eta, searcher)
        self.specs: list[BracketSpec] = self._bracket_specs()
        self.brackets: dict[int, SyncBracket] = {}
        self._active: list[int] = []
        self._n_brackets = 0

    def _bracket_specs(self) -> list[BracketSpec]:
        return [bracket_spec(s, self.min_budget, self.max_budget, self.eta) for s in range(self.s_max, -1, -1)]

    def get_params(self) -> dict[str, Any]:
        return self._fidelity_params()

    def spec_of(self, bracket: int) -> BracketSpec:
        """The schedule of bracket number ``bracket`` (they cycle through :attr:`specs`)."""
        return self.specs[bracket % len(self.specs)]

    def _bracket(self, index: int) -> SyncBracket:
        br = self.brackets.get(index)
        if br is None:
            br = SyncBracket(index, self.spec_of(index))
            self.brackets[index] = br
            self._active.append(index)
            self._active.sort()
            self._n_brackets = max(self._n_brackets, index + 1)
        return br

    def _known_slot(self, trial: Trial) -> tuple[SyncBracket, int, int] | None:
        """The bracket slot ``trial`` belongs to, if its info and budget fit this schedule."""
        where = self._slot_info(trial)
        if where is None:
            return None
        b, k, j = where
        spec = self.spec_of(b)
        if k >= len(spec.budgets) or not same_budget(trial.budget, spec.budgets[k]):
            return None
        return self._bracket(b), k, j

    def _sync_pending(self) -> None:
        """Pending trials this searcher did not ask (the study's retries of abandoned trials)
        occupy their slot, so the slot is not asked twice."""
        for t in self.pending.values():
            found = self._known_slot(t)
            if found is not None:
                br, k, j = found
                if not br.is_running(k, j) and j not in br.results[k]:
                    br.adopt(k, j, t.config)

    def ask(self) -> Trial:
        if self.pending:
            self._sync_pending()
        for b in list(self._active):
            br = self.brackets[b]
            if br.done:
                self._active.remove(b)
                continue
            job = br.next_job()
            if job is not None:
                return self._issue(br, *job)
        while True:  # every open bracket waits: open the next one
            br = self._bracket(self._n_brackets)
            job = br.next_job()
            if job is not None:
                return self._issue(br, *job)

    def _issue(self, br: SyncBracket, rung: int, slot: int | None) -> Trial:
        budget = br.budget(rung)
        if slot is None:
            key = (br.index, len(br.configs))
            config = self._sample_for(br, key, budget)
            slot = br.add_config(config)
            if key[1] != slot and key in self._inner_trials:
                self._inner_trials[(br.index, slot)] = self._inner_trials.pop(key)
        else:
            br.start(rung, slot)
            config = br.configs[slot]
        return self._new_trial(dict(config), budget, **self._info(br.index, br.spec.s, rung, slot, config))

    def _sample_for(self, br: SyncBracket, key: tuple[int, int], budget: float) -> Config:
        return self._sample(key, budget)

    def _promotable(self, trial: Trial, value: float) -> bool:
        """No once its rung already holds as many strictly better results as the rung
        promotes (or it is the bracket's last rung and not the best so far at that budget)."""
        found = self._known_slot(trial)
        if found is None:
            return True
        br, k, j = found
        if k + 1 >= len(br.spec.sizes):
            return self._could_be_best(trial.budget, value)
        better = sum(1 for slot, v in br.results[k].items() if slot != j and v is not None and v < value)
        return better < br.spec.sizes[k + 1]

    def _observe(self, obs: Observation) -> None:
        found = self._known_slot(obs.trial)
        if found is None:
            return
        br, k, j = found
        if j not in br.configs or k > 0:
            br.adopt(k, j, obs.trial.config)
        if k == 0:
            self._tell_inner((br.index, j), obs.trial.config, obs.value)
        br.record(k, j, obs.value)

    def _discard(self, trial: Trial) -> None:
        """The slot is run again by a later ask (rung 0: with the same config)."""
        found = self._known_slot(trial)
        if found is not None:
            br, k, j = found
            br.release(k, j)


class SuccessiveHalving(Hyperband):
    """Successive halving (Jamieson & Talwalkar 2016) as Hyperband's most aggressive bracket.

    Each bracket samples ``ceil(eta ** s_max)`` configs at ``min_budget`` and keeps the best
    ``1/eta`` at each rung up to ``max_budget``. When a rung waits for results, :meth:`ask`
    starts another copy of the bracket (new configs). ``mode="prune"`` turns it into a
    define-by-run pruner (see the module docstring).

    Args:
        space, min_budget, max_budget, eta, searcher, seed: as for :class:`Hyperband`.
        mode: ``"promote"`` (budgets per rung; promoted trials resume) or ``"prune"``.
    """

    name = "sh"

    def __init__(self, space: Space, min_budget: float = 1.0, max_budget: float = 27.0, eta: float = 3.0,
                 searcher: "None | str | Searcher" = None, mode: str = "promote", seed: int | None = None):
        super().__init__(space, min_budget, max_budget, eta, searcher, seed)
        if mode not in _MODES:
            raise ValueError(f"`mode` is {mode!r}, but must be 'promote' or 'prune'")
        self.mode = mode

    def _bracket_specs(self) -> list[BracketSpec]:
        return [bracket_spec(self.s_max, self.min_budget, self.max_budget, self.eta)]

    def get_params(self) -> dict[str, Any]:
        return {**self._fidelity_params(), "mode": self.mode}

    def ask(self) -> Trial:
        if self.mode == "prune":
            return self._new_config_trial()
        return super().ask()

    def _observe(self, obs: Observation) -> None:
        if self.mode == "prune":
            self._observe_prune_mode(obs)
        else:
            super()._observe(obs)

    def _discard(self, trial: Trial) -> None:
        if self.mode == "prune":
            self._discard_prune_mode(trial)
        else:
            super()._discard(trial)


class ASHA(_MultiFidelity):
    """Asynchronous successive halving (Li et al. 2020).

    Rungs run at budgets ``min_budget * eta ** k`` up to ``max_budget``. Each :meth:`ask`
    promotes the best config not yet promoted among the top ``1/eta`` of the highest rung that
    has one; otherwise it starts a new config at the bottom rung. Never waits, never exhausts.

    Args:
        space, min_budget, max_budget, eta, searcher, seed: as for :class:`Hyperband`.
        mode: ``"promote"`` or ``"prune"`` (define-by-run; see the module docstring).
    """

    name = "asha"

    def __init__(self, space: Space, min_budget: float = 1.0, max_budget: float = 27.0, eta: float = 3.0,
                 searcher: "None | str | Searcher" = None, mode: str = "promote", seed: int | None = None):
        super().__init__(space, seed, min_budget, max_budget, eta, searcher, mode)
        self.budgets = rung_budgets(self.min_budget, self.max_budget, self.eta)
        self.rungs = AshaRungs(self.budgets, self.eta)

    def get_params(self) -> dict[str, Any]:
        return {**self._fidelity_params(), "mode": self.mode}

    def _known_slot(self, trial: Trial) -> tuple[int, int] | None:
        where = self._slot_info(trial)
        if where is None:
            return None
        _, k, j = where
        if k >= len(self.budgets) or not same_budget(trial.budget, self.budgets[k]):
            return None
        if j not in self.rungs.configs:
            self.rungs.configs[j] = dict(trial.config)
        return k, j

    def ask(self) -> Trial:
        if self.mode == "prune":
            return self._new_config_trial()
        for t in self.pending.values():  # the study's retries hold their promotion
            found = self._known_slot(t)
            if found is not None:
                self.rungs.mark_promoted(*found)
        found = self.rungs.promotable()
        if found is not None:
            rung, slot = found
            self.rungs.mark_promoted(rung, slot)
        else:
            rung, slot = 0, len(self.rungs.configs)
            while slot in self.rungs.configs:
                slot += 1
            self.rungs.configs[slot] = self._sample((0, slot), self.budgets[0])
        config = self.rungs.configs[slot]
        return self._new_trial(dict(config), self.budgets[rung], **self._info(0, self.s_max, rung, slot, config))

    def _promotable(self, trial: Trial, value: float) -> bool:
        """A lower rung keeps growing, so any success there may be promoted later; only the top
        rung's results are never continued (kept if best so far)."""
        found = self._known_slot(trial)
        if found is None or found[0] + 1 < len(self.budgets):
            return True
        return self._could_be_best(trial.budget, value)

    def _observe(self, obs: Observation) -> None:
        if self.mode == "prune":
            self._observe_prune_mode(obs)
            return
        found = self._known_slot(obs.trial)
        if found is None:
            return
        k, j = found
        if k == 0:
            self._tell_inner((0, j), obs.trial.config, obs.value)
        self.rungs.record(k, j, obs.value)

    def _discard(self, trial: Trial) -> None:
        """A promotion is undone (the config may be promoted again); a new config's slot stays
        reserved for a retry of it, and the inner searcher forgets it."""
        if self.mode == "prune":
            self._discard_prune_mode(trial)
            return
        found = self._known_slot(trial)
        if found is None:
            return
        k, j = found
        if k == 0:
            self._discard_inner((0, j))
        else:
            self.rungs.unpromote(k, j)


class BOHB(Hyperband):
    """BOHB (Falkner et al. 2018): Hyperband whose new configs come from TPE models.

    One multivariate :class:`~autodl.searchers.tpe.TPE` per budget is fed every result at that
    budget. A new config is drawn uniformly with probability ``random_fraction``; otherwise
    from the model of the largest budget with at least ``min_points_in_model`` successful
    results (default: number of parameters + 1, as in the paper); uniformly while no budget has
    that many. The model treats configs still in flight as bad (constant liar), so parallel
    asks spread out.

    Args:
        space, min_budget, max_budget, eta, seed: as for :class:`Hyperband`.
        random_fraction: share of uniformly random configs (paper: 1/3).
        min_points_in_model: results a budget needs before its model is used.
        gamma: fraction of results forming TPE's good group (paper: 0.15).
        n_candidates: candidates TPE scores per proposal (paper: 64).
    """

    name = "bohb"

    def __init__(self, space: Space, min_budget: float = 1.0, max_budget: float = 27.0, eta: float = 3.0,
                 random_fraction: float = 1 / 3, min_points_in_model: int | None = None,
                 gamma: float = 0.15, n_candidates: int = 64, seed: int | None = None):
        super().__init__(space, min_budget, max_budget, eta, None, seed)
        if isinstance(random_fraction, bool) or not 0.0 <= float(random_fraction) <= 1.0:
            raise ValueError(f"`random_fraction` is {random_fraction!r}, but must be in [0, 1]")
        if min_points_in_model is not None and (not isinstance(min_points_in_model, int)
                                                or min_points_in_model < 1):
            raise ValueError(f"`min_points_in_model` is {min_points_in_model!r}, but must be an integer >= 1")
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"`gamma` is {gamma!r}, but must be in (0, 1)")
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"`n_candidates` is {n_candidates!r}, but must be an integer >= 1")
        self.random_fraction = float(random_fraction)
        self.min_points_in_model = min_points_in_model
        self.n_min = min_points_in_model if min_points_in_model is not None else len(space) + 1
        self.gamma = float(gamma)
        self.n_candidates = n_candidates
        self._models: dict[float, Any] = {}
        self._n_ok: dict[float, int] = {}
        self._in_flight: dict[tuple[int, int], tuple[float, Trial]] = {}

    def get_params(self) -> dict[str, Any]:
        p = self._fidelity_params()
        del p["searcher"]
        return {**p, "random_fraction": self.random_fraction, "min_points_in_model": self.min_points_in_model,
                "gamma": self.gamma, "n_candidates": self.n_candidates}

    def _model(self, budget: float):
        from autodl.searchers.tpe import TPE

        for b, m in self._models.items():
            if same_budget(b, budget):
                return b, m
        idx = len(self._models)
        # from the current entropy: a model made after a reseed does not repeat the first run's
        seed = None if self.entropy is None else int(
            np.random.SeedSequence([*self.entropy, 2, idx]).generate_state(1)[0])
        model = TPE(self.space, seed=seed, n_startup=1, gamma=self.gamma, n_candidates=self.n_candidates)
        self._models[budget] = model
        self._n_ok[budget] = 0
        return budget, model

    def reseed(self, entropy: int | Sequence[int]) -> None:
        """A new stream for this searcher and each budget's model (from ``entropy + [2, i]``)."""
        super().reseed(entropy)
        for idx, model in enumerate(self._models.values()):
            model.reseed([*self.entropy, 2, idx])

    def model_budget(self) -> float | None:
        """The largest budget whose model has enough results, or None."""
        ready = [b for b, n in self._n_ok.items() if n >= self.n_min]
        return max(ready) if ready else None

    def _sample_for(self, br: SyncBracket, key: tuple[int, int], budget: float) -> Config:
        use_random = self.rng.random() < self.random_fraction
        b = self.model_budget()
        if use_random or b is None:
            return self.space.sample(self.rng)
        _, model = self._model(b)
        t = model.ask()  # stays pending in the model (constant liar) until the slot's result
        self._in_flight[key] = (b, t)
        return dict(t.config)

    def _observe(self, obs: Observation) -> None:
        found = self._known_slot(obs.trial)
        if found is not None:
            br, k, j = found
            flight = self._in_flight.pop((br.index, j), None) if k == 0 else None
            if flight is not None:  # its proposal is told below as the budget's result
                self._model(flight[0])[1].discard(flight[1])
        if obs.trial.budget is not None and math.isfinite(obs.trial.budget):
            b, model = self._model(float(obs.trial.budget))
            model.tell(model.adopt(obs.trial.config, b), obs.value)
            if obs.ok:
                self._n_ok[b] += 1
        super()._observe(obs)


__all__ = ["SuccessiveHalving", "Hyperband", "ASHA", "BOHB"]
