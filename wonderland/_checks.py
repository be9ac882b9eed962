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

import functools
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
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:  # a Python number: its default dtype
      dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(
          f"{what} must hold floating-point arrays to differentiate f, got "
          f"dtype {dtype}."
      )


def scalar_output(f: Callable[..., Any], args: tuple, what: str):
  """f evaluates at ``*args`` to a real floating-point scalar (traces once).

  Returns:
    The scalar's dtype.

  ``args`` of shapes (``jax.ShapeDtypeStruct`` leaves) are checked once per
  (f, shapes): a sweep called again with new values traces nothing here.
  """
  leaves, treedef = jax.tree.flatten(args)
  if all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves):
    try:
      key = (f, treedef, tuple(leaves), what)
      hash(key)
    except TypeError:
      pass
    else:
      return _scalar_output_of_shapes(*key)
  return _scalar_output(f, args, what)


@functools.lru_cache(maxsize=256)
def _scalar_output_of_shapes(f, treedef, leaves, what):
  return _scalar_output(f, jax.tree.unflatten(treedef, leaves), what)


def _scalar_output(f: Callable[..., Any], args: tuple, what: str):
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
  return out.dtype


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
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
  """(keyword names, required names) of fn; None if it takes **kwargs.

  None too where Python cannot read the signature (some builtins): then every
  name is let through and fn itself refuses what it does not take. With
  ``open_ok`` a fn that takes **kwargs still gives its named parameters.
  """
  try:
    return _keyword_names(fn, open_ok)
  except TypeError:  # an unhashable fn: read its signature each time
    return _keyword_names.__wrapped__(fn, open_ok)


@functools.lru_cache(maxsize=256)
def _keyword_names(fn, open_ok):
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
  names = tuple(p.name for p in params if p.kind in kinds)
  required = tuple(
      p.name for p in params
      if p.kind in kinds and p.default is inspect.Parameter.empty
  )
  return names, required


# --- sizes and points (appended for landscape, problems and derivatives) -----

# The most memory one library call may ask for: a size argument whose arrays
# would need more is refused, with one sentence, before anything is allocated
# (rather than killing the process or running for hours). 2 GiB; it is read at
# every call, so a machine with more memory may raise it by assigning
# ``wonderland._checks.MAX_BYTES``.
MAX_BYTES = 2 * 1024**3


def _bytes_text(n: float) -> str:
  """n bytes in the largest binary unit that keeps the number >= 1."""
  for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
    if n < 1024 or unit == "PiB":
      return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
    n /= 1024
  return ""  # unreachable


def allocation(name: str, value: Any, nbytes: float, what: str, *,
               given: str | None = None) -> None:
  """Refuses ``name = value`` when ``what`` would take more than MAX_BYTES.

  The caller estimates ``nbytes`` from the sizes before allocating anything;
  ``given`` replaces ``repr(value)`` in the message (e.g. "shape (d,)").
  """
  if nbytes > MAX_BYTES:
    given = repr(value) if given is None else given
    raise ValueError(
        f"{name} must keep {what} within {_bytes_text(MAX_BYTES)} "
        f"(wonderland._checks.MAX_BYTES), got {given}, which needs about "
        f"{_bytes_text(nbytes)}."
    )


def real_array(name: str, x: Any, what: str = "a real tensor") -> jax.Array:
  """x (a number, list, NumPy or jax array) as a jax array of floats, ints or bools."""
  try:
    if isinstance(x, str):  # jnp.asarray would read "float32" as a dtype
      raise TypeError(x)
    x = jnp.asarray(x)
  except (TypeError, ValueError):
    raise ValueError(
        f"{name} must be {what} (an array of numbers), got "
        f"{type(x).__name__}."
    ) from None
  if not (jnp.issubdtype(x.dtype, jnp.floating)
          or jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
    raise ValueError(f"{name} must be {what}, got dtype {x.dtype}.")
  return x


def same_structure(name: str, tree: Any, like_name: str, like: Any) -> None:
  """tree has the pytree structure and the leaf shapes of ``like``."""
  shapes, shapes_like = jax.tree.map(jnp.shape, tree), jax.tree.map(jnp.shape, like)
  if (jax.tree.structure(tree) != jax.tree.structure(like)
      or shapes != shapes_like):
    raise ValueError(
        f"{name} must have the structure and shapes of {like_name}, got "
        f"{like_name} ~ {shapes_like} and {name} ~ {shapes}."
    )


def point(name: str, x: Any) -> jax.Array:
  """x as a real vector ~ (d,), d >= 1, in at least float32."""
  x = real_array(name, x, "a real point ~ (d,)")
  if x.ndim != 1 or x.shape[0] == 0:
    raise ValueError(
        f"{name} must be a point ~ (d,) with d >= 1, got shape {x.shape}."
    )
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return x.astype(jnp.result_type(float))
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def box(bounds: Any, name: str = "bounds") -> tuple[jax.Array, jax.Array]:
  """``(lower, upper)`` as two finite points ~ (d,) with lower < upper."""
  try:
    lower, upper = bounds
  except (TypeError, ValueError):
    raise ValueError(
        f"{name} must be a pair (lower, upper) of arrays ~ (d,), got "
        f"{bounds!r}."
    ) from None
  lower, upper = point(f"{name}[0]", lower), point(f"{name}[1]", upper)
  if lower.shape != upper.shape:
    raise ValueError(
        f"{name} must be two arrays of the same shape (d,), got {lower.shape} "
        f"and {upper.shape}."
    )
  lo, hi = np.asarray(lower), np.asarray(upper)
  if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
          and np.all(lo < hi)):
    raise ValueError(
        f"{name} must be finite with lower < upper in every coordinate, got "
        f"lower={lo.tolist()} and upper={hi.tolist()}."
    )
  dtype = jnp.result_type(lower, upper)
  return lower.astype(dtype), upper.astype(dtype)


