"""Real-data objectives: scikit-learn's bundled breast-cancer and digits sets.

Both datasets ship inside scikit-learn (no download). Install the extra with
``pip install -e ".[data]"`` from the checkout; without it, building these
problems raises an ``ImportError`` that says so.

Each dataset is split once, at random with a fixed seed (``SPLIT_SEED``), into
train / validation / test (70 / 15 / 15 %); features are standardized with the
mean and standard deviation of the train split (``standardize=True``, the
default here; constant pixels of the digits are only centred). ``fn`` is the
full-batch loss over the train split, ``loss(x, batch)`` the same loss on any
batch ``(features, labels)``, ``data`` the train split, and ``evaluate(x)``
the held-out metrics. ``supervised_problem`` builds such a ``Problem`` from a
model's logits; the MNIST-1D tasks use it too.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from wonderland import _checks
from wonderland import data as data_lib
from wonderland.problems.base import checked_fn
from wonderland.problems.base import points
from wonderland.problems.base import Problem
from wonderland.problems.base import require_dim
from wonderland.problems.base import require_n
from wonderland.problems.base import require_positive_float
from wonderland.problems.base import uniform_init

__all__ = ["logistic_breast_cancer", "mlp_digits"]

INSTALL_HINT = 'pip install -e ".[data]"'

# The key of every train / validation / test split: the splits never change.
SPLIT_SEED = 0

# The held-out fractions of the scikit-learn sets; train gets the rest.
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15

EVALUATE_KEYS = ("train_loss", "val_loss", "val_accuracy", "test_accuracy")


def _datasets(name: str):
  try:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(
        f"problem {name!r} needs scikit-learn, which is not installed; install "
        f"the data extra with {INSTALL_HINT}."
    ) from None
  return datasets


def standardized(splits: data_lib.Dataset, standardize: bool) -> data_lib.Dataset:
  """``splits`` with features standardized on the train split (or as they are)."""
  if not standardize:
    return splits
  (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
  x_train, x_val, x_test = data_lib.standardize(x_train, x_val, x_test)
  return data_lib.Dataset((x_train, y_train), (x_val, y_val), (x_test, y_test))


def _three_way(features: np.ndarray, labels: np.ndarray, standardize: bool) -> data_lib.Dataset:
  """Train / validation / test splits of a scikit-learn set (``SPLIT_SEED``)."""
  n = len(labels)
  sizes = {"train": None, "validation": round(VALIDATION_FRACTION * n),
           "test": round(TEST_FRACTION * n)}
  parts = data_lib.split((features, labels), sizes, jax.random.key(SPLIT_SEED))
  return standardized(data_lib.Dataset(**parts), standardize)


def _nll(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy; ``logits ~ (b,)`` is the logit of class 1."""
  if logits.ndim == 1:
    return jnp.logaddexp(0.0, logits) - labels.astype(logits.dtype) * logits
  log_p = jax.nn.log_softmax(logits)
  return -jnp.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]


def _predict(logits: jax.Array) -> jax.Array:
  if logits.ndim == 1:
    return (logits > 0).astype(jnp.int32)
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def _check_batch(name: str, batch: Any, feature_shape: tuple[int, ...]):
  """``(features, labels)`` with ``features ~ (b, *feature_shape)``, ``labels ~ (b,)``."""
  wanted = f"(features ~ (b, {', '.join(map(str, feature_shape))}), labels ~ (b,))"
  try:
    features, labels = batch
  except (TypeError, ValueError):
    what = (f"an array of shape {batch.shape}" if hasattr(batch, "shape")
            else type(batch).__name__)
    raise ValueError(f"{name}: batch must be a pair {wanted}, got {what}.") from None
  features, labels = jnp.asarray(features), jnp.asarray(labels)
  if features.shape[1:] != feature_shape or labels.shape != features.shape[:1]:
    raise ValueError(
        f"{name}: batch must be a pair {wanted}, got shapes {features.shape} and "
        f"{labels.shape}."
    )
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"{name}: batch labels must be integers, got dtype {labels.dtype}.")
  if not jnp.issubdtype(features.dtype, jnp.floating):
    features = features.astype(jnp.result_type(float))
  return features, labels


