"""Descent directions and local minima (§1.3, §1.3.1), checked by their definitions."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from wonderland import _checks
from wonderland.derivatives import directional_derivative

__all__ = ["is_descent_direction", "is_local_minimum"]

Function = Callable[[jax.Array], jax.Array]


def scalar_function(f: Any, x: Any) -> None:
  """f is callable and scalar-valued at x (shared by the landscape modules)."""
  _checks.function(f)
  _checks.scalar_output(f, (x,), "x")


def is_descent_direction(f: Function, x: jax.Array, p: jax.Array) -> jax.Array:
  """Whether p is a descent direction of f at x: D_p f(x) = grad f(x) . p < 0.

  Computed as one forward-mode product (``wonderland.directional_derivative``),
  so it is cheap and traceable: jit or vmap it freely. -grad f(x) is a
  descent direction wherever grad f(x) != 0 (the steepest one, §1.3).

  Args:
    f: a scalar function.
    x: the point, a pytree of arrays (a vector ``~ (d,)`` for the problems).
    p: the direction, shaped like x.

  Returns:
    A boolean scalar array.

  Raises:
    ValueError: if p is not shaped like x, or f is not scalar-valued.
  """
  _checks.same_structure("p", p, "x", x)
  scalar_function(f, x)
  return directional_derivative(f, x, p) < 0


def _ball(key, x, eps, n):
  """n points uniform in the ball ||y - x|| < eps: Gaussian directions, radii eps U^(1/d)."""
  k_dir, k_rad = jax.random.split(key)
  d = x.shape[0]
  u = jax.random.normal(k_dir, (n, d), dtype=x.dtype)
  u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
  r = eps * jax.random.uniform(k_rad, (n, 1), dtype=x.dtype) ** (1.0 / d)
  return x + r * u


# The samples do not depend on f: compiled once per (n, d), not once per f.
_ball_jit = jax.jit(_ball, static_argnums=3)


def _none_lower(f, x, ys, rtol):
  fx = f(x)
  fy = jax.vmap(f)(ys)
  slack = rtol * jnp.maximum(jnp.abs(fx), jnp.max(jnp.abs(fy)))
  return jnp.all(fy >= fx - slack)


_none_lower_jit = jax.jit(_none_lower, static_argnums=0)


def is_local_minimum(
    f: Function,
    x: jax.Array,
    key: jax.Array,
    *,
    eps: float = 1e-2,
    n: int = 1024,
    rtol: float | None = None,
) -> jax.Array:
  """The notes' definition of a local minimum, checked on n points of the eps-ball.

  x+ is a local minimum if f(x+) <= f(x) for every x with ||x - x+|| < eps.
  The check draws n points uniformly in that ball (vmapped) and answers
  whether none of them is lower than f(x+), up to float rounding:
  f(y) >= f(x+) - rtol max(|f(x+)|, max_y |f(y)|). A sampled test can only
  refute: True means no lower point was found.

  Args:
    f: a scalar function of x ~ (d,).
    x: the candidate x+ ~ (d,).
    key: a ``jax.random`` key for the samples.
    eps: the radius of the ball, > 0.
    n: how many points to sample, a positive int whose n x d samples fit in
      ``wonderland._checks.MAX_BYTES`` (2 GiB).
    rtol: the relative rounding slack; by default 16 times the dtype's eps.

  Returns:
    A boolean scalar array.

  Raises:
    ValueError: if x is not a vector, eps, n or rtol is not positive, or the
      n samples would take more than 2 GiB.
  """
  x = _checks.point("x", x)
  key = _checks.key(key)
  eps = _checks.number("eps", eps)
  n = _checks.integer("n", n)
  d = x.shape[0]
  _checks.allocation("n", n, x.dtype.itemsize * n * (3 * d + 2),
                     "the sampled points")
  if rtol is None:
    rtol = 16 * float(jnp.finfo(x.dtype).eps)
  rtol = _checks.number("rtol", rtol)
  scalar_function(f, x)
  return _none_lower_jit(f, x, _ball_jit(key, x, eps, n), rtol)
