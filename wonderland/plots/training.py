"""Figures of training runs: metrics at the evaluated steps, with the seeds' band."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from wonderland.plots._figure import closes_on_error
from wonderland.plots._figure import colors
from wonderland.plots._figure import pyplot
from wonderland.plots._figure import save

__all__ = ["training_curves"]


@closes_on_error
def training_curves(
    path: str | os.PathLike,
    panels: Mapping[str, Mapping[str, np.ndarray]],
    steps: np.ndarray,
    *,
    ylabels: Mapping[str, str],
    logy: Mapping[str, bool] | None = None,
    title: str | None = None,
) -> Path:
  """One row per metric: the median over seeds and the interquartile band.

  Args:
    path: the PNG to write.
    panels: metric -> label (optimizer) -> ``values ~ (n_seeds, n_steps)``,
      the metric at each of ``steps``; NaN (a diverged run) is left out of
      the median.
    steps: the evaluated steps ~ (n_steps,).
    ylabels: metric -> its axis label.
    logy: metric -> whether its axis is log-scaled (default: none).
    title: a title over the figure.

  Returns:
    ``path``.
  """
  plt = pyplot()
  steps = np.asarray(steps)
  labels = sorted({label for curves in panels.values() for label in curves})
  palette = colors(labels)
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6),
                           squeeze=False)
  for ax, (metric, curves) in zip(axes[0], panels.items()):
    for label, values in curves.items():
      values = np.asarray(values, dtype=float)
      if values.shape[-1] != steps.shape[0]:
        raise ValueError(
            f"panels[{metric!r}][{label!r}] must have {steps.shape[0]} "
            f"entries per seed (one per evaluated step), got shape "
            f"{values.shape}."
        )
      finite = np.isfinite(values).any(axis=0)
      if not finite.any():
        continue
      q25, med, q75 = (np.nanpercentile(values[:, finite], q, axis=0)
                       for q in (25, 50, 75))
      ax.plot(steps[finite], med, color=palette[label], label=label)
      ax.fill_between(steps[finite], q25, q75, color=palette[label], alpha=0.2)
    ax.set_xlabel("step t")
    ax.set_ylabel(ylabels.get(metric, metric))
    if logy and logy.get(metric):
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=8)
  if title:
    fig.suptitle(title)
  return save(fig, path)
