"""The compiled program of ``wonderland.sweep``: every run's loop, vmapped.

``sweep`` (in ``wonderland._sweep``) lays the runs out and calls
``sweep_jit``: one program from x0 to the laid-out result, sharded over the
devices. Its steps run in chunks, a ``lax.scan`` over the vmapped chunk with
a progress line from the host after each (``jax.debug.callback``, compiled
in only where absl would log it); in blocks, each device's runs go B at a
time. Every run writes its trace in place as it steps
(``wonderland._loop.step``), so no pass over the records follows the loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wonderland import _grid
from wonderland import _loop
from wonderland import _scan
from wonderland.landscape import preconditioning

# The mesh axis the runs are sharded over (also batching.run_cells' blocks).
AXIS = "runs"


def _constrain(tree, sharding):
  return jax.tree.map(
      lambda a: jax.lax.with_sharding_constraint(a, sharding), tree
  )


def _map_blocks(one, sharding, block, runs, shared=()):
  """``jax.vmap(one)`` over the leading run axis of ``runs``' leaves, in
  blocks: each device computes its runs ``block`` at a time, one block after
  another (``jax.lax.map`` of the vmapped block under a ``jax.shard_map``),
  whatever the number of runs or devices.

  ``one(*run, *shared)``: ``shared`` (replicated scalars, the data) is the
  same for every run.
  """

  def local(runs, shared):
    n = jax.tree.leaves(runs)[0].shape[0]
    blocks = jax.tree.map(
        lambda a: a.reshape(n // block, block, *a.shape[1:]), runs)
    out = jax.lax.map(
        lambda b: jax.vmap(lambda *run: one(*run, *shared))(*b), blocks)
    return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

  # check_vma=False: the loop's fresh scalars (step counts, flags) are not
  # marked as varying over the device axis, as the runs' values are.
  return jax.shard_map(local, mesh=sharding.mesh, in_specs=(P(AXIS), P()),
                       out_specs=P(AXIS), check_vma=False)(runs, shared)


def _feed(spec, data, key_data):
  """The ``Feed`` of one run from its raw key data, or None."""
  if spec is None:
    return None
  batch_size, impl = spec
  return _scan.Feed(data, jax.random.wrap_key_data(key_data, impl=impl),
                    batch_size)


def _precondition(fixed, hp):
  """opt_state -> P's diagonal, with the run's eps and b2 where it has them."""
  given = {**dict(fixed), **hp}
  return lambda state: preconditioning.preconditioner_diag(
      state, eps=given.get("eps"), b2=given.get("b2"))


def _init_one(make_optimizer, fixed, record, trace, counters):
  """One run's loop state before step 1: ``(hp, x0) -> carry``, with the
  trace, ``(steps, f's dtype)``, in place, and ``counters`` as
  ``wonderland._loop.init_carry`` takes them (a sweep keeps no step count)."""

  def one(hp, x):
    opt = _grid.traced_optimizer(make_optimizer, fixed, hp)
    return _loop.init_carry(opt, x, record, trace, counters)

  return one


def _chunk_one(f, make_optimizer, fixed, chunk, spec, evaluate, every, record,
               sharpness_iters, exact):
  """One run's ``chunk`` steps: ``(hp, c, key_data, t0, steps, data) ->
  (c, evals)``.

  ``exact``: the chunks end at ``steps`` exactly, so no step is masked (the
  loop then does not compare t with ``steps``).
  """

  def one(hp, c, key_data, t0, steps, data):
    opt = _grid.traced_optimizer(make_optimizer, fixed, hp)
    c, _, evals = _scan.scan_steps(
        f, opt, c, t0, chunk, steps=None if exact else steps,
        feed=_feed(spec, data, key_data),
        evaluate=evaluate, every=every, record=record,
        sharpness_iters=sharpness_iters,
        precondition=_precondition(fixed, hp),
    )
    return c, evals

  return one


def _finish_one(f, spec, record, exact):
  """One run's last check: ``(c, key_data, steps, data) -> (c, f)``, f at
  the last point, NaN unless the run took every step. Chunks that overshoot
  (not ``exact``) have already checked the last point."""

  def one(c, key_data, steps, data):
    last = _scan.objective(f, _feed(spec, data, key_data), steps)
    c, value, _ = _loop.finish(last, c, None, record, arrived=exact)
    return c, value

  return one


def _result_one(c, value, evals, eval_steps):
  """One run's result from its final carry: ``(values, grad_norms, params,
  diverged, evals)``.

  The trace is in the carry, NaN after a stop. A run diverged iff it did not
  take every step (a sweep has no tol): iff f at its last point, from
  ``finish``, is NaN. An evaluation after step s counts iff x_s does: iff
  the trace's f(x_s) is not NaN.
  """
  values = c.trace["value"]
  if evals is not None:
    ran = ~jnp.isnan(values[eval_steps - 1])
    evals = {name: jnp.where(ran, e[:eval_steps.shape[0]], jnp.nan)
             for name, e in evals.items()}
  return (values, c.trace.get("grad_norm"), c.params, jnp.isnan(value),
          evals)


def _out_sharding(shape, mesh, replicate):
  n = mesh.devices.size
  if not replicate:
    for axis, size in enumerate(shape):
      if size % n == 0:
        return NamedSharding(mesh, P(*([None] * axis), AXIS))
  return NamedSharding(mesh, P())


def _place(out, layout, mesh, replicate):
  """Drops the padding runs and lays the run axis out as the grid's."""
  n_runs, lead = layout

  def place(a):
    a = a[:n_runs].reshape(*lead, *a.shape[1:])
    return jax.lax.with_sharding_constraint(
        a, _out_sharding(a.shape, mesh, replicate)
    )

  return jax.tree.map(place, out)


