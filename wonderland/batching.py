"""Many optimizers on many problems in one compiled sweep.

``wonderland.sweep`` traces every swept hyperparameter, so anything that can
be written as a number can be swept without recompiling. These two helpers
turn the choice of optimizer and of objective into such numbers:

* ``stack_problems(fns)`` is one objective of params ``{"x": x, "k": k}``
  that evaluates ``fns[round(k)](x)`` under ``jax.lax.switch``;
* ``switch_optimizer(factories)`` is one factory ``make(learning_rate,
  index)`` that applies ``factories[round(index)]`` to x and never moves k.

Sweeping ``index`` and the per-run k together runs every (optimizer,
problem) cell in a single program: one compilation instead of one per cell.
Every run pays for the branches it evaluates, and on a CPU ``lax.switch``
under ``vmap`` evaluates all of them, so per-cell wall times measured this
way are amortized costs, not each cell's own.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

__all__ = ["switch_optimizer", "stack_problems"]


def switch_optimizer(
    factories: Sequence[Callable[..., optax.GradientTransformation]],
) -> Callable[..., optax.GradientTransformationExtraArgs]:
  """One optimizer factory that runs ``factories[index]``, index a number.

  The returned ``make(learning_rate, index)`` acts on params
  ``{"x": x, "k": k}`` (see ``stack_problems``): it applies the chosen
  optimizer to x (its state holds the state of every factory, only the
  chosen one advances) and leaves the problem index k alone (zero update).
  Because ``index`` is a plain number, ``wonderland.sweep`` can sweep it like
  a learning rate, so all optimizers share one compiled program. The line
  searches get f as a function of x alone (other extra arguments are not
  passed on). index is rounded and clipped to [0, len(factories) - 1]: a
  traced value cannot be refused. Since the state holds every factory's
  state, ``wonderland.minimize``'s ``step_sizes`` reads the first
  ``step_size`` or ``learning_rate`` in it, which may belong to a factory
  that was not chosen (``wonderland.sweep`` records no step sizes).

  Args:
    factories: optimizer factories taking ``learning_rate``.

  Returns:
    ``make(learning_rate, index) -> optax.GradientTransformationExtraArgs``.
  """
  factories = tuple(factories)
  if not factories:
    raise ValueError("factories must hold at least one optimizer factory.")

  def make(learning_rate, index):
    opts = [
        optax.with_extra_args_support(m(learning_rate)) for m in factories
    ]

    def init_fn(params):
      return tuple(o.init(params["x"]) for o in opts)

    def update_fn(updates, state, params=None, **extra):
      if params is None:
        raise ValueError("switch_optimizer needs params={'x': x, 'k': k}.")
      k = params["k"]
      value_fn = extra.get("value_fn")
      x_value_fn = None
      if value_fn is not None:
        x_value_fn = lambda x: value_fn({"x": x, "k": k})
      grad = extra.get("grad")
      args = dict(value=extra.get("value"), value_fn=x_value_fn,
                  grad=None if grad is None else grad["x"])

      def branch(i):
        def apply(states):
          u, s = opts[i].update(updates["x"], states[i], params["x"], **args)
          return u, states[:i] + (s,) + states[i + 1:]
        return apply

      which = jnp.clip(jnp.round(index).astype(jnp.int32), 0, len(opts) - 1)
      u, state = jax.lax.switch(
          which, [branch(i) for i in range(len(opts))], state
      )
      return {"x": u, "k": jnp.zeros_like(k)}, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)

  make.__name__ = "switch_optimizer"
  return make


def stack_problems(
    fns: Sequence[Callable[[jax.Array], jax.Array]],
) -> Callable[[Mapping[str, jax.Array]], jax.Array]:
  """One objective of ``{"x": x, "k": k}`` that is ``fns[round(k)](x)``.

  All ``fns`` take the same ``x ~ (dim,)``. k is a float so that the params
  stay differentiable; its gradient is 0 and ``switch_optimizer`` never moves
  it. k is rounded half to even (as Python's ``round``) and clipped to
  [0, len(fns) - 1]: a traced value cannot be refused.
  """
  fns = tuple(fns)
  if not fns:
    raise ValueError("fns must hold at least one objective.")

  def f(params):
    k = jnp.clip(jnp.round(params["k"]).astype(jnp.int32), 0, len(fns) - 1)
    return jax.lax.switch(k, fns, params["x"])

  return f
