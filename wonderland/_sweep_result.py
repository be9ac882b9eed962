"""The result of a sweep laid out on its grid, and the choice of the best point.

``SweepResult.score`` and ``SweepResult.best`` apply the library's one
selection protocol, ``wonderland.report.best_index`` (median over seeds, ties
to the fewest failed runs, then to grid order), so a sweep and the experiment
jobs cannot disagree about which hyperparameters are best.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import numpy as np

from wonderland import report

__all__ = ["SweepResult", "METRICS"]

PyTree = Any

METRICS = ("final_value", "steps_to_target")


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
