"""The trace's sums over the update and the gradient, in one pass over memory.

``wonderland._loop.step`` reads ||grad f||, ||u_t|| and <u_t, grad f> off
``sums(u, g)``; see its docstring for the cut of the reduction per backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["sums"]


def _add(total, part):
  return part if total is None else total + part


# Block length of the trace's reductions: see ``_sums``.
_SUM_BLOCK = 256


def _reduce3(terms, axis):
  zeros = tuple(jnp.zeros((), t.dtype) for t in terms)
  return jax.lax.reduce(
      terms, zeros, lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]), axis
  )


def _leaves(updates, grad):
  """The leaves of u and g, flattened, in at least float32."""
  for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grad)):
    acc = jnp.promote_types(jnp.result_type(u, g), jnp.float32)
    yield jnp.ravel(u).astype(acc), jnp.ravel(g).astype(acc)


def _blocked_sums(updates, grad):
  """``sums`` for XLA:CPU: blocks of ``_SUM_BLOCK``, then pairwise."""
  uu = ug = gg = None
  for u, g in _leaves(updates, grad):
    n = u.shape[0]
    head = n - n % _SUM_BLOCK
    parts = []
    if head:
      ub = u[:head].reshape(-1, _SUM_BLOCK)
      gb = g[:head].reshape(-1, _SUM_BLOCK)
      blocks = _reduce3((ub * ub, ub * gb, gb * gb), (1,))
      parts.append(tuple(jnp.sum(b) for b in blocks))
    if head < n or not head:  # the tail (also an empty leaf's zeros)
      ut, gt = u[head:], g[head:]
      parts.append(_reduce3((ut * ut, ut * gt, gt * gt), (0,)))
    for p_uu, p_ug, p_gg in parts:
      uu, ug, gg = _add(uu, p_uu), _add(ug, p_ug), _add(gg, p_gg)
  return uu, ug, gg


def _flat_sums(updates, grad):
  """``sums`` off CPU: one variadic reduction per leaf."""
  uu = ug = gg = None
  for u, g in _leaves(updates, grad):
    p_uu, p_ug, p_gg = _reduce3((u * u, u * g, g * g), (0,))
    uu, ug, gg = _add(uu, p_uu), _add(ug, p_ug), _add(gg, p_gg)
  return uu, ug, gg


def sums(updates, grad):
  """(<u, u>, <u, g>, <g, g>) over the pytrees, in one pass over u and g.

  One variadic reduction takes the three sums together (three separate sums
  make XLA:CPU write u * u and g * g to memory first). Sums are accumulated in
  at least float32. How the reduction is cut depends on the backend:

  - XLA:CPU emits a flat reduction as one float32 running sum, which loses
    accuracy at millions of parameters; so on CPU each leaf is cut into blocks
    of ``_SUM_BLOCK`` numbers, one variadic reduction gives every block's
    three partial sums, and ``jnp.sum`` adds the partials pairwise (accurate
    to ~1e-7 relative, tests/test_run.py);
  - XLA:GPU already reduces in a tree of partial sums, where the blocks only
    add small kernels; so off CPU each leaf is one flat variadic reduction.

  The measurements behind both choices are in benchmarks/README.md.
  """
  return jax.lax.platform_dependent(
      updates, grad, cpu=_blocked_sums, default=_flat_sums
  )
