"""Objectives with known minima to test optimizers on (§1.3, §1.3.1).

Every problem is a ``Problem`` record: ``fn`` (x ~ (dim,) -> scalar), ``dim``,
``bounds``, the known ``minimizers`` ~ (m, dim) and ``fmin``, ``init(key, n)``,
and what is known of its convexity and constants L and mu. Build one by name:

  >>> import jax
  >>> from wonderland import problems
  >>> p = problems.get("rosenbrock", dim=5)
  >>> p.fn(p.minimizers[0])                         # 0.0
  >>> q = problems.get("quadratic", kappa=100.0, dim=2)
  >>> x0 = q.init(jax.random.key(0), 8)             # ~ (8, 2), inside q.bounds

``names()`` lists the registry (sorted), ``two_d()`` the 2-D analytic problems
for contour plots. Registry:

* convex: ``quadratic`` (kappa, dim, key), ``booth``, ``matyas``;
* non-convex with known minima: ``rosenbrock`` (dim), ``beale``,
  ``himmelblau``, ``rastrigin`` (dim), ``ackley`` (dim), ``styblinski_tang``
  (dim), ``three_hump_camel``, ``six_hump_camel``, ``goldstein_price``,
  ``mccormick``;
* stationary points that are not minima: ``saddle`` (x^2 - y^2),
  ``monkey_saddle`` (x^3 - 3xy^2), both unbounded below;
* the book's exercises: ``sin_cos`` and ``x_sin_2x`` (1-D);
* real data (``pip install -e ".[data]"``): ``logistic_breast_cancer``
  (l2, standardize; convex) and ``mlp_digits`` (hidden, l2, standardize;
  non-convex) on scikit-learn's bundled sets; ``logistic_mnist1d``
  (standardize; convex), ``mlp_mnist1d`` (hidden, standardize) and
  ``cnn_mnist1d`` (channels, standardize) on MNIST-1D.

A real-data problem also has ``loss(x, batch)``, ``data`` (its training split)
and ``evaluate(x)`` (held-out loss and accuracy), for stochastic training with
``wonderland.data``'s minibatch sampler; ``fn`` is its full-batch training loss.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from wonderland.problems import analytic
from wonderland.problems import data
from wonderland.problems import mnist1d
from wonderland.problems.base import KINDS
from wonderland.problems.base import Problem

__all__ = ["Problem", "KINDS", "names", "get", "two_d"]

_REGISTRY: dict[str, Callable[..., Problem]] = {
    **{name: getattr(analytic, name) for name in analytic.__all__},
    **{name: getattr(data, name) for name in data.__all__},
    **{name: getattr(mnist1d, name) for name in mnist1d.__all__},
}

_TWO_D = (
    "quadratic", "booth", "matyas", "rosenbrock", "beale", "himmelblau",
    "rastrigin", "ackley", "styblinski_tang", "three_hump_camel",
    "six_hump_camel", "goldstein_price", "mccormick", "saddle",
    "monkey_saddle", "sin_cos",
)


def names() -> tuple[str, ...]:
  """The registry's problem names, sorted."""
  return tuple(sorted(_REGISTRY))


def two_d() -> tuple[str, ...]:
  """The analytic problems whose default ``get(name)`` is 2-D, for contour plots.

  The convex ones come first, then those with known minima, then the two
  saddles (unbounded below) and ``sin_cos``.
  """
  return _TWO_D


def get(name: str, **kwargs: Any) -> Problem:
  """Builds the problem ``name`` with its keyword arguments.

  Args:
    name: one of ``names()``.
    **kwargs: the problem's parameters, e.g. ``get("quadratic", kappa=100.0,
      dim=2)``, ``get("rosenbrock", dim=5)``, ``get("mlp_digits", hidden=16)``.

  Returns:
    A ``Problem``.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones), an
      argument the problem does not take, or a bad value (e.g. ``dim=1`` for
      ``rosenbrock``, ``kappa < 1``).
    ImportError: for the real-data problems when scikit-learn (or, for
      MNIST-1D, the mnist1d package) is missing.
  """
  if not isinstance(name, str) or name not in _REGISTRY:
    raise ValueError(
        f"unknown problem {name!r}; valid names are: {', '.join(names())}."
    )
  builder = _REGISTRY[name]
  params = inspect.signature(builder).parameters
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    accepted = ", ".join(params) if params else "no arguments"
    raise ValueError(
        f"problem {name!r} got unexpected argument(s) {', '.join(unknown)}; "
        f"it accepts: {accepted}."
    )
  return builder(**kwargs)
