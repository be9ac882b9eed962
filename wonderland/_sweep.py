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
- the steps run in chunks of at most ``chunk_steps``, with an absl
  ``logging.info`` line after each chunk (the last chunk may overshoot
  ``steps``; the extra steps are masked and dropped);
- on CPU the same inputs give bitwise identical arrays, on one device or many.

Each returned array is sharded along its first axis that divides evenly by the
device count, replicated on every device otherwise; with several processes it
is replicated, so every process holds the same, complete result.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wonderland import _checks
from wonderland import _loop
from wonderland import data as data_lib
from wonderland import report

__all__ = ["SweepResult", "sweep", "METRICS"]

PyTree = Any

METRICS = ("final_value", "steps_to_target")

_AXIS = "runs"


class SweepResult(NamedTuple):
  """The runs of a sweep, laid out on the grid.

  ``G`` below is the grid's shape, the lengths of its value arrays in the
  dict's order, and ``S`` the number of initial points (seeds).

  Attributes:
    values: f(x_t) for t = 1..steps ~ (*G, S, steps); NaN from the step at
      which a run diverged.
    grad_norms: ||grad f(x_t)|| ~ (*G, S, steps), NaN likewise; None with
      ``record=("value",)``.
    final_params: where every run stopped (``wonderland.Trace.params``:
      for a diverged run, the first point where f or grad f blew up, or the
      point whose update did), a pytree like one seed of x0 with leaves
      ~ (*G, S, *leaf).
    diverged: whether each run diverged ~ (*G, S).
    hparams: name -> the swept values broadcast to the grid ~ G (numpy).
    names: the swept hyperparameter names, in the grid's order.
    fixed: the fixed (not swept) keyword arguments of the factory.
    steps: the number of steps.
    compile_seconds: time spent lowering and compiling (near 0 when cached).
    run_seconds: time spent running the compiled programs.
    evals: with ``evaluate``, name -> its value after each of ``eval_steps``
      ~ (*G, S, n_evals), NaN at steps a run did not reach; None otherwise.
    eval_steps: with ``evaluate``, the evaluated steps ~ (n_evals,) (numpy);
      None otherwise.
  """

  values: jax.Array
  grad_norms: jax.Array
  final_params: PyTree
  diverged: jax.Array
  hparams: dict[str, np.ndarray]
  names: tuple[str, ...]
  fixed: dict[str, Any]
  steps: int
  compile_seconds: float
  run_seconds: float
  evals: dict[str, jax.Array] | None = None
  eval_steps: np.ndarray | None = None

  def score(
      self, metric: str = "final_value", target: float | None = None,
      mode: str = "min",
  ) -> np.ndarray:
    """The median over seeds of ``metric`` for every grid point ~ G.

    Args:
      metric: ``"final_value"``, f at the last step, or
        ``"steps_to_target"``, the first t with f(x_t) <= target (+inf if never
        reached), as in DeepOBS and AlgoPerf; lower is better for both. Or
        the name of a metric of ``evals`` (e.g. ``"val_accuracy"``): its
        value at the last evaluation, better as ``mode`` says. A diverged run
        (or a NaN) scores the worst: +inf for ``"min"``, -inf for ``"max"``.
      target: the value to reach, for ``"steps_to_target"`` only.
      mode: ``"min"`` or ``"max"``, whether lower or higher is better; only
        an evaluated metric may be ``"max"``.

    Raises:
      ValueError: for an unknown metric or mode, or a target missing, not
        finite, or given with another metric.
    """
    signed = self._per_run(metric, target, mode)
    medians = np.median(np.where(np.isnan(signed), np.inf, signed), axis=-1)
    return -medians if mode == "max" else medians

  def _per_run(self, metric: str, target: float | None,
               mode: str = "min") -> np.ndarray:
    """Every run's score ~ (*G, S), lower is better, by report's rules."""
    evaluated = tuple(self.evals or ())
    if metric not in METRICS + evaluated:
      raise ValueError(
          f"metric must be one of "
          f"{', '.join(repr(m) for m in METRICS + evaluated)}, got {metric!r}."
      )
    if mode not in ("min", "max") or (mode == "max" and metric in METRICS):
      allowed = "'min'" if metric in METRICS else "'min' or 'max'"
      raise ValueError(
          f"mode must be {allowed} for metric {metric!r}, got {mode!r}."
      )
    if target is not None and metric != "steps_to_target":
      raise ValueError(
          f"target is only used with metric='steps_to_target', got "
          f"target={target!r} with metric={metric!r}."
      )
    diverged = np.asarray(self.diverged)
    if metric in evaluated:
      last = np.asarray(self.evals[metric], dtype=np.float64)[..., -1]
      signed = -last if mode == "max" else last
      return np.where(diverged | np.isnan(signed), np.inf, signed)
    values = np.asarray(self.values, dtype=np.float64)
    if metric == "final_value":
      return report.final_values(values, diverged)
    if (isinstance(target, bool) or not isinstance(target, numbers.Real)
        or not math.isfinite(target)):
      raise ValueError(
          f"target must be a finite number for metric='steps_to_target', "
          f"got {target!r}."
      )
    return report.steps_to_target(values, float(target))

  def best(
      self, metric: str = "final_value", target: float | None = None,
      mode: str = "min",
  ) -> dict[str, float]:
    """The hyperparameters with the best median ``metric`` over seeds.

    The choice is ``wonderland.report.best_index`` over the grid points (the
    compare job's rule): the best median; ties (for instance grid points
    that never reach the target) go to the lowest median final value, then to
    the fewest failed runs, then to grid order. A run that reaches the target
    and diverges later keeps its steps to the target.

    Args:
      metric: see ``score``; e.g. ``best("val_accuracy", mode="max")``.
      target: see ``score``.
      mode: see ``score``.

    Returns:
      A dict name -> value (a Python float) of the best grid point; an empty
      dict for an empty grid.
    """
    per_run = self._per_run(metric, target, mode)
    grid_shape, n_seeds = per_run.shape[:-1], per_run.shape[-1]
    tiebreak = None
    if metric != "final_value":
      tiebreak = self._per_run("final_value", None).reshape(-1, n_seeds)
    flat = report.best_index(per_run.reshape(-1, n_seeds), tiebreak=tiebreak)
    index = np.unravel_index(flat, grid_shape)
    return {name: float(self.hparams[name][index]) for name in self.names}


