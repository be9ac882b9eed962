"""The compare job's config, checked once into a plain, frozen ``Plan``.

``validate`` reads every key of the ``ConfigDict``, refuses a bad one with a
``ConfigError`` (one sentence naming the key, the value given and what is
allowed), builds the optimizers and problems and returns a ``Plan``: the rest
of the job (batches, cells, the report) reads the plan, never the config.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import wonderland as wl
from wonderland import cli
from wonderland import optim
from wonderland import problems as problems_lib
from wonderland.problems import analytic
from wonderland._sweep import inject_traced

__all__ = ["BATCHING", "Plan", "optimizer_factory", "validate"]

BATCHING = ("all", "optimizer", "problem", "cell")


@dataclasses.dataclass(frozen=True)
class Plan:
  """What the job runs, as plain values.

  Attributes:
    optimizers: the optimizer names, in the config's order.
    factories: name -> factory ``learning_rate -> GradientTransformation``.
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
  """

  optimizers: tuple[str, ...]
  factories: Mapping[str, Callable[..., optax.GradientTransformation]]
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


def _traced_failure(factory) -> str | None:
  """None if ``factory`` runs with a traced eta as the job runs it, else why.

  The job runs every optimizer under ``jax.vmap`` over a traced learning rate
  (``wonderland.sweep``, ``batching.best_paths``); this traces two steps of
  ``wonderland.minimize`` on f(x) = ||x||^2 (``jax.eval_shape``: nothing is
  compiled or run).
  """
  make = inject_traced(factory, ("learning_rate",))
  x0 = jnp.ones(2, jnp.float32)

  def one(lr):
    trace = wl.minimize(lambda x: jnp.sum(x**2), make(learning_rate=lr), x0,
                        steps=2, keep_path=True)
    return trace.path

  try:
    jax.eval_shape(jax.vmap(one), jax.ShapeDtypeStruct((2,), jnp.float32))
  except Exception as e:  # pylint: disable=broad-except
    return type(e).__name__
  return None


def optimizer_factory(name: str) -> Callable[..., optax.GradientTransformation]:
  """``wonderland.optim.get(name)``, for a name the job can sweep.

  Args:
    name: one of ``wonderland.optim.names()`` or ``optax.<name>`` for an
      optax optimizer whose first argument is ``learning_rate`` (e.g.
      ``optax.lion``) and that runs with a traced learning rate (checked by
      tracing two steps).

  Raises:
    cli.ConfigError: for any other name.
  """
  valid = ", ".join(optim.names()) + ", optax.<name>"
  if not (name in optim.names() or name.startswith("optax.")):
    raise cli.ConfigError(
        f"config.optimizers has an unknown name {name!r}; valid names are "
        f"{valid}."
    )
  try:
    factory = optim.get(name)
  except ValueError:
    raise cli.ConfigError(
        f"config.optimizers has {name!r}, which is not an optax optimizer "
        f"taking learning_rate (such as optax.lion or optax.sgd); valid names "
        f"are {valid}."
    ) from None
  if name in optim.names():
    return factory
  failure = _traced_failure(factory)
  if failure is not None:
    raise cli.ConfigError(
        f"config.optimizers has {name!r}, which fails ({failure}) when its "
        f"learning rate is a traced value, as the sweep over eta needs; "
        f"valid names are {valid} for an optax optimizer that runs traced "
        f"(such as optax.lion or optax.sgd)."
    )
  return factory


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


def validate(config: ml_collections.ConfigDict) -> Plan:
  """Checks every key; builds the optimizers, problems and learning rates.

  Raises:
    cli.ConfigError: one sentence naming the key, the value given and what
      is allowed.
  """
  optimizers = cli.split_names(
      "optimizers", config.optimizers, [*optim.names(), "optax.*"]
  )
  factories = {name: optimizer_factory(name) for name in optimizers}
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
  kwargs = {name: _problem_kwargs(name, config) for name in names}
  built = {name: _problem(name, kwargs[name], config.seed) for name in names}
  lrs = np.geomspace(config.lr_min, config.lr_max, int(config.num_lrs))
  lrs.setflags(write=False)
  return Plan(
      optimizers=tuple(optimizers),
      factories=types.MappingProxyType(factories),
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
  )
