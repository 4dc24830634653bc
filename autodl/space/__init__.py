"""Search spaces: parameter types, conditions, sampling, the unit-cube codec, grids and I/O."""

from autodl.space.params import Categorical, Float, Int, Param
from autodl.space.space import Config, Space, builtin_space_names, config_key

__all__ = ["Space", "Float", "Int", "Categorical", "Param", "Config", "builtin_space_names", "config_key"]
