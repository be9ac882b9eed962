"""The compare job's config, checked once into a plain, frozen ``Plan``.

``validate`` reads every key of the ``ConfigDict``, refuses a bad one with a
``ConfigError`` (one sentence naming the key, the value given and what is
allowed), builds the optimizers (``wonderland.jobs.optimizers``, the spec
both jobs read) and problems and returns a ``Plan``: the rest of the job
(batches, cells, the report) reads the plan, never the config.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from wonderland import cli
from wonderland import problems as problems_lib
from wonderland.jobs import optimizers as optimizers_lib
from wonderland.jobs.optimizers import Optimizer
from wonderland.problems import analytic

__all__ = ["BATCHING", "CURVES", "FIGURE_FORMATS", "Plan", "validate"]

BATCHING = ("all", "optimizer", "problem", "cell")
CURVES = ("best", "all")
FIGURE_FORMATS = ("png", "pdf", "svg")


@dataclasses.dataclass(frozen=True)
class Plan:
  """What the job runs, as plain values.

  Attributes:
    optimizers: the optimizers (label, factory, hyperparameters), in the
      config's order.
    problems: name -> ``Problem``, in the config's order.
    problem_kwargs: name -> the keyword arguments of ``problems.get`` that
      the config sets (JSON-able; part of each cell's fingerprint).
    learning_rates: the eta grid ``~ (num_lrs,)``, log-spaced, read-only.
    lr_min, lr_max: its ends.
    num_seeds: initial points per (optimizer, problem, eta).
    seed: the key of the problems' rotations and initial points.
    steps: steps per run.
    target_gap: a run reaches the target at the first f(x_t) - f* <= it.
    batching: which cells share a program (one of ``BATCHING``).
    plots: whether to draw the figures.
    figure_formats: the formats of every figure, "png" first (each one of
      ``FIGURE_FORMATS``).
    curves: which runs ``curves.csv`` holds (one of ``CURVES``).
  """

  optimizers: tuple[Optimizer, ...]
  problems: Mapping[str, problems_lib.Problem]
  problem_kwargs: Mapping[str, Mapping[str, Any]]
  learning_rates: np.ndarray
  lr_min: float
  lr_max: float
  num_seeds: int
  seed: int
  steps: int
  target_gap: float
  batching: str
  plots: bool
  figure_formats: tuple[str, ...] = ("png",)
  curves: str = "best"

  @property
  def labels(self) -> tuple[str, ...]:
    """The optimizers' labels, in order."""
    return tuple(o.label for o in self.optimizers)

  def optimizer(self, label: str) -> Optimizer:
    """The optimizer labelled ``label``."""
    return next(o for o in self.optimizers if o.label == label)


def _problem_kwargs(name: str, config) -> dict[str, Any]:
  """The keyword arguments of ``problems.get`` that the config sets (JSON-able)."""
  if name == "quadratic":
    return {"kappa": float(config.kappa), "dim": int(config.quadratic_dim),
            "rotated": bool(config.quadratic_rotated)}
  return {}


def _build(name: str, kwargs: Mapping[str, Any], seed: int):
  kwargs = dict(kwargs)
  if kwargs.pop("rotated", False):
    kwargs["key"] = jax.random.fold_in(jax.random.key(seed), 1)
  return problems_lib.get(name, **kwargs)


def _problem(name: str, kwargs: Mapping[str, Any], seed: int):
  """The problem ``name``, or a ``ConfigError`` that says why not."""
  try:
    problem = _build(name, kwargs, seed)
  except ValueError as e:
    keys = " and ".join(f"config.{k}" for k in ("kappa", "quadratic_dim"))
    raise cli.ConfigError(
        f"{keys} do not make a valid quadratic: {e}"
        if name == "quadratic" else f"config.problems: {e}"
    ) from None
  except ImportError as e:
    raise cli.ConfigError(
        f"config.problems has {name!r}, which needs scikit-learn "
        f"(pip install 'wonderland[data]'): {e}."
    ) from None
  if not problem.bounded_below:
    # Losses on data are >= 0: only analytic problems can be unbounded (and
    # they build without loading data).
    unbounded = [n for n in sorted(analytic.__all__)
                 if not problems_lib.get(n).bounded_below]
    raise cli.ConfigError(
        f"config.problems has {name!r}, which is unbounded below, so runs "
        f"have no gap to f* to compare; choose problems other than "
        f"{', '.join(unbounded)}."
    )
  return problem


def _figure_formats(value) -> tuple[str, ...]:
  formats = cli.split_names("figure_formats", value, FIGURE_FORMATS)
  if "png" not in formats:
    raise cli.ConfigError(
        f"config.figure_formats must include png (report.md and report.html "
        f"show the PNGs), got {value!r}.")
  return ("png", *[f for f in formats if f != "png"])


def validate(config: ml_collections.ConfigDict) -> Plan:
  """Checks every key; builds the optimizers, problems and learning rates.

  Raises:
    cli.ConfigError: one sentence naming the key, the value given and what
      is allowed.
  """
  names = cli.split_names("problems", config.problems, problems_lib.names())
  for key in ("steps", "num_lrs", "num_seeds"):
    cli.require_positive(key, config[key], integer=True)
  # The grid is cast to float32: eta must stay finite and > 0 there.
  for key in ("lr_min", "lr_max"):
    cli.require_positive(key, config[key], float32=True)
  cli.require_positive("target_gap", config.target_gap)
  if config.lr_min > config.lr_max:
    raise cli.ConfigError(
        f"config.lr_min must be at most config.lr_max, got lr_min="
        f"{config.lr_min!r} and lr_max={config.lr_max!r}."
    )
  cli.require_seed("seed", config.seed)
  if config.batching not in BATCHING:
    raise cli.ConfigError(
        f"config.batching must be one of {', '.join(BATCHING)}, got "
        f"{config.batching!r}."
    )
  if config.curves not in CURVES:
    raise cli.ConfigError(
        f"config.curves must be one of {', '.join(CURVES)}, got "
        f"{config.curves!r}.")
  formats = _figure_formats(config.figure_formats)
  kwargs = {name: _problem_kwargs(name, config) for name in names}
  built = {name: _problem(name, kwargs[name], config.seed) for name in names}
  optimizers = optimizers_lib.parse(config.optimizers)
  lrs = np.geomspace(config.lr_min, config.lr_max, int(config.num_lrs))
  lrs.setflags(write=False)
  return Plan(
      optimizers=optimizers,
      problems=types.MappingProxyType(built),
      problem_kwargs=types.MappingProxyType(kwargs),
      learning_rates=lrs,
      lr_min=config.lr_min,
      lr_max=config.lr_max,
      num_seeds=int(config.num_seeds),
      seed=int(config.seed),
      steps=int(config.steps),
      target_gap=config.target_gap,
      batching=config.batching,
      plots=bool(config.plots),
      figure_formats=formats,
      curves=config.curves,
  )
