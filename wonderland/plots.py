"""Figures for experiments (PNG, matplotlib's Agg backend).

Every function takes NumPy arrays (a function's values on a grid rather than
the function, so that nothing here runs JAX), draws one figure, writes it
atomically to ``path`` and closes it. Colours are stable per label: the same
optimizer has the same colour in every figure of a report.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from wonderland import files

__all__ = [
    "colors",
    "loss_curves",
    "contour_paths",
    "value_vs_learning_rate",
    "performance_profile",
    "lines",
    "line_panels",
    "heatmap",
    "landscape",
    "curve_1d",
]

_TINY = 1e-12
_CAP = 1e8  # value_vs_learning_rate clips gaps here
_DPI = 100
_MARKERS = {"minimum": ("o", "tab:green"), "maximum": ("^", "tab:red"),
            "saddle": ("X", "tab:orange"), "degenerate": ("s", "tab:gray")}


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def _closes_on_error(fn):
  """Closes the figures ``fn`` opened if it raises: a failed plot leaks none."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    plt = _pyplot()
    before = set(plt.get_fignums())
    try:
      return fn(*args, **kwargs)
    except BaseException:
      for num in set(plt.get_fignums()) - before:
        plt.close(num)
      raise

  return wrapper


def _save(fig, path: str | os.PathLike, *, layout: bool = True) -> Path:
  plt = _pyplot()
  path = Path(path)
  if path.suffix != ".png":
    plt.close(fig)
    raise ValueError(f"path must end in .png, got {str(path)!r}.")
  buf = io.BytesIO()
  try:
    # tight_layout once, rather than bbox_inches="tight" (which draws twice).
    if layout:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=_DPI)
  finally:
    plt.close(fig)
  files.atomic_write(path, buf.getvalue())
  return path


def colors(labels: Sequence[str]) -> dict[str, str]:
  """A colour per label (tab10, then tab20), in the order given."""
  plt = _pyplot()
  palette = list(plt.get_cmap("tab10").colors) + list(
      plt.get_cmap("tab20").colors[1::2]
  )
  return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _check_curves(name: str, curves: Mapping[str, np.ndarray], rank: int):
  if not curves:
    raise ValueError(f"{name} must hold at least one curve, got none.")
  for label, c in curves.items():
    if np.ndim(c) != rank:
      raise ValueError(
          f"{name}[{label!r}] must be a {rank}-D array, got shape "
          f"{np.shape(c)}."
      )


@_closes_on_error
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
  _check_curves("curves", curves, 2)
  for label, values in curves.items():
    if np.shape(values)[1] == 0:
      raise ValueError(
          f"curves[{label!r}] must hold at least one step, got shape "
          f"{np.shape(values)}."
      )
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  palette = palette or colors(list(curves))
  all_positive, any_finite = True, False
  top = -np.inf
  for label, values in curves.items():
    v = np.asarray(values, dtype=float)
    if fmin is not None and np.isfinite(fmin):
      v = np.maximum(v - fmin, _TINY)
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
  return _save(fig, path)


def _contour(ax, grid, *, log_levels: bool):
  xs, ys, zs = (np.asarray(a, dtype=float) for a in grid)
  if zs.shape != (ys.size, xs.size):
    raise ValueError(
        f"grid values must have shape (len(ys), len(xs)) = "
        f"({ys.size}, {xs.size}), got {zs.shape}."
    )
  finite = zs[np.isfinite(zs)]
  zs = np.ma.masked_invalid(zs)  # where f is not finite, no contour is drawn
  if log_levels and finite.size and finite.max() - finite.min() > 50:
    shift = finite - finite.min()
    levels = np.geomspace(max(np.percentile(shift, 1), 1e-3), shift.max(), 25)
    ax.contour(xs, ys, zs - finite.min(), levels=levels, cmap="viridis",
               linewidths=0.7, alpha=0.6)
  elif finite.size:
    ax.contour(xs, ys, zs, levels=25, cmap="viridis", linewidths=0.7,
               alpha=0.6)
  ax.set_xlim(xs.min(), xs.max())
  ax.set_ylim(ys.min(), ys.max())
  ax.set_xlabel("x[0]")
  ax.set_ylabel("x[1]")


def _paths(ax, paths: Mapping[str, np.ndarray], palette):
  for label, p in paths.items():
    p = np.asarray(p, dtype=float)
    p = p[np.all(np.isfinite(p), axis=1)]
    if not len(p):
      continue
    ax.plot(p[:, 0], p[:, 1], "-", color=palette[label], lw=1.2, label=label,
            marker=".", ms=2)
    ax.plot(p[0, 0], p[0, 1], "o", color=palette[label], ms=5, mfc="white")
    ax.plot(p[-1, 0], p[-1, 1], "*", color=palette[label], ms=8)


