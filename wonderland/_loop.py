"""The loop kernel that ``minimize`` and ``sweep`` share: one step of §1.3.

From x_{t-1} take the gradient g = grad f(x_{t-1}), let the optimizer pick the
update u_t = eta_t p_t, and step

    x_t = x_{t-1} + u_t.

``init_carry`` builds the loop state before step 1, ``step`` takes one step
(and checks the point it leaves), and ``finish`` checks the last point after
the loop (``wonderland._scan`` drives them, and turns stacked step records
into the trace's f(x_t), t = 1..steps). ``wonderland.minimize`` runs them in
one ``lax.scan`` or ``lax.while_loop``; ``wonderland.sweep`` runs them under
``jax.vmap`` over every grid point and seed, so that a sweep cell takes the
steps of the matching single run (the same arithmetic; the bits may differ
by float32 rounding between programs of different shapes, see
``wonderland.batching.run_cells``). A sweep's runs, and ``minimize``
without a tolerance, write f (and ||grad f||) into the carry as they step
(``init_carry``'s ``trace``), already shifted and masked, so no pass over
those records follows the loop; a sweep's values-only runs of a
deterministic f also keep no counters (``lean``).

Each step evaluates f and its gradient once, at x_{t-1}: they feed the update
u_t (the line searches receive them as ``value`` and ``grad``) and they check
x_{t-1}, the point the previous step reached; ``finish`` evaluates once more
to check x_steps. Besides x the loop carries only the optimizer state; a
step's three reductions (||grad f||, ||u_t||, <u_t, grad f>) take one pass,
and the new point is one elementwise select, where(ok, x + u, x).

Divergence. Step t knows x_{t-1}, f(x_{t-1}), grad f(x_{t-1}) and u_t:

- if f(x_{t-1}) or grad f(x_{t-1}) is not finite, or f(x_{t-1}) exceeds
  ``DIVERGENCE_THRESHOLD``, the run stops AT x_{t-1};
- else if u_t is not finite, the run stops at x_{t-1}, without applying u_t;
- else x_t = x_{t-1} + u_t.

"Finite" is judged from the trace's sums of squares ||grad f||^2 and
||u_t||^2 (no extra pass over memory), which are taken in at least float32.
So a gradient or update whose norm exceeds what the sum's dtype holds (about
1.8e19 in float32) counts as not finite, although each of its entries is.

A stop clears the carry's ``alive`` (the result's ``diverged`` is its
negation) and the run makes no further progress (the optimizer state is not
rolled back: it is never used again). No non-finite update is ever applied.
Nothing raises, and runs batched with ``jax.vmap`` stay independent.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wonderland._sums import sums as _sums
from wonderland.landscape import lanczos

PyTree = Any

# A value above this (or a non-finite value, gradient or update) is divergence.
DIVERGENCE_THRESHOLD = 1e30

# What a trace can record per step; ``value`` always, the rest on request.
RECORDS = ("value", "grad_norm", "update_norm", "cos_angle", "step_size")
# What a trace can record at its evaluation steps, on request: the sharpness
# lambda_max of the Hessian at x_t, and the preconditioned one.
CURVATURES = lanczos.CURVATURES
# Records that need the step's sums over g and u_t (and the full check).
_NORMS = frozenset(("grad_norm", "update_norm", "cos_angle"))

# State fields read as the step size, in order of preference.
_STEP_SIZE_KEYS = ("step_size", "learning_rate")


class Carry(NamedTuple):
  """The loop state before step t: the point x_{t-1} and what is known of it.

  x_{t-1} counts as reached once f and grad f there are found healthy (at
  the start of step t, or by ``finish`` after the last step); if they are
  not, the run stops there. Whether a step arrived at x_{t-1} (x_0 is not
  arrived at; steps past the last do not move) follows from t, so the carry
  holds no flag for it.
  """

  params: PyTree
  opt_state: optax.OptState
  # The counters; None for a run that keeps none (see ``step``); num_steps
  # also None for a run whose caller needs no count (``init_carry``).
  # ``alive`` is False once the run has diverged (stopped at a bad point):
  # carried this way round, the step's own select on ``moved`` is the new
  # flag (``_alive``), which XLA:CPU then computes once for every kernel that
  # reads it; carried as ``diverged`` = ~moved, each kernel recomputed f.
  num_steps: jax.Array | None
  alive: jax.Array | None
  converged: jax.Array | None
  # One unit vector ~ (d,) per recorded curvature (the warm start of its
  # Lanczos iteration), or None.
  eigvecs: tuple[jax.Array, ...] | None = None
  # None, or the trace written in place as the steps go: record name ->
  # its values ~ (steps,) (see ``step``).
  trace: dict[str, jax.Array] | None = None
  # The records of u_t in the trace (||u_t||, the cosine, the step size),
  # held until x_t is checked, which decides whether they count.
  held: dict[str, jax.Array] | None = None


class Record(NamedTuple):
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


def healthy(value, grad_sq=None):
  """f (and ||grad f||^2 = ``grad_sq``) finite, f at most
  ``DIVERGENCE_THRESHOLD``."""
  ok = jnp.isfinite(value) & (value <= DIVERGENCE_THRESHOLD)
  return ok if grad_sq is None else ok & jnp.isfinite(grad_sq)


def _step_size(opt_state, dtype) -> jax.Array:
  for key in _STEP_SIZE_KEYS:
    found = optax.tree_utils.tree_get_all_with_path(opt_state, key)
    for _, leaf in found:
      if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.ndim(leaf) == 0:
        return jnp.asarray(leaf, dtype)
  return jnp.asarray(jnp.nan, dtype)


def _check_point(carry: Carry, value, grad_sq, tol, arrived):
  """Checks carry.params from f and ||grad f||^2 there.

  The checks read squared norms: a sum of squares is finite exactly where
  its square root is, and the root is then taken only where it is recorded
  (XLA fuses it into the trace's write instead of a kernel of its own).

  ``arrived``: whether a step arrived at carry.params (see ``step``).

  Returns:
    ``(carry, running, ok, counted)``: the carry with num_steps and
    converged updated (``alive`` is the caller's: ``_alive``), whether
    the run was running, whether the point is healthy and the run running
    (it may move unless it converged there), and whether the point now
    counts as reached (ok and arrived at by a step: its records belong to
    the trace).
  """
  running = carry.alive & ~carry.converged
  ok = running & healthy(value, grad_sq)
  converged = carry.converged
  if tol is not None:
    converged = converged | (ok & (jnp.sqrt(grad_sq) <= tol))
  counted = ok & arrived
  carry = carry._replace(converged=converged)
  if carry.num_steps is not None:
    carry = carry._replace(
        num_steps=carry.num_steps + counted.astype(jnp.int32))
  return carry, running, ok, counted


def _alive(alive, running, ok, move, moved, tol, can_move):
  """The flag ``alive`` (not diverged) after a check and a step.

  A running run stops (diverges) where it did not move, unless it holds
  (healthy and not moving: converged, or past the last step); a point
  checked with no step after it (``finish``) passes move = moved = False.
  Without a tol and with every step moving (``can_move`` the Python True),
  nothing holds and a run that is not running has not moved, so the flag is
  ``moved`` itself: no kernel of its own (benchmarks/README.md: spelled
  where(running, ~moved, diverged) as a divergence flag, a 2-D full-trace
  sweep took 1.3x as long; spelled diverged | (running & ~moved), 1.2-1.5x
  more again).
  """
  if tol is None and can_move is True:
    return moved
  holds = ok & ~move
  return jnp.where(running, moved | holds, alive)


# Records of the point x_{t-1} a step checks; the others are records of u_t.
_POINT_RECORDS = ("value", "grad_norm")


@jax.custom_batching.custom_vmap
def _put(buffer, value, slot):
  """buffer with buffer[slot] = value (slot clamped into range)."""
  return jax.lax.dynamic_update_index_in_dim(buffer, value, slot, 0)


@_put.def_vmap
def _put_batched(axis_size, in_batched, buffer, value, slot):
  """Runs that share a slot write one column in place.

  jax batches a dynamic update slice as a scatter, which XLA lowers to an
  update guarded by a bounds check that reads the old column: scalar
  kernels in every step, and, after the loop, a copy of the whole trace.
  The same slot for every run is one dynamic update slice of the batch.
  """
  buffer_batched, value_batched, slot_batched = in_batched
  if slot_batched:
    return jax.vmap(_put.fun, in_axes=(0 if buffer_batched else None,
                                       0 if value_batched else None,
                                       0))(buffer, value, slot), True
  if not buffer_batched:
    buffer = jnp.broadcast_to(buffer, (axis_size, *buffer.shape))
  if not value_batched:
    value = jnp.broadcast_to(value, (axis_size, *jnp.shape(value)))
  return jax.lax.dynamic_update_index_in_dim(buffer, value, slot, 1), True


def write(carry: Carry, rec, slot, kept, advance=True) -> tuple[Carry, Any]:
  """Writes traced records at ``slot``, NaN where not ``kept``.

  Step t checks x_{t-1} (``kept``: it counts) and writes its f and
  ||grad f|| at x_{t-1}, and the held records of u_{t-1}, the step that led
  there, to slot t - 2; it then holds its own records of u_t (``advance``:
  not for a step past the last, which does not move).
  """
  if carry.trace is None:
    return carry, rec
  trace, fields, held = {}, {}, dict(carry.held or {})
  for name, buffer in carry.trace.items():
    point = name in _POINT_RECORDS
    value = getattr(rec, name) if point else carry.held[name]
    value = jnp.where(kept, value, jnp.nan).astype(buffer.dtype)
    trace[name] = _put(buffer, value, slot)
    if not point and getattr(rec, name) is not None:
      held[name] = jnp.where(advance, getattr(rec, name).astype(buffer.dtype),
                             carry.held[name])
    fields[name] = None
  return (carry._replace(trace=trace, held=held or None),
          rec._replace(**fields))


def curvatures(record) -> tuple[str, ...]:
  """The names of ``CURVATURES`` in record."""
  return tuple(name for name in CURVATURES if name in record)


def init_carry(optimizer, x0, record=RECORDS, trace=None,
               counters="all") -> Carry:
  """The loop state before step 1; shared with ``wonderland.sweep``.

  Args:
    optimizer: the transformation.
    x0: the initial point.
    record: what the steps record.
    trace: None (``_scan.scan_steps`` returns the records), or ``(steps,
      dtype)``: the carry holds the trace f(x_t) (and ||grad f(x_t)|| if
      recorded), t = 1..steps, written in place (see ``step``).
    counters: ``"all"``; ``"flags"``, no step count (num_steps None) for a
      run without tol whose caller needs none (a sweep's: with a trace, the
      last point counts iff the run never stopped); or ``"none"``, no
      counters at all (num_steps, alive, converged None), only with a
      trace, for the runs ``lean`` allows.
  """
  if counters not in ("all", "flags", "none"):
    raise ValueError(f"counters must be 'all', 'flags' or 'none', got "
                     f"{counters!r}.")
  flags = counters != "none"
  false = jnp.bool_(False)
  names = curvatures(record)
  buffers = held = None
  if trace is not None:
    buffers = {name: jnp.full(trace[0], jnp.nan, trace[1])
               for name in RECORDS if name in record}
    held = {name: jnp.asarray(jnp.nan, trace[1])
            for name in buffers if name not in _POINT_RECORDS} or None
  return Carry(
      params=x0,
      opt_state=optimizer.init(x0),
      num_steps=jnp.zeros((), jnp.int32) if counters == "all" else None,
      alive=jnp.bool_(True) if flags else None,
      converged=false if flags else None,
      eigvecs=tuple(lanczos.start_vector(x0) for _ in names) or None,
      trace=buffers,
      held=held,
  )


def step(f, optimizer, carry: Carry, can_move, arrived, tol,
         record=RECORDS):
  """Checks x_{t-1} and takes the step x_t = x_{t-1} + u_t from it.

  Step t evaluates f and grad f once, at x_{t-1}: they check x_{t-1} (the
  point step t-1 reached; x_0 at t = 1), mark convergence, and feed the
  optimizer's update u_t. If f or grad f is not finite at x_{t-1} (or f is
  huge), or u_t is not finite, the run stops at x_{t-1} and is frozen from
  then on. The optimizer state is not frozen: it is never used again once the
  run stops moving.

  What is not recorded is not computed. Without any of ``grad_norm``,
  ``update_norm`` and ``cos_angle`` in ``record`` the step takes no sums over
  g and u_t, and divergence is judged from f alone: a non-finite gradient or
  update is applied, and the run stops at the next point, where f is not
  finite (one step later than the full check, at the point that blew up).

  The new point is one elementwise expression, where(moved, x + u, x), that
  XLA fuses with the add and writes over x in place.

  A carry with a ``trace`` gets step t's records of x_{t-1} where x_{t-1}
  counts as reached (NaN elsewhere), written in place one slot back by
  ``_scan.scan_steps``, and ``finish`` writes the last point's: the trace
  comes out of the loop shifted and masked, with no pass over it after the
  loop. A carry without counters (values-only records, f deterministic, no
  tol: ``lean``) takes the step
  x_t = where(f(x_{t-1}) healthy, x_{t-1} + u_t, x_{t-1}) and counts a point
  as reached where f is healthy there: a stopped run stays where f blew up,
  and f stays bad there, so its records are NaN from the stop on, as the
  counters would have made them.

  Shared by ``minimize``, ``wonderland.sweep`` (under ``jax.vmap``) and
  ``wonderland.batching.run_cells``: a sweep cell runs the same step
  function as the matching single run.

  Args:
    f: the objective.
    optimizer: a ``GradientTransformationExtraArgs``.
    carry: the loop state before step t.
    can_move: a bool scalar, False to make the step only check x_{t-1}; or
      the Python True where every step may move (a cheaper divergence flag).
    arrived: a bool scalar: whether step t - 1 arrived at x_{t-1}, that is,
      t > 1 and step t - 1 could move (a stopped run's flags say the rest):
      only then does x_{t-1} count as reached.
    tol: None, or the tolerance on ||grad f(x_{t-1})|| that marks
      convergence (needs ``grad_norm`` in ``record``).
    record: the names of ``RECORDS`` to record; ``value`` always is.

  Returns:
    ``(carry, record, counted)``: the state before step t + 1, step t's
    ``Record`` (None for what is not recorded), and whether x_{t-1} counts
    as reached.
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
  dtype = jnp.result_type(value)
  nan = jnp.asarray(jnp.nan, dtype)
  if _NORMS.isdisjoint(record):
    if carry.alive is None:
      may_move = counted = healthy(value, None)
      moved = may_move & can_move
    else:
      carry, running, ok, counted = _check_point(carry, value, None, tol,
                                                 arrived)
      moved = ok & ~carry.converged & can_move
      carry = carry._replace(alive=_alive(
          carry.alive, running, ok, moved, moved, tol, can_move))
    params = jax.tree.map(
        lambda x, u: jnp.where(moved, (x + u).astype(x.dtype), x),
        carry.params, updates,
    )
    step_size = None
    if "step_size" in record:
      step_size = jnp.where(moved, _step_size(opt_state, dtype), nan)
    rec = Record(value, None, None, None, step_size, params)
    carry = carry._replace(params=params, opt_state=opt_state)
    return carry, rec, counted
  uu, ug, gg = _sums(updates, grad)
  grad_norm, update_norm = jnp.sqrt(gg), jnp.sqrt(uu)
  carry, running, ok, counted = _check_point(carry, value, gg, tol, arrived)
  move = ok & ~carry.converged & can_move
  moved = move & jnp.isfinite(uu)
  alive = _alive(carry.alive, running, ok, move, moved, tol, can_move)
  params = jax.tree.map(
      lambda x, u: jnp.where(moved, (x + u).astype(x.dtype), x),
      carry.params, updates,
  )
  # cos of the angle between u_t and -grad f(x_{t-1}); NaN if either is zero.
  denom = update_norm * grad_norm
  cos_angle = jnp.where(
      denom > 0, -ug / jnp.where(denom > 0, denom, 1.0), jnp.nan
  )
  keep = lambda name, x: x if name in record else None
  rec = Record(
      value=value,
      grad_norm=keep("grad_norm", grad_norm.astype(dtype)),
      update_norm=keep("update_norm",
                       jnp.where(moved, update_norm, nan).astype(dtype)),
      cos_angle=keep("cos_angle",
                     jnp.where(moved, cos_angle, nan).astype(dtype)),
      step_size=keep("step_size",
                     jnp.where(moved, _step_size(opt_state, dtype), nan)),
      params=params,
  )
  carry = carry._replace(params=params, opt_state=opt_state, alive=alive)
  return carry, rec, counted


def finish(f, carry: Carry, tol, record=RECORDS, arrived=True):
  """Checks the last point after the loop; shared with ``wonderland.sweep``.

  ``arrived``: False where the loop went past the last step and so has
  already checked (and counted) the last point.

  Returns:
    ``(carry, value, grad_norm)``: the final state (``alive`` cleared if f
    or grad f is not finite at the last point), and f and ||grad f|| there
    (None, and f alone checked, when ``record`` holds no norm). With a
    ``trace``, f and ||grad f|| at x_steps fill its last slot and are
    returned NaN unless x_steps counts as reached, that is, unless the run
    took every step (see ``step``).
  """
  if carry.alive is None:
    value = f(carry.params)
    kept = healthy(value)
    grad_norm = None
  else:
    if _NORMS.isdisjoint(record):
      value, grad_sq, grad_norm = f(carry.params), None, None
    else:
      value, grad = jax.value_and_grad(f)(carry.params)
      grad_sq = _sums(grad, grad)[0]
      grad_norm = jnp.sqrt(grad_sq).astype(jnp.result_type(value))
    carry, running, ok, _ = _check_point(carry, value, grad_sq, tol,
                                         arrived)
    no = jnp.bool_(False)  # no step follows the last point
    carry = carry._replace(alive=_alive(
        carry.alive, running, ok, no, no, tol, no))
  if carry.alive is not None and carry.trace is not None:
    if carry.num_steps is None:  # no tol: x_steps counts iff no stop
      kept = carry.alive
    else:
      kept = carry.num_steps == carry.trace["value"].shape[0]
  if carry.trace is None:
    return carry, value, grad_norm
  last = Record(value, grad_norm, None, None, None, None)
  carry, _ = write(carry, last, -1, kept)
  nan = jnp.asarray(jnp.nan, jnp.result_type(value))
  keep = lambda a: None if a is None else jnp.where(kept, a, nan)
  return carry, keep(value), keep(grad_norm)


def lean(record, tol, stochastic: bool) -> bool:
  """Whether a run may keep no counters (``init_carry``'s ``counters``).

  With values-only records, no tol and a deterministic f, a stopped run's f
  stays bad where it stopped, so health at each point says which points
  count (see ``step``); a minibatch loss changes with the batch, and the
  full check also stops on a bad gradient or update, which f does not show.
  """
  return tol is None and not stochastic and _NORMS.isdisjoint(record)
