"""One compiled run of gradient descent with a full trace (§1.3).

``minimize`` runs the iteration x_t = x_{t-1} + u_t (the loop kernel of
``wonderland._loop``, where divergence is defined) as one XLA program:
``jax.lax.scan`` over a fixed number of steps, or ``jax.lax.while_loop`` that
stops at ||grad f(x_t)|| <= tol. It records, for every step t = 1..steps:

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
  (optax's line search, ``wonderland.optim``'s optimizers, or a hyperparameter
  injected with ``optax.inject_hyperparams``), read after the update; NaN if
  neither exists.

The ``params`` of a diverged run are where progress stopped: the first point
at which f or its gradient blew up (x_0 itself if f blows up there), or the
point whose update was not finite. They are NOT the last point where
everything was finite: returning there would mean carrying the previous point,
one more pass over memory every step. ``num_steps`` counts the steps that
reached a point where f and grad f are finite (and f is below the threshold):
a run whose step n + 1 reached a point where f blew up returns
params = x_{n + 1} with num_steps = n, and its records from step n + 1 on are
NaN.

Entries for steps that did not run (after an early stop at ``tol``, from the
step that reached a blown-up point on) are NaN in every per-step array and in
``path``; ``num_steps`` counts the steps that ran.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from wonderland import _checks
from wonderland import _loop
from wonderland._loop import CURVATURES
from wonderland._loop import DIVERGENCE_THRESHOLD
from wonderland._loop import finish
from wonderland._loop import RECORDS
from wonderland._scan import evaluation_steps
from wonderland._scan import Feed
from wonderland._scan import objective
from wonderland._scan import scan_run
from wonderland._scan import shift_records
from wonderland._scan import while_run
from wonderland.landscape import preconditioning

__all__ = ["Trace", "minimize", "DIVERGENCE_THRESHOLD"]

PyTree = Any


class Trace(NamedTuple):
  """Everything ``minimize`` saw, one entry per step t = 1..steps.

  Attributes:
    params: the point where the run stopped, a pytree like x0: x_{num_steps}
      if it ran all steps, converged, or stopped because an update u_t was not
      finite; x_{num_steps + 1} if it stopped because f or grad f was not
      finite (or f > ``DIVERGENCE_THRESHOLD``) there, which is the first such
      point, not the last healthy one before it (x_0 if it was x_0).
    values: f(x_t) ~ (steps,).
    grad_norms: ||grad f(x_t)|| ~ (steps,). This and the next three are None
      when ``record`` leaves them out.
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
    evals: with ``evaluate`` or a recorded curvature, name -> its value at
      each of ``eval_steps`` ~ (n_evals,) (NaN at steps the run did not
      reach): evaluate's metrics, and ``"sharpness"`` and
      ``"preconditioned_sharpness"`` where ``record`` names them; None
      otherwise.
    eval_steps: the steps t whose x_t was evaluated ~ (n_evals,): every
      ``eval_every`` steps, and the last step; None without evaluations.

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
  evals: dict[str, jax.Array] | None = None
  eval_steps: jax.Array | None = None



