"""Linear rates on quadratics (``experiments/convergence_rates.py``).

On f(x) = 1/2 x^T A x, mu I <= A <= L I, kappa = L / mu, a linear method
contracts the error e_t = ||x_t - x*|| by the spectral radius r of its
iteration matrix per step. The closed forms (Polyak 1964; Nesterov 1983;
Lessard, Recht & Packard 2016):

- gradient descent x_t = x_{t-1} - eta grad f(x_{t-1}) with eta = 2/(L + mu):
  r = (kappa - 1)/(kappa + 1);
- heavy ball (the momentum of §1.3.2, g_t = -eta grad f(x_{t-1}) +
  lambda g_{t-1}) with eta = 4/(sqrt L + sqrt mu)^2 and
  lambda = ((sqrt kappa - 1)/(sqrt kappa + 1))^2: r = sqrt(lambda);
- Nesterov with eta = 1/L and lambda = (sqrt kappa - 1)/(sqrt kappa + 1):
  r = 1 - 1/sqrt kappa.

Measuring r. For heavy ball and Nesterov the extreme eigenvalues give a double
root of the characteristic polynomial, so there e_t ~ (a + b t) r^t, not
c r^t: fitting log e_t by a straight line is biased by log(t)/t. The fit is
therefore log e_t = c_0 + c_1 log t + t log r by least squares over the tail
t >= fit_from * steps (for gd, c_1 comes out ~ 0), and the measured rate is
exp(log r). A run lasts steps = min(ceil(log(decrease) / log r_theory),
max_steps); ``validate`` checks up front that every fit window holds at least
3 steps and that decrease >= DECREASE_MIN = 1e-18: e_t is computed in float32,
whose squares underflow below (1.2e-38)^(1/2) ~ 1.1e-19.

Keys. The rotation of A and x_0 for one kappa come from
fold_in(key(seed), int(kappa)) for kappa < 2^32 (the derivation of earlier
versions, so their results reproduce) and from
fold_in(key(seed), crc32(repr(kappa))) above, where int(kappa) does not fit
fold_in's uint32.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Callable, NamedTuple

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

import wonderland as wl
from wonderland import cli
from wonderland import files
from wonderland import optim
from wonderland import problems
from wonderland import report

__all__ = ["METHODS", "Method", "method", "fit_rate", "num_steps",
           "kappa_key", "validate", "run"]

COLUMNS = ("method", "kappa", "measured", "theory")
# The smallest config.decrease: the last errors, ~ decrease * ||x_0 - x*||,
# must stay above ~1.1e-19, below which their float32 squares underflow.
DECREASE_MIN = 1e-18
# The largest kappa: above ~1e16, gd's rate (kappa - 1)/(kappa + 1) rounds to
# 1 in float64 and there is no contraction to measure.
KAPPA_MAX = 1e15


class Method(NamedTuple):
  """A tuned method: its optimizer, its parameters and the rate of theory."""

  optimizer: optax.GradientTransformation
  theory: float
  learning_rate: float
  decay: float  # lambda; 0 for gd

  @property
  def params(self) -> str:
    if self.decay == 0:
      return f"eta={self.learning_rate:.4g}"
    return f"eta={self.learning_rate:.4g}, lambda={self.decay:.4g}"


def _gd(lipschitz: float, mu: float) -> Method:
  kappa = lipschitz / mu
  eta = 2.0 / (lipschitz + mu)
  return Method(optim.gd(eta), (kappa - 1) / (kappa + 1), eta, 0.0)


def _heavy_ball(lipschitz: float, mu: float) -> Method:
  q = math.sqrt(lipschitz / mu)
  eta = 4.0 / (math.sqrt(lipschitz) + math.sqrt(mu)) ** 2
  lam = ((q - 1) / (q + 1)) ** 2
  return Method(optim.momentum(eta, decay=lam), (q - 1) / (q + 1), eta, lam)


def _nesterov(lipschitz: float, mu: float) -> Method:
  q = math.sqrt(lipschitz / mu)
  eta = 1.0 / lipschitz
  lam = (q - 1) / (q + 1)
  return Method(optim.nesterov(eta, decay=lam), 1 - 1 / q, eta, lam)


METHODS: dict[str, Callable[[float, float], Method]] = {
    "gd": _gd,
    "heavy_ball": _heavy_ball,
    "nesterov": _nesterov,
}


def method(name: str, lipschitz: float, mu: float) -> Method:
  """The optimizer ``name`` tuned for L and mu, with its theoretical rate.

  Raises:
    ValueError: for an unknown name or unless 0 < mu < L.
  """
  if name not in METHODS:
    raise ValueError(
        f"name must be one of {', '.join(METHODS)}, got {name!r}."
    )
  if not 0 < mu < lipschitz:
    raise ValueError(
        f"need 0 < mu < lipschitz, got mu={mu!r} and lipschitz={lipschitz!r}."
    )
  return METHODS[name](lipschitz, mu)


def fit_rate(errors, *, fit_from: float = 0.5) -> float:
  """The rate r of e_t ~ (a + b t) r^t, fitted on the tail of ``errors``.

  Args:
    errors: e_t = ||x_t - x*|| for t = 1..n, ``~ (n,)``, positive.
    fit_from: the fit uses t >= fit_from * n.

  Returns:
    r = exp(slope in t) of the least-squares fit
    log e_t = c_0 + c_1 log t + t log r.

  Raises:
    ValueError: if fewer than 3 positive finite errors are in the window or
      fit_from is outside [0, 1).
  """
  if not 0 <= fit_from < 1:
    raise ValueError(f"fit_from must be in [0, 1), got {fit_from!r}.")
  e = np.asarray(errors, dtype=float)
  t = np.arange(1, e.size + 1, dtype=float)
  keep = (t >= fit_from * e.size) & np.isfinite(e) & (e > 0)
  if keep.sum() < 3:
    raise ValueError(
        f"errors must hold at least 3 positive finite values for t >= "
        f"{fit_from} * {e.size}, got {int(keep.sum())}."
    )
  design = np.stack([np.ones(keep.sum()), np.log(t[keep]), t[keep]], axis=1)
  coef, *_ = np.linalg.lstsq(design, np.log(e[keep]), rcond=None)
  return float(np.exp(coef[2]))


def num_steps(theory: float, decrease: float, max_steps: int) -> int:
  """Steps until theory predicts e_t / e_0 <= decrease, at most max_steps."""
  return min(int(math.ceil(math.log(decrease) / math.log(theory))),
             int(max_steps))


def _fit_size(steps: int, fit_from: float) -> int:
  """How many t = 1..steps ``fit_rate`` keeps (t >= fit_from * steps)."""
  return steps - max(1, math.ceil(fit_from * steps)) + 1


def kappa_key(key: jax.Array, kappa: float) -> jax.Array:
  """The key of one kappa: fold_in by int(kappa), or crc32(repr) above 2^32."""
  if kappa < 2**32:
    return jax.random.fold_in(key, int(kappa))
  return jax.random.fold_in(key, zlib.crc32(repr(float(kappa)).encode()))


def validate(config: ml_collections.ConfigDict):
  """Checks the config; returns (kappas, methods).

  Raises:
    cli.ConfigError: one sentence naming the key, value and choices.
  """
  kappas = cli.split_numbers("kappas", config.kappas, 1, KAPPA_MAX,
                             closed=(False, True))
  methods = cli.split_names("methods", config.methods, list(METHODS))
  cli.require_positive("dim", config.dim, integer=True)
  if config.dim < 2:
    raise cli.ConfigError(
        f"config.dim must be at least 2 (mu < L needs two eigenvalues), got "
        f"{config.dim!r}."
    )
  cli.require_positive("max_steps", config.max_steps, integer=True)
  cli.require_positive("tolerance", config.tolerance)
  if not DECREASE_MIN <= config.decrease < 1:
    raise cli.ConfigError(
        f"config.decrease must be in [{DECREASE_MIN:g}, 1) (the errors are "
        f"float32, whose squares underflow below ~1e-19), got "
        f"{config.decrease!r}."
    )
  if not 0 <= config.fit_from < 1:
    raise cli.ConfigError(
        f"config.fit_from must be in [0, 1), got {config.fit_from!r}."
    )
  cli.require_seed("seed", config.seed)
  for kappa in kappas:
    for name in methods:
      steps = num_steps(method(name, kappa, 1.0).theory, config.decrease,
                        config.max_steps)
      if _fit_size(steps, config.fit_from) < 3:
        raise cli.ConfigError(
            f"config.max_steps, config.fit_from and config.decrease leave "
            f"{_fit_size(steps, config.fit_from)} of {name}'s {steps} steps "
            f"at kappa={kappa:g} in the fit window t >= fit_from * steps, "
            f"which needs at least 3 (got max_steps={config.max_steps!r}, "
            f"fit_from={config.fit_from!r}, decrease={config.decrease!r})."
        )
  return kappas, methods


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Measures every method's rate for every kappa; writes rates.csv, rates.png.

  Returns:
    The rows of rates.csv, each with ``relative_error`` and ``steps`` added.
  """
  kappas, methods = validate(config)
  out = cli.prepare_workdir(workdir)
  key = jax.random.key(config.seed)
  rows, panels, dashed = [], {}, {}
  for name in methods:
    panels[name], dashed[name] = {}, {}
  for kappa in kappas:
    rot_key, x_key = jax.random.split(kappa_key(key, kappa))
    problem = problems.get("quadratic", kappa=kappa, dim=config.dim,
                           key=rot_key)
    lipschitz, mu = problem.smoothness, problem.strong_convexity
    x_star = np.asarray(problem.minimizers[0])
    x0 = problem.init(x_key, 1)[0]
    for name in methods:
      m = method(name, lipschitz, mu)
      steps = num_steps(m.theory, config.decrease, config.max_steps)
      trace = wl.minimize(problem.fn, m.optimizer, x0, steps=steps,
                          keep_path=True)
      errors = np.linalg.norm(np.asarray(trace.path) - x_star, axis=1)
      try:
        measured = fit_rate(errors, fit_from=config.fit_from)
      except ValueError as e:
        raise cli.ConfigError(
            f"config.max_steps, config.fit_from and config.decrease leave no "
            f"rate to fit for {name} at kappa={kappa:g} "
            f"({str(e).rstrip('.')})."
        ) from None
      rel = abs(measured - m.theory) / m.theory
      rows.append({"method": name, "kappa": kappa, "measured": measured,
                   "theory": m.theory, "relative_error": rel, "steps": steps,
                   "params": m.params})
      label = f"kappa={kappa:g}"
      panels[name][label] = errors
      # The theoretical slope, through the last point: e_T r^(t - T).
      t = np.arange(1, steps + 1)
      dashed[name][label] = errors[-1] * m.theory ** (t - steps)
      logging.info("%s, kappa=%g (%s): measured %.6f, theory %.6f, %d steps.",
                   name, kappa, m.params, measured, m.theory, steps)

  files.atomic_write(out / "rates.csv", report.csv_text(rows, COLUMNS))
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  plots.line_panels(
      out / "rates.png", panels, dashed=dashed, xlabel="step t",
      ylabel="||x_t - x*||",
      suptitle="Linear convergence on quadratics (dashed: theoretical rate)",
  )
  print(report.format_table(
      rows, ["method", "kappa", "params", "steps", "measured", "theory",
             "relative_error"], floatfmt=".5g",
  ))
  worst = max(r["relative_error"] for r in rows)
  verdict = "within" if worst <= config.tolerance else "NOT within"
  print(f"\nworst relative error {worst:.2e}: {verdict} the tolerance "
        f"{config.tolerance:g}; wrote {out / 'rates.csv'} and "
        f"{out / 'rates.png'}")
  files.save_config(config, out)
  return rows
