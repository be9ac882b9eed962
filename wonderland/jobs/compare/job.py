"""The compare job's orchestration: resume, batches, writes.

For every optimizer and problem of the plan, ``wonderland.sweep`` runs the
update x_t = x_{t-1} + u_t for each learning rate eta of a log-spaced grid
and each initial point x_0 (seed); the learning rate with the lowest median
final value over seeds is the optimizer's on that problem (DeepOBS/AlgoPerf;
ties at 5 significant digits go to the smaller eta). One (optimizer,
problem) pair is a *cell*.

The cells of a batch (problems of the same dimension) are one compiled
program (``wonderland.batching.run_cells``), each cell a branch of a
``jax.lax.switch`` on a scalar cell index that runs only its own code.
``plan.batching`` picks the batches: ``"all"`` (one program per dimension),
``"optimizer"`` or ``"problem"`` (one program per optimizer or per problem),
``"cell"`` (one program per cell: exact per-cell compile and run times). The
batches decide only how the compilation is grouped, never a cell's numbers.

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
wonderland's computing code). A rerun with the same workdir reads back the
cells whose fingerprint matches and whose contents fit the plan (names,
grid, shapes, dtypes: ``cells.Layout``) and computes the others; a run killed
at any moment loses at most the batch in flight.

Kills and reruns give the same bytes. A cell's arrays depend on the cell
alone: ``batching.run_cells`` computes each one as its own block (a branch
of a switch on a scalar cell index, compiled apart from the others), so they
are the same bits whichever other optimizers and problems share its program
and however many devices run it (on CPU). A rerun therefore computes only
the cells that are missing or unfit, and everything else is rebuilt from the
cells: a run killed at any point and rerun with the same workdir writes
``summary.csv``, ``results.jsonl``, ``curves.csv`` and ``report.md`` byte for
byte as an uninterrupted run does (in the same environment), except the two
wall-clock columns of ``summary.csv`` (``report.TIMING_COLUMNS``: each cell
keeps the times of the program that computed it). Adding an optimizer or a
problem to the config leaves the other cells' numbers as they were.

The outputs are one set. ``summary.csv``, ``results.jsonl``, ``curves.csv``,
``report.md``, ``report.html``, the figures and ``config.json`` (the resolved
config and ``environment``: versions, devices, git commit) are written into a
staging directory, then moved into the workdir together by
``wonderland.files.publish``, which deletes ``manifest.json`` first and writes
it last with the sha256 of every file of the set. What a reader can rely on:
where ``wonderland.files.read_manifest(workdir)`` returns the manifest, the
files it lists are one run's, whole; where there is no ``manifest.json``, a
run is writing them or was killed while doing so, and a rerun completes the
set (it reads every cell back). A run that fails or is killed before that
point leaves the previous run's set, manifest included, as it was.

Damaged workdirs. A rerun first deletes the temporary files a killed run
left in the workdir, ``cells/`` and ``figures/`` (``files.remove_temporaries``:
only names of that pattern, and stale staging directories). A directory
where an output, a figure or a cell file goes is refused before anything is
written; a write that fails later (a full disk) stops the run with one
sentence (``cli.WorkdirError``), the cells saved so far kept.
"""

from __future__ import annotations

import contextlib
import json
import shutil
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
from wonderland.jobs.compare import figures as compare_figures
from wonderland.jobs.compare import protocol
from wonderland.jobs.compare import report as compare_report
from wonderland.jobs.compare.cells import Cell
from wonderland.jobs.compare.config import Plan
from wonderland.jobs.compare.config import validate

__all__ = ["initial_points", "run"]

# The files of a run's output set besides the figures (module docstring).
_OUTPUTS = ("summary.csv", "results.jsonl", "curves.csv", "report.md",
            "report.html", "config.json", files.MANIFEST)


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
  """Groups (optimizer, problem) cells into programs.

  Problems of different dimensions never share a program; a batch is a
  product optimizers x problems, in the order of ``pending`` (it may hold a
  cell that is already done: its saved copy is kept).
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
             fingerprints: Mapping[tuple[str, str], str],
             layouts: Mapping[tuple[str, str], cells_lib.Layout]
             ) -> dict[tuple[str, str], Cell]:
  """Runs one batch and computes the 2-D paths.

  Every variant of every optimizer is one factory of the program; a cell
  gathers its optimizer's variants eta-major (``cells.Cell``), as its
  ``layouts`` entry lays them out.

  Returns:
    The batch's cells that are not in ``done`` (unsaved).
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
  batch = batching.run_cells(fns, factories, plan.learning_rates, x0,
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
          learning_rates=layouts[(o, p)].learning_rates,
          values=values, diverged=diverged, final_x=final_x,
          variants_json=layouts[(o, p)].variants_json)
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
    new[(o, p)] = cell
  return new


def _layouts(plan: Plan) -> dict[tuple[str, str], cells_lib.Layout]:
  """The ``cells.Layout`` of every cell of the plan, by (label, problem)."""
  layouts = {}
  for o in plan.optimizers:
    variants = o.variants()
    n_lr = len(plan.learning_rates)
    for p, problem in plan.problems.items():
      layouts[(o.label, p)] = cells_lib.Layout(
          optimizer=o.label, problem=p,
          learning_rates=np.repeat(plan.learning_rates, len(variants)),
          variants_json=json.dumps([v for _ in range(n_lr) for v in variants]),
          num_seeds=plan.num_seeds, steps=plan.steps, dim=problem.dim)
  return layouts