def _factory_name(make_optimizer) -> str:
  return getattr(make_optimizer, "__name__", repr(make_optimizer))


def _check_grid(make_optimizer, grid, fixed):
  """Validates grid and fixed; returns (names, host value arrays)."""
  if not callable(make_optimizer):
    raise ValueError(
        f"make_optimizer must be a callable returning an optax "
        f"GradientTransformation (such as optax.adam), got {make_optimizer!r}."
    )
  if not isinstance(grid, Mapping):
    raise ValueError(
        f"grid must be a dict from hyperparameter name to a 1-D array of "
        f"values, got {type(grid).__name__}."
    )
  if fixed is None:
    fixed = {}
  if not isinstance(fixed, Mapping):
    raise ValueError(
        f"fixed must be a dict of keyword arguments for make_optimizer, got "
        f"{type(fixed).__name__}."
    )
  accepted = _checks.keyword_names(make_optimizer)
  for kind, names in (("grid", grid), ("fixed", fixed)):
    for name in names:
      if accepted is not None and name not in accepted[0]:
        raise ValueError(
            f"{kind} name {name!r} is not a hyperparameter of "
            f"{_factory_name(make_optimizer)}; accepted names are "
            f"{', '.join(accepted[0])}."
        )
  both = sorted(set(grid) & set(fixed))
  if both:
    raise ValueError(
        f"fixed must not repeat a swept name, got {', '.join(both)} in both."
    )
  if accepted is not None:
    missing = [n for n in accepted[1] if n not in grid and n not in fixed]
    if missing:
      raise ValueError(
          f"{_factory_name(make_optimizer)} requires {', '.join(missing)}; "
          f"give it in grid or in fixed."
      )
  for name, value in fixed.items():
    try:
      hash(value)
    except TypeError:
      raise ValueError(
          f"fixed[{name!r}] must be hashable (a number, string, bool, tuple or "
          f"function), got a {type(value).__name__}."
      ) from None
  values = []
  for name, value in grid.items():
    try:
      array = np.asarray(value)
    except ValueError:  # ragged nested lists
      raise ValueError(
          f"grid[{name!r}] must be a non-empty 1-D array of floats or signed "
          f"integers, got a ragged sequence."
      ) from None
    kind = array.dtype.kind
    # Unsigned integers are refused: optax negates the learning rate, which
    # wraps around in an unsigned dtype.
    if array.ndim != 1 or array.size == 0 or kind not in "if":
      raise ValueError(
          f"grid[{name!r}] must be a non-empty 1-D array of floats or signed "
          f"integers, got shape {array.shape} and dtype {array.dtype}."
      )
    if name == "learning_rate" and not np.all(array > 0):
      raise ValueError(
          f"grid['learning_rate'] must hold step sizes eta > 0 (a negative "
          f"one is gradient ascent), got {array[~(array > 0)][0].item()!r}."
      )
    values.append(array)
  _build_on_host(make_optimizer, fixed, dict(zip(grid, values)))
  return tuple(grid), values, tuple(sorted(fixed.items()))