def _log_progress(n_runs, chunks, chunk, counts):
  """Logs one progress line; counts = (steps done, steps, runs diverged)."""
  done, steps, diverged = (int(c) for c in counts)
  logging.info("sweep: %d/%d steps of %d runs (%d chunks of %d), %d diverged.",
               done, steps, n_runs, chunks, chunk, diverged)


def _sweep_program(
    f, make_optimizer, fixed, chunk, sharding, spec, evaluate, every, record,
    sharpness_iters, exact, trace, counters, block, chunks, progress, layout,
    replicate, hparams, x0, steps, data, keys, eval_steps, real,
):
  """Whole runs, x0 to result, in one program.

  Without ``block``: every run at once, ``chunks`` chunks of ``chunk``
  steps (a ``lax.scan`` over the vmapped chunk), with ``progress`` a progress
  line after each: one host callback, the counts its one operand.
  With ``block`` = B: B runs at a time on each device, all steps in one
  chunk. One program also keeps a blocked run's bits: with the optimizer
  state handed in from another program, XLA compiled the steps into other
  arithmetic on one device than on several (benchmarks/README.md); built in
  the program, it does not.
  """
  init = _init_one(make_optimizer, fixed, record, trace, counters)
  run = _chunk_one(f, make_optimizer, fixed, chunk, spec, evaluate, every,
                   record, sharpness_iters, exact)
  finish = _finish_one(f, spec, record, exact)
  zero = jnp.zeros((), jnp.int32)

  if block is not None:
    def one(hp, x, key_data, steps, data, eval_steps):
      c, evals = run(hp, init(hp, x), key_data, zero, steps, data)
      c, value = finish(c, key_data, steps, data)
      return _result_one(c, value, evals, eval_steps)

    out = _map_blocks(one, sharding, block, (hparams, x0, keys),
                      (steps, data, eval_steps))
    return _place(out, layout, sharding.mesh, replicate)

  carry = _constrain(jax.vmap(init)(hparams, x0), sharding)

  def body(c, i):
    first = i * chunk
    c, evals = jax.vmap(
        lambda hp, c, k: run(hp, c, k, first, steps, data))(hparams, c, keys)
    c = _constrain(c, sharding)
    if progress:
      # A stopped run's trace is NaN from its stop on: its latest slot says
      # (not the last slot, which steps past the last may have written and
      # only the last check settles).
      values = c.trace["value"]
      latest = jnp.clip(first + chunk - 2, 0, max(values.shape[1] - 2, 0))
      stopped = jnp.isnan(
          jax.lax.dynamic_index_in_dim(values, latest, 1, keepdims=False))
      counts = jnp.stack([jnp.minimum(first + chunk, steps), steps,
                          jnp.sum(stopped & real, dtype=jnp.int32)])
      jax.debug.callback(
          functools.partial(_log_progress, layout[0], chunks, chunk), counts,
          ordered=False)
    return c, evals

  carry, evals = jax.lax.scan(body, carry, jnp.arange(chunks, dtype=jnp.int32))
  if evals is not None:  # ~ (chunks, runs, evaluations per chunk)
    evals = jax.tree.map(
        lambda e: jnp.moveaxis(e, 0, 1).reshape(e.shape[1], -1), evals)
  carry, value = jax.vmap(lambda c, k: finish(c, k, steps, data))(carry, keys)
  out = jax.vmap(_result_one, in_axes=(0, 0, 0, None))(
      carry, value, evals, eval_steps)
  return _place(out, layout, sharding.mesh, replicate)


sweep_jit = jax.jit(_sweep_program, static_argnums=tuple(range(18)))
