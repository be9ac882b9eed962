"""Analytic test functions with known minima (formulas from the standard references).

Formulas, search boxes and minima follow Wikipedia's "Test functions for
optimization" and the SFU Virtual Library of Simulation Experiments
(Surjanovic & Bingham, https://www.sfu.ca/~ssurjano/optimization.html). Values
not printed there (Himmelblau's saddles, the stationary points of ``x_sin_2x``
and of ``six_hump_camel``, ``sin_cos``'s minimizer) were computed in float64 by
Newton's method on grad f = 0 and are checked by the tests.

Each builder returns a ``Problem``; use ``wonderland.problems.get(name, ...)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import _checks
from wonderland.problems.base import box
from wonderland.problems.base import make_problem
from wonderland.problems.base import Problem
from wonderland.problems.base import require_dim
from wonderland.problems.base import require_positive_float

__all__ = [
    "quadratic",
    "booth",
    "matyas",
    "rosenbrock",
    "beale",
    "himmelblau",
    "rastrigin",
    "ackley",
    "styblinski_tang",
    "three_hump_camel",
    "six_hump_camel",
    "goldstein_price",
    "mccormick",
    "saddle",
    "monkey_saddle",
    "sin_cos",
    "x_sin_2x",
]


def quadratic(kappa: float = 10.0, dim: int = 2, key: jax.Array | None = None) -> Problem:
  """f(x) = 1/2 x^T A x with eigenvalues of A evenly spaced over [1, kappa].

  A = Q diag(lambda_1, ..., lambda_d) Q^T with lambda_i = 1 + (kappa - 1)(i - 1)/(d - 1)
  (just 1 when d = 1, which needs kappa = 1). Q is the identity, or a random
  rotation drawn from ``key`` (QR of a Gaussian matrix) when a key is given.
  L = kappa, mu = 1, the condition number is kappa; the minimizer is 0, f = 0.
  Box [-5, 5]^d. A is stored dense (d x d, built in float64): dim is refused
  where it would take more than ``wonderland._checks.MAX_BYTES`` (2 GiB, dim
  up to about 13,000, or 7,000 with a rotation).

  Raises:
    ValueError: if kappa < 1, dim < 1, dim = 1 with kappa != 1, or A would
      take more than 2 GiB.
  """
  kappa = require_positive_float("quadratic", "kappa", kappa, 1.0, inclusive=True)
  dim = require_dim("quadratic", dim)
  # float64 A and its float32 copy; a rotation adds the Gaussian, Q, R, Q A.
  _checks.allocation("quadratic: dim", dim,
                     (12 if key is None else 44) * dim * dim,
                     f"the dense {dim} x {dim} matrix A")
  if dim == 1 and kappa != 1.0:
    raise ValueError(
        f"quadratic: with dim=1 there is one eigenvalue, so kappa must be 1, got {kappa!r}."
    )
  eigenvalues = np.linspace(1.0, kappa, dim)
  a = np.diag(eigenvalues)
  if key is not None:
    key = _checks.key(key, "quadratic: key")
    gaussian = np.asarray(jax.random.normal(key, (dim, dim), dtype=jnp.float32), np.float64)
    q, r = np.linalg.qr(gaussian)
    q = q * np.sign(np.diag(r))  # the Haar-distributed rotation
    a = q @ a @ q.T
    a = (a + a.T) / 2
  a = jnp.asarray(a, dtype=float)

  def f(x):
    return 0.5 * x @ (a @ x)

  return make_problem(
      "quadratic", f, dim, box(-5.0, 5.0, dim), [[0.0] * dim], 0.0,
      convex=True, smoothness=kappa, strong_convexity=1.0,
      description=f"1/2 x^T A x, eig(A) evenly spaced in [1, {kappa:g}]",
  )


def booth() -> Problem:
  """Booth: f = (x + 2y - 7)^2 + (2x + y - 5)^2; min 0 at (1, 3); box [-10, 10]^2.

  A convex quadratic with Hessian [[10, 8], [8, 10]]: L = 18, mu = 2.
  """

  def f(x):
    return (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2

  return make_problem(
      "booth", f, 2, box(-10.0, 10.0, 2), [[1.0, 3.0]], 0.0,
      convex=True, smoothness=18.0, strong_convexity=2.0,
      description="(x + 2y - 7)^2 + (2x + y - 5)^2",
  )


def matyas() -> Problem:
  """Matyas: f = 0.26 (x^2 + y^2) - 0.48 x y; min 0 at (0, 0); box [-10, 10]^2.

  A convex quadratic with Hessian eigenvalues 1 and 0.04: L = 1, mu = 0.04.
  """

  def f(x):
    return 0.26 * (x[0] ** 2 + x[1] ** 2) - 0.48 * x[0] * x[1]

  return make_problem(
      "matyas", f, 2, box(-10.0, 10.0, 2), [[0.0, 0.0]], 0.0,
      convex=True, smoothness=1.0, strong_convexity=0.04,
      description="0.26 (x^2 + y^2) - 0.48 x y",
  )


def rosenbrock(dim: int = 2) -> Problem:
  """Rosenbrock: f = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, i < d.

  Min 0 at (1, ..., 1) for any d >= 2 (for 4 <= d <= 7 there is one more local
  minimum near (-1, 1, ..., 1)). Box [-2.048, 2.048]^d.

  Raises:
    ValueError: if dim < 2.
  """
  dim = require_dim("rosenbrock", dim, minimum=2)

  def f(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

  return make_problem(
      "rosenbrock", f, dim, box(-2.048, 2.048, dim), [[1.0] * dim], 0.0,
      convex=False,
      description="sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2",
  )


def beale() -> Problem:
  """Beale: (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2.

  Min 0 at (3, 0.5); box [-4.5, 4.5]^2.
  """

  def f(x):
    u, v = x[0], x[1]
    return ((1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2
            + (2.625 - u + u * v**3) ** 2)

  return make_problem(
      "beale", f, 2, box(-4.5, 4.5, 2), [[3.0, 0.5]], 0.0, convex=False,
      description="(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
  )


def himmelblau() -> Problem:
  """Himmelblau: f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2; box [-5, 5]^2.

  Four global minima with f = 0: (3, 2), (-2.805118, 3.131312),
  (-3.779310, -3.283186), (3.584428, -1.848126); a local maximum at
  (-0.270845, -0.923039) with f = 181.617; and four saddles.
  """

  def f(x):
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2

  minimizers = [
      [3.0, 2.0],
      [-2.805118086952745, 3.131312518250573],
      [-3.779310253377747, -3.283185991286170],
      [3.584428340330492, -1.848126526964404],
  ]
  stationary = [
      ([-0.270844590667348, -0.923038556479982], "maximum"),
      ([3.385154183607021, 0.073851879837749], "saddle"),
      ([0.086677504555396, 2.884254701174776], "saddle"),
      ([-3.073025750764390, -0.081353044287968], "saddle"),
      ([-0.127961346730680, -1.953714980244577], "saddle"),
  ]
  return make_problem(
      "himmelblau", f, 2, box(-5.0, 5.0, 2), minimizers, 0.0,
      stationary=stationary, convex=False,
      description="(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
  )


def rastrigin(dim: int = 2) -> Problem:
  """Rastrigin: f = 10 d + sum_i (x_i^2 - 10 cos(2 pi x_i)); min 0 at 0.

  A bowl covered in a lattice of local minima, near every integer point. Box
  [-5.12, 5.12]^d.
  """
  dim = require_dim("rastrigin", dim)

  def f(x):
    return 10.0 * dim + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x))

  return make_problem(
      "rastrigin", f, dim, box(-5.12, 5.12, dim), [[0.0] * dim], 0.0,
      convex=False, smoothness=2.0 + 40.0 * math.pi**2,
      description="10 d + sum_i x_i^2 - 10 cos(2 pi x_i)",
  )


def _safe_norm(x):
  # ||x|| with gradient 0 (not NaN) at x = 0: the double-where trick.
  sq = jnp.sum(x**2)
  nonzero = sq > 0
  return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def ackley(dim: int = 2) -> Problem:
  """Ackley: -20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e.

  Min 0 at 0; box [-5, 5]^d (Wikipedia; the SFU library uses [-32.768,
  32.768]^d). The first term is a cone at 0, where f is not differentiable:
  ``fn`` takes its subgradient 0 there, so 0 is a stationary point, and its
  Hessian there is that of the smooth cosine term (positive definite).
  """
  dim = require_dim("ackley", dim)

  def f(x):
    r = _safe_norm(x) / math.sqrt(dim)
    return (-20.0 * jnp.exp(-0.2 * r) - jnp.exp(jnp.mean(jnp.cos(2 * jnp.pi * x)))
            + 20.0 + math.e)

  return make_problem(
      "ackley", f, dim, box(-5.0, 5.0, dim), [[0.0] * dim], 0.0, convex=False,
      description="-20 exp(-0.2 sqrt(mean x^2)) - exp(mean cos 2 pi x) + 20 + e",
  )


_ST_X = -2.903534027771177  # root of 4x^3 - 32x + 5 = 0
_ST_F = -39.16616570377141  # per dimension: (x^4 - 16x^2 + 5x)/2 at _ST_X


def styblinski_tang(dim: int = 2) -> Problem:
  """Styblinski-Tang: f = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i); box [-5, 5]^d.

  Min -39.16616570377 d at x_i = -2.903534027771; 2^d local minima (each x_i at
  -2.9035 or 2.7468).
  """
  dim = require_dim("styblinski_tang", dim)

  def f(x):
    return 0.5 * jnp.sum(x**4 - 16.0 * x**2 + 5.0 * x)

  return make_problem(
      "styblinski_tang", f, dim, box(-5.0, 5.0, dim), [[_ST_X] * dim], _ST_F * dim,
      convex=False,
      description="1/2 sum_i x_i^4 - 16 x_i^2 + 5 x_i",
  )


def three_hump_camel() -> Problem:
  """Three-hump camel: 2x^2 - 1.05x^4 + x^6/6 + xy + y^2; min 0 at 0; box [-5, 5]^2."""

  def f(x):
    u, v = x[0], x[1]
    return 2 * u**2 - 1.05 * u**4 + u**6 / 6 + u * v + v**2

  return make_problem(
      "three_hump_camel", f, 2, box(-5.0, 5.0, 2), [[0.0, 0.0]], 0.0, convex=False,
      description="2x^2 - 1.05x^4 + x^6/6 + xy + y^2",
  )


def six_hump_camel() -> Problem:
  """Six-hump camel: (4 - 2.1x^2 + x^4/3) x^2 + xy + (-4 + 4y^2) y^2.

  Two global minima f = -1.0316284534898774 at +-(0.0898420131, -0.7126564030);
  box [-3, 3] x [-2, 2].
  """

  def f(x):
    u, v = x[0], x[1]
    return (4 - 2.1 * u**2 + u**4 / 3) * u**2 + u * v + (-4 + 4 * v**2) * v**2

  minimizers = [
      [0.089842013100318, -0.712656403020740],
      [-0.089842013100318, 0.712656403020740],
  ]
  return make_problem(
      "six_hump_camel", f, 2, box([-3.0, -2.0], [3.0, 2.0], 2), minimizers,
      -1.0316284534898774, convex=False,
      description="(4 - 2.1x^2 + x^4/3) x^2 + xy + (-4 + 4y^2) y^2",
  )


def goldstein_price() -> Problem:
  """Goldstein-Price: min 3 at (0, -1); box [-2, 2]^2; values up to about 1e6.

  f = [1 + (x + y + 1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]
      [30 + (2x - 3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)]
  """

  def f(x):
    u, v = x[0], x[1]
    a = 1 + (u + v + 1) ** 2 * (19 - 14 * u + 3 * u**2 - 14 * v + 6 * u * v + 3 * v**2)
    b = 30 + (2 * u - 3 * v) ** 2 * (
        18 - 32 * u + 12 * u**2 + 48 * v - 36 * u * v + 27 * v**2)
    return a * b

  return make_problem(
      "goldstein_price", f, 2, box(-2.0, 2.0, 2), [[0.0, -1.0]], 3.0, convex=False,
      description="Goldstein-Price",
  )


def mccormick() -> Problem:
  """McCormick: sin(x + y) + (x - y)^2 - 1.5x + 2.5y + 1; box [-1.5, 4] x [-3, 4].

  Min -sqrt(3)/2 - pi/3 = -1.9132 at (1/2 - pi/3, -1/2 - pi/3) (where
  cos(x + y) = -1/2 and x - y = 1).
  """

  def f(x):
    u, v = x[0], x[1]
    return jnp.sin(u + v) + (u - v) ** 2 - 1.5 * u + 2.5 * v + 1

  x_star = 0.5 - math.pi / 3
  return make_problem(
      "mccormick", f, 2, box([-1.5, -3.0], [4.0, 4.0], 2), [[x_star, x_star - 1]],
      -math.sqrt(3) / 2 - math.pi / 3, convex=False,
      description="sin(x + y) + (x - y)^2 - 1.5x + 2.5y + 1",
  )


def saddle() -> Problem:
  """f = x^2 - y^2: a saddle at 0 (Hessian diag(2, -2)), unbounded below; box [-2, 2]^2.

  No minimizer: ``minimizers`` is empty and ``fmin`` NaN. L = 2.
  """

  def f(x):
    return x[0] ** 2 - x[1] ** 2

  return make_problem(
      "saddle", f, 2, box(-2.0, 2.0, 2), [], math.nan,
      stationary=[([0.0, 0.0], "saddle")], convex=False, smoothness=2.0,
      bounded_below=False, description="x^2 - y^2",
  )


def monkey_saddle() -> Problem:
  """f = x^3 - 3 x y^2: a degenerate stationary point at 0 (zero Hessian).

  Unbounded below, no minimizer (``fmin`` NaN); box [-2, 2]^2. The Hessian
  vanishes at 0, so the second-order test decides nothing there.
  """

  def f(x):
    return x[0] ** 3 - 3 * x[0] * x[1] ** 2

  return make_problem(
      "monkey_saddle", f, 2, box(-2.0, 2.0, 2), [], math.nan,
      stationary=[([0.0, 0.0], "degenerate")], convex=False,
      bounded_below=False, description="x^3 - 3 x y^2",
  )


_SC_C = (1 - math.sqrt(33)) / 8  # cos(x/2) at the minimizer: 2c^2 - c/2 - 1 = 0
_SC_X = 2 * math.acos(_SC_C)
_SC_F = math.sqrt(1 - _SC_C**2) * (2 * _SC_C - 1)


def sin_cos() -> Problem:
  """The book's exercise: f(x) = sin(x_1) cos(x_2) + sin(x_1/2) cos(x_2/2) on [0, 10]^2.

  f is 4 pi-periodic in each coordinate and f(4 pi - x_1, x_2) = -f(x_1, x_2).
  Its global minimum over R^2 is at x_2 = 2 pi (mod 4 pi), where
  f = sin x_1 - sin(x_1/2), and x_1 = 2 arccos((1 - sqrt 33)/8) = 4.411326:
  f = -1.760173. In the box this is the only global minimizer; the box also
  holds local minima, maxima and saddles (``landscape.find_stationary_points``
  finds them, the tests check them against a grid).
  """

  def f(x):
    return jnp.sin(x[0]) * jnp.cos(x[1]) + jnp.sin(x[0] / 2) * jnp.cos(x[1] / 2)

  return make_problem(
      "sin_cos", f, 2, box(0.0, 10.0, 2), [[_SC_X, 2 * math.pi]], _SC_F,
      convex=False, description="sin(x1) cos(x2) + sin(x1/2) cos(x2/2)",
  )


_XS_MIN = 5.542769203248512  # roots of sin 2x + 2x cos 2x = 0
_XS_LOCAL_MIN = 2.456590219717442
_XS_MAX = (1.014378919055217, 3.989332856206620)


def x_sin_2x() -> Problem:
  """f(x) = x sin(2x) on [-6, 6]: a 1-D chain of local minima, deeper outwards.

  f is even and unbounded below on R; on the box its minimum is
  f(+-5.542769) = -5.520354 (``minimizers``, ``fmin``). Gradient descent stops
  in the first local minimum it meets: 0 (f = 0) or +-2.456590 (f = -2.407235),
  separated by the local maxima +-1.014379 (f = 0.909853) and +-3.989333
  (f = 3.958364); all are in ``stationary_points``. Momentum (§1.3.2) can
  carry it past one: with eta = 0.05 from x_0 = -3.9, gradient descent stops
  at -2.456590, while momentum with lambda = 0.9 crosses the maximum at
  -1.014379 and settles at 0 (a scan of x_0 in [-6, 6] with eta <= 0.1 found
  no such crossing for lambda <= 0.7).
  """

  def f(x):
    return x[0] * jnp.sin(2 * x[0])

  stationary = [([0.0], "minimum")]
  stationary += [([s * _XS_LOCAL_MIN], "minimum") for s in (-1, 1)]
  stationary += [([s * m], "maximum") for m in _XS_MAX for s in (-1, 1)]
  return make_problem(
      "x_sin_2x", f, 1, box(-6.0, 6.0, 1), [[-_XS_MIN], [_XS_MIN]],
      _XS_MIN * math.sin(2 * _XS_MIN), stationary=stationary, convex=False,
      bounded_below=False, description="x sin(2x)",
  )
