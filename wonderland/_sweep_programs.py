"""The compiled programs of ``wonderland.sweep``: every run's loop, vmapped.

``sweep`` (in ``wonderland._sweep``) lays the runs out and calls these: the
init program, the chunks of steps and the last check, each vmapped over the
runs and sharded over the devices; or, with ``block_size``, one program per
block of whole runs (``_blocked_program``); then ``_assemble_program``, which
shifts the records to the trace's f(x_t) and lays out the grid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wonderland import _grid
from wonderland import _loop
from wonderland.landscape import preconditioning

# The mesh axis the runs are sharded over (also batching.run_cells' blocks).
AXIS = "runs"


def _constrain(tree, sharding):
  return jax.tree.map(
      lambda a: jax.lax.with_sharding_constraint(a, sharding), tree
  )


def _map_runs(one, sharding, block, runs, shared=()):
  """``jax.vmap(one)`` over the leading run axis of ``runs``' leaves.

  ``one(*run, *shared)``: ``shared`` (replicated scalars, the data) is the
  same for every run. With ``block`` = B, each device computes its runs B at
  a time, one block after another (``jax.lax.map`` of the vmapped block
  under a ``jax.shard_map``), whatever the number of runs or devices.
  """
  if block is None:
    return jax.vmap(lambda *run: one(*run, *shared))(*runs)

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
  return _loop.Feed(data, jax.random.wrap_key_data(key_data, impl=impl),
                    batch_size)


def _precondition(fixed, hp):
  """opt_state -> P's diagonal, with the run's eps and b2 where it has them."""
  given = {**dict(fixed), **hp}
  return lambda state: preconditioning.preconditioner_diag(
      state, eps=given.get("eps"), b2=given.get("b2"))


def _init_one(f, make_optimizer, fixed, record, trace_steps):
  """One run's loop state before step 1: ``(hp, x0) -> carry``.

  ``trace_steps``: None, or the steps of a run that writes its trace in
  place (``wonderland._loop.in_place``).
  """

  def one(hp, x):
    opt = _grid.traced_optimizer(make_optimizer, fixed, hp)
    trace = None
    if trace_steps is not None:
      trace = (trace_steps, jax.eval_shape(f, x).dtype)
    return _loop.init_carry(opt, x, record, trace)

  return one


def _chunk_one(f, make_optimizer, fixed, chunk, spec, evaluate, every, record,
               sharpness_iters, exact):
  """One run's ``chunk`` steps: ``(hp, c, key_data, t0, steps, data) ->
  (c, (values, grad_norms, evals))``.

  ``exact``: the chunks end at ``steps`` exactly, so no step is masked (the
  loop then does not compare t with ``steps``).
  """

  def one(hp, c, key_data, t0, steps, data):
    opt = _grid.traced_optimizer(make_optimizer, fixed, hp)
    c, records, evals = _loop.scan_steps(
        f, opt, c, t0, chunk, steps=None if exact else steps,
        feed=_feed(spec, data, key_data),
        evaluate=evaluate, every=every, record=record,
        sharpness_iters=sharpness_iters,
        precondition=_precondition(fixed, hp),
    )
    return c, (records.value, records.grad_norm, evals)

  return one


def _finish_one(f, spec, record):
  """One run's last check: ``(c, key_data, steps, data) -> (c, f, ||g||)``."""

  def one(c, key_data, steps, data):
    last = _loop.objective(f, _feed(spec, data, key_data), steps)
    c, value, grad_norm = _loop.finish(last, c, None, record)
    return c, value, grad_norm if "grad_norm" in record else None

  return one


def _init_program(f, make_optimizer, fixed, sharding, record, trace_steps,
                  hparams, x0):
  one = _init_one(f, make_optimizer, fixed, record, trace_steps)
  return _constrain(jax.vmap(one)(hparams, x0), sharding)


def _chunk_program(
    f, make_optimizer, fixed, chunk, sharding, spec, evaluate, every, record,
    sharpness_iters, exact, hparams, carry, real, t0, steps, data, keys,
):
  """``chunk`` steps of every run, t0..t0+chunk-1; steps >= ``steps`` masked.

  Step t records f and ||grad f|| at x_{t-1} (see ``wonderland._loop.step``);
  ``_assemble_program`` shifts them to the trace's f(x_t). With ``evaluate``,
  ``chunk`` is a multiple of ``every`` and the runs are evaluated after each
  block of ``every`` steps.
  """
  one = _chunk_one(f, make_optimizer, fixed, chunk, spec, evaluate, every,
                   record, sharpness_iters, exact)
  carry, (values, grad_norms, evals) = _map_runs(
      one, sharding, None, (hparams, carry, keys), (t0, steps, data))
  replicated = NamedSharding(sharding.mesh, P())
  diverged = carry.diverged
  if carry.trace is not None:
    # A stopped run records NaN from its stop on (_loop.step): its latest
    # slot (the last point, checked only by the last check, aside).
    last = jnp.clip(t0 + chunk - 2, 0, carry.trace.shape[1] - 1)
    diverged = jnp.isnan(
        jax.lax.dynamic_index_in_dim(carry.trace, last, 1, keepdims=False))
  num_diverged = jax.lax.with_sharding_constraint(
      jnp.sum(diverged & real, dtype=jnp.int32), replicated
  )
  next_t0 = jax.lax.with_sharding_constraint(t0 + chunk, replicated)
  return (_constrain(carry, sharding), _constrain(values, sharding),
          _constrain(grad_norms, sharding), _constrain(evals, sharding),
          num_diverged, next_t0)