def _refuse_directories(out: Path, plan: Plan) -> None:
  """Raises ``cli.ConfigError`` if a directory is where an output goes."""
  paths = [out / name for name in _OUTPUTS]
  paths += [out / name for name in compare_figures.figure_files(plan)]
  paths += [cells_lib.cell_path(out, o, p)
            for p in plan.problems for o in plan.labels]
  for path in paths:
    if path.is_dir():
      raise cli.ConfigError(
          f"--workdir must have no directory where an output goes, got "
          f"{str(out)!r} (a directory is in the way: {str(path)!r}).")


@contextlib.contextmanager
def _writing(out: Path):
  """Turns a failed write into one sentence (``cli.WorkdirError``)."""
  try:
    yield
  except OSError as e:
    where = f": {e.filename!r}" if e.filename else ""
    raise cli.WorkdirError(
        f"--workdir must be able to hold the run's files, got {str(out)!r} "
        f"({e.strerror or type(e).__name__}{where}); the cells saved so far "
        "are kept, so a rerun once that is fixed computes only the others."
    ) from None


def _write_outputs(config, plan: Plan, out: Path, cells, tables,
                   programs: int, env) -> None:
  """Stages every output, then publishes them as one set (module docstring)."""
  stage = files.staging(out)
  try:
    files.atomic_write(stage / "summary.csv", tables.summary_csv)
    files.atomic_write(stage / "results.jsonl", tables.results_jsonl)
    files.atomic_write(stage / "curves.csv", tables.curves_csv)
    figs = {}
    if plan.plots:
      t = time.perf_counter()
      figs = compare_figures.figures(stage, cells, tables, plan)
      logging.info("figures drawn in %.1fs.", time.perf_counter() - t)
    markdown = compare_report.report_md(plan, tables, figs, stage, programs,
                                        env)
    files.atomic_write(stage / "report.md", markdown)
    files.atomic_write(stage / "report.html",
                       compare_report.report_html(markdown, stage))
    provenance.save_config(config, stage, env)
    files.publish(stage, out, about={"job": "compare_optimizers"})
  finally:
    shutil.rmtree(stage, ignore_errors=True)


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Runs (or resumes) the comparison and writes every output under workdir.

  Returns:
    The summary rows (one per optimizer x problem).

  Raises:
    cli.ConfigError: for a bad config value or workdir (a directory where an
      output goes), before anything is written.
    cli.WorkdirError: for a write that fails once the run has started (a
      full disk); the cells saved so far are kept.
  """
  plan = validate(config)
  out = cli.prepare_workdir(
      workdir, ("cells", "figures") if plan.plots else ("cells",)
  )
  _refuse_directories(out, plan)
  for path in files.remove_temporaries(out, ("cells", "figures")):
    logging.info("removed %s, left by a killed run.", path)
  start = time.perf_counter()
  env = provenance.environment()
  fingerprints = _fingerprints(plan)
  layouts = _layouts(plan)

  everything = [(o, p) for p in plan.problems for o in plan.labels]
  cells: dict[tuple[str, str], Cell] = {}
  for o, p in everything:
    cell = cells_lib.load_cell(cells_lib.cell_path(out, o, p),
                               fingerprints[(o, p)], layouts[(o, p)])
    if cell is not None:
      cells[(o, p)] = cell
  missing = [key for key in everything if key not in cells]
  dims = {p: prob.dim for p, prob in plan.problems.items()}
  batches = _batches(everything, dims, plan.batching)
  todo = _batches(missing, dims, plan.batching)
  logging.info("%d cells read back from %s, %d to compute in %d programs.",
               len(cells), out / "cells", len(missing), len(todo))
  for i, (opts, probs) in enumerate(todo):
    t = time.perf_counter()
    n_factories = sum(len(plan.optimizer(o).variants()) for o in opts)
    logging.info(
        "batch %d/%d: %s on %s (%d runs of %d steps)...", i + 1, len(todo),
        ",".join(opts), ",".join(probs),
        n_factories * len(probs) * len(plan.learning_rates) * plan.num_seeds,
        plan.steps,
    )
    new = _compute(plan, opts, probs, cells, fingerprints, layouts)
    with _writing(out):
      for (o, p), cell in new.items():
        cells_lib.save_cell(cells_lib.cell_path(out, o, p), cell)
        cells[(o, p)] = cell
    logging.info("batch %d/%d: %d cells saved in %.1fs.", i + 1, len(todo),
                 len(new), time.perf_counter() - t)

  tables = compare_report.tables(cells, plan)
  with _writing(out):
    _write_outputs(config, plan, out, cells, tables, len(batches), env)
  print(compare_report.stdout_text(tables.rows, plan))
  print(f"\n{len(tables.rows)} cells ({len(missing)} computed, "
        f"{len(tables.rows) - len(missing)} read back) in "
        f"{time.perf_counter() - start:.1f}s; report: {out / 'report.md'} "
        f"(and report.html)")
  return tables.rows
