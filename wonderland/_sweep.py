"""Thousands of runs of §1.3's iteration as one compiled, sharded program.

``sweep(f, make_optimizer, grid, x0, steps=...)`` runs ``minimize``'s step
(see ``wonderland.minimize``: values[t-1] = f(x_t), divergence stops a run) for
every point of the hyperparameter grid times every initial point in x0:

- the swept hyperparameters are traced values (``optax.inject_hyperparams``),
  so the whole grid is one program, and a second sweep with the same shapes
  but new values compiles nothing (jax caches the programs; keep passing the
  same ``f`` and ``make_optimizer`` objects); every other argument, fixed or
  left at its default, is the Python value a direct call would use;
- before anything is traced, the factory is built on the host with the grid's
  values, so its own checks refuse a bad swept value with its own sentence;
- the runs, flattened in C order with seeds innermost, are padded to a
  multiple of the device count and sharded over every device of every process
  (a one-axis ``Mesh`` named ``"runs"`` and a ``NamedSharding``);
- the sweep is one program, x0 to the laid-out result: every run writes its
  trace in place as it steps, so nothing runs after the loop. Its steps run
  in chunks of at most ``chunk_steps``, with an absl ``logging.info`` line
  sent from inside the program after each where absl logs INFO lines
  (``jax.debug.callback``, compiled in only then: the bits are the same
  either way; the last chunk may overshoot ``steps``: the extra steps are
  masked and dropped), and one line at the end;
- the same call gives the same bits again (on CPU). A run's bits may change,
  by about one float32 rounding at first, with the program's shape: how many
  runs each device holds (the device count, the grid's size) and what else
  is in the program, because XLA:CPU's fusions, and the multiply-adds it
  contracts into FMA instructions, depend on the whole graph; a run of
  ``wonderland.minimize`` (its hyperparameters constants, not traced) rounds
  differently again. Where a run's numbers must not depend on the grid's size
  or the device count, pass ``block_size``: each device then computes its
  runs in fixed blocks of that many, one after another, each block one
  program from x0 to the end, and a run's bits depend on the block size and
  its own inputs only. Where they must not depend on which optimizers and
  problems share a program, compute each cell as its own block:
  ``wonderland.batching.run_cells``.

Each returned array is sharded along its first axis that divides evenly by the
device count, replicated on every device otherwise; with several processes it
is replicated, so every process holds the same, complete result.
"""

from __future__ import annotations

import functools
import logging as std_logging
import math
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wonderland import _checks
from wonderland import _grid
from wonderland import _sweep_programs as _programs
from wonderland import _sweep_result
from wonderland import _loop
from wonderland import _scan
from wonderland import data as data_lib
from wonderland.landscape import preconditioning

__all__ = ["SweepResult", "sweep", "METRICS"]

PyTree = Any

# The mesh axis the runs are sharded over (also batching.run_cells' blocks).
AXIS = _programs.AXIS

# Re-exported: the names a sweep's users and the compare job import from here.
SweepResult = _sweep_result.SweepResult
METRICS = _sweep_result.METRICS
inject_traced = _grid.inject_traced