def _build_on_host(make_optimizer, fixed, grid):
  """Builds the optimizer before tracing, so that its own checks run.

  In the sweep the swept values reach ``make_optimizer`` as tracers, which a
  factory cannot check (``wonderland.optim`` lets them through). Here it is
  called with concrete values: the first grid point, then each swept name with
  its whole 1-D array (the checks of ``wonderland.optim`` test every entry),
  and value by value only to find which one a factory refused.
  """
  factory = _factory_name(make_optimizer)
  first = {name: array[0].item() for name, array in grid.items()}
  try:
    optimizer = make_optimizer(**fixed, **first)
  except ValueError as e:
    raise ValueError(
        f"{factory} refused the first grid point {first} with fixed "
        f"{dict(fixed)}: {e}"
    ) from None
  _checks.transformation(optimizer, f"make_optimizer(...) ({factory})")
  for name, array in grid.items():
    try:
      make_optimizer(**fixed, **{**first, name: array})
      continue
    except Exception:  # pylint: disable=broad-except
      pass  # a factory that cannot take arrays, or a refused value: find out
    for value in array[1:]:
      try:
        make_optimizer(**fixed, **{**first, name: value.item()})
      except ValueError as e:
        raise ValueError(
            f"grid[{name!r}] holds {value.item()!r}, which {factory} refuses: "
            f"{e}"
        ) from None


def _check_x0(f, x0, batch=None) -> tuple[int, Any]:
  """x0's leaves share a leading seed axis, and f is scalar at one seed.

  Returns:
    ``(n_seeds, one_seed)``, one_seed the shapes of x0[0].
  """
  _checks.function(f, "f", what="a callable objective", hashable=True)
  leaves = jax.tree.leaves(x0)
  if not leaves:
    raise ValueError(f"x0 must hold at least one array, got {x0!r}.")
  shapes = [np.shape(leaf) for leaf in leaves]
  if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
    raise ValueError(
        f"x0 must have a leading seed axis shared by every leaf (one initial "
        f"point per seed), got leaf shapes {shapes}."
    )
  if shapes[0][0] == 0:
    raise ValueError(
        f"x0 must hold at least one initial point (seed), got leaf shapes "
        f"{shapes}."
    )
  one_seed = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], jnp.result_type(a)), x0
  )
  _checks.float_tree(one_seed, "x0", shapes_ok=True)
  try:
    args = (one_seed,) if batch is None else (one_seed, batch)
    _checks.scalar_output(f, args, "one seed of x0")
  except ValueError as e:
    raise ValueError(
        f"{str(e).rstrip('.')} (x0 must have a leading seed axis, x0[i] "
        f"being the i-th initial point; its leaf shapes are {shapes})."
    ) from None
  return shapes[0][0], one_seed


