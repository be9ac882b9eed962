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
* ``run_cells`` runs the same grid with each (optimizer, problem) cell as a
  block of its own: a branch of a ``lax.switch`` on a scalar cell index,
  so that XLA compiles every cell's code apart from the others' and runs only
  its own branch. A cell's numbers then depend on the cell alone: not on
  which optimizers and problems share the program, nor on the device count
  (bitwise, on CPU);
* ``best_paths`` keeps the iterates x_0..x_T of one run per (optimizer,
  problem), each at its own learning rate, in one compiled program.

Why ``run_batch``'s numbers depend on the rest of the program: XLA:CPU
contracts multiply-adds into FMA instructions wherever its fusion decisions
allow, and those decisions depend on the whole graph (a switch under vmap is
a select over every branch; the per-device batch size changes the matmul
kernels and the fusions). So the same run rounds differently, by about one
float32 ulp at first, in programs of different shapes; chaotic problems grow
that into different learning rates chosen. ``run_cells`` fixes each cell's
program instead (measured in ``benchmarks/invariance.py``).

One factory and one objective need no switch: both then run them plainly.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax.sharding import PartitionSpec as P

from wonderland import _loop
from wonderland import _scan
from wonderland import _sweep
from wonderland._run import minimize
from wonderland._sweep import inject_traced
from wonderland._sweep import sweep

__all__ = [
    "switch_optimizer", "stack_problems", "Batch", "run_batch", "run_cells",
    "best_paths",
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


def _initial_points(x0, fns) -> np.ndarray:
  """x0 as an array ~ (len(fns), n_seeds, dim), or one sentence."""
  x0 = np.asarray(x0)
  if x0.ndim != 3 or x0.shape[0] != len(fns):
    raise ValueError(
        f"x0 must have shape (len(fns), n_seeds, dim) = ({len(fns)}, ...), got "
        f"{x0.shape}."
    )
  return x0


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
  x0 = _initial_points(x0, fns)
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


# What run_cells records: run_batch's sweep records the same.
_RECORD = ("value", "grad_norm")


def _cells_program(fns, factories, steps, mesh, cell_index, learning_rates,
                   x0):
  """Every block (cell) of a device, one after another (``lax.map``)."""
  n_o = len(factories)

  def branch(o, p):
    factory = inject_traced(factories[o], ("learning_rate",))

    def one(lr, x):
      # minimize's loop (wonderland._loop), without its host-side checks.
      opt = optax.with_extra_args_support(factory(learning_rate=lr))
      carry = _loop.init_carry(opt, x, _RECORD)
      carry, recs, _ = _scan.scan_steps(fns[p], opt, carry, 0, steps,
                                        record=_RECORD)
      carry, value, grad_norm = _loop.finish(fns[p], carry, None, _RECORD)
      values, _, _ = _scan.shift_records(recs.value, recs.grad_norm, value,
                                         grad_norm, carry.num_steps, steps)
      return values, ~carry.alive, carry.params

    return lambda lrs, xs: jax.vmap(one)(lrs, xs)

  branches = [branch(c % n_o, c // n_o) for c in range(n_o * len(fns))]

  def block(args):
    c, lrs, xs = args
    return jax.lax.switch(c, branches, lrs, xs)

  def local(c, lrs, xs):
    return jax.lax.map(block, (c, lrs, xs))

  spec = P(_sweep.AXIS)
  # check_vma=False: the loop's fresh scalars (step counts, flags) are not
  # marked as varying over the device axis, as every block's values are.
  return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec),
                       out_specs=spec, check_vma=False)(
                           cell_index, learning_rates, x0)


_cells_jit = jax.jit(_cells_program, static_argnums=(0, 1, 2, 3))


def run_cells(
    fns: Sequence[Callable[[jax.Array], jax.Array]],
    factories: Sequence[Callable[..., optax.GradientTransformation]],
    learning_rates: np.ndarray,
    x0: np.ndarray,
    *,
    steps: int,
) -> Batch:
  """``run_batch``'s runs, each cell computed on its own: bitwise invariant.

  Cell (o, p), factory o on objective p, is one block of
  n_lr x n_seeds runs (``jax.vmap`` of ``wonderland.minimize``'s loop with
  the learning rate traced and ``record=("value", "grad_norm")``, the
  recording of ``run_batch``'s sweep). The blocks are dealt to the devices
  (a ``jax.shard_map`` over every device, padded with copies of block 0);
  each device runs its blocks one after another, and a block runs one branch
  of a ``jax.lax.switch`` on its scalar cell index. XLA compiles each branch
  apart and runs only the chosen one, so a cell's arrays are the same bits
  whatever other cells share the program and however many devices there are
  (on CPU, tests/test_batching.py). The price is compile time, which grows
  with the number of cells (each is its own code), where ``run_batch``
  compiles one switched program; in exchange a cell runs only its own
  branch, where under ``run_batch``'s vmapped switch every run evaluates
  every branch.

  Args:
    fns, factories, learning_rates, x0, steps: as for ``run_batch``.

  Returns:
    A ``Batch`` laid out as ``run_batch``'s.

  Raises:
    ValueError: if x0 does not hold one set of initial points per objective.
  """
  x0 = _initial_points(x0, fns)
  n_p, n_s, dim = x0.shape
  n_o, n_l = len(factories), len(learning_rates)
  n_cells = n_o * n_p
  sharding, _ = _sweep.shardings(tuple(jax.devices()))
  mesh = sharding.mesh
  n_dev = mesh.devices.size
  padded = -(-n_cells // n_dev) * n_dev
  cells = np.concatenate([np.arange(n_cells), np.zeros(padded - n_cells, int)])
  # Cell c = o + n_o p holds (eta_i, seed s) at run i n_s + s.
  lrs = np.repeat(np.asarray(learning_rates, np.float32), n_s)
  lr_blocks = np.broadcast_to(lrs, (padded, n_l * n_s))
  x0_cells = np.broadcast_to(np.asarray(x0, np.float32)[:, None, None],
                             (n_p, n_o, n_l, n_s, dim))
  x0_cells = x0_cells.reshape(n_cells, n_l * n_s, dim)
  x_blocks = x0_cells[cells]
  put = lambda a: _sweep.global_array(np.ascontiguousarray(a), sharding)
  timing = {"compile": 0.0, "run": 0.0}
  values, diverged, final = _sweep.compile_and_run(
      _cells_jit, timing, (tuple(fns), tuple(factories), steps, mesh),
      put(cells.astype(np.int32)), put(lr_blocks), put(x_blocks))
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    values, diverged, final = multihost_utils.process_allgather(
        (values, diverged, final), tiled=True)
  # Blocks are c = p n_o + o; Batch is (O, n_lr, P, n_seeds, ...).
  def layout(a):
    a = np.asarray(a)[:n_cells].reshape(n_p, n_o, n_l, n_s, *a.shape[2:])
    return np.moveaxis(a, 0, 2)
  return Batch(layout(values), layout(diverged), timing["compile"],
               timing["run"], layout(final))


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
