"""Gradients, directional derivatives, Jacobians and linearization (§1.2).

For a scalar function f : R^d -> R the gradient is the column of partial
derivatives grad f(x) = [d f / d x_1, ..., d f / d x_d]; the directional
derivative along v is D_v f(x) = grad f(x) . v. For a vector function
f : R^d -> R^c, x ~ (d,), y ~ (c,), the Jacobian is the (c, d) matrix

    df(x) = [[d y_1/d x_1, ..., d y_1/d x_d],
             ...
             [d y_c/d x_1, ..., d y_c/d x_d]]

whose row i is the gradient of output y_i (transposed) and whose column j is
how every output moves when input x_j moves. With c = 1 it is the gradient as a
row; with c = d = 1 it is the ordinary derivative f'(x). The Jacobian of a
composition is the product of Jacobians, d(f o g)(x) = df(g(x)) dg(x), and
f(x0) + df(x0)(x - x0) is the best linear approximation of f near x0 (Taylor).

Every function here accepts pytrees of arrays where a pytree makes sense
(``grad``, ``jacobian``, ``linearize``, ``hvp``, ``hessian``,
``directional_derivative``); ``check_grad`` flattens its input.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from wonderland import _checks

__all__ = [
    "grad",
    "directional_derivative",
    "jacobian",
    "JACOBIAN_MODES",
    "linearize",
    "hessian",
    "hvp",
    "check_grad",
    "taylor_errors",
    "fitted_order",
]

JACOBIAN_MODES = ("auto", "fwd", "rev")

PyTree = Any


def _tree_size(tree: PyTree) -> int:
  return sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree.leaves(tree))


def _floats(tree: PyTree, name: str = "x") -> PyTree:
  """Integer and boolean leaves (Python ints too) as floats; others as given.

  Derivatives need a floating point: at the integer point 1 they are taken at
  1.0, as the notes do when they differentiate at x = 1. A leaf that is not a
  number or an array of numbers (a string, say) is refused with one sentence
  naming ``name``.
  """

  def leaf(a):
    if not isinstance(a, (jax.Array, np.ndarray, np.generic, numbers.Number)):
      raise ValueError(
          f"{name} must be an array of numbers or a pytree of them, got a leaf "
          f"of type {type(a).__name__}: {a!r}."
      )
    dtype = jnp.result_type(a)
    if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
      return jnp.asarray(a, dtype=float)  # the default float dtype
    return a

  return jax.tree.map(leaf, tree)


def _point_and_direction(x: PyTree, v: PyTree) -> tuple[PyTree, PyTree]:
  """x and v as floats, v shaped like x and cast to x's dtypes (for jvp)."""
  x, v = _floats(x), _floats(v, "v")
  _checks.same_structure("v", v, "x", x)
  v = jax.tree.map(lambda a, b: jnp.asarray(b, jnp.result_type(a)), x, v)
  return x, v


def _matrix_fits(c: int, d: int, x: PyTree) -> None:
  """Refuses a c x d derivative matrix over MAX_BYTES, before forming it."""
  leaves = jax.tree.leaves(x)
  itemsize = max((jnp.result_type(a).itemsize for a in leaves), default=4)
  _checks.allocation("x", x, itemsize * c * d, f"the {c} x {d} matrix",
                     given=f"{d} inputs for {c} outputs")



def grad(f: Callable[..., jax.Array], argnums: int | Sequence[int] = 0):
  """Gradient of a scalar-valued f, like ``jax.grad``, with a clear error.

  Args:
    f: a function whose output is a scalar; its inputs may be pytrees.
    argnums: which positional argument(s) to differentiate, as in ``jax.grad``.

  Returns:
    A function with the signature of ``f`` that returns grad f(x), a pytree
    like x.

  Integer arguments are differentiated at their float values.

  Raises:
    ValueError: if f is not callable, or, when called, if an argument to
      differentiate is not numbers or f's output is not a scalar (the message
      names the output's shape; use ``jacobian`` for a vector-valued f).
  """
  _checks.function(f)
  grad_f = jax.grad(f, argnums=argnums)
  wrt = (argnums,) if isinstance(argnums, int) else tuple(argnums)

  def grad_fn(*args, **kwargs):
    args = tuple(_floats(a) if i in wrt else a for i, a in enumerate(args))
    _checks.scalar_output(functools.partial(f, **kwargs), args, "x")
    return grad_f(*args, **kwargs)

  return grad_fn


def directional_derivative(
    f: Callable[[PyTree], jax.Array], x: PyTree, v: PyTree
) -> jax.Array:
  """D_v f(x) = grad f(x) . v, by one forward-mode product (``jax.jvp``).

  The gradient is never formed: the cost is one evaluation of f and its
  tangent, whatever the dimension d.

  Args:
    f: a scalar function (a vector f gives the Jacobian-vector product df(x) v).
    x: the point, a pytree of arrays.
    v: the direction, a pytree like x. It is not normalized: D_{c v} = c D_v.

  Raises:
    ValueError: if f is not callable, x or v is not numbers, or v does not
      have the structure and shapes of x.
  """
  _checks.function(f)
  x, v = _point_and_direction(x, v)
  _, tangent = jax.jvp(f, (x,), (v,))
  return tangent


