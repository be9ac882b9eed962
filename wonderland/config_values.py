"""Checks of an experiment config's values: one sentence per bad value.

A job validates its whole ``ml_collections.ConfigDict`` with these before it
writes anything; each raises ``ConfigError`` naming the key, the value given
and what is allowed (``wonderland.cli.run_app`` prints it as the whole
output, exit status 2). ``wonderland.cli`` re-exports them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "ConfigError",
    "require_positive",
    "require_finite",
    "require_seed",
    "require_distinct",
    "split_names",
    "split_numbers",
]

# Seeds are uint32: ``jax.random.key`` and ``fold_in`` take no more.
SEED_LIMIT = 2**32
# The smallest and the largest positive normal float32: a number outside them
# is 0 (a flushed subnormal) or inf once cast to float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)


class ConfigError(ValueError):
  """A config value or flag that cannot be used, said in one sentence."""


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(
      value, (bool, np.bool_)
  )


def _as_float(value: Any) -> float:
  """float(value), with an int too large for a float as inf."""
  try:
    return float(value)
  except OverflowError:
    return math.inf if value > 0 else -math.inf


def require_positive(
    key: str, value: Any, *, integer: bool = False, float32: bool = False
) -> None:
  """Raises ``ConfigError`` unless ``value`` is a finite number > 0.

  Args:
    key: the config key, for the message.
    value: the value to check.
    integer: also require a whole number.
    float32: also require that the value stays finite and > 0 once cast to
      float32 (a normal float32, between ``FLOAT32_TINY`` and
      ``FLOAT32_MAX``), for values that enter a float32 computation.
  """
  kind = "a positive integer" if integer else "a finite positive number"
  ok = _is_number(value) and math.isfinite(_as_float(value)) and value > 0
  ok = ok and (not integer or isinstance(value, numbers.Integral)
               or float(value).is_integer())
  if not ok:
    raise ConfigError(f"config.{key} must be {kind}, got {value!r}.")
  if float32 and not FLOAT32_TINY <= _as_float(value) <= FLOAT32_MAX:
    raise ConfigError(
        f"config.{key} must be a positive number that float32 represents "
        f"(from {FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}), got {value!r}."
    )


def require_finite(key: str, value: Any) -> None:
  """Raises ``ConfigError`` unless ``value`` is a finite number (no nan, inf)."""
  if not (_is_number(value) and math.isfinite(_as_float(value))):
    raise ConfigError(f"config.{key} must be a finite number, got {value!r}.")


def require_seed(key: str, value: Any) -> None:
  """Raises ``ConfigError`` unless ``value`` is an integer in [0, 2**32)."""
  ok = isinstance(value, numbers.Integral) and not isinstance(
      value, (bool, np.bool_)
  )
  if not (ok and 0 <= value < SEED_LIMIT):
    raise ConfigError(
        f"config.{key} must be an integer in [0, 2**32) (jax.random keys are "
        f"uint32), got {value!r}."
    )


def require_distinct(key: str, items: Sequence[Any], value: Any) -> None:
  """Raises ``ConfigError`` if ``items``, parsed from ``value``, repeat one."""
  seen = []
  for item in items:
    if item in seen:
      raise ConfigError(
          f"config.{key} must list each entry once, got {value!r} "
          f"({item!r} more than once)."
      )
    seen.append(item)


def split_names(key: str, value: str | Iterable[str], valid: Sequence[str]):
  """Parses a comma-separated list of distinct names, each one of ``valid``.

  ``valid`` may hold ``"optax.*"``: any ``optax.<name>`` is then accepted here
  and checked by the caller.
  """
  names = value.split(",") if isinstance(value, str) else list(value)
  names = [n.strip() for n in names if n.strip()]
  if not names:
    raise ConfigError(
        f"config.{key} must name at least one of {', '.join(valid)}; got "
        f"{value!r}."
    )
  for name in names:
    if name in valid or ("optax.*" in valid and name.startswith("optax.")):
      continue
    raise ConfigError(
        f"config.{key} has an unknown name {name!r}; valid names are "
        f"{', '.join(valid)}."
    )
  require_distinct(key, names, value)
  return names


def split_numbers(key: str, value: Any, low: float, high: float, *,
                  closed: tuple[bool, bool] = (True, True),
                  integer: bool = False) -> list:
  """Parses a comma-separated list of distinct numbers, each in [low, high].

  Args:
    key: the config key, for the message.
    value: the string (or a single number) to parse.
    low, high: the interval's ends.
    closed: whether each end belongs to it (``(False, True)``: (low, high]).
    integer: parse integers (``int``) instead of floats.

  Raises:
    ConfigError: for an empty list, an entry that does not parse or lies
      outside the interval, or an entry given twice.
  """
  parse = int if integer else float
  try:
    items = [parse(v) for v in str(value).split(",") if v.strip()]
  except ValueError:
    items = []
  def inside(v):
    return ((low <= v if closed[0] else low < v)
            and (v <= high if closed[1] else v < high))
  if not items or not all(inside(v) for v in items):
    interval = (f"{'[' if closed[0] else '('}{low:g}, {high:g}"
                f"{']' if closed[1] else ')'}")
    raise ConfigError(
        f"config.{key} must be comma-separated "
        f"{'integers' if integer else 'numbers'} in {interval}, got {value!r}."
    )
  require_distinct(key, items, value)
  return items