def _check_size(n_runs: int, steps: int, n_records: int, one_seed) -> None:
  """Refuses a sweep whose records and states would not fit in memory.

  Per run: ``n_records`` float32 records per step, and the params with room
  for the optimizer's state and the gradient (four copies).
  """
  point = sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize
              for s in jax.tree.leaves(one_seed))
  nbytes = n_runs * (steps * 4.0 * n_records + 4.0 * point)
  _checks.allocation(
      "grid, x0 and steps", None, nbytes, "the records and states of the runs",
      given=f"{n_runs:,} runs x {steps:,} steps of {point:,} bytes of params",
  )


def inject_traced(
    make_optimizer: Callable[..., optax.GradientTransformation],
    traced: Sequence[str],
):
  """``optax.inject_hyperparams(make_optimizer)`` that traces ``traced`` only.

  Every other named argument, given or left at its default, stays the Python
  value a direct call would use: traced defaults would be float32 copies (a
  sweep cell drifting from the matching ``minimize`` run in the last bits)
  and would break a factory's Python checks (``optax.lbfgs``'s
  ``if memory_size < 1``). Shared with the compare_optimizers job.
  """
  accepted = _checks.keyword_names(make_optimizer, open_ok=True)
  names = accepted[0] if accepted is not None else ()
  static = tuple(name for name in names if name not in traced)
  return optax.inject_hyperparams(make_optimizer, static_args=static)


def _make_optimizer(make_optimizer, fixed, hparams):
  factory = inject_traced(make_optimizer, tuple(hparams))
  return optax.with_extra_args_support(factory(**dict(fixed), **hparams))


def _constrain(tree, sharding):
  return jax.tree.map(
      lambda a: jax.lax.with_sharding_constraint(a, sharding), tree
  )


def _init_program(make_optimizer, fixed, sharding, hparams, x0):
  def one(hp, x):
    opt = _make_optimizer(make_optimizer, fixed, hp)
    return _loop.init_carry(opt, x)

  return _constrain(jax.vmap(one)(hparams, x0), sharding)


def _feed(spec, data, key_data):
  """The ``Feed`` of one run from its raw key data, or None."""
  if spec is None:
    return None
  batch_size, impl = spec
  return _loop.Feed(data, jax.random.wrap_key_data(key_data, impl=impl),
                    batch_size)


def _chunk_program(
    f, make_optimizer, fixed, chunk, sharding, spec, evaluate, every, record,
    hparams, carry, real, t0, steps, data, keys,
):
  """``chunk`` steps of every run, t0..t0+chunk-1; steps >= ``steps`` masked.

  Step t records f and ||grad f|| at x_{t-1} (see ``wonderland._loop.step``);
  ``_assemble_program`` shifts them to the trace's f(x_t). With ``evaluate``,
  ``chunk`` is a multiple of ``every`` and the runs are evaluated after each
  block of ``every`` steps.
  """

  def one(hp, c, key_data):
    opt = _make_optimizer(make_optimizer, fixed, hp)
    c, records, evals = _loop.scan_steps(
        f, opt, c, t0, chunk, steps=steps, feed=_feed(spec, data, key_data),
        evaluate=evaluate, every=every, record=record,
    )
    return c, (records.value, records.grad_norm, evals)

  carry, (values, grad_norms, evals) = jax.vmap(one)(hparams, carry, keys)
  replicated = NamedSharding(sharding.mesh, P())
  num_diverged = jax.lax.with_sharding_constraint(
      jnp.sum(carry.diverged & real, dtype=jnp.int32), replicated
  )
  next_t0 = jax.lax.with_sharding_constraint(t0 + chunk, replicated)
  return (_constrain(carry, sharding), _constrain(values, sharding),
          _constrain(grad_norms, sharding), _constrain(evals, sharding),
          num_diverged, next_t0)


def _finish_program(f, sharding, spec, record, carry, steps, data, keys):
  """Checks every run's last point (``wonderland._loop.finish``)."""

  def one(c, key_data):
    last = _loop.objective(f, _feed(spec, data, key_data), steps)
    c, value, grad_norm = _loop.finish(last, c, None, record)
    return c, value, grad_norm if "grad_norm" in record else None

  carry, value, grad_norm = jax.vmap(one)(carry, keys)
  return _constrain((carry, value, grad_norm), sharding)


