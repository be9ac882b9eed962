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
"""

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
