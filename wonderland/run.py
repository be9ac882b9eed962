"""One compiled run of gradient descent with a full trace (§1.3).

§1.3 is an iteration: from x_{t-1} take the gradient g = grad f(x_{t-1}),
let the optimizer pick the update u_t = eta_t p_t, and step

    x_t = x_{t-1} + u_t,

until the gradient vanishes. ``minimize`` runs that iteration as one XLA
program (``jax.lax.scan`` over a fixed number of steps, or
``jax.lax.while_loop`` that stops at ||grad f(x_t)|| <= tol) and records, for
every step t = 1..steps:

- ``values[t-1] = f(x_t)``: the value at the point the step reached (so
  ``values[-1]`` is the value at the returned params);
- ``grad_norms[t-1] = ||grad f(x_t)||``, the global L2 norm over the pytree;
- ``update_norms[t-1] = ||u_t||``;
- ``cos_angles[t-1] = <u_t, -grad f(x_{t-1})> / (||u_t|| ||grad f(x_{t-1})||)``,
  the cosine of the angle between the update and the steepest descent
  direction: the notes' descent condition D_{p_t} f(x_{t-1}) <= 0 holds exactly
  when it is >= 0; NaN when the update or the gradient is zero;
- ``step_sizes[t-1]``: the scalar named ``step_size`` in the optimizer's state
  (``wonderland.optim.armijo_gd``), else the one named ``learning_rate``
  (optax's line search, or a hyperparameter injected with
  ``optax.inject_hyperparams``), read after the update; NaN if neither exists.

Each step evaluates f and its gradient once, at x_{t-1}: they feed the update
u_t (the line searches receive them as ``value`` and ``grad``) and they check
x_{t-1}, the point the previous step reached; one more evaluation after the
loop checks x_steps. So besides x the loop carries only the optimizer state
and the point before x (for a rejection; the loop runs two steps per
iteration, so the two points swap buffers without a copy, and a stop at
``tol`` may evaluate f once more), and a step's three reductions (||grad f||,
||u_t||, <u_t, grad f>) take one pass.

Divergence. A step whose f(x_t), gradient or update is not finite, or whose
value exceeds ``DIVERGENCE_THRESHOLD``, is rejected: the run keeps x_{t-1},
sets ``diverged`` and makes no further progress (the optimizer state is not
rolled back: it is never used again).
Nothing raises, and runs batched with ``jax.vmap`` stay independent.

Entries for steps that did not run (after an early stop at ``tol``, from the
step that diverged on) are NaN in every per-step array and in ``path``;
``num_steps`` counts the steps that ran.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["Trace", "minimize", "DIVERGENCE_THRESHOLD"]

PyTree = Any

# A value above this (or a non-finite value, gradient or update) is divergence.
DIVERGENCE_THRESHOLD = 1e30

# State fields read as the step size, in order of preference.
_STEP_SIZE_KEYS = ("step_size", "learning_rate")


class Trace(NamedTuple):
  """Everything ``minimize`` saw, one entry per step t = 1..steps.

  Attributes:
    params: the last accepted point x_{num_steps}, a pytree like x0.
    values: f(x_t) ~ (steps,).
    grad_norms: ||grad f(x_t)|| ~ (steps,).
    update_norms: ||u_t|| = ||x_t - x_{t-1}|| ~ (steps,).
    cos_angles: cosine between u_t and -grad f(x_{t-1}) ~ (steps,); >= 0 for a
      descent step.
    step_sizes: the optimizer's recorded step size eta_t ~ (steps,), NaN if its
      state records none.
    num_steps: how many steps ran, an int32 scalar.
    converged: whether ||grad f(params)|| <= tol (always False without tol).
    diverged: whether a step met a non-finite or huge value and was rejected.
    path: x_t for every step, a pytree like x0 with leaves ~ (steps, *leaf),
      if ``keep_path=True``; None otherwise.

  Per-step entries for steps that did not run are NaN.
  """

  params: PyTree
  values: jax.Array
  grad_norms: jax.Array
  update_norms: jax.Array
  cos_angles: jax.Array
  step_sizes: jax.Array
  num_steps: jax.Array
  converged: jax.Array
  diverged: jax.Array
  path: PyTree | None = None


class _Carry(NamedTuple):
  """The loop state before step t: the point x_{t-1} and what is known of it.

  x_{t-1} is a candidate until f and grad f there are found healthy (at the
  start of step t, or by ``finish`` after the last step); ``prev`` is the last
  accepted point before it, where the run returns to if it is not.
  """

  params: PyTree
  prev: PyTree
  opt_state: optax.OptState
  num_steps: jax.Array
  pending: jax.Array
  diverged: jax.Array
  converged: jax.Array


class _Record(NamedTuple):
  """What step t contributes to the trace, before ``_assemble`` shifts it.

  ``value`` and ``grad_norm`` are those of x_{t-1}; the others belong to u_t
  (NaN if the step did not move); ``params`` is the new point x_t.
  """

  value: jax.Array
  grad_norm: jax.Array
  update_norm: jax.Array
  cos_angle: jax.Array
  step_size: jax.Array
  params: PyTree


def _healthy(value, grad_norm):
  return (jnp.isfinite(value) & (value <= DIVERGENCE_THRESHOLD)
          & jnp.isfinite(grad_norm))


def _step_size(opt_state, dtype) -> jax.Array:
  for key in _STEP_SIZE_KEYS:
    found = optax.tree_utils.tree_get_all_with_path(opt_state, key)
    for _, leaf in found:
      if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.ndim(leaf) == 0:
        return jnp.asarray(leaf, dtype)
  return jnp.asarray(jnp.nan, dtype)


def _add(total, part):
  return part if total is None else total + part


def _sums(updates, grad):
  """(<u, u>, <u, g>, <g, g>) over the pytrees, one pass over each leaf pair.

  One variadic reduction per leaf reads u and g once; three separate
  reductions (norms and vdot) would read them four times.
  """
  uu = ug = gg = None
  for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grad)):
    u, g = jnp.ravel(u), jnp.ravel(g)
    terms = (u * u, u * g, g * g)
    zeros = tuple(jnp.zeros((), t.dtype) for t in terms)
    out = jax.lax.reduce(
        terms, zeros,
        lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]), (0,),
    )
    uu, ug, gg = _add(uu, out[0]), _add(ug, out[1]), _add(gg, out[2])
  return uu, ug, gg


def _check_point(carry: _Carry, value, grad_norm, tol):
  """Accepts or rejects carry.params from f and ||grad f|| there.

  Returns:
    ``(carry, may_move, rejected)``: the carry with num_steps, diverged and
    converged updated, whether a step may leave the point (accepted, not
    converged) and whether it was rejected (so the run returns to ``prev``).
  """
  running = ~carry.diverged & ~carry.converged
  ok = running & _healthy(value, grad_norm)
  rejected = running & ~ok
  converged = carry.converged
  if tol is not None:
    converged = converged | (ok & (grad_norm <= tol))
  carry = carry._replace(
      num_steps=carry.num_steps + (ok & carry.pending).astype(jnp.int32),
      diverged=carry.diverged | rejected,
      converged=converged,
  )
  return carry, ok & ~converged, rejected


def init_carry(optimizer, x0) -> _Carry:
  """The loop state before step 1; shared with ``wonderland.sweep``."""
  false = jnp.bool_(False)
  return _Carry(
      params=x0,
      prev=x0,
      opt_state=optimizer.init(x0),
      num_steps=jnp.zeros((), jnp.int32),
      pending=false,
      diverged=false,
      converged=false,
  )


def step(f, optimizer, carry: _Carry, can_move, tol):
  """Checks x_{t-1} and takes the step x_t = x_{t-1} + u_t from it.

  Step t evaluates f and grad f once, at x_{t-1}: they accept or reject
  x_{t-1} (the candidate of step t-1; x_0 at t = 1), mark convergence, and
  feed the optimizer's update u_t. If x_{t-1} is rejected the run returns to
  the point before it, ``carry.prev``; if u_t is not finite it stays at
  x_{t-1}. Either way it is frozen from then on. The optimizer state is not
  frozen: it is never used again once the run stops moving.

  The new point is one elementwise expression, where(moved, x + u,
  where(rejected, prev, x)), that XLA fuses with the add; and it is written
  over ``prev``, which the next step no longer needs. Under a loop unrolled
  twice the two points swap buffers without a copy.

  Shared by ``minimize`` and ``wonderland.sweep`` (under ``jax.vmap``), so
  that a sweep cell takes exactly the steps of the matching single run.

  Args:
    f: the objective.
    optimizer: a ``GradientTransformationExtraArgs``.
    carry: the loop state before step t.
    can_move: a bool scalar; False makes the step only check x_{t-1}.
    tol: None, or the tolerance on ||grad f(x_{t-1})|| that marks
      convergence.

  Returns:
    ``(carry, record)``: the state before step t + 1 and step t's ``_Record``.
  """
  value, grad = jax.value_and_grad(f)(carry.params)
  updates, opt_state = optimizer.update(
      grad,
      carry.opt_state,
      carry.params,
      value=value,
      grad=grad,
      value_fn=f,
  )
  uu, ug, gg = _sums(updates, grad)
  grad_norm, update_norm = jnp.sqrt(gg), jnp.sqrt(uu)
  carry, may_move, rejected = _check_point(carry, value, grad_norm, tol)
  move = may_move & can_move
  moved = move & jnp.isfinite(update_norm)

  def new_point(x, u, p):
    return jnp.where(
        moved, (x + u).astype(x.dtype), jnp.where(rejected, p, x)
    )

  params = jax.tree.map(new_point, carry.params, updates, carry.prev)
  # cos of the angle between u_t and -grad f(x_{t-1}); NaN if either is zero.
  denom = update_norm * grad_norm
  cos_angle = jnp.where(
      denom > 0, -ug / jnp.where(denom > 0, denom, 1.0), jnp.nan
  )
  dtype = jnp.result_type(value)
  nan = jnp.asarray(jnp.nan, dtype)
  record = _Record(
      value=value,
      grad_norm=grad_norm.astype(dtype),
      update_norm=jnp.where(moved, update_norm, nan).astype(dtype),
      cos_angle=jnp.where(moved, cos_angle, nan).astype(dtype),
      step_size=jnp.where(moved, _step_size(opt_state, dtype), nan),
      params=params,
  )
  carry = carry._replace(
      params=params,
      prev=carry.params,
      opt_state=opt_state,
      pending=moved,
      diverged=carry.diverged | (move & ~moved),
  )
  return carry, record


def finish(f, carry: _Carry, tol):
  """Checks the last point after the loop; shared with ``wonderland.sweep``.

  Returns:
    ``(carry, value, grad_norm)``: the final state (params back at ``prev``
    if the last point is rejected), and f and ||grad f|| at the last point.
  """
  value, grad = jax.value_and_grad(f)(carry.params)
  gg = _sums(grad, grad)[0]
  grad_norm = jnp.sqrt(gg).astype(jnp.result_type(value))
  carry, _, rejected = _check_point(carry, value, grad_norm, tol)
  params = jax.tree.map(
      lambda x, p: jnp.where(rejected, p, x), carry.params, carry.prev
  )
  return carry._replace(params=params, pending=jnp.bool_(False)), value, \
      grad_norm


def shift_records(values, grad_norms, last_value, last_grad_norm, num_steps,
                  steps):
  """values[t-1] = f(x_t) from step records of x_{t-1} ~ (..., >= steps).

  Step t records f(x_{t-1}); dropping step 1's f(x_0) and appending f at the
  last point gives f(x_t) for t = 1..steps. Entries at and after num_steps
  (steps that did not run or were rejected) become NaN. Shared with
  ``wonderland.sweep``, where the arrays carry a leading run axis.
  """

  def shift(a, last):
    return jnp.concatenate([a[..., 1:steps], last[..., None]], axis=-1)

  mask = jnp.arange(steps) < num_steps[..., None]
  return (jnp.where(mask, shift(values, last_value), jnp.nan),
          jnp.where(mask, shift(grad_norms, last_grad_norm), jnp.nan), mask)


def _minimize_scan(f, optimizer, x0, steps, keep_path):
  carry = init_carry(optimizer, x0)

  def body(c, _):
    c, rec = step(f, optimizer, c, jnp.bool_(True), None)
    return c, rec._replace(params=rec.params if keep_path else None)

  # Unrolled twice, the new point and the previous one swap buffers in place.
  return jax.lax.scan(body, carry, None, length=steps, unroll=2)


def _minimize_while(f, optimizer, x0, steps, tol, keep_path):
  carry = init_carry(optimizer, x0)
  # Step t is written at t - 1; a second step past ``steps`` only checks.
  nan = jnp.full((steps + 1,), jnp.nan, jax.eval_shape(f, x0).dtype)
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.full((steps + 1, *jnp.shape(a)), jnp.nan, a.dtype), x0
    )
  buffers = _Record(nan, nan, nan, nan, nan, path)

  def cond(state):
    t, c, _ = state
    return (t < steps) & ~c.diverged & ~c.converged

  def one(t, c, bufs):
    c, rec = step(f, optimizer, c, t < steps, tol)
    rec = rec._replace(params=rec.params if keep_path else None)
    return c, jax.tree.map(lambda b, r: b.at[t].set(r), bufs, rec)

  def body(state):
    # Two steps per iteration, for the buffer swap of ``_minimize_scan``; the
    # second only checks if the first stopped the run or reached ``steps``.
    t, c, bufs = state
    c, bufs = one(t, c, bufs)
    c, bufs = one(t + 1, c, bufs)
    return t + 2, c, bufs

  _, carry, recs = jax.lax.while_loop(
      cond, body, (jnp.zeros((), jnp.int32), carry, buffers)
  )
  return carry, recs


def _minimize_impl(f, optimizer, x0, tol, *, steps, has_tol, keep_path):
  optimizer = optax.with_extra_args_support(optimizer)
  if has_tol:
    carry, recs = _minimize_while(f, optimizer, x0, steps, tol, keep_path)
  else:
    carry, recs = _minimize_scan(f, optimizer, x0, steps, keep_path)
  carry, value, grad_norm = finish(f, carry, tol if has_tol else None)
  values, grad_norms, mask = shift_records(
      recs.value, recs.grad_norm, value, grad_norm, carry.num_steps, steps
  )
  keep = lambda a: jnp.where(mask, a[:steps], jnp.nan)
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.where(
            mask.reshape(-1, *([1] * (a.ndim - 1))), a[:steps], jnp.nan
        ),
        recs.params,
    )
  return Trace(
      params=carry.params,
      values=values,
      grad_norms=grad_norms,
      update_norms=keep(recs.update_norm),
      cos_angles=keep(recs.cos_angle),
      step_sizes=keep(recs.step_size),
      num_steps=carry.num_steps,
      converged=carry.converged,
      diverged=carry.diverged,
      path=path,
  )


_minimize_jit = jax.jit(
    _minimize_impl,
    static_argnums=(0, 1),
    static_argnames=("steps", "has_tol", "keep_path"),
)


def check_steps(steps) -> int:
  if (
      isinstance(steps, bool)
      or not isinstance(steps, numbers.Integral)
      or steps <= 0
  ):
    raise ValueError(f"steps must be a positive integer, got {steps!r}.")
  return int(steps)


def check_objective(f, x, what: str) -> None:
  """f must be callable and return a scalar at x, whose leaves are floats."""
  if not callable(f):
    raise ValueError(f"f must be a callable objective, got {f!r}.")
  leaves = jax.tree.leaves(x)
  if not leaves:
    raise ValueError(f"{what} must hold at least one array, got {x!r}.")
  for leaf in leaves:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(
          f"{what} must hold floating-point arrays to differentiate f, got "
          f"dtype {dtype}."
      )
  try:
    out = jax.eval_shape(f, x)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(
        f"f could not be evaluated at {what} (shapes "
        f"{jax.tree.map(jnp.shape, x)}): {type(e).__name__}: {e}"
    ) from None
  if not (isinstance(out, jax.ShapeDtypeStruct) and out.shape == ()):
    shapes = jax.tree.map(lambda s: s.shape, out)
    raise ValueError(
        f"f must return a scalar at {what}, got an output of shape {shapes}."
    )


def check_optimizer(optimizer, name: str = "optimizer") -> None:
  if not (callable(getattr(optimizer, "init", None))
          and callable(getattr(optimizer, "update", None))):
    raise ValueError(
        f"{name} must be an optax.GradientTransformation (with init and "
        f"update), got {optimizer!r}."
    )


def minimize(
    f: Callable[[PyTree], jax.Array],
    optimizer: optax.GradientTransformation,
    x0: PyTree,
    *,
    steps: int,
    tol: float | None = None,
    keep_path: bool = False,
) -> Trace:
  """Minimizes f from x0 with ``optimizer``, as one compiled program.

  .. math::
    x_t = x_{t-1} + u_t, \\qquad
    (u_t, s_t) = \\mathrm{optimizer.update}(\\nabla f(x_{t-1}), s_{t-1},
    x_{t-1})

  for t = 1..steps, or until ||grad f(x_t)|| <= tol. Any optax transformation
  works; those that need ``value``, ``grad`` and ``value_fn`` (optax's line
  searches, ``wonderland.optim.armijo_gd``) receive f(x_{t-1}),
  grad f(x_{t-1}) and f. See the module docstring for what each trace entry
  holds and for divergence.

  The program is cached by jax for the same ``f`` and ``optimizer`` objects
  and shapes; a new optimizer object (``optax.sgd(0.2)`` built again) compiles
  again: to compare hyperparameters, use ``wonderland.sweep``.

  Args:
    f: the objective, a function of a pytree like x0 returning a scalar.
    optimizer: an ``optax.GradientTransformation``.
    x0: the starting point x_0, a pytree of floating-point arrays.
    steps: the number of steps (with ``tol``, the most steps).
    tol: if given, stop as soon as ||grad f(x_t)|| <= tol (a
      ``jax.lax.while_loop``); a start with ||grad f(x_0)|| <= tol takes no
      step. If None, run all steps (a ``jax.lax.scan``).
    keep_path: also return x_t for every step in ``Trace.path``.

  Returns:
    A ``Trace`` with per-step arrays ~ (steps,).

  Raises:
    ValueError: if f is not callable or not scalar at x0, x0 holds no
      floating-point array, optimizer is not a gradient transformation, steps
      is not a positive integer, tol is not a non-negative number, or
      keep_path is not a bool.

  Example:
    >>> trace = minimize(lambda x: jnp.sum(x**2), optax.sgd(0.1),
    ...                  jnp.ones(3), steps=100, tol=1e-4)
    >>> bool(trace.converged)
    True
  """
  steps = check_steps(steps)
  if tol is not None:
    if (isinstance(tol, bool) or not isinstance(tol, numbers.Real)
        or not math.isfinite(tol) or tol < 0):
      raise ValueError(
          f"tol must be None or a finite number >= 0, got {tol!r}."
      )
  if not isinstance(keep_path, bool):
    raise ValueError(f"keep_path must be True or False, got {keep_path!r}.")
  check_optimizer(optimizer)
  check_objective(f, x0, "x0")
  return _minimize_jit(
      f,
      optimizer,
      x0,
      None if tol is None else jnp.asarray(tol, jnp.float32),
      steps=steps,
      has_tol=tol is not None,
      keep_path=keep_path,
  )