def _out_sharding(shape, mesh, replicate):
  n = mesh.devices.size
  if not replicate:
    for axis, size in enumerate(shape):
      if size % n == 0:
        return NamedSharding(mesh, P(*([None] * axis), _AXIS))
  return NamedSharding(mesh, P())


def _assemble_program(layout, mesh, replicate, values, grad_norms, evals,
                      last_value, last_grad_norm, num_steps, params, diverged,
                      eval_steps):
  """Concatenates and shifts the chunks, drops padding, lays out the grid."""
  n_runs, lead, steps = layout

  def place(a):
    a = a[:n_runs].reshape(*lead, *a.shape[1:])
    return jax.lax.with_sharding_constraint(
        a, _out_sharding(a.shape, mesh, replicate)
    )

  values, grad_norms, _ = _loop.shift_records(
      jnp.concatenate(values, axis=1),
      None if grad_norms[0] is None else jnp.concatenate(grad_norms, axis=1),
      last_value, last_grad_norm, num_steps, steps,
  )
  if evals[0] is not None:
    ran = eval_steps <= num_steps[:, None]
    evals = {
        name: jnp.where(
            ran,
            jnp.concatenate([e[name] for e in evals], axis=1)[
                :, :eval_steps.shape[0]],
            jnp.nan)
        for name in evals[0]
    }
  else:
    evals = None
  return jax.tree.map(place, (values, grad_norms, params, diverged, evals))


_init_jit = jax.jit(_init_program, static_argnums=(0, 1, 2))
_chunk_jit = jax.jit(
    _chunk_program, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7, 8),
    donate_argnums=(10,),
)
_finish_jit = jax.jit(_finish_program, static_argnums=(0, 1, 2, 3))
_assemble_jit = jax.jit(_assemble_program, static_argnums=(0, 1, 2))


