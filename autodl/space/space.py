"""The :class:`Space`: named parameters, conditions, sampling, the unit-cube codec, grids, I/O."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from autodl.errors import SpaceError
from autodl.space.params import PARAM_TYPES, Categorical, Float, Int, Param

Config = dict[str, Any]


class Space:
    """A search space: an ordered mapping of parameter names to :class:`Float`, :class:`Int`
    or :class:`Categorical`, some of them conditional on others.

    Example:
        >>> space = Space({
        ...     "model": Categorical(["linear", "forest"]),
        ...     "linear.alpha": Float(1e-4, 10, log=True, condition={"model": ["linear"]}),
        ...     "forest.depth": Int(2, 32, log=True, condition={"model": ["forest"]}),
        ... })
        >>> config = space.sample(np.random.default_rng(0))   # inactive parameters are absent

    Args:
        params: ``{name: parameter}``.
        name: optional name (``tabular``, ``mlp``, ...), kept in the JSON/YAML form.
    """

    def __init__(self, params: Mapping[str, Param], name: str | None = None):
        if not isinstance(params, Mapping) or not params:
            raise SpaceError("a space needs at least one parameter, given as {name: Float/Int/Categorical}")
        for pname, p in params.items():
            if not isinstance(pname, str) or not pname:
                raise SpaceError(f"parameter names must be non-empty strings, got {pname!r}")
            if not isinstance(p, (Float, Int, Categorical)):
                raise SpaceError(
                    f"parameter '{pname}' is a {type(p).__name__}; use Float, Int or Categorical"
                )
            p.validate(pname)
        self.name = name
        self.params: dict[str, Param] = dict(params)
        self._check_conditions()
        self.order: list[str] = self._topological_order()
        self.names: list[str] = list(self.params)

    # ----------------------------------------------------------------- structure
    def _check_conditions(self) -> None:
        for pname, p in self.params.items():
            for parent, values in p.condition.items():
                if parent not in self.params:
                    raise SpaceError(
                        f"parameter '{pname}': condition on '{parent}', which is not a parameter "
                        f"of this space (known: {', '.join(self.params)})"
                    )
                if parent == pname:
                    raise SpaceError(f"parameter '{pname}': a condition cannot refer to itself")
                pp = self.params[parent]
                for v in values:
                    if not pp.contains(v):
                        raise SpaceError(
                            f"parameter '{pname}': condition value {v!r} is not a possible value "
                            f"of '{parent}'"
                        )

    def _topological_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str, path: tuple[str, ...]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                raise SpaceError(f"conditions form a cycle: {' -> '.join(path + (n,))}")
            state[n] = 1
            for parent in self.params[n].condition:
                visit(parent, path + (n,))
            state[n] = 2
            order.append(n)

        for n in self.params:
            visit(n, ())
        return order

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict()["parameters"] == other.to_dict()["parameters"]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v.to_dict()}" for k, v in self.params.items())
        return f"Space({inner})"

    @property
    def is_conditional(self) -> bool:
        return any(p.condition for p in self.params.values())

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (partial) values in ``config``."""
        for parent, values in self.params[name].condition.items():
            if parent not in config or not self.is_active(parent, config):
                return False
            pv = config[parent]
            if not any(_same(pv, v) for v in values):
                return False
        return True

    def active_names(self, config: Mapping[str, Any]) -> list[str]:
        return [n for n in self.names if n in config and self.is_active(n, config)]

    # ----------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> Config:
        """Draw one configuration; inactive conditional parameters are absent."""
        config: Config = {}
        for n in self.order:
            if self.is_active(n, config):
                config[n] = self.params[n].sample(rng)
        return {n: config[n] for n in self.names if n in config}

    def contains(self, config: Mapping[str, Any]) -> bool:
        """True when ``config`` has exactly the active parameters, each with a valid value."""
        try:
            self.validate_config(config)
        except SpaceError:
            return False
        return True

    def validate_config(self, config: Mapping[str, Any]) -> None:
        """Raise :class:`SpaceError` naming the first problem with ``config``."""
        for n in config:
            if n not in self.params:
                raise SpaceError(f"config has '{n}', which is not a parameter of this space")
        for n in self.order:
            active = self.is_active(n, config)
            if active and n not in config:
                raise SpaceError(f"config lacks the active parameter '{n}'")
            if not active and n in config:
                raise SpaceError(f"config sets '{n}', which is inactive for its parent values")
            if active and not self.params[n].contains(config[n]):
                raise SpaceError(f"config value {config[n]!r} for '{n}' is outside its range")

    # ----------------------------------------------------------------- unit-cube codec
    @property
    def dim(self) -> int:
        """Number of coordinates of the unit-cube encoding (one per parameter)."""
        return len(self.names)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Map a config to ``[0, 1]^dim``; inactive parameters become NaN.

        Categorical values map to the centre of their slot, ``(index + 0.5) / n_choices``.
        """
        x = np.full(self.dim, np.nan)
        for i, n in enumerate(self.names):
            if n in config:
                x[i] = self.params[n].to_unit(config[n])
        return x

    def decode(self, x: np.ndarray | list[float]) -> Config:
        """Map a point of ``[0, 1]^dim`` to a valid config (conditions applied, NaN ignored)."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.dim,):
            raise ValueError(f"expected a vector of length {self.dim}, got shape {x.shape}")
        index = {n: i for i, n in enumerate(self.names)}
        config: Config = {}
        for n in self.order:
            if self.is_active(n, config):
                u = x[index[n]]
                if not math.isfinite(u):
                    u = 0.5
                config[n] = self.params[n].from_unit(float(u))
        return {n: config[n] for n in self.names if n in config}

    # ----------------------------------------------------------------- grid
    def grid(self, points: int = 5) -> Iterator[Config]:
        """Enumerate the grid: every choice of categoricals, every value of small integer and
        stepped ranges, ``points`` values (log-spaced where ``log``) of the others. Conditional
        parameters vary only where active; no configuration is yielded twice.
        """
        if points < 1:
            raise SpaceError(f"grid points is {points}, but must be >= 1")
        axes = {n: self.params[n].grid(points) for n in self.names}
        seen: set[str] = set()

        def expand(i: int, config: Config) -> Iterator[Config]:
            if i == len(self.order):
                yield {n: config[n] for n in self.names if n in config}
                return
            n = self.order[i]
            if self.is_active(n, config):
                for v in axes[n]:
                    config[n] = v
                    yield from expand(i + 1, config)
                del config[n]
            else:
                yield from expand(i + 1, config)

        for cfg in expand(0, {}):
            key = json.dumps(cfg, sort_keys=True)
            if key not in seen:
                seen.add(key)
                yield cfg

    def grid_size(self, points: int = 5) -> int:
        return sum(1 for _ in self.grid(points))

    # ----------------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        if self.name:
            d["name"] = self.name
        d["parameters"] = {n: p.to_dict() for n, p in self.params.items()}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "space") -> "Space":
        if not isinstance(data, Mapping):
            raise SpaceError(f"{source}: expected a mapping with 'parameters', got {type(data).__name__}")
        params_data = data.get("parameters")
        if not isinstance(params_data, Mapping) or not params_data:
            raise SpaceError(f"{source}: needs a non-empty 'parameters' mapping of name -> definition")
        params: dict[str, Param] = {}
        for pname, spec in params_data.items():
            pname = str(pname)
            if not isinstance(spec, Mapping):
                raise SpaceError(f"{source}: parameter '{pname}' must be a mapping with a 'type'")
            spec = dict(spec)
            ptype = spec.pop("type", None)
            if ptype not in PARAM_TYPES:
                raise SpaceError(
                    f"{source}: parameter '{pname}' has unknown type {ptype!r}; "
                    "use float, int or categorical"
                )
            allowed = {"float": {"low", "high", "log", "step", "condition"},
                       "int": {"low", "high", "log", "step", "condition"},
                       "categorical": {"choices", "condition"}}[ptype]
            unknown = set(spec) - allowed
            if unknown:
                raise SpaceError(
                    f"{source}: parameter '{pname}' has unknown key(s) {sorted(unknown)}; "
                    f"a {ptype} takes {sorted(allowed)}"
                )
            try:
                if ptype == "categorical":
                    if "choices" not in spec:
                        raise SpaceError(f"{source}: parameter '{pname}' needs 'choices'")
                    params[pname] = Categorical(spec["choices"], condition=spec.get("condition"))
                else:
                    missing = [k for k in ("low", "high") if k not in spec]
                    if missing:
                        raise SpaceError(f"{source}: parameter '{pname}' needs {' and '.join(missing)}")
                    kwargs = {k: spec[k] for k in ("log", "step") if k in spec}
                    params[pname] = PARAM_TYPES[ptype](
                        spec["low"], spec["high"], condition=spec.get("condition"), **kwargs
                    )
            except TypeError as exc:
                raise SpaceError(f"{source}: parameter '{pname}': {exc}") from None
        try:
            return cls(params, name=data.get("name"))
        except SpaceError as exc:
            raise SpaceError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Space":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpaceError(f"space JSON is malformed: {exc}") from None
        return cls.from_dict(data, source="space JSON")

    def to_yaml(self, path: str | Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Space":
        """Load a space from a YAML file (see ``search_spaces/*.yaml`` for the format)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise SpaceError(f"space file {path} does not exist; give a YAML path or a built-in name "
                             f"({', '.join(builtin_space_names())})")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpaceError(f"{path}: malformed YAML{where}: {problem}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def load(cls, name_or_path: "str | Path | Space") -> "Space":
        """A :class:`Space` from a built-in name (``"tabular"``), a YAML/JSON path, or a Space."""
        if isinstance(name_or_path, Space):
            return name_or_path
        text = str(name_or_path)
        if text in builtin_space_names():
            ref = resources.files("autodl.search_spaces").joinpath(f"{text}.yaml")
            with resources.as_file(ref) as p:
                return cls.from_yaml(p)
        path = Path(text)
        if path.suffix == ".json" and path.is_file():
            return cls.from_json(path.read_text())
        if path.suffix in (".yaml", ".yml") or path.exists():
            return cls.from_yaml(path)
        raise SpaceError(
            f"unknown space '{text}': give a YAML file or one of {', '.join(builtin_space_names())}"
        )


def builtin_space_names() -> list[str]:
    """Names of the spaces shipped in ``search_spaces/`` (installed as ``autodl.search_spaces``)."""
    root = resources.files("autodl.search_spaces")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def config_key(config: Mapping[str, Any]) -> str:
    """A canonical string for a config, for de-duplication."""
    return json.dumps(dict(config), sort_keys=True, default=str)


__all__ = ["Space", "Config", "builtin_space_names", "config_key"]