def _minimize_impl(f, optimizer, x0, tol, data, key, evaluate, *, steps,
                   has_tol, keep_path, batch_size, every, record,
                   sharpness_iters):
  feed = None if data is None else Feed(data, key, batch_size)
  # Checked here, while jax traces for a new f, optimizer or shapes: a call
  # that hits jax's cache does not trace f once more.
  if feed is None:
    dtype = _checks.scalar_output(f, (x0,), "x0")
  else:
    batch = jax.tree.map(lambda a: a[:batch_size], data)
    dtype = _checks.scalar_output(f, (x0, batch), "x0 and a batch")
  if evaluate is not None:
    _checks.evaluations(evaluate, x0, "x0",
                        reserved=_loop.curvatures(record))
  optimizer = optax.with_extra_args_support(optimizer)
  evals = None
  if has_tol:
    carry, recs = while_run(f, optimizer, x0, steps, tol, keep_path, record)
  else:
    carry, recs, evals = scan_run(f, optimizer, x0, steps, keep_path, feed,
                                  evaluate, every, record, sharpness_iters,
                                  dtype)
  last = objective(f, feed, jnp.asarray(steps, jnp.int32))
  carry, value, grad_norm = finish(last, carry, tol if has_tol else None,
                                   record)
  u_names = ("update_norm", "cos_angle", "step_size")
  if carry.trace is not None:  # written in place, shifted and masked
    values, grad_norms = carry.trace["value"], carry.trace.get("grad_norm")
    mask = jnp.arange(steps) < carry.num_steps
    u_records = {name: carry.trace.get(name) for name in u_names}
  else:
    if recs.grad_norm is None:
      grad_norm = None
    values, grad_norms, mask = shift_records(
        recs.value, recs.grad_norm, value, grad_norm, carry.num_steps, steps
    )
    u_records = {name: None if getattr(recs, name) is None else
                 jnp.where(mask, getattr(recs, name), jnp.nan)
                 for name in u_names}
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.where(
            mask.reshape(-1, *([1] * (a.ndim - 1))), a, jnp.nan
        ),
        recs.params,
    )
  eval_steps = None
  if evals is not None:
    eval_steps = jnp.asarray(evaluation_steps(steps, every))
    ran = eval_steps <= carry.num_steps
    evals = {k: jnp.where(ran, v, jnp.nan) for k, v in evals.items()}
  return Trace(
      params=carry.params,
      values=values,
      grad_norms=grad_norms,
      update_norms=u_records["update_norm"],
      cos_angles=u_records["cos_angle"],
      step_sizes=u_records["step_size"],
      num_steps=carry.num_steps,
      converged=carry.converged,
      diverged=~carry.alive,
      path=path,
      evals=evals,
      eval_steps=eval_steps,
  )


_minimize_jit = jax.jit(
    _minimize_impl,
    static_argnums=(0, 1, 6),
    static_argnames=("steps", "has_tol", "keep_path", "batch_size", "every",
                     "record", "sharpness_iters"),
)


# What the checks of a call concluded, by what they read (see ``_signature``):
# a second call with new values of the same shapes skips them. A dict, not
# functools.lru_cache as in _checks: the key is not the checks' arguments.
_CHECKED: collections.OrderedDict = collections.OrderedDict()
_CHECKED_SIZE = 256


def _signature(f, optimizer, x0, steps, has_tol, keep_path, data, batch_size,
               key, evaluate, eval_every, record, sharpness_iters):
  """Everything ``_check_call`` reads, as a key, or None.

  x0 enters by its structure and its leaves' types, shapes and dtypes (the
  checks read no value of it); each Python argument by its type and value.
  Stochastic calls (their data's shapes, their key: None) and calls whose
  key does not hash are checked in full every time.
  """
  if data is not None or key is not None:
    return None
  leaves, treedef = jax.tree.flatten(x0)
  return (
      f, optimizer, evaluate, treedef,
      tuple([(type(a), getattr(a, "shape", None), getattr(a, "dtype", None))
             for a in leaves]),
      type(steps), steps, has_tol, type(keep_path), keep_path,
      type(batch_size), batch_size, type(eval_every), eval_every,
      type(sharpness_iters), sharpness_iters, type(record),
      (tuple(map(type, record)), record) if isinstance(record, tuple)
      else record,
  )


def _check_call(f, optimizer, x0, steps, tol, keep_path, data, batch_size,
                key, evaluate, eval_every, record, sharpness_iters):
  """``minimize``'s checks of everything but tol's value.

  Returns:
    ``(steps, keep_path, record, sharpness_iters, batch_size, every)`` as
    the compiled program takes them.
  """
  steps = _checks.integer("steps", steps, maximum=_checks.INT32_MAX)
  keep_path = _checks.boolean("keep_path", keep_path)
  record = _checks.records(record, RECORDS + CURVATURES,
                           needs_grad_norm=tol is not None)
  sharpness_iters = _checks.integer("sharpness_iters", sharpness_iters,
                                    maximum=_checks.INT32_MAX)
  _checks.transformation(optimizer)
  _checks.function(f, "f", what="a callable objective", hashable=True)
  _checks.float_tree(x0, "x0")
  batch_size, every = _checks.stochastic(
      x0, steps=steps, tol=tol, data=data, batch_size=batch_size, key=key,
      evaluate=evaluate, eval_every=eval_every, trace_evaluate=False,
      probes=_loop.curvatures(record),
  )
  if "preconditioned_sharpness" in record:
    preconditioning.preconditioned_state(jax.eval_shape(optimizer.init, x0))
  return steps, keep_path, record, sharpness_iters, batch_size, every


