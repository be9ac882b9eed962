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
loop checks x_steps. So besides x the loop carries only the optimizer state, a
step's three reductions (||grad f||, ||u_t||, <u_t, grad f>) take one pass,
and the new point is one fused elementwise select, where(ok, x + u, x).

Divergence. Step t knows x_{t-1}, f(x_{t-1}), grad f(x_{t-1}) and u_t:

- if f(x_{t-1}) or grad f(x_{t-1}) is not finite, or f(x_{t-1}) exceeds
  ``DIVERGENCE_THRESHOLD``, the run stops AT x_{t-1};
- else if u_t is not finite, the run stops at x_{t-1}, without applying u_t;
- else x_t = x_{t-1} + u_t.

"Finite" is judged from the norms: the check reads ||grad f|| and ||u_t|| off
the trace's sums of squares (no extra pass over memory), which are taken in
at least float32. So a gradient or update whose norm exceeds what the sum's
dtype holds (about 1.8e19 in float32) counts as not finite, although each of
its entries is.

A stop sets ``diverged`` and the run makes no further progress (the optimizer
state is not rolled back: it is never used again). So the ``params`` of a
diverged run are where progress stopped: the first point at which f or its
gradient blew up (x_0 itself if f blows up there), or the point whose update
was not finite. They are NOT the last point where everything was finite:
returning there would mean carrying the previous point, one more pass over
memory every step. No non-finite update is ever applied, so that point is
finite unless x_{t-1} + u_t itself overflowed.
``num_steps`` counts the steps that reached a point where f and grad f are
finite (and f is below the threshold): a run whose step n + 1 reached a point
where f blew up returns params = x_{n + 1} with num_steps = n, and its records
from step n + 1 on are NaN.
Nothing raises, and runs batched with ``jax.vmap`` stay independent.

