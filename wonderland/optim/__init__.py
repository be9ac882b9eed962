"""Gradient descent and its accelerations (§1.3, §1.3.2) as Optax transformations.

x_t = x_{t-1} + eta_t p_t: every optimizer here turns the gradient
grad f(x_{t-1}) into the step x_t - x_{t-1}, which ``optax.apply_updates``
adds to the params. Each is an ``optax.GradientTransformation``: a
``NamedTuple`` state and two pure functions, ``init(params) -> state`` and
``update(grads, state, params) -> (updates, state)``; ``update`` keeps the
tree structure of ``grads`` and the dtypes of the state, so a jitted step
compiles once. The ``scale_by_*`` blocks are sign-neutral; the named
optimizers chain one with the step size eta_t (a number or a schedule).
Hyperparameters are checked when an optimizer is built (a schedule or a
traced value, as under ``optax.inject_hyperparams``, is let through).

The named optimizers by name, like ``wonderland.problems``: ``names()`` lists
them in the notes' order and ``get(name)`` returns the factory, whose first
argument is the learning rate eta:

  >>> from wonderland import optim
  >>> optim.get("adam")(1e-2)                     # the same as optim.adam(1e-2)
  >>> optim.get("optax.lion")(1e-3)               # any optax optimizer by name
"""

from typing import Callable

import optax

from wonderland import _checks

from wonderland.optim.alias import adagrad
from wonderland.optim.alias import adam
from wonderland.optim.alias import gd
from wonderland.optim.alias import momentum
from wonderland.optim.alias import nesterov
from wonderland.optim.alias import normalized_gd
from wonderland.optim.alias import rmsprop
from wonderland.optim.linesearch import armijo_gd
from wonderland.optim.linesearch import ArmijoState
from wonderland.optim.linesearch import scale_by_armijo
from wonderland.optim.transforms import AdagradState
from wonderland.optim.transforms import AdamState
from wonderland.optim.transforms import MomentumState
from wonderland.optim.transforms import RmspropState
from wonderland.optim.transforms import scale_by_adagrad
from wonderland.optim.transforms import scale_by_adam
from wonderland.optim.transforms import scale_by_learning_rate
from wonderland.optim.transforms import scale_by_momentum
from wonderland.optim.transforms import scale_by_rmsprop
from wonderland.optim.transforms import scale_by_unit_norm
from wonderland.optim.transforms import ScaleByLearningRateState

__all__ = [
    # the registry
    "get",
    "names",
    # §1.3: steepest descent, the normalized direction, a careful step size
    "gd",
    "normalized_gd",
    "armijo_gd",
    # §1.3.2: momentum and step sizes that adapt to the gradient
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    # sign-neutral building blocks and their states
    "scale_by_learning_rate",
    "scale_by_unit_norm",
    "scale_by_momentum",
    "scale_by_adagrad",
    "scale_by_rmsprop",
    "scale_by_adam",
    "scale_by_armijo",
    "ScaleByLearningRateState",
    "MomentumState",
    "AdagradState",
    "RmspropState",
    "AdamState",
    "ArmijoState",
]

# The named optimizers, in the notes' order: a factory each, whose first
# argument is the learning rate.
_REGISTRY: dict[str, Callable[..., optax.GradientTransformation]] = {
    "gd": gd,
    "normalized_gd": normalized_gd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "armijo_gd": armijo_gd,
}


def names() -> tuple[str, ...]:
  """The registry's optimizer names, in the notes' order (gd first)."""
  return tuple(_REGISTRY)


def get(name: str) -> Callable[..., optax.GradientTransformation]:
  """The optimizer factory named ``name``; its first argument is eta.

  Args:
    name: one of ``names()``, or ``"optax.<name>"`` for an optax optimizer
      whose first argument is ``learning_rate`` (such as ``optax.lion``).

  Returns:
    The factory, e.g. ``get("adam") is adam`` and ``get("optax.lion") is
    optax.lion``.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones), or an
      ``optax.<name>`` that is not a function building a transformation from
      ``learning_rate`` alone (it is built once with eta = 1e-3 to check).
  """
  if isinstance(name, str) and name in _REGISTRY:
    return _REGISTRY[name]
  valid = ", ".join(names()) + ", optax.<name>"
  if not (isinstance(name, str) and name.startswith("optax.")):
    raise ValueError(f"unknown optimizer {name!r}; valid names are: {valid}.")
  factory = getattr(optax, name[len("optax."):], None)
  refused = ValueError(
      f"{name!r} is not an optax optimizer taking learning_rate (such as "
      f"optax.lion or optax.sgd); valid names are: {valid}."
  )
  if not callable(factory) or isinstance(factory, type):
    raise refused
  try:
    _checks.transformation(factory(learning_rate=1e-3))
  except Exception:  # pylint: disable=broad-except
    raise refused from None
  return factory
