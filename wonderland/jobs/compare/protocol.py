"""The compare job's selection rules, in one place: every caller asks here.

* **Score.** A run's score is its final value f(x_T); a diverged run (or a
  non-finite value) scores +inf (``wonderland.report.final_values``).
* **Left the domain.** A problem's f* is the minimum over its box; a few
  (McCormick) are unbounded below outside it. A run that ends outside the box
  with a gap f(x_T) - f* below -``DOMAIN_TOLERANCE`` * max(1, |f*|) has left
  the domain: it scores +inf and never reaches the target (it is never
  "solved"). The box test keeps float32 rounding inside the box (Goldstein-
  Price's f(x_T) can read 2e-5 below f* = 3) from counting; problems whose f*
  is unknown have no such rule. The problem itself is not clipped: runs see
  the unconstrained f, as every optimizer's update rule assumes.
* **eta\\*.** The (eta, variant) whose median score over seeds is lowest,
  medians compared at ``DIGITS`` significant digits (the ranking's tie rule,
  ``wonderland.report.ranking``), so float32 noise cannot decide; ties go to
  the smaller eta, then to the earlier swept value, then (every median +inf)
  to the fewest failed runs (``wonderland.report.best_index``).
* **Edge.** eta\\* at either end of the grid (with more than one eta): the
  best may lie outside it; widen ``config.lr_min`` / ``config.lr_max``.
"""

from __future__ import annotations

import math

import numpy as np

from wonderland import problems as problems_lib
from wonderland import report

__all__ = ["DIGITS", "DOMAIN_TOLERANCE", "left_domain", "scores", "choose",
           "edge"]

DIGITS = 5
DOMAIN_TOLERANCE = 1e-6


def left_domain(values, final_x, problem: problems_lib.Problem) -> np.ndarray:
  """Which runs left the domain ~ (n_configs, n_seeds) (module docstring).

  Args:
    values: f(x_t) ~ (n_configs, n_seeds, steps).
    final_x: x_T ~ (n_configs, n_seeds, dim).
    problem: its ``fmin`` and ``bounds`` decide.
  """
  values = np.asarray(values, dtype=float)
  if not math.isfinite(problem.fmin):
    return np.zeros(values.shape[:-1], bool)
  lo, hi = (np.asarray(b, dtype=float) for b in problem.bounds)
  x = np.asarray(final_x, dtype=float)
  outside = np.any((x < lo) | (x > hi), axis=-1)
  tol = DOMAIN_TOLERANCE * max(1.0, abs(problem.fmin))
  with np.errstate(invalid="ignore"):
    below = values[..., -1] - problem.fmin < -tol
  return outside & below


def scores(values, diverged, left) -> np.ndarray:
  """Every run's score ~ (n_configs, n_seeds): f(x_T), +inf if it failed."""
  final = report.final_values(values, diverged)
  final[np.asarray(left, bool)] = np.inf
  return final


def choose(final) -> int:
  """The index of eta\\* (and its variant) among the cell's configurations."""
  return report.best_index(final, digits=DIGITS)


def edge(learning_rate: float, grid) -> str:
  """``"lr_min"`` or ``"lr_max"`` where eta\\* is an end of the grid, else ``""``."""
  grid = np.asarray(grid, dtype=float)
  if grid.size < 2:
    return ""
  if np.isclose(learning_rate, grid[0], rtol=1e-6, atol=0):
    return "lr_min"
  if np.isclose(learning_rate, grid[-1], rtol=1e-6, atol=0):
    return "lr_max"
  return ""
