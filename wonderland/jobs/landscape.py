"""The landscape of §1.3.1 (``experiments/landscape.py``).

Gradient descent only promises a stationary point, grad f(x+) = 0: a minimum,
a maximum or a saddle. For each problem this job finds stationary points by a
multi-start damped Newton search (``landscape.find_stationary_points``),
classifies them by the Hessian's eigenvalues, and samples the chord
inequality of convexity (``landscape.convexity_test``). Two figures follow:

- ``sin_cos.png``: the book's exercise f = sin(x1) cos(x2) + sin(x1/2) cos(x2/2)
  with the points found, gradient-descent and momentum paths from several
  starts, and ||grad f(x_t)|| going to 0;
- ``x_sin_2x.png``: f(x) = x sin(2x), where gradient descent stops in the
  first local minimum below x_0 and momentum (g_t = -eta grad f(x_{t-1}) +
  lambda g_{t-1}) carries the iterate past it once lambda is large enough.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

import wonderland as wl
from wonderland import cli
from wonderland import files
from wonderland import landscape
from wonderland import optim
from wonderland import problems as problems_lib
from wonderland import report

__all__ = ["MAX_DIM", "validate", "analyze", "run"]

# The search forms d x d Hessians per start: small problems only.
MAX_DIM = 10
COLUMNS = ("problem", "dim", "convex", "violation_fraction", "minima",
           "maxima", "saddles", "degenerate", "lowest_found", "fmin",
           "global_found")


def validate(config: ml_collections.ConfigDict):
  """Checks the config; returns (problems by name, the x_sin_2x lambdas).

  Raises:
    cli.ConfigError: one sentence naming the key, value and choices.
  """
  names = cli.split_names(
      "problems", config.problems, problems_lib.names()
  )
  for key in ("n_starts", "n_steps", "convexity_pairs", "sin_cos_starts",
              "sin_cos_steps", "x_sin_2x_steps"):
    cli.require_positive(key, config[key], integer=True)
  for key in ("sin_cos_lr", "x_sin_2x_lr"):
    cli.require_positive(key, config[key], float32=True)
  cli.require_finite("x_sin_2x_x0", config.x_sin_2x_x0)
  lo, hi = (float(b[0]) for b in problems_lib.get("x_sin_2x").bounds)
  if not lo <= config.x_sin_2x_x0 <= hi:
    raise cli.ConfigError(
        f"config.x_sin_2x_x0 must be in x_sin_2x's box [{lo:g}, {hi:g}] (the "
        f"figure draws f there), got {config.x_sin_2x_x0!r}."
    )
  cli.require_seed("seed", config.seed)
  if not 0 <= config.sin_cos_decay < 1:
    raise cli.ConfigError(
        f"config.sin_cos_decay must be in [0, 1), got {config.sin_cos_decay!r}."
    )
  decays = cli.split_numbers("x_sin_2x_decays", config.x_sin_2x_decays, 0, 1,
                             closed=(True, False))
  built = {}
  for name in names:
    try:
      problem = problems_lib.get(name)
    except ImportError as e:
      raise cli.ConfigError(
          f"config.problems has {name!r}, which needs scikit-learn: {e}."
      ) from None
    if problem.dim > MAX_DIM:
      raise cli.ConfigError(
          f"config.problems has {name!r} of dimension {problem.dim}; the "
          f"search forms d x d Hessians, so it takes dimension <= {MAX_DIM}."
      )
    built[name] = problem
  return built, decays


def analyze(problem: problems_lib.Problem, key: jax.Array, *, n_starts: int,
            n_steps: int, convexity_pairs: int):
  """Stationary points (classified) and the convexity test of one problem.

  Returns:
    ``(row, points)``: a row of landscape.csv and the ``(point, kind)`` list.
  """
  k1, k2 = jax.random.split(key)
  points = landscape.find_stationary_points(
      problem.fn, k1, problem.bounds, n_starts=n_starts, n_steps=n_steps
  )
  convexity = landscape.convexity_test(
      problem.fn, k2, problem.bounds, n_pairs=convexity_pairs
  )
  counts = {k: sum(kind == k for _, kind in points)
            for k in ("minimum", "maximum", "saddle", "degenerate")}
  values = [float(problem.fn(p)) for p, _ in points]
  lowest = min(values) if values else math.nan
  fmin = problem.fmin
  found = (math.isfinite(fmin) and bool(values)
           and lowest <= fmin + 1e-3 * max(1.0, abs(fmin)))
  row = {
      "problem": problem.name, "dim": problem.dim,
      "convex": problem.convex,
      "violation_fraction": convexity.violation_fraction,
      "minima": counts["minimum"], "maxima": counts["maximum"],
      "saddles": counts["saddle"], "degenerate": counts["degenerate"],
      "lowest_found": lowest, "fmin": fmin,
      "global_found": found if math.isfinite(fmin) else None,
  }
  return row, points


def _rounded(x) -> str:
  return " ".join(f"{v:.4g}" for v in np.asarray(x, np.float64))


def _grid(problem, n: int = 150):
  lo, hi = (np.asarray(b, float) for b in problem.bounds)
  xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
  xx, yy = np.meshgrid(xs, ys)
  pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
  zs = np.asarray(jax.jit(jax.vmap(problem.fn))(pts)).reshape(n, n)
  return xs, ys, zs


def _sin_cos_figure(config, key, points, path):
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  problem = problems_lib.get("sin_cos")
  # Starts in the middle of the box [0, 10]^2, so that the paths stay in view.
  starts = jax.random.uniform(key, (config.sin_cos_starts, 2), minval=2.5,
                              maxval=7.5)
  methods = {
      "gd": optim.gd(config.sin_cos_lr),
      f"momentum {config.sin_cos_decay:g}": optim.momentum(
          config.sin_cos_lr, decay=config.sin_cos_decay),
  }
  paths, grad_norms, ends = {}, {}, []
  for i, x0 in enumerate(starts):
    for name, opt in methods.items():
      trace = wl.minimize(problem.fn, opt, x0, steps=config.sin_cos_steps,
                          keep_path=True)
      label = f"{name}, start {i + 1}"
      paths[label] = np.concatenate([np.asarray(x0)[None],
                                     np.asarray(trace.path)])
      grad_norms[label] = np.asarray(trace.grad_norms)
      ends.append({"start": i + 1, "method": name,
                   "x0": _rounded(x0), "end": _rounded(trace.params),
                   "grad_norm": float(trace.grad_norms[-1]),
                   "kind": landscape.classify_stationary_point(
                       problem.fn, trace.params)})
  plots.contour_stationary_points(
      path, _grid(problem), points, paths, grad_norms,
      title=(f"sin(x1)cos(x2) + sin(x1/2)cos(x2/2): eta={config.sin_cos_lr:g}, "
             f"{config.sin_cos_steps} steps"),
  )
  return ends


def _x_sin_2x_figure(config, decays, path):
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  problem = problems_lib.get("x_sin_2x")
  x0 = jnp.array([config.x_sin_2x_x0], jnp.float32)
  methods = {"gd": optim.gd(config.x_sin_2x_lr)}
  for lam in decays:
    methods[f"momentum lambda={lam:g}"] = optim.momentum(
        config.x_sin_2x_lr, decay=lam)
  paths, values, ends = {}, {}, []
  for name, opt in methods.items():
    trace = wl.minimize(problem.fn, opt, x0, steps=config.x_sin_2x_steps,
                        keep_path=True)
    p = np.concatenate([np.asarray(x0), np.asarray(trace.path)[:, 0]])
    paths[name] = p
    values[name] = np.asarray(jax.vmap(problem.fn)(jnp.asarray(p)[:, None]))
    ends.append({"method": name, "end": float(trace.params[0]),
                 "value": float(trace.values[-1]),
                 "kind": landscape.classify_stationary_point(
                     problem.fn, trace.params)})
  lo, hi = (float(b[0]) for b in problem.bounds)
  xs = np.linspace(lo, hi, 600)
  fx = np.asarray(jax.vmap(problem.fn)(jnp.asarray(xs, jnp.float32)[:, None]))
  plots.curve_1d(
      path, xs, fx, paths, values,
      title=(f"x sin(2x) from x0={config.x_sin_2x_x0:g}, "
             f"eta={config.x_sin_2x_lr:g}: where each method stops (star)"),
  )
  return ends


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Analyzes every problem; writes landscape.csv, points.csv, figures, report.

  Returns:
    The rows of landscape.csv.
  """
  built, decays = validate(config)
  out = cli.prepare_workdir(workdir)
  key = jax.random.key(config.seed)
  rows, point_rows, all_points = [], [], {}
  for name, problem in built.items():
    row, points = analyze(
        problem, jax.random.fold_in(key, len(rows)), n_starts=config.n_starts,
        n_steps=config.n_steps, convexity_pairs=config.convexity_pairs,
    )
    rows.append(row)
    all_points[name] = points
    for p, kind in points:
      point_rows.append({
          "problem": name, "kind": kind,
          "x": " ".join(f"{v:.6g}" for v in np.asarray(p)),
          "f": float(problem.fn(p)),
      })
    logging.info("%s: %d minima, %d maxima, %d saddles, %d degenerate; "
                 "convexity violations %.3f", name, row["minima"],
                 row["maxima"], row["saddles"], row["degenerate"],
                 row["violation_fraction"])
  files.atomic_write(out / "landscape.csv", report.csv_text(rows, COLUMNS))
  files.atomic_write(
      out / "points.csv",
      report.csv_text(point_rows, ("problem", "kind", "x", "f")),
  )
  print(report.format_table(rows, COLUMNS))

  lines = ["# landscape", "",
           f"Stationary points from {config.n_starts} starts of damped Newton "
           f"on grad f = 0 ({config.n_steps} steps), classified by the "
           "Hessian's eigenvalues; convexity sampled on "
           f"{config.convexity_pairs} chords x 8 points in each problem's "
           "box (a violation proves non-convexity; none only fails to "
           "refute convexity).", "",
           report.markdown_table(rows, COLUMNS), ""]
  if "sin_cos" in built:
    ends = _sin_cos_figure(config, jax.random.fold_in(key, 10_000),
                           all_points["sin_cos"], out / "sin_cos.png")
    columns = ("start", "method", "x0", "end", "grad_norm", "kind")
    files.atomic_write(out / "sin_cos.csv", report.csv_text(ends, columns))
    lines += ["## sin(x1) cos(x2) + sin(x1/2) cos(x2/2)", "",
              "![sin_cos](sin_cos.png)", "",
              report.markdown_table(ends, columns), ""]
  if "x_sin_2x" in built:
    ends = _x_sin_2x_figure(config, decays, out / "x_sin_2x.png")
    columns = ("method", "end", "value", "kind")
    files.atomic_write(out / "x_sin_2x.csv", report.csv_text(ends, columns))
    print()
    print(report.format_table(ends, columns))
    lines += ["## x sin(2x)", "", "![x_sin_2x](x_sin_2x.png)", "",
              report.markdown_table(ends, columns), ""]
  files.atomic_write(out / "report.md", "\n".join(lines) + "\n")
  files.save_config(config, out)
  print(f"\nwrote {out / 'landscape.csv'} and {out / 'report.md'}")
  return rows
