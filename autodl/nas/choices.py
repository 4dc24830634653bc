"""Model spaces: PyTorch modules with choices in them, their flat description, and freezing.

* :class:`LayerChoice` -- one of several candidate modules;
* :class:`InputChoice` -- ``n_chosen`` of ``n_candidates`` input tensors (reduced by sum, mean
  or concatenation);
* :class:`ValueChoice` -- one of several plain values (a width, a kernel size, ...).

Choices with the same ``label`` share one decision. A labelless choice gets an automatic label
(``layerchoice_1``, ``inputchoice_1``, ``valuechoice_1``, numbered per kind in creation order);
give labels when you need stable names.

A model space is either a module containing choice modules, or a *factory* (a callable returning
the module). A factory is needed when a :class:`ValueChoice` is a constructor argument
(``nn.Linear(16, ValueChoice([32, 64], label="width"))``): :func:`describe` calls the factory
in a recording mode where every ValueChoice evaluates to its first value, and :func:`freeze`
calls it in a fixed mode where every choice evaluates to its decision -- so the frozen module is
built directly with the chosen sizes. Outside these modes a ValueChoice is a placeholder object.

:func:`describe` gives the flat, JSON-serializable description ``{label: {"type": "layer" |
"input" | "value", "choices": [...]}}`` (layer choices: candidate names, the keys of the dict or
``"0", "1", ...`` for a list; input choices: indices when ``n_chosen == 1``, otherwise sorted
index combinations written ``"0,2"``; value choices: the values). :func:`to_space` turns it into
an :class:`autodl.Space` with one :class:`~autodl.space.Categorical` per label, so
``RegularizedEvolution`` / ``RandomSearch`` sample it; such a sample is what :func:`freeze`
takes. :func:`freeze` returns a plain module: every choice replaced by its chosen candidate
(or, for inputs, a parameter-free :class:`SelectInputs`), unused candidates dropped.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import threading
from typing import Any, Callable, Mapping

import torch
from torch import nn

_PLAIN = (str, int, float, bool, type(None))
_state = threading.local()


def _mode():
    return getattr(_state, "mode", None)


def _next_label(kind: str) -> str:
    counters = getattr(_state, "counters", None)
    if counters is None:
        counters = _state.counters = {}
    counters[kind] = counters.get(kind, 0) + 1
    return f"{kind}_{counters[kind]}"


@contextlib.contextmanager
def _context(mode: str, sample: Mapping[str, Any] | None = None):
    saved = (getattr(_state, "mode", None), getattr(_state, "sample", None),
             getattr(_state, "recorded", None), getattr(_state, "counters", None))
    _state.mode, _state.sample, _state.recorded, _state.counters = mode, dict(sample or {}), [], {}
    try:
        yield _state
    finally:
        _state.mode, _state.sample, _state.recorded, _state.counters = saved


def _decision(label: str) -> Any:
    sample = _state.sample
    if label not in sample:
        raise KeyError(f"the sample has no decision for choice '{label}' (has: {', '.join(sample) or 'none'})")
    return sample[label]


def _parse_inputs(value, n_candidates: int, n_chosen: int) -> list[int]:
    if isinstance(value, str):
        idx = [int(v) for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        idx = [int(v) for v in value]
    else:
        idx = [int(value)]
    if len(idx) != n_chosen or len(set(idx)) != n_chosen or not all(0 <= i < n_candidates for i in idx):
        raise ValueError(f"input decision {value!r}: need {n_chosen} distinct indices in 0..{n_candidates - 1}")
    return sorted(idx)


class SelectInputs(nn.Module):
    """A frozen :class:`InputChoice`: the chosen inputs, reduced (no parameters)."""

    def __init__(self, indices: list[int], reduction: str = "sum"):
        super().__init__()
        self.indices = list(indices)
        self.reduction = reduction

    def forward(self, inputs):
        chosen = [inputs[i] for i in self.indices]
        if len(chosen) == 1:
            return chosen[0]
        if self.reduction == "concat":
            return torch.cat(chosen, dim=1)
        out = sum(chosen[1:], chosen[0])
        return out / len(chosen) if self.reduction == "mean" else out

    def extra_repr(self) -> str:
        return f"indices={self.indices}, reduction={self.reduction!r}"


class LayerChoice(nn.Module):
    """One of ``candidates`` (a dict name -> module, or a list named ``"0", "1", ...``).

    Unfrozen, its forward raises: freeze the space first (:func:`freeze`). Inside a factory
    called by :func:`freeze`, constructing a LayerChoice returns the chosen candidate itself.
    """

    def __new__(cls, candidates=None, label: str | None = None):
        if _mode() == "fixed":
            label = label or _next_label("layerchoice")
            named = _named_candidates(candidates)
            name = str(_decision(label))
            if name not in named:
                raise ValueError(f"choice '{label}': {name!r} is not a candidate ({', '.join(named)})")
            return named[name]
        return super().__new__(cls)

    def __init__(self, candidates, label: str | None = None):
        super().__init__()
        self.label = label or _next_label("layerchoice")
        self.candidates = nn.ModuleDict(_named_candidates(candidates))
        if len(self.candidates) == 0:
            raise ValueError(f"choice '{self.label}' has no candidates")
        if _mode() == "record":
            _state.recorded.append(self)

    @property
    def choices(self) -> list[str]:
        return list(self.candidates.keys())

    def describe(self) -> dict[str, Any]:
        return {"type": "layer", "choices": self.choices}

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"LayerChoice '{self.label}' is not frozen; use autodl.nas.choices.freeze")


def _named_candidates(candidates) -> dict[str, nn.Module]:
    if isinstance(candidates, Mapping):
        named = {str(k): v for k, v in candidates.items()}
    elif isinstance(candidates, (list, tuple)):
        named = {str(i): v for i, v in enumerate(candidates)}
    else:
        raise TypeError("LayerChoice candidates must be a dict name -> module or a list of modules")
    for k, v in named.items():
        if not isinstance(v, nn.Module):
            raise TypeError(f"LayerChoice candidate {k!r} is a {type(v).__name__}, not an nn.Module")
    return named


class InputChoice(nn.Module):
    """``n_chosen`` of ``n_candidates`` inputs; ``forward(list_of_tensors)`` once frozen.

    ``reduction`` combines several chosen inputs: ``"sum"``, ``"mean"`` or ``"concat"`` (dim 1).
    """

    def __new__(cls, n_candidates=None, n_chosen: int = 1, label: str | None = None, reduction: str = "sum"):
        if _mode() == "fixed":
            label = label or _next_label("inputchoice")
            return SelectInputs(_parse_inputs(_decision(label), n_candidates, n_chosen), reduction)
        return super().__new__(cls)

    def __init__(self, n_candidates: int, n_chosen: int = 1, label: str | None = None,
                 reduction: str = "sum"):
        super().__init__()
        if not 1 <= n_chosen <= n_candidates:
            raise ValueError(f"InputChoice needs 1 <= n_chosen <= n_candidates, got {n_chosen}, {n_candidates}")
        if reduction not in ("sum", "mean", "concat"):
            raise ValueError(f"reduction must be sum, mean or concat, got {reduction!r}")
        self.label = label or _next_label("inputchoice")
        self.n_candidates, self.n_chosen, self.reduction = int(n_candidates), int(n_chosen), reduction
        if _mode() == "record":
            _state.recorded.append(self)

    @property
    def choices(self) -> list:
        if self.n_chosen == 1:
            return list(range(self.n_candidates))
        return [",".join(map(str, c)) for c in itertools.combinations(range(self.n_candidates), self.n_chosen)]

    def describe(self) -> dict[str, Any]:
        return {"type": "input", "choices": self.choices}

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"InputChoice '{self.label}' is not frozen; use autodl.nas.choices.freeze")


class ValueChoice:
    """One of ``values`` (plain: str, int, float, bool or None).

    In a factory called by :func:`freeze` it *is* the chosen value; called by :func:`describe`,
    the first value (recorded as a decision); elsewhere a placeholder object.
    """

    def __new__(cls, values=None, label: str | None = None):
        mode = _mode()
        if mode in ("fixed", "record"):
            label = label or _next_label("valuechoice")
            values = _check_values(values, label)
            if mode == "fixed":
                value = _decision(label)
                if not any(type(value) is type(v) and value == v for v in values):
                    raise ValueError(f"choice '{label}': {value!r} is not one of {values}")
                return value
            obj = super().__new__(cls)
            obj.values, obj.label = values, label
            _state.recorded.append(obj)
            return values[0]
        return super().__new__(cls)

    def __init__(self, values, label: str | None = None):
        self.label = label or _next_label("valuechoice")
        self.values = _check_values(values, self.label)

    @property
    def choices(self) -> list:
        return list(self.values)

    def describe(self) -> dict[str, Any]:
        return {"type": "value", "choices": self.choices}

    def __repr__(self) -> str:
        return f"ValueChoice({self.values!r}, label={self.label!r})"


def _check_values(values, label: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"ValueChoice '{label}' needs a non-empty list of values")
    for v in values:
        if not isinstance(v, _PLAIN):
            raise ValueError(f"ValueChoice '{label}': {v!r} is not a plain value (str, number, bool, None)")
    return list(values)


_CHOICE_TYPES = (LayerChoice, InputChoice, ValueChoice)


def _collect(model: nn.Module) -> list:
    """Choices inside a module: choice modules (candidates walked recursively) and
    ValueChoice attributes of any submodule."""
    found = []
    for module in model.modules():
        if isinstance(module, (LayerChoice, InputChoice)):
            found.append(module)
        found += [v for v in vars(module).values() if isinstance(v, ValueChoice)]
    return found


def _merge(choices) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in choices:
        desc = c.describe()
        if c.label in out and out[c.label] != desc:
            raise ValueError(f"choices labelled '{c.label}' differ ({out[c.label]} vs {desc}); "
                             "a shared label needs the same kind and choices")
        out.setdefault(c.label, desc)
    return out


def describe(space: nn.Module | Callable[[], nn.Module]) -> dict[str, dict[str, Any]]:
    """``{label: {"type": ..., "choices": [...]}}`` of a module or a factory (see the module doc)."""
    if isinstance(space, nn.Module):
        return _merge(_collect(space))
    if not callable(space):
        raise TypeError("describe takes an nn.Module or a callable returning one")
    with _context("record") as st:
        model = space()
        recorded = list(st.recorded)
    return _merge(recorded + [c for c in _collect(model) if c not in recorded])


def to_space(description_or_space, name: str | None = None):
    """An :class:`autodl.Space` with one Categorical per label."""
    from autodl.space import Categorical, Space

    desc = (description_or_space if isinstance(description_or_space, Mapping)
            else describe(description_or_space))
    return Space({label: Categorical(list(d["choices"])) for label, d in desc.items()}, name=name)


def freeze(space: nn.Module | Callable[[], nn.Module], sample: Mapping[str, Any]) -> nn.Module:
    """A plain module with exactly the chosen parts.

    A factory is called with every choice fixed to ``sample``; a module is deep-copied and each
    choice module replaced by its decision (ValueChoice attributes become their values).
    """
    if not isinstance(space, nn.Module):
        if not callable(space):
            raise TypeError("freeze takes an nn.Module or a callable returning one")
        with _context("fixed", sample):
            model = space()
        if not isinstance(model, nn.Module):
            raise TypeError(f"the factory returned a {type(model).__name__}, not an nn.Module")
        return model
    model = copy.deepcopy(space)
    if isinstance(model, (LayerChoice, InputChoice)):
        return _fixed(model, sample)
    _replace(model, sample)
    return model


def _fixed(choice, sample) -> nn.Module:
    if choice.label not in sample:
        raise KeyError(f"the sample has no decision for choice '{choice.label}'")
    value = sample[choice.label]
    if isinstance(choice, InputChoice):
        return SelectInputs(_parse_inputs(value, choice.n_candidates, choice.n_chosen), choice.reduction)
    name = str(value)
    if name not in choice.candidates:
        raise ValueError(f"choice '{choice.label}': {name!r} is not a candidate ({', '.join(choice.choices)})")
    chosen = choice.candidates[name]
    if isinstance(chosen, (LayerChoice, InputChoice)):
        return _fixed(chosen, sample)
    _replace(chosen, sample)
    return chosen


def _replace(module: nn.Module, sample) -> None:
    for attr, value in list(vars(module).items()):
        if isinstance(value, ValueChoice):
            if value.label not in sample:
                raise KeyError(f"the sample has no decision for choice '{value.label}'")
            setattr(module, attr, sample[value.label])
    for name, child in list(module.named_children()):
        if isinstance(child, (LayerChoice, InputChoice)):
            setattr(module, name, _fixed(child, sample))
        else:
            _replace(child, sample)