Entries for steps that did not run (after an early stop at ``tol``, from the
step that reached a blown-up point on) are NaN in every per-step array and in
``path``; ``num_steps`` counts the steps that ran.
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
    params: the point where the run stopped, a pytree like x0: x_{num_steps}
      if it ran all steps, converged, or stopped because an update u_t was not
      finite; x_{num_steps + 1} if it stopped because f or grad f was not
      finite (or f > ``DIVERGENCE_THRESHOLD``) there, which is the first such
      point, not the last healthy one before it (x_0 if it was x_0).
    values: f(x_t) ~ (steps,).
    grad_norms: ||grad f(x_t)|| ~ (steps,).
    update_norms: ||u_t|| = ||x_t - x_{t-1}|| ~ (steps,).
    cos_angles: cosine between u_t and -grad f(x_{t-1}) ~ (steps,); >= 0 for a
      descent step.
    step_sizes: the optimizer's recorded step size eta_t ~ (steps,), NaN if its
      state records none.
    num_steps: how many steps ran, an int32 scalar.
    converged: whether ||grad f(params)|| <= tol (always False without tol).
    diverged: whether the run stopped at a point where f or grad f was not
      finite or f was huge, or at an update that was not finite.
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

  x_{t-1} is pending until f and grad f there are found healthy (at the start
  of step t, or by ``finish`` after the last step); if they are not, the run
  stops there.
  """

  params: PyTree
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


# Block length of the trace's reductions: see ``_sums``.
_SUM_BLOCK = 256


def _reduce3(terms, axis):
  zeros = tuple(jnp.zeros((), t.dtype) for t in terms)
  return jax.lax.reduce(
      terms, zeros, lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]), axis
  )


def _leaves(updates, grad):
  """The leaves of u and g, flattened, in at least float32."""
  for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grad)):
    acc = jnp.promote_types(jnp.result_type(u, g), jnp.float32)
    yield jnp.ravel(u).astype(acc), jnp.ravel(g).astype(acc)


def _blocked_sums(updates, grad):
  """``_sums`` for XLA:CPU: blocks of ``_SUM_BLOCK``, then pairwise."""
  uu = ug = gg = None
  for u, g in _leaves(updates, grad):
    n = u.shape[0]
    head = n - n % _SUM_BLOCK
    parts = []
    if head:
      ub = u[:head].reshape(-1, _SUM_BLOCK)
      gb = g[:head].reshape(-1, _SUM_BLOCK)
      blocks = _reduce3((ub * ub, ub * gb, gb * gb), (1,))
      parts.append(tuple(jnp.sum(b) for b in blocks))
    if head < n or not head:  # the tail (also an empty leaf's zeros)
      ut, gt = u[head:], g[head:]
      parts.append(_reduce3((ut * ut, ut * gt, gt * gt), (0,)))
    for p_uu, p_ug, p_gg in parts:
      uu, ug, gg = _add(uu, p_uu), _add(ug, p_ug), _add(gg, p_gg)
  return uu, ug, gg


def _flat_sums(updates, grad):
  """``_sums`` off CPU: one variadic reduction per leaf."""
  uu = ug = gg = None
  for u, g in _leaves(updates, grad):
    p_uu, p_ug, p_gg = _reduce3((u * u, u * g, g * g), (0,))
    uu, ug, gg = _add(uu, p_uu), _add(ug, p_ug), _add(gg, p_gg)
  return uu, ug, gg


def _sums(updates, grad):
  """(<u, u>, <u, g>, <g, g>) over the pytrees, in one pass over u and g.

  One variadic reduction takes the three sums together: three separate sums
  made XLA:CPU write u * u and g * g to memory first (minimize 1.3-1.4x a
  bare loop at 16M params, against 0.85-0.96x). Sums are accumulated in at
  least float32. How the reduction is cut depends on the backend:

  - XLA:CPU emits a flat reduction as one float32 running sum, which lost 3%
    of <u, u> at 16M params; so on CPU each leaf is cut into blocks of
    ``_SUM_BLOCK`` numbers, one variadic reduction gives every block's three
    partial sums, and ``jnp.sum`` adds the partials pairwise (~1e-7,
    tests/test_run.py);
  - XLA:GPU already reduces in a tree of partial sums, and the blocks only
    added five small kernels per step (on an H100, minimize took 1.20-1.24x
    a bare loop per step on an elementwise 16M problem with blocks, and
    1.03-1.06x without, side by side); so off CPU each leaf is one flat
    variadic reduction (checked on GPU only; TPU reduces in a tree too).
  """
  return jax.lax.platform_dependent(
      updates, grad, cpu=_blocked_sums, default=_flat_sums
  )


def _check_point(carry: _Carry, value, grad_norm, tol):
  """Checks carry.params from f and ||grad f|| there; stops the run if bad.

  Returns:
    ``(carry, may_move)``: the carry with num_steps, diverged and converged
    updated, and whether a step may leave the point (healthy, running, not
    converged).
  """
  running = ~carry.diverged & ~carry.converged
  ok = running & _healthy(value, grad_norm)
  converged = carry.converged
  if tol is not None:
    converged = converged | (ok & (grad_norm <= tol))
  carry = carry._replace(
      num_steps=carry.num_steps + (ok & carry.pending).astype(jnp.int32),
      diverged=carry.diverged | (running & ~ok),
      converged=converged,
  )
  return carry, ok & ~converged


def init_carry(optimizer, x0) -> _Carry:
  """The loop state before step 1; shared with ``wonderland.sweep``."""
  false = jnp.bool_(False)
  return _Carry(
      params=x0,
      opt_state=optimizer.init(x0),
      num_steps=jnp.zeros((), jnp.int32),
      pending=false,
      diverged=false,
      converged=false,
  )


def step(f, optimizer, carry: _Carry, can_move, tol):
  """Checks x_{t-1} and takes the step x_t = x_{t-1} + u_t from it.

  Step t evaluates f and grad f once, at x_{t-1}: they check x_{t-1} (the
  point step t-1 reached; x_0 at t = 1), mark convergence, and feed the
  optimizer's update u_t. If f or grad f is not finite at x_{t-1} (or f is
  huge), or u_t is not finite, the run stops at x_{t-1} and is frozen from
  then on. The optimizer state is not frozen: it is never used again once the
  run stops moving.

  The new point is one elementwise expression, where(moved, x + u, x), that
  XLA fuses with the add and writes over x in place.

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
  carry, may_move = _check_point(carry, value, grad_norm, tol)
  move = may_move & can_move
  moved = move & jnp.isfinite(update_norm)
  params = jax.tree.map(
      lambda x, u: jnp.where(moved, (x + u).astype(x.dtype), x),
      carry.params, updates,
  )
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
      opt_state=opt_state,
      pending=moved,
      diverged=carry.diverged | (move & ~moved),
  )
  return carry, record


def finish(f, carry: _Carry, tol):
  """Checks the last point after the loop; shared with ``wonderland.sweep``.

  Returns:
    ``(carry, value, grad_norm)``: the final state (diverged set if f or
    grad f is not finite at the last point), and f and ||grad f|| there.
  """
  value, grad = jax.value_and_grad(f)(carry.params)
  gg = _sums(grad, grad)[0]
  grad_norm = jnp.sqrt(gg).astype(jnp.result_type(value))
  carry, _ = _check_point(carry, value, grad_norm, tol)
  return carry._replace(pending=jnp.bool_(False)), value, grad_norm


