"""The compare job's orchestration: resume, batches, writes.

For every optimizer and problem of the plan, ``wonderland.sweep`` runs the
update x_t = x_{t-1} + u_t for each learning rate eta of a log-spaced grid
and each initial point x_0 (seed); the learning rate with the lowest median
final value over seeds is the optimizer's on that problem (DeepOBS/AlgoPerf).
One (optimizer, problem) pair is a *cell*.

Compilation dominates the cost of small problems, so cells are batched into
one program (``wonderland.batching.run_batch``): the problems of a batch
(same dimension) stacked behind ``jax.lax.switch`` on a problem index, the
optimizers behind a switch on an optimizer index swept as a hyperparameter.
``plan.batching`` picks the batches: ``"all"`` (one program per dimension),
``"optimizer"`` or ``"problem"`` (one program per optimizer or per problem),
``"cell"`` (one plain sweep per cell: exact per-cell compile and run times).
Under vmap a switch evaluates every branch, so in a batch every run costs the
same per step.

Resume: each finished cell is saved as ``cells/<optimizer>__<problem>.npz``
(``wonderland.jobs.compare.cells``) with a fingerprint of what determines it
(steps, grid, seeds, the problem's parameters). A rerun with the same workdir
reads matching cells back and computes only the others; a run killed at any
moment loses at most the batch in flight. Every other output
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
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from wonderland import batching
from wonderland import cli
from wonderland import files
from wonderland import problems as problems_lib
from wonderland import report
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import report as compare_report
from wonderland.jobs.compare.cells import Cell
from wonderland.jobs.compare.config import Plan
from wonderland.jobs.compare.config import validate

__all__ = ["initial_points", "run"]


def initial_points(problem: problems_lib.Problem, seed: int, n: int):
  """The n initial points of ``problem``: the same for every optimizer.

  The key is ``fold_in(key(seed), crc32(name))``, so it does not depend on the
  order or the choice of the other problems.
  """
  key = jax.random.fold_in(jax.random.key(seed),
                           zlib.crc32(problem.name.encode()))
  return np.asarray(problem.init(key, n), np.float32)


def _fingerprint(plan: Plan, optimizer: str, problem: str) -> str:
  return cells_lib.fingerprint(
      optimizer, problem, problem_kwargs=plan.problem_kwargs[problem],
      learning_rates=plan.learning_rates, num_seeds=plan.num_seeds,
      seed=plan.seed, steps=plan.steps,
  )


def _batches(pending: Sequence[tuple[str, str]], dims: Mapping[str, int],
             mode: str) -> list[tuple[list[str], list[str]]]:
  """Groups pending (optimizer, problem) cells into programs.

  Problems of different dimensions never share a program. A batch is a product
  optimizers x problems; it may recompute a cell that is already done (that
  cell's saved copy is kept).
  """
  batches = []
  by_dim: dict[int, list[tuple[str, str]]] = {}
  for o, p in pending:
    by_dim.setdefault(dims[p], []).append((o, p))
  for group_cells in by_dim.values():
    if mode == "cell":
      batches += [([o], [p]) for o, p in group_cells]
      continue
    groups: dict[Any, list[tuple[str, str]]] = {}
    for o, p in group_cells:
      by = {"all": None, "optimizer": o, "problem": p}[mode]
      groups.setdefault(by, []).append((o, p))
    for group in groups.values():
      opts = list(dict.fromkeys(o for o, _ in group))
      probs = list(dict.fromkeys(p for _, p in group))
      batches.append((opts, probs))
  return batches


def _compute(plan: Plan, opts, probs, done: Mapping[tuple[str, str], Cell],
             workdir: Path) -> dict[tuple[str, str], Cell]:
  """Runs one batch, computes the 2-D paths, saves the new cells."""
  problems = [plan.problems[p] for p in probs]
  factories = [plan.factories[o] for o in opts]
  fns = [p.fn for p in problems]
  x0 = np.stack([initial_points(p, plan.seed, plan.num_seeds)
                 for p in problems])
  batch = batching.run_batch(fns, factories, plan.learning_rates, x0,
                             steps=plan.steps)
  n_runs = batch.values[..., 0].size
  best = np.zeros((len(opts), len(probs)), dtype=int)
  for i in range(len(opts)):
    for j in range(len(probs)):
      final = report.final_values(batch.values[i, :, j],
                                  batch.diverged[i, :, j])
      best[i, j] = report.best_index(final)
  dim = problems[0].dim
  if dim == 2:
    paths = batching.best_paths(fns, factories, plan.learning_rates[best],
                                x0[:, 0], steps=plan.steps)
  else:
    paths = np.zeros((len(opts), len(probs), 0, dim), np.float32)
  new = {}
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
          fingerprint=_fingerprint(plan, o, p),
      )
      cells_lib.save_cell(cells_lib.cell_path(workdir, o, p), cell)
      new[(o, p)] = cell
  return new


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Runs (or resumes) the comparison and writes every output under workdir.

  Returns:
    The summary rows (one per optimizer x problem).

  Raises:
    cli.ConfigError: for a bad config value or workdir, before anything is
      written.
  """
  plan = validate(config)
  out = cli.prepare_workdir(
      workdir, ("cells", "figures") if plan.plots else ("cells",)
  )
  start = time.perf_counter()

  cells: dict[tuple[str, str], Cell] = {}
  pending = []
  for p in plan.problems:
    for o in plan.optimizers:
      cell = cells_lib.load_cell(cells_lib.cell_path(out, o, p),
                                 _fingerprint(plan, o, p))
      if cell is None:
        pending.append((o, p))
      else:
        cells[(o, p)] = cell
  logging.info("%d cells read back from %s, %d to compute.", len(cells),
               out / "cells", len(pending))
  dims = {p: prob.dim for p, prob in plan.problems.items()}
  batches = _batches(pending, dims, plan.batching)
  for i, (opts, probs) in enumerate(batches):
    t = time.perf_counter()
    logging.info(
        "batch %d/%d: %s on %s (%d runs of %d steps)...", i + 1, len(batches),
        ",".join(opts), ",".join(probs),
        len(opts) * len(probs) * len(plan.learning_rates) * plan.num_seeds,
        plan.steps,
    )
    new = _compute(plan, opts, probs, cells, out)
    cells.update(new)
    logging.info("batch %d/%d: %d cells saved in %.1fs.", i + 1, len(batches),
                 len(new), time.perf_counter() - t)

  rows, runs, fmins = compare_report.summaries(
      cells, optimizers=plan.optimizers, problems=plan.problems,
      target_gap=plan.target_gap,
  )
  files.atomic_write(out / "summary.csv",
                     report.csv_text(rows, compare_report.SUMMARY_COLUMNS))
  files.atomic_write(out / "results.jsonl",
                     "".join(json.dumps(r) + "\n" for r in runs))
  figs = {}
  if plan.plots:
    t = time.perf_counter()
    figs = compare_report.figures(
        out, cells, rows, fmins, optimizers=plan.optimizers,
        problems=plan.problems, learning_rates=plan.learning_rates,
    )
    logging.info("figures drawn in %.1fs.", time.perf_counter() - t)
  files.atomic_write(out / "report.md",
                     compare_report.report_md(plan, rows, figs, out, cells))
  files.save_config(config, out)
  print(compare_report.stdout_text(rows, plan.target_gap))
  print(f"\n{len(rows)} cells ({len(pending)} computed, "
        f"{len(rows) - len(pending)} read back) in "
        f"{time.perf_counter() - start:.1f}s; report: {out / 'report.md'}")
  return rows
