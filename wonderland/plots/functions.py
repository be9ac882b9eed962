"""Figures of a function over its domain: contours with paths and stationary points, a 1-D curve.

The function comes as its values on a grid (so that nothing here runs JAX);
every function draws one figure, writes it atomically to ``path`` (a PNG) and
closes it, also when it fails.
"""

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
from wonderland.plots._figure import TINY

__all__ = ["contour_paths", "contour_stationary_points", "curve_1d"]

_MARKERS = {"minimum": ("o", "tab:green"), "maximum": ("^", "tab:red"),
            "saddle": ("X", "tab:orange"), "degenerate": ("s", "tab:gray")}


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


@closes_on_error
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
    check_curves("paths", paths, 2)
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5.2, 4.4))
  _contour(ax, grid, log_levels=True)
  _paths(ax, paths, palette or colors(list(paths)))
  if minimizers is not None and len(minimizers):
    m = np.asarray(minimizers, dtype=float).reshape(-1, 2)
    ax.plot(m[:, 0], m[:, 1], "k+", ms=10, mew=2, label="minimizers")
  ax.set_title(title)
  ax.legend(fontsize=7, loc="best")
  return save(fig, path)


@closes_on_error
def contour_stationary_points(
    path: str | os.PathLike,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray],
    points: Sequence[tuple[np.ndarray, str]],
    paths: Mapping[str, np.ndarray],
    grad_norms: Mapping[str, np.ndarray],
    *,
    title: str,
) -> Path:
  """Contours with the classified stationary points and paths; ||grad f(x_t)|| beside.

  The left panel draws f's contours, every point of ``points`` with a marker
  per kind and each method's path; the right one ||grad f(x_t)|| against t
  (log scale), which goes to 0 at any stationary point.

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
  plt = pyplot()
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
    ax2.plot(np.maximum(np.asarray(g, float), TINY), color=palette[label],
             label=label, lw=1)
  ax2.set_yscale("log")
  ax2.set_xlabel("step t")
  ax2.set_ylabel("||grad f(x_t)||")
  ax2.set_title("The gradient norm goes to 0")
  ax2.grid(True, alpha=0.3)
  return save(fig, path)


@closes_on_error
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
  check_curves("paths", paths, 1)
  plt = pyplot()
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
  return save(fig, path)