def _global(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from the same host array on every process."""
  return jax.make_array_from_callback(
      host.shape, sharding, lambda index: host[index]
  )


_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def _compile_and_run(jitted, timing, static, *args):
  """Runs jitted (compiling it on a miss of jax's cache), timing the two apart.

  The call goes through jax's own dispatch, so a cached program costs no
  Python tracing; the compile time is what jax reports for backend
  compilations during the call (``jax.monitoring``), the rest is run time.
  """
  compiled = []

  def listener(event, duration, **kwargs):
    del kwargs
    if event == _BACKEND_COMPILE:
      compiled.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  start = time.perf_counter()
  try:
    out = jax.block_until_ready(jitted(*static, *args))
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  total = time.perf_counter() - start
  timing["compile"] += sum(compiled)
  timing["run"] += max(total - sum(compiled), 0.0)
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
    chunk_steps: the most steps per compiled chunk; progress is logged after
      each chunk. With ``evaluate``, chunks are rounded up to a multiple of
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
      divergence is judged from f alone, as in ``wonderland.minimize``.

  Returns:
    A ``SweepResult`` with arrays laid out as ``(*grid, n_seeds, ...)``.

  Raises:
    ValueError: for a grid or fixed name that make_optimizer does not accept
      (the message lists the accepted names), a required hyperparameter given
      nowhere, grid values that are not a non-empty 1-D array of floats or
      signed integers, a grid value or fixed value that make_optimizer itself
      refuses, a make_optimizer that does not return a gradient
      transformation, an unhashable fixed value, steps or chunk_steps not a
      positive integer, x0 without a leading seed axis, or stochastic
      arguments that ``wonderland.minimize`` would refuse.

  Example:
    >>> result = sweep(rosenbrock, optax.sgd,
    ...                {"learning_rate": jnp.logspace(-4, -2, 8)},
    ...                jnp.zeros((4, 2)), steps=500, fixed={"momentum": 0.9})
    >>> result.values.shape
    (8, 4, 500)
  """
  steps = _checks.integer("steps", steps, maximum=_checks.INT32_MAX)
  chunk_steps = _checks.integer("chunk_steps", chunk_steps)
  record = _checks.records(record, ("value", "grad_norm"))
  names, values, fixed_items = _check_grid(make_optimizer, grid, fixed)
  batch = None
  if data is not None:
    n_examples = data_lib.check_data(data)
    batch = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(
            (min(batch_size, n_examples) if isinstance(batch_size, int)
             else 1, *np.shape(a)[1:]), jnp.result_type(a)), data)
  n_seeds, one_seed = _check_x0(f, x0, batch)
  batch_size, every = _checks.stochastic(
      one_seed, steps=steps, tol=None, data=data, batch_size=batch_size,
      key=key, evaluate=evaluate, eval_every=eval_every,
  )

  grid_shape = tuple(v.size for v in values)
  n_runs = math.prod(grid_shape) * n_seeds
  _check_size(n_runs, steps, len(record), one_seed)
  mesh = Mesh(np.array(jax.devices()), (_AXIS,))
  n_dev = mesh.devices.size
  padded = -(-n_runs // n_dev) * n_dev
  run_index = np.arange(padded) % n_runs
  sharded = NamedSharding(mesh, P(_AXIS))
  replicated = NamedSharding(mesh, P())

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

  n_chunks = -(-steps // chunk_steps)
  chunk = -(-steps // n_chunks)
  eval_steps = None
  if evaluate is not None:
    chunk = -(-chunk // every) * every
    n_chunks = -(-steps // chunk)
    eval_steps = _loop.evaluation_steps(steps, every)
  spec, keys_host = None, None
  if data is not None:
    seed_keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(
        jnp.arange(n_seeds, dtype=jnp.uint32))
    spec = (batch_size, jax.random.key_impl(key))
    keys_host = np.asarray(jax.random.key_data(seed_keys))[
        run_index % n_seeds]
  multiprocess = jax.process_count() > 1
  timing = {"compile": 0.0, "run": 0.0}

  hparams = {k: _global(v, sharded) for k, v in hparams_host.items()}
  x0_runs = jax.tree.map(lambda a: _global(a, sharded), x0_host)
  real = _global(real_host, sharded)
  steps_arr = _global(np.asarray(steps, np.int32), replicated)
  t0 = _global(np.asarray(0, np.int32), replicated)
  keys = None if keys_host is None else _global(keys_host, sharded)
  if data is not None:
    data = jax.device_put(jax.tree.map(jnp.asarray, data), replicated)

  statics = (f, make_optimizer, fixed_items)
  carry = _compile_and_run(
      _init_jit, timing, (make_optimizer, fixed_items, sharded), hparams,
      x0_runs,
  )
  value_chunks, grad_norm_chunks, eval_chunks = [], [], []
  for i in range(n_chunks):
    carry, vals, gnorms, evals, num_diverged, t0 = _compile_and_run(
        _chunk_jit, timing,
        (*statics, chunk, sharded, spec, evaluate, every, record),
        hparams, carry, real, t0, steps_arr, data, keys,
    )
    value_chunks.append(vals)
    grad_norm_chunks.append(gnorms)
    eval_chunks.append(evals)
    logging.info(
        "sweep: %d/%d steps of %d runs (%d chunks of %d), %d diverged, "
        "%.2fs compiling, %.2fs running.",
        min((i + 1) * chunk, steps), steps, n_runs, n_chunks, chunk,
        int(num_diverged), timing["compile"], timing["run"],
    )
  carry, last_value, last_grad_norm = _compile_and_run(
      _finish_jit, timing, (f, sharded, spec, record), carry, steps_arr, data,
      keys,
  )
  layout = (n_runs, (*grid_shape, n_seeds), steps)
  out_values, out_gnorms, out_params, out_diverged, out_evals = (
      _compile_and_run(
          _assemble_jit, timing, (layout, mesh, multiprocess),
          tuple(value_chunks), tuple(grad_norm_chunks), tuple(eval_chunks),
          last_value, last_grad_norm, carry.num_steps, carry.params,
          carry.diverged, eval_steps,
      ))
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
