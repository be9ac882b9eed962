"""The diagonal preconditioner P of adagrad, rmsprop and adam, read from their states.

An adaptive step x_t = x_{t-1} - eta P^{-1} g_t is gradient descent in the
coordinates y = P^{1/2} x, where the Hessian is P^{-1/2} H P^{-1/2}: its top
eigenvalue, the preconditioned sharpness, is what meets the stability
threshold (``wonderland.landscape.preconditioned_sharpness``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from wonderland import _checks
from wonderland.optim import transforms

__all__ = ["preconditioner", "preconditioned_state", "preconditioner_diag"]

PyTree = Any


# The preconditioned states of wonderland.optim, with their default eps.
_DEFAULT_EPS = {transforms.AdagradState: 1e-10, transforms.RmspropState: 1e-8,
                transforms.AdamState: 1e-8}


def _find_states(state: Any, hyperparams: dict, found: list) -> None:
  """Collects (state, hyperparameters) for every preconditioned state inside."""
  if type(state) in _DEFAULT_EPS:
    found.append((state, hyperparams))
  elif hasattr(state, "inner_state") and hasattr(state, "hyperparams"):
    # optax.inject_hyperparams: its hyperparameters hold eps and b2 if traced.
    _find_states(state.inner_state, dict(state.hyperparams), found)
  elif isinstance(state, (tuple, list)):
    for s in state:
      _find_states(s, hyperparams, found)


def preconditioner(opt_state: Any, *, eps: float | None = None,
                   b2: float | None = None) -> PyTree:
  """The diagonal P of an adaptive optimizer's step, read from its state.

  .. math::
    \\text{adagrad: } P = \\sqrt{G_t} + \\epsilon, \\quad
    \\text{rmsprop: } P = \\sqrt{v_t} + \\epsilon, \\quad
    \\text{adam: } P = \\sqrt{v_t / (1 - \\beta_2^t)} + \\epsilon

  so that each step is x_t = x_{t-1} - eta P^{-1} (the gradient, or for adam
  its momentum m_hat_t): pass P to ``preconditioned_sharpness``. The states
  do not hold eps and beta_2: they come from the arguments, else from
  ``optax.inject_hyperparams``' hyperparameters where the optimizer was built
  with it, else the optimizer's default (eps 1e-10 for adagrad, 1e-8 for
  rmsprop and adam; beta_2 = 0.999). Before adam's first step (t = 0) v_hat is
  taken as 0, so P = eps.

  Args:
    opt_state: the state of ``wonderland.optim.adagrad``, ``rmsprop`` or
      ``adam`` (or a chain holding exactly one of their ``scale_by_*``
      states).
    eps: the optimizer's eps, if not its default.
    b2: adam's beta_2, if not 0.999.

  Returns:
    P's diagonal, a pytree shaped like the optimizer's params.

  Raises:
    ValueError: if the state holds no adagrad, rmsprop or adam state, or more
      than one, or eps is not > 0 or b2 not in [0, 1).
  """
  if eps is not None:
    eps = _checks.number("eps", eps)
  if b2 is not None:
    b2 = _checks.number("b2", b2, inclusive=True)
    if b2 >= 1:
      raise ValueError(f"b2 must be in [0, 1), got {b2!r}.")
  return preconditioner_diag(opt_state, eps=eps, b2=b2)


def preconditioned_state(opt_state: Any) -> tuple[Any, dict]:
  """The one adagrad, rmsprop or adam state inside opt_state, and its injected hyperparameters.

  Raises:
    ValueError: if there is none, or more than one.
  """
  found: list = []
  _find_states(opt_state, {}, found)
  if len(found) != 1:
    names = sorted(t.__name__ for t in _DEFAULT_EPS)
    raise ValueError(
        f"opt_state must hold exactly one of {', '.join(names)} (the state of "
        f"wonderland.optim.adagrad, rmsprop or adam), got {len(found)} in a "
        f"{type(opt_state).__name__}."
    )
  return found[0]


def preconditioner_diag(opt_state: Any, *, eps: Any = None,
                        b2: Any = None) -> PyTree:
  """``preconditioner`` without the checks of eps and b2, which may be traced."""
  state, hyperparams = preconditioned_state(opt_state)
  if eps is None:
    eps = hyperparams.get("eps", _DEFAULT_EPS[type(state)])
  if isinstance(state, transforms.AdagradState):
    return jax.tree.map(lambda g: jnp.sqrt(g) + eps, state.sum_of_squares)
  if isinstance(state, transforms.RmspropState):
    return jax.tree.map(lambda v: jnp.sqrt(v) + eps, state.nu)
  if b2 is None:
    b2 = hyperparams.get("b2", 0.999)

  def p(v):
    t = state.count.astype(jnp.real(v).dtype)
    v_hat = jnp.where(t > 0, v / jnp.where(t > 0, 1 - b2**t, 1.0), 0.0)
    return jnp.sqrt(v_hat) + eps

  return jax.tree.map(p, state.nu)
