"""The ``Problem`` record and the helpers every objective of the zoo is built with.

A problem is an objective f : R^dim -> R, written for a flat vector
``x ~ (dim,)``, together with what is known about it: its usual search box, its
global minimizers and minimum, whether it is convex, and the constants L (the
gradient's Lipschitz constant, so that eta = 1/L is a safe step) and mu (the
strong-convexity constant) where they are known.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import _checks

__all__ = ["Problem", "KINDS"]

# What a point can be, in the order of the codes of
# ``wonderland.landscape.classify_stationary_point``: the kinds of
# ``Problem.stationary_points``.
KINDS = ("minimum", "maximum", "saddle", "degenerate", "not stationary")

# Bytes per coordinate that a problem of dimension dim holds (its box, its
# minimizers as Python floats and as arrays): the bound on dim below.
_BYTES_PER_DIM = 64


class Problem(NamedTuple):
  """An objective with known minima, ready for an optimizer.

  A ``Problem`` is a record, not a pytree to pass through ``jax.jit``: close
  over it (or over ``problem.fn``) instead.

  Attributes:
    name: the registry name.
    fn: f(x) for ``x ~ (dim,)``, a scalar; pure, jit-able and vmappable (vmap
      it for a batch ``X ~ (n, dim)``). Any other shape raises a ``ValueError``
      that names the expected ``(dim,)``, at trace time, so the check is free
      under ``jax.jit``. Integer inputs are promoted to floats.
    dim: the input dimension d.
    bounds: ``(lower, upper)``, each ``~ (dim,)``: the usual search box (from
      the standard references for the analytic functions).
    minimizers: the known global minimizers ``~ (m, dim)``; ``m = 0`` where none
      is known or none exists.
    fmin: f at the minimizers; NaN where unknown or where f is unbounded below
      and has no minimizer (``saddle``, ``monkey_saddle``). For ``x_sin_2x``,
      which is unbounded below on R, it is the minimum over ``bounds``.
    init: ``init(key, n) -> X ~ (n, dim)``, starting points inside ``bounds``
      (uniform for the analytic problems; for the networks, the initialization
      their docstring names: LeCun's for ``mlp_digits``, PyTorch's default
      for the MNIST-1D tasks).
    convex: whether f is convex on R^dim (None where unknown).
    smoothness: L, the largest |eigenvalue| of the Hessian over R^dim (or an
      upper bound on it: see each problem), None where unbounded or unknown.
    strong_convexity: mu, the smallest Hessian eigenvalue over R^dim (or a
      lower bound on it), None where f is not strongly convex or unknown.
    minibatch: None for the analytic problems, which have no examples to
      sample (test ``problem.minibatch is None`` before calling it). For the
      real-data problems, ``minibatch(key, batch_size) -> batch_fn`` where
      ``batch_fn(x) = loss(x, batch)`` on ``batch_size`` training examples
      drawn without replacement with ``key`` (the batch of step 0 of
      ``wonderland.data.minibatch``; the regularizer, if any, in full): an
      unbiased estimate of ``fn(x)``, equal to it when ``batch_size`` is the
      number of training examples. ``key`` may be traced (vmap or jit over
      keys); ``batch_size`` must be a static int.
    bounded_below: False for ``saddle``, ``monkey_saddle`` and ``x_sin_2x``.
    stationary_points: other known stationary points, as ``(point, kind)``
      pairs (``point ~ (dim,)``, ``kind`` in ``KINDS``), e.g. Himmelblau's
      local maximum and four saddles; empty where none are listed.
    unravel: for the real-data problems, maps the flat ``x`` to the dict of
      weights (e.g. ``{"w1", "b1", "w2", "b2"}`` for ``mlp_digits``); None
      elsewhere.
    description: the formula and its source, in one line.
    loss: None for the analytic problems. For the real-data problems,
      ``loss(x, batch)``: the mean loss (cross-entropy, plus the problem's
      regularizer if any) on ``batch = (features ~ (b, ...), labels ~ (b,))``;
      pure, jit-able and vmappable, ``loss(x, data) == fn(x)``.
    data: None for the analytic problems. For the real-data problems, the
      training split ``(features ~ (n, ...), labels ~ (n,))`` on device, the
      examples ``fn`` averages over; sample it with ``wonderland.data``.
    evaluate: None for the analytic problems. For the real-data problems,
      ``evaluate(x) -> dict[str, scalar]`` with ``train_loss`` (= ``fn(x)``),
      ``val_loss``, ``val_accuracy`` and ``test_accuracy`` on the held-out
      splits; pure, jit-able and vmappable.
  """

  name: str
  fn: Callable[[jax.Array], jax.Array]
  dim: int
  bounds: tuple[jax.Array, jax.Array]
  minimizers: jax.Array
  fmin: float
  init: Callable[[jax.Array, int], jax.Array]
  convex: bool | None = None
  smoothness: float | None = None
  strong_convexity: float | None = None
  minibatch: Callable[[jax.Array, int], Callable[[jax.Array], jax.Array]] | None = None
  bounded_below: bool = True
  stationary_points: tuple[tuple[jax.Array, str], ...] = ()
  unravel: Callable[[jax.Array], Any] | None = None
  description: str = ""
  loss: Callable[[jax.Array, Any], jax.Array] | None = None
  data: Any = None
  evaluate: Callable[[jax.Array], dict[str, jax.Array]] | None = None


def require_dim(name: str, value: Any, minimum: int = 1) -> int:
  """Checks problem ``name``'s ``dim``: an int >= ``minimum`` that fits in memory.

  A problem holds O(dim) numbers (its box, its minimizers), 64 bytes per
  coordinate: dim is refused beyond ``wonderland._checks.MAX_BYTES`` / 64
  (2 GiB / 64, about 33 million), before anything is allocated.
  """
  dim = _checks.integer(f"{name}: dim", value, minimum=minimum)
  _checks.allocation(f"{name}: dim", dim, _BYTES_PER_DIM * dim,
                     "the problem's arrays")
  return dim


def require_positive_float(name: str, key: str, value: Any, minimum: float = 0.0,
                           inclusive: bool = False) -> float:
  """Checks problem ``name``'s float ``key``: finite, > ``minimum`` (>= if inclusive)."""
  return _checks.number(f"{name}: {key}", value, minimum=minimum,
                        inclusive=inclusive)


