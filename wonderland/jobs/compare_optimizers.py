"""The main job (``experiments/compare_optimizers.py``): optimizers x problems.

For every optimizer and problem, ``wonderland.sweep`` runs the update
x_t = x_{t-1} + u_t for each learning rate eta of a log-spaced grid and each
initial point x_0 (seed); the learning rate with the lowest median final value
over seeds is the optimizer's on that problem (DeepOBS/AlgoPerf). One
(optimizer, problem) pair is a *cell*.

Compilation dominates the cost of small problems, so cells are batched into
one program: the problems of a batch (same dimension) are stacked behind
``jax.lax.switch`` on a problem index k carried beside x (``stack_problems``),
and the optimizers behind a switch on an optimizer index swept as a
hyperparameter (``switch_optimizer``). ``config.batching`` picks the batches:
``"all"`` (one program per dimension), ``"optimizer"`` or ``"problem"`` (one
program per optimizer or per problem), ``"cell"`` (one plain sweep per cell:
exact per-cell compile and run times, and the slowest). Under vmap a switch
evaluates every branch, so in a batch every run costs the same per step.

Resume: each finished cell is saved as ``cells/<optimizer>__<problem>.npz``
(atomically: a temporary file, then a rename) with a fingerprint of what
determines it (steps, grid, seeds, the problem's parameters). A rerun with the
same workdir reads matching cells back and computes only the others; a run
killed at any moment loses at most the batch in flight. Every other output
(``summary.csv``, ``results.jsonl``, ``report.md``, the figures) is rebuilt
from the cells and written atomically; ``config.json`` is written last, so a
run that fails (or is killed) leaves the previous one's as it was. Resume does
not read it: each cell carries its own fingerprint.
"""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from wonderland import experiment
from wonderland import files
from wonderland import optim
from wonderland import problems as problems_lib
from wonderland import report
from wonderland import _run as run_lib
from wonderland import _sweep as sweep_lib
from wonderland.batching import stack_problems
from wonderland.batching import switch_optimizer
from wonderland.jobs import compare_report
from wonderland.jobs.cells import Cell
from wonderland.jobs.cells import cell_path
from wonderland.jobs.cells import load_cell
from wonderland.jobs.cells import save_cell
from wonderland.jobs.compare_report import RANKING_COLUMNS
from wonderland.jobs.compare_report import SUMMARY_COLUMNS

__all__ = [
    "OPTIMIZERS",
    "BATCHING",
    "SUMMARY_COLUMNS",
    "Batch",
    "Cell",
    "optimizer_factory",
    "run_batch",
    "best_paths",
    "initial_points",
    "cell_path",
    "save_cell",
    "load_cell",
    "validate",
    "run",
]

# The optimizers of ``wonderland.optim`` by config name.
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "gd": optim.gd,
    "normalized_gd": optim.normalized_gd,
    "momentum": optim.momentum,
    "nesterov": optim.nesterov,
    "adagrad": optim.adagrad,
    "rmsprop": optim.rmsprop,
    "adam": optim.adam,
    "armijo_gd": optim.armijo_gd,
}
BATCHING = ("all", "optimizer", "problem", "cell")
_STDOUT_COLUMNS = {
    "problem": "problem", "optimizer": "optimizer",
    "best_learning_rate": "eta*", "median_final_gap": "gap",
    "median_steps_to_target": "steps", "time_to_target": "time_s",
    "compile_seconds": "compile_s", "diverged_fraction": "diverged",
}


# --- optimizers and problems behind a switch ---------------------------------


def _traced_failure(factory) -> str | None:
  """None if ``factory`` runs with a traced eta as the job runs it, else why.

  The job runs every optimizer under ``jax.vmap`` over a traced learning rate
  (``wonderland.sweep``, ``best_paths``); this traces two steps of
  ``run.minimize`` on f(x) = ||x||^2 (``jax.eval_shape``: nothing is
  compiled or run).
  """
  make = sweep_lib.inject_traced(factory, ("learning_rate",))
  x0 = jnp.ones(2, jnp.float32)

  def one(lr):
    trace = run_lib.minimize(lambda x: jnp.sum(x**2), make(learning_rate=lr),
                             x0, steps=2, keep_path=True)
    return trace.path

  try:
    jax.eval_shape(jax.vmap(one), jax.ShapeDtypeStruct((2,), jnp.float32))
  except Exception as e:  # pylint: disable=broad-except
    return type(e).__name__
  return None


