"""Post-hoc ensembles of a tabular search's trials: greedy ensemble selection with replacement
(Caruana, Niculescu-Mizil, Crew & Ksikes 2004, "Ensemble selection from libraries of models";
the weighted ensemble of auto-sklearn and AutoGluon).

Every trial at the full budget keeps its *validation predictions*: out-of-fold class
probabilities (classification) or values (regression) for every training row, one fold model
per row (:func:`save_predictions`). Selection then needs no training:

1. start from the best single trial;
2. repeatedly add (with replacement) the trial whose addition makes the averaged predictions
   score best on the search metric, until :data:`MAX_ROUNDS` rounds have been made;
3. keep the round with the best score (ties: the earlier, smaller ensemble). A trial added k
   times out of n rounds gets weight k/n.

Scoring goes through the metric's own scikit-learn scorer (or the user's function) on the
predictions (:class:`Given`), so the ensemble optimizes exactly the metric the trials were
ranked by, weights included. :class:`EnsembleModel` averages the members' outputs with the
weights. The members are fitted again on all training rows after the search; with ``refit=False``
a member is the average of the fold models its own validation fitted (kept by the trials,
:func:`save_fold_models`), so nothing is fitted after the search (the choice is measured in
``benchmarks/ensemble_refit.py``; see :data:`autodl.tabular.search.FOLD_MODELS_BY_DEFAULT`). By
default, under a time budget, the trials keep their fold models too, and a member whose refit
does not fit in the time left after the search predicts with them
(:func:`autodl.tabular.search.keeps_fold_models`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

#: greedy rounds (ensemble size with repetitions); the best round is kept
MAX_ROUNDS = 25
#: trials (best first) whose predictions take part in the selection
MAX_CANDIDATES = 30
#: the folder of a run with each trial's validation predictions (``<trial id>.npy``)
PREDICTIONS_DIR = "predictions"


class _GivenClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, proba=None, classes=None):
        self.proba, self.classes = proba, classes
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X):
        return self.proba

    def predict(self, X):
        return self.classes_[np.argmax(self.proba, axis=1)]


class _GivenRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, values=None):
        self.values = values

    def predict(self, X):
        return self.values


def Given(values: np.ndarray, classes: Sequence | None = None):
    """Predictions posing as a fitted model, so scikit-learn scorers (and function metrics
    through ``make_scorer``) score them: class probabilities with their ``classes``, or values."""
    if classes is None:
        return _GivenRegressor(values)
    return _GivenClassifier(values, list(classes))


def score_predictions(values: np.ndarray, y, metric, classes=None, sample_weight=None) -> float:
    """The metric (as reported) of predictions ``values`` for targets ``y``."""
    scorer = metric.scorer(y)
    return float(metric.from_scorer(scorer(Given(values, classes), None, y, sample_weight=sample_weight)))


def select(predictions: Sequence[np.ndarray], y, metric, *, classes=None, sample_weight=None,
           rounds: int = MAX_ROUNDS, max_seconds: float | None = None) -> tuple[np.ndarray, list[float]]:
    """Greedy ensemble selection with replacement (see the module doc).

    Args:
        predictions: one array per candidate, best candidate first: ``[n_rows, n_classes]``
            probabilities or ``[n_rows]`` values, all for the same rows ``y``.
        metric: a :class:`~autodl.tabular.metrics.Metric`.
        rounds: greedy rounds; the best round is kept.
        max_seconds: stop adding rounds after this long (the best round so far is kept).

    Returns:
        ``(weights, scores)``: one weight per candidate (summing to 1) and the metric after
        every round (``scores[0]`` is the best single candidate's).
    """
    preds = [np.asarray(p, dtype=np.float64) for p in predictions]
    if not preds:
        raise ValueError("no predictions to select from")
    sign = 1.0 if metric.direction == "maximize" else -1.0
    if classes is not None and metric.func is None:  # built-in metrics: integer codes score the same, faster
        y = np.searchsorted(np.asarray(classes), np.asarray(y))
        classes = np.arange(len(classes))
    stop = None if max_seconds is None else time.monotonic() + max_seconds

    def score(values) -> float:
        return score_predictions(values, y, metric, classes, sample_weight)

    singles = [score(p) for p in preds]
    first = int(np.argmax([sign * s for s in singles]))
    counts = np.zeros(len(preds))
    counts[first] = 1
    total = preds[first].copy()
    scores, best = [singles[first]], (singles[first], counts.copy())
    for n in range(2, rounds + 1):
        if stop is not None and time.monotonic() > stop:
            break
        trial_scores = [score((total + p) / n) for p in preds]
        pick = int(np.argmax([sign * s for s in trial_scores]))
        counts[pick] += 1
        total += preds[pick]
        scores.append(trial_scores[pick])
        if sign * trial_scores[pick] > sign * best[0] + 1e-12:
            best = (trial_scores[pick], counts.copy())
    return best[1] / best[1].sum(), scores


class EnsembleModel(BaseEstimator):
    """A weighted average of fitted models' probabilities (classifiers: the label is the class of
    the largest average) or values. ``members``: ``[(weight, fitted model), ...]``; it is
    fitted as given (scikit-learn scorers and ``permutation_importance`` take it). A member may
    itself be an ensemble (a trial's fold models, averaged); :meth:`flat_members` gives the plain
    models with their overall weights (what the ONNX export puts in one graph). Classifiers must
    share their classes."""

    def __init__(self, members: list[tuple[float, Any]], task: str):
        self.members = [(float(w), m) for w, m in members if w > 0]
        self.task = task
        if task == "classification":
            self.classes_ = np.asarray(self.members[0][1].classes_)
            for _, m in self.members[1:]:
                if not np.array_equal(np.asarray(m.classes_), self.classes_):
                    raise ValueError(f"ensemble members predict different classes: {list(self.classes_)} and "
                                     f"{list(m.classes_)}")

    def flat_members(self) -> list[tuple[float, Any]]:
        """``[(weight, model), ...]`` with every nested ensemble replaced by its own members,
        weights multiplied (the predictions are the same)."""
        flat = []
        for w, m in self.members:
            inner = m.flat_members() if isinstance(m, EnsembleModel) else [(1.0, m)]
            flat.extend((w * v, model) for v, model in inner)
        return flat

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.task == "classification" else "regressor"
        return tags

    def predict_proba(self, X) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification")
        return sum(w * np.asarray(m.predict_proba(X), dtype=np.float64) for w, m in self.members)

    def predict(self, X) -> np.ndarray:
        if self.task == "classification":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return sum(w * np.asarray(m.predict(X), dtype=np.float64).reshape(-1) for w, m in self.members)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classification) or R² (regression) of :meth:`predict`, as scikit-learn's
        classifiers and regressors score."""
        from sklearn.metrics import accuracy_score, r2_score

        metric = accuracy_score if self.task == "classification" else r2_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    def __repr__(self) -> str:
        return f"EnsembleModel({len(self.members)} members, weights {[round(w, 3) for w, _ in self.members]})"


def save_predictions(folder: str | Path, trial_id: int, values: np.ndarray) -> Path:
    """Keep a trial's validation predictions (float32) as ``folder/<trial id>.npy``."""
    from autodl.runs import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(trial_id)}.npy"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(values, dtype=np.float32))

    atomic_write(path, write)
    return path


