"""The edge of stability (``experiments/edge_of_stability.py``, issue #17).

§1.3.1's smoothness gives the classical rule for the step size: if
||grad f(x) - grad f(y)|| <= L ||x - y||, gradient descent
x_t = x_{t-1} - eta grad f(x_{t-1}) decreases f at every step when
eta < 2/L. On the quadratic model of f at x_t the component of the step along
the top eigenvector of the Hessian is multiplied by 1 - eta lambda_max, so the
iteration is stable there only while the sharpness lambda_max (the top
eigenvalue of the Hessian at x_t) stays below 2/eta. Full-batch gradient
descent on a neural network does something else (Cohen et al., 2021): the
sharpness rises along the path ("progressive sharpening") until it reaches
2/eta, then hovers there ("the edge of stability") while f keeps decreasing,
non-monotonically. With momentum lambda the edge is (2 + 2 lambda)/eta; for
adam the *preconditioned* sharpness, the top eigenvalue of
P^{-1/2} H P^{-1/2} with P = sqrt(v_hat_t) + eps, settles near
(2 + 2 beta_1)/((1 - beta_1) eta), 38/eta at beta_1 = 0.9 (Cohen et al., 2022).

The objective: a tanh MLP 40-w-w-10 on the first n training signals of
MNIST-1D, with the mean squared error against one-hot targets y_i,
f(x) = 1/(2n) sum_i ||net_x(a_i) - y_i||^2 (Cohen et al.'s loss), from
PyTorch's default initialisation (every weight and bias of a layer
~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))).

How it is measured: every run is a ``wonderland.sweep`` that records the
curvature in its trace, inside the compiled program, after every
``sharpness_every`` steps (``record=(..., "sharpness")``): ``sharpness_iters``
Lanczos steps on Hessian-vector products, warm-started from the previous
evaluation's Ritz vector (``wonderland.landscape.curvature.warm_sharpness``).

- the gradient descent runs (eta = 2/edge for each of ``gd_edges``) and the
  momentum run are one sweep over a run index i: the factory builds
  ``optim.momentum(eta_i, lambda_i)``, with lambda_i = 0 for gradient descent
  (the same steps as ``optim.gd``). They record the sharpness;
- adam's run is a sweep of ``optim.adam`` that records the preconditioned
  sharpness at x_t, with P the preconditioner of the update that led to x_t
  (read from adam's state, ``landscape.preconditioner``).

The initial sharpness (which every edge must exceed) is a cold
``landscape.sharpness`` at x_0, iterated to a relative change of 1e-6.

The checks of issue #17 (``edge_checks``), for a run with edge e, sharpness
S_k at the evaluated steps s_k and losses f(x_t):

- the crossing k* is the first k with S_k >= e;
- progressive sharpening: rise = S_{k*} / min_{k <= k*} S_k - 1 >= 0.2;
- edge of stability: ratio = median_{k >= k*} S_k / e in [0.9, 1.3];
- the loss keeps decreasing: f(x_steps) < f(x_{s_{k*}}).

They are required of every gradient descent run and reported for the
momentum and adam runs.

References:
  Cohen, Kaur, Li, Kolter & Talwalkar, Gradient descent on neural networks
  typically occurs at the edge of stability, ICLR 2021.
  Cohen, Ghorbani, Krishnan, Agarwal, Medapati, Badura, Suo, Cardoze, Nado,
  Dahl & Gilmer, Adaptive gradient methods at the edge of stability, 2022.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

import wonderland as wl
from wonderland import cli
from wonderland import files
from wonderland import landscape
from wonderland import optim
from wonderland import report

__all__ = ["Plan", "Run", "Check", "validate", "objective", "edge",
           "edge_checks", "run"]

COLUMNS = ("step", "eta", "optimizer", "loss", "sharpness", "threshold")
CHECK_COLUMNS = ("run", "eta", "threshold", "crossing_step", "rise",
                 "median_over_threshold", "loss_at_crossing", "final_loss",
                 "passed")
# The bounds of the checks (issue #17).
MIN_RISE = 0.2
RATIO_RANGE = (0.9, 1.3)
N_TRAIN = 4000  # MNIST-1D's training signals
N_FEATURES = 40
N_CLASSES = 10


class Plan(NamedTuple):
  """The validated config, in plain values."""

  n_examples: int
  width: int
  gd_etas: tuple[float, ...]
  momentum_eta: float
  momentum_decay: float
  adam_eta: float
  adam_b1: float
  steps: int
  every: int
  sharpness_iters: int
  seed: int


class Run(NamedTuple):
  """One run: its losses f(x_t), t = 1..steps, and its sharpness.

  For adam, ``sharpness`` is the preconditioned one.
  """

  label: str
  optimizer: str
  eta: float
  threshold: float
  loss: np.ndarray  # ~ (steps,)
  sharpness: np.ndarray  # ~ (n_evals,), at the evaluated steps


class Check(NamedTuple):
  """The checks of one run; None and NaN if it never reaches its edge."""

  crossing_step: int | None
  rise: float
  median_over_threshold: float
  loss_at_crossing: float
  final_loss: float

  @property
  def passed(self) -> bool:
    return bool(self.crossing_step is not None
                and self.rise >= MIN_RISE
                and RATIO_RANGE[0] <= self.median_over_threshold
                <= RATIO_RANGE[1]
                and self.final_loss < self.loss_at_crossing)


def _is_real(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate(config: ml_collections.ConfigDict) -> Plan:
  """Checks the config; returns its plan.

  Raises:
    cli.ConfigError: one sentence naming the key, value and what is allowed.
  """
  cli.require_positive("n_examples", config.n_examples, integer=True)
  if config.n_examples > N_TRAIN:
    raise cli.ConfigError(
        f"config.n_examples must be at most {N_TRAIN} (MNIST-1D's training "
        f"signals), got {config.n_examples!r}."
    )
  cli.require_positive("width", config.width, integer=True)
  edges = cli.split_numbers("gd_edges", config.gd_edges, 0, cli.FLOAT32_MAX,
                            closed=(False, True))
  for key in ("momentum_eta", "adam_eta"):
    cli.require_positive(key, config[key], float32=True)
  for key in ("momentum_decay", "adam_b1"):
    value = config[key]
    if not (_is_real(value) and 0 <= value < 1):
      raise cli.ConfigError(f"config.{key} must be in [0, 1), got {value!r}.")
  cli.require_positive("steps", config.steps, integer=True)
  cli.require_positive("sharpness_every", config.sharpness_every,
                       integer=True)
  if config.steps % config.sharpness_every:
    raise cli.ConfigError(
        f"config.steps must be a multiple of config.sharpness_every, got "
        f"steps={config.steps!r} and sharpness_every="
        f"{config.sharpness_every!r}."
    )
  cli.require_positive("sharpness_iters", config.sharpness_iters,
                       integer=True)
  cli.require_seed("seed", config.seed)
  return Plan(
      n_examples=int(config.n_examples), width=int(config.width),
      gd_etas=tuple(2.0 / e for e in edges),
      momentum_eta=float(config.momentum_eta),
      momentum_decay=float(config.momentum_decay),
      adam_eta=float(config.adam_eta), adam_b1=float(config.adam_b1),
      steps=int(config.steps), every=int(config.sharpness_every),
      sharpness_iters=int(config.sharpness_iters),
      seed=int(config.seed),
  )


def edge(optimizer: str, eta: float, decay: float = 0.0) -> float:
  """The edge: 2/eta, (2 + 2 lambda)/eta, or adam's (2 + 2 b1)/((1 - b1) eta).

  Args:
    optimizer: ``"gd"``, ``"momentum"`` (decay is lambda) or ``"adam"``
      (decay is beta_1).
    eta: the step size.
    decay: lambda or beta_1.

  Raises:
    ValueError: for another optimizer.
  """
  if optimizer == "gd":
    return 2.0 / eta
  if optimizer == "momentum":
    return (2.0 + 2.0 * decay) / eta
  if optimizer == "adam":
    return (2.0 + 2.0 * decay) / ((1.0 - decay) * eta)
  raise ValueError(
      f"optimizer must be 'gd', 'momentum' or 'adam', got {optimizer!r}.")


def objective(n_examples: int, width: int,
              seed: int) -> tuple[Callable[[Any], jax.Array], dict]:
  """The tanh MLP's mean squared error on MNIST-1D, and its initial point.

  The same (n_examples, width, seed) gives the same function object, so that
  jax's caches serve a second run (or a refused config) without compiling.

  Returns:
    ``(f, x0)``: f(params) = 1/(2n) sum_i ||net(a_i) - y_i||^2 over the first
    n training signals, and params ``{"w1", "b1", "w2", "b2", "w3", "b3"}``
    drawn from PyTorch's default initialisation with key ``seed``.

  Raises:
    ImportError: if the ``mnist1d`` package is not installed.
  """
  f, x0 = _objective(n_examples, width, seed)
  return f, dict(x0)


@functools.lru_cache(maxsize=4)
def _objective(n_examples: int, width: int, seed: int):
  from wonderland.problems import mnist1d  # pylint: disable=g-import-not-at-top

  arrays = mnist1d.load()
  features = jnp.asarray(arrays.x_train[:n_examples], jnp.float32)
  targets = jax.nn.one_hot(arrays.y_train[:n_examples], N_CLASSES)

  def f(p):
    h = jnp.tanh(features @ p["w1"] + p["b1"])
    h = jnp.tanh(h @ p["w2"] + p["b2"])
    out = h @ p["w3"] + p["b3"]
    return 0.5 * jnp.mean(jnp.sum((out - targets) ** 2, axis=-1))

  sizes = (N_FEATURES, width, width, N_CLASSES)
  keys = jax.random.split(jax.random.key(seed), 2 * (len(sizes) - 1))
  x0 = {}
  for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
    bound = 1.0 / math.sqrt(fan_in)
    x0[f"w{i + 1}"] = jax.random.uniform(
        keys[2 * i], (fan_in, fan_out), minval=-bound, maxval=bound)
    x0[f"b{i + 1}"] = jax.random.uniform(
        keys[2 * i + 1], (fan_out,), minval=-bound, maxval=bound)
  return f, x0


def _heavy_ball(run: Any, *, learning_rates: tuple[float, ...],
                decays: tuple[float, ...]) -> optax.GradientTransformation:
  """Run i's optimizer: ``optim.momentum(learning_rates[i], decays[i])``."""
  return optim.momentum(jnp.asarray(learning_rates)[run],
                        jnp.asarray(decays)[run])