def optimizer_factory(name: str) -> Callable[..., optax.GradientTransformation]:
  """The factory ``learning_rate -> GradientTransformation`` named ``name``.

  Args:
    name: a key of ``OPTIMIZERS`` or ``optax.<name>`` for an optax optimizer
      whose first argument is ``learning_rate`` (e.g. ``optax.lion``) and
      that runs with a traced learning rate (checked by tracing two steps).

  Raises:
    experiment.ConfigError: for any other name.
  """
  if name in OPTIMIZERS:
    return OPTIMIZERS[name]
  valid = ", ".join(OPTIMIZERS) + ", optax.<name>"
  if name.startswith("optax."):
    factory = getattr(optax, name[len("optax."):], None)
    ok = callable(factory) and not isinstance(factory, type)
    if ok:
      try:
        made = factory(learning_rate=1e-3)
        ok = callable(getattr(made, "init", None)) and callable(
            getattr(made, "update", None)
        )
      except Exception:  # pylint: disable=broad-except
        ok = False
    if ok:
      failure = _traced_failure(factory)
      if failure is None:
        return factory
      raise experiment.ConfigError(
          f"config.optimizers has {name!r}, which fails ({failure}) when its "
          f"learning rate is a traced value, as the sweep over eta needs; "
          f"valid names are {valid} for an optax optimizer that runs traced "
          f"(such as optax.lion or optax.sgd)."
      )
    raise experiment.ConfigError(
        f"config.optimizers has {name!r}, which is not an optax optimizer "
        f"taking learning_rate (such as optax.lion or optax.sgd); valid names "
        f"are {valid}."
    )
  raise experiment.ConfigError(
      f"config.optimizers has an unknown name {name!r}; valid names are "
      f"{valid}."
  )


class _Program(NamedTuple):
  f: Callable[..., jax.Array]
  make_optimizer: Callable[..., optax.GradientTransformation]
  stacked: bool


def _program(fns, factories) -> _Program:
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
  """

  values: np.ndarray
  diverged: np.ndarray
  compile_seconds: float
  run_seconds: float


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
  """
  x0 = np.asarray(x0)
  n_p, n_s, dim = x0.shape
  if n_p != len(fns):
    raise ValueError(
        f"x0 must have shape (len(fns), n_seeds, dim) = ({len(fns)}, ...), got "
        f"{x0.shape}."
    )
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
  result = sweep_lib.sweep(
      program.f, program.make_optimizer, grid, start, steps=steps
  )
  n_o, n_l = len(factories), len(learning_rates)
  values = np.asarray(result.values).reshape(n_o, n_l, n_p, n_s, steps)
  diverged = np.asarray(result.diverged).reshape(n_o, n_l, n_p, n_s)
  return Batch(values, diverged, result.compile_seconds, result.run_seconds)


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
  factory = sweep_lib.inject_traced(program.make_optimizer, traced)

  def one(lr, index, k):
    if program.stacked:
      opt = factory(learning_rate=lr, index=index)
      start = {"x": jnp.asarray(x0)[k], "k": k.astype(jnp.float32)}
    else:
      opt = factory(learning_rate=lr)
      start = jnp.asarray(x0[0])
    trace = run_lib.minimize(program.f, opt, start, steps=steps,
                             keep_path=True)
    path = trace.path["x"] if program.stacked else trace.path
    return jnp.concatenate([start["x"][None] if program.stacked
                            else start[None], path])

  index = jnp.repeat(jnp.arange(n_o, dtype=jnp.float32), n_p)
  k = jnp.tile(jnp.arange(n_p), n_o)
  lrs = jnp.asarray(np.asarray(learning_rates, np.float32).reshape(-1))
  paths = jax.jit(jax.vmap(one))(lrs, index, k)
  return np.asarray(paths).reshape(n_o, n_p, steps + 1, -1)


# --- config ------------------------------------------------------------------


class _Plan(NamedTuple):
  optimizers: list[str]
  factories: dict[str, Callable[..., optax.GradientTransformation]]
  problems: dict[str, problems_lib.Problem]
  problem_kwargs: dict[str, dict[str, Any]]
  learning_rates: np.ndarray


def _problem_kwargs(name: str, config) -> dict[str, Any]:
  """The keyword arguments of ``problems.get`` that the config sets (JSON-able)."""
  if name == "quadratic":
    return {"kappa": float(config.kappa), "dim": int(config.quadratic_dim),
            "rotated": bool(config.quadratic_rotated)}
  return {}


def _build(name: str, kwargs: Mapping[str, Any], seed: int):
  kwargs = dict(kwargs)
  if kwargs.pop("rotated", False):
    kwargs["key"] = jax.random.fold_in(jax.random.key(seed), 1)
  return problems_lib.get(name, **kwargs)


