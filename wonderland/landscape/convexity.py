"""The chord inequality of convexity (§1.3.1), sampled inside a box."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from wonderland import _checks
from wonderland.landscape.descent import scalar_function

__all__ = ["ConvexityReport", "convexity_test"]

Function = Callable[[jax.Array], jax.Array]


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
  scale = (jnp.abs(f_mid) + alpha * jnp.abs(f1)[:, None]
           + (1 - alpha) * jnp.abs(f2)[:, None])
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
    n_alphas: how many points on each chord, a positive int. The
      n_pairs n_alphas chord points ~ (d,) must fit in
      ``wonderland._checks.MAX_BYTES`` (2 GiB).
    rtol: the relative rounding allowance, > 0.

  Returns:
    A ``ConvexityReport``.

  Raises:
    ValueError: for bad bounds, a bad key, a non-positive n_pairs, n_alphas or
      rtol, chord points that would take more than 2 GiB, an f that is not
      scalar, or an f that is not finite at some sampled point (convexity is
      not defined there: shrink the box).
  """
  lower, upper = _checks.box(bounds)
  key = _checks.key(key)
  n_pairs = _checks.integer("n_pairs", n_pairs)
  n_alphas = _checks.integer("n_alphas", n_alphas)
  d = lower.shape[0]
  _checks.allocation(
      "n_pairs", n_pairs,
      lower.dtype.itemsize * n_pairs * (2 * d + n_alphas * (d + 8)),
      f"the sampled chords (n_pairs x n_alphas = {n_pairs} x {n_alphas} "
      f"points ~ ({d},))")
  rtol = _checks.number("rtol", rtol)
  scalar_function(f, lower)
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
