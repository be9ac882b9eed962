"""The loops that drive ``wonderland._loop.step``: chunks of steps as one scan.

``scan_steps`` runs steps t0 + 1..t0 + length of one run as one ``lax.scan``:
deterministic or on minibatches (``Feed``, ``objective``), with evaluations
and curvature probes every ``every`` steps (``evaluation_steps`` says which),
and, with a carry that holds a trace, writing the trace in place. Shared by
``wonderland.minimize``, ``wonderland.sweep`` (vmapped) and
``wonderland.batching.run_cells``. ``scan_run`` and ``while_run`` are
``minimize``'s two runs: of fixed length, and until a tolerance;
``probe_curvatures`` takes the in-trace sharpness at an evaluation, and
``shift_records`` turns stacked step records into the trace.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wonderland._loop import Carry
from wonderland._loop import curvatures
from wonderland._loop import init_carry
from wonderland._loop import Record
from wonderland._loop import RECORDS
from wonderland._loop import step
from wonderland._loop import write
from wonderland.landscape import lanczos
from wonderland.landscape import preconditioning

PyTree = Any


class Feed(NamedTuple):
  """Where a stochastic run's minibatches come from.

  Step t (1-based) evaluates f(x_{t-1}, B_{t-1}), B_i being
  ``wonderland.data.minibatch(data, key, i, batch_size)``: a pure function of
  the key and the step, so the loop carries no sampler state.
  """

  data: PyTree
  key: jax.Array
  batch_size: int


def objective(f, feed: Feed | None, t):
  """f itself, or x -> f(x, B_t), the loss on the minibatch of index t."""
  if feed is None:
    return f
  from wonderland import data as data_lib  # pylint: disable=g-import-not-at-top

  batch = data_lib.minibatch(feed.data, feed.key, t, feed.batch_size)
  return lambda x: f(x, batch)


def scan_steps(f, optimizer, carry: Carry, t0, length: int, *, steps=None,
               feed=None, evaluate=None, every=None, keep_params=False,
               record=RECORDS, sharpness_iters=None, precondition=None):
  """Steps t + 1 for t = t0..t0 + length - 1, as one ``lax.scan``.

  Args:
    f: the objective: f(x), or f(x, batch) with a ``feed``.
    optimizer: a ``GradientTransformationExtraArgs``.
    carry: the loop state before the first of these steps.
    t0: the 0-based index of the first step, an int32 scalar.
    length: the number of steps, a static int.
    steps: None, or the number of steps of the run: steps with t >= steps
      only check their point (a sweep's last chunk overshoots).
    feed: None for a deterministic run, else the ``Feed`` of the minibatches.
    evaluate: None, or a function of the params returning a dict of scalars,
      evaluated after every ``every`` steps (``length`` a multiple of it).
    every: the evaluation period, a static int; None for no evaluations.
    keep_params: keep x_t in the records (for ``Trace.path``).
    record: what ``step`` records, and the ``CURVATURES`` probed with the
      evaluations (``probe_curvatures``, on the objective of the next step).
    sharpness_iters: the Hessian-vector products per curvature probe.
    precondition: opt_state -> P's diagonal, for the preconditioned
      sharpness.

  Returns:
    ``(carry, records, evals)``: the state after the steps, the ``Record`` of
    every step (leaves ~ (length, ...)), and the evaluations (name ->
    ~ (length // every,)) or None.
  """
  def body(c, t):
    # Step t + 1 checks x_t, which step t arrived at if t >= 1 and t - 1 <
    # steps (a step past the last does not move).
    can_move = True if steps is None else t < steps
    arrived = t >= 1 if steps is None else (t >= 1) & (t <= steps)
    c, rec, counted = step(objective(f, feed, t), optimizer, c, can_move,
                           arrived, None, record)
    if c.trace is not None:
      # Step t + 1 records x_t, the trace's slot t - 1. Step 1's x_0 goes to
      # slot 0, which step 2 overwrites; a step past the last (t >= steps)
      # writes to the last slot, which ``finish`` overwrites.
      c, rec = write(c, rec, jnp.clip(t - 1, 0, c.trace["value"].shape[0]
                                       - 1), counted, can_move)
    return c, rec if keep_params else rec._replace(params=None)

  def run(c, first, n):
    ts = first + jnp.arange(n, dtype=jnp.int32)
    return jax.lax.scan(body, c, ts)

  if every is None:
    carry, records = run(carry, t0, length)
    return carry, records, None

  def block(c, i):
    c, records = run(c, t0 + i * every, every)
    out = {} if evaluate is None else dict(evaluate(c.params))
    if curvatures(record):
      next_f = objective(f, feed, t0 + (i + 1) * every)
      c, probed = probe_curvatures(next_f, c, record, sharpness_iters,
                                   precondition)
      out.update(probed)
    return c, (records, out)

  carry, (records, evals) = jax.lax.scan(
      block, carry, jnp.arange(length // every, dtype=jnp.int32)
  )
  records = jax.tree.map(
      lambda a: a.reshape(length, *a.shape[2:]), records
  )
  return carry, records, evals


def evaluation_steps(steps: int, every: int) -> np.ndarray:
  """The steps after which a run evaluates: every, 2 every, ..., and steps."""
  ends = np.arange(every, steps + 1, every)
  if not ends.size or ends[-1] != steps:
    ends = np.append(ends, steps)
  return ends.astype(np.int32)


def scan_run(f, optimizer, x0, steps, keep_path, feed, evaluate, every,
             record, sharpness_iters, dtype):
  """``minimize``'s run of fixed length: all steps as scans; with
  evaluations, blocks of ``every`` then the rest.

  The recorded f, ||grad f||, ||u_t||, cosines and step sizes are written
  into the carry's trace as the steps go (``wonderland._loop.write``); the
  path, if kept, is stacked.
  """
  carry = init_carry(optimizer, x0, record, trace=(steps, dtype))
  kw = dict(feed=feed, keep_params=keep_path, record=record,
            sharpness_iters=sharpness_iters,
            precondition=preconditioning.preconditioner_diag)
  if every is None:
    carry, records, _ = scan_steps(f, optimizer, carry, 0, steps, **kw)
    return carry, records, None
  full = steps - steps % every
  parts, evals = [], []
  if full:
    carry, records, e = scan_steps(f, optimizer, carry, 0, full,
                                   evaluate=evaluate, every=every, **kw)
    parts.append(records)
    evals.append(e)
  if full < steps:
    rest = steps - full
    carry, records, e = scan_steps(f, optimizer, carry, full, rest,
                                   evaluate=evaluate, every=rest, **kw)
    parts.append(records)
    evals.append(e)
  concat = lambda *a: jnp.concatenate(a, axis=0)
  return (carry, jax.tree.map(concat, *parts),
          jax.tree.map(concat, *evals))


def while_run(f, optimizer, x0, steps, tol, keep_path, record):
  """``minimize``'s run with a tol: a ``lax.while_loop`` that stops when
  ||grad f(x_{t-1})|| <= tol (or a run stops, or after ``steps``), its
  records written at t - 1 into buffers of ``steps``."""
  carry = init_carry(optimizer, x0)
  # Step t is written at t - 1.
  nan = jnp.full((steps,), jnp.nan, jax.eval_shape(f, x0).dtype)
  path = None
  if keep_path:
    path = jax.tree.map(
        lambda a: jnp.full((steps, *jnp.shape(a)), jnp.nan, a.dtype), x0
    )
  buffers = Record(*(nan if name in record else None for name in RECORDS),
                   path)

  def cond(state):
    t, c, _ = state
    return (t < steps) & c.alive & ~c.converged

  def body(state):
    t, c, bufs = state
    c, rec, _ = step(f, optimizer, c, jnp.bool_(True), t >= 1, tol, record)
    rec = rec._replace(params=rec.params if keep_path else None)
    return t + 1, c, jax.tree.map(lambda b, r: b.at[t].set(r), bufs, rec)

  _, carry, recs = jax.lax.while_loop(
      cond, body, (jnp.zeros((), jnp.int32), carry, buffers)
  )
  return carry, recs


def probe_curvatures(f, carry: Carry, record, iters, precondition):
  """The recorded curvatures at x_t = carry.params, warm-started.

  Each is ``iters`` Lanczos steps from the Ritz vector the previous
  evaluation left in ``carry.eigvecs`` (``landscape.lanczos.warm_sharpness``).
  The preconditioned sharpness uses P = ``precondition(carry.opt_state)``:
  the P of the update u_t that led to x_t.

  Returns:
    ``(carry, {name: estimate})`` with the carry's vectors advanced.
  """
  out, vectors = {}, []
  for name, v in zip(curvatures(record), carry.eigvecs):
    p = None
    if name == "preconditioned_sharpness":
      p = precondition(carry.opt_state)
    out[name], v = lanczos.warm_sharpness(f, carry.params, v, iters, p)
    vectors.append(v)
  return carry._replace(eigvecs=tuple(vectors)), out


def shift_records(values, grad_norms, last_value, last_grad_norm, num_steps,
                  steps):
  """values[t-1] = f(x_t) from step records of x_{t-1} ~ (..., >= steps).

  Step t records f(x_{t-1}); dropping step 1's f(x_0) and appending f at the
  last point gives f(x_t) for t = 1..steps. Entries at and after num_steps
  (steps that did not run or reached a blown-up point) become NaN. Shared with
  ``wonderland.sweep``, where the arrays carry a leading run axis.
  grad_norms may be None (not recorded).
  """

  def shift(a, last):
    # a[..., 1:steps] followed by last, as a pad and a select (XLA:CPU fuses
    # them with the mask, where it would not fuse a concatenate).
    moved = jnp.pad(a[..., 1:steps], [(0, 0)] * (a.ndim - 1) + [(0, 1)])
    return jnp.where(jnp.arange(steps) == steps - 1, last[..., None], moved)

  mask = jnp.arange(steps) < num_steps[..., None]
  grad_norms = None if grad_norms is None else jnp.where(
      mask, shift(grad_norms, last_grad_norm), jnp.nan)
  return jnp.where(mask, shift(values, last_value), jnp.nan), grad_norms, mask