def shift_records(values, grad_norms, last_value, last_grad_norm, num_steps,
                  steps):
  """values[t-1] = f(x_t) from step records of x_{t-1} ~ (..., >= steps).

  Step t records f(x_{t-1}); dropping step 1's f(x_0) and appending f at the
  last point gives f(x_t) for t = 1..steps. Entries at and after num_steps
  (steps that did not run or reached a blown-up point) become NaN. Shared with
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

  return jax.lax.scan(body, carry, None, length=steps)


def _minimize_while(f, optimizer, x0, steps, tol, keep_path):
  carry = init_carry(optimizer, x0)
  # Step t is written at t - 1.
  nan = jnp.full((steps,), jnp.nan, jax.eval_shape(f, x0).dtype)
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
    c, rec = step(f, optimizer, c, jnp.bool_(True), tol)
    rec = rec._replace(params=rec.params if keep_path else None)
    return t + 1, c, jax.tree.map(lambda b, r: b.at[t].set(r), bufs, rec)

  _, carry, recs = jax.lax.while_loop(
      cond, body, (jnp.zeros((), jnp.int32), carry, buffers)
  )
  return carry, recs


def _minimize_impl(f, optimizer, x0, tol, *, steps, has_tol, keep_path):
  # Checked here, while jax traces for a new f, optimizer or shapes: a call
  # that hits jax's cache skips tracing f once more (~0.2 ms of Python).
  check_scalar_output(f, x0, "x0")
  optimizer = optax.with_extra_args_support(optimizer)
  if has_tol:
    carry, recs = _minimize_while(f, optimizer, x0, steps, tol, keep_path)
  else:
    carry, recs = _minimize_scan(f, optimizer, x0, steps, keep_path)
  carry, value, grad_norm = finish(f, carry, tol if has_tol else None)
  values, grad_norms, mask = shift_records(
      recs.value, recs.grad_norm, value, grad_norm, carry.num_steps, steps
  )
  keep = lambda a: jnp.where(mask, a, jnp.nan)
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.where(
            mask.reshape(-1, *([1] * (a.ndim - 1))), a, jnp.nan
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


def _real_scalar(value) -> float | None:
  """value as a Python float if it is a concrete real scalar, else None."""
  if isinstance(value, (bool, np.bool_)) or isinstance(value, jax.core.Tracer):
    return None
  if isinstance(value, numbers.Real):
    return float(value)
  if (isinstance(value, (jax.Array, np.ndarray)) and value.shape == ()
      and (jnp.issubdtype(value.dtype, jnp.floating)
           or jnp.issubdtype(value.dtype, jnp.integer))):
    return float(value)
  return None


def check_steps(steps) -> int:
  if (
      isinstance(steps, bool)
      or not isinstance(steps, numbers.Integral)
      or steps <= 0
  ):
    raise ValueError(f"steps must be a positive integer, got {steps!r}.")
  return int(steps)


def check_point(f, x, what: str, *, shapes_ok: bool = False) -> None:
  """f must be callable and x a pytree of floating-point arrays (cheap).

  ``shapes_ok`` also lets ``jax.ShapeDtypeStruct`` leaves through (a sweep
  checks one seed of x0 by its shapes).
  """
  if not callable(f):
    raise ValueError(f"f must be a callable objective, got {f!r}.")
  try:
    hash(f)
  except TypeError:
    raise ValueError(
        f"f must be hashable (jax caches the compiled program by f), got an "
        f"unhashable {type(f).__name__}; wrap it, e.g. in a def or a "
        f"functools.partial."
    ) from None
  leaves = jax.tree.leaves(x)
  if not leaves:
    raise ValueError(f"{what} must hold at least one array, got {x!r}.")
  kinds = (jax.Array, np.ndarray, np.generic, numbers.Number)
  if shapes_ok:
    kinds += (jax.ShapeDtypeStruct,)
  for leaf in leaves:
    if not isinstance(leaf, kinds):
      raise ValueError(
          f"{what} must hold floating-point arrays, got a leaf of type "
          f"{type(leaf).__name__}."
      )
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(
          f"{what} must hold floating-point arrays to differentiate f, got "
          f"dtype {dtype}."
      )


def check_scalar_output(f, x, what: str) -> None:
  """f must evaluate at x to a scalar (traces f once)."""
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
  if not jnp.issubdtype(out.dtype, jnp.floating):
    raise ValueError(
        f"f must return a real floating-point scalar at {what} (it is "
        f"differentiated), got dtype {out.dtype}."
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
    given, tol = tol, _real_scalar(tol)
    if tol is None or not math.isfinite(tol) or tol < 0:
      raise ValueError(
          f"tol must be None or a finite number >= 0, got {given!r}."
      )
  if not isinstance(keep_path, (bool, np.bool_)):
    raise ValueError(f"keep_path must be True or False, got {keep_path!r}.")
  keep_path = bool(keep_path)
  check_optimizer(optimizer)
  check_point(f, x0, "x0")
  return _minimize_jit(
      f,
      optimizer,
      x0,
      # The default float dtype: float64 under x64, so tol is not rounded.
      None if tol is None else jnp.asarray(tol, float),
      steps=steps,
      has_tol=tol is not None,
      keep_path=keep_path,
  )
