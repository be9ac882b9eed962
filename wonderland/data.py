"""In-memory datasets: seeded splits, standardisation, a stateless minibatch sampler.

A dataset is a pytree of arrays that share a leading example axis, e.g.
``(features ~ (n, 40), labels ~ (n,))`` or ``{"x": ..., "y": ...}``. Everything
here is a pure function of its arguments; randomness comes only from explicit
``jax.random`` keys.

The sampler is stateless: the batch of step t is a pure function of ``key``
and t, so a compiled training loop (``lax.scan`` over t, ``vmap`` over keys)
draws it without carrying any sampler state:

  >>> import jax, jax.numpy as jnp
  >>> from wonderland import data
  >>> train = (jnp.ones((100, 3)), jnp.arange(100))
  >>> idx = data.batch_indices(jax.random.key(0), 7, 100, 32)   # ~ (32,) int32
  >>> features, labels = data.minibatch(train, jax.random.key(0), 7, 32)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wonderland import _checks

__all__ = [
    "Dataset",
    "check_data",
    "split",
    "standardize",
    "permute",
    "batch_indices",
    "minibatch",
]


class Dataset(NamedTuple):
  """Train, validation and test splits of one dataset.

  Each field is a pytree of arrays sharing a leading example axis (the same
  structure in all three), on device. Build one from ``split`` with the names
  ``train``, ``validation`` and ``test``: ``Dataset(**split(data, sizes, key))``.

  Attributes:
    train: the examples an objective is fitted on.
    validation: held-out examples to choose hyperparameters on.
    test: held-out examples to report on, once.
  """

  train: Any
  validation: Any
  test: Any


def check_data(data: Any, name: str = "data") -> int:
  """Checks that ``data`` is a pytree of arrays sharing a leading example axis.

  Args:
    data: a pytree of arrays (numpy, jax, or tracers), each ``~ (n, ...)``.
    name: how the argument is called in the error message.

  Returns:
    n, the number of examples (a Python int, also under ``jax.jit``).

  Raises:
    ValueError: if ``data`` holds no array, an array without a leading axis,
      arrays whose leading axes differ (the message lists every leaf's shape),
      or no example (n = 0).
  """
  leaves, _ = jax.tree_util.tree_flatten_with_path(data)
  if not leaves:
    raise ValueError(
        f"{name} must be a pytree of arrays sharing a leading example axis, got {data!r}."
    )
  shapes = [(f"{name}{jax.tree_util.keystr(path)}", tuple(np.shape(leaf)))
            for path, leaf in leaves]
  listed = ", ".join(f"{leaf} ~ {shape}" for leaf, shape in shapes)
  if any(len(shape) == 0 for _, shape in shapes) or len({s[0] for _, s in shapes}) != 1:
    raise ValueError(
        f"{name} must be a pytree of arrays sharing a leading example axis, got {listed}."
    )
  n = shapes[0][1][0]
  if n == 0:
    raise ValueError(f"{name} must hold at least one example, got {listed}.")
  return int(n)


def split(data: Any, sizes: Mapping[str, int | None], key: jax.Array) -> dict[str, Any]:
  """Splits the examples of ``data`` into named parts at random, with ``key``.

  One permutation ``pi = jax.random.permutation(key, n)`` of the n examples is
  cut into consecutive pieces of the given sizes, in the order of ``sizes``:
  part j holds the examples ``pi[s_j : s_j + sizes_j]`` (s_j the sum of the
  earlier sizes). The parts are disjoint and, together, hold every example
  once; the same key gives the same parts.

  Args:
    data: a pytree of arrays sharing a leading example axis ``~ (n, ...)``.
    sizes: part name -> number of examples (an int >= 1); at most one part
      may be ``None``, for "the remaining examples". The sizes must add up to
      n, or to less than n with a ``None`` part (which gets the rest).
    key: a ``jax.random`` key.

  Returns:
    A dict, name -> the pytree of that part (same structure as ``data``, jax
    arrays, in the order of ``sizes``).

  Raises:
    ValueError: for bad ``data`` (see ``check_data``), ``sizes`` that are not
      positive ints (one ``None`` allowed) or that do not add up to n, or a
      ``key`` that is not a ``jax.random`` key.

  Example:
    >>> parts = split((x, y), {"train": None, "validation": 500}, jax.random.key(0))
    >>> x_train, y_train = parts["train"]
  """
  n = check_data(data)
  key = _checks.key(key, "key")
  if not isinstance(sizes, Mapping) or not sizes:
    raise ValueError(
        f"sizes must be a non-empty mapping from part name to number of examples, got {sizes!r}."
    )
  bad = {k: v for k, v in sizes.items()
         if v is not None and (isinstance(v, (bool, np.bool_))
                               or not isinstance(v, (int, np.integer)) or v < 1)}
  rest = [k for k, v in sizes.items() if v is None]
  if bad or len(rest) > 1:
    raise ValueError(
        f"sizes must map each part to an integer >= 1 (at most one part to None, "
        f"for the rest), got {dict(sizes)!r}."
    )
  given = sum(v for v in sizes.values() if v is not None)
  if (rest and given >= n) or (not rest and given != n):
    need = f"less than {n}" if rest else f"exactly {n}"
    raise ValueError(
        f"sizes must add up to {need} (the number of examples), got {dict(sizes)!r}."
    )
  counts = {k: (n - given if v is None else int(v)) for k, v in sizes.items()}
  permutation = jax.random.permutation(key, n)
  parts, start = {}, 0
  for part, count in counts.items():
    index = permutation[start:start + count]
    parts[part] = jax.tree.map(lambda a, i=index: jnp.take(jnp.asarray(a), i, axis=0), data)
    start += count
  return parts


def standardize(train: jax.Array, *others: jax.Array) -> tuple[jax.Array, ...]:
  """Per-feature standardisation fitted on ``train`` only, applied to every array.

  With mu and sigma the per-feature mean and (population) standard deviation
  over the examples of ``train`` (axis 0),

  .. math::
    a \\mapsto (a - \\mu) / \\sigma, \\qquad \\sigma := 1 \\text{ where } \\sigma = 0,

  so a feature constant on ``train`` is only centred. Fitting on the training
  split alone keeps the held-out splits held out. Pass features, not labels.

  Args:
    train: the training features ``~ (n, ...)``.
    *others: more features ``~ (m, ...)`` with the same trailing shape, e.g.
      the validation and test features.

  Returns:
    The standardised ``(train, *others)``, a tuple (of length 1 without
    ``others``), floating.

  Raises:
    ValueError: if an array has no example axis or its trailing shape differs
      from ``train``'s.
  """
  arrays = [jnp.asarray(a) for a in (train, *others)]
  if any(a.ndim == 0 for a in arrays) or any(a.shape[1:] != arrays[0].shape[1:] for a in arrays):
    raise ValueError(
        "standardize takes feature arrays ~ (n, ...) with one trailing shape, got "
        f"shapes {', '.join(str(a.shape) for a in arrays)}."
    )
  return _standardize(*arrays)


@jax.jit
def _standardize(train, *others):
  dtype = jnp.result_type(train.dtype, float)
  mean = jnp.mean(train.astype(dtype), axis=0)
  std = jnp.std(train.astype(dtype), axis=0)
  std = jnp.where(std > 0, std, 1.0)
  return tuple((a.astype(dtype) - mean) / std for a in (train, *others))


def _mix(x: jax.Array) -> jax.Array:
  """A uint32 hash: the 32-bit finalizer of MurmurHash3."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def permutation_rounds(n: int) -> int:
  """The rounds of the swap-or-not shuffle of [0, n): 6 ceil(log2 n), >= 6."""
  return 6 * max(1, math.ceil(math.log2(max(n, 2))))


def permute(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
  """pi(positions) for a random permutation pi of [0, n) drawn with ``key``.

  The swap-or-not shuffle (Hoang, Morris and Rogaway, 2012): round r draws
  K_r uniform in [0, n) and a hash bit F_r, and maps

  .. math::
    x \\mapsto K_r - x \\bmod n \\ \\text{if } F_r(\\max(x, K_r - x \\bmod n))
    \\text{ else } x,

  an involution, so every round, and their composition over
  ``permutation_rounds(n)`` rounds, is a bijection of [0, n) for any n.
  Unlike ``jax.random.permutation`` (a sort of all n keys) it evaluates
  pi at the asked positions only: O(len(positions) log n) work per batch.

  Args:
    key: a ``jax.random`` key; may be traced.
    positions: int ~ (...), entries in [0, n).
    n: the size of the permuted range, a static int >= 1.

  Returns:
    pi(positions), int32, of the shape of ``positions``.
  """
  rounds = permutation_rounds(n)
  bits = jax.random.bits(key, (rounds, 2), jnp.uint32)
  size = jnp.uint32(n)
  pivots, seeds = bits[:, 0] % size, bits[:, 1]

  def round_(x, pivot_seed):
    pivot, seed = pivot_seed
    partner = (pivot + size - x) % size
    swap = (_mix(jnp.maximum(x, partner) ^ seed) & 1) == 1
    return jnp.where(swap, partner, x), None

  x, _ = jax.lax.scan(round_, positions.astype(jnp.uint32), (pivots, seeds))
  return x.astype(jnp.int32)


def batch_indices(key: jax.Array, t: Any, n: int, batch_size: int) -> jax.Array:
  """The example indices of step t: epoch-wise shuffling without replacement.

  With ``per_epoch = n // batch_size`` batches per epoch, step t (0-based)
  falls in epoch ``e = t // per_epoch`` at slot ``j = t % per_epoch``:

  .. math::
    B_t = \\{\\pi_e(j b), \\pi_e(j b + 1), ..., \\pi_e(j b + b - 1)\\},

  b = ``batch_size``, pi_e the random permutation ``permute`` draws with
  ``fold_in(key, e)``. Within an epoch the batches are disjoint; each epoch
  draws a new permutation. The last ``n % batch_size`` positions of each
  epoch's permutation are never drawn (like ``drop_last``), so every batch
  has exactly b examples; which examples are dropped changes from epoch to
  epoch. The batch is a pure function of ``(key, t)``: no sampler state, and
  only the b entries of pi_e that the batch needs are computed.

  Args:
    key: a ``jax.random`` key; may be traced (``vmap`` over keys).
    t: the step, an int >= 0; may be a traced integer scalar (``lax.scan``).
    n: the number of examples, a static int >= 1.
    batch_size: b, a static int in [1, n].

  Returns:
    The indices ``~ (batch_size,)``, int32, distinct, in [0, n).

  Raises:
    ValueError: if ``n`` or ``batch_size`` is out of range, ``t`` is not an
      integer scalar (or a negative Python int), or ``key`` is not a
      ``jax.random`` key.
  """
  n = _checks.integer("n", n)
  batch_size = _checks.integer("batch_size", batch_size, maximum=n)
  key = _checks.key(key, "key")
  if not (hasattr(t, "dtype") and np.ndim(t) == 0 and jnp.issubdtype(t.dtype, jnp.integer)):
    _checks.integer("t", t, minimum=0, maximum=_checks.INT32_MAX)  # a Python int step
  return _batch_indices(key, jnp.asarray(t, dtype=jnp.int32), n, batch_size)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _batch_indices(key, t, n, batch_size):
  per_epoch = n // batch_size
  t = jnp.asarray(t, dtype=jnp.int32)
  epoch, slot = t // per_epoch, t % per_epoch
  positions = slot * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
  return permute(jax.random.fold_in(key, epoch), positions, n)


def minibatch(data: Any, key: jax.Array, t: Any, batch_size: int) -> Any:
  """The batch of step t of ``data``, drawn as ``batch_indices`` says.

  Args:
    data: a pytree of arrays sharing a leading example axis ``~ (n, ...)``
      (put it on device once, e.g. with ``jax.tree.map(jnp.asarray, data)``;
      numpy leaves are copied to the device at every call).
    key: a ``jax.random`` key; may be traced.
    t: the step, an int >= 0; may be a traced integer scalar.
    batch_size: a static int in [1, n].

  Returns:
    A pytree of ``data``'s structure whose leaves are ``~ (batch_size, ...)``.

  Raises:
    ValueError: as ``check_data`` and ``batch_indices``.

  Example:
    >>> def step(params, t):
    ...   batch = minibatch(train, key, t, 100)
    ...   ...
    >>> jax.lax.scan(step, params, jnp.arange(6000))
  """
  n = check_data(data)
  index = batch_indices(key, t, n, batch_size)
  return jax.tree.map(lambda a: jnp.take(a, index, axis=0), data)
