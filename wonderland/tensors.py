"""Tensors (§1.1 of the notes): inner products, template matching, matrix products.

A tensor ``X ~ (s_1, ..., s_n)`` is an n-dimensional array. Every operation here
is written the way the notes define it, from the dot product up, and equals its
``jnp`` counterpart:

* ``dot(x, y)`` is the inner product sum_i x_i y_i of two vectors ``~ (d,)``;
* ``template_match`` picks the template that *resonates* with the input: the
  largest normalized inner product;
* ``matmul(X, Y)`` builds Z_ij = X_i . Y_j (row i of X against column j of Y) by
  mapping ``dot`` over rows and columns with ``jax.vmap``;
* ``hadamard`` and ``mask`` are the element-wise product Z_ij = X_ij Y_ij;
* ``batched_matmul`` maps ``matmul`` over a leading batch axis,
  ``X ~ (n, a, b)``, ``Y ~ (n, b, c)`` -> ``Z ~ (n, a, c)`` with Z_i = X_i Y_i.

Shape checks happen on static shapes, so they cost nothing under ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wonderland import _checks

__all__ = [
    "dot",
    "cosine_similarity",
    "template_match",
    "matmul",
    "hadamard",
    "mask",
    "batched_matmul",
]




def _require_ndim(name: str, x: jax.Array, ndim: int, shape_hint: str) -> None:
  if jnp.ndim(x) != ndim:
    raise ValueError(
        f"{name} must be a tensor of shape {shape_hint} ({ndim}-D), "
        f"got shape {jnp.shape(x)}."
    )


def dot(x: jax.Array, y: jax.Array) -> jax.Array:
  """Inner product <x, y> = sum_i x_i y_i of two vectors ``x, y ~ (d,)``.

  Args:
    x: a vector ``~ (d,)``.
    y: a vector ``~ (d,)``.

  Returns:
    A scalar.

  Raises:
    ValueError: if ``x`` or ``y`` is not a real 1-D tensor or their lengths
      differ.
  """
  x, y = _checks.real_array("x", x), _checks.real_array("y", y)
  _require_ndim("x", x, 1, "(d,)")
  _require_ndim("y", y, 1, "(d,)")
  if jnp.shape(x) != jnp.shape(y):
    raise ValueError(
        f"dot needs vectors of the same length, got x ~ {jnp.shape(x)} "
        f"and y ~ {jnp.shape(y)}."
    )
  # One contraction (``lax.dot_general``), not a multiply then a sum: under
  # ``jax.vmap`` it batches into a single matrix product instead of an
  # (a, c, b) intermediate.
  return jnp.dot(x, y)


def cosine_similarity(
    x: jax.Array, y: jax.Array, *, eps: float = 1e-12
) -> jax.Array:
  """Normalized inner product <x, y> / (||x|| ||y||), in [-1, 1].

  It is 1 exactly when ``y`` is a positive multiple of ``x``: the notes' maximum
  of the dot product of two normalized vectors. Each vector is first divided
  by its largest |entry|, which changes no angle, so that the squared norms
  neither underflow nor overflow (in float32 they would for entries below
  about 1e-19 or above 1e19). ``eps`` guards zero vectors (whose similarity
  is 0).

  Raises:
    ValueError: if ``x`` or ``y`` is not a real 1-D tensor, they are empty, or
      their lengths differ.
  """
  x, y = _checks.real_array("x", x), _checks.real_array("y", y)
  _require_ndim("x", x, 1, "(d,)")
  _require_ndim("y", y, 1, "(d,)")
  if jnp.shape(x)[0] == 0 or jnp.shape(y)[0] == 0:
    raise ValueError(
        f"cosine_similarity needs non-empty vectors, got x ~ {jnp.shape(x)} "
        f"and y ~ {jnp.shape(y)}."
    )

  def unit_max(v):
    v = v.astype(jnp.promote_types(v.dtype, jnp.float32))
    top = jnp.max(jnp.abs(v))
    return v / jnp.where(top > 0, top, 1)

  x, y = unit_max(x), unit_max(y)  # each has norm 0 or in [1, sqrt(d)]
  norms = jnp.sqrt(dot(x, x)) * jnp.sqrt(dot(y, y))
  return dot(x, y) / jnp.maximum(norms, eps)


def template_match(
    x: jax.Array, templates: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Scores an input against k templates and returns the one it resonates with.

  Args:
    x: an input ``~ (d,)``.
    templates: ``W ~ (k, d)``, one template per row.

  Returns:
    ``(scores, best_index)``: ``scores ~ (k,)`` are the cosine similarities
    cos(x, W_i) and ``best_index`` is their argmax. A scaled copy ``c W_j`` with
    ``c > 0`` scores exactly 1 against template j.

  Raises:
    ValueError: if the shapes are not ``(d,)`` and ``(k, d)`` with k, d >= 1,
      or a tensor is not real.
  """
  x = _checks.real_array("x", x)
  templates = _checks.real_array("templates", templates)
  _require_ndim("x", x, 1, "(d,)")
  _require_ndim("templates", templates, 2, "(k, d)")
  if jnp.shape(templates)[1] != jnp.shape(x)[0]:
    raise ValueError(
        f"templates ~ (k, d) must have d = len(x); got x ~ {jnp.shape(x)} "
        f"and templates ~ {jnp.shape(templates)}."
    )
  if jnp.shape(templates)[0] == 0:
    raise ValueError(
        f"templates ~ (k, d) must hold at least one template, got "
        f"{jnp.shape(templates)}."
    )
  scores = jax.vmap(cosine_similarity, in_axes=(None, 0))(x, templates)
  return scores, jnp.argmax(scores)


