"""The compare job's orchestration: resume, batches, writes.

For every optimizer and problem of the plan, ``wonderland.sweep`` runs the
update x_t = x_{t-1} + u_t for each learning rate eta of a log-spaced grid
and each initial point x_0 (seed); the learning rate with the lowest median
final value over seeds is the optimizer's on that problem (DeepOBS/AlgoPerf;
ties at 5 significant digits go to the smaller eta). One (optimizer,
problem) pair is a *cell*.

Compilation dominates the cost of small problems, so cells are batched into
one program (``wonderland.batching.run_batch``): the problems of a batch
(same dimension) stacked behind ``jax.lax.switch`` on a problem index, the
optimizers behind a switch on an optimizer index swept as a hyperparameter.
``plan.batching`` picks the batches: ``"all"`` (one program per dimension),
``"optimizer"`` or ``"problem"`` (one program per optimizer or per problem),
``"cell"`` (one plain sweep per cell: exact per-cell compile and run times).
Under vmap a switch evaluates every branch, so in a batch every run costs the
same per step.

The optimizers come from ``config.optimizers`` (``wonderland.jobs.optimizers``:
built-ins, optax names, import paths, fixed and swept hyperparameters, labels);
a swept hyperparameter's values are variants, each one more factory in the
program's switch, and a cell holds every (eta, variant) configuration. eta*
and the runs that count follow ``wonderland.jobs.compare.protocol``.

Resume: each finished cell is saved as ``cells/<label>__<problem>.npz``
(``wonderland.jobs.compare.cells``) with a fingerprint of everything that
determines it (the optimizer's factory and its source, every
hyperparameter, the problem's definition and initial points, grid, seeds,
steps, the versions of jax, jaxlib, optax, numpy and wonderland, and a hash of
wonderland's computing code). A rerun with the same workdir reads matching
cells back and computes only the others; a run killed at any moment loses at
most the batch in flight. Every other output (``summary.csv``,
``results.jsonl``, ``curves.csv``, ``report.md``, ``report.html``, the
figures) is rebuilt from the cells and written atomically; ``config.json``
(the resolved config and ``environment``: versions, devices, git commit) is
written last, so a run that fails (or is killed) leaves the previous one's as
it was. Resume does not read it: each cell carries its own fingerprint.
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
from wonderland.jobs import optimizers as optimizers_lib
from wonderland.jobs import provenance
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import protocol
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


def _problem_identity(plan: Plan, name: str) -> dict[str, Any]:
  """The problem's definition: parameters, box, f*, initial points, data."""
  problem = plan.problems[name]
  lo, hi = (np.asarray(b, float) for b in problem.bounds)
  identity = {
      "name": name, "kwargs": dict(plan.problem_kwargs[name]),
      "dim": problem.dim, "description": problem.description,
      "fmin": float(problem.fmin) if np.isfinite(problem.fmin) else None,
      "bounds": [lo, hi],
      "x0_sha256": provenance.digest(
          initial_points(problem, plan.seed, plan.num_seeds)),
  }
  if problem.data is not None:
    identity["data_sha256"] = provenance.digest(
        *jax.tree.leaves(problem.data))
  return identity