def supervised_problem(
    name: str,
    *,
    logits: Callable[[jax.Array, jax.Array], jax.Array],
    splits: data_lib.Dataset,
    dim: int,
    bounds: tuple[jax.Array, jax.Array],
    init: Callable[[jax.Array, int], jax.Array],
    l2: float = 0.0,
    doc: str = "",
    **fields: Any,
) -> Problem:
  """A classifier's ``Problem``: ``fn``, ``loss``, ``data``, ``evaluate``, ``minibatch``.

  With ``logits(x, features ~ (b, ...))`` the class scores ``~ (b, C)`` (or
  ``~ (b,)``, the logit of class 1 of a binary task), the loss on a batch B is

  .. math::
    \\ell(x, B) = \\frac{1}{|B|} \\sum_{i \\in B} \\mathrm{CE}(\\mathrm{logits}(x, a_i), y_i)
                + \\frac{l2}{2} \\|x\\|^2,

  ``fn(x) = loss(x, splits.train)`` and ``evaluate(x)`` gives ``train_loss``
  (= ``fn(x)``), ``val_loss`` (the same loss, penalty included, on the
  validation split), ``val_accuracy`` and ``test_accuracy`` (the fraction of
  argmax predictions that are right). Every function checks ``x ~ (dim,)``.

  Args:
    name: the registry name.
    logits: the model, pure in ``(x, features)``.
    splits: the ``(features, labels)`` splits, on device.
    dim: the number of parameters.
    bounds: the box ``init`` fills.
    init: ``init(key, n) -> (n, dim)``.
    l2: the weight of the penalty (0: none).
    doc: ``fn``'s docstring.
    **fields: more ``Problem`` fields (``minimizers``, ``fmin``, ``unravel``...).

  Returns:
    The ``Problem``.
  """
  x_train, _ = splits.train
  feature_shape = tuple(x_train.shape[1:])

  def raw_loss(x, batch):
    features, labels = _check_batch(name, batch, feature_shape)
    value = jnp.mean(_nll(logits(x, features), labels))
    return value + 0.5 * l2 * (x @ x) if l2 else value

  def accuracy(x, batch):
    features, labels = batch
    return jnp.mean((_predict(logits(x, features)) == labels).astype(x.dtype))

  def loss(x: jax.Array, batch: Any) -> jax.Array:
    return checked_fn(name, dim, lambda x: raw_loss(x, batch))(x)

  def minibatch(key: jax.Array, batch_size: int) -> Callable[[jax.Array], jax.Array]:
    batch = data_lib.minibatch(splits.train, key, 0, batch_size)
    return checked_fn(name, dim, lambda x: raw_loss(x, batch))

  def raw_evaluate(x):
    return {
        "train_loss": raw_loss(x, splits.train),
        "val_loss": raw_loss(x, splits.validation),
        "val_accuracy": accuracy(x, splits.validation),
        "test_accuracy": accuracy(x, splits.test),
    }

  fields.setdefault("minimizers", points([], dim))
  fields.setdefault("fmin", math.nan)
  return Problem(
      name=name,
      fn=checked_fn(name, dim, lambda x: raw_loss(x, splits.train), doc),
      dim=dim,
      bounds=bounds,
      init=init,
      minibatch=minibatch,
      loss=loss,
      data=splits.train,
      evaluate=checked_fn(name, dim, raw_evaluate, "evaluate(x): " + ", ".join(EVALUATE_KEYS)),
      **fields,
  )


