"""A careful step size (§1.3): backtracking on the Armijo condition.

§1.3 asks for a step "small enough for f to reduce with each iteration".
Backtracking makes that a rule: from a trial step eta, shrink it until

    f(x + eta p) <= f(x) + c eta grad f(x) . p        (sufficient decrease)

where p is a descent direction (grad f(x) . p < 0). Every accepted step lowers
f by at least c eta |grad f(x) . p|, so f never increases.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wonderland.optim import _validation
from wonderland.optim import transforms

__all__ = ["ArmijoState", "scale_by_armijo", "armijo_gd"]

PyTree = Any


class ArmijoState(NamedTuple):
  """What the last line search found.

  Attributes:
    step_size: the step size eta_t taken at the last update, a float scalar
      (0 before the first update, and 0 when no trial step satisfied the
      condition, in which case the update was zero). A run loop reads it with
      ``optax.tree_utils.tree_get(state, "step_size")``, also through
      ``optax.chain`` and ``optax.inject_hyperparams``.
    value: f(x_t) at the accepted point (f(x_{t-1}) after a zero step; +inf
      before the first update).
    num_backtracks: how many times the trial step was shrunk, an int32 scalar.
    count: the number of updates so far, an int32 scalar (for a scheduled
      initial step).
  """

  step_size: jax.Array
  value: jax.Array
  num_backtracks: jax.Array
  count: jax.Array


def _accepted_kwargs(fn: Callable[..., Any], extra_args: dict[str, Any]):
  """The extra keyword arguments that fn accepts (all, if it takes **kwargs)."""
  try:
    parameters = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return {}
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
    return dict(extra_args)
  by_name = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
  names = {p.name for p in parameters if p.kind in by_name}
  return {k: v for k, v in extra_args.items() if k in names}


def _rounded(x: jax.Array, dtype) -> jax.Array:
  """x cast to dtype and rounded there, even where XLA keeps excess precision.

  XLA may compute a chain of bfloat16 or float16 operations in float32 without
  rounding in between; the line search must judge the point it will return.
  """
  x = x.astype(dtype)
  if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
    info = jnp.finfo(dtype)
    x = jax.lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)
  return x


def _float_dtype(params: PyTree):
  leaves = jax.tree.leaves(params)
  dtype = jnp.result_type(*leaves) if leaves else jnp.float32
  return jnp.promote_types(dtype, jnp.float32)


def scale_by_armijo(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    c: jax.typing.ArrayLike = 1e-4,
    shrink: jax.typing.ArrayLike = 0.5,
    max_backtracks: jax.typing.ArrayLike = 30,
) -> optax.GradientTransformationExtraArgs:
  r"""Scales a descent direction p_t by the first step size that decreases f enough.

  The incoming updates are the direction p_t (for steepest descent,
  p_t = -grad f(x_{t-1}): chain this after ``scale_by_learning_rate(1.0)``, as
  ``armijo_gd`` does). The trial steps are eta_0 * shrink^k, k = 0, 1, ...,
  ``max_backtracks``, with eta_0 = ``learning_rate`` (or its schedule's value
  at this update); the first one that satisfies

  .. math::
    f(x_{t-1} + \eta p_t) \le f(x_{t-1}) + c \, \eta \, \nabla f(x_{t-1}) \cdot p_t

  is taken, and the update is eta p_t. If none does, the update is zero and
  the recorded step size 0. The slope grad f . p_t is clipped at 0 from above,
  so even a direction that is not a descent direction never increases f.

  ``update(updates, state, params, *, value, grad, value_fn, **extra_args)``
  takes the keyword arguments of optax's own line searches: ``value_fn`` (f,
  a function of the params; required), ``value`` = f(params) and ``grad`` =
  grad f(params) (each computed from ``value_fn`` when omitted). The extra
  keyword arguments that ``value_fn`` accepts are passed on to it; the others
  are ignored, since ``optax.chain`` hands every extra argument to every
  member. Each update evaluates f at most ``max_backtracks + 1`` times, in a
  ``lax.while_loop``.

  Args:
    learning_rate: the first trial step eta_0 > 0, a number or a schedule.
    c: the sufficient-decrease constant, in (0, 1).
    shrink: the factor that shrinks a rejected step, in (0, 1).
    max_backtracks: the largest number of shrinks, an integer >= 0.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is an
    ``ArmijoState``; its field ``step_size`` is the step taken.

  Raises:
    ValueError: at build time, if a concrete hyperparameter is out of range;
      at update time, if ``value_fn`` or ``params`` is missing.

  References:
    Armijo, Minimization of functions having Lipschitz continuous first
    partial derivatives, Pacific J. Math., 1966. Nocedal & Wright, Numerical
    Optimization, 2nd ed., Algorithm 3.1.
  """
  _validation.positive("learning_rate", learning_rate, schedule=True)
  _validation.open_unit_interval("c", c)
  _validation.open_unit_interval("shrink", shrink)
  _validation.non_negative_integer("max_backtracks", max_backtracks)

  def init_fn(params):
    dtype = _float_dtype(params)
    return ArmijoState(
        step_size=jnp.zeros([], dtype),
        value=jnp.full([], jnp.inf, dtype),
        num_backtracks=jnp.zeros([], jnp.int32),
        count=jnp.zeros([], jnp.int32),
    )

  def update_fn(
      updates,
      state,
      params=None,
      *,
      value=None,
      grad=None,
      value_fn=None,
      **extra_args,
  ):
    if value_fn is None:
      raise ValueError(
          "The Armijo line search needs the objective: call update(..., "
          "value_fn=f, value=f(params), grad=grad_f(params)); got value_fn=None."
      )
    if params is None:
      raise ValueError(
          "The Armijo line search needs the current params x_{t-1}: call "
          "update(updates, state, params, ...); got params=None."
      )
    f = functools.partial(value_fn, **_accepted_kwargs(value_fn, extra_args))
    if value is None:
      value = f(params)
    if grad is None:
      grad = jax.grad(f)(params)
    dtype = state.step_size.dtype
    value = jnp.asarray(value).astype(dtype)
    slope = sum(
        jnp.vdot(g.astype(dtype), p.astype(dtype))
        for g, p in zip(jax.tree.leaves(grad), jax.tree.leaves(updates))
    )
    slope = jnp.minimum(slope, 0)
    eta0 = learning_rate(state.count) if callable(learning_rate) else learning_rate
    eta0 = jnp.asarray(eta0).astype(dtype)

    def step_of(eta, p):  # the update this line search returns for eta
      return _rounded(eta.astype(p.dtype) * p, p.dtype)

    def trial(eta):
      # Exactly the point optax.apply_updates will make: x + step, rounded.
      x = jax.tree.map(
          lambda x, p: _rounded(x + step_of(eta, p), x.dtype), params, updates
      )
      return jnp.asarray(f(x)).astype(dtype)

    def sufficient(eta, f_new):
      return f_new <= value + c * eta * slope

    def keep_shrinking(carry):
      k, eta, f_new = carry
      return jnp.logical_not(sufficient(eta, f_new)) & (k < max_backtracks)

    def shrink_once(carry):
      k, eta, _ = carry
      eta = (shrink * eta).astype(dtype)
      return k + 1, eta, trial(eta)

    k, eta, f_new = jax.lax.while_loop(
        keep_shrinking, shrink_once, (jnp.zeros([], jnp.int32), eta0, trial(eta0))
    )
    accepted = sufficient(eta, f_new)
    step = jnp.where(accepted, eta, jnp.zeros_like(eta))
    updates = jax.tree.map(lambda p: step_of(step, p), updates)
    return updates, ArmijoState(
        step_size=step,
        value=jnp.where(accepted, f_new, value),
        num_backtracks=k,
        count=optax.safe_increment(state.count),
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def armijo_gd(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    c: jax.typing.ArrayLike = 1e-4,
    shrink: jax.typing.ArrayLike = 0.5,
    max_backtracks: jax.typing.ArrayLike = 30,
) -> optax.GradientTransformationExtraArgs:
  r"""Steepest descent whose step size is found by Armijo backtracking.

  .. math::
    p_t = -\nabla f(x_{t-1}), \qquad x_t = x_{t-1} + \eta_t p_t,

  with eta_t the first of learning_rate * shrink^k (k = 0, ..., max_backtracks)
  such that f(x_{t-1} + eta_t p_t) <= f(x_{t-1}) + c eta_t grad f(x_{t-1}) . p_t
  (see ``scale_by_armijo``). Every step starts again from ``learning_rate``,
  so a large one is safe: it is shrunk where it would not decrease f.

  ``update`` takes the keyword arguments ``value``, ``grad`` and ``value_fn``
  (``value_fn`` is required), like optax's line searches::

    opt = armijo_gd(learning_rate=10.0)
    state = opt.init(x)
    value, grad = jax.value_and_grad(f)(x)
    updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
    x = optax.apply_updates(x, updates)
    eta = optax.tree_utils.tree_get(state, "step_size")

  Args:
    learning_rate: the first trial step > 0, a number or a schedule.
    c: the sufficient-decrease constant, in (0, 1).
    shrink: the factor that shrinks a rejected step, in (0, 1).
    max_backtracks: the largest number of shrinks per update, an integer >= 0.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; its state holds an
    ``ArmijoState`` whose ``step_size`` field is the step size taken.

  Raises:
    ValueError: if a concrete hyperparameter is out of range (when built), or
      ``value_fn`` is missing (when updating).
  """
  return optax.chain(
      transforms.scale_by_learning_rate(1.0),
      scale_by_armijo(learning_rate, c, shrink, max_backtracks),
  )
