"""What a sweep checks before it traces: the grid, the seeds, the factory, the size.

Every check runs on the host with concrete values and raises one sentence; the
factory is built with the grid's values first, so its own checks refuse a bad
swept value. ``inject_traced`` turns a factory into one whose swept
hyperparameters are traced (shared with the compare job).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wonderland import _checks

__all__ = ["inject_traced", "traced_optimizer"]


def factory_name(make_optimizer) -> str:
  return getattr(make_optimizer, "__name__", repr(make_optimizer))


def check_grid(make_optimizer, grid, fixed):
  """Validates grid and fixed; returns (names, host value arrays)."""
  if not callable(make_optimizer):
    raise ValueError(
        f"make_optimizer must be a callable returning an optax "
        f"GradientTransformation (such as optax.adam), got {make_optimizer!r}."
    )
  if not isinstance(grid, Mapping):
    raise ValueError(
        f"grid must be a dict from hyperparameter name to a 1-D array of "
        f"values, got {type(grid).__name__}."
    )
  if fixed is None:
    fixed = {}
  if not isinstance(fixed, Mapping):
    raise ValueError(
        f"fixed must be a dict of keyword arguments for make_optimizer, got "
        f"{type(fixed).__name__}."
    )
  accepted = _checks.keyword_names(make_optimizer)
  for kind, names in (("grid", grid), ("fixed", fixed)):
    for name in names:
      if accepted is not None and name not in accepted[0]:
        raise ValueError(
            f"{kind} name {name!r} is not a hyperparameter of "
            f"{factory_name(make_optimizer)}; accepted names are "
            f"{', '.join(accepted[0])}."
        )
  both = sorted(set(grid) & set(fixed))
  if both:
    raise ValueError(
        f"fixed must not repeat a swept name, got {', '.join(both)} in both."
    )
  if accepted is not None:
    missing = [n for n in accepted[1] if n not in grid and n not in fixed]
    if missing:
      raise ValueError(
          f"{factory_name(make_optimizer)} requires {', '.join(missing)}; "
          f"give it in grid or in fixed."
      )
  for name, value in fixed.items():
    try:
      hash(value)
    except TypeError:
      raise ValueError(
          f"fixed[{name!r}] must be hashable (a number, string, bool, tuple or "
          f"function), got a {type(value).__name__}."
      ) from None
  values = []
  for name, value in grid.items():
    try:
      array = np.asarray(value)
    except ValueError:  # ragged nested lists
      raise ValueError(
          f"grid[{name!r}] must be a non-empty 1-D array of floats or signed "
          f"integers, got a ragged sequence."
      ) from None
    kind = array.dtype.kind
    # Unsigned integers are refused: optax negates the learning rate, which
    # wraps around in an unsigned dtype.
    if array.ndim != 1 or array.size == 0 or kind not in "if":
      raise ValueError(
          f"grid[{name!r}] must be a non-empty 1-D array of floats or signed "
          f"integers, got shape {array.shape} and dtype {array.dtype}."
      )
    if name == "learning_rate" and not np.all(array > 0):
      raise ValueError(
          f"grid['learning_rate'] must hold step sizes eta > 0 (a negative "
          f"one is gradient ascent), got {array[~(array > 0)][0].item()!r}."
      )
    values.append(array)
  build_on_host(make_optimizer, fixed, dict(zip(grid, values)))
  return tuple(grid), values, tuple(sorted(fixed.items()))


def build_on_host(make_optimizer, fixed, grid):
  """Builds the optimizer before tracing, so that its own checks run.

  In the sweep the swept values reach ``make_optimizer`` as tracers, which a
  factory cannot check (``wonderland.optim`` lets them through). Here it is
  called with concrete values: the first grid point, then each swept name with
  its whole 1-D array (the checks of ``wonderland.optim`` test every entry),
  and value by value only to find which one a factory refused.
  """
  factory = factory_name(make_optimizer)
  first = {name: array[0].item() for name, array in grid.items()}
  try:
    optimizer = make_optimizer(**fixed, **first)
  except ValueError as e:
    raise ValueError(
        f"{factory} refused the first grid point {first} with fixed "
        f"{dict(fixed)}: {e}"
    ) from None
  _checks.transformation(optimizer, f"make_optimizer(...) ({factory})")
  for name, array in grid.items():
    try:
      make_optimizer(**fixed, **{**first, name: array})
      continue
    except Exception:  # pylint: disable=broad-except
      pass  # a factory that cannot take arrays, or a refused value: find out
    for value in array[1:]:
      try:
        make_optimizer(**fixed, **{**first, name: value.item()})
      except ValueError as e:
        raise ValueError(
            f"grid[{name!r}] holds {value.item()!r}, which {factory} refuses: "
            f"{e}"
        ) from None


def check_x0(f, x0, batch=None) -> tuple[int, Any, Any]:
  """x0's leaves share a leading seed axis, and f is scalar at one seed.

  Returns:
    ``(n_seeds, one_seed, dtype)``: one_seed the shapes of x0[0], dtype that
    of f's value.
  """
  _checks.function(f, "f", what="a callable objective", hashable=True)
  leaves = jax.tree.leaves(x0)
  if not leaves:
    raise ValueError(f"x0 must hold at least one array, got {x0!r}.")
  shapes = [np.shape(leaf) for leaf in leaves]
  if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
    raise ValueError(
        f"x0 must have a leading seed axis shared by every leaf (one initial "
        f"point per seed), got leaf shapes {shapes}."
    )
  if shapes[0][0] == 0:
    raise ValueError(
        f"x0 must hold at least one initial point (seed), got leaf shapes "
        f"{shapes}."
    )
  one_seed = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], jnp.result_type(a)), x0
  )
  _checks.float_tree(one_seed, "x0", shapes_ok=True)
  try:
    args = (one_seed,) if batch is None else (one_seed, batch)
    dtype = _checks.scalar_output(f, args, "one seed of x0")
  except ValueError as e:
    raise ValueError(
        f"{str(e).rstrip('.')} (x0 must have a leading seed axis, x0[i] "
        f"being the i-th initial point; its leaf shapes are {shapes})."
    ) from None
  return shapes[0][0], one_seed, dtype


def check_size(n_runs: int, steps: int, n_records: int, one_seed) -> None:
  """Refuses a sweep whose records and states would not fit in memory.

  Per run: ``n_records`` float32 records per step, and the params with room
  for the optimizer's state and the gradient (four copies).
  """
  point = sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize
              for s in jax.tree.leaves(one_seed))
  nbytes = n_runs * (steps * 4.0 * n_records + 4.0 * point)
  _checks.allocation(
      "grid, x0 and steps", None, nbytes, "the records and states of the runs",
      given=f"{n_runs:,} runs x {steps:,} steps of {point:,} bytes of params",
  )


def inject_traced(
    make_optimizer: Callable[..., optax.GradientTransformation],
    traced: Sequence[str],
):
  """``optax.inject_hyperparams(make_optimizer)`` that traces ``traced`` only.

  Every other named argument, given or left at its default, stays the Python
  value a direct call would use: traced defaults would be float32 copies (a
  sweep cell drifting from the matching ``minimize`` run in the last bits)
  and would break a factory's Python checks (``optax.lbfgs``'s
  ``if memory_size < 1``). Shared with the compare_optimizers job.
  """
  accepted = _checks.keyword_names(make_optimizer, open_ok=True)
  names = accepted[0] if accepted is not None else ()
  static = tuple(name for name in names if name not in traced)
  return optax.inject_hyperparams(make_optimizer, static_args=static)


def traced_optimizer(make_optimizer, fixed, hparams):
  """The factory's transformation with ``hparams`` traced, extra args supported."""
  factory = inject_traced(make_optimizer, tuple(hparams))
  return optax.with_extra_args_support(factory(**dict(fixed), **hparams))
