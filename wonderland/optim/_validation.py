"""Build-time checks of hyperparameters, shared by every optimizer factory.

A factory checks each numeric hyperparameter that is known now (a Python or
NumPy number, or a concrete jax array of any shape) and raises a ``ValueError``
whose one sentence names the argument, the value given and what is allowed.
Values that are not known yet are let through: a schedule (a callable of the
step count, where a schedule is allowed) and a tracer, which is what
``optax.inject_hyperparams`` hands the factory inside ``jit`` or ``vmap``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def _known_now(value: Any) -> np.ndarray | None:
  """The value as a NumPy array when it is concrete; None for a tracer."""
  if isinstance(value, jax.core.Tracer):
    return None
  try:
    return np.asarray(value)
  except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
    return None


def _as_real(arr: np.ndarray, integer: bool) -> np.ndarray | None:
  """arr as float64 (int64 for an integer check), or None if not that kind."""
  if jnp.issubdtype(arr.dtype, jnp.integer) and arr.dtype != np.bool_:
    return arr.astype(np.int64)
  if not integer and jnp.issubdtype(arr.dtype, jnp.floating):  # bfloat16 too
    return arr.astype(np.float64)
  return None


def _show(value: Any, arr: np.ndarray | None) -> str:
  if arr is None:
    return repr(value)
  return repr(arr.item()) if arr.ndim == 0 else repr(arr.tolist())


def check(
    name: str,
    value: Any,
    allowed: str,
    ok: Callable[[np.ndarray], np.ndarray],
    *,
    schedule: bool = False,
    integer: bool = False,
) -> None:
  """Raises ValueError unless ``value`` is a real number (array) with ``ok``.

  Args:
    name: the argument's name, as the user wrote it.
    value: the value given.
    allowed: what is allowed, e.g. ``"> 0"`` or ``"in [0, 1)"``.
    ok: elementwise test on the value as a NumPy array.
    schedule: whether a callable (a schedule of the step count) is allowed.
    integer: whether the value must be an integer.
  """
  if callable(value):
    if schedule:
      return
    raise ValueError(f"{name} must be a number {allowed}; got the callable {value!r}.")
  arr = _known_now(value)
  if arr is None:
    return
  real = _as_real(arr, integer)
  what = "an integer" if integer else "a real number"
  suffix = " or a schedule (a function of the step count)" if schedule else ""
  if real is None:
    raise ValueError(
        f"{name} must be {what} {allowed}{suffix}; got {_show(value, real)}."
    )
  if real.size == 0:
    raise ValueError(
        f"{name} must be {what} {allowed}{suffix}; got an empty array."
    )
  if not np.all(ok(real)):
    hint = ""
    if arr.dtype in (jnp.bfloat16, jnp.float16):
      hint = (
          f", a {arr.dtype} value (optax.inject_hyperparams casts "
          "hyperparameters to the params' dtype unless it is given "
          "hyperparam_dtype=jnp.float32)"
      )
    raise ValueError(
        f"{name} must be {allowed}{suffix}; got {_show(value, real)}{hint}."
    )


def positive(name: str, value: Any, *, schedule: bool = False) -> None:
  """``0 < value < inf`` (a step size, an eps)."""
  check(name, value, "> 0 and finite", lambda a: np.isfinite(a) & (a > 0),
        schedule=schedule)


def unit_interval(name: str, value: Any) -> None:
  """``0 <= value < 1`` (a decay rate)."""
  check(name, value, "in [0, 1)", lambda a: (a >= 0) & (a < 1))


def open_unit_interval(name: str, value: Any) -> None:
  """``0 < value < 1`` (Armijo's c and shrink factor)."""
  check(name, value, "in (0, 1)", lambda a: (a > 0) & (a < 1))


_INT32_MAX = np.iinfo(np.int32).max


def non_negative_integer(name: str, value: Any) -> None:
  """An integer ``0 <= value <= 2^31 - 1`` (a count, kept as an int32)."""
  check(name, value, f"in [0, {_INT32_MAX}]",
        lambda a: (a >= 0) & (a <= _INT32_MAX), integer=True)


def boolean(name: str, value: Any) -> None:
  """``True`` or ``False`` (a Python or NumPy bool): a switch, never traced."""
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False, got {value!r}.")