def evaluations(evaluate: Any, x: Any, what: str,
                reserved: tuple[str, ...] = ()) -> None:
  """evaluate(x) returns a non-empty dict of str -> real scalar (traces once).

  ``reserved`` names what the run records beside evaluate's metrics (its
  curvatures): evaluate must not return those names.
  """
  function(evaluate, "evaluate", hashable=True)
  try:
    out = jax.eval_shape(evaluate, x)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(
        f"evaluate could not be evaluated at {what}: {type(e).__name__}: {e}"
    ) from None
  if not (isinstance(out, dict) and out
          and all(isinstance(k, str) for k in out)):
    raise ValueError(
        f"evaluate must return a non-empty dict from metric name to scalar, "
        f"got {jax.tree.map(lambda s: s.shape, out)!r}."
    )
  clash = sorted(set(out) & set(reserved))
  if clash:
    raise ValueError(
        f"evaluate must not return a metric named {clash[0]!r} while record "
        f"names it (the trace's evals hold both).")
  for name, leaf in out.items():
    if not (isinstance(leaf, jax.ShapeDtypeStruct) and leaf.shape == ()
            and (jnp.issubdtype(leaf.dtype, jnp.floating)
                 or jnp.issubdtype(leaf.dtype, jnp.integer))):
      shape = jax.tree.map(lambda s: s.shape, leaf)
      raise ValueError(
          f"evaluate must return real scalars, got {name!r} of shape {shape}."
      )


def stochastic(x: Any, *, steps: int, tol, data, batch_size, key, evaluate,
               eval_every, trace_evaluate: bool = True, probes: tuple = ()
               ) -> tuple[int | None, int | None]:
  """The stochastic and evaluation arguments of a run; x is one initial point.

  ``trace_evaluate=False`` leaves the check of evaluate's outputs (which
  traces it) to the caller, e.g. to the traced program, where jax's cache
  skips it on a second call. ``probes`` names what the run records at its
  evaluation steps besides evaluate's metrics (the curvatures): with any,
  the run evaluates even without evaluate.

  Returns:
    ``(batch_size, eval_every)`` as Python ints (None where unused).
  """
  from wonderland import data as data_lib  # pylint: disable=g-import-not-at-top

  if data is None:
    for name, value in (("batch_size", batch_size), ("key", key)):
      if value is not None:
        shown = "a key" if name == "key" else repr(value)
        raise ValueError(
            f"{name} is only used with data (a stochastic run), got "
            f"{shown} without data."
        )
  else:
    n = data_lib.check_data(data)
    if key is None:
      raise ValueError(
          "key must be given with data: a jax.random key, such as "
          "jax.random.key(0), that fixes the order of the minibatches."
      )
    globals()["key"](key, "key")
    if batch_size is None:
      raise ValueError(
          f"batch_size must be given with data: an integer in [1, {n}]."
      )
    batch_size = integer("batch_size", batch_size, maximum=n)
    if tol is not None:
      raise ValueError(
          f"tol must be None with data: it would stop on a minibatch "
          f"gradient, got tol={tol!r}."
      )
  if evaluate is None and not probes:
    if eval_every is not None:
      raise ValueError(
          f"eval_every is only used with evaluate or a recorded curvature, "
          f"got eval_every={eval_every!r} without either."
      )
    return batch_size, None
  if tol is not None:
    what = "evaluate" if evaluate is not None else f"record {probes[0]!r}"
    raise ValueError(
        f"{what} needs a run of fixed length: give tol=None, got "
        f"tol={tol!r}."
    )
  if evaluate is None:
    pass
  elif trace_evaluate:
    evaluations(evaluate, x, "x0", reserved=probes)
  else:
    function(evaluate, "evaluate", hashable=True)
  every = steps if eval_every is None else integer(
      "eval_every", eval_every, maximum=INT32_MAX)
  return batch_size, min(every, steps)


def records(record: Any, valid: tuple[str, ...], *,
            needs_grad_norm: bool = False) -> tuple[str, ...]:
  """``record`` as a tuple of names of ``valid`` in their order, with value."""
  if isinstance(record, tuple):  # the usual case, checked once per value
    try:
      return _records(record, valid, needs_grad_norm)
    except TypeError:  # unhashable names: checked below, and refused
      pass
  return _records.__wrapped__(record, valid, needs_grad_norm)


@functools.lru_cache(maxsize=256)
def _records(record, valid, needs_grad_norm):
  if isinstance(record, str) or not all(
      isinstance(r, str) for r in (record if hasattr(record, "__iter__") else [1])):
    raise ValueError(
        f"record must be a sequence of names among {', '.join(valid)}, got "
        f"{record!r}."
    )
  unknown = [r for r in record if r not in valid]
  if unknown:
    raise ValueError(
        f"record must name only {', '.join(valid)}, got {', '.join(unknown)}."
    )
  if "value" not in record:
    raise ValueError(
        f"record must include 'value' (every run records f: the divergence "
        f"check and the trace's values read it), got {tuple(record)!r}."
    )
  if needs_grad_norm and "grad_norm" not in record:
    raise ValueError(
        f"record must include 'grad_norm' with tol (convergence is "
        f"||grad f|| <= tol), got {tuple(record)!r}."
    )
  return tuple(name for name in valid if name in record)
