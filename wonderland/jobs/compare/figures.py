"""The compare job's figures: loss curves, contours with paths, eta sensitivity, profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import problems as problems_lib
from wonderland import report
from wonderland.batching import stack_problems
from wonderland.jobs import figures as figures_lib
from wonderland.jobs.compare import protocol
from wonderland.jobs.compare.cells import Cell
from wonderland.jobs.compare.config import Plan
from wonderland.jobs.compare.report import Tables

__all__ = ["contour_grid", "grids", "figure_files", "figures"]


def contour_grid(problem: problems_lib.Problem, n: int = 160):
  lo, hi = (np.asarray(b, float) for b in problem.bounds)
  xs = np.linspace(lo[0], hi[0], n)
  ys = np.linspace(lo[1], hi[1], n)
  xx, yy = np.meshgrid(xs, ys)
  pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
  return pts, xs, ys


def grids(problems: Sequence[problems_lib.Problem]):
  """f on a grid over each 2-D problem's bounds, in one compiled program."""
  if not problems:
    return []
  stacked = stack_problems([p.fn for p in problems])
  pts = [contour_grid(p) for p in problems]
  x = jnp.stack([q[0] for q in pts])
  k = jnp.broadcast_to(
      jnp.arange(len(problems), dtype=jnp.float32)[:, None], x.shape[:2]
  )
  zs = jax.jit(jax.vmap(jax.vmap(lambda x, k: stacked({"x": x, "k": k}))))(x, k)
  zs = np.asarray(zs)
  n = pts[0][1].size
  return [(xs, ys, z.reshape(n, n)) for (_, xs, ys), z in zip(pts, zs)]


def _gaps_per_learning_rate(c: Cell, left, fmin_p: float, n_lr: int):
  """The median final gap at each eta, the best variant's (eta-major cells)."""
  final = protocol.scores(c.values, c.diverged, left)
  medians = np.median(final, axis=1).reshape(n_lr, -1)
  return medians.min(axis=1) - fmin_p


def _two_d(plan: Plan) -> list[str]:
  return [p for p, prob in plan.problems.items() if prob.dim == 2]


def figure_files(plan: Plan) -> list[str]:
  """The files ``figures`` writes, relative to the workdir ([] if no plots)."""
  if not plan.plots:
    return []
  stems = ([f"loss_{p}" for p in plan.problems]
           + [f"contour_{p}" for p in _two_d(plan)]
           + ["learning_rates", "performance_profile"])
  return [f"figures/{stem}.{fmt}" for stem in stems
          for fmt in plan.figure_formats]


def figures(out: Path, cells: Mapping[tuple[str, str], Cell], t: Tables,
            plan: Plan) -> dict[str, Any]:
  """Writes the loss curves, contours, eta sensitivity and performance profile.

  Every figure goes to ``out/figures`` as a PNG and in the plan's other
  ``figure_formats`` beside it.

  Returns:
    The PNGs' paths: ``{"loss": {problem: path}, "contour": {problem:
    path}, "lr": path, "profile": path}``.
  """
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  figdir = out / "figures"
  figdir.mkdir(exist_ok=True)
  fmt = {"formats": plan.figure_formats}
  labels = plan.labels
  palette = plots.colors(labels)
  figs: dict[str, Any] = {"loss": {}, "contour": {}}
  best = {(r["optimizer"], r["problem"]): r["best"] for r in t.rows}
  for p in plan.problems:
    curves = {o: cells[(o, p)].values[best[(o, p)]] for o in labels}
    figs["loss"][p] = figures_lib.draw(
        plots.loss_curves, figdir / f"loss_{p}.png", curves, fmin=t.fmins[p],
        title=p, palette=palette, **fmt)
  two_d = _two_d(plan)
  for p, grid in zip(two_d, grids([plan.problems[p] for p in two_d])):
    problem = plan.problems[p]
    paths = {o: cells[(o, p)].path for o in labels}
    figs["contour"][p] = figures_lib.draw(
        plots.contour_paths, figdir / f"contour_{p}.png", grid, paths,
        minimizers=np.asarray(problem.minimizers),
        title=f"{p}: each optimizer at its eta*, seed 0", palette=palette,
        **fmt)
  n_lr = len(plan.learning_rates)
  gaps = {o: {p: _gaps_per_learning_rate(cells[(o, p)], t.left[(o, p)],
                                         t.fmins[p], n_lr)
              for p in plan.problems} for o in labels}
  figs["lr"] = figures_lib.draw(
      plots.value_vs_learning_rate, figdir / "learning_rates.png",
      plan.learning_rates, gaps, **fmt)
  steps = {(r["optimizer"], r["problem"]): r["median_steps_to_target"]
           for r in t.rows}
  costs = np.array([[steps[(o, p)] for p in plan.problems] for o in labels])
  taus = np.geomspace(1.0, 100.0, 200)
  rho = report.performance_profile(costs, taus)
  figs["profile"] = figures_lib.draw(
      plots.performance_profile, figdir / "performance_profile.png", taus,
      {o: rho[i] for i, o in enumerate(labels)},
      cost="median steps to target", **fmt)
  return figs
