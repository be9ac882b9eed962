"""The compare job's tables, figures and reports, built from its cells.

Every function takes the cells and the job's frozen ``Plan`` (or plain
values); none reads the ``ConfigDict``. The numbers follow
``wonderland.jobs.compare.protocol``: a run's score is f(x_T) (+inf if it
diverged or left the domain), eta* has the lowest median score over seeds
at 5 significant digits (ties to the smaller eta), and a run reaches the
target at its first f(x_t) - f* <= target_gap.

Outputs: ``summary.csv`` (one row per optimizer and problem: eta*, the
medians of the final gap and of the steps to the target with their
interquartile ranges, edge, the fractions of diverged and out-of-domain
runs), ``results.jsonl`` (one record per run), ``curves.csv`` (tidy:
optimizer, problem, learning_rate, hparams, seed, step, metric, value),
``report.md`` and ``report.html`` (the same report, figures inline), and the
figures in every format of ``config.figure_formats``
(``wonderland.jobs.compare.figures``).

Every output is a function of the cells, the plan and (``report.md``'s
last paragraph) the environment: the same cells give byte-identical
``results.jsonl``, ``curves.csv``, ``report.md`` and ``summary.csv``, but for
its wall-clock columns (``TIMING_COLUMNS``: the times of the program that
computed each cell, measured, not computed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from wonderland import problems as problems_lib
from wonderland import report
from wonderland.jobs import html
from wonderland.jobs.compare import protocol
from wonderland.jobs.compare.cells import Cell
from wonderland.jobs.compare.config import Plan
from wonderland.jobs.optimizers import describe

__all__ = [
    "SUMMARY_COLUMNS", "TIMING_COLUMNS", "RANKING_COLUMNS", "CURVE_COLUMNS",
    "Tables", "tables", "report_md", "report_html",
    "stdout_text",
]

SUMMARY_COLUMNS = (
    "problem", "optimizer", "best_learning_rate", "hparams", "edge",
    "median_final_value", "median_final_gap", "final_gap_q25",
    "final_gap_q75", "median_steps_to_target", "steps_to_target_q25",
    "steps_to_target_q75", "time_to_target", "compile_seconds",
    "diverged_fraction", "left_domain_fraction",
)
# Wall-clock times of the program that computed each cell: the only columns
# of summary.csv that differ between two runs of one config.
TIMING_COLUMNS = ("time_to_target", "compile_seconds")
RANKING_COLUMNS = ("optimizer", "solved", "wins", "mean_rank", "problems")
CURVE_COLUMNS = ("optimizer", "problem", "learning_rate", "hparams", "seed",
                 "step", "metric", "value")
# The columns printed, by their short names.
_STDOUT_COLUMNS = {
    "problem": "problem", "optimizer": "optimizer",
    "best_learning_rate": "eta*", "median_final_gap": "gap",
    "median_steps_to_target": "steps", "time_to_target": "time_s",
    "compile_seconds": "compile_s", "diverged_fraction": "diverged",
    "left_domain_fraction": "left", "edge": "edge",
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


def _quartiles(x) -> tuple[float, float, float]:
  """(q25, median, q75) over seeds, NaN as +inf.

  Linear interpolation between order statistics (NumPy's default method),
  written out so that a quartile that falls exactly on a finite run stays
  finite next to a failed (+inf) one; the median equals ``np.median``'s.
  """
  s = np.sort(np.where(np.isnan(x), np.inf, np.asarray(x, dtype=float)))
  out = []
  for q in (0.25, 0.5, 0.75):
    pos = (s.size - 1) * q
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    t = pos - lo
    out.append(float(s[lo] if t == 0 or s[lo] == s[hi]
                     else s[lo] + (s[hi] - s[lo]) * t))
  return out[0], out[1], out[2]


class Tables(NamedTuple):
  """What ``tables`` makes of the cells.

  Attributes:
    rows: one summary row per optimizer and problem (``SUMMARY_COLUMNS``,
      plus ``best``: the index of eta*'s configuration in the cell).
    fmins: f* per problem (the lowest value reached where f* is unknown).
    left: (label, problem) -> which runs left the domain ~ (n_configs,
      n_seeds).
    summary_csv, results_jsonl, curves_csv: the files' text.
  """

  rows: list[dict[str, Any]]
  fmins: dict[str, float]
  left: dict[tuple[str, str], np.ndarray]
  summary_csv: str
  results_jsonl: str
  curves_csv: str


def _curves(cells, rows, plan: Plan) -> str:
  """``curves.csv``: f(x_t) of every seed at eta* (or of every run)."""
  lines = [",".join(CURVE_COLUMNS)]
  steps = np.arange(1, plan.steps + 1)
  for row in rows:
    c = cells[(row["optimizer"], row["problem"])]
    variants = c.variants()
    configs = (range(len(c.learning_rates)) if plan.curves == "all"
               else [row["best"]])
    for k in configs:
      hp = describe(variants[k]).replace('"', '""')
      hp = f'"{hp}"' if ("," in hp or '"' in hp) else hp
      for s in range(c.values.shape[1]):
        prefix = (f"{row['optimizer']},{row['problem']},"
                  f"{float(c.learning_rates[k]):.6g},{hp},{s},")
        lines += [f"{prefix}{t},f,{v:.7g}"
                  for t, v in zip(steps, c.values[k, s].tolist())]
  return "\n".join(lines) + "\n"


def tables(cells: Mapping[tuple[str, str], Cell], plan: Plan) -> Tables:
  """The summary rows, per-run records and curves of the job's cells."""
  rows, runs, fmins, lefts = [], [], {}, {}
  for p, problem in plan.problems.items():
    fmins[p] = fmin(problem, [cells[(o, p)] for o in plan.labels])
  for p, problem in plan.problems.items():
    for o in plan.labels:
      c = cells[(o, p)]
      variants = c.variants()
      left = protocol.left_domain(c.values, c.final_x, problem)
      lefts[(o, p)] = left
      final = protocol.scores(c.values, c.diverged, left)
      best = protocol.choose(final)
      to_target = report.steps_to_target(c.values, fmins[p] + plan.target_gap)
      to_target[left] = np.inf  # never solved
      gap_q = _quartiles(final[best] - fmins[p])
      steps_q = _quartiles(to_target[best])
      per_run = c.run_seconds / c.program_runs
      lr = float(c.learning_rates[best])
      rows.append({
          "problem": p, "optimizer": o, "best_learning_rate": lr,
          "hparams": describe(variants[best]),
          "edge": protocol.edge(lr, plan.learning_rates),
          "median_final_value": _quartiles(final[best])[1],
          "median_final_gap": gap_q[1], "final_gap_q25": gap_q[0],
          "final_gap_q75": gap_q[2],
          "median_steps_to_target": steps_q[1],
          "steps_to_target_q25": steps_q[0], "steps_to_target_q75": steps_q[2],
          "time_to_target": (per_run * steps_q[1] / c.values.shape[-1]
                             if math.isfinite(steps_q[1]) else math.inf),
          "compile_seconds": float(c.compile_seconds),
          "diverged_fraction": float(np.mean(np.isinf(
              report.final_values(c.values, c.diverged)))),
          "left_domain_fraction": float(np.mean(left)),
          "best": best,
      })
      # The facts of every run; summary.csv applies the protocol (a run that
      # left the domain counts as failed there).
      raw = report.final_values(c.values, c.diverged)
      raw_steps = report.steps_to_target(c.values,
                                         fmins[p] + plan.target_gap)
      for k, lr_k in enumerate(c.learning_rates):
        for s in range(final.shape[1]):
          runs.append({
              "optimizer": o, "problem": p, "learning_rate": float(lr_k),
              "hparams": variants[k], "seed": s,
              "final_value": json_number(raw[k, s]),
              "final_gap": json_number(raw[k, s] - fmins[p]),
              "steps_to_target": json_number(raw_steps[k, s]),
              "diverged": bool(c.diverged[k, s]),
              "left_domain": bool(left[k, s]), "best": k == best,
          })
  return Tables(
      rows=rows, fmins=fmins, left=lefts,
      summary_csv=report.csv_text(rows, SUMMARY_COLUMNS),
      results_jsonl="".join(json.dumps(r) + "\n" for r in runs),
      curves_csv=_curves(cells, rows, plan),
  )


def _iqr(row, key: str, q25: str, q75: str, fmt: str) -> str:
  """``median [q25, q75]`` as report.md prints it."""
  cell = lambda v: report.format_table([{"v": v}], ["v"], floatfmt=fmt
                                       ).splitlines()[-1].strip()
  return f"{cell(row[key])} [{cell(row[q25])}, {cell(row[q75])}]"


def edge_cells(rows) -> list[str]:
  """``adagrad on booth (lr_max)``, for every edge cell."""
  return [f"{r['optimizer']} on {r['problem']} ({r['edge']})"
          for r in rows if r["edge"]]


def left_cells(rows) -> list[str]:
  """``optax.lion on mccormick (35% of runs)``, for every cell with such runs."""
  return [f"{r['optimizer']} on {r['problem']} "
          f"({r['left_domain_fraction']:.0%} of its runs)"
          for r in rows if r["left_domain_fraction"] > 0]


def _protocol_text(plan: Plan) -> list[str]:
  return [
      f"{len(plan.optimizers)} optimizers x {len(plan.problems)} problems; "
      f"eta on {len(plan.learning_rates)} log-spaced values in "
      f"[{plan.lr_min:g}, {plan.lr_max:g}], {plan.num_seeds} initial "
      f"points (seeds) each, {plan.steps} steps. The best eta (eta*) per "
      "optimizer and problem has the lowest median final value over seeds "
      "(a diverged run counts as +inf), as in DeepOBS and AlgoPerf; medians "
      f"are compared at {protocol.DIGITS} significant digits, the ranking's "
      "tie rule, and ties go to the smaller eta (then to the earlier value "
      "of a swept hyperparameter).",
      "",
      "- *gap*: f(x_T) - f* at eta*, median over seeds [interquartile "
      "range] (f* unknown: the lowest value any run reached).",
      f"- *steps*: steps until f(x_t) - f* <= {plan.target_gap:g}, median "
      "[interquartile range] (inf: the run never got there).",
      "- *left the domain*: f* is the minimum over the problem's box, and "
      "some problems (McCormick) are unbounded below outside it. A run that "
      "ends outside the box with f(x_T) < f* - "
      f"{protocol.DOMAIN_TOLERANCE:g} max(1, |f*|) has left the domain: it "
      "counts as failed (+inf, never solved), like a diverged run "
      "(`left_domain_fraction` in `summary.csv`). The problem is not clipped.",
      "- *edge*: eta* is the grid's smallest (`lr_min`) or largest "
      "(`lr_max`) value, so the best eta may lie outside the grid: widen it "
      "(`--config.lr_min`, `--config.lr_max`, with `--config.num_lrs` to "
      "keep its density) and rerun; finished cells of the old grid are not "
      "reused.",
      "- *time_to_target*: the program's run time per run times steps / "
      "total steps. The cells of a batch share one program (each runs only "
      "its own branch), so this is the batch's average cost per run, equal "
      "for all its cells (`--config.batching=cell` measures each cell "
      "alone).",
  ]


def _environment_text(env: Mapping[str, Any]) -> str:
  v = env["versions"]
  git = env.get("git")
  commit = (f"commit {git['commit'][:12]}{' (modified)' if git['dirty'] else ''}"
            if git else "no git commit")
  return (f"Computed with jax {v['jax']}, jaxlib {v['jaxlib']}, optax "
          f"{v['optax']}, wonderland {v['wonderland']} ({commit}) on "
          f"{env['device_count']} x {env['device_kind']} "
          f"({env['platform']}); `config.json` holds the config and these.")


def report_md(plan: Plan, t: Tables, figs, out: Path, programs: int,
              env: Mapping[str, Any]) -> str:
  """``report.md``: the protocol, the ranking, a table per problem, figures.

  Args:
    plan: the job's plan.
    t: the tables of its cells.
    figs: the figures' paths (``figures``), under ``out``.
    out: the directory the figures' paths are written relative to.
    programs: how many programs the plan's batches make.
    env: ``provenance.environment()``.
  """
  rel = lambda p: Path(p).relative_to(out).as_posix()
  edges, lefts = edge_cells(t.rows), left_cells(t.rows)
  swept = any(o.swept for o in plan.optimizers)
  lines = [
      "# compare_optimizers", "",
      *_protocol_text(plan),
      f"- *compile_seconds*: of the program that computed the cell "
      f"({programs} program(s); batching: `{plan.batching}`), "
      "shared by its cells.",
      "",
      _environment_text(env),
      "",
      "## Ranking",
      "",
      f"*solved*: problems on which the median run reaches a gap of "
      f"{plan.target_gap:g}; *wins*: problems on which it needs the fewest "
      "steps (ties: the smaller gap at 5 significant digits); *mean_rank*: "
      "its mean place over problems (1 = best). Steps are optimizer steps, "
      "not evaluations of f: armijo_gd's line search evaluates f once per "
      "backtrack.",
      "",
      report.markdown_table(report.ranking(t.rows), RANKING_COLUMNS),
      "",
      f"**Edge cells** ({len(edges)} of {len(t.rows)}; eta* at an end of the "
      "grid: widen it and rerun): " + ("; ".join(edges) or "none") + ".",
      "",
      "**Left the domain** (runs counted as failed): "
      + ("; ".join(lefts) or "no run") + ".",
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
    ]
  lines += ["## Problems", ""]
  columns = ["optimizer", "eta*", *(["hparams"] if swept else []), "gap",
             "steps", "diverged", "left", "edge"]
  for p in plan.problems:
    table = [{
        "optimizer": r["optimizer"], "eta*": r["best_learning_rate"],
        "hparams": r["hparams"],
        "gap": _iqr(r, "median_final_gap", "final_gap_q25", "final_gap_q75",
                    ".3g"),
        "steps": _iqr(r, "median_steps_to_target", "steps_to_target_q25",
                      "steps_to_target_q75", ".4g"),
        "diverged": r["diverged_fraction"], "left": r["left_domain_fraction"],
        "edge": r["edge"],
    } for r in t.rows if r["problem"] == p]
    lines += [f"### {p}", "", f"f* = {t.fmins[p]:.6g}"
              + ("" if math.isfinite(plan.problems[p].fmin)
                 else " (unknown: the lowest value reached)") + ".", "",
              report.markdown_table(table, columns), ""]
    if p in figs.get("loss", {}):
      lines.append(f"![loss {p}]({rel(figs['loss'][p])})")
    if p in figs.get("contour", {}):
      lines.append(f"![contour {p}]({rel(figs['contour'][p])})")
    lines.append("")
  return "\n".join(lines) + "\n"


def report_html(markdown: str, out: Path) -> str:
  """``report.html``: ``report.md`` as one page with its figures inline."""
  return html.page(markdown, out, title="compare_optimizers")


def stdout_text(rows, plan: Plan) -> str:
  """The summary, the ranking and every edge cell, as the job prints them."""
  columns = dict(_STDOUT_COLUMNS)
  if any(o.swept for o in plan.optimizers):
    columns = {**{k: columns[k] for k in ("problem", "optimizer",
                                          "best_learning_rate")},
               "hparams": "hparams", **columns}
  table = [{columns[k]: r[k] for k in columns} for r in rows]
  edges, lefts = edge_cells(rows), left_cells(rows)
  return (
      report.format_table(table, list(columns.values()))
      + f"\n\nranking (solved: median run reaches a gap of "
      f"{plan.target_gap:g}):\n"
      + report.format_table(report.ranking(rows), RANKING_COLUMNS)
      + f"\n\nedge cells ({len(edges)} of {len(rows)}: eta* at an end of "
      f"[{plan.lr_min:g}, {plan.lr_max:g}]; widen --config.lr_min/lr_max): "
      + ("; ".join(edges) or "none") + "."
      + "\nleft the domain (counted as failed): "
      + ("; ".join(lefts) or "no run") + "."
  )
