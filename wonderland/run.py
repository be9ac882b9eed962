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

Each step evaluates f and its gradient once, at the new point, and reuses them
for the next update (the line searches receive them as ``value`` and ``grad``).

Divergence. A step whose f(x_t), gradient or update is not finite, or whose
value exceeds ``DIVERGENCE_THRESHOLD``, is rejected: the run keeps x_{t-1},
sets ``diverged`` and makes no further progress.
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
  """The loop state of one run: x_t, the optimizer state, f and grad f there."""

  params: PyTree
  opt_state: optax.OptState
  value: jax.Array
  grad: PyTree
  grad_norm: jax.Array
  num_steps: jax.Array
  diverged: jax.Array
  converged: jax.Array


class _Record(NamedTuple):
  """What one step contributes to the trace."""

  value: jax.Array
  grad_norm: jax.Array
  update_norm: jax.Array
  cos_angle: jax.Array
  step_size: jax.Array
  params: PyTree


def _healthy(value, grad_norm, update_norm=None):
  ok = jnp.isfinite(value) & (value <= DIVERGENCE_THRESHOLD)
  ok = ok & jnp.isfinite(grad_norm)
  if update_norm is not None:
    ok = ok & jnp.isfinite(update_norm)
  return ok


def _step_size(opt_state, dtype) -> jax.Array:
  for key in _STEP_SIZE_KEYS:
    found = optax.tree_utils.tree_get_all_with_path(opt_state, key)
    for _, leaf in found:
      if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.ndim(leaf) == 0:
        return jnp.asarray(leaf, dtype)
  return jnp.asarray(jnp.nan, dtype)


def init_carry(f, optimizer, x0, tol) -> _Carry:
  """The loop state at x_0 (f, grad f, optimizer state); shared with sweep.

  A start where f or grad f is not finite has already diverged; with ``tol``
  a start where ||grad f(x_0)|| <= tol has already converged.
  """
  value, grad = jax.value_and_grad(f)(x0)
  grad_norm = optax.tree_utils.tree_norm(grad)
  ok = _healthy(value, grad_norm)
  converged = ok & (grad_norm <= tol) if tol is not None else jnp.bool_(False)
  return _Carry(
      params=x0,
      opt_state=optimizer.init(x0),
      value=value,
      grad=grad,
      grad_norm=grad_norm,
      num_steps=jnp.zeros((), jnp.int32),
      diverged=~ok,
      converged=converged,
  )


def step(f, optimizer, carry: _Carry, active, tol):
  """One step x_t = x_{t-1} + u_t, accepted only if ``active`` and healthy.

  Shared by ``minimize`` and ``wonderland.sweep`` (under ``jax.vmap``), so
  that a sweep cell takes exactly the steps of the matching single run.

  Args:
    f: the objective.
    optimizer: a ``GradientTransformationExtraArgs``.
    carry: the loop state at x_{t-1}.
    active: a bool scalar; an inactive step changes nothing that is kept.
    tol: None, or the tolerance on ||grad f(x_t)|| that marks convergence.

  Returns:
    ``(carry, record, accepted)``: the state at x_t if the step was accepted
    (at x_{t-1} otherwise, with ``diverged`` set if it was active), the step's
    record (NaN if not accepted; ``params`` holds the candidate x_t), and
    whether it was accepted.
  """
  updates, opt_state = optimizer.update(
      carry.grad,
      carry.opt_state,
      carry.params,
      value=carry.value,
      grad=carry.grad,
      value_fn=f,
  )
  params = optax.apply_updates(carry.params, updates)
  value, grad = jax.value_and_grad(f)(params)
  grad_norm = optax.tree_utils.tree_norm(grad)
  update_norm = optax.tree_utils.tree_norm(updates)
  # cos of the angle between u_t and -grad f(x_{t-1}); NaN if either is zero.
  denom = update_norm * carry.grad_norm
  slope = optax.tree_utils.tree_vdot(updates, carry.grad)
  cos_angle = jnp.where(
      denom > 0, -slope / jnp.where(denom > 0, denom, 1.0), jnp.nan
  )
  ok = active & _healthy(value, grad_norm, update_norm)
  converged = ok & (grad_norm <= tol) if tol is not None else carry.converged
  # Only x and the scalars are kept through a rejected step: after one, every
  # later step is inactive, so the optimizer state and gradient are never used
  # again, and leaving them unselected saves two passes over memory per step.
  keep = lambda new, old: jnp.where(ok, new, old)
  new = _Carry(
      params=jax.tree.map(keep, params, carry.params),
      opt_state=opt_state,
      value=keep(value, carry.value),
      grad=grad,
      grad_norm=keep(grad_norm, carry.grad_norm),
      num_steps=carry.num_steps + ok.astype(jnp.int32),
      diverged=carry.diverged | (active & ~ok),
      converged=converged,
  )
  dtype = jnp.result_type(value)
  nan = jnp.asarray(jnp.nan, dtype)
  record = _Record(
      value=jnp.where(ok, value, nan),
      grad_norm=jnp.where(ok, grad_norm, nan).astype(dtype),
      update_norm=jnp.where(ok, update_norm, nan).astype(dtype),
      cos_angle=jnp.where(ok, cos_angle, nan).astype(dtype),
      step_size=jnp.where(ok, _step_size(opt_state, dtype), nan),
      params=params,
  )
  return new, record, ok


def _path_entry(ok, params, keep_path):
  """x_t for ``Trace.path`` (NaN if the step was rejected); None if not kept."""
  if not keep_path:
    return None
  return jax.tree.map(lambda a: jnp.where(ok, a, jnp.nan), params)


def _minimize_scan(f, optimizer, x0, steps, keep_path):
  carry = init_carry(f, optimizer, x0, None)

  def body(c, _):
    c, rec, ok = step(f, optimizer, c, ~c.diverged, None)
    return c, rec._replace(params=_path_entry(ok, rec.params, keep_path))

  carry, recs = jax.lax.scan(body, carry, None, length=steps)
  return carry, recs


def _minimize_while(f, optimizer, x0, steps, tol, keep_path):
  carry = init_carry(f, optimizer, x0, tol)
  nan = jnp.full((steps,), jnp.nan, carry.value.dtype)
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.full((steps, *jnp.shape(a)), jnp.nan, a.dtype), x0
    )
  buffers = _Record(nan, nan, nan, nan, nan, path)

  def cond(state):
    t, c, _ = state
    return (t < steps) & ~c.diverged & ~c.converged

  def body(state):
    t, c, bufs = state
    c, rec, ok = step(f, optimizer, c, jnp.bool_(True), tol)
    rec = rec._replace(params=_path_entry(ok, rec.params, keep_path))
    bufs = jax.tree.map(lambda b, r: b.at[t].set(r), bufs, rec)
    return t + 1, c, bufs

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
  return Trace(
      params=carry.params,
      values=recs.value,
      grad_norms=recs.grad_norm,
      update_norms=recs.update_norm,
      cos_angles=recs.cos_angle,
      step_sizes=recs.step_size,
      num_steps=carry.num_steps,
      converged=carry.converged,
      diverged=carry.diverged,
      path=recs.params if keep_path else None,
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
