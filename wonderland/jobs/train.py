"""The training job (``experiments/train.py``): optimizers on training tasks.

The main job (``wonderland.jobs.compare``) ranks optimizers on analytic
problems; this, its sibling, ranks them on minibatch training judged on
held-out data, the setting where §1.3.2's adaptive step sizes matter. Both
read ``config.optimizers`` with one parser (``wonderland.jobs.optimizers``:
built-ins, optax names, import paths, fixed and swept hyperparameters,
labels) and choose eta* with one tie rule (``protocol.DIGITS``).

For every task (a ``Problem`` with ``loss``, ``data`` and ``evaluate``: the
MNIST-1D networks, the digits MLP, ...) and every optimizer (every variant of
its swept hyperparameters), one ``wonderland.sweep`` trains every learning
rate eta of a log-spaced grid from every seed's initialisation, with
minibatches drawn without replacement epoch by epoch, and evaluates every run
on its train, validation and test splits inside the same program. The
protocol is AlgoPerf's: eta* (and the variant) has the best median over
seeds of the validation accuracy at the last evaluation, compared at 5
significant digits (``wonderland.report.best_index(digits=5)``, the ranking's
rule); ties go to the lower median validation loss, then to the smaller eta.
The test accuracy of eta*'s runs is reported. Per task, the validation
target is the best median validation accuracy any optimizer reached, less
``config.target_margin``, set from the run itself and printed; an
optimizer's steps to the target are the first evaluated step at which its
median validation accuracy over seeds at eta* reaches it. Seed s starts every
optimizer from the same initialisation x_0 and draws the same minibatch
order, so optimizers are compared on common random numbers. An eta* at
either end of the grid is marked ``edge`` (``lr_min`` or ``lr_max``): widen
``config.lr_min``/``config.lr_max`` and rerun.

Resumable: each finished (task, optimizer) result is saved as
``cells/<label>__<task>.npz`` with a fingerprint of everything that decided it
(the factory and its source, every hyperparameter, the task's data and
initial weights, grid, seeds, steps, batch size, evaluation period, the
versions of jax, jaxlib, optax, numpy and wonderland, a hash of wonderland's
computing code); a rerun with the same workdir reads matching results back.

Outputs in the workdir: ``summary.csv`` (one row per task and optimizer),
``results.jsonl`` (one record per run), ``curves.csv`` (tidy: task,
optimizer, learning_rate, hparams, seed, step, metric, value),
``figures/<task>.png`` and the other ``config.figure_formats`` (training loss
and validation accuracy of each optimizer at eta*, median and interquartile
band over seeds), ``report.md``, ``report.html`` (the same, figures inline),
and ``config.json`` last (with ``environment``: versions, devices, git
commit).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging

from wonderland import _sweep
from wonderland import cli
from wonderland import files
from wonderland import plots
from wonderland import problems
from wonderland import report
from wonderland.jobs import figures as figures_lib
from wonderland.jobs import html
from wonderland.jobs import optimizers as optimizers_lib
from wonderland.jobs import provenance
from wonderland.jobs import train_report
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import protocol
from wonderland.jobs.optimizers import describe
from wonderland.jobs.optimizers import Optimizer

__all__ = ["Plan", "PAPER_TEST_ACCURACY", "SUMMARY_COLUMNS", "CURVE_COLUMNS",
           "choose", "validate", "run"]

# Test accuracy of Adam in the MNIST-1D paper (Greydanus and Kobak, 2024,
# Table 1): the logistic model, the MLP and the CNN.
PAPER_TEST_ACCURACY = {
    "logistic_mnist1d": 0.32, "mlp_mnist1d": 0.68, "cnn_mnist1d": 0.94,
}
SUMMARY_COLUMNS = (
    "task", "optimizer", "best_learning_rate", "hparams", "edge",
    "median_val_accuracy", "median_test_accuracy", "test_accuracy_q25",
    "test_accuracy_q75", "paper_test_accuracy", "val_target",
    "median_steps_to_target", "time_to_target", "median_train_loss",
    "diverged_fraction", "compile_seconds", "run_seconds",
)
_STDOUT_COLUMNS = ("task", "optimizer", "best_learning_rate", "edge",
                   "median_val_accuracy", "median_test_accuracy",
                   "paper_test_accuracy", "median_steps_to_target",
                   "run_seconds")
CURVE_COLUMNS = ("task", "optimizer", "learning_rate", "hparams", "seed",
                 "step", "metric", "value")
METRICS = ("train_loss", "val_loss", "val_accuracy", "test_accuracy")
FIGURE_FORMATS = ("png", "pdf", "svg")
# Every size below is checked against what one sweep would hold in memory.
_MAX_RUN_STEPS = 10**9


class Plan(NamedTuple):
  """A validated config: plain values only."""

  tasks: tuple[str, ...]
  optimizers: tuple[Optimizer, ...]
  learning_rates: tuple[float, ...]
  seeds: int
  seed: int
  steps: int
  batch_size: int
  eval_every: int
  standardize: bool
  target_margin: float = 0.02
  figure_formats: tuple[str, ...] = ("png",)
  block_size: int | None = None


def _training_tasks() -> tuple[str, ...]:
  return ("logistic_mnist1d", "mlp_mnist1d", "cnn_mnist1d",
          "logistic_breast_cancer", "mlp_digits")


def validate(config: ml_collections.ConfigDict) -> Plan:
  """Checks the whole config before anything runs or is written.

  Raises:
    cli.ConfigError: one sentence naming the key, the value and what is
      allowed.
  """
  tasks = tuple(cli.split_names("tasks", config.tasks, _training_tasks()))
  optimizers = optimizers_lib.parse(config.optimizers)
  formats = cli.split_names("figure_formats", config.figure_formats,
                            FIGURE_FORMATS)
  if "png" not in formats:
    raise cli.ConfigError(
        f"config.figure_formats must include png (report.md and report.html "
        f"show the PNGs), got {config.figure_formats!r}.")
  if not (isinstance(config.target_margin, (int, float))
          and not isinstance(config.target_margin, bool)
          and 0 <= config.target_margin < 1):
    raise cli.ConfigError(
        f"config.target_margin must be a number in [0, 1) (an accuracy), got "
        f"{config.target_margin!r}.")
  cli.require_positive("lr_min", config.lr_min, float32=True)
  cli.require_positive("lr_max", config.lr_max, float32=True)
  if not config.lr_min <= config.lr_max:
    raise cli.ConfigError(
        f"config.lr_min must be <= config.lr_max, got lr_min={config.lr_min!r}"
        f" and lr_max={config.lr_max!r}."
    )
  for key in ("num_lrs", "num_seeds", "steps", "batch_size", "eval_every"):
    cli.require_positive(key, config[key], integer=True)
  block = config.block_size
  if (isinstance(block, bool) or not isinstance(block, int)
      or not 0 <= block <= 4096):
    raise cli.ConfigError(
        f"config.block_size must be an integer in [0, 4096] (0: no blocks), "
        f"got {block!r}.")
  if config.num_lrs > 64 or config.num_seeds > 64:
    raise cli.ConfigError(
        f"config.num_lrs and config.num_seeds must be at most 64 each, got "
        f"{config.num_lrs} and {config.num_seeds}."
    )
  runs = (sum(len(o.variants()) for o in optimizers) * config.num_lrs
          * config.num_seeds)
  if runs * config.steps * len(tasks) > _MAX_RUN_STEPS:
    raise cli.ConfigError(
        f"config asks for {runs * config.steps * len(tasks):,} run-steps "
        f"(tasks x optimizers x num_lrs x num_seeds x steps), more than "
        f"{_MAX_RUN_STEPS:,}."
    )
  cli.require_seed("seed", config.seed)
  for task in tasks:
    n = {"logistic_breast_cancer": 399, "mlp_digits": 1257}.get(task, 3500)
    if config.batch_size > n:
      raise cli.ConfigError(
          f"config.batch_size must be at most {n}, the training examples of "
          f"{task}, got {config.batch_size}."
      )
  lrs = np.geomspace(config.lr_min, config.lr_max, config.num_lrs)
  return Plan(tasks, optimizers, tuple(float(lr) for lr in lrs),
              int(config.num_seeds), int(config.seed), int(config.steps),
              int(config.batch_size),
              int(min(config.eval_every, config.steps)),
              bool(config.standardize), float(config.target_margin),
              ("png", *[f for f in formats if f != "png"]),
              int(block) or None)


def _median(x) -> float:
  x = np.asarray(x, dtype=float)
  return float(np.median(x)) if x.size else math.nan


class _Trained(NamedTuple):
  """One optimizer on one task: every (eta, variant), eta-major."""

  learning_rates: np.ndarray  # ~ (n_configs,)
  variants: list[dict[str, Any]]
  evals: dict[str, np.ndarray]  # metric -> ~ (n_configs, n_seeds, n_evals)
  diverged: np.ndarray  # ~ (n_configs, n_seeds)
  eval_steps: np.ndarray
  best: int
  compile_seconds: float
  run_seconds: float


def choose(evals: Mapping[str, np.ndarray], diverged) -> int:
  """eta*'s configuration: the best median validation accuracy (module doc).

  Medians are compared at ``protocol.DIGITS`` significant digits, ties go to
  the lower median validation loss, then to the fewest failed runs, then to
  the first (smaller) eta (``wonderland.report.best_index``).
  """
  failed = np.asarray(diverged, bool)
  acc = np.asarray(evals["val_accuracy"], dtype=float)[..., -1]
  loss = np.asarray(evals["val_loss"], dtype=float)[..., -1]
  score = np.where(failed | np.isnan(acc), np.inf, -acc)
  tiebreak = np.where(failed | np.isnan(loss), np.inf, loss)
  return report.best_index(score, tiebreak=tiebreak, digits=protocol.DIGITS)


def _train(plan: Plan, opt: Optimizer, problem, x0, data_key) -> _Trained:
  """One sweep per variant: every learning rate x seed of ``opt``."""
  lrs = np.asarray(plan.learning_rates, np.float32)
  results = []
  for variant in opt.variants():
    results.append(_sweep.sweep(
        problem.loss, opt.make(variant), {"learning_rate": lrs}, x0,
        steps=plan.steps, data=problem.data, batch_size=plan.batch_size,
        key=data_key, evaluate=problem.evaluate, eval_every=plan.eval_every,
        chunk_steps=plan.steps, block_size=plan.block_size,
    ))
  n_var = len(results)
  # eta-major: (eta_0, variant_0), (eta_0, variant_1), ...
  stack = lambda arrays: np.stack(
      [np.asarray(a) for a in arrays], axis=1).reshape(
          -1, *np.shape(arrays[0])[1:])
  evals = {m: stack([r.evals[m] for r in results]).astype(float)
           for m in METRICS}
  diverged = stack([r.diverged for r in results])
  variants = [v for _ in lrs for v in opt.variants()]
  return _Trained(
      learning_rates=np.repeat(np.asarray(plan.learning_rates), n_var),
      variants=variants, evals=evals, diverged=diverged,
      eval_steps=np.asarray(results[0].eval_steps),
      best=choose(evals, diverged),
      compile_seconds=sum(r.compile_seconds for r in results),
      run_seconds=sum(r.run_seconds for r in results),
  )


def _steps_to_target(acc, eval_steps, target: float) -> float:
  """The first evaluated step whose median accuracy over seeds >= target.

  ``acc ~ (n_seeds, n_evals)``; a diverged run (NaN) counts as -inf. +inf if
  the median never reaches the target.
  """
  acc = np.nan_to_num(np.asarray(acc, dtype=float), nan=-np.inf)
  hit = np.median(acc, axis=0) >= target
  return float(np.asarray(eval_steps)[np.argmax(hit)]) if hit.any() else math.inf


def _fingerprint(plan: Plan, opt: Optimizer, task: str, problem, x0) -> str:
  """What one (task, optimizer) result depends on (``cells.fingerprint``)."""
  return cells_lib.fingerprint(
      optimizer={"label": opt.label, **opt.identity()},
      task={"name": task, "standardize": plan.standardize,
            "description": problem.description,
            "x0_sha256": provenance.digest(*jax.tree.leaves(x0)),
            "data_sha256": provenance.digest(*jax.tree.leaves(problem.data))},
      learning_rates=list(plan.learning_rates), num_seeds=plan.seeds,
      seed=plan.seed, steps=plan.steps, batch_size=plan.batch_size,
      eval_every=plan.eval_every, block_size=plan.block_size,
      versions=provenance.versions(),
      library_source=provenance.library_source(),
      job_source=[provenance.file_digest(__file__),
                  provenance.file_digest(optimizers_lib.__file__)],
  )


def _save(path: Path, trained: _Trained, mark: str) -> None:
  """Writes one (task, optimizer) result as ``.npz``, atomically."""
  buf = io.BytesIO()
  np.savez(buf, learning_rates=trained.learning_rates,
           variants_json=json.dumps(trained.variants),
           diverged=trained.diverged, eval_steps=trained.eval_steps,
           compile_seconds=trained.compile_seconds,
           run_seconds=trained.run_seconds, fingerprint=mark,
           **{f"eval_{m}": trained.evals[m] for m in METRICS})
  files.atomic_write(path, buf.getvalue())


def _load(path: Path, mark: str) -> _Trained | None:
  """A saved result, or None if missing, unreadable or of another fingerprint."""
  try:
    with np.load(path, allow_pickle=False) as data:
      if str(data["fingerprint"]) != mark:
        return None
      evals = {m: data[f"eval_{m}"] for m in METRICS}
      diverged = data["diverged"]
      return _Trained(
          learning_rates=data["learning_rates"],
          variants=json.loads(str(data["variants_json"])), evals=evals,
          diverged=diverged, eval_steps=data["eval_steps"],
          best=choose(evals, diverged),
          compile_seconds=float(data["compile_seconds"]),
          run_seconds=float(data["run_seconds"]))
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None


def _cell_path(out: Path, label: str, task: str) -> Path:
  return cells_lib.cell_path(out, label, task)


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Runs the job; returns the summary rows (see the module docstring)."""
  plan = validate(config)
  out = cli.prepare_workdir(workdir, ["figures", "cells"])
  env = provenance.environment()
  rows, records, curves = [], [], []
  figures = {}
  computed = read_back = 0
  for task in plan.tasks:
    kwargs = {"standardize": plan.standardize} if plan.standardize else {}
    problem = problems.get(task, **kwargs)
    base = jax.random.key(plan.seed)
    x0 = problem.init(jax.random.fold_in(base, 0), plan.seeds)
    data_key = jax.random.fold_in(base, 1)
    trained = {}
    for opt in plan.optimizers:
      mark = _fingerprint(plan, opt, task, problem, x0)
      path = _cell_path(out, opt.label, task)
      trained[opt.label] = _load(path, mark)
      if trained[opt.label] is None:
        trained[opt.label] = _train(plan, opt, problem, x0, data_key)
        _save(path, trained[opt.label], mark)
        computed += 1
      else:
        read_back += 1
    # AlgoPerf's target: the best median validation accuracy at eta*, less
    # the margin, from this run itself.
    target = max(
        _median(t.evals["val_accuracy"][t.best, :, -1])
        for t in trained.values()) - plan.target_margin
    panels = {"train_loss": {}, "val_accuracy": {}}
    for label, t in trained.items():
      best, evals = t.best, t.evals
      test = evals["test_accuracy"][best, :, -1]
      med_steps = _steps_to_target(evals["val_accuracy"][best], t.eval_steps,
                                   target)
      n_runs = t.diverged.size
      lr = float(t.learning_rates[best])
      rows.append({
          "task": task, "optimizer": label, "best_learning_rate": lr,
          "hparams": describe(t.variants[best]),
          "edge": protocol.edge(lr, plan.learning_rates),
          "median_val_accuracy": _median(evals["val_accuracy"][best, :, -1]),
          "median_test_accuracy": _median(test),
          "test_accuracy_q25": float(np.percentile(test, 25)),
          "test_accuracy_q75": float(np.percentile(test, 75)),
          "paper_test_accuracy": (PAPER_TEST_ACCURACY.get(task, "")
                                  if label == "adam" else ""),
          "val_target": target,
          "median_steps_to_target": med_steps,
          "time_to_target": (t.run_seconds / n_runs * med_steps / plan.steps
                             if math.isfinite(med_steps) else math.inf),
          "median_train_loss": _median(evals["train_loss"][best, :, -1]),
          "diverged_fraction": float(t.diverged.mean()),
          "compile_seconds": t.compile_seconds,
          "run_seconds": t.run_seconds,
      })
      logging.info("train: %s / %s: eta* = %.3g, median test accuracy %.3f",
                   task, label, lr, _median(test))
      for i, lr_i in enumerate(t.learning_rates):
        hp = describe(t.variants[i])
        for s in range(plan.seeds):
          records.append({
              "task": task, "optimizer": label, "learning_rate": float(lr_i),
              "hparams": t.variants[i], "seed": s,
              "diverged": bool(t.diverged[i, s]), "best": i == best,
              **{m: _json_number(evals[m][i, s, -1]) for m in METRICS},
          })
          for j, step in enumerate(t.eval_steps):
            for m in METRICS:
              curves.append({
                  "task": task, "optimizer": label,
                  "learning_rate": float(lr_i), "hparams": hp, "seed": s,
                  "step": int(step), "metric": m,
                  "value": float(evals[m][i, s, j]),
              })
      panels["train_loss"][label] = evals["train_loss"][best]
      panels["val_accuracy"][label] = evals["val_accuracy"][best]
    steps_axis = next(iter(trained.values())).eval_steps
    figures[task] = figures_lib.draw(
        plots.training_curves, out / "figures" / f"{task}.png", panels,
        steps_axis,
        ylabels={"train_loss": "training loss (full train split)",
                 "val_accuracy": "validation accuracy"},
        logy={"train_loss": True}, title=f"{task}: each optimizer at its eta*",
        formats=plan.figure_formats,
    )
  print(report.format_table(rows, _STDOUT_COLUMNS))
  targets = {r["task"]: r["val_target"] for r in rows}
  print(f"\nvalidation targets (the best median validation accuracy less "
        f"{plan.target_margin:g}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in targets.items()) + ".")
  edges = train_report.edge_cells(rows)
  print(f"\nedge cells ({len(edges)} of {len(rows)}: eta* at an end of "
        f"[{plan.learning_rates[0]:g}, {plan.learning_rates[-1]:g}]; widen "
        f"--config.lr_min/lr_max): {'; '.join(edges) or 'none'}.")
  files.atomic_write(out / "summary.csv", report.csv_text(rows, SUMMARY_COLUMNS))
  files.atomic_write(
      out / "results.jsonl",
      "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
  files.atomic_write(out / "curves.csv", report.csv_text(curves, CURVE_COLUMNS))
  markdown = train_report.report_md(plan, rows, figures, out, env)
  files.atomic_write(out / "report.md", markdown)
  files.atomic_write(out / "report.html",
                     html.page(markdown, out, title="train"))
  provenance.save_config(config, out, env)
  print(f"{len(rows)} results ({computed} computed, {read_back} read back "
        f"from {out / 'cells'}); report: {out / 'report.md'} (and "
        f"report.html)")
  return rows


def _json_number(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None
