"""Forward vs reverse mode Jacobians (``experiments/jacobians.py``, §1.2.2).

For f : R^d -> R^c the Jacobian J ~ (c, d) is built a column at a time by d
Jacobian-vector products (forward mode, ``jax.jacfwd``) or a row at a time by
c vector-Jacobian products (reverse mode, ``jax.jacrev``); with a hidden width
h, f(x) = W_2 tanh(W_1 x) costs about d h (d + c) flops forward and
c h (d + c) reverse, so forward mode should win when d < c.
``wonderland.jacobian(f, mode="auto")`` picks forward mode when c >= d.

Timing: for each (d, c) and each of jitted / eager, the three modes are
called in turn (rotating the order), ``repeats`` rounds after one warm-up
call each, and the median seconds per call is kept. A jitted mode's compile
time (``jax.jit(...).lower(x).compile()``) and an eager mode's first call are
reported apart.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from wonderland import derivatives
from wonderland import cli
from wonderland import files
from wonderland import report

__all__ = ["MODES", "make_function", "time_modes", "validate", "run"]

MODES = ("fwd", "rev", "auto")
COLUMNS = ("input_size", "output_size", "jit", "mode", "compile_seconds",
           "seconds")
TABLE = ("jit", "input_size", "output_size", "fwd_ms", "rev_ms", "auto_ms",
         "winner", "auto_picks", "auto_over_best")


def make_function(key: jax.Array, d: int, c: int, hidden: int):
  """f(x) = W_2 tanh(W_1 x), W_1 ~ (hidden, d), W_2 ~ (c, hidden), and an x."""
  k1, k2, k3 = jax.random.split(key, 3)
  w1 = jax.random.normal(k1, (hidden, d)) / math.sqrt(d)
  w2 = jax.random.normal(k2, (c, hidden)) / math.sqrt(hidden)
  x = jax.random.normal(k3, (d,))
  return (lambda x: w2 @ jnp.tanh(w1 @ x)), x


def time_modes(
    fns: Mapping[str, Callable[[], Any]], *, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
  """(first-call seconds, median seconds per call) of zero-argument fns.

  Each round calls every fn once, the order rotating from round to round, so
  that drifts of a shared machine hit all alike.
  """
  names = list(fns)
  first = {}
  for name in names:
    start = time.perf_counter()
    jax.block_until_ready(fns[name]())
    first[name] = time.perf_counter() - start
  samples = {name: [] for name in names}
  for r in range(repeats):
    for name in names[r % len(names):] + names[:r % len(names)]:
      start = time.perf_counter()
      jax.block_until_ready(fns[name]())
      samples[name].append(time.perf_counter() - start)
  return first, {n: statistics.median(s) for n, s in samples.items()}


# The largest input or output size: a (c, d) Jacobian of 2^16 x 2^16 float32
# is already 16 GiB (and the per-cell key, 1000 d + c, must fit a uint32).
_MAX_SIZE = 2**16


def validate(config: ml_collections.ConfigDict) -> tuple[list[int], list[int]]:
  """Checks the config; returns (input sizes, output sizes).

  Raises:
    cli.ConfigError: one sentence naming the key, value and choices.
  """
  ds = cli.split_numbers("input_sizes", config.input_sizes, 1, _MAX_SIZE,
                         integer=True)
  cs = cli.split_numbers("output_sizes", config.output_sizes, 1, _MAX_SIZE,
                         integer=True)
  cli.require_positive("hidden", config.hidden, integer=True)
  cli.require_positive("repeats", config.repeats, integer=True)
  cli.require_seed("seed", config.seed)
  return ds, cs


def _measure(f, x, jit: bool, repeats: int):
  compile_s = {}
  fns = {}
  for mode in MODES:
    jac = derivatives.jacobian(f, mode=mode)
    if jit:
      start = time.perf_counter()
      compiled = jax.jit(jac).lower(x).compile()
      compile_s[mode] = time.perf_counter() - start
      fns[mode] = lambda compiled=compiled: compiled(x)
    else:
      fns[mode] = lambda jac=jac: jac(x)
  first, median = time_modes(fns, repeats=repeats)
  if not jit:
    compile_s = first  # eager: the first call (op caches) stands apart
  return compile_s, median


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Times every mode on the grid; writes jacobians.csv, report.md, heat maps.

  Returns:
    The summary rows, one per (jit, d, c).
  """
  ds, cs = validate(config)
  out = cli.prepare_workdir(workdir)
  key = jax.random.key(config.seed)
  raw, rows = [], []
  for jit in (True, False):
    for d in ds:
      for c in cs:
        f, x = make_function(jax.random.fold_in(key, 1000 * d + c), d, c,
                             config.hidden)
        compile_s, median = _measure(f, x, jit, config.repeats)
        for mode in MODES:
          raw.append({"input_size": d, "output_size": c, "jit": jit,
                      "mode": mode, "compile_seconds": compile_s[mode],
                      "seconds": median[mode]})
        winner = "fwd" if median["fwd"] <= median["rev"] else "rev"
        picks = "fwd" if c >= d else "rev"
        rows.append({
            "jit": jit, "input_size": d, "output_size": c,
            "fwd_ms": median["fwd"] * 1e3, "rev_ms": median["rev"] * 1e3,
            "auto_ms": median["auto"] * 1e3, "winner": winner,
            "auto_picks": picks,
            "auto_over_best": median["auto"] / min(median["fwd"], median["rev"]),
            "fwd_over_rev": median["fwd"] / median["rev"],
        })
        logging.info("jit=%s d=%d c=%d: fwd %.3gms rev %.3gms auto %.3gms",
                     jit, d, c, *(median[m] * 1e3 for m in MODES))
  files.atomic_write(out / "jacobians.csv", report.csv_text(raw, COLUMNS))

  from wonderland import plots  # pylint: disable=g-import-not-at-top

  figs = {}
  for jit in (True, False):
    sub = [r for r in rows if r["jit"] == jit]
    ratio = np.array([[next(r["fwd_over_rev"] for r in sub
                            if r["input_size"] == d and r["output_size"] == c)
                       for c in cs] for d in ds])
    notes = [[
        _note(next(r for r in sub if r["input_size"] == d
                   and r["output_size"] == c)) for c in cs] for d in ds]
    name = "jacobians_jit.png" if jit else "jacobians_eager.png"
    figs[jit] = plots.heatmap(
        out / name, np.log2(ratio), row_labels=[str(d) for d in ds],
        col_labels=[str(c) for c in cs], annotations=notes,
        xlabel="output size c", ylabel="input size d",
        title=("jitted" if jit else "eager")
        + ": log2(t_fwd / t_rev); blue: forward wins, red: reverse wins",
        colorbar="log2(t_fwd / t_rev)",
    )

  text = report.format_table(rows, TABLE)
  print(text)
  lines = ["# jacobians", "",
           f"f(x) = W_2 tanh(W_1 x), hidden width {config.hidden}; median of "
           f"{config.repeats} interleaved calls per mode; compile time (jit) "
           "or first call (eager) in jacobians.csv.", ""]
  for jit in (True, False):
    sub = [r for r in rows if r["jit"] == jit]
    hits = sum(r["winner"] == r["auto_picks"] for r in sub)
    close = sum(r["auto_over_best"] <= 1.1 for r in sub)
    worst = max(r["auto_over_best"] for r in sub)
    kind = "jitted" if jit else "eager"
    summary = (f"{kind}: auto chose the faster mode in {hits}/{len(sub)} "
               f"cells and was within 10% of the best in {close}/{len(sub)} "
               f"(worst: {worst:.2f}x the best).")
    print(summary)
    lines += [f"## {kind}", "", summary, "",
              f"![{kind}]({figs[jit].name})", "",
              report.markdown_table(sub, TABLE), ""]
  files.atomic_write(out / "report.md", "\n".join(lines) + "\n")
  files.save_config(config, out)
  return rows


def _note(row: Mapping[str, Any]) -> str:
  ratio = max(row["fwd_over_rev"], 1 / row["fwd_over_rev"])
  if row["winner"] == row["auto_picks"]:
    mark = "ok"
  else:
    mark = "tie" if ratio <= 1.1 else "miss"  # within 10%: timing noise
  return f"{row['winner']} {ratio:.1f}x\nauto {mark}"
