"""The sharpness along a run: warm-started Lanczos, for the trace of minimize and sweep.

``wonderland.minimize`` and ``wonderland.sweep`` record the curvatures named
in ``CURVATURES`` at their evaluation steps when ``record`` names them: each
evaluation is a fixed number of Hessian-vector products, started from the
vector the previous evaluation left (``warm_sharpness``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from wonderland.landscape.curvature import _at_least_float32
from wonderland.landscape.curvature import _fixed_start
from wonderland.landscape.curvature import _hvp_flat

__all__ = ["CURVATURES", "start_vector", "warm_sharpness"]

PyTree = Any
Function = Callable[[PyTree], jax.Array]

# In the trace: ``wonderland.minimize`` and ``wonderland.sweep`` record these
# at their evaluation steps when ``record`` names them.
CURVATURES = ("sharpness", "preconditioned_sharpness")


def start_vector(x: PyTree) -> jax.Array:
  """The fixed unit start v_i = sqrt(i + 2) ~ (d,) for a point x (a pytree)."""
  flat, _ = ravel_pytree(_at_least_float32(x))
  return _fixed_start(flat.shape[0], flat.dtype)


def warm_sharpness(f: Function, x: PyTree, v: jax.Array, iters: int,
                   p_diag: PyTree | None = None) -> tuple[jax.Array, jax.Array]:
  """The top eigenvalue of A = H(x) by ``iters`` Lanczos steps from v.

  .. math::
    A = \\nabla^2 f(x) \\;\\text{or}\\; P^{-1/2} \\nabla^2 f(x) P^{-1/2},
    \\qquad \\lambda_{max}(A) \\approx \\lambda_{max}(Q_k^T A Q_k)

  The in-trace form of ``sharpness``: a fixed number k = ``iters`` of
  Hessian-vector products build an orthonormal basis Q_k of the Krylov space
  span(v, A v, ..., A^{k-1} v) (Lanczos, with full reorthogonalization), and
  the largest eigenvalue of the k x k tridiagonal Q_k^T A Q_k (the top Ritz
  value) estimates lambda_max. Like every Rayleigh quotient it is a lower
  bound on lambda_max, with its sign whatever the magnitude of the negative
  eigenvalues, and it converges much faster than power iteration when the
  top eigenvalues crowd together (as they do at the edge of stability).
  Started from the previous evaluation's Ritz vector v (warm start), a few
  products suffice while the top eigenvector moves slowly along the path.
  Memory: k vectors of x's size. Traceable and vmappable; ``iters`` is
  static.

  Args:
    f: a scalar function of x.
    x: the point, a pytree of floating arrays.
    v: the start, a unit vector ~ (d,) in x's flattened order.
    iters: the number k of Hessian-vector products, >= 1.
    p_diag: None, or P's diagonal shaped like x (preconditioned sharpness).

  Returns:
    ``(estimate, v_next)``: the top Ritz value and its Ritz vector, the next
    start.
  """
  _, hv = _hvp_flat(f, _at_least_float32(x))
  matvec = hv
  if p_diag is not None:
    p_flat, _ = ravel_pytree(p_diag)
    s = 1 / jnp.sqrt(p_flat.astype(v.dtype))
    matvec = lambda u: s * hv(s * u)
  k, dtype = iters, v.dtype
  tiny = jnp.finfo(dtype).eps * 16

  def body(j, state):
    basis, alpha, beta, q, alive = state
    basis = basis.at[j].set(jnp.where(alive, q, 0))
    w = matvec(q)
    a = jnp.vdot(q, w)
    # Full reorthogonalization, twice ("twice is enough").
    w = w - basis.T @ (basis @ w)
    w = w - basis.T @ (basis @ w)
    b = jnp.linalg.norm(w)
    # The Krylov space is invariant once w vanishes (relative to A's scale):
    # the steps after that add nothing.
    alive_next = alive & (b > tiny * jnp.maximum(jnp.abs(a), jnp.max(
        jnp.abs(alpha))))
    alpha = alpha.at[j].set(jnp.where(alive, a, jnp.nan))
    beta = beta.at[j].set(jnp.where(alive_next, b, 0))
    q = jnp.where(alive_next, w / jnp.where(b > 0, b, 1), q)
    return basis, alpha, beta, q, alive_next

  state = (jnp.zeros((k, v.shape[0]), dtype), jnp.zeros((k,), dtype),
           jnp.zeros((k,), dtype), v, jnp.bool_(True))
  basis, alpha, beta, _, _ = jax.lax.fori_loop(0, k, body, state)
  # Steps after a breakdown are decoupled (beta = 0); giving them the
  # smallest live diagonal entry keeps them from being the top Ritz value.
  alive = ~jnp.isnan(alpha)
  alpha = jnp.where(alive, alpha, jnp.min(jnp.where(alive, alpha, jnp.inf)))
  t = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
  values, vectors = jnp.linalg.eigh(t)
  ritz = basis.T @ jnp.where(alive, vectors[:, -1], 0)
  norm = jnp.linalg.norm(ritz)
  ritz = jnp.where(norm > 0, ritz / jnp.where(norm > 0, norm, 1), v)
  return values[-1], ritz