def validate(config: ml_collections.ConfigDict) -> _Plan:
  """Checks every key; builds the optimizers, problems and learning rates.

  Raises:
    experiment.ConfigError: one sentence naming the key, the value given and
      what is allowed.
  """
  optimizers = experiment.split_names(
      "optimizers", config.optimizers, [*OPTIMIZERS, "optax.*"]
  )
  factories = {name: optimizer_factory(name) for name in optimizers}
  names = experiment.split_names(
      "problems", config.problems, problems_lib.names()
  )
  for key in ("steps", "num_lrs", "num_seeds"):
    experiment.require_positive(key, config[key], integer=True)
  # The grid is cast to float32: eta must stay finite and > 0 there.
  for key in ("lr_min", "lr_max"):
    experiment.require_positive(key, config[key], float32=True)
  experiment.require_positive("target_gap", config.target_gap)
  if config.lr_min > config.lr_max:
    raise experiment.ConfigError(
        f"config.lr_min must be at most config.lr_max, got lr_min="
        f"{config.lr_min!r} and lr_max={config.lr_max!r}."
    )
  experiment.require_seed("seed", config.seed)
  if config.batching not in BATCHING:
    raise experiment.ConfigError(
        f"config.batching must be one of {', '.join(BATCHING)}, got "
        f"{config.batching!r}."
    )
  built = {}
  kwargs = {}
  for name in names:
    kwargs[name] = _problem_kwargs(name, config)
    try:
      built[name] = _build(name, kwargs[name], config.seed)
    except ValueError as e:
      keys = " and ".join(f"config.{k}" for k in ("kappa", "quadratic_dim"))
      raise experiment.ConfigError(
          f"{keys} do not make a valid quadratic: {e}"
          if name == "quadratic" else f"config.problems: {e}"
      ) from None
    except ImportError as e:
      raise experiment.ConfigError(
          f"config.problems has {name!r}, which needs scikit-learn "
          f"(pip install 'wonderland[data]'): {e}."
      ) from None
    if not built[name].bounded_below:
      unbounded = [n for n in problems_lib.names()
                   if n not in ("logistic_breast_cancer", "mlp_digits")
                   and not problems_lib.get(n).bounded_below]
      raise experiment.ConfigError(
          f"config.problems has {name!r}, which is unbounded below, so runs "
          f"have no gap to f* to compare; choose problems other than "
          f"{', '.join(unbounded)}."
      )
  lrs = np.geomspace(config.lr_min, config.lr_max, int(config.num_lrs))
  return _Plan(optimizers, factories, built, kwargs, lrs)


def _fingerprint(config, plan: _Plan, optimizer: str, problem: str) -> str:
  return json.dumps({
      "optimizer": optimizer,
      "problem": problem,
      "problem_kwargs": plan.problem_kwargs[problem],
      "learning_rates": [float(f"{lr:.9g}") for lr in plan.learning_rates],
      "num_seeds": int(config.num_seeds),
      "seed": int(config.seed),
      "steps": int(config.steps),
  }, sort_keys=True)


def initial_points(problem: problems_lib.Problem, seed: int, n: int):
  """The n initial points of ``problem``: the same for every optimizer.

  The key is ``fold_in(key(seed), crc32(name))``, so it does not depend on the
  order or the choice of the other problems.
  """
  key = jax.random.fold_in(jax.random.key(seed), zlib.crc32(problem.name.encode()))
  return np.asarray(problem.init(key, n), np.float32)


# --- batches -----------------------------------------------------------------


def _batches(pending: Sequence[tuple[str, str]], dims: Mapping[str, int],
             batching: str) -> list[tuple[list[str], list[str]]]:
  """Groups pending (optimizer, problem) cells into programs.

  Problems of different dimensions never share a program. A batch is a product
  optimizers x problems; it may recompute a cell that is already done (that
  cell's saved copy is kept).
  """
  batches = []
  by_dim: dict[int, list[tuple[str, str]]] = {}
  for o, p in pending:
    by_dim.setdefault(dims[p], []).append((o, p))
  for cells in by_dim.values():
    if batching == "cell":
      batches += [([o], [p]) for o, p in cells]
      continue
    if batching == "all":
      groups = {None: cells}
    elif batching == "optimizer":
      groups = {}
      for o, p in cells:
        groups.setdefault(o, []).append((o, p))
    else:
      groups = {}
      for o, p in cells:
        groups.setdefault(p, []).append((o, p))
    for group in groups.values():
      opts = list(dict.fromkeys(o for o, _ in group))
      probs = list(dict.fromkeys(p for _, p in group))
      batches.append((opts, probs))
  return batches