def logistic_breast_cancer(l2: float = 1e-2, standardize: bool = True) -> Problem:
  """L2-regularized logistic regression on the breast-cancer set (convex).

  The 569 examples are split 399 / 85 / 85 (train / validation / test, seed
  ``SPLIT_SEED``). With the train features a_i ~ (30,) (standardized on the
  train split unless ``standardize=False``), labels y_i in {0, 1}, n = 399 and
  x = (w, b) ~ (31,) (weights, then bias; ``unravel(x)`` gives ``{"w", "b"}``):

      f(x) = 1/n sum_i [log(1 + exp(z_i)) - y_i z_i] + l2/2 ||x||^2,
      z_i = a_i . w + b,

  the full-batch loss over the train split. The regularizer covers the bias
  too, so f is l2-strongly convex (``strong_convexity = l2``) and has one
  minimizer, computed here by Newton's method in float64 (``minimizers``,
  ``fmin``). ``smoothness`` is the global bound L = lambda_max(A^T A / n)/4 +
  l2 (A = [a_i, 1]), which makes eta = 1/L safe everywhere; the Hessian at the
  minimizer is much smaller. ``bounds`` is [-2, 2]^31, which holds the
  minimizer for l2 >= 1e-3 with standardized features; ``init`` is uniform in
  it. ``loss``, ``data``, ``evaluate`` and ``minibatch`` are as in
  ``supervised_problem``.

  Raises:
    ValueError: if l2 is not a finite number > 0 or standardize not a bool.
    ImportError: if scikit-learn is not installed.
  """
  name = "logistic_breast_cancer"
  l2 = require_positive_float(name, "l2", l2)
  standardize = _checks.boolean(f"{name}: standardize", standardize)
  bunch = _datasets(name).load_breast_cancer()
  splits = _three_way(bunch.data, bunch.target, standardize)
  features, labels = splits.train
  a = np.hstack([np.asarray(features, np.float64), np.ones((features.shape[0], 1))])
  y = np.asarray(labels, np.float64)
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

  def logits(x, features):
    return features @ x[:-1] + x[-1]

  bounds = (jnp.full((dim,), -2.0, dtype=float), jnp.full((dim,), 2.0, dtype=float))
  return supervised_problem(
      name,
      logits=logits,
      splits=splits,
      dim=dim,
      bounds=bounds,
      init=uniform_init(bounds),
      l2=l2,
      doc=logistic_breast_cancer.__doc__,
      minimizers=points([x_star], dim),
      fmin=float(loss64(x_star)),
      convex=True,
      smoothness=smoothness,
      strong_convexity=l2,
      unravel=lambda x: {"w": x[:-1], "b": x[-1]},
      description=f"L2-regularized (l2={l2:g}) logistic regression, breast cancer",
  )


def mlp_digits(hidden: int = 32, l2: float = 1e-4, standardize: bool = True) -> Problem:
  """A one-hidden-layer tanh network on the 8x8 digits (non-convex).

  The 1797 examples are split 1257 / 270 / 270 (train / validation / test,
  seed ``SPLIT_SEED``). With the train pixels a_i ~ (64,) (standardized on the
  train split unless ``standardize=False``), labels y_i in {0, ..., 9} and
  n = 1257:

      logits_i = tanh(a_i W1 + b1) W2 + b2,
      f(x) = 1/n sum_i cross_entropy(logits_i, y_i) + l2/2 ||x||^2,

  the full-batch loss over the train split, with W1 ~ (64, hidden),
  b1 ~ (hidden,), W2 ~ (hidden, 10), b2 ~ (10,) flattened into x ~ (dim,),
  dim = 75 hidden + 10 (2410 for hidden = 32); ``unravel(x)`` gives back
  ``{"w1", "b1", "w2", "b2"}``. tanh keeps f smooth, so Hessians mean
  something. No minimizer is known (``fmin`` NaN). ``loss``, ``data``,
  ``evaluate`` and ``minibatch`` are as in ``supervised_problem``.

  ``init`` is LeCun's: weights ~ N(0, 1/fan_in) truncated at two standard
  deviations, biases 0. ``bounds`` is the box that init fills, +-2/sqrt(fan_in)
  for every weight and bias of a layer (fan_in = 64, then hidden).

  Raises:
    ValueError: if hidden is not a positive integer, l2 is negative or
      standardize not a bool.
    ImportError: if scikit-learn is not installed.
  """
  name = "mlp_digits"
  hidden = _checks.integer(f"{name}: hidden", hidden)
  l2 = require_positive_float(name, "l2", l2, 0.0, inclusive=True)
  standardize = _checks.boolean(f"{name}: standardize", standardize)
  bunch = _datasets(name).load_digits()
  splits = _three_way(bunch.data, bunch.target, standardize)
  n_in, n_out = bunch.data.shape[1], 10
  shapes = {"w1": (n_in, hidden), "b1": (hidden,), "w2": (hidden, n_out), "b2": (n_out,)}
  fan_in = {"w1": n_in, "b1": n_in, "w2": hidden, "b2": hidden}
  template = {k: jnp.zeros(s, dtype=float) for k, s in shapes.items()}
  _, unravel = ravel_pytree(template)
  dim = require_dim(name, sum(math.prod(s) for s in shapes.values()))

  def logits(x, features):
    p = unravel(x)
    return jnp.tanh(features @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

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
    key = _checks.key(key, "init: key")
    return init_many(key, require_n(n_points, dim, std.dtype.itemsize))

  return supervised_problem(
      name,
      logits=logits,
      splits=splits,
      dim=dim,
      bounds=(-upper, upper),
      init=init,
      l2=l2,
      doc=mlp_digits.__doc__,
      convex=False,
      unravel=unravel,
      description=f"tanh MLP 64-{hidden}-10 (l2={l2:g}), digits",
  )
