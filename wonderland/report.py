"""Tables for experiments: best hyperparameters, summaries, performance profiles.

Pure functions of NumPy arrays (no JAX, no files), so that a sweep's arrays can
be summarized, tested on synthetic data and read back from JSON alike.

The protocol for comparing optimizers is the one of DeepOBS and AlgoPerf: for
each optimizer and problem, the learning rate eta is chosen from a grid by the
*median over seeds* of the final value (a diverged run counts as +inf), and
that learning rate's runs are the optimizer's result on the problem.

Shapes: ``values ~ (n_lr, n_seeds, steps)`` holds f(x_t) for every learning
rate, seed and step t = 1..steps (``values[..., t - 1] = f(x_t)``, as in
``wonderland.Trace``); ``diverged ~ (n_lr, n_seeds)``.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "final_values",
    "best_index",
    "steps_to_target",
    "summarize",
    "performance_profile",
    "ranking",
    "format_table",
    "markdown_table",
    "csv_text",
]


def _require_rank(name: str, array: np.ndarray, rank: int, shape: str):
  if array.ndim != rank:
    raise ValueError(
        f"{name} must have shape {shape}, got an array of shape {array.shape}."
    )


def final_values(values, diverged=None) -> np.ndarray:
  """The last value of each run, +inf where the run diverged or is not finite.

  Args:
    values: f(x_t) of each run, ``values ~ (..., steps)``.
    diverged: optional flags ``~ (...)``; a diverged run's final value is +inf.

  Returns:
    ``final ~ (...)``.

  Raises:
    ValueError: if ``values`` has no step axis or ``diverged`` does not match.
  """
  values = np.asarray(values, dtype=float)
  if values.ndim < 1 or values.shape[-1] == 0:
    raise ValueError(
        f"values must have a non-empty last (step) axis, got shape {values.shape}."
    )
  final = values[..., -1].copy()
  final[~np.isfinite(final)] = np.inf
  if diverged is not None:
    diverged = np.asarray(diverged, dtype=bool)
    if diverged.shape != final.shape:
      raise ValueError(
          f"diverged must have shape {final.shape} (values without the step "
          f"axis), got {diverged.shape}."
      )
    final[diverged] = np.inf
  return final


def best_index(final, *, tiebreak=None, digits: int | None = None) -> int:
  """Index of the hyperparameter whose median over seeds is lowest.

  This is THE selection rule of the library: ``SweepResult.best`` and the
  compare job both call it, so the two cannot disagree.

  Args:
    final: one score per run ``~ (n_hparams, n_seeds)``, lower is better:
      final values, or steps to a target (+inf for diverged runs or runs that
      never reach it, so that a setting where half the seeds fail cannot win);
      NaN counts as +inf.
    tiebreak: optional second scores ``~ (n_hparams, n_seeds)``, compared by
      their medians where the medians of ``final`` tie (e.g. the final values
      of settings that all miss a target).
    digits: if given (an integer >= 1), medians are compared rounded to this
      many significant digits, so that settings whose medians differ by
      float32 noise tie (and the earlier index wins): the ranking's rule
      (``ranking(gap_digits=5)``), which the jobs pass as ``digits=5``.

  Returns:
    The index of the best setting: the lowest median of ``final``; among
    equal medians the lowest median of ``tiebreak``; then the fewest runs
    whose ``final`` is +inf (so that, when every median is +inf, the setting
    where the fewest runs failed wins); then the first (smallest) index.

  Raises:
    ValueError: if ``final`` is not 2-D or is empty, or ``tiebreak`` does not
      match it.
  """
  if digits is not None and (isinstance(digits, bool)
                             or not isinstance(digits, int) or digits < 1):
    raise ValueError(f"digits must be an integer >= 1 or None, got {digits!r}.")
  final = np.asarray(final, dtype=float)
  _require_rank("final", final, 2, "(n_hparams, n_seeds)")
  if final.size == 0:
    raise ValueError(f"final must not be empty, got shape {final.shape}.")
  final = np.where(np.isnan(final), np.inf, final)

  def median(scores):
    m = np.median(scores, axis=1)
    if digits is None:
      return m
    return np.array([float(f"{v:.{digits}g}") if np.isfinite(v) else v
                     for v in m])

  keys = [median(final)]
  if tiebreak is not None:
    tiebreak = np.asarray(tiebreak, dtype=float)
    if tiebreak.shape != final.shape:
      raise ValueError(
          f"tiebreak must have the shape of final {final.shape}, got "
          f"{tiebreak.shape}."
      )
    keys.append(median(np.where(np.isnan(tiebreak), np.inf, tiebreak)))
  keys.append(np.sum(np.isinf(final), axis=1))
  order = np.lexsort((np.arange(final.shape[0]), *reversed(keys)))
  return int(order[0])


def steps_to_target(values, target: float) -> np.ndarray:
  """The first step count t at which f(x_t) <= target, +inf if never.

  ``values[..., i]`` is f(x_{i+1}), the value after i + 1 steps (as in
  ``wonderland.Trace.values``), so a run whose first step reaches the target
  needs 1 step.

  Args:
    values: ``~ (..., steps)``.
    target: the value to reach (e.g. ``fmin + target_gap``).

  Returns:
    ``~ (...)`` floats: step counts, +inf where the target is never reached.
    A run that reaches the target and diverges later keeps its count (as in
    AlgoPerf, the time to the target is what is measured).
  """
  values = np.asarray(values, dtype=float)
  if values.ndim < 1 or values.shape[-1] == 0:
    raise ValueError(
        f"values must have a non-empty step axis, got shape {values.shape}."
    )
  if not np.isfinite(target):
    raise ValueError(f"target must be a finite number, got {target!r}.")
  hit = np.nan_to_num(values, nan=np.inf) <= target
  first = np.argmax(hit, axis=-1).astype(float) + 1.0
  first[~np.any(hit, axis=-1)] = np.inf
  return first


def _median(x) -> float:
  x = np.asarray(x, dtype=float)
  return float(np.median(np.where(np.isnan(x), np.inf, x)))


def summarize(
    values,
    diverged,
    learning_rates: Sequence[float],
    *,
    fmin: float | None,
    target_gap: float,
    compile_seconds: float,
    run_seconds: float,
) -> dict[str, Any]:
  """One row of ``summary.csv``: an optimizer's result on one problem.

  Args:
    values: ``~ (n_lr, n_seeds, steps)``, f(x_t) of every run of the sweep.
    diverged: ``~ (n_lr, n_seeds)``.
    learning_rates: the grid, ``~ (n_lr,)``.
    fmin: the problem's minimum value, or None when it is unknown (then the
      gap is measured from the lowest value any run reached).
    target_gap: a run has reached the target when f(x_t) - fmin <= target_gap.
    compile_seconds: the sweep's compilation time.
    run_seconds: the sweep's wall time without compilation, for all its runs.

  Returns:
    ``best_learning_rate``, ``median_final_value``, ``median_final_gap``,
    ``median_steps_to_target`` (+inf if the median run misses the target),
    ``time_to_target`` (seconds: the sweep's run time per run, scaled by the
    median steps to target over the steps; +inf when missed),
    ``compile_seconds``, ``diverged_fraction`` (over the whole grid) and
    ``best`` (the best learning rate's index).

  Raises:
    ValueError: for inconsistent shapes or a ``target_gap`` that is not a
      finite number > 0.
  """
  values = np.asarray(values, dtype=float)
  _require_rank("values", values, 3, "(n_lr, n_seeds, steps)")
  learning_rates = np.asarray(learning_rates, dtype=float)
  if learning_rates.shape != values.shape[:1]:
    raise ValueError(
        f"learning_rates must have shape ({values.shape[0]},) to match values, "
        f"got {learning_rates.shape}."
    )
  if not 0 < target_gap < np.inf:
    raise ValueError(
        f"target_gap must be a finite number > 0, got {target_gap!r}."
    )
  final = final_values(values, diverged)
  best = best_index(final)
  if fmin is None or not np.isfinite(fmin):
    finite = values[np.isfinite(values)]
    fmin = float(finite.min()) if finite.size else 0.0
  steps = values.shape[-1]
  n_runs = values.shape[0] * values.shape[1]
  to_target = steps_to_target(values[best], fmin + target_gap)
  med_steps = _median(to_target)
  per_run = run_seconds / n_runs
  return {
      "best": best,
      "best_learning_rate": float(learning_rates[best]),
      "median_final_value": _median(final[best]),
      "median_final_gap": _median(final[best] - fmin),
      "median_steps_to_target": med_steps,
      "time_to_target": (
          per_run * med_steps / steps if np.isfinite(med_steps) else np.inf
      ),
      "compile_seconds": float(compile_seconds),
      "diverged_fraction": float(np.mean(np.isinf(final))),
  }


def performance_profile(costs, taus) -> np.ndarray:
  """AlgoPerf/Dolan-More performance profiles of solvers over problems.

  For solver s on problem p, the performance ratio is
  r_{s,p} = cost_{s,p} / min_s' cost_{s',p}; the profile is
  rho_s(tau) = |{p : r_{s,p} <= tau}| / n_problems, the fraction of problems
  that s solves within a factor tau of the best solver.

  Args:
    costs: ``~ (n_solvers, n_problems)``, e.g. steps to target; +inf (or NaN)
      where a solver never reached the target. A problem that no solver
      solves counts as failed for all.
    taus: the factors ``~ (n_taus,)``, each >= 1.

  Returns:
    ``rho ~ (n_solvers, n_taus)``, non-decreasing in tau, in [0, 1].

  Raises:
    ValueError: for a non-2-D ``costs``, negative costs or a tau below 1.
  """
  costs = np.asarray(costs, dtype=float)
  _require_rank("costs", costs, 2, "(n_solvers, n_problems)")
  if costs.size == 0:
    raise ValueError(f"costs must not be empty, got shape {costs.shape}.")
  costs = np.where(np.isnan(costs), np.inf, costs)
  if np.any(costs < 0):
    raise ValueError(f"costs must be non-negative, got minimum {costs.min()}.")
  taus = np.asarray(taus, dtype=float)
  if taus.ndim != 1 or not np.all(np.isfinite(taus) & (taus >= 1)):
    raise ValueError(
        f"taus must be a 1-D array of finite factors >= 1, got {taus}."
    )
  best = costs.min(axis=0)
  with np.errstate(divide="ignore", invalid="ignore"):
    # A zero best cost: solvers at zero have ratio 1, the others infinity.
    ratios = np.where(best > 0, costs / np.where(best > 0, best, 1.0), np.inf)
    ratios = np.where((best == 0) & (costs == 0), 1.0, ratios)
  ratios = np.where(np.isinf(best), np.inf, ratios)
  return np.mean(ratios[:, None, :] <= taus[None, :, None], axis=-1)


def ranking(
    rows: Sequence[Mapping[str, Any]],
    *,
    steps_key: str = "median_steps_to_target",
    gap_key: str = "median_final_gap",
    gap_digits: int = 5,
) -> list[dict[str, Any]]:
  """Ranks optimizers across problems from one summary row per cell.

  On each problem the optimizers are ordered by median steps to the target
  (fewest first) and, among those that tie (or all miss the target), by the
  median final gap rounded to ``gap_digits`` significant digits, so that runs
  stuck in the same local minimum tie instead of being ordered by float32
  noise (a ranking rebuilt from the 6-digit ``summary.csv`` agrees except
  where a gap's 6-digit rounding lands on a 5-digit rounding boundary);
  tied cells share the best of their places (1 = best). Missing, NaN or
  diverged results count as +inf.

  Args:
    rows: dicts with ``problem``, ``optimizer``, ``steps_key`` and ``gap_key``.
    steps_key: the key of the median steps to the target.
    gap_key: the key of the median final gap.
    gap_digits: the significant digits at which two gaps tie, >= 1.

  Returns:
    One dict per optimizer, best first (most problems solved, then lowest mean
    rank): ``optimizer``, ``solved`` (problems whose target its median run
    reached), ``wins`` (problems where it ranks 1), ``mean_rank`` and
    ``problems``.
  """
  if isinstance(gap_digits, bool) or not isinstance(gap_digits, int) or gap_digits < 1:
    raise ValueError(f"gap_digits must be an integer >= 1, got {gap_digits!r}.")

  def number(x) -> float:
    x = math.inf if x is None else float(x)
    return math.inf if math.isnan(x) else x

  def rounded(x) -> float:
    x = number(x)
    return float(f"{x:.{gap_digits}g}") if math.isfinite(x) else x

  by_problem: dict[str, list[Mapping[str, Any]]] = {}
  for row in rows:
    by_problem.setdefault(row["problem"], []).append(row)
  stats: dict[str, dict[str, Any]] = {}
  for cells in by_problem.values():
    keys = [(number(r[steps_key]), rounded(r[gap_key])) for r in cells]
    for row, key in zip(cells, keys):
      place = 1 + sum(other < key for other in keys)
      st = stats.setdefault(row["optimizer"], {"optimizer": row["optimizer"],
                                               "solved": 0, "wins": 0,
                                               "ranks": []})
      st["solved"] += math.isfinite(key[0])
      st["wins"] += place == 1
      st["ranks"].append(place)
  table = [
      {"optimizer": st["optimizer"], "solved": st["solved"],
       "wins": st["wins"], "mean_rank": float(np.mean(st["ranks"])),
       "problems": len(st["ranks"])}
      for st in stats.values()
  ]
  return sorted(table, key=lambda r: (-r["solved"], r["mean_rank"]))


def _cell(value: Any, floatfmt: str) -> str:
  if isinstance(value, bool) or value is None:
    return str(value)
  if isinstance(value, (int, np.integer)):
    return str(int(value))
  if isinstance(value, (float, np.floating)):
    if math.isinf(value):
      return "inf" if value > 0 else "-inf"
    if math.isnan(value):
      return "nan"
    return format(float(value) + 0.0, floatfmt)  # + 0.0: -0.0 prints as 0
  return str(value)


def _check_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]):
  if not columns:
    raise ValueError("columns must name at least one column, got none.")
  for i, row in enumerate(rows):
    missing = [c for c in columns if c not in row]
    if missing:
      raise ValueError(
          f"rows[{i}] lacks the columns {missing}; it has {sorted(row)}."
      )


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    floatfmt: str = ".3g",
) -> str:
  """An aligned plain-text table (for stdout): a header, a rule, the rows."""
  _check_rows(rows, columns)
  cells = [[_cell(row[c], floatfmt) for c in columns] for row in rows]
  widths = [
      max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)
  ]
  lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
  lines.append("  ".join("-" * w for w in widths))
  lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
  return "\n".join(lines)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    floatfmt: str = ".3g",
) -> str:
  """A GitHub-flavoured Markdown table."""
  _check_rows(rows, columns)
  lines = ["| " + " | ".join(columns) + " |"]
  lines.append("|" + "|".join("---" for _ in columns) + "|")
  for row in rows:
    lines.append(
        "| " + " | ".join(_cell(row[c], floatfmt) for c in columns) + " |"
    )
  return "\n".join(lines)


def csv_text(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    floatfmt: str = ".6g",
) -> str:
  """CSV text with a header line; floats written with ``floatfmt``."""
  _check_rows(rows, columns)
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(columns)
  for row in rows:
    writer.writerow([_cell(row[c], floatfmt) for c in columns])
  return buf.getvalue()