def jacobian(f: Callable[[PyTree], PyTree], mode: str = "auto"):
  """Jacobian df(x) of f : R^d -> R^c, as the (c, d) matrix of the notes.

  Row i is the (transposed) gradient of output y_i and column j the derivative
  of every output with respect to input x_j: ``J[i, j] = d y_i / d x_j``. For
  pytrees the result nests like ``jax.jacfwd``: output structure outside,
  input structure inside, each leaf of shape ``out.shape + in.shape``.

  Args:
    f: the function.
    mode: ``"fwd"`` builds J a column at a time (d forward passes,
      ``jax.jacfwd``), ``"rev"`` a row at a time (c reverse passes,
      ``jax.jacrev``), and ``"auto"`` (default) chooses forward mode when the
      output is at least as large as the input (c >= d) and reverse mode
      otherwise, the cheaper of the two. The choice uses static shapes only.

  Returns:
    A function x -> df(x).

  Raises:
    ValueError: if f is not callable or ``mode`` is not one of ``"auto"``,
      ``"fwd"``, ``"rev"``; when called, if x is not numbers (an array or a
      pytree of them) or the c x d matrix would take more than
      ``wonderland._checks.MAX_BYTES`` (2 GiB).
  """
  _checks.function(f)
  if mode not in JACOBIAN_MODES:
    raise ValueError(
        f"mode must be one of {', '.join(repr(m) for m in JACOBIAN_MODES)}; "
        f"got {mode!r}."
    )
  jac_fwd, jac_rev = jax.jacfwd(f), jax.jacrev(f)

  def jac_fn(x):
    x = _floats(x)  # an integer point is taken at its float value
    d = _tree_size(x)
    c = _tree_size(jax.eval_shape(f, x))
    _matrix_fits(c, d, x)
    if mode == "fwd":
      return jac_fwd(x)
    if mode == "rev":
      return jac_rev(x)
    return jac_fwd(x) if c >= d else jac_rev(x)

  return jac_fn


def linearize(f: Callable[[PyTree], PyTree], x0: PyTree):
  """First-order Taylor approximation of f around x0.

  .. math::
    \\hat f(x) = f(x_0) + \\partial f(x_0) (x - x_0)

  Built on ``jax.linearize``: f and its linear map are traced once at x0, and
  each call of the returned function costs one Jacobian-vector product.

  Integer points are taken at their float values (the notes' f(0.51) ~
  f(0.5) + f'(0.5)(0.51 - 0.5) works as well with x0 = 1 and x = 2).

  Returns:
    A function ``x -> f(x0) + df(x0)(x - x0)``, with x a pytree like x0.

  Raises:
    ValueError: if f is not callable or x0 is not numbers; when called, if x
      is not shaped like x0.
  """
  _checks.function(f)
  x0 = _floats(x0, "x0")
  y0, f_jvp = jax.linearize(f, x0)

  def f_lin(x):
    x = _floats(x)
    _checks.same_structure("x", x, "x0", x0)
    dx = jax.tree.map(
        lambda a, b: (jnp.asarray(a) - b).astype(jnp.result_type(b)), x, x0
    )
    return jax.tree.map(jnp.add, y0, f_jvp(dx))

  return f_lin


def hessian(f: Callable[[PyTree], jax.Array]):
  """Hessian of a scalar f, forward-over-reverse: ``jacfwd(grad(f))``.

  For x ~ (d,) the result is the symmetric (d, d) matrix of second
  derivatives H_ij = d^2 f / d x_i d x_j.

  Raises:
    ValueError: if f is not callable; when called, if x is not numbers, f is
      not scalar-valued, or the d x d matrix would take more than
      ``wonderland._checks.MAX_BYTES`` (2 GiB).
  """
  hess = jax.jacfwd(grad(f))

  def hess_fn(x, *args, **kwargs):
    x = _floats(x)
    d = _tree_size(x)
    _matrix_fits(d, d, x)
    return hess(x, *args, **kwargs)

  return hess_fn


def hvp(f: Callable[[PyTree], jax.Array], x: PyTree, v: PyTree) -> PyTree:
  """Hessian-vector product H(x) v without forming H (forward-over-reverse).

  One ``jax.jvp`` of the gradient: its cost is a small multiple of one gradient
  evaluation, whatever d.

  Raises:
    ValueError: if f is not callable or not scalar-valued, or v is not shaped
      like x.
  """
  x, v = _point_and_direction(x, v)
  return jax.jvp(grad(f), (x,), (v,))[1]