def global_array(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from the same host array on every process."""
  return jax.make_array_from_callback(
      host.shape, sharding, lambda index: host[index]
  )


@functools.lru_cache(maxsize=8)
def shardings(devices: tuple) -> tuple[NamedSharding, NamedSharding]:
  """The runs' sharding over a one-axis mesh of ``devices``, and replicated
  (also ``batching.run_cells``' blocks)."""
  mesh = Mesh(np.array(devices), (AXIS,))
  return NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())


def _argument(host: np.ndarray, sharding: NamedSharding, direct: bool):
  """``host`` as the program takes it: the host array itself where ``direct``
  (one device, one process: jax's own dispatch copies it over, the cheapest
  way), else a global array laid out as ``sharding``."""
  return host if direct else global_array(host, sharding)


_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def compile_and_run(jitted, timing, static, *args):
  """Runs jitted (compiling it on a miss of jax's cache), timing the two apart.

  The call goes through jax's own dispatch, so a cached program costs no
  Python tracing. On a miss, the compile time is what jax reports
  (``jax.monitoring``) for tracing the program (the longest trace event:
  the traces of jitted functions inside it are nested in it), lowering it
  and compiling it on the backend; the rest of the call is run time.
  """
  traced, rest = [], []

  def listener(event, duration, **kwargs):
    del kwargs
    if event == _TRACE:
      traced.append(duration)
    elif event in (_LOWER, _BACKEND_COMPILE):
      rest.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  start = time.perf_counter()
  try:
    out = jax.block_until_ready(jitted(*static, *args))
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  total = time.perf_counter() - start
  compile_seconds = min(max(traced, default=0.0) + sum(rest), total)
  timing["compile"] += compile_seconds
  timing["run"] += total - compile_seconds
  return out


def sweep(
    f: Callable[[PyTree], jax.Array],
    make_optimizer: Callable[..., optax.GradientTransformation],
    grid: Mapping[str, Any],
    x0: PyTree,
    *,
    steps: int,
    fixed: Mapping[str, Any] | None = None,
    chunk_steps: int = 256,
    data: PyTree | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    evaluate: Callable[[PyTree], dict[str, jax.Array]] | None = None,
    eval_every: int | None = None,
    record: Sequence[str] = ("value", "grad_norm"),
    sharpness_iters: int = 20,
    block_size: int | None = None,
) -> SweepResult:
  """Runs ``make_optimizer(**fixed, **point)`` from every x0, every point.

  Every run is ``wonderland.minimize``'s iteration without a tolerance
  (stochastic with ``data``, evaluated with ``evaluate``, as there),

  .. math::
    x_t = x_{t-1} + u_t(\\theta), \\qquad t = 1..\\mathrm{steps},

  with theta one point of the product of the grid's value arrays. All runs
  are one compiled program (the hyperparameters are traced), sharded over all
  devices; see the module docstring.

  Args:
    f: the objective, a scalar function of one initial point.
    make_optimizer: an optimizer factory, e.g. ``optax.adam`` or
      ``wonderland.optim.momentum``; its swept arguments must be numeric.
    grid: hyperparameter name -> 1-D array of values; its order gives the
      order of the grid axes. May be empty (the seeds only).
    x0: the initial points, a pytree whose leaves share a leading seed axis:
      ``x0[i]`` (leaf by leaf) is seed i.
    steps: the number of steps of every run.
    fixed: keyword arguments passed unchanged to ``make_optimizer`` (e.g.
      ``{"decay": 0.9}``, or non-numeric ones such as ``{"nesterov": True}``);
      they are compiled in as constants, so a new fixed value compiles anew.
    chunk_steps: the most steps per chunk; a progress line is logged after
      each chunk where absl logs INFO lines, as under ``absl.app.run`` (none
      with ``chunk_steps >= steps``: each line is a call from the program to
      the host, compiled in only when it would be logged, or with several
      processes). With ``evaluate``, chunks are rounded up to a multiple of
      ``eval_every``.
    data: the training examples of stochastic runs (see
      ``wonderland.minimize``), shared by every run; f is then
      ``f(params, batch)``.
    batch_size: the minibatch size; required with ``data``.
    key: the key of the data order; seed s draws its minibatches with
      ``jax.random.fold_in(key, s)``, the same at every grid point (so that
      grid points are compared on the same batches).
    evaluate: a function of one run's params returning a dict of scalars,
      evaluated after every ``eval_every`` steps and after the last.
    eval_every: the evaluation period (default: only after the last step).
    record: ``("value", "grad_norm")`` (the default) or ``("value",)``: then
      ``grad_norms`` is None, the steps take no sums over g and u_t, and
      divergence is judged from f alone, as in ``wonderland.minimize``. Add
      ``"sharpness"`` or ``"preconditioned_sharpness"`` to record them at
      the evaluation steps into ``evals``, warm-started from one evaluation
      to the next, as in ``wonderland.minimize`` (P is read with the run's
      ``eps`` and ``b2`` where the grid or ``fixed`` gives them).
    sharpness_iters: the Hessian-vector products per curvature estimate.
    block_size: None (each device vectorizes over all of its runs at once:
      the fastest), or B, a positive integer: each device computes its runs
      B at a time, one block after another, each block one program from x0
      to the last point, so that a run's bits depend only on B and on its
      own inputs (hyperparameters, x0, seed), not on the grid's size or on
      the device count. The runs are padded to a multiple of B times the
      device count; ``chunk_steps`` is not used (one progress line at the
      end). Small blocks vectorize less (a tiny problem's sweep slows down
      most; see benchmarks/README.md).

  Returns:
    A ``SweepResult`` with arrays laid out as ``(*grid, n_seeds, ...)``.

  Raises:
    ValueError: for a grid or fixed name that make_optimizer does not accept
      (the message lists the accepted names), a required hyperparameter given
      nowhere, grid values that are not a non-empty 1-D array of floats or
      signed integers, a grid value or fixed value that make_optimizer itself
      refuses, a make_optimizer that does not return a gradient
      transformation, an unhashable fixed value, steps, chunk_steps or
      block_size not a positive integer, x0 without a leading seed axis, or
      stochastic arguments that ``wonderland.minimize`` would refuse.

  Example:
    >>> result = sweep(rosenbrock, optax.sgd,
    ...                {"learning_rate": jnp.logspace(-4, -2, 8)},
    ...                jnp.zeros((4, 2)), steps=500, fixed={"momentum": 0.9})
    >>> result.values.shape
    (8, 4, 500)
  """
  steps = _checks.integer("steps", steps, maximum=_checks.INT32_MAX)
  chunk_steps = _checks.integer("chunk_steps", chunk_steps)
  if block_size is not None:
    block_size = _checks.integer("block_size", block_size,
                                 maximum=_checks.INT32_MAX)
  record = _checks.records(record, ("value", "grad_norm") + _loop.CURVATURES)
  sharpness_iters = _checks.integer("sharpness_iters", sharpness_iters,
                                    maximum=_checks.INT32_MAX)
  names, values, fixed_items = _grid.check_grid(make_optimizer, grid, fixed)
  batch = None
  if data is not None:
    n_examples = data_lib.check_data(data)
    batch = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(
            (min(batch_size, n_examples) if isinstance(batch_size, int)
             else 1, *np.shape(a)[1:]), jnp.result_type(a)), data)
  n_seeds, one_seed, value_dtype = _grid.check_x0(f, x0, batch)
  batch_size, every = _checks.stochastic(
      one_seed, steps=steps, tol=None, data=data, batch_size=batch_size,
      key=key, evaluate=evaluate, eval_every=eval_every,
      probes=_loop.curvatures(record),
  )

  if "preconditioned_sharpness" in record:
    first = make_optimizer(**dict(fixed_items),
                           **{n: v[0] for n, v in zip(names, values)})
    preconditioning.preconditioned_state(jax.eval_shape(first.init, one_seed))
  grid_shape = tuple(v.size for v in values)
  n_runs = math.prod(grid_shape) * n_seeds
  sharded, replicated = shardings(tuple(jax.devices()))
  n_dev = sharded.mesh.devices.size
  unit = n_dev * (block_size or 1)
  padded = -(-n_runs // unit) * unit
  _grid.check_size(padded, steps, len(record), one_seed)
  run_index = np.arange(padded) % n_runs

  dense = np.meshgrid(*values, indexing="ij") if values else []
  hparams_host = {}
  for name, array in zip(names, dense):
    per_run = np.repeat(array.reshape(-1), n_seeds)[run_index]
    dtype = jax.dtypes.canonicalize_dtype(per_run.dtype)
    hparams_host[name] = per_run.astype(dtype)
  x0_host = jax.tree.map(
      lambda a: np.asarray(a)[run_index % n_seeds].astype(
          jax.dtypes.canonicalize_dtype(np.asarray(a).dtype)
      ),
      x0,
  )
  real_host = np.arange(padded) < n_runs

  # In blocks, one chunk: each block takes every step at once.
  n_chunks = 1 if block_size else -(-steps // chunk_steps)
  chunk = -(-steps // n_chunks)
  eval_steps = None
  if every is not None:
    chunk = -(-chunk // every) * every
    n_chunks = -(-steps // chunk)
    # (With blocks, n_chunks stays 1: the one chunk covers every step.)
    eval_steps = _scan.evaluation_steps(steps, every)
  spec, keys_host = None, None
  if data is not None:
    seed_keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(
        jnp.arange(n_seeds, dtype=jnp.uint32))
    spec = (batch_size, jax.random.key_impl(key))
    keys_host = np.asarray(jax.random.key_data(seed_keys))[
        run_index % n_seeds]
  multiprocess = jax.process_count() > 1
  logs_info = logging.get_absl_logger().isEnabledFor(std_logging.INFO)
  timing = {"compile": 0.0, "run": 0.0}

  direct = n_dev == 1 and not multiprocess
  put = lambda host, sharding: _argument(host, sharding, direct)
  hparams = {k: put(v, sharded) for k, v in hparams_host.items()}
  x0_runs = jax.tree.map(lambda a: put(a, sharded), x0_host)
  real = put(real_host, sharded)
  steps_arr = put(np.asarray(steps, np.int32), replicated)
  keys = None if keys_host is None else put(keys_host, sharded)
  if data is not None:
    data = jax.device_put(jax.tree.map(jnp.asarray, data), replicated)

  # Chunks that end at `steps` exactly mask no step.
  exact = n_chunks * chunk == steps
  layout = (n_runs, (*grid_shape, n_seeds))
  # A sweep needs no step count; values-only deterministic runs keep no
  # counters at all (_loop.lean).
  counters = "none" if _loop.lean(record, None, data is not None) else "flags"
  # Progress lines only where absl would log them: each is a call from the
  # program to Python. (With several processes, always: the line's count is
  # a sum over every device's runs, and every process must run the same
  # program, whatever each one logs.)
  progress = n_chunks > 1 and (multiprocess or logs_info)
  out_values, out_gnorms, out_params, out_diverged, out_evals = (
      compile_and_run(
          _programs.sweep_jit, timing,
          (f, make_optimizer, fixed_items, chunk, sharded, spec, evaluate,
           every, record, sharpness_iters, exact, (steps, value_dtype),
           counters, block_size, n_chunks, progress, layout, multiprocess),
          hparams, x0_runs, steps_arr, data, keys, eval_steps, real,
      ))
  if logs_info:  # (counting the diverged runs reads them back)
    logging.info(
        "sweep: %d steps of %d runs (%s), %d diverged, %.2fs compiling, "
        "%.2fs running.", steps, n_runs,
        f"blocks of {block_size}" if block_size else
        f"{n_chunks} chunk{'s' if n_chunks > 1 else ''} of {chunk}",
        int(np.sum(np.asarray(out_diverged))), timing["compile"],
        timing["run"],
    )
  hparams_grid = {
      name: np.broadcast_to(array, grid_shape)
      for name, array in zip(names, dense)
  }
  return SweepResult(
      values=out_values,
      grad_norms=out_gnorms,
      final_params=out_params,
      diverged=out_diverged,
      hparams=hparams_grid,
      names=names,
      fixed=dict(fixed_items),
      steps=steps,
      compile_seconds=timing["compile"],
      run_seconds=timing["run"],
      evals=out_evals,
      eval_steps=eval_steps,
  )
