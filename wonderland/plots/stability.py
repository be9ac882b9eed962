"""The edge of stability: loss and sharpness against steps, the edges dashed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from wonderland.plots._figure import check_curves
from wonderland.plots._figure import closes_on_error
from wonderland.plots._figure import colors
from wonderland.plots._figure import pyplot
from wonderland.plots._figure import save

__all__ = ["edge_of_stability"]


@closes_on_error
def edge_of_stability(
    path: str | os.PathLike,
    losses: Mapping[str, np.ndarray],
    sharpness: Mapping[str, np.ndarray],
    edges: Mapping[str, float],
    *,
    eval_steps: np.ndarray,
    panels: Mapping[str, Sequence[str]],
    title: str | None = None,
) -> Path:
  """Figure 1 of Cohen et al. (2021): f(x_t), then lambda_max(x_t) with 2/eta.

  The first panel is the training loss f(x_t) against t = 1..steps (linear
  scale, as in the paper, so that the non-monotone decrease shows); each
  further panel draws the sharpness of its runs at the evaluated steps, with
  each run's stability edge (2/eta for gradient descent,
  (2 + 2 lambda)/eta with momentum, 38/eta for adam's preconditioned
  sharpness) as a dashed horizontal line of the run's colour. A run has one
  colour in every panel.

  Args:
    path: the PNG to write.
    losses: label (run) -> f(x_t) ~ (steps,).
    sharpness: label -> the sharpness at ``eval_steps`` ~ (n_evals,).
    edges: label -> the run's edge, drawn dashed.
    eval_steps: the evaluated steps ~ (n_evals,).
    panels: sharpness panel's y-label -> the labels drawn in it (runs whose
      sharpness differs in kind or scale, like adam's preconditioned one, go
      in a panel of their own).
    title: a title over the figure.

  Returns:
    ``path``.

  Raises:
    ValueError: if a curve has the wrong rank or length, a panel names a
      label with no sharpness or edge, or there is no panel.
  """
  check_curves("losses", losses, 1)
  check_curves("sharpness", sharpness, 1)
  eval_steps = np.asarray(eval_steps)
  if not panels:
    raise ValueError("panels must hold at least one sharpness panel, got none.")
  for ylabel, labels in panels.items():
    for label in labels:
      if label not in sharpness or label not in edges:
        raise ValueError(
            f"panels[{ylabel!r}] names {label!r}, which has no sharpness or "
            f"no edge; labels with both are "
            f"{sorted(set(sharpness) & set(edges))}."
        )
      if np.shape(sharpness[label]) != eval_steps.shape:
        raise ValueError(
            f"sharpness[{label!r}] must have one entry per evaluated step "
            f"{eval_steps.shape}, got shape {np.shape(sharpness[label])}."
        )
  plt = pyplot()
  palette = colors(list(dict.fromkeys([*losses, *sharpness])))
  n = 1 + len(panels)
  fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 3.9), squeeze=False)
  ax = axes[0][0]
  for label, loss in losses.items():
    loss = np.asarray(loss, dtype=float)
    loss = np.where(np.isfinite(loss), loss, np.nan)
    ax.plot(np.arange(1, loss.size + 1), loss, color=palette[label],
            label=label, lw=1)
  ax.set_ylim(bottom=0)
  ax.set_xlabel("step t")
  ax.set_ylabel("training loss f(x_t)")
  ax.set_title("training loss", fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7)
  for ax, (ylabel, labels) in zip(axes[0][1:], panels.items()):
    for label in labels:
      ax.plot(eval_steps, np.asarray(sharpness[label], dtype=float),
              color=palette[label], label=label, lw=1.2)
      ax.axhline(edges[label], color=palette[label], ls="--", lw=1,
                 alpha=0.9)
    ax.set_xlabel("step t")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} (dashed: the edge)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  return save(fig, path)