def _finish_program(f, sharding, spec, record, carry, steps, data, keys):
  """Checks every run's last point (``wonderland._loop.finish``)."""
  one = _finish_one(f, spec, record)
  carry, value, grad_norm = _map_runs(one, sharding, None, (carry, keys),
                                      (steps, data))
  return _constrain((carry, value, grad_norm), sharding)


def _trace_one(steps):
  """One run's trace from its step records: ``(values, grad_norms, evals,
  last_value, last_grad_norm, carry, eval_steps) -> (values, grad_norms,
  params, diverged, evals)``.

  Shifts the records to f(x_t) and masks what follows a stop
  (``wonderland._loop.shift_records``); a trace written in place
  (``carry.trace``) is that already, NaN from the stop on.
  """

  def one(values, grad_norms, evals, last_value, last_grad_norm, carry,
          eval_steps):
    if carry.trace is None:
      diverged = carry.diverged
      values, grad_norms, _ = _loop.shift_records(
          values, grad_norms, last_value, last_grad_norm, carry.num_steps,
          steps)
      if evals is not None:
        ran = eval_steps <= carry.num_steps
    else:
      values = carry.trace
      diverged = jnp.isnan(last_value)  # NaN where not healthy (finish)
      if evals is not None:
        ran = ~jnp.isnan(values[eval_steps - 1])
    if evals is not None:
      evals = {name: jnp.where(ran, e[:eval_steps.shape[0]], jnp.nan)
               for name, e in evals.items()}
    return values, grad_norms, carry.params, diverged, evals

  return one


def _out_sharding(shape, mesh, replicate):
  n = mesh.devices.size
  if not replicate:
    for axis, size in enumerate(shape):
      if size % n == 0:
        return NamedSharding(mesh, P(*([None] * axis), AXIS))
  return NamedSharding(mesh, P())


def _place(out, layout, mesh, replicate):
  """Drops the padding runs and lays the run axis out as the grid's."""
  n_runs, lead, _ = layout

  def place(a):
    a = a[:n_runs].reshape(*lead, *a.shape[1:])
    return jax.lax.with_sharding_constraint(
        a, _out_sharding(a.shape, mesh, replicate)
    )

  return jax.tree.map(place, out)


def _whole_program(
    f, make_optimizer, fixed, chunk, sharding, spec, evaluate, every, record,
    sharpness_iters, exact, block, layout, replicate, trace_steps, hparams,
    x0, t0, steps, data, keys, eval_steps,
):
  """Whole runs, x0 to trace, in one program: a sweep of one chunk, or in
  blocks of ``block`` runs (None: every run at once).

  Each run is init, every step, the last check and its trace
  (``trace_steps``: see ``_init_one``). One program also keeps a blocked
  run's bits: with the optimizer state handed in from another program, XLA
  compiled the steps into other arithmetic on one device than on several
  (benchmarks/README.md); built in the program, it does not.
  """
  init = _init_one(f, make_optimizer, fixed, record, trace_steps)
  steps_ = _chunk_one(f, make_optimizer, fixed, chunk, spec, evaluate, every,
                      record, sharpness_iters, exact)
  finish = _finish_one(f, spec, record)
  trace = _trace_one(layout[2])

  def one(hp, x, key_data, t0, steps, data, eval_steps):
    c, (values, grad_norms, evals) = steps_(hp, init(hp, x), key_data, t0,
                                            steps, data)
    c, value, grad_norm = finish(c, key_data, steps, data)
    return trace(values, grad_norms, evals, value, grad_norm, c, eval_steps)

  out = _map_runs(one, sharding, block, (hparams, x0, keys),
                  (t0, steps, data, eval_steps))
  return _place(out, layout, sharding.mesh, replicate)


def _assemble_program(layout, mesh, replicate, values, grad_norms, evals,
                      last_value, last_grad_norm, carry, eval_steps):
  """Concatenates the chunks, makes every run's trace, lays out the grid."""
  cat = lambda chunks: jax.tree.map(
      lambda *a: jnp.concatenate(a, axis=1), *chunks)
  out = jax.vmap(_trace_one(layout[2]), in_axes=(0, 0, 0, 0, 0, 0, None))(
      cat(values), cat(grad_norms), cat(evals), last_value, last_grad_norm,
      carry, eval_steps)
  return _place(out, layout, mesh, replicate)


init_jit = jax.jit(_init_program, static_argnums=(0, 1, 2, 3, 4, 5))
chunk_jit = jax.jit(
    _chunk_program, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    donate_argnums=(12,),
)
finish_jit = jax.jit(_finish_program, static_argnums=(0, 1, 2, 3))
whole_jit = jax.jit(_whole_program, static_argnums=tuple(range(15)))
assemble_jit = jax.jit(_assemble_program, static_argnums=(0, 1, 2))
