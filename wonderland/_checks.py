"""Every argument check of the library, one sentence each.

A check takes the argument's name as the user wrote it (``"steps"``,
``"init: n"``, ``"rosenbrock: dim"``) and the value, returns the value in the
form the caller uses (a Python int, a float, a jax array), and raises a
``ValueError`` whose message names the argument, what was given and what is
allowed. Checks run on the host, when a function is called or an optimizer is
built, never inside a traced step.

Not part of the public API: ``wonderland.optim`` keeps its own checks of
hyperparameters (``optim/_validation.py``), which must also accept traced
values, and the experiment scripts check configs in ``wonderland.cli``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# The largest count a check accepts: loops count in int32.
INT32_MAX = int(np.iinfo(np.int32).max)


def integer(name: str, value: Any, *, minimum: int = 1,
            maximum: int | None = None) -> int:
  """value as a Python int in [minimum, maximum]; bools are refused.

  The message reads "a positive integer" for the common ``minimum=1``, and
  names the maximum where there is one.
  """
  ok = (not isinstance(value, (bool, np.bool_))
        and isinstance(value, numbers.Integral)
        and value >= minimum
        and (maximum is None or value <= maximum))
  if ok:
    return int(value)
  allowed = "a positive integer" if minimum == 1 else (
      f"an integer >= {minimum}")
  limit = "" if maximum is None else f" (at most {maximum:,})"
  raise ValueError(f"{name} must be {allowed}, got {value!r}{limit}.")


def real_scalar(value: Any) -> float | None:
  """value as a Python float if it is a concrete real scalar, else None."""
  if isinstance(value, (bool, np.bool_)) or isinstance(value, jax.core.Tracer):
    return None
  if isinstance(value, numbers.Real):
    return float(value)
  if (isinstance(value, (jax.Array, np.ndarray)) and value.shape == ()
      and (jnp.issubdtype(value.dtype, jnp.floating)
           or jnp.issubdtype(value.dtype, jnp.integer))):
    return float(value)
  return None


def number(name: str, value: Any, *, minimum: float = 0.0,
           inclusive: bool = False) -> float:
  """value as a finite Python float > minimum (>= with ``inclusive``)."""
  x = real_scalar(value)
  if x is not None and math.isfinite(x) and (
      x >= minimum if inclusive else x > minimum):
    return x
  relation = ">=" if inclusive else ">"
  raise ValueError(
      f"{name} must be a finite number {relation} {minimum:g}, got {value!r}."
  )


def boolean(name: str, value: Any) -> bool:
  """value as a Python bool; ints and strings are refused."""
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False, got {value!r}.")
  return bool(value)


def key(value: Any, name: str = "key") -> jax.Array:
  """A ``jax.random`` key (also traced): typed, or a legacy uint32 ~ (2,)."""
  if isinstance(value, (jax.Array, np.ndarray)):
    typed = jnp.issubdtype(value.dtype, jax.dtypes.prng_key)
    if (typed and value.shape == ()) or (
        not typed and value.shape == (2,) and value.dtype == jnp.uint32):
      return value
    what = f"an array of shape {value.shape} and dtype {value.dtype}"
  else:
    what = repr(value)
  raise ValueError(
      f"{name} must be a jax.random key, such as jax.random.key(0), got {what}."
  )


def function(f: Any, name: str = "f", *, what: str = "a callable function",
             hashable: bool = False) -> None:
  """f is callable (and hashable, where jax caches a program by it)."""
  if not callable(f):
    raise ValueError(f"{name} must be {what}, got {f!r}.")
  if hashable:
    try:
      hash(f)
    except TypeError:
      raise ValueError(
          f"{name} must be hashable (jax caches the compiled program by it), "
          f"got an unhashable {type(f).__name__}; wrap it, e.g. in a def or a "
          f"functools.partial."
      ) from None


def float_tree(x: Any, what: str, *, shapes_ok: bool = False) -> None:
  """x is a pytree of floating-point arrays with at least one leaf.

  ``shapes_ok`` also lets ``jax.ShapeDtypeStruct`` leaves through (a sweep
  checks one seed of x0 by its shapes).
  """
  leaves = jax.tree.leaves(x)
  if not leaves:
    raise ValueError(f"{what} must hold at least one array, got {x!r}.")
  kinds = (jax.Array, np.ndarray, np.generic, numbers.Number)
  if shapes_ok:
    kinds += (jax.ShapeDtypeStruct,)
  for leaf in leaves:
    if not isinstance(leaf, kinds):
      raise ValueError(
          f"{what} must hold floating-point arrays, got a leaf of type "
          f"{type(leaf).__name__}."
      )
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(
          f"{what} must hold floating-point arrays to differentiate f, got "
          f"dtype {dtype}."
      )


def scalar_output(f: Callable[..., Any], args: tuple, what: str) -> None:
  """f evaluates at ``*args`` to a real floating-point scalar (traces once)."""
  try:
    out = jax.eval_shape(f, *args)
  except Exception as e:  # pylint: disable=broad-except
    shapes = jax.tree.map(jnp.shape, args[0] if len(args) == 1 else args)
    raise ValueError(
        f"f could not be evaluated at {what} (shapes {shapes}): "
        f"{type(e).__name__}: {e}"
    ) from None
  if not (isinstance(out, jax.ShapeDtypeStruct) and out.shape == ()):
    shapes = jax.tree.map(lambda s: s.shape, out)
    raise ValueError(
        f"f must return a scalar at {what}, got an output of shape {shapes}."
    )
  if not jnp.issubdtype(out.dtype, jnp.floating):
    raise ValueError(
        f"f must return a real floating-point scalar at {what} (it is "
        f"differentiated), got dtype {out.dtype}."
    )


def transformation(optimizer: Any, name: str = "optimizer") -> None:
  """optimizer has callable ``init`` and ``update`` (an optax transformation)."""
  if not (callable(getattr(optimizer, "init", None))
          and callable(getattr(optimizer, "update", None))):
    raise ValueError(
        f"{name} must be an optax.GradientTransformation (with init and "
        f"update), got {optimizer!r}."
    )


def keyword_names(
    fn: Callable[..., Any], *, open_ok: bool = False
) -> tuple[list[str], list[str]] | None:
  """(keyword names, required names) of fn; None if it takes **kwargs.

  None too where Python cannot read the signature (some builtins): then every
  name is let through and fn itself refuses what it does not take. With
  ``open_ok`` a fn that takes **kwargs still gives its named parameters.
  """
  try:
    sig = inspect.signature(fn)
  except (TypeError, ValueError):
    return None
  kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,
           inspect.Parameter.KEYWORD_ONLY)
  params = list(sig.parameters.values())
  if not open_ok and any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
    return None
  names = [p.name for p in params if p.kind in kinds]
  required = [
      p.name for p in params
      if p.kind in kinds and p.default is inspect.Parameter.empty
  ]
  return names, required
