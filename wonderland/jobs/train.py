"""The training job (``experiments/train.py``): optimizers on training tasks.

Minibatch training judged on held-out data, the setting where §1.3.2's
adaptive step sizes matter. For every task (a ``Problem`` with ``loss``,
``data`` and ``evaluate``: the MNIST-1D networks, the digits MLP, ...) and
every optimizer, one ``wonderland.sweep`` trains every learning rate eta of a
log-spaced grid from every seed's initialisation, with minibatches drawn
without replacement epoch by epoch, and evaluates every run on its train,
validation and test splits inside the same program. The protocol is
AlgoPerf's: eta* is chosen by the median over seeds of the validation accuracy
at the last evaluation (``SweepResult.best(..., mode="max")``, i.e.
``wonderland.report.best_index``: ties go to the smaller eta); the test
accuracy of eta*'s runs is reported. Seed s starts every optimizer from the
same initialisation x_0 and draws the same minibatch order, so optimizers are
compared on common random numbers. A chosen eta* at either end of the grid is
marked ``edge``: widen ``config.lr_min``/``config.lr_max`` and rerun.

Outputs in the workdir: ``summary.csv`` (one row per task and optimizer),
``results.jsonl`` (one record per run), ``curves.csv`` (tidy: task,
optimizer, learning_rate, seed, step, metric, value), ``figures/<task>.png``
(training loss and validation accuracy of each optimizer at eta*, median and
interquartile band over seeds), ``report.md``, and ``config.json`` last.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging

from wonderland import _sweep
from wonderland import cli
from wonderland import files
from wonderland import optim
from wonderland import plots
from wonderland import problems
from wonderland import report

__all__ = ["Plan", "PAPER_TEST_ACCURACY", "SUMMARY_COLUMNS", "validate", "run"]

# Test accuracy of Adam in the MNIST-1D paper (Greydanus and Kobak, 2024,
# Table 1): the logistic model, the MLP and the CNN.
PAPER_TEST_ACCURACY = {
    "logistic_mnist1d": 0.32, "mlp_mnist1d": 0.68, "cnn_mnist1d": 0.94,
}
SUMMARY_COLUMNS = (
    "task", "optimizer", "best_learning_rate", "edge", "median_val_accuracy",
    "median_test_accuracy", "test_accuracy_q25", "test_accuracy_q75",
    "paper_test_accuracy", "median_train_loss", "diverged_fraction",
    "compile_seconds", "run_seconds",
)
_STDOUT_COLUMNS = ("task", "optimizer", "best_learning_rate", "edge",
                   "median_val_accuracy", "median_test_accuracy",
                   "paper_test_accuracy", "run_seconds")
CURVE_COLUMNS = ("task", "optimizer", "learning_rate", "seed", "step",
                 "metric", "value")
METRICS = ("train_loss", "val_loss", "val_accuracy", "test_accuracy")
# Every size below is checked against what one sweep would hold in memory.
_MAX_RUN_STEPS = 10**9


class Plan(NamedTuple):
  """A validated config: plain values only."""

  tasks: tuple[str, ...]
  optimizers: tuple[str, ...]
  learning_rates: tuple[float, ...]
  seeds: int
  seed: int
  steps: int
  batch_size: int
  eval_every: int
  standardize: bool


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
  optimizers = tuple(cli.split_names("optimizers", config.optimizers,
                                     optim.names()))
  cli.require_positive("lr_min", config.lr_min, float32=True)
  cli.require_positive("lr_max", config.lr_max, float32=True)
  if not config.lr_min <= config.lr_max:
    raise cli.ConfigError(
        f"config.lr_min must be <= config.lr_max, got lr_min={config.lr_min!r}"
        f" and lr_max={config.lr_max!r}."
    )
  for key in ("num_lrs", "num_seeds", "steps", "batch_size", "eval_every"):
    cli.require_positive(key, config[key], integer=True)
  if config.num_lrs > 64 or config.num_seeds > 64:
    raise cli.ConfigError(
        f"config.num_lrs and config.num_seeds must be at most 64 each, got "
        f"{config.num_lrs} and {config.num_seeds}."
    )
  runs = len(optimizers) * config.num_lrs * config.num_seeds
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
              bool(config.standardize))


def _median(x) -> float:
  x = np.asarray(x, dtype=float)
  return float(np.median(x)) if x.size else math.nan


def _train(plan: Plan, task: str, name: str, problem, x0, data_key):
  """One sweep: every learning rate x seed of ``name`` on ``task``."""
  lrs = np.asarray(plan.learning_rates, np.float32)
  result = _sweep.sweep(
      problem.loss, optim.get(name), {"learning_rate": lrs}, x0,
      steps=plan.steps, data=problem.data, batch_size=plan.batch_size,
      key=data_key, evaluate=problem.evaluate, eval_every=plan.eval_every,
      chunk_steps=plan.steps,
  )
  chosen = result.best("val_accuracy", mode="max")["learning_rate"]
  best = int(np.flatnonzero(result.hparams["learning_rate"] == chosen)[0])
  return result, best


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Runs the job; returns the summary rows (see the module docstring)."""
  plan = validate(config)
  out = cli.prepare_workdir(workdir, ["figures"])
  rows, records, curves = [], [], []
  figures = {}
  for task in plan.tasks:
    kwargs = {"standardize": plan.standardize} if plan.standardize else {}
    problem = problems.get(task, **kwargs)
    base = jax.random.key(plan.seed)
    x0 = problem.init(jax.random.fold_in(base, 0), plan.seeds)
    data_key = jax.random.fold_in(base, 1)
    panels = {"train_loss": {}, "val_accuracy": {}}
    steps_axis = None
    for name in plan.optimizers:
      result, best = _train(plan, task, name, problem, x0, data_key)
      evals = {m: np.asarray(result.evals[m], dtype=float) for m in METRICS}
      steps_axis = np.asarray(result.eval_steps)
      diverged = np.asarray(result.diverged)
      test = evals["test_accuracy"][best, :, -1]
      n_lr = len(plan.learning_rates)
      rows.append({
          "task": task, "optimizer": name,
          "best_learning_rate": plan.learning_rates[best],
          "edge": bool(n_lr > 1 and best in (0, n_lr - 1)),
          "median_val_accuracy": _median(evals["val_accuracy"][best, :, -1]),
          "median_test_accuracy": _median(test),
          "test_accuracy_q25": float(np.percentile(test, 25)),
          "test_accuracy_q75": float(np.percentile(test, 75)),
          "paper_test_accuracy": (PAPER_TEST_ACCURACY.get(task, "")
                                  if name == "adam" else ""),
          "median_train_loss": _median(evals["train_loss"][best, :, -1]),
          "diverged_fraction": float(diverged.mean()),
          "compile_seconds": result.compile_seconds,
          "run_seconds": result.run_seconds,
      })
      logging.info("train: %s / %s: eta* = %.3g, median test accuracy %.3f",
                   task, name, plan.learning_rates[best], _median(test))
      for i, lr in enumerate(plan.learning_rates):
        for s in range(plan.seeds):
          records.append({
              "task": task, "optimizer": name, "learning_rate": lr, "seed": s,
              "diverged": bool(diverged[i, s]),
              **{m: _json_number(evals[m][i, s, -1]) for m in METRICS},
          })
          for j, step in enumerate(steps_axis):
            for m in METRICS:
              curves.append({
                  "task": task, "optimizer": name, "learning_rate": lr,
                  "seed": s, "step": int(step), "metric": m,
                  "value": float(evals[m][i, s, j]),
              })
      panels["train_loss"][name] = evals["train_loss"][best]
      panels["val_accuracy"][name] = evals["val_accuracy"][best]
    figures[task] = plots.training_curves(
        out / "figures" / f"{task}.png", panels, steps_axis,
        ylabels={"train_loss": "training loss (full train split)",
                 "val_accuracy": "validation accuracy"},
        logy={"train_loss": True}, title=f"{task}: each optimizer at its eta*",
    )
  print(report.format_table(rows, _STDOUT_COLUMNS))
  files.atomic_write(out / "summary.csv", report.csv_text(rows, SUMMARY_COLUMNS))
  files.atomic_write(
      out / "results.jsonl",
      "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
  files.atomic_write(out / "curves.csv", report.csv_text(curves, CURVE_COLUMNS))
  files.atomic_write(out / "report.md", _report_md(plan, rows, figures, out))
  files.save_config(config, out)
  return rows


def _json_number(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def _report_md(plan: Plan, rows, figures, out: Path) -> str:
  lines = [
      "# Training tasks: optimizers tuned on validation, reported on test",
      "",
      f"{len(plan.learning_rates)} learning rates from "
      f"{plan.learning_rates[0]:.3g} to {plan.learning_rates[-1]:.3g} x "
      f"{plan.seeds} seeds, {plan.steps} steps of batch {plan.batch_size}, "
      f"evaluated every {plan.eval_every} steps. eta* maximises the median "
      "validation accuracy over seeds (ties to the smaller eta); the test "
      "accuracy is the median over seeds at eta*, with its interquartile "
      "range. `paper` is Adam's test accuracy in Greydanus and Kobak (2024), "
      "which trains on all 4,000 training examples (we hold 500 out).",
      "",
  ]
  table = []
  for r in rows:
    table.append({
        "task": r["task"], "optimizer": r["optimizer"],
        "eta*": r["best_learning_rate"] if not r["edge"]
                else f"{r['best_learning_rate']:.3g} (edge)",
        "val acc": r["median_val_accuracy"],
        "test acc": f"{r['median_test_accuracy']:.3f} "
                    f"[{r['test_accuracy_q25']:.3f}, "
                    f"{r['test_accuracy_q75']:.3f}]",
        "paper": r["paper_test_accuracy"],
    })
  lines.append(report.markdown_table(
      table, ("task", "optimizer", "eta*", "val acc", "test acc", "paper")))
  edges = [f"{r['task']}/{r['optimizer']}" for r in rows if r["edge"]]
  lines += ["", "Edge cells (eta* at an end of the grid: widen it): "
            + (", ".join(edges) if edges else "none") + ".", ""]
  for task, path in figures.items():
    lines.append(f"![{task}]({Path(path).relative_to(out)})")
  return "\n".join(lines) + "\n"