def _fingerprints(plan: Plan) -> dict[tuple[str, str], str]:
  """Every cell's fingerprint (``cells.fingerprint``), by (label, problem)."""
  common = {
      "learning_rates": plan.learning_rates, "num_seeds": plan.num_seeds,
      "seed": plan.seed, "steps": plan.steps, "batch_size": None,
      "versions": provenance.versions(),
      "library_source": provenance.library_source(),
      # This module and the spec decide how the factories are called.
      "job_source": [provenance.file_digest(__file__),
                     provenance.file_digest(optimizers_lib.__file__)],
  }
  problems = {p: _problem_identity(plan, p) for p in plan.problems}
  return {
      (o.label, p): cells_lib.fingerprint(
          optimizer={"label": o.label, **o.identity()}, problem=problems[p],
          **common)
      for o in plan.optimizers for p in plan.problems
  }


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
             workdir: Path, fingerprints: Mapping[tuple[str, str], str]
             ) -> dict[tuple[str, str], Cell]:
  """Runs one batch, computes the 2-D paths, saves the new cells.

  Every variant of every optimizer is one factory of the program; a cell
  gathers its optimizer's variants eta-major (``cells.Cell``).
  """
  problems = [plan.problems[p] for p in probs]
  factories, owner = [], {}
  for o in opts:
    spec = plan.optimizer(o)
    owner[o] = []
    for variant in spec.variants():
      owner[o].append((len(factories), variant))
      factories.append(spec.make(variant))
  fns = [p.fn for p in problems]
  x0 = np.stack([initial_points(p, plan.seed, plan.num_seeds)
                 for p in problems])
  batch = batching.run_batch(fns, factories, plan.learning_rates, x0,
                             steps=plan.steps)
  n_runs = batch.values[..., 0].size
  n_lr = len(plan.learning_rates)
  cells, best = {}, {}
  # best_paths runs every factory on every problem: eta per (factory,
  # problem), each cell's eta* for its chosen variant's factory.
  path_lrs = np.tile(plan.learning_rates[:1, None],
                     (len(factories), len(probs))).astype(float)
  for o in opts:
    members = owner[o]
    # eta-major configurations: (eta_0, variant_0), (eta_0, variant_1), ...
    order = [(i, f) for i in range(n_lr) for f, _ in members]
    variants = [v for _ in range(n_lr) for _, v in members]
    for j, p in enumerate(probs):
      pick = lambda a: np.stack([a[f, i, j] for i, f in order])
      values = pick(batch.values).astype(np.float32)
      diverged = pick(batch.diverged)
      final_x = pick(batch.final_x).astype(np.float32)
      left = protocol.left_domain(values, final_x, problems[j])
      c = protocol.choose(protocol.scores(values, diverged, left))
      i_lr, f = order[c]
      path_lrs[f, j] = plan.learning_rates[i_lr]
      best[(o, p)] = f
      cells[(o, p)] = dict(
          optimizer=o, problem=p,
          learning_rates=np.repeat(plan.learning_rates, len(members)),
          values=values, diverged=diverged, final_x=final_x,
          variants_json=json.dumps(variants))
  dim = problems[0].dim
  if dim == 2:
    paths = batching.best_paths(fns, factories, path_lrs, x0[:, 0],
                                steps=plan.steps)
  else:
    paths = np.zeros((len(factories), len(probs), 0, dim), np.float32)
  new = {}
  for (o, p), fields in cells.items():
    if (o, p) in done:
      continue
    cell = Cell(
        **fields, path=paths[best[(o, p)], probs.index(p)].astype(np.float32),
        compile_seconds=batch.compile_seconds, run_seconds=batch.run_seconds,
        program_runs=n_runs, program_cells=len(opts) * len(probs),
        fingerprint=fingerprints[(o, p)],
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
  env = provenance.environment()
  fingerprints = _fingerprints(plan)

  cells: dict[tuple[str, str], Cell] = {}
  pending = []
  for p in plan.problems:
    for o in plan.labels:
      cell = cells_lib.load_cell(cells_lib.cell_path(out, o, p),
                                 fingerprints[(o, p)])
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
    n_factories = sum(len(plan.optimizer(o).variants()) for o in opts)
    logging.info(
        "batch %d/%d: %s on %s (%d runs of %d steps)...", i + 1, len(batches),
        ",".join(opts), ",".join(probs),
        n_factories * len(probs) * len(plan.learning_rates) * plan.num_seeds,
        plan.steps,
    )
    new = _compute(plan, opts, probs, cells, out, fingerprints)
    cells.update(new)
    logging.info("batch %d/%d: %d cells saved in %.1fs.", i + 1, len(batches),
                 len(new), time.perf_counter() - t)

  tables = compare_report.tables(cells, plan)
  files.atomic_write(out / "summary.csv", tables.summary_csv)
  files.atomic_write(out / "results.jsonl", tables.results_jsonl)
  files.atomic_write(out / "curves.csv", tables.curves_csv)
  figs = {}
  if plan.plots:
    t = time.perf_counter()
    figs = compare_report.figures(out, cells, tables, plan)
    logging.info("figures drawn in %.1fs.", time.perf_counter() - t)
  markdown = compare_report.report_md(plan, tables, figs, out, cells, env)
  files.atomic_write(out / "report.md", markdown)
  files.atomic_write(out / "report.html",
                     compare_report.report_html(markdown, out))
  provenance.save_config(config, out, env)
  print(compare_report.stdout_text(tables.rows, plan))
  print(f"\n{len(tables.rows)} cells ({len(pending)} computed, "
        f"{len(tables.rows) - len(pending)} read back) in "
        f"{time.perf_counter() - start:.1f}s; report: {out / 'report.md'} "
        f"(and report.html)")
  return tables.rows
