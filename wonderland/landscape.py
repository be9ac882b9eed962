"""The landscape of an objective (§1.3.1): descent directions, stationary points, convexity.

The notes' definitions, each checked numerically:

* p is a descent direction at x when D_p f(x) = grad f(x) . p < 0 (§1.3);
* x+ is a local minimum when, for some eps > 0, f(x+) <= f(x) for every x with
  ||x - x+|| < eps: ``is_local_minimum`` samples that ball;
* x+ is a stationary point when grad f(x+) = 0: minima, maxima and saddles
  alike, which is why gradient descent only guarantees a stationary point. The
  Hessian's eigenvalues tell them apart (``classify_stationary_point``): all
  positive, a minimum; all negative, a maximum; both signs, a saddle; a zero
  eigenvalue with no sign change decides nothing ("degenerate");
* f is convex when f(a x1 + (1 - a) x2) <= a f(x1) + (1 - a) f(x2) for all x1,
  x2 and a in [0, 1]: ``convexity_test`` samples chords;
* the step eta = 1/L is safe when L bounds the Hessian's eigenvalues:
  ``smoothness`` estimates the largest |eigenvalue| at x by power iteration.

Functions take a scalar f of a flat point ``x ~ (d,)`` (such as
``wonderland.problems.get(name).fn``). The sampled tests and the multi-start
search are vmapped and compiled once per call; randomness comes only from the
``key`` arguments.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wonderland.derivatives import directional_derivative
from wonderland.derivatives import grad
from wonderland.derivatives import hessian
from wonderland.derivatives import hvp
from wonderland.derivatives import _require_callable
from wonderland.derivatives import _require_scalar_output

__all__ = [
    "KINDS",
    "is_descent_direction",
    "classify_stationary_point",
    "is_local_minimum",
    "ConvexityReport",
    "convexity_test",
    "smoothness",
    "find_stationary_points",
]

# What ``classify_stationary_point`` can answer, in the order of its codes.
KINDS = ("minimum", "maximum", "saddle", "degenerate", "not stationary")

Function = Callable[[jax.Array], jax.Array]


def _point(name: str, x: Any) -> jax.Array:
  """x as a real vector ~ (d,) in at least float32 (eigh and rounding slack)."""
  x = jnp.asarray(x)
  if x.ndim != 1 or x.shape[0] == 0:
    raise ValueError(f"{name} must be a point ~ (d,) with d >= 1, got shape {x.shape}.")
  if jnp.issubdtype(x.dtype, jnp.complexfloating):
    raise ValueError(f"{name} must be a real point, got dtype {x.dtype}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return x.astype(jnp.result_type(float))
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def check_key(key: Any, name: str = "key") -> jax.Array:
  """A ``jax.random`` key (also traced): typed, or a legacy uint32 ~ (2,).

  Shared with ``wonderland.problems``; not part of the public API.
  """
  if isinstance(key, (jax.Array, np.ndarray)):
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if (typed and key.shape == ()) or (
        not typed and key.shape == (2,) and key.dtype == jnp.uint32):
      return key
    what = f"an array of shape {key.shape} and dtype {key.dtype}"
  else:
    what = repr(key)
  raise ValueError(
      f"{name} must be a jax.random key, such as jax.random.key(0), got {what}."
  )


def _scalar_function(f: Any, x: jax.Array) -> None:
  _require_callable(f)
  _require_scalar_output(f, x)


def _bounds(bounds: Any) -> tuple[jax.Array, jax.Array]:
  try:
    lower, upper = bounds
  except (TypeError, ValueError):
    raise ValueError(
        f"bounds must be a pair (lower, upper) of arrays ~ (d,), got {bounds!r}."
    ) from None
  lower, upper = _point("bounds[0]", lower), _point("bounds[1]", upper)
  if lower.shape != upper.shape:
    raise ValueError(
        f"bounds must be two arrays of the same shape (d,), got {lower.shape} "
        f"and {upper.shape}."
    )
  lo, hi = np.asarray(lower), np.asarray(upper)
  if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
    raise ValueError(
        f"bounds must be finite with lower < upper in every coordinate, got "
        f"lower={lo.tolist()} and upper={hi.tolist()}."
    )
  dtype = jnp.result_type(lower, upper)
  return lower.astype(dtype), upper.astype(dtype)


def _positive_int(name: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
  return int(value)


def _positive_float(name: str, value: Any) -> float:
  ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if not (ok and math.isfinite(float(value)) and float(value) > 0):
    raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
  return float(value)


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
  shapes_x, shapes_p = jax.tree.map(jnp.shape, x), jax.tree.map(jnp.shape, p)
  if jax.tree.structure(x) != jax.tree.structure(p) or shapes_x != shapes_p:
    raise ValueError(
        f"p must be shaped like x, got x ~ {shapes_x} and p ~ {shapes_p}."
    )
  _scalar_function(f, x)
  return directional_derivative(f, x, p) < 0


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
      jnp.where(jnp.all(negative), 1, jnp.where(jnp.any(positive) & jnp.any(negative), 2, 3)))
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
    x: the point ~ (d,).
    tol: the (relative) distance to a stationary point that still counts, > 0.
    eig_tol: relative threshold under which an eigenvalue counts as zero, > 0.

  Returns:
    One of ``KINDS``: "minimum", "maximum", "saddle", "degenerate" or
    "not stationary".

  Raises:
    ValueError: if x is not a vector, tol or eig_tol is not positive, or f is
      not scalar-valued.
  """
  x = _point("x", x)
  tol, eig_tol = _positive_float("tol", tol), _positive_float("eig_tol", eig_tol)
  _scalar_function(f, x)
  return KINDS[int(_classify_jit(f, x, tol, eig_tol))]


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
    n: how many points to sample, a positive int.
    rtol: the relative rounding slack; by default 16 times the dtype's eps.

  Returns:
    A boolean scalar array.

  Raises:
    ValueError: if x is not a vector, or eps, n or rtol is not positive.
  """
  x = _point("x", x)
  key = check_key(key)
  eps = _positive_float("eps", eps)
  n = _positive_int("n", n)
  rtol = 16 * float(jnp.finfo(x.dtype).eps) if rtol is None else _positive_float("rtol", rtol)
  _scalar_function(f, x)
  return _none_lower_jit(f, x, _ball_jit(key, x, eps, n), rtol)


class ConvexityReport(NamedTuple):
  """What ``convexity_test`` found.

  Attributes:
    violation_fraction: the fraction of sampled chord points where
      f(a x1 + (1 - a) x2) > a f(x1) + (1 - a) f(x2) beyond rounding.
    worst_violation: max over samples of f(a x1 + (1 - a) x2) - [a f(x1) +
      (1 - a) f(x2)]; positive means the chord inequality fails there.
    n_points: how many chord points were checked (n_pairs n_alphas).
    worst_x1: the chord's first end ~ (d,) at the worst sample.
    worst_x2: its second end ~ (d,).
    worst_alpha: a at the worst sample.
  """

  violation_fraction: float
  worst_violation: float
  n_points: int
  worst_x1: jax.Array
  worst_x2: jax.Array
  worst_alpha: float


def _chords(key, lower, upper, n_pairs, n_alphas):
  k1, k2, ka = jax.random.split(key, 3)
  d = lower.shape[0]
  x1 = jax.random.uniform(k1, (n_pairs, d), lower.dtype, lower, upper)
  x2 = jax.random.uniform(k2, (n_pairs, d), lower.dtype, lower, upper)
  alpha = jax.random.uniform(ka, (n_pairs, n_alphas), lower.dtype)
  return x1, x2, alpha


_chords_jit = jax.jit(_chords, static_argnums=(3, 4))


def _chord_gaps(f, x1, x2, alpha, rtol):
  n_alphas = alpha.shape[1]
  f1, f2 = jax.vmap(f)(x1), jax.vmap(f)(x2)
  mid = alpha[..., None] * x1[:, None] + (1 - alpha[..., None]) * x2[:, None]
  f_mid = jax.vmap(jax.vmap(f))(mid)
  chord = alpha * f1[:, None] + (1 - alpha) * f2[:, None]
  gap = f_mid - chord
  scale = jnp.abs(f_mid) + alpha * jnp.abs(f1)[:, None] + (1 - alpha) * jnp.abs(f2)[:, None]
  violated = gap > rtol * scale
  worst = jnp.argmax(gap)  # the caller refuses a box where f is not finite
  i, j = worst // n_alphas, worst % n_alphas
  n_nonfinite = jnp.sum(~jnp.isfinite(gap))
  return (jnp.mean(violated), gap.ravel()[worst], x1[i], x2[i], alpha[i, j],
          n_nonfinite)


_chord_gaps_jit = jax.jit(_chord_gaps, static_argnums=0)


def convexity_test(
    f: Function,
    key: jax.Array,
    bounds: tuple[jax.Array, jax.Array],
    *,
    n_pairs: int = 1024,
    n_alphas: int = 8,
    rtol: float = 1e-5,
) -> ConvexityReport:
  """Samples the chord inequality of convexity inside a box.

  Draws n_pairs chords (x1, x2) uniformly in ``bounds`` and n_alphas values of
  a ~ U[0, 1] on each, and checks (vmapped, one program)

  .. math::
    f(a x_1 + (1 - a) x_2) \\le a f(x_1) + (1 - a) f(x_2).

  A sample violates it when the left side exceeds the right by more than
  rtol (|f(mid)| + a |f(x1)| + (1 - a) |f(x2)|), the float rounding allowance.
  A convex f gives ``violation_fraction == 0``; one violation proves f is not
  convex on the box, none only fails to refute it. f is evaluated with matrix
  products at full precision (``jax.default_matmul_precision("highest")``),
  so that the GPU and TPU default of TF32 or bf16 passes does not fake
  violations.

  Args:
    f: a scalar function of x ~ (d,).
    key: a ``jax.random`` key.
    bounds: ``(lower, upper)``, each ~ (d,), with lower < upper.
    n_pairs: how many chords, a positive int.
    n_alphas: how many points on each chord, a positive int.
    rtol: the relative rounding allowance, > 0.

  Returns:
    A ``ConvexityReport``.

  Raises:
    ValueError: for bad bounds, a bad key, a non-positive n_pairs, n_alphas or
      rtol, an f that is not scalar, or an f that is not finite at some
      sampled point (convexity is not defined there: shrink the box).
  """
  lower, upper = _bounds(bounds)
  key = check_key(key)
  n_pairs = _positive_int("n_pairs", n_pairs)
  n_alphas = _positive_int("n_alphas", n_alphas)
  rtol = _positive_float("rtol", rtol)
  _scalar_function(f, lower)
  x1, x2, alpha = _chords_jit(key, lower, upper, n_pairs, n_alphas)
  # Matrix products at full float32: the GPU and TPU default (TF32 or bf16
  # passes) rounds them to ~1e-3, far above rtol, and would fake violations.
  with jax.default_matmul_precision("highest"):
    fraction, worst, x1, x2, alpha, n_nonfinite = _chord_gaps_jit(
        f, x1, x2, alpha, rtol)
  if int(n_nonfinite):
    raise ValueError(
        f"f must be finite in bounds for the chord test, but it is not at "
        f"{int(n_nonfinite)} of {n_pairs * n_alphas} sampled chord points; "
        f"shrink bounds to where f is defined."
    )
  return ConvexityReport(
      violation_fraction=float(fraction),
      worst_violation=float(worst),
      n_points=n_pairs * n_alphas,
      worst_x1=x1,
      worst_x2=x2,
      worst_alpha=float(alpha),
  )


def _power_iteration(f, x, v0, max_iter, rtol):
  def hv(v):
    return hvp(f, x, v)

  def normalize(w, v):
    norm = jnp.linalg.norm(w)
    return jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), v), norm

  def cond(state):
    i, _, estimate, previous = state
    converged = jnp.abs(estimate - previous) <= rtol * estimate
    return (i < max_iter) & ~converged

  def body(state):
    i, v, estimate, _ = state
    v, norm = normalize(hv(v), v)
    return i + 1, v, norm, estimate

  v, first = normalize(hv(v0), v0)
  inf = jnp.asarray(jnp.inf, first.dtype)
  _, v, _, _ = jax.lax.while_loop(cond, body, (1, v, first, inf))
  return jnp.linalg.norm(hv(v))


_power_iteration_jit = jax.jit(_power_iteration, static_argnums=(0, 3))


def smoothness(
    f: Function,
    x: jax.Array,
    *,
    key: jax.Array | None = None,
    max_iter: int = 1000,
    rtol: float = 1e-7,
) -> jax.Array:
  """The largest |eigenvalue| of the Hessian at x, by power iteration on H v.

  .. math::
    v_{k+1} = H v_k / ||H v_k||, \\qquad L \\approx ||H v_k||

  Each step is one Hessian-vector product (``wonderland.hvp``): H is never
  formed. If L bounds the Hessian everywhere, gradient descent with eta = 1/L
  decreases f at every step; this gives the value at x (the global L of a
  quadratic). It iterates until the estimate changes by less than rtol, or
  ``max_iter`` products; convergence goes like (lambda_2 / lambda_1)^(2k).

  Args:
    f: a scalar function of x ~ (d,).
    x: the point ~ (d,).
    key: a ``jax.random`` key for a Gaussian start vector; by default the
      fixed start v_i = sqrt(i + 2), i = 0..d-1 (normalized). Square roots
      have few rational relations (sqrt 8 = 2 sqrt 2 is one), so it is not
      orthogonal to the simple eigenvectors of structured Hessians, such as
      (2, -1) or (1, -2, 1), as an evenly spaced start is: from a start
      orthogonal to the top eigenvector the iteration returns the next
      eigenvalue.
    max_iter: the most Hessian-vector products, a positive int.
    rtol: the relative change that stops the iteration, > 0.

  Returns:
    A scalar array >= 0.

  Raises:
    ValueError: if x is not a vector, or max_iter or rtol is not positive.
  """
  x = _point("x", x)
  max_iter = _positive_int("max_iter", max_iter)
  rtol = _positive_float("rtol", rtol)
  _scalar_function(f, x)
  if key is None:
    v0 = jnp.sqrt(jnp.arange(2, x.shape[0] + 2, dtype=x.dtype))
  else:
    v0 = jax.random.normal(check_key(key), x.shape, dtype=x.dtype)
  v0 = v0 / jnp.linalg.norm(v0)
  return _power_iteration_jit(f, x, v0, max_iter, rtol)


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


def _starts(key, lower, upper, n_starts):
  return jax.random.uniform(key, (n_starts, lower.shape[0]), lower.dtype, lower, upper)


_starts_jit = jax.jit(_starts, static_argnums=3)


def _search(f, starts, lower, upper, n_steps, tol, eig_tol, merge_tol):
  n_starts = starts.shape[0]
  found = jax.vmap(lambda x: _levenberg_marquardt(f, x, n_steps))(starts)
  codes = jax.vmap(lambda x: _classify(f, x, tol, eig_tol))(found)
  values = jax.vmap(f)(found)
  inside = jnp.all((found >= lower - merge_tol) & (found <= upper + merge_tol), axis=1)
  valid = (codes < 4) & inside & jnp.all(jnp.isfinite(found), axis=1) & jnp.isfinite(values)
  # Keep the first of each cluster: drop a point if an earlier valid one is near.
  distance = jnp.linalg.norm(found[:, None] - found[None], axis=-1)
  earlier = jnp.tril(jnp.ones((n_starts, n_starts), bool), k=-1)
  duplicate = jnp.any(earlier & valid[None, :] & (distance < merge_tol), axis=1)
  return found, codes, values, valid & ~duplicate


_search_jit = jax.jit(_search, static_argnums=(0, 4))


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
  are vmapped in one compiled program (it forms d x d Hessians: meant for
  small d). A start may end at no stationary point; those are dropped. A
  multi-start search finds what its starts reach: more starts, more points.

  Args:
    f: a scalar function of x ~ (d,).
    key: a ``jax.random`` key for the starts.
    bounds: ``(lower, upper)``, each ~ (d,), with lower < upper.
    n_starts: how many starts, a positive int.
    n_steps: damped Newton steps per start, a positive int.
    tol: the relative gradient tolerance of ``classify_stationary_point``.
    eig_tol: its relative zero-eigenvalue threshold.
    merge_tol: the distance under which two points are one; by default
      1e-4 times the box's diagonal.

  Returns:
    A list of ``(point ~ (d,), kind)`` pairs, kind one of "minimum",
    "maximum", "saddle", "degenerate", sorted by f(point), lowest first.

  Raises:
    ValueError: for bad bounds or a non-positive n_starts, n_steps, tol,
      eig_tol or merge_tol.
  """
  lower, upper = _bounds(bounds)
  key = check_key(key)
  _scalar_function(f, lower)
  n_starts = _positive_int("n_starts", n_starts)
  n_steps = _positive_int("n_steps", n_steps)
  tol, eig_tol = _positive_float("tol", tol), _positive_float("eig_tol", eig_tol)
  if merge_tol is None:
    merge_tol = 1e-4 * float(jnp.linalg.norm(upper - lower))
  merge_tol = _positive_float("merge_tol", merge_tol)
  starts = _starts_jit(key, lower, upper, n_starts)
  found, codes, values, keep = _search_jit(
      f, starts, lower, upper, n_steps, tol, eig_tol, merge_tol)
  keep, codes, values = np.asarray(keep), np.asarray(codes), np.asarray(values)
  order = [int(i) for i in np.argsort(values, kind="stable") if keep[i]]
  return [(found[i], KINDS[codes[i]]) for i in order]