def check_grad(
    f: Callable[[PyTree], jax.Array], x: PyTree, *, h: float | None = None
) -> float:
  """Largest relative difference between grad f(x) and central differences.

  Each partial derivative is estimated as (f(x + h e_i) - f(x - h e_i)) / 2h
  for every coordinate e_i of the flattened x (vmapped: d + d evaluations in
  one program) and compared with the automatic gradient g:

      max_i |g_i - fd_i| / max(max_i |g_i|, max_i |fd_i|, tiny).

  Scaling by the largest entry keeps coordinates whose derivative is near zero
  from turning rounding noise into a huge ratio. Central differences are
  accurate to O(h^2); values near 1e-3 in float32 (1e-7 in float64) mean the
  gradient is right, values near 1 mean it is wrong.

  Args:
    f: a scalar function.
    x: the point, a pytree of floating arrays.
    h: the step; by default eps^(1/3) * max(1, ||x||_inf) for the dtype's eps.

  Returns:
    The largest relative difference, a Python float.

  Raises:
    ValueError: if f is not callable or not scalar, x is empty or holds a
      leaf that is not floating-point, or h is not a finite number > 0.
  """
  _checks.function(f)
  _checks.float_tree(x, "x")
  flat, unravel = ravel_pytree(x)
  if flat.size == 0:
    raise ValueError(f"x must hold at least one number, got {x!r}.")
  if h is not None:
    h = _checks.number("h", h)
  _checks.scalar_output(f, (x,), "x")
  if h is None:
    eps = float(jnp.finfo(flat.dtype).eps)
    h = eps ** (1 / 3) * max(1.0, float(jnp.max(jnp.abs(flat), initial=0.0)))
  flat_f = lambda z: f(unravel(z))
  g = jax.grad(flat_f)(flat)
  basis = jnp.eye(flat.size, dtype=flat.dtype) * h
  fd = jax.vmap(lambda e: (flat_f(flat + e) - flat_f(flat - e)) / (2 * h))(basis)
  scale = jnp.maximum(jnp.max(jnp.abs(g)), jnp.max(jnp.abs(fd)))
  scale = jnp.maximum(scale, jnp.finfo(flat.dtype).tiny)
  return float(jnp.max(jnp.abs(g - fd)) / scale)


def taylor_errors(
    f: Callable[[PyTree], jax.Array],
    x0: jax.Array,
    v: jax.Array,
    hs: Sequence[float],
) -> np.ndarray:
  """Errors ||f(x0 + h v) - f_lin(x0 + h v)|| of the linearization, one per h.

  Taylor's theorem says they shrink like h^2 for a twice-differentiable f;
  ``fitted_order`` recovers that exponent.

  Raises:
    ValueError: if f is not callable, v is not shaped like x0, or hs is not a
      non-empty 1-D sequence of finite numbers > 0.
  """
  _checks.function(f)
  x0, v = jnp.asarray(_floats(x0, "x0")), jnp.asarray(_floats(v, "v"))
  if v.shape != x0.shape:
    raise ValueError(
        f"v must have the shape of x0, got x0 ~ {x0.shape} and v ~ {v.shape}."
    )
  _check_positive_1d("hs", hs)
  f_lin = linearize(f, x0)

  @jax.jit
  def error(h):
    x = x0 + h * v
    return jnp.linalg.norm(jnp.ravel(f(x) - f_lin(x)))

  return np.asarray([float(error(h)) for h in hs])


def _check_positive_1d(name: str, values, size: int | None = None) -> np.ndarray:
  try:
    arr = np.asarray(values, dtype=np.float64)
  except (TypeError, ValueError):
    arr = None
  if arr is None or arr.ndim != 1 or arr.size == 0:
    raise ValueError(
        f"{name} must be a non-empty 1-D sequence of numbers, got {values!r}."
    )
  if size is not None and arr.size != size:
    raise ValueError(
        f"{name} must have one entry per h ({size}), got {arr.size}."
    )
  if not np.all(np.isfinite(arr) & (arr > 0)):
    raise ValueError(
        f"{name} must hold finite numbers > 0 (they are fitted on a log "
        f"scale), got {arr.tolist()}."
    )
  return arr


def fitted_order(hs: Sequence[float], errors: Sequence[float]) -> float:
  """Least-squares slope of log(error) against log(h): the observed order.

  Raises:
    ValueError: if hs has fewer than two entries, errors does not have one per
      h, or any entry is not a finite number > 0 (a zero error, as an exactly
      linear f gives, has no logarithm).
  """
  hs = _check_positive_1d("hs", hs)
  if hs.size < 2:
    raise ValueError(f"hs must hold at least two steps to fit a slope, got {hs.tolist()}.")
  errors = _check_positive_1d("errors", errors, size=hs.size)
  slope, _ = np.polyfit(np.log(hs), np.log(errors), 1)
  return float(slope)