def checked_fn(name: str, dim: int, raw: Callable[[jax.Array], jax.Array],
               doc: str = "") -> Callable[[jax.Array], jax.Array]:
  """Wraps ``raw`` with the static shape check every ``Problem.fn`` performs."""

  def fn(x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    if x.shape != (dim,):
      raise ValueError(
          f"{name} takes a point x ~ ({dim},), got shape {x.shape}; "
          f"use jax.vmap(problem.fn) for a batch ~ (n, {dim})."
      )
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
      raise ValueError(f"{name} takes a real point x, got dtype {x.dtype}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      x = x.astype(jnp.result_type(float))
    return raw(x)

  fn.__name__ = name
  fn.__qualname__ = name
  fn.__doc__ = doc or raw.__doc__
  return fn


def require_n(n: Any, dim: int = 1, itemsize: int = 8) -> int:
  """Checks the number of points asked of ``init``: a positive int whose n x dim points fit."""
  n = _checks.integer("init: n", n)
  _checks.allocation("init: n", n, n * dim * itemsize, f"the {n} x {dim} points")
  return n


def _uniform(key, lower, upper, n):
  return jax.random.uniform(
      key, (n, lower.shape[0]), dtype=lower.dtype, minval=lower, maxval=upper)


# One compiled sampler per (n, dim, dtype), shared by every problem.
_uniform = jax.jit(_uniform, static_argnums=3)


def uniform_init(bounds: tuple[jax.Array, jax.Array]):
  """``init(key, n)``: n points drawn uniformly in the box ``bounds``."""
  lower, upper = bounds

  def init(key: jax.Array, n: int) -> jax.Array:
    key = _checks.key(key, "init: key")
    n = require_n(n, lower.shape[0], lower.dtype.itemsize)
    return _uniform(key, lower, upper, n)

  return init


def box(lower: float | Sequence[float], upper: float | Sequence[float], dim: int):
  """``(lower, upper)`` as float arrays ``~ (dim,)`` (scalars are broadcast)."""
  lo = jnp.broadcast_to(jnp.asarray(lower, dtype=float), (dim,))
  hi = jnp.broadcast_to(jnp.asarray(upper, dtype=float), (dim,))
  return lo, hi


def points(values: Sequence[Sequence[float]], dim: int) -> jax.Array:
  """Known points as a float array ``~ (m, dim)`` (m may be 0)."""
  return jnp.asarray(np.asarray(values, dtype=np.float64).reshape(-1, dim), dtype=float)


def make_problem(
    name: str,
    raw: Callable[[jax.Array], jax.Array],
    dim: int,
    bounds: tuple[jax.Array, jax.Array],
    minimizers: Sequence[Sequence[float]] = (),
    fmin: float = math.nan,
    *,
    stationary: Sequence[tuple[Sequence[float], str]] = (),
    init: Callable[[jax.Array, int], jax.Array] | None = None,
    **fields: Any,
) -> Problem:
  """Builds a ``Problem`` with the shape-checked ``fn`` and a uniform ``init``."""
  for _, kind in stationary:
    assert kind in KINDS, kind
  return Problem(
      name=name,
      fn=checked_fn(name, dim, raw, f"{name}: f(x) = {fields.get('description', '')}"),
      dim=dim,
      bounds=bounds,
      minimizers=points(minimizers, dim),
      fmin=float(fmin),
      init=init if init is not None else uniform_init(bounds),
      stationary_points=tuple((points([p], dim)[0], kind) for p, kind in stationary),
      **fields,
  )