def _sweep_runs(f, x0, plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The gradient descent and momentum runs, one sweep.

  Returns:
    ``(losses ~ (runs, steps), sharpness ~ (runs, n_evals), eval_steps)``.
  """
  etas = (*plan.gd_etas, plan.momentum_eta)
  decays = (0.0,) * len(plan.gd_etas) + (plan.momentum_decay,)
  result = wl.sweep(
      f, _heavy_ball, {"run": np.arange(len(etas))}, _one_seed(x0),
      steps=plan.steps,
      fixed={"learning_rates": etas, "decays": decays},
      record=("value", "sharpness"), eval_every=plan.every,
      sharpness_iters=plan.sharpness_iters,
      # One block of every run: the same numbers on any device count.
      block_size=len(etas),
  )
  return (np.asarray(result.values[:, 0]),
          np.asarray(result.evals["sharpness"][:, 0]),
          np.asarray(result.eval_steps))


def _one_seed(x0):
  return jax.tree.map(lambda a: a[None], x0)


def _adam_run(f, x0, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
  """Adam: f(x_t) for t = 1..steps, and the preconditioned sharpness."""
  result = wl.sweep(
      f, optim.adam, {"learning_rate": np.array([plan.adam_eta])},
      _one_seed(x0), steps=plan.steps, fixed={"b1": plan.adam_b1},
      record=("value", "preconditioned_sharpness"), eval_every=plan.every,
      sharpness_iters=plan.sharpness_iters, block_size=1,
  )
  return (np.asarray(result.values[0, 0]),
          np.asarray(result.evals["preconditioned_sharpness"][0, 0]))


def edge_checks(loss: np.ndarray, sharpness: np.ndarray,
                eval_steps: np.ndarray, threshold: float) -> Check:
  """Issue #17's three checks of one run (see the module docstring).

  Args:
    loss: f(x_t) for t = 1..steps ~ (steps,).
    sharpness: the sharpness at ``eval_steps`` ~ (n_evals,).
    eval_steps: the evaluated steps, 1-based, increasing ~ (n_evals,).
    threshold: the run's edge e (2/eta for gradient descent).

  Returns:
    A ``Check``; ``crossing_step`` None (and NaN statistics) if the sharpness
    never reached the edge.
  """
  loss = np.asarray(loss, dtype=float)
  sharpness = np.asarray(sharpness, dtype=float)
  final = float(loss[-1])
  reached = np.flatnonzero(sharpness >= threshold)
  if reached.size == 0:
    return Check(None, math.nan, math.nan, math.nan, final)
  k = int(reached[0])
  step = int(np.asarray(eval_steps)[k])
  return Check(
      crossing_step=step,
      rise=float(sharpness[k] / np.min(sharpness[:k + 1]) - 1),
      median_over_threshold=float(np.median(sharpness[k:]) / threshold),
      loss_at_crossing=float(loss[step - 1]),
      final_loss=final,
  )


def _check_row(run: Run, check: Check) -> dict[str, Any]:
  return {"run": run.label, "eta": run.eta, "threshold": run.threshold,
          "crossing_step": ("never" if check.crossing_step is None
                            else check.crossing_step),
          "rise": check.rise,
          "median_over_threshold": check.median_over_threshold,
          "loss_at_crossing": check.loss_at_crossing,
          "final_loss": check.final_loss, "passed": check.passed}


def _csv_rows(runs: list[Run], eval_steps: np.ndarray) -> list[dict[str, Any]]:
  rows = []
  for r in runs:
    measured = dict(zip(eval_steps.tolist(), r.sharpness.tolist()))
    for t, value in enumerate(r.loss.tolist(), start=1):
      rows.append({"step": t, "eta": r.eta, "optimizer": r.optimizer,
                   "loss": value, "sharpness": measured.get(t, ""),
                   "threshold": r.threshold})
  return rows


def _report_md(plan: Plan, runs: list[Run], checks: list[Check],
               initial: float, seconds: float) -> str:
  rows = [_check_row(r, c) for r, c in zip(runs, checks)]
  gd = [c.passed for r, c in zip(runs, checks) if r.optimizer == "gd"]
  verdict = ("every gradient descent run passes the three checks"
             if all(gd) else
             f"{len(gd) - sum(gd)} of {len(gd)} gradient descent runs FAIL "
             f"the checks")
  lines = [
      "# The edge of stability", "",
      f"Full-batch runs on a tanh MLP 40-{plan.width}-{plan.width}-10 with the "
      f"mean squared error on {plan.n_examples} MNIST-1D signals, "
      f"{plan.steps} steps; sharpness (adam: preconditioned) every "
      f"{plan.every} steps, in the trace, by {plan.sharpness_iters} "
      f"warm-started Lanczos steps on Hessian-vector products. Initial "
      f"sharpness {initial:.4g}. "
      f"{seconds:.0f} s.", "",
      "![edge of stability](edge_of_stability.png)", "",
      f"Checks (issue #17): the sharpness rises by at least "
      f"{MIN_RISE:.0%} from its lowest value before it first reaches the "
      f"threshold (`rise`), its median from then on lies within "
      f"[{RATIO_RANGE[0]:g}, {RATIO_RANGE[1]:g}] x threshold, and the final "
      f"loss is below the loss at the crossing. Required of gradient "
      f"descent; shown for momentum and adam. Result: {verdict}.", "",
      report.markdown_table(rows, CHECK_COLUMNS, floatfmt=".4g"), "",
  ]
  return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the experiment; writes the CSV, the figure, report.md, config.json.

  Returns:
    ``{"initial_sharpness": float, "eval_steps": array, "runs": [Run],
    "checks": [Check]}``, runs and checks in the order: gradient descent
    (in the order of ``gd_edges``), momentum, adam.

  Raises:
    cli.ConfigError: for a bad config, or a gradient descent or momentum edge
      at or below the initial sharpness (the run would start past its edge),
      before anything is written.
  """
  start = time.perf_counter()
  plan = validate(config)
  out = cli.prepare_workdir(workdir)
  f, x0 = objective(plan.n_examples, plan.width, plan.seed)
  initial = float(landscape.sharpness(f, x0, iters=1000, tol=1e-6))
  labels = [f"gd eta=2/{2 / eta:g}" for eta in plan.gd_etas]
  momentum_edge = edge("momentum", plan.momentum_eta, plan.momentum_decay)
  for label, threshold, key in (
      *((lb, 2 / eta, "gd_edges") for lb, eta in zip(labels, plan.gd_etas)),
      ("momentum", momentum_edge, "momentum_eta")):
    if threshold <= initial:
      raise cli.ConfigError(
          f"config.{key} puts the edge of {label} at {threshold:.4g}, at or "
          f"below the initial sharpness {initial:.4g}: the run would start "
          f"past its edge and show no progressive sharpening; choose a "
          f"smaller step size (a larger edge)."
      )
  logging.info("initial sharpness %.4g", initial)

  losses, sharpness, eval_steps = _sweep_runs(f, x0, plan)
  runs = [Run(label, "gd", eta, 2 / eta, losses[i], sharpness[i])
          for i, (label, eta) in enumerate(zip(labels, plan.gd_etas))]
  runs.append(Run(
      f"momentum({plan.momentum_decay:g}) eta={plan.momentum_eta:g}",
      "momentum", plan.momentum_eta, momentum_edge, losses[-1],
      sharpness[-1]))
  adam_loss, adam_sharpness = _adam_run(f, x0, plan)
  runs.append(Run(
      f"adam({plan.adam_b1:g}) eta={plan.adam_eta:g}", "adam", plan.adam_eta,
      edge("adam", plan.adam_eta, plan.adam_b1), np.asarray(adam_loss),
      np.asarray(adam_sharpness)))
  checks = [edge_checks(r.loss, r.sharpness, eval_steps, r.threshold)
            for r in runs]
  seconds = time.perf_counter() - start

  files.atomic_write(out / "edge_of_stability.csv",
                     report.csv_text(_csv_rows(runs, eval_steps), COLUMNS))
  from wonderland import plots  # pylint: disable=g-import-not-at-top

  plots.edge_of_stability(
      out / "edge_of_stability.png",
      {r.label: r.loss for r in runs}, {r.label: r.sharpness for r in runs},
      {r.label: r.threshold for r in runs}, eval_steps=eval_steps,
      panels={"sharpness lambda_max": [r.label for r in runs[:-1]],
              "preconditioned sharpness": [runs[-1].label]},
      title=(f"Full-batch training of a tanh MLP on {plan.n_examples} "
             f"MNIST-1D signals (MSE): the sharpness rises to the edge and "
             f"stays there"),
  )
  files.atomic_write(out / "report.md",
                     _report_md(plan, runs, checks, initial, seconds))
  print(report.format_table([_check_row(r, c) for r, c in zip(runs, checks)],
                            CHECK_COLUMNS, floatfmt=".4g"))
  print(f"\ninitial sharpness {initial:.4g}; {seconds:.1f}s; wrote "
        f"{out / 'report.md'}")
  files.save_config(config, out)
  return {"initial_sharpness": initial, "eval_steps": eval_steps,
          "runs": runs, "checks": checks}
