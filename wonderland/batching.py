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

Built on them, for O optimizers on P problems of one dimension:

* ``run_batch`` runs every optimizer on every problem for a grid of learning
  rates and P x n_seeds initial points, as one ``wonderland.sweep``;
* ``best_paths`` keeps the iterates x_0..x_T of one run per (optimizer,
  problem), each at its own learning rate, in one compiled program.

One factory and one objective need no switch: both then run them plainly.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wonderland._run import minimize
from wonderland._sweep import inject_traced
from wonderland._sweep import sweep

__all__ = [
    "switch_optimizer", "stack_problems", "Batch", "run_batch", "best_paths",
]


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


class _Program(NamedTuple):
  f: Callable[..., jax.Array]
  make_optimizer: Callable[..., optax.GradientTransformation]
  stacked: bool


def _program(fns, factories) -> _Program:
  """One objective and one factory: plain for 1 x 1, else switched."""
  if len(fns) == 1 and len(factories) == 1:
    return _Program(fns[0], factories[0], False)
  return _Program(stack_problems(fns), switch_optimizer(factories), True)


class Batch(NamedTuple):
  """What ``run_batch`` returns, for O optimizers and P problems.

  Attributes:
    values: f(x_t) ~ (O, n_lr, P, n_seeds, steps).
    diverged: ~ (O, n_lr, P, n_seeds).
    compile_seconds: the program's compilation time.
    run_seconds: its run time, for all O * n_lr * P * n_seeds runs.
    final_x: where every run stopped ~ (O, n_lr, P, n_seeds, dim) (for a
      diverged run, where it blew up; ``wonderland.SweepResult.final_params``).
  """

  values: np.ndarray
  diverged: np.ndarray
  compile_seconds: float
  run_seconds: float
  final_x: np.ndarray | None = None


def run_batch(
    fns: Sequence[Callable[[jax.Array], jax.Array]],
    factories: Sequence[Callable[..., optax.GradientTransformation]],
    learning_rates: np.ndarray,
    x0: np.ndarray,
    *,
    steps: int,
) -> Batch:
  """Every factory on every objective as one ``wonderland.sweep``.

  Args:
    fns: P objectives of the same ``x ~ (dim,)``.
    factories: O optimizer factories taking ``learning_rate``.
    learning_rates: the grid ``~ (n_lr,)``.
    x0: initial points ``~ (P, n_seeds, dim)``, problem by problem.
    steps: steps per run.

  Returns:
    A ``Batch``.

  Raises:
    ValueError: if x0 does not hold one set of initial points per objective.
  """
  x0 = np.asarray(x0)
  if x0.ndim != 3 or x0.shape[0] != len(fns):
    raise ValueError(
        f"x0 must have shape (len(fns), n_seeds, dim) = ({len(fns)}, ...), got "
        f"{x0.shape}."
    )
  n_p, n_s, dim = x0.shape
  program = _program(fns, factories)
  grid = {"learning_rate": np.asarray(learning_rates, np.float32)}
  if program.stacked:
    grid = {"index": np.arange(len(factories), dtype=np.float32), **grid}
    start = {
        "x": jnp.asarray(x0.reshape(n_p * n_s, dim)),
        "k": jnp.repeat(jnp.arange(n_p, dtype=jnp.float32), n_s),
    }
  else:
    start = jnp.asarray(x0[0])
  result = sweep(program.f, program.make_optimizer, grid, start, steps=steps)
  n_o, n_l = len(factories), len(learning_rates)
  values = np.asarray(result.values).reshape(n_o, n_l, n_p, n_s, steps)
  diverged = np.asarray(result.diverged).reshape(n_o, n_l, n_p, n_s)
  final = result.final_params["x"] if program.stacked else result.final_params
  final_x = np.asarray(final).reshape(n_o, n_l, n_p, n_s, dim)
  return Batch(values, diverged, result.compile_seconds, result.run_seconds,
               final_x)


def best_paths(
    fns: Sequence[Callable[[jax.Array], jax.Array]],
    factories: Sequence[Callable[..., optax.GradientTransformation]],
    learning_rates: np.ndarray,
    x0: np.ndarray,
    *,
    steps: int,
) -> np.ndarray:
  """The iterates x_0..x_steps of one run per (optimizer, problem), one program.

  Args:
    fns: P objectives of the same dimension.
    factories: O optimizer factories.
    learning_rates: eta per cell ``~ (O, P)``.
    x0: one initial point per problem ``~ (P, dim)``.
    steps: steps per run.

  Returns:
    ``paths ~ (O, P, steps + 1, dim)``, NaN after a rejected (diverged) step.
  """
  x0 = np.asarray(x0, np.float32)
  n_o, n_p = len(factories), len(fns)
  program = _program(fns, factories)
  traced = ("learning_rate", "index") if program.stacked else ("learning_rate",)
  factory = inject_traced(program.make_optimizer, traced)

  def one(lr, index, k):
    if program.stacked:
      opt = factory(learning_rate=lr, index=index)
      start = {"x": jnp.asarray(x0)[k], "k": k.astype(jnp.float32)}
    else:
      opt = factory(learning_rate=lr)
      start = jnp.asarray(x0[0])
    trace = minimize(program.f, opt, start, steps=steps, keep_path=True)
    if program.stacked:
      return jnp.concatenate([start["x"][None], trace.path["x"]])
    return jnp.concatenate([start[None], trace.path])

  index = jnp.repeat(jnp.arange(n_o, dtype=jnp.float32), n_p)
  k = jnp.tile(jnp.arange(n_p), n_o)
  lrs = jnp.asarray(np.asarray(learning_rates, np.float32).reshape(-1))
  paths = jax.jit(jax.vmap(one))(lrs, index, k)
  return np.asarray(paths).reshape(n_o, n_p, steps + 1, -1)
