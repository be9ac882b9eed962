"""The compare job's tables, figures and ``report.md``, built from its cells.

Every function takes plain values: the cells, the names, the problems, the
eta grid and the target gap, or the job's frozen ``Plan``; none reads the
``ConfigDict``. The numbers follow ``wonderland.report``'s protocol: the best
eta of a cell has the lowest median final value over seeds (a diverged run
counts as +inf), and a run reaches the target at its first
f(x_t) - f* <= target_gap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import problems as problems_lib
from wonderland import report
from wonderland.batching import stack_problems
from wonderland.jobs.compare.cells import Cell
from wonderland.jobs.compare.config import Plan

__all__ = [
    "SUMMARY_COLUMNS", "RANKING_COLUMNS", "summaries", "figures", "report_md",
    "stdout_text",
]

SUMMARY_COLUMNS = (
    "problem", "optimizer", "best_learning_rate", "median_final_value",
    "median_final_gap", "median_steps_to_target", "time_to_target",
    "compile_seconds", "diverged_fraction",
)
RANKING_COLUMNS = ("optimizer", "solved", "wins", "mean_rank", "problems")
# The columns printed, by their short names.
_STDOUT_COLUMNS = {
    "problem": "problem", "optimizer": "optimizer",
    "best_learning_rate": "eta*", "median_final_gap": "gap",
    "median_steps_to_target": "steps", "time_to_target": "time_s",
    "compile_seconds": "compile_s", "diverged_fraction": "diverged",
}


def fmin(problem: problems_lib.Problem, cells: Sequence[Cell]) -> float:
  """f*, or (unknown) the lowest value any run of any optimizer reached."""
  if math.isfinite(problem.fmin):
    return float(problem.fmin)
  finite = [c.values[np.isfinite(c.values)] for c in cells]
  finite = [v for v in finite if v.size]
  return float(min(v.min() for v in finite)) if finite else 0.0


def json_number(x) -> float | None:
  """x as a float, or None (JSON null) if it is not finite."""
  x = float(x)
  return x if math.isfinite(x) else None


def summaries(cells: Mapping[tuple[str, str], Cell], *,
              optimizers: Sequence[str],
              problems: Mapping[str, problems_lib.Problem],
              target_gap: float):
  """The job's tables, from its cells (one per optimizer and problem).

  Returns:
    ``(rows, runs, fmins)``: one ``report.summarize`` row per optimizer and
    problem (``summary.csv``), one JSON-able record per run
    (``results.jsonl``), and f* per problem (the lowest value reached where
    f* is unknown).
  """
  rows, runs, fmins = [], [], {}
  for p, problem in problems.items():
    fmins[p] = fmin(problem, [cells[(o, p)] for o in optimizers])
  for p in problems:
    for o in optimizers:
      c = cells[(o, p)]
      per_run = c.run_seconds / c.program_runs
      row = report.summarize(
          c.values, c.diverged, c.learning_rates, fmin=fmins[p],
          target_gap=target_gap, compile_seconds=c.compile_seconds,
          run_seconds=per_run * c.values[..., 0].size,
      )
      rows.append({"problem": p, "optimizer": o, **row})
      final = report.final_values(c.values, c.diverged)
      to_target = report.steps_to_target(c.values, fmins[p] + target_gap)
      for i, lr in enumerate(c.learning_rates):
        for s in range(final.shape[1]):
          runs.append({
              "optimizer": o, "problem": p, "learning_rate": float(lr),
              "seed": s, "final_value": json_number(final[i, s]),
              "final_gap": json_number(final[i, s] - fmins[p]),
              "steps_to_target": json_number(to_target[i, s]),
              "diverged": bool(c.diverged[i, s]), "best": i == row["best"],
          })
  return rows, runs, fmins


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


def figures(out: Path, cells: Mapping[tuple[str, str], Cell], rows, fmins, *,
            optimizers: Sequence[str],
            problems: Mapping[str, problems_lib.Problem],
            learning_rates: np.ndarray) -> dict[str, Any]:
  """Writes the loss curves, contours, eta sensitivity and performance profile.

  Args:
    out: the workdir; the figures go to ``out/figures``.
    cells, rows, fmins: the cells and what ``summaries`` made of them.
    optimizers, problems, learning_rates: the names, the problems (2-D ones
      get a contour plot) and the eta grid.

  Returns:
    The written paths: ``{"loss": {problem: path}, "contour": {problem:
    path}, "lr": path, "profile": path}``.
  """
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  figdir = out / "figures"
  figdir.mkdir(exist_ok=True)
  palette = plots.colors(optimizers)
  figs: dict[str, Any] = {"loss": {}, "contour": {}}
  best = {(r["optimizer"], r["problem"]): r["best"] for r in rows}
  for p, problem in problems.items():
    curves = {o: cells[(o, p)].values[best[(o, p)]] for o in optimizers}
    path = figdir / f"loss_{p}.png"
    plots.loss_curves(path, curves, fmin=fmins[p], title=p, palette=palette)
    figs["loss"][p] = path
  two_d = [p for p, prob in problems.items() if prob.dim == 2]
  for p, grid in zip(two_d, grids([problems[p] for p in two_d])):
    problem = problems[p]
    paths = {o: cells[(o, p)].path for o in optimizers}
    path = figdir / f"contour_{p}.png"
    plots.contour_paths(
        path, grid, paths, minimizers=np.asarray(problem.minimizers),
        title=f"{p}: best eta per optimizer, seed 0", palette=palette,
    )
    figs["contour"][p] = path
  gaps = {}
  for o in optimizers:
    gaps[o] = {}
    for p in problems:
      final = report.final_values(cells[(o, p)].values, cells[(o, p)].diverged)
      gaps[o][p] = np.median(final, axis=1) - fmins[p]
  figs["lr"] = plots.value_vs_learning_rate(
      figdir / "learning_rates.png", learning_rates, gaps
  )
  costs = np.array([
      [next(r["median_steps_to_target"] for r in rows
            if r["optimizer"] == o and r["problem"] == p)
       for p in problems] for o in optimizers
  ])
  taus = np.geomspace(1.0, 100.0, 200)
  rho = report.performance_profile(costs, taus)
  figs["profile"] = plots.performance_profile(
      figdir / "performance_profile.png", taus,
      {o: rho[i] for i, o in enumerate(optimizers)},
      cost="median steps to target",
  )
  return figs


def report_md(plan: Plan, rows, figs, out: Path,
              cells: Mapping[tuple[str, str], Cell]) -> str:
  """``report.md``: the protocol, the ranking, the summary and the figures."""
  rel = lambda p: Path(p).relative_to(out).as_posix()
  programs = {(c.compile_seconds, c.run_seconds, c.program_runs)
              for c in cells.values()}
  lines = [
      "# compare_optimizers",
      "",
      f"{len(plan.optimizers)} optimizers x {len(plan.problems)} problems; "
      f"eta on {len(plan.learning_rates)} log-spaced values in "
      f"[{plan.lr_min:g}, {plan.lr_max:g}], {plan.num_seeds} initial "
      f"points (seeds) each, {plan.steps} steps. The best eta per optimizer "
      "and problem has the lowest median final value over seeds (a diverged "
      "run counts as +inf), as in DeepOBS and AlgoPerf.",
      "",
      "- *gap*: f(x_T) - f* at the best eta, median over seeds (f* unknown: "
      "the lowest value any run reached).",
      f"- *steps*: median number of steps until f(x_t) - f* <= "
      f"{plan.target_gap:g} (inf: the median run never got there).",
      "- *time_to_target*: the program's run time per run times steps / "
      "total steps. Batched runs share one program in which every run "
      "evaluates every switched branch, so this is the amortized cost, equal "
      "per step for all cells of a batch (`--config.batching=cell` measures "
      "each cell alone).",
      f"- *compile_seconds*: of the program that computed the cell "
      f"({len(programs)} program(s); batching: `{plan.batching}`), "
      "shared by its cells.",
      "",
      "## Ranking",
      "",
      f"*solved*: problems on which the median run reaches a gap of "
      f"{plan.target_gap:g}; *wins*: problems on which it needs the fewest "
      "steps (ties: the smaller gap); *mean_rank*: its mean place over "
      "problems (1 = best). Steps are optimizer steps, not evaluations of f: "
      "armijo_gd's line search evaluates f once per backtrack.",
      "",
      report.markdown_table(report.ranking(rows), RANKING_COLUMNS),
      "",
      "## Summary",
      "",
      report.markdown_table(rows, SUMMARY_COLUMNS),
      "",
  ]
  if "profile" in figs:
    lines += [
        "## Performance profile", "",
        "Fraction of problems on which each optimizer reaches the target "
        "within a factor tau of the fewest steps any optimizer needed.", "",
        f"![performance profile]({rel(figs['profile'])})", "",
        "## Final gap vs learning rate", "",
        f"![learning rates]({rel(figs['lr'])})", "",
        "## Problems", "",
    ]
    for p in plan.problems:
      lines.append(f"### {p}")
      lines.append("")
      lines.append(f"![loss {p}]({rel(figs['loss'][p])})")
      if p in figs["contour"]:
        lines.append(f"![contour {p}]({rel(figs['contour'][p])})")
      lines.append("")
  return "\n".join(lines) + "\n"


def stdout_text(rows, target_gap: float) -> str:
  """The summary and the ranking as the job prints them."""
  table = [{_STDOUT_COLUMNS[k]: r[k] for k in _STDOUT_COLUMNS} for r in rows]
  return (
      report.format_table(table, list(_STDOUT_COLUMNS.values()))
      + f"\n\nranking (solved: median run reaches a gap of {target_gap:g}):\n"
      + report.format_table(report.ranking(rows), RANKING_COLUMNS)
  )
