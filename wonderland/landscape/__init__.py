"""The landscape of an objective (§1.3.1): descent, stationary points, convexity, curvature.

The notes' definitions, each checked numerically, one module per idea:

* ``descent``: p is a descent direction at x when D_p f(x) = grad f(x) . p < 0
  (§1.3); x+ is a local minimum when, for some eps > 0, f(x+) <= f(x) for
  every x with ||x - x+|| < eps (``is_local_minimum`` samples that ball);
* ``stationary``: x+ is a stationary point when grad f(x+) = 0: minima, maxima
  and saddles alike, which is why gradient descent only guarantees a
  stationary point. The Hessian's eigenvalues tell them apart
  (``classify_stationary_point``): all positive, a minimum; all negative, a
  maximum; both signs, a saddle; a zero eigenvalue with no sign change decides
  nothing ("degenerate"). ``find_stationary_points`` searches a box for them;
* ``convexity``: f is convex when f(a x1 + (1 - a) x2) <= a f(x1) +
  (1 - a) f(x2) for all x1, x2 and a in [0, 1] (``convexity_test`` samples
  chords);
* ``curvature``: the step eta = 1/L is safe when L bounds the Hessian's
  eigenvalues (``smoothness``, the largest |eigenvalue| at x); along a run,
  gradient descent with step eta is stable in the top eigendirection only
  while the sharpness, the largest eigenvalue lambda_max of the Hessian,
  stays below 2/eta (``sharpness``; ``preconditioned_sharpness`` for the
  diagonal preconditioners of adagrad, rmsprop and adam).

The sampled tests and the search take a scalar f of a flat point ``x ~ (d,)``
(such as ``wonderland.problems.get(name).fn``); they are vmapped and compiled
once per call, and their randomness comes only from the ``key`` arguments.
The curvature functions also take pytrees and are pure and jit-able.
"""

# Deprecated: ``wonderland._checks.key`` is the key check. Bound first, so that
# a module that still imports it from here during the import of this package
# finds it.
from wonderland._checks import key as check_key  # pylint: disable=g-bad-import-order
from wonderland.landscape.convexity import convexity_test
from wonderland.landscape.convexity import ConvexityReport
from wonderland.landscape.curvature import preconditioned_sharpness
from wonderland.landscape.preconditioning import preconditioner
from wonderland.landscape.curvature import sharpness
from wonderland.landscape.curvature import smoothness
from wonderland.landscape.descent import is_descent_direction
from wonderland.landscape.descent import is_local_minimum
from wonderland.landscape.stationary import classify_stationary_point
from wonderland.landscape.stationary import find_stationary_points
from wonderland.problems.base import KINDS

__all__ = [
    "KINDS",
    "is_descent_direction",
    "classify_stationary_point",
    "is_local_minimum",
    "ConvexityReport",
    "convexity_test",
    "smoothness",
    "sharpness",
    "preconditioned_sharpness",
    "preconditioner",
    "find_stationary_points",
]
