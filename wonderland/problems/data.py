"""Real-data objectives: scikit-learn's bundled breast-cancer and digits sets.

Both datasets ship inside scikit-learn (no download). Install the extra with
``pip install "wonderland[data]"``; without it, building these problems raises
an ``ImportError`` that says so. Features are standardized (zero mean, unit
variance; constant pixels of the digits are left at 0). The loss is over the
whole dataset (full batch); ``Problem.minibatch`` samples a batch with an
explicit ``jax.random`` key.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from wonderland.landscape import check_key
from wonderland.problems.base import checked_fn
from wonderland.problems.base import points
from wonderland.problems.base import Problem
from wonderland.problems.base import require_dim
from wonderland.problems.base import require_n
from wonderland.problems.base import require_positive_float
from wonderland.problems.base import uniform_init

__all__ = ["logistic_breast_cancer", "mlp_digits"]

INSTALL_HINT = 'pip install "wonderland[data]"'


def _datasets(name: str):
  try:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        f"problem {name!r} needs scikit-learn's bundled datasets; install them "
        f"with {INSTALL_HINT}."
    ) from e
  return datasets


def _standardize(features: np.ndarray) -> np.ndarray:
  std = features.std(axis=0)
  return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _sampler(name: str, n: int, dim: int, loss_on: Callable[[jax.Array, jax.Array], jax.Array]):
  """``minibatch(key, batch_size) -> batch_fn`` over ``n`` examples."""

  def minibatch(key: jax.Array, batch_size: int) -> Callable[[jax.Array], jax.Array]:
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or not 1 <= batch_size <= n):
      raise ValueError(
          f"{name}: batch_size must be an integer in [1, {n}], got {batch_size!r}."
      )
    key = check_key(key, f"{name}: key")
    index = jax.random.choice(key, n, (int(batch_size),), replace=False)
    return checked_fn(name, dim, lambda x: loss_on(x, index))

  return minibatch


def logistic_breast_cancer(l2: float = 1e-2) -> Problem:
  """L2-regularized logistic regression on the breast-cancer set (convex).

  With standardized features a_i ~ (30,), labels y_i in {0, 1}, n = 569 and
  x = (w, b) ~ (31,) (weights, then bias):

      f(x) = 1/n sum_i [log(1 + exp(z_i)) - y_i z_i] + l2/2 ||x||^2,
      z_i = a_i . w + b.

  The regularizer covers the bias too, so f is l2-strongly convex
  (``strong_convexity = l2``) and has one minimizer, computed here by Newton's
  method in float64 (``minimizers``, ``fmin``). ``smoothness`` is the global
  bound L = lambda_max(A^T A / n)/4 + l2 (A = [a_i, 1]), which makes eta = 1/L
  safe everywhere; the Hessian at the minimizer is much smaller. ``bounds``
  is [-2, 2]^31, which holds the minimizer for l2 >= 1e-3.

  Raises:
    ValueError: if l2 is not a finite number > 0.
    ImportError: if scikit-learn is not installed.
  """
  name = "logistic_breast_cancer"
  l2 = require_positive_float(name, "l2", l2)
  data = _datasets(name).load_breast_cancer()
  a = np.hstack([_standardize(data.data), np.ones((len(data.target), 1))])
  y = data.target.astype(np.float64)
  n, dim = a.shape

  def loss64(x):
    z = a @ x
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * x @ x

  x_star = np.zeros(dim)
  for _ in range(50):  # Newton's method: quadratic convergence from 0
    p = 1 / (1 + np.exp(-(a @ x_star)))
    g = a.T @ (p - y) / n + l2 * x_star
    h = (a * (p * (1 - p))[:, None]).T @ a / n + l2 * np.eye(dim)
    x_star = x_star - np.linalg.solve(h, g)
    if np.linalg.norm(g) < 1e-13:
      break
  smoothness = float(np.linalg.eigvalsh(a.T @ a / n).max() / 4 + l2)

  a_j, y_j = jnp.asarray(a, dtype=float), jnp.asarray(y, dtype=float)

  def loss_on(x, index):
    z = a_j[index] @ x
    return jnp.mean(jnp.logaddexp(0.0, z) - y_j[index] * z) + 0.5 * l2 * x @ x

  def f(x):
    z = a_j @ x
    return jnp.mean(jnp.logaddexp(0.0, z) - y_j * z) + 0.5 * l2 * x @ x

  bounds = (jnp.full((dim,), -2.0, dtype=float), jnp.full((dim,), 2.0, dtype=float))
  return Problem(
      name=name,
      fn=checked_fn(name, dim, f, logistic_breast_cancer.__doc__),
      dim=dim,
      bounds=bounds,
      minimizers=points([x_star], dim),
      fmin=float(loss64(x_star)),
      init=uniform_init(bounds),
      convex=True,
      smoothness=smoothness,
      strong_convexity=l2,
      minibatch=_sampler(name, n, dim, loss_on),
      description=f"L2-regularized (l2={l2:g}) logistic regression, breast cancer",
  )


def mlp_digits(hidden: int = 32, l2: float = 1e-4) -> Problem:
  """A one-hidden-layer tanh network on the 8x8 digits (non-convex).

  With standardized pixels a_i ~ (64,), labels y_i in {0, ..., 9}, n = 1797:

      logits_i = tanh(a_i W1 + b1) W2 + b2,
      f(x) = 1/n sum_i cross_entropy(logits_i, y_i) + l2/2 ||x||^2,

  with W1 ~ (64, hidden), b1 ~ (hidden,), W2 ~ (hidden, 10), b2 ~ (10,)
  flattened into x ~ (dim,), dim = 75 hidden + 10 (2410 for hidden = 32);
  ``unravel(x)`` gives back ``{"w1", "b1", "w2", "b2"}``. tanh keeps f smooth,
  so Hessians mean something. No minimizer is known (``fmin`` NaN).

  ``init`` is LeCun's: weights ~ N(0, 1/fan_in) truncated at two standard
  deviations, biases 0. ``bounds`` is the box that init fills, +-2/sqrt(fan_in)
  for every weight and bias of a layer (fan_in = 64, then hidden).

  Raises:
    ValueError: if hidden is not a positive integer or l2 is negative.
    ImportError: if scikit-learn is not installed.
  """
  name = "mlp_digits"
  if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
    raise ValueError(f"{name}: hidden must be a positive integer, got {hidden!r}.")
  hidden = int(hidden)
  l2 = require_positive_float(name, "l2", l2, 0.0, inclusive=True)
  data = _datasets(name).load_digits()
  a_j = jnp.asarray(_standardize(data.data), dtype=float)
  labels = jnp.asarray(data.target, dtype=jnp.int32)
  n, n_in = a_j.shape
  n_out = 10
  shapes = {"w1": (n_in, hidden), "b1": (hidden,), "w2": (hidden, n_out), "b2": (n_out,)}
  fan_in = {"w1": n_in, "b1": n_in, "w2": hidden, "b2": hidden}
  template = {k: jnp.zeros(s, dtype=float) for k, s in shapes.items()}
  _, unravel = ravel_pytree(template)
  dim = require_dim(name, sum(math.prod(s) for s in shapes.values()))

  def loss_on(x, index):
    p = unravel(x)
    h = jnp.tanh(a_j[index] @ p["w1"] + p["b1"])
    logits = h @ p["w2"] + p["b2"]
    log_p = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_p, labels[index][:, None], axis=1)
    return jnp.mean(nll) + 0.5 * l2 * x @ x

  everything = jnp.arange(n)

  def f(x):
    return loss_on(x, everything)

  half_width = {k: 2.0 / math.sqrt(fan_in[k]) for k in shapes}
  upper, _ = ravel_pytree(
      {k: jnp.full(s, half_width[k], dtype=float) for k, s in shapes.items()})

  # Standard deviation of every coordinate of x: 1/sqrt(fan_in) for weights,
  # 0 for biases (which start at 0).
  std, _ = ravel_pytree({
      k: jnp.full(s, 0.0 if k.startswith("b") else 1 / math.sqrt(fan_in[k]), dtype=float)
      for k, s in shapes.items()})

  def init_many(key, n_points):
    z = jax.random.truncated_normal(key, -2.0, 2.0, (n_points, dim), dtype=std.dtype)
    return z * std

  init_many = jax.jit(init_many, static_argnums=1)

  def init(key: jax.Array, n_points: int) -> jax.Array:
    n_points = require_n(n_points)
    return init_many(check_key(key, "init: key"), n_points)

  return Problem(
      name=name,
      fn=checked_fn(name, dim, f, mlp_digits.__doc__),
      dim=dim,
      bounds=(-upper, upper),
      minimizers=points([], dim),
      fmin=math.nan,
      init=init,
      convex=False,
      minibatch=_sampler(name, n, dim, loss_on),
      unravel=unravel,
      description=f"tanh MLP 64-{hidden}-10 (l2={l2:g}), digits",
  )