def _compute(config, plan: _Plan, opts, probs, done: Mapping[tuple[str, str], Cell],
             workdir: Path) -> dict[tuple[str, str], Cell]:
  """Runs one batch, computes the 2-D paths, saves the new cells."""
  steps = int(config.steps)
  problems = [plan.problems[p] for p in probs]
  factories = [plan.factories[o] for o in opts]
  x0 = np.stack([
      initial_points(p, config.seed, config.num_seeds) for p in problems
  ])
  batch = run_batch([p.fn for p in problems], factories, plan.learning_rates,
                    x0, steps=steps)
  n_runs = batch.values[..., 0].size
  best = np.zeros((len(opts), len(probs)), dtype=int)
  for i in range(len(opts)):
    for j in range(len(probs)):
      final = report.final_values(batch.values[i, :, j], batch.diverged[i, :, j])
      best[i, j] = report.best_index(final)
  dim = problems[0].dim
  if dim == 2:
    paths = best_paths([p.fn for p in problems], factories,
                       plan.learning_rates[best], x0[:, 0], steps=steps)
  else:
    paths = np.zeros((len(opts), len(probs), 0, dim), np.float32)
  cells = {}
  for i, o in enumerate(opts):
    for j, p in enumerate(probs):
      if (o, p) in done:
        continue
      cell = Cell(
          optimizer=o, problem=p, learning_rates=plan.learning_rates,
          values=batch.values[i, :, j].astype(np.float32),
          diverged=batch.diverged[i, :, j],
          path=paths[i, j].astype(np.float32),
          compile_seconds=batch.compile_seconds,
          run_seconds=batch.run_seconds, program_runs=n_runs,
          program_cells=len(opts) * len(probs),
          fingerprint=_fingerprint(config, plan, o, p),
      )
      save_cell(cell_path(workdir, o, p), cell)
      cells[(o, p)] = cell
  return cells


# --- the job -----------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Runs (or resumes) the comparison and writes every output under workdir.

  Returns:
    The summary rows (one per optimizer x problem).
  """
  plan = validate(config)
  out = experiment.prepare_workdir(
      workdir, ("cells", "figures") if config.plots else ("cells",)
  )
  start = time.perf_counter()

  cells: dict[tuple[str, str], Cell] = {}
  pending = []
  for p in plan.problems:
    for o in plan.optimizers:
      cell = load_cell(cell_path(out, o, p), _fingerprint(config, plan, o, p))
      if cell is None:
        pending.append((o, p))
      else:
        cells[(o, p)] = cell
  logging.info(
      "%d cells read back from %s, %d to compute.", len(cells), out / "cells",
      len(pending),
  )
  dims = {p: prob.dim for p, prob in plan.problems.items()}
  batches = _batches(pending, dims, config.batching)
  for i, (opts, probs) in enumerate(batches):
    t = time.perf_counter()
    logging.info(
        "batch %d/%d: %s on %s (%d runs of %d steps)...", i + 1, len(batches),
        ",".join(opts), ",".join(probs),
        len(opts) * len(probs) * len(plan.learning_rates) * config.num_seeds,
        config.steps,
    )
    new = _compute(config, plan, opts, probs, cells, out)
    cells.update(new)
    logging.info("batch %d/%d: %d cells saved in %.1fs.", i + 1, len(batches),
                 len(new), time.perf_counter() - t)

  rows, runs, fmins = compare_report.summaries(config, plan, cells)
  files.atomic_write(
      out / "summary.csv", report.csv_text(rows, SUMMARY_COLUMNS)
  )
  files.atomic_write(
      out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in runs)
  )
  figs = {}
  if config.plots:
    t = time.perf_counter()
    figs = compare_report.figures(config, plan, cells, rows, fmins, out)
    logging.info("figures drawn in %.1fs.", time.perf_counter() - t)
  files.atomic_write(
      out / "report.md", compare_report.report_md(config, plan, rows, figs, out, cells)
  )
  files.save_config(config, out)
  table = [{_STDOUT_COLUMNS[k]: r[k] for k in _STDOUT_COLUMNS} for r in rows]
  print(report.format_table(table, list(_STDOUT_COLUMNS.values())))
  print(f"\nranking (solved: median run reaches a gap of {config.target_gap:g}):")
  print(report.format_table(report.ranking(rows), RANKING_COLUMNS))
  print(f"\n{len(rows)} cells ({len(pending)} computed, "
        f"{len(rows) - len(pending)} read back) in "
        f"{time.perf_counter() - start:.1f}s; report: {out / 'report.md'}")
  return rows
