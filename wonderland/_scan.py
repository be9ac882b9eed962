"""The loops that drive ``wonderland._loop.step``: chunks of steps as one scan.

``scan_steps`` runs steps t0 + 1..t0 + length of one run as one ``lax.scan``:
deterministic or on minibatches (``Feed``, ``objective``), with evaluations
and curvature probes every ``every`` steps (``evaluation_steps`` says which),
and, with a carry that holds a trace, writing the trace in place. Shared by
``wonderland.minimize``, ``wonderland.sweep`` (vmapped) and
``wonderland.batching.run_cells``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wonderland._loop import Carry
from wonderland._loop import curvatures
from wonderland._loop import probe_curvatures
from wonderland._loop import RECORDS
from wonderland._loop import step
from wonderland._loop import write

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
    can_move = jnp.bool_(True) if steps is None else t < steps
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