@_closes_on_error
def contour_paths(
    path: str | os.PathLike,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray],
    paths: Mapping[str, np.ndarray],
    *,
    minimizers: np.ndarray | None = None,
    title: str,
    palette: Mapping[str, str] | None = None,
) -> Path:
  """A 2-D function's contours with each optimizer's trajectory.

  Args:
    path: the PNG to write.
    grid: ``(xs ~ (nx,), ys ~ (ny,), zs ~ (ny, nx))``, f on the grid
      (``zs[i, j] = f(xs[j], ys[i])``). Levels are log-spaced above the
      minimum when f spans more than 50 units (Rosenbrock, Beale).
    paths: label -> ``x_t ~ (steps, 2)``; open circle at x_0, star at the end.
    minimizers: known minimizers ``~ (m, 2)``, drawn as black crosses.
    title: the figure title.
    palette: label -> colour (default: ``colors(paths)``).

  Returns:
    ``path``.
  """
  if paths:
    _check_curves("paths", paths, 2)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.2, 4.4))
  _contour(ax, grid, log_levels=True)
  _paths(ax, paths, palette or colors(list(paths)))
  if minimizers is not None and len(minimizers):
    m = np.asarray(minimizers, dtype=float).reshape(-1, 2)
    ax.plot(m[:, 0], m[:, 1], "k+", ms=10, mew=2, label="minimizers")
  ax.set_title(title)
  ax.legend(fontsize=7, loc="best")
  return _save(fig, path)


@_closes_on_error
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
  plt = _pyplot()
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
  cap = min(max(max(finite) if finite else 1.0, _TINY), _CAP)
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
      gap = np.clip(gap, _TINY, cap)
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
    ax.set_ylim(_TINY / 3, top * 3)
  handles, labels = axes.flat[0].get_legend_handles_labels()
  ncol = min(7, len(labels))
  legend_rows = -(-len(labels) // ncol)
  fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7,
             bbox_to_anchor=(0.5, 0.0))
  fig.suptitle(
      f"Final gap vs learning rate (x: median run diverged; gaps clipped to "
      f"[{_TINY:g}, {cap:.3g}])"
  )
  fig.tight_layout(rect=(0, 0.035 * legend_rows / nrows + 0.02, 1, 1))
  return _save(fig, path, layout=False)


@_closes_on_error
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
  _check_curves("rho", rho, 1)
  taus = np.asarray(taus, dtype=float)
  for label, r in rho.items():
    if np.shape(r) != taus.shape:
      raise ValueError(
          f"rho[{label!r}] must have the shape of taus {taus.shape}, got "
          f"{np.shape(r)}."
      )
  plt = _pyplot()
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
  return _save(fig, path)


@_closes_on_error
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


@_closes_on_error
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
    _check_curves(f"panels[{title!r}]", curves, 1)
  plt = _pyplot()
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
  return _save(fig, path)


@_closes_on_error
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
  plt = _pyplot()
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
  return _save(fig, path)


@_closes_on_error
def landscape(
    path: str | os.PathLike,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray],
    points: Sequence[tuple[np.ndarray, str]],
    paths: Mapping[str, np.ndarray],
    grad_norms: Mapping[str, np.ndarray],
    *,
    title: str,
) -> Path:
  """Contours with classified stationary points and paths; ||grad f(x_t)||.

  Args:
    path: the PNG to write.
    grid: ``(xs, ys, zs)`` as for ``contour_paths``.
    points: ``(x ~ (2,), kind)`` with kind minimum, maximum, saddle or
      degenerate.
    paths: label -> ``x_t ~ (steps, 2)``.
    grad_norms: label -> ``||grad f(x_t)|| ~ (steps,)`` (right panel, log).
    title: the figure title.

  Returns:
    ``path``.
  """
  plt = _pyplot()
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5.6))
  _contour(ax, grid, log_levels=False)
  palette = colors(list(paths) + [k for k in grad_norms if k not in paths])
  _paths(ax, paths, palette)
  for kind, (marker, color) in _MARKERS.items():
    pts = np.array([np.asarray(p, float) for p, k in points if k == kind])
    if len(pts):
      ax.plot(pts[:, 0], pts[:, 1], marker, color=color, ms=7, ls="none",
              mec="black", label=f"{kind} ({len(pts)})")
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13),
            ncol=3)
  for label, g in grad_norms.items():
    ax2.plot(np.maximum(np.asarray(g, float), _TINY), color=palette[label],
             label=label, lw=1)
  ax2.set_yscale("log")
  ax2.set_xlabel("step t")
  ax2.set_ylabel("||grad f(x_t)||")
  ax2.set_title("The gradient norm goes to 0")
  ax2.grid(True, alpha=0.3)
  return _save(fig, path)


@_closes_on_error
def curve_1d(
    path: str | os.PathLike,
    xs: np.ndarray,
    fx: np.ndarray,
    paths: Mapping[str, np.ndarray],
    path_values: Mapping[str, np.ndarray],
    *,
    title: str,
) -> Path:
  """A 1-D function with iterates x_t drawn on it (one colour per method).

  Args:
    path: the PNG to write.
    xs, fx: the curve, ``~ (n,)`` each.
    paths: label -> iterates ``x_t ~ (steps,)``.
    path_values: label -> ``f(x_t) ~ (steps,)``.
    title: the figure title.

  Returns:
    ``path``.
  """
  _check_curves("paths", paths, 1)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  ax.plot(xs, fx, "k-", lw=1, label="f(x)")
  palette = colors(list(paths))
  for label, p in paths.items():
    p = np.asarray(p, float)
    v = np.asarray(path_values[label], float)
    ax.plot(p, v, "o-", color=palette[label], ms=3, lw=0.6, alpha=0.8,
            label=label)
    ax.plot(p[-1], v[-1], "*", color=palette[label], ms=14, mec="black")
  ax.plot(p[0], v[0], "ks", ms=6, label="x_0")
  ax.set_xlabel("x")
  ax.set_ylabel("f(x)")
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7)
  return _save(fig, path)