def matmul(X: jax.Array, Y: jax.Array) -> jax.Array:  # pylint: disable=invalid-name
  """Matrix product as the notes define it: Z_ij = X_i . Y_j.

  Element (i, j) is the dot product of row i of ``X ~ (a, b)`` and column j of
  ``Y ~ (b, c)``; ``jax.vmap`` maps ``dot`` over the rows of X and the columns
  of Y. Since ``dot`` is a contraction, the two vmaps batch it into a single
  ``dot_general``: the same kernel as ``X @ Y``.

  Returns:
    ``Z ~ (a, c)``.

  Raises:
    ValueError: if X or Y is not a real 2-D tensor or the inner dimensions
      differ.
  """
  X, Y = _checks.real_array("X", X), _checks.real_array("Y", Y)
  _require_ndim("X", X, 2, "(a, b)")
  _require_ndim("Y", Y, 2, "(b, c)")
  if jnp.shape(X)[1] != jnp.shape(Y)[0]:
    raise ValueError(
        "matmul needs X ~ (a, b) and Y ~ (b, c) with the same b; got "
        f"X ~ {jnp.shape(X)} and Y ~ {jnp.shape(Y)}."
    )
  row_times_columns = jax.vmap(dot, in_axes=(None, 1))  # X_i . Y_j for all j
  return jax.vmap(row_times_columns, in_axes=(0, None))(X, Y)


def hadamard(X: jax.Array, Y: jax.Array) -> jax.Array:  # pylint: disable=invalid-name
  """Hadamard (element-wise) product Z_ij = X_ij Y_ij of two same-shape tensors.

  Raises:
    ValueError: if the shapes differ (no broadcasting: the notes' product is
      defined for tensors of one shape).
  """
  X, Y = _checks.real_array("X", X), _checks.real_array("Y", Y)
  if jnp.shape(X) != jnp.shape(Y):
    raise ValueError(
        "hadamard needs tensors of the same shape; got "
        f"X ~ {jnp.shape(X)} and Y ~ {jnp.shape(Y)}."
    )
  return X * Y


def mask(X: jax.Array, M: jax.Array) -> jax.Array:  # pylint: disable=invalid-name
  """Masks X with a 0/1 or boolean tensor M of its shape: X_ij if M_ij else 0.

  This is the Hadamard product X * M, the use of it the notes single out.
  A boolean M keeps X's dtype. M is not checked to be 0/1 (that would need its
  values, not its shape, and so could not happen under ``jax.jit``): any
  other M scales X entry-wise, in the dtype the two promote to (an integer X
  times M = 0.5 gives floats, not a truncated product).

  Raises:
    ValueError: if the shapes differ or a tensor is not real.
  """
  X, M = _checks.real_array("X", X), _checks.real_array("M", M)
  if jnp.shape(X) != jnp.shape(M):
    raise ValueError(
        "mask needs a mask M of the shape of X; got "
        f"X ~ {jnp.shape(X)} and M ~ {jnp.shape(M)}."
    )
  if M.dtype == jnp.bool_:
    M = M.astype(X.dtype)
  return hadamard(X, M)


def batched_matmul(X: jax.Array, Y: jax.Array) -> jax.Array:  # pylint: disable=invalid-name
  """Batched product Z_i = X_i Y_i for ``X ~ (n, a, b)`` and ``Y ~ (n, b, c)``.

  It is ``matmul`` mapped over the leading axis with ``jax.vmap``.

  Returns:
    ``Z ~ (n, a, c)``.

  Raises:
    ValueError: if X or Y is not a real 3-D tensor, the batch sizes n differ
      or the inner dimensions b differ.
  """
  X, Y = _checks.real_array("X", X), _checks.real_array("Y", Y)
  _require_ndim("X", X, 3, "(n, a, b)")
  _require_ndim("Y", Y, 3, "(n, b, c)")
  (n_x, _, b_x), (n_y, b_y, _) = jnp.shape(X), jnp.shape(Y)
  if n_x != n_y or b_x != b_y:
    raise ValueError(
        "batched_matmul needs X ~ (n, a, b) and Y ~ (n, b, c) with the same n "
        f"and b; got X ~ {jnp.shape(X)} and Y ~ {jnp.shape(Y)}."
    )
  return jax.vmap(matmul)(X, Y)
