"""Curvature at a point (§1.3.1): smoothness L and the sharpness lambda_max of the Hessian.

Both come from power iteration on Hessian-vector products H v (``jax.jvp`` of
``jax.grad``: forward over reverse), so H is never formed and x may be any
pytree of parameters. Power iteration v_{k+1} = H v_k / ||H v_k|| converges to
the eigenvector of the eigenvalue of largest magnitude, like
(|lambda_2| / |lambda_1|)^k; ||H v_k|| then tends to max_i |lambda_i| (the
``smoothness``) and the Rayleigh quotient v_k . H v_k to that eigenvalue with
its sign.

The sharpness is the largest *algebraic* eigenvalue lambda_max, the one that
decides the stability of gradient descent: on the quadratic model of f, the
component of x_t - x* along the top eigenvector is multiplied by
(1 - eta lambda_max) at each step, which grows once lambda_max > 2/eta (with
momentum lambda the threshold is (2 + 2 lambda)/eta). Cohen et al. (2021) found
that full-batch gradient descent on neural networks drives lambda_max up to
2/eta and then hovers there ("the edge of stability"); for adam the same
happens to the *preconditioned* sharpness, the largest eigenvalue of
P^{-1/2} H P^{-1/2} with P = diag(sqrt(v_hat_t) + eps), near
(2 + 2 beta_1)/((1 - beta_1) eta) = 38/eta at beta_1 = 0.9 (Cohen et al., 2022).

References:
  Cohen, Kaur, Li, Kolter & Talwalkar, Gradient descent on neural networks
  typically occurs at the edge of stability, ICLR 2021.
  Cohen, Ghorbani, Krishnan, Agarwal, Medapati, Badura, Suo, Cardoze, Nado,
  Dahl & Gilmer, Adaptive gradient methods at the edge of stability, 2022.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from wonderland import _checks
from wonderland.landscape.descent import scalar_function
from wonderland.landscape.preconditioning import preconditioner

__all__ = ["smoothness", "sharpness", "preconditioned_sharpness",
           "preconditioner"]

PyTree = Any
Function = Callable[[PyTree], jax.Array]


def _power(matvec, v0, iters, tol):
  """Power iteration on a symmetric operator A from the unit vector v0.

  Stops when both the Rayleigh quotient r = v . A v and rho = ||A v|| change
  by at most tol rho from one product to the next, or after ``iters``
  products.

  Returns:
    ``(r, rho)`` at the last iterate.
  """

  def normalize(w, v):
    norm = jnp.linalg.norm(w)
    return jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), v)

  def cond(state):
    i, _, _, r, rho, r_prev, rho_prev = state
    settled = ((jnp.abs(r - r_prev) <= tol * rho)
               & (jnp.abs(rho - rho_prev) <= tol * rho))
    return (i < iters) & ~settled & jnp.isfinite(r)

  def body(state):
    i, v, w, r, rho, _, _ = state
    v = normalize(w, v)
    w = matvec(v)
    return i + 1, v, w, jnp.vdot(v, w), jnp.linalg.norm(w), r, rho

  w0 = matvec(v0)
  inf = jnp.asarray(jnp.inf, w0.dtype)
  state = (1, v0, w0, jnp.vdot(v0, w0), jnp.linalg.norm(w0), inf, inf)
  state = jax.lax.while_loop(cond, body, state)
  return state[3], state[4]


def _top_eigenvalue(matvec, v0, iters, tol):
  """The largest algebraic eigenvalue of a symmetric A, by power iteration.

  Plain power iteration finds the eigenvalue of largest magnitude, lambda_m,
  with Rayleigh quotient r_1 and rho = ||A v|| ~ |lambda_m|. If r_1 ~ rho
  (within min(10 tol, 1%)), lambda_m is positive, hence the largest: r_1 is
  the answer. Otherwise the largest-magnitude eigenvalue is negative (or
  there is a tie +-rho): power iteration on A + rho I, whose eigenvalues lambda_i + rho are >= 0 and whose
  largest is lambda_max + rho, gives r_2, and lambda_max ~ r_2 - rho. Every
  Rayleigh quotient is a lower bound on lambda_max, so the larger of the two
  estimates is kept.
  """
  r1, rho = _power(matvec, v0, iters, tol)
  dominant = r1 >= (1 - min(10 * tol, 1e-2)) * rho

  def shifted(_):
    r2, _ = _power(lambda v: matvec(v) + rho * v, v0, iters, tol)
    return jnp.maximum(r1, r2 - rho)

  return jax.lax.cond(dominant, lambda _: r1, shifted, None)


def _at_least_float32(x: PyTree) -> PyTree:
  """Every leaf in float32 at least: float16 Hessian products are too coarse."""
  return jax.tree.map(
      lambda a: jnp.asarray(a).astype(
          jnp.promote_types(jnp.result_type(a), jnp.float32)), x)


def _fixed_start(n: int, dtype) -> jax.Array:
  """v_i = sqrt(i + 2), normalized (see ``smoothness`` for why)."""
  v = jnp.sqrt(jnp.arange(2, n + 2, dtype=dtype))
  return v / jnp.linalg.norm(v)


def _start(key, v0, x_flat, x):
  """The unit start vector ~ (d,): v0 flattened, a Gaussian, or the fixed one."""
  if key is not None and v0 is not None:
    raise ValueError(
        "key and v0 must not both be given: pass a key for a Gaussian start, "
        "or v0 for a given one, got both."
    )
  if v0 is not None:
    _checks.same_structure("v0", v0, "x", x)
    v, _ = ravel_pytree(v0)
    v = v.astype(x_flat.dtype)
  elif key is not None:
    v = jax.random.normal(_checks.key(key), x_flat.shape, x_flat.dtype)
  else:
    return _fixed_start(x_flat.shape[0], x_flat.dtype)
  norm = jnp.linalg.norm(v)
  return jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0),
                   _fixed_start(x_flat.shape[0], x_flat.dtype))


def _hvp_flat(f, x):
  """(x flattened, v ~ (d,) -> H v ~ (d,)), forward over reverse."""
  flat, unravel = ravel_pytree(x)
  grad_f = jax.grad(lambda z: f(unravel(z)))
  return flat, lambda v: jax.jvp(grad_f, (flat,), (v,))[1]


def _sharpness(f, x, v0, iters, tol):
  _, hv = _hvp_flat(f, x)
  return _top_eigenvalue(hv, v0, iters, tol)


_sharpness_jit = jax.jit(_sharpness, static_argnums=(0, 3, 4))


def _preconditioned_sharpness(f, x, p_diag, v0, iters, tol):
  _, hv = _hvp_flat(f, x)
  p_flat, _ = ravel_pytree(p_diag)
  s = 1 / jnp.sqrt(p_flat.astype(v0.dtype))
  return _top_eigenvalue(lambda v: s * hv(s * v), v0, iters, tol)


_preconditioned_sharpness_jit = jax.jit(
    _preconditioned_sharpness, static_argnums=(0, 4, 5))


def _point_tree(f: Any, x: PyTree) -> tuple[PyTree, jax.Array]:
  """x checked (floats, at least float32) and flattened; f checked scalar at x."""
  _checks.float_tree(x, "x")
  x = _at_least_float32(x)
  scalar_function(f, x)
  flat, _ = ravel_pytree(x)
  return x, flat


def _iteration_args(iters: Any, tol: Any) -> tuple[int, float]:
  iters = _checks.integer("iters", iters, maximum=_checks.INT32_MAX)
  return iters, _checks.number("tol", tol)


def sharpness(
    f: Function,
    x: PyTree,
    *,
    key: jax.Array | None = None,
    v0: PyTree | None = None,
    iters: int = 1000,
    tol: float = 1e-6,
) -> jax.Array:
  """The sharpness: lambda_max, the largest eigenvalue of the Hessian of f at x.

  .. math::
    \\lambda_{max}(\\nabla^2 f(x)), \\qquad
    v_{k+1} = \\frac{H v_k}{||H v_k||}, \\quad
    \\lambda \\approx v_k \\cdot H v_k

  by power iteration on Hessian-vector products (``jax.jvp`` of ``jax.grad``;
  H is never formed). Power iteration finds the eigenvalue of largest
  *magnitude*; where that one is negative (a saddle or a maximum, where the
  most negative curvature dominates), the iteration is run again on
  H + |lambda_m| I, whose largest eigenvalue is lambda_max + |lambda_m|, so
  the answer is always the largest algebraic eigenvalue, the one gradient
  descent is stable under when lambda_max < 2/eta. It may be negative (at a
  maximum). The iteration stops when the estimate changes by at most
  tol |lambda_m| or after ``iters`` products per run; it converges like
  (lambda_2 / lambda_1)^(2k), slowly when the top eigenvalues are close.

  Pure and jit-able (``iters`` and ``tol`` are static Python numbers): call
  it inside a jitted step, or vmap it over points.

  Args:
    f: a scalar function of x, twice differentiable.
    x: the point, a pytree of floating arrays (computed in float32 at least).
    key: a ``jax.random`` key for a Gaussian start vector.
    v0: a start vector shaped like x (a direction near the top eigenvector
      saves iterations); by default, with no key either, the fixed start
      v_i = sqrt(i + 2) (normalized) of ``smoothness``.
    iters: the most Hessian-vector products per power iteration, a positive
      int (at most twice this many in all).
    tol: the relative change of the estimate that stops the iteration, > 0.

  Returns:
    lambda_max, a scalar array.

  Raises:
    ValueError: if f is not callable or not scalar at x, x holds a leaf that
      is not floating-point, both key and v0 are given, v0 is not shaped like
      x, or iters or tol is not positive.
  """
  x, flat = _point_tree(f, x)
  iters, tol = _iteration_args(iters, tol)
  start = _start(key, v0, flat, x)
  return _sharpness_jit(f, x, start, iters, tol)


def preconditioned_sharpness(
    f: Function,
    x: PyTree,
    p_diag: PyTree,
    *,
    key: jax.Array | None = None,
    v0: PyTree | None = None,
    iters: int = 1000,
    tol: float = 1e-6,
) -> jax.Array:
  """lambda_max(P^{-1/2} H P^{-1/2}) for a diagonal preconditioner P, by power iteration.

  .. math::
    \\lambda_{max}(P^{-1/2} \\nabla^2 f(x) P^{-1/2}), \\qquad
    P = \\mathrm{diag}(p)

  A preconditioned step x_t = x_{t-1} - eta P^{-1} grad f(x_{t-1}) is gradient
  descent in the coordinates y = P^{1/2} x, where the Hessian is
  P^{-1/2} H P^{-1/2}: its top eigenvalue is the sharpness that meets the
  stability threshold. For adam, P = sqrt(v_hat_t) + eps (the denominator of
  its update) and the threshold is (2 + 2 beta_1)/((1 - beta_1) eta); read p
  from an optimizer's state with ``preconditioner(opt_state)``. The same
  power iteration, with the same treatment of a dominant negative eigenvalue,
  as ``sharpness``; with p = 1 it is ``sharpness``.

  Args:
    f: a scalar function of x.
    x: the point, a pytree of floating arrays.
    p_diag: the diagonal of P, a pytree shaped like x, every entry > 0 (not
      checked, so that it may be traced: a zero entry gives inf or NaN).
    key, v0, iters, tol: as for ``sharpness``.

  Returns:
    The preconditioned lambda_max, a scalar array.

  Raises:
    ValueError: as ``sharpness``, and if p_diag is not shaped like x.
  """
  x, flat = _point_tree(f, x)
  _checks.same_structure("p_diag", p_diag, "x", x)
  iters, tol = _iteration_args(iters, tol)
  start = _start(key, v0, flat, x)
  return _preconditioned_sharpness_jit(f, x, p_diag, start, iters, tol)


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
  ``sharpness`` gives the largest eigenvalue with its sign instead.

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
  x = _checks.point("x", x)
  max_iter = _checks.integer("max_iter", max_iter, maximum=_checks.INT32_MAX)
  rtol = _checks.number("rtol", rtol)
  scalar_function(f, x)
  start = _start(key, None, x, x)
  return _smoothness_jit(f, x, start, max_iter, rtol)


def _smoothness(f, x, v0, max_iter, rtol):
  _, hv = _hvp_flat(f, x)
  return _power(hv, v0, max_iter, rtol)[1]


_smoothness_jit = jax.jit(_smoothness, static_argnums=(0, 3, 4))
