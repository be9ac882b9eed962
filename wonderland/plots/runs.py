"""Figures of runs: values against steps or learning rates, profiles, heat maps.

Every function takes NumPy arrays, draws one figure, writes it atomically to
``path`` (a PNG) and closes it, also when it fails.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from wonderland.plots._figure import check_curves
from wonderland.plots._figure import closes_on_error
from wonderland.plots._figure import colors
from wonderland.plots._figure import pyplot
from wonderland.plots._figure import save
from wonderland.plots._figure import TINY

__all__ = [
    "loss_curves",
    "value_vs_learning_rate",
    "performance_profile",
    "lines",
    "line_panels",
    "heatmap",
]

_CAP = 1e8  # value_vs_learning_rate clips gaps here


@closes_on_error
def loss_curves(
    path: str | os.PathLike,
    curves: Mapping[str, np.ndarray],
    *,
    fmin: float | None,
    title: str,
    palette: Mapping[str, str] | None = None,
) -> Path:
  """The gap f(x_t) - fmin against t: median over seeds and interquartile band.

  Args:
    path: the PNG to write.
    curves: label (optimizer) -> ``values ~ (n_seeds, steps)``.
    fmin: the minimum value; None plots f(x_t) itself (log scale if positive).
    title: the figure title (the problem).
    palette: label -> colour (default: ``colors(curves)``).

  Returns:
    ``path``.
  """
  check_curves("curves", curves, 2)
  for label, values in curves.items():
    if np.shape(values)[1] == 0:
      raise ValueError(
          f"curves[{label!r}] must hold at least one step, got shape "
          f"{np.shape(values)}."
      )
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  palette = palette or colors(list(curves))
  all_positive, any_finite = True, False
  top = -np.inf
  for label, values in curves.items():
    v = np.asarray(values, dtype=float)
    if fmin is not None and np.isfinite(fmin):
      v = np.maximum(v - fmin, TINY)
    all_positive &= bool(np.all(v[np.isfinite(v)] > 0))
    any_finite |= bool(np.any(np.isfinite(v)))
    v = np.where(np.isfinite(v), v, np.nan)
    t = np.arange(1, v.shape[1] + 1)
    with warnings.catch_warnings():  # steps where every seed has diverged
      warnings.simplefilter("ignore", RuntimeWarning)
      lo, med, hi = np.nanpercentile(v, [25, 50, 75], axis=0)
    if np.any(np.isfinite(med)):
      top = max(top, float(np.nanmax(med)))
    ax.plot(t, med, color=palette[label], label=label, lw=1.5)
    ax.fill_between(t, lo, hi, color=palette[label], alpha=0.2, lw=0)
  all_positive &= any_finite  # a log scale needs at least one value
  if all_positive:
    ax.set_yscale("log")
  if all_positive and np.isfinite(top):
    ax.set_ylim(top=top * 10)  # a diverging seed's band must not squash all
  ax.set_xlabel("step t")
  ax.set_ylabel("f(x_t) - f*" if fmin is not None else "f(x_t)")
  ax.set_title(f"{title}: median and IQR over seeds")
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  return save(fig, path)


@closes_on_error
def value_vs_learning_rate(
    path: str | os.PathLike,
    learning_rates: np.ndarray,
    gaps: Mapping[str, Mapping[str, np.ndarray]],
) -> Path:
  """Median final gap against the learning rate: a panel per optimizer.

  Args:
    path: the PNG to write.
    learning_rates: the grid ``~ (n_lr,)``.
    gaps: optimizer -> problem -> median final gap ``~ (n_lr,)``; +inf
      (divergence) is drawn as an x at the top of the panel.

  Returns:
    ``path``.
  """
  if not gaps:
    raise ValueError("gaps must hold at least one optimizer, got none.")
  plt = pyplot()
  lrs = np.asarray(learning_rates, dtype=float)
  names = list(gaps)
  problems = sorted({p for g in gaps.values() for p in g})
  if not gaps[names[0]]:
    raise ValueError(
        f"gaps[{names[0]!r}] must hold at least one problem (its panel gives "
        f"the legend), got none."
    )
  palette = colors(problems)
  ncols = min(4, len(names))
  nrows = -(-len(names) // ncols)
  fig, axes = plt.subplots(
      nrows, ncols, figsize=(3.2 * ncols, 2.7 * nrows), sharex=True,
      sharey=True, squeeze=False,
  )
  finite = [
      v for g in gaps.values() for c in g.values() for v in np.ravel(c)
      if np.isfinite(v)
  ]
  cap = min(max(max(finite) if finite else 1.0, TINY), _CAP)
  top = cap * 30
  for ax, name in zip(axes.flat, names):
    for problem, gap in gaps[name].items():
      gap = np.asarray(gap, dtype=float)
      if gap.shape != lrs.shape:
        raise ValueError(
            f"gaps[{name!r}][{problem!r}] must have shape {lrs.shape}, got "
            f"{gap.shape}."
        )
      ok = np.isfinite(gap)
      gap = np.clip(gap, TINY, cap)
      ax.plot(lrs[ok], gap[ok], "-o", ms=3, color=palette[problem],
              label=problem, lw=1)
      ax.plot(lrs[~ok], np.full((~ok).sum(), top), "x", color=palette[problem])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(name, fontsize=9)
    ax.grid(True, alpha=0.3)
  for ax in axes.flat[len(names):]:
    ax.set_visible(False)
  for ax in axes[-1]:
    ax.set_xlabel("learning rate eta")
  for ax in axes[:, 0]:
    ax.set_ylabel("median final gap")
  for ax in axes.flat:
    ax.set_ylim(TINY / 3, top * 3)
  handles, labels = axes.flat[0].get_legend_handles_labels()
  ncol = min(7, len(labels))
  legend_rows = -(-len(labels) // ncol)
  fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7,
             bbox_to_anchor=(0.5, 0.0))
  fig.suptitle(
      f"Final gap vs learning rate (x: median run diverged; gaps clipped to "
      f"[{TINY:g}, {cap:.3g}])"
  )
  fig.tight_layout(rect=(0, 0.035 * legend_rows / nrows + 0.02, 1, 1))
  return save(fig, path, layout=False)


@closes_on_error
def performance_profile(
    path: str | os.PathLike,
    taus: np.ndarray,
    rho: Mapping[str, np.ndarray],
    *,
    cost: str = "steps to target",
) -> Path:
  """Performance profiles rho_s(tau) as step functions (log-scaled tau).

  Args:
    path: the PNG to write.
    taus: ``~ (n_taus,)``, factors >= 1.
    rho: solver -> ``~ (n_taus,)`` fractions of problems solved within tau.
    cost: what the ratios are of, for the axis label.

  Returns:
    ``path``.
  """
  check_curves("rho", rho, 1)
  taus = np.asarray(taus, dtype=float)
  for label, r in rho.items():
    if np.shape(r) != taus.shape:
      raise ValueError(
          f"rho[{label!r}] must have the shape of taus {taus.shape}, got "
          f"{np.shape(r)}."
      )
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  palette = colors(list(rho))
  for label, r in rho.items():
    ax.step(taus, r, where="post", color=palette[label], label=label, lw=1.5)
  ax.set_xscale("log")
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel(f"tau (ratio of {cost} to the best optimizer's)")
  ax.set_ylabel("fraction of problems")
  ax.set_title("Performance profile")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
  return save(fig, path)


@closes_on_error
def lines(
    path: str | os.PathLike,
    curves: Mapping[str, np.ndarray],
    *,
    dashed: Mapping[str, np.ndarray] | None = None,
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = True,
) -> Path:
  """Solid curves against t = 1..n and dashed references of the same colour.

  Args:
    path: the PNG to write.
    curves: label -> ``y ~ (n,)`` (curves may differ in length).
    dashed: label -> ``y ~ (n,)`` drawn dashed in the colour of the solid
      curve of the same label (e.g. a theoretical rate C r^t).
    xlabel, ylabel, title: the labels.
    logy: log-scaled y.

  Returns:
    ``path``.
  """
  return line_panels(path, {title: curves}, dashed={title: dashed or {}},
                     xlabel=xlabel, ylabel=ylabel, logy=logy)


@closes_on_error
def line_panels(
    path: str | os.PathLike,
    panels: Mapping[str, Mapping[str, np.ndarray]],
    *,
    dashed: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    xlabel: str,
    ylabel: str,
    suptitle: str | None = None,
    logy: bool = True,
) -> Path:
  """``lines`` side by side: one panel per title, colours shared by label.

  Args:
    path: the PNG to write.
    panels: panel title -> label -> ``y ~ (n,)``, plotted against 1..n.
    dashed: panel title -> label -> ``y ~ (n,)``, dashed, same colours.
    xlabel, ylabel: the axis labels.
    suptitle: a title over all panels.
    logy: log-scaled y.

  Returns:
    ``path``.
  """
  if not panels:
    raise ValueError("panels must hold at least one panel, got none.")
  for title, curves in panels.items():
    check_curves(f"panels[{title!r}]", curves, 1)
  plt = pyplot()
  labels = list(dict.fromkeys(
      [k for c in panels.values() for k in c]
      + [k for c in (dashed or {}).values() for k in c]
  ))
  palette = colors(labels)
  fig, axes = plt.subplots(
      1, len(panels), figsize=(4.6 * len(panels) + 0.6, 3.9), squeeze=False
  )
  for ax, (title, curves) in zip(axes[0], panels.items()):
    for label, y in curves.items():
      ax.plot(np.arange(1, len(y) + 1), y, color=palette[label], label=label,
              lw=1.5)
    for label, y in (dashed or {}).get(title, {}).items():
      ax.plot(np.arange(1, len(y) + 1), y, "--", color=palette[label], lw=1,
              alpha=0.9)
    if logy:
      ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
  axes[0][0].set_ylabel(ylabel)
  if suptitle:
    fig.suptitle(suptitle, fontsize=10)
  return save(fig, path)


@closes_on_error
def heatmap(
    path: str | os.PathLike,
    matrix: np.ndarray,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    annotations: Sequence[Sequence[str]] | None = None,
    xlabel: str,
    ylabel: str,
    title: str,
    colorbar: str,
) -> Path:
  """A diverging heat map centred at 0, one annotated cell per entry.

  Args:
    path: the PNG to write.
    matrix: ``~ (n_rows, n_cols)``, e.g. log2 of a time ratio.
    row_labels, col_labels: tick labels.
    annotations: text per cell ``~ (n_rows, n_cols)``.
    xlabel, ylabel, title, colorbar: the labels.

  Returns:
    ``path``.
  """
  m = np.asarray(matrix, dtype=float)
  if m.ndim != 2 or m.shape != (len(row_labels), len(col_labels)):
    raise ValueError(
        f"matrix must have shape (len(row_labels), len(col_labels)) = "
        f"({len(row_labels)}, {len(col_labels)}), got {m.shape}."
    )
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(1.1 * m.shape[1] + 2.5, 0.8 * m.shape[0] + 1.5))
  finite = np.abs(m[np.isfinite(m)])  # +-inf and NaN cells are left blank
  bound = max(float(finite.max()) if finite.size else 1.0, 1e-6)
  im = ax.imshow(m, cmap="RdBu_r", vmin=-bound, vmax=bound, origin="lower")
  ax.set_xticks(range(m.shape[1]), col_labels)
  ax.set_yticks(range(m.shape[0]), row_labels)
  if annotations is not None:
    for i in range(m.shape[0]):
      for j in range(m.shape[1]):
        dark = abs(m[i, j]) > 0.6 * bound
        ax.text(j, i, annotations[i][j], ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  fig.colorbar(im, ax=ax, label=colorbar)
  return save(fig, path)