def save_fold_models(folder: str | Path, trial_id: int, models: Sequence, task: str) -> Path | None:
    """Keep a trial's fitted fold models as one model averaging them (a single model as itself)
    in ``folder/<trial id>.pkl``, for this search's own process to read back
    (:func:`load_fold_models`). None, and nothing written, when the fold models of a classifier
    disagree on the classes (a fold without a rare class): that trial is refit when chosen.

    ``folder`` is a private temporary folder of the search (``tempfile.mkdtemp``: only this user
    reads it), never the run folder: the file is a pickle (skops takes 15-40x as long on forests,
    measured), so nothing outside the search's own processes may write it or read it, and it is
    deleted when the search ends. The saved predictor itself is written with skops."""
    import pickle

    from autodl.runs import atomic_write

    try:
        model = models[0] if len(models) == 1 else EnsembleModel([(1.0 / len(models), m) for m in models], task)
    except ValueError:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)

    return atomic_write(_fold_models_path(folder, trial_id), write)


def _fold_models_path(folder: str | Path, trial_id: int) -> Path:
    return Path(folder) / f"{int(trial_id)}.pkl"


def fold_models_bytes(folder: str | Path, trial_id: int) -> int:
    """The size of the file :func:`save_fold_models` kept for a trial (0 when there is none)."""
    path = _fold_models_path(folder, trial_id)
    return path.stat().st_size if path.is_file() else 0


def load_fold_models(folder: str | Path, trial_id: int):
    """The model :func:`save_fold_models` kept for a trial, or None."""
    import pickle

    path = _fold_models_path(folder, trial_id)
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        return pickle.load(fh)  # written by this search's own processes in its private folder


def load_predictions(folder: str | Path, trial_id: int) -> np.ndarray | None:
    path = Path(folder) / f"{int(trial_id)}.npy"
    return np.load(path) if path.is_file() else None


def choose_members(trials: Sequence, folder: str | Path, y, metric, *, direction: str, classes=None,
                   sample_weight=None, rounds: int = MAX_ROUNDS,
                   max_seconds: float | None = None) -> tuple[list[tuple[float, Any]], dict[str, Any]]:
    """The ensemble of a finished search: ``([(weight, trial), ...], info)``, largest weight first.

    ``trials``: the study's complete trials at the full budget; those with saved predictions in
    ``folder`` take part, the :data:`MAX_CANDIDATES` best of them. Selection runs on the rows
    every candidate has a prediction for, for at most ``max_seconds``. ``info`` says what was
    done: candidates, rows, the best single trial's and the ensemble's validation score.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    ranked = sorted((t for t in trials if t.value is not None), key=lambda t: -sign * t.value)
    preds, cands = [], []
    for t in ranked:
        p = load_predictions(folder, t.id)
        if p is not None and len(p) == len(y):
            preds.append(p)
            cands.append(t)
        if len(cands) == MAX_CANDIDATES:
            break
    info: dict[str, Any] = {"candidates": len(cands)}
    if len(cands) < 2:
        return [(1.0, ranked[0])] if ranked else [], {**info, "why_single": "fewer than two trials kept predictions"}
    rows = np.all([~np.isnan(p.reshape(len(p), -1)).any(axis=1) for p in preds], axis=0)
    y_rows = np.asarray(y)[rows]
    w_rows = None if sample_weight is None else np.asarray(sample_weight)[rows]
    preds = [p[rows] for p in preds]
    weights, scores = select(preds, y_rows, metric, classes=classes, sample_weight=w_rows, rounds=rounds,
                             max_seconds=max_seconds)
    best_round = int(np.argmax([sign * v for v in scores])) + 1  # the first round reaching the best score
    info.update(rows=int(rows.sum()), single_score=scores[0], rounds=len(scores), best_round=best_round)
    info["ensemble_score"] = score_predictions(sum(w * p for w, p in zip(weights, preds) if w > 0), y_rows, metric,
                                               classes, w_rows)
    members = [(float(weights[i]), cands[i]) for i in np.argsort(-weights, kind="stable") if weights[i] > 0]
    return members, info