def minimize(
    f: Callable[..., jax.Array],
    optimizer: optax.GradientTransformation,
    x0: PyTree,
    *,
    steps: int,
    tol: float | None = None,
    keep_path: bool = False,
    data: PyTree | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    evaluate: Callable[[PyTree], dict[str, jax.Array]] | None = None,
    eval_every: int | None = None,
    record: Sequence[str] = RECORDS,
    sharpness_iters: int = 20,
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

  Stochastic runs. With ``data`` (a pytree of arrays sharing a leading
  example axis, e.g. ``(X, y)``), f is ``f(params, batch)`` and step t uses
  the gradient of f(x_{t-1}, B_{t-1}) on the minibatch
  ``B_i = wonderland.data.minibatch(data, key, i, batch_size)``: epoch-wise
  shuffling without replacement, a pure function of ``key`` and the step.
  The trace then records minibatch quantities: ``values[t-1]`` is
  f(x_t, B_t), the loss at x_t on the batch that step t + 1 draws (a batch
  x_t has not been fitted on, so an unbiased estimate of the training loss
  at x_t), and ``grad_norms`` the norms of those minibatch gradients;
  update norms, cosines, step sizes and divergence keep their meaning.
  ``tol`` would judge a minibatch gradient and is refused with ``data``.

  Evaluations. ``evaluate(params) -> dict[str, scalar]`` (held-out loss and
  accuracy, say) runs inside the same program after every ``eval_every``
  steps and after the last; see ``Trace.evals``.

  Curvature. With ``"sharpness"`` in ``record``, the trace's evals hold, at
  the same evaluation steps, the sharpness lambda_max of the Hessian of f at
  x_t (of the minibatch loss f(x_t, B_t) with ``data``), estimated inside
  the same program by ``sharpness_iters`` Hessian-vector products: the top
  Ritz value of a Lanczos iteration,

  .. math::
    \\lambda_{max}(\\nabla^2 f(x_t)) \\approx
    \\lambda_{max}(Q_k^T \\nabla^2 f(x_t) Q_k),

  with Q_k an orthonormal basis of the Krylov space of the previous
  evaluation's Ritz vector (warm start; the first evaluation starts from a
  fixed vector). It is a lower bound on lambda_max, with its sign
  (``wonderland.landscape.lanczos.warm_sharpness``).
  ``"preconditioned_sharpness"`` is the top eigenvalue of P^{-1/2} H P^{-1/2},
  with P the diagonal preconditioner of the update that led to x_t, read from
  the state of ``wonderland.optim.adagrad``, ``rmsprop`` or ``adam`` as
  ``wonderland.landscape.preconditioner`` reads it (eps and beta_2 from
  ``optax.inject_hyperparams`` where the optimizer was built with it, else
  their defaults). Gradient descent with step eta is stable along the top
  eigenvector while lambda_max < 2/eta.

  The program is cached by jax for the same ``f``, ``optimizer`` and
  ``evaluate`` objects and shapes; a new optimizer object (``optax.sgd(0.2)``
  built again) compiles again: to compare hyperparameters, use
  ``wonderland.sweep``. The argument checks are remembered the same way (by
  those objects, x0's structure, shapes and dtypes, and the other arguments;
  not for stochastic runs): a second call with new values of x0 or tol
  checks tol and dispatches.

  Args:
    f: the objective, a function of a pytree like x0 (and of a batch, with
      ``data``) returning a scalar.
    optimizer: an ``optax.GradientTransformation``.
    x0: the starting point x_0, a pytree of floating-point arrays.
    steps: the number of steps (with ``tol``, the most steps).
    tol: if given, stop as soon as ||grad f(x_t)|| <= tol (a
      ``jax.lax.while_loop``); a start with ||grad f(x_0)|| <= tol takes no
      step. If None, run all steps (a ``jax.lax.scan``).
    keep_path: also return x_t for every step in ``Trace.path``.
    data: the training examples of a stochastic run, or None.
    batch_size: the minibatch size, an int in [1, n]; required with ``data``.
    key: the ``jax.random`` key of the data order; required with ``data``.
    evaluate: a function of the params returning a dict of scalars, or None.
    eval_every: the evaluation period (default: only after the last step).
    record: what the trace records per step, a subset of ``"value"``
      (always), ``"grad_norm"``, ``"update_norm"``, ``"cos_angle"`` and
      ``"step_size"``; the others are None in the trace. What is not recorded
      is not computed: ``record=("value",)`` compiles to the plain loop
      (value, gradient, update, one select), and then divergence is judged
      from f alone, so a run stops one step later, at the point where f blew
      up (see ``wonderland._loop.step``). ``tol`` needs ``"grad_norm"``.
      ``"sharpness"`` and ``"preconditioned_sharpness"`` are recorded at the
      evaluation steps, into ``Trace.evals`` (see Curvature above); they need
      tol=None, and the preconditioned one an adagrad, rmsprop or adam state.
    sharpness_iters: the Hessian-vector products per curvature estimate, a
      positive int.

  Returns:
    A ``Trace`` with per-step arrays ~ (steps,).

  Raises:
    ValueError: if f is not callable or not scalar at x0, x0 holds no
      floating-point array, optimizer is not a gradient transformation, steps
      is not a positive integer, tol is not a non-negative number, keep_path
      is not a bool, or the stochastic arguments do not fit (see
      ``data``..``eval_every``: a missing key, a batch size out of range,
      leaves of different lengths, an evaluate that does not return a dict of
      scalars, tol with data), or a recorded curvature does not fit (with
      tol, a preconditioned sharpness without an adaptive optimizer's state,
      sharpness_iters not a positive integer).

  Example:
    >>> trace = minimize(lambda x: jnp.sum(x**2), optax.sgd(0.1),
    ...                  jnp.ones(3), steps=100, tol=1e-4)
    >>> bool(trace.converged)
    True
  """
  if tol is not None:
    given, tol = tol, _checks.real_scalar(tol)
    if tol is None or not math.isfinite(tol) or tol < 0:
      raise ValueError(
          f"tol must be None or a finite number >= 0, got {given!r}."
      )
  signature = _signature(f, optimizer, x0, steps, tol is not None, keep_path,
                         data, batch_size, key, evaluate, eval_every, record,
                         sharpness_iters)
  try:
    checked = None if signature is None else _CHECKED.get(signature)
  except TypeError:  # an argument that does not hash: checked every time
    signature = checked = None
  if checked is None:
    checked = _check_call(f, optimizer, x0, steps, tol, keep_path, data,
                          batch_size, key, evaluate, eval_every, record,
                          sharpness_iters)
    if signature is not None:
      _CHECKED[signature] = checked
      if len(_CHECKED) > _CHECKED_SIZE:
        _CHECKED.popitem(last=False)
  steps, keep_path, record, sharpness_iters, batch_size, every = checked
  if data is not None:
    data = jax.tree.map(jnp.asarray, data)
  return _minimize_jit(
      f,
      optimizer,
      x0,
      # The default float dtype: float64 under x64, so tol is not rounded.
      None if tol is None else jnp.asarray(tol, float),
      data,
      key,
      evaluate,
      steps=steps,
      has_tol=tol is not None,
      keep_path=keep_path,
      batch_size=batch_size,
      every=every,
      record=record,
      sharpness_iters=sharpness_iters,
  )
