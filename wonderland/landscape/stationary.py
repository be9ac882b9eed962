"""Stationary points (§1.3.1): what kind a point is, and a multi-start search for all of them."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import _checks
from wonderland.derivatives import grad
from wonderland.derivatives import hessian
from wonderland.landscape.descent import scalar_function
from wonderland.problems.base import KINDS

__all__ = ["classify_stationary_point", "find_stationary_points"]

Function = Callable[[jax.Array], jax.Array]


def _hessian_fits(x: jax.Array, copies: int = 1) -> None:
  """Refuses a point whose (copies of the) d x d Hessian would not fit."""
  d = x.shape[0]
  _checks.allocation("x", x, x.dtype.itemsize * copies * 6 * d * d,
                     "its d x d Hessian", given=f"a point ~ ({d},)")


def _classify(f: Function, x: jax.Array, tol, eig_tol) -> jax.Array:
  """The index in ``KINDS`` of x, from grad f(x) and the eigen-decomposition of H(x)."""
  g = grad(f)(x)
  h = hessian(f)(x)
  eigenvalues, vectors = jnp.linalg.eigh((h + h.T) / 2)
  scale = jnp.maximum(1.0, jnp.max(jnp.abs(eigenvalues)))
  # The length of the Newton step H^-1 g (the distance to the stationary
  # point), with every |lambda_i| raised to at least eig_tol s.
  curvature = jnp.maximum(jnp.abs(eigenvalues), eig_tol * scale)
  newton = jnp.linalg.norm((vectors.T @ g) / curvature)
  stationary = newton <= tol * jnp.maximum(1.0, jnp.max(jnp.abs(x)))
  positive = eigenvalues > eig_tol * scale
  negative = eigenvalues < -eig_tol * scale
  code = jnp.where(
      jnp.all(positive), 0,
      jnp.where(jnp.all(negative), 1,
                jnp.where(jnp.any(positive) & jnp.any(negative), 2, 3)))
  return jnp.where(stationary & jnp.all(jnp.isfinite(g)), code, 4)


_classify_jit = jax.jit(_classify, static_argnums=0)


def classify_stationary_point(
    f: Function, x: jax.Array, *, tol: float = 1e-4, eig_tol: float = 1e-5
) -> str:
  """Says what kind of point x is, from the gradient and the Hessian's eigenvalues.

  With H = hessian f(x), its eigenvalues lambda_i (eigenvectors v_i) and the
  curvature scale s = max(1, max_i |lambda_i|), an eigenvalue with
  |lambda_i| <= eig_tol s counts as zero, and:

  * x is ``"not stationary"`` unless the Newton step to the nearest
    stationary point, sum_i (v_i . grad f(x)) / max(|lambda_i|, eig_tol s) v_i,
    is shorter than tol max(1, ||x||_inf) (so a point tol away from a
    non-degenerate stationary point, in any direction, is not stationary);
  * otherwise it is a ``"minimum"`` if every lambda_i > 0, a ``"maximum"`` if
    every lambda_i < 0, a ``"saddle"`` if there are both signs (an indefinite
    Hessian proves a saddle even with zero eigenvalues), and ``"degenerate"``
    if a zero eigenvalue leaves the second-order test undecided (x^3 at 0,
    the monkey saddle).

  The defaults suit float32: a minimizer rounded to float32 passes, and a
  Hessian whose condition number passes 1/eig_tol = 1e5 reads as degenerate.
  The floor of 1 in s makes the threshold absolute, eig_tol itself, when
  every |lambda_i| < 1: rounding noise in the Hessian at a degenerate point
  must not read as curvature. So a function scaled down until its curvature
  is below eig_tol (1e-6 ||x||^2) reads as degenerate; rescale f, or lower
  eig_tol, to classify such a point.

  Args:
    f: a scalar function of x ~ (d,).
    x: the point ~ (d,); its d x d Hessian must fit in
      ``wonderland._checks.MAX_BYTES`` (2 GiB).
    tol: the (relative) distance to a stationary point that still counts, > 0.
    eig_tol: relative threshold under which an eigenvalue counts as zero, > 0.

  Returns:
    One of ``KINDS``: "minimum", "maximum", "saddle", "degenerate" or
    "not stationary".

  Raises:
    ValueError: if x is not a vector or its Hessian would take more than
      2 GiB, tol or eig_tol is not positive, or f is not scalar-valued.
  """
  x = _checks.point("x", x)
  _hessian_fits(x)
  tol = _checks.number("tol", tol)
  eig_tol = _checks.number("eig_tol", eig_tol)
  scalar_function(f, x)
  return KINDS[int(_classify_jit(f, x, tol, eig_tol))]


def _levenberg_marquardt(f, x, n_steps):
  """Damped Newton on grad f(x) = 0: minimizes ||grad f||^2, converges to any stationary point.

  Each step solves (H^2 + mu s I) delta = -H g, s = ||H||_F^2 / d, and keeps
  x + delta only if it lowers ||grad f||; mu shrinks after a success and grows
  after a failure, so the step goes from gradient descent on ||grad f||^2 / 2
  (large mu) to Newton's x - H^-1 g (mu -> 0) near a non-degenerate root.
  """
  grad_f, hess_f = grad(f), hessian(f)
  d = x.shape[0]
  eye = jnp.eye(d, dtype=x.dtype)

  def step(_, state):
    x, mu = state
    g, h = grad_f(x), hess_f(x)
    h = (h + h.T) / 2
    s = jnp.sum(h * h) / d + jnp.finfo(x.dtype).tiny
    delta = jnp.linalg.solve(h @ h + mu * s * eye, -h @ g)
    x_new = x + delta
    g_norm_new = jnp.linalg.norm(grad_f(x_new))
    accept = jnp.isfinite(g_norm_new) & (g_norm_new < jnp.linalg.norm(g))
    accept = accept & jnp.all(jnp.isfinite(x_new))
    x = jnp.where(accept, x_new, x)
    mu = jnp.clip(jnp.where(accept, mu / 4, mu * 3), 1e-12, 1e12)
    return x, mu

  mu0 = jnp.asarray(1e-2, x.dtype)
  x, _ = jax.lax.fori_loop(0, n_steps, step, (x, mu0))
  return x


def _search(f, key, lower, upper, n_starts, n_steps, tol, eig_tol, merge_tol):
  starts = jax.random.uniform(
      key, (n_starts, lower.shape[0]), lower.dtype, lower, upper)
  found = jax.vmap(lambda x: _levenberg_marquardt(f, x, n_steps))(starts)
  codes = jax.vmap(lambda x: _classify(f, x, tol, eig_tol))(found)
  values = jax.vmap(f)(found)
  inside = jnp.all(
      (found >= lower - merge_tol) & (found <= upper + merge_tol), axis=1)
  valid = ((codes < 4) & inside & jnp.all(jnp.isfinite(found), axis=1)
           & jnp.isfinite(values))
  # Keep the first of each cluster: drop a point if an earlier valid one is near.
  distance = jnp.linalg.norm(found[:, None] - found[None], axis=-1)
  earlier = jnp.tril(jnp.ones((n_starts, n_starts), bool), k=-1)
  duplicate = jnp.any(earlier & valid[None, :] & (distance < merge_tol), axis=1)
  return found, codes, values, valid & ~duplicate


_search_jit = jax.jit(_search, static_argnums=(0, 4, 5))


def find_stationary_points(
    f: Function,
    key: jax.Array,
    bounds: tuple[jax.Array, jax.Array],
    *,
    n_starts: int = 256,
    n_steps: int = 100,
    tol: float = 1e-4,
    eig_tol: float = 1e-5,
    merge_tol: float | None = None,
) -> list[tuple[jax.Array, str]]:
  """Multi-start search for the stationary points of f inside a box, classified.

  From ``n_starts`` points drawn uniformly in ``bounds``, runs ``n_steps``
  steps of damped Newton on grad f(x) = 0 (Levenberg-Marquardt on
  ||grad f(x)||^2, which converges to minima, maxima and saddles alike, where
  gradient descent would only find minima), classifies every end point as
  ``classify_stationary_point`` does, and keeps the stationary ones inside the
  box (up to ``merge_tol``), one per cluster of points closer than
  ``merge_tol``. The starts, the steps, the classification and the clustering
  are vmapped in one compiled program (it forms d x d Hessians and an
  n_starts x n_starts table of distances: meant for small d). A start may end
  at no stationary point; those are dropped. A multi-start search finds what
  its starts reach: more starts, more points.

  Args:
    f: a scalar function of x ~ (d,).
    key: a ``jax.random`` key for the starts.
    bounds: ``(lower, upper)``, each ~ (d,), with lower < upper.
    n_starts: how many starts, a positive int whose Hessians and distance
      table fit in ``wonderland._checks.MAX_BYTES`` (2 GiB): up to about
      16,000 for d = 2.
    n_steps: damped Newton steps per start, a positive int (int32).
    tol: the relative gradient tolerance of ``classify_stationary_point``.
    eig_tol: its relative zero-eigenvalue threshold.
    merge_tol: the distance under which two points are one; by default
      1e-4 times the box's diagonal.

  Returns:
    A list of ``(point ~ (d,), kind)`` pairs, kind one of "minimum",
    "maximum", "saddle", "degenerate", sorted by f(point), lowest first.

  Raises:
    ValueError: for bad bounds, a non-positive n_starts, n_steps, tol,
      eig_tol or merge_tol, or n_starts whose arrays would take more than
      2 GiB.
  """
  lower, upper = _checks.box(bounds)
  key = _checks.key(key)
  scalar_function(f, lower)
  n_starts = _checks.integer("n_starts", n_starts)
  d = lower.shape[0]
  _checks.allocation(
      "n_starts", n_starts,
      lower.dtype.itemsize * n_starts * (n_starts * (d + 3) + 6 * d * d + 10 * d),
      f"the starts' Hessians and their {n_starts} x {n_starts} distances")
  n_steps = _checks.integer("n_steps", n_steps, maximum=_checks.INT32_MAX)
  tol = _checks.number("tol", tol)
  eig_tol = _checks.number("eig_tol", eig_tol)
  if merge_tol is None:
    merge_tol = 1e-4 * float(jnp.linalg.norm(upper - lower))
  merge_tol = _checks.number("merge_tol", merge_tol)
  found, codes, values, keep = _search_jit(
      f, key, lower, upper, n_starts, n_steps, tol, eig_tol, merge_tol)
  keep, codes, values = np.asarray(keep), np.asarray(codes), np.asarray(values)
  order = [int(i) for i in np.argsort(values, kind="stable") if keep[i]]
  return [(found[i], KINDS[codes[i]]) for i in order]
