"""The linearization experiment of §1.2 (``experiments/taylor.py``)."""

from __future__ import annotations

import csv
import io
import math

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from wonderland import derivatives
from wonderland import cli
from wonderland import files

# |x0| + dx at most this: f(x) = x^2 - 1.5 x stays finite in float32.
X_MAX = 1e18
# The largest h: Taylor's order 2 is a limit h -> 0, and along v the term
# exp(x_1 - x_3) of vector_function overflows float32 near h = 100.
H_MAX = 10.0
# The smallest h: below it float32 rounding of f (~1e-7) swamps the error
# ~0.4 h^2 and the fitted order drifts (1.85 at h = 6e-5).
H_MIN = 1e-3


def notes_example(x0: float, dx: float) -> tuple[float, float]:
  """f(x0 + dx) and its linearization at x0 for the notes' f(x) = x^2 - 1.5 x."""
  f = lambda x: x**2 - 1.5 * x
  f_lin = derivatives.linearize(f, jnp.asarray(x0))
  x = jnp.asarray(x0 + dx)
  return float(f(x)), float(f_lin(x))


def vector_function(x):
  """f : R^3 -> R^3, smooth and non-linear in every output."""
  return jnp.stack([
      jnp.sin(x[0]) * x[1],
      jnp.exp(x[0] - x[2]),
      x[0] ** 2 + x[1] ** 3 - x[1] * x[2],
  ])


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the config.

  Raises:
    cli.ConfigError: one sentence naming the key, value and choices.
  """
  cli.require_finite("x0", config.x0)
  cli.require_positive("dx", config.dx)
  if abs(config.x0) + config.dx > X_MAX:
    raise cli.ConfigError(
        f"config.x0 and config.dx must keep |x0| + dx at most {X_MAX:g} "
        f"(f(x) = x^2 - 1.5 x overflows float32 beyond), got "
        f"x0={config.x0!r} and dx={config.dx!r}."
    )
  cli.require_positive("h_max", config.h_max)
  if config.h_max > H_MAX:
    raise cli.ConfigError(
        f"config.h_max must be at most {H_MAX:g} (Taylor's order 2 is a "
        f"limit h -> 0, and f overflows float32 near h = 100), got "
        f"{config.h_max!r}."
    )
  cli.require_positive("num_h", config.num_h, integer=True)
  if config.num_h < 2:
    raise cli.ConfigError(
        f"config.num_h must be at least 2 to fit an order, got {config.num_h}."
    )
  smallest = (math.ldexp(config.h_max, -(int(config.num_h) - 1))
              if config.num_h < 1000 else 0.0)
  if smallest < H_MIN:
    raise cli.ConfigError(
        f"config.num_h and config.h_max must keep the smallest step "
        f"h_max / 2^(num_h - 1) at least {H_MIN:g} (below, float32 rounding "
        f"of f swamps the error ~h^2), got num_h={config.num_h!r} and "
        f"h_max={config.h_max!r} (smallest step {smallest:.3g})."
    )


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Prints the notes' numbers and the error table; writes ``taylor.csv``."""
  validate(config)
  out = cli.prepare_workdir(workdir)

  value, approx = notes_example(config.x0, config.dx)
  print(f"f({config.x0 + config.dx:g}) = {value:.4f}")
  print(f"linearization at {config.x0:g}: {approx:.4f}")

  x0 = jnp.array([0.5, -0.3, 0.8])
  v = jnp.array([1.0, 2.0, -1.0]) / jnp.sqrt(6.0)
  hs = config.h_max / 2.0 ** np.arange(config.num_h)
  errors = derivatives.taylor_errors(vector_function, x0, v, hs)
  order = derivatives.fitted_order(hs, errors)

  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")  # LF, like every other csv
  writer.writerow(["h", "error", "error_over_h2"])
  print(f"\n{'h':>10}  {'||f - f_lin||':>14}  {'error / h^2':>12}")
  for h, e in zip(hs, errors):
    writer.writerow([f"{h:.6g}", f"{e:.6g}", f"{e / h**2:.6g}"])
    print(f"{h:10.6f}  {e:14.6e}  {e / h**2:12.6f}")
  print(f"\nfitted order of the error: {order:.3f} (Taylor: 2)")
  files.atomic_write(out / "taylor.csv", buf.getvalue())
  files.save_config(config, out)
  logging.info("wrote %s", out / "taylor.csv")
  return {"value": value, "linearization": approx, "order": order}
