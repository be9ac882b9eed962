"""Small runs, where Python and the trace cost more than the maths.

1. ``sweep`` of K momentum runs x S steps on 2-D Rosenbrock against a
   hand-written ``jax.jit(jax.vmap(scan))`` optax loop recording the same:
   - full trace (f, ||grad f||) against a scan recording f and ||grad f||,
     and against one that also freezes a run on a bad f, gradient or update,
     as the sweep's full check does;
   - ``record=("value",)`` against a scan recording f only, and against one
     that also freezes a diverged run as the sweep does (the floor: the
     freeze's select); and two cheaper-looking rules next to the freeze: a
     run frozen one step late, and records masked with x never held;
   - ``record=("value",)`` in 4 chunks against one chunk: the cost of the
     progress lines (one program either way), with absl logging INFO lines
     (as under ``absl.app.run``; the lines are swallowed here) and without
     (as in a notebook or a test: no callback is compiled in).
   Targets: <= 1.2x each.
2. ``minimize`` on 2-D Rosenbrock, S steps, per call, against a jitted optax
   scan called with a new x0 (the learning rate a constant in both), bare
   and with the sweep's freeze, and with ``minimize``'s semantics written by
   hand (freeze, counts, f at the last point), returning three arrays and
   returning the five of ``minimize``'s values-only ``Trace`` (the floor);
   full trace and ``record=("value",)``.
   Target: <= 1.3x. Two more scans show why ``minimize`` writes its trace
   in place: the same scan followed by one elementwise pass over its
   recorded f (tens of microseconds at S = 1000, on a worker thread), and
   followed by one in-place write of its last slot (as ``minimize``'s last
   check does). Each program's flop count is printed: PJRT's CPU client runs
   a program of fewer than 1,000 flops in the calling thread, any other on a
   worker thread (the pass after the loop crosses that line at S = 1000).

  python benchmarks/small_runs.py            # K = 1024, S = 1000
  python benchmarks/small_runs.py --quick    # K = 256, S = 200
"""

from __future__ import annotations

import argparse
import contextlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _timing import print_ratios
from _timing import time_alternating
from wonderland._run import minimize
from wonderland._sweep import sweep


def rosenbrock(x):
  return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def _scan(steps, with_norms, freeze=False, stop=None):
  """One optax run, hyperparameters traced, recording f (and ||grad f||).

  With ``freeze``, the divergence rule of ``sweep(record=("value",))``: where
  f(x_{t-1}) is not finite or above 1e30 the run stays at x_{t-1} and f is
  recorded as NaN (one select on x per step). Two cheaper-looking rules,
  values only, for the floor (neither is the sweep's):
  - ``stop="late"``: the run stops one step later: the select on x reads a
    flag carried from the previous step's check, so it needs no f;
  - ``stop="mask"``: a carried flag makes the records NaN from the first bad
    f on, and x is never held (a diverged run's x moves on to garbage).
  """

  def run(lr, x0):
    opt = optax.sgd(lr, momentum=0.9)

    def body(carry, _):
      x, state, *alive = carry  # alive: only with a stop rule
      value, grad = jax.value_and_grad(rosenbrock)(x)
      updates, state = opt.update(grad, state, x)
      out = (value, optax.global_norm(grad)) if with_norms else value
      if stop is not None:
        ok = alive[0] & jnp.isfinite(value) & (value <= 1e30)
        moves = alive[0] if stop == "late" else True
        return ((jnp.where(moves, x + updates, x), state, ok),
                jnp.where(ok, value, jnp.nan))
      if freeze:
        ok = jnp.isfinite(value) & (value <= 1e30)
        if with_norms:  # the full check: f, grad f and u_t finite
          ok = (ok & jnp.isfinite(out[1])
                & jnp.isfinite(optax.global_norm(updates)))
          out = (value, out[1])
        return ((jnp.where(ok, x + updates, x), state),
                jax.tree.map(lambda o: jnp.where(ok, o, jnp.nan), out))
      return (optax.apply_updates(x, updates), state), out

    carry = (x0, opt.init(x0)) + ((jnp.bool_(True),) if stop else ())
    return jax.lax.scan(body, carry, None, length=steps)[1]

  return run


def _counted_scan(steps, all_outputs=False):
  """A hand-written loop with ``minimize(record=("value",))``'s semantics.

  The freeze of ``_scan``, plus what a single run returns: f(x_t) for
  t = 1..S written in place one slot back (x_0 not recorded), f at the last
  point, and the step count and divergence flag. The floor of what
  ``minimize`` computes, without its generality. With ``all_outputs``, it
  returns the five arrays of ``minimize``'s values-only ``Trace`` (params,
  values, step count, converged, diverged): each returned array costs the
  call a few microseconds.
  """
  opt = optax.sgd(1e-3, momentum=0.9)

  def run(x0):
    def body(carry, t):
      x, state, trace, count, alive = carry
      value, grad = jax.value_and_grad(rosenbrock)(x)
      updates, state = opt.update(grad, state, x)
      ok = alive & jnp.isfinite(value) & (value <= 1e30)
      trace = trace.at[jnp.maximum(t - 1, 0)].set(
          jnp.where(ok, value, jnp.nan))
      count = count + (ok & (t > 0)).astype(jnp.int32)
      return (jnp.where(ok, x + updates, x), state, trace, count, ok), None

    carry = (x0, opt.init(x0), jnp.full((steps,), jnp.nan),
             jnp.int32(0), jnp.bool_(True))
    x, _, trace, count, alive = jax.lax.scan(
        body, carry, jnp.arange(steps))[0]
    last = rosenbrock(x)
    ok = alive & jnp.isfinite(last) & (last <= 1e30)
    trace = trace.at[-1].set(jnp.where(ok, last, jnp.nan))
    count = count + ok.astype(jnp.int32)
    if all_outputs:
      return trace, x, count, jnp.bool_(False), ~ok
    return trace, count, ~ok

  return run


def _flops(jitted, *args):
  """The flop count XLA's cost analysis gives the compiled program."""
  return jitted.lower(*args).compile().cost_analysis()["flops"]


def _minimize_flops(call):
  """The flop count of the program that ``call`` (a minimize) runs."""
  from wonderland import _run  # pylint: disable=g-import-not-at-top

  seen = {}
  original = _run._minimize_jit  # pylint: disable=protected-access

  def spy(*args, **kwargs):
    compiled = original.lower(*args, **kwargs).compile()
    seen["flops"] = compiled.cost_analysis()["flops"]
    return original(*args, **kwargs)

  _run._minimize_jit = spy  # pylint: disable=protected-access
  try:
    call()
  finally:
    _run._minimize_jit = original  # pylint: disable=protected-access
  return seen["flops"]


def _program_of(call):
  """The compiled program that ``call`` (a sweep) runs, without its Python.

  Returns a function that runs the program with the same arguments.
  """
  from wonderland import _sweep as sweep_module  # pylint: disable=g-import-not-at-top

  seen = {}
  original = sweep_module.compile_and_run

  def spy(jitted, timing, static, *args):
    seen["run"] = lambda: jax.block_until_ready(jitted(*static, *args))
    return original(jitted, timing, static, *args)

  sweep_module.compile_and_run = spy
  try:
    call()
  finally:
    sweep_module.compile_and_run = original
  return seen["run"]


@contextlib.contextmanager
def _info_lines_swallowed():
  """absl logs INFO lines, as under ``absl.app.run``, into a null handler."""
  logger = logging.getLogger("absl")
  level, propagate = logger.level, logger.propagate
  handler = logging.NullHandler()
  logger.setLevel(logging.INFO)
  logger.propagate = False
  logger.addHandler(handler)
  try:
    yield
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def _logged(call):
  def run():
    with _info_lines_swallowed():
      return call()
  return run


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args()
  k, steps = (256, 200) if args.quick else (1024, 1000)
  lrs = np.geomspace(1e-5, 1e-3, k).astype(np.float32)
  x0 = np.array([[-1.5, 2.0]], np.float32)
  print(f"{k} momentum runs x {steps} steps on 2-D Rosenbrock, "
        f"{jax.device_count()} {jax.default_backend()} device(s)")

  grid = {"learning_rate": lrs}
  kw = dict(steps=steps, fixed={"momentum": 0.9}, chunk_steps=steps)
  full = jax.jit(jax.vmap(_scan(steps, True), in_axes=(0, None)))
  values_only = jax.jit(jax.vmap(_scan(steps, False), in_axes=(0, None)))
  frozen = jax.jit(jax.vmap(_scan(steps, False, freeze=True),
                            in_axes=(0, None)))
  late = jax.jit(jax.vmap(_scan(steps, False, stop="late"), in_axes=(0, None)))
  masked = jax.jit(jax.vmap(_scan(steps, False, stop="mask"),
                            in_axes=(0, None)))
  full_frozen = jax.jit(jax.vmap(_scan(steps, True, freeze=True),
                                 in_axes=(0, None)))
  x = jnp.asarray(x0[0])
  program = _program_of(lambda: sweep(rosenbrock, optax.sgd, grid, x0,
                                      record=("value",), **kw))
  medians = time_alternating({
      "sweep, full trace": lambda: sweep(rosenbrock, optax.sgd, grid, x0,
                                         **kw).values,
      "vmapped scan, f and |g|": lambda: full(lrs, x),
      "vmapped scan, f and |g|, frozen": lambda: full_frozen(lrs, x),
      "sweep, record=value": lambda: sweep(rosenbrock, optax.sgd, grid, x0,
                                           record=("value",), **kw).values,
      "vmapped scan, f": lambda: values_only(lrs, x),
      "vmapped scan, f, frozen": lambda: frozen(lrs, x),
      "vmapped scan, f, frozen a step late": lambda: late(lrs, x),
      "vmapped scan, f, masked, x not held": lambda: masked(lrs, x),
      "sweep, record=value, program": program,
      "sweep, record=value, 4 chunks": lambda: sweep(
          rosenbrock, optax.sgd, grid, x0, record=("value",),
          **{**kw, "chunk_steps": -(-steps // 4)}).values,
      "sweep, record=value, 4 chunks, lines logged": _logged(lambda: sweep(
          rosenbrock, optax.sgd, grid, x0, record=("value",),
          **{**kw, "chunk_steps": -(-steps // 4)}).values),
  }, rounds=31)
  print_ratios("sweep of all runs (warm)", medians, "vmapped scan, f")
  print(f"  full trace: {medians['sweep, full trace'] / medians['vmapped scan, f and |g|']:.2f}x"
        f" the scan recording the same (target <= 1.2x); "
        f"{medians['sweep, full trace'] / medians['vmapped scan, f and |g|, frozen']:.2f}x"
        f" the same scan with the full check's freeze")
  print(f"  record=value: {medians['sweep, record=value'] / medians['vmapped scan, f']:.2f}x"
        f" the scan recording f (target <= 1.2x)")
  print(f"  record=value: {medians['sweep, record=value'] / medians['vmapped scan, f, frozen']:.2f}x"
        f" the scan recording f with the same freeze; the freeze alone: "
        f"{medians['vmapped scan, f, frozen'] / medians['vmapped scan, f']:.2f}x"
        f" (frozen a step late: "
        f"{medians['vmapped scan, f, frozen a step late'] / medians['vmapped scan, f']:.2f}x;"
        f" records masked, x not held: "
        f"{medians['vmapped scan, f, masked, x not held'] / medians['vmapped scan, f']:.2f}x)")
  print(f"  record=value: its compiled program alone "
        f"{medians['sweep, record=value, program'] / medians['vmapped scan, f, frozen']:.2f}x"
        f" the frozen scan; Python and dispatch around it "
        f"{1e3 * (medians['sweep, record=value'] - medians['sweep, record=value, program']):.2f} ms")
  print(f"  4 chunks / one chunk: "
        f"{medians['sweep, record=value, 4 chunks'] / medians['sweep, record=value']:.2f}x"
        f" (no progress lines); with absl logging a line after each chunk: "
        f"{medians['sweep, record=value, 4 chunks, lines logged'] / medians['sweep, record=value']:.2f}x")

  opt = optax.sgd(1e-3, momentum=0.9)
  # The learning rate a constant, as in minimize's optimizer: the call takes
  # a new x0 only. (Making a jnp scalar per call, as this script did before
  # 2026-12-02, cost the baseline more than the scan itself.)
  one = jax.jit(lambda x0: _scan(steps, False)(1e-3, x0))
  frozen_one = jax.jit(lambda x0: _scan(steps, False, freeze=True)(1e-3, x0))
  counted_one = jax.jit(_counted_scan(steps))
  counted_five = jax.jit(_counted_scan(steps, all_outputs=True))
  then_pass = jax.jit(lambda x0: 2.0 * _scan(steps, False)(1e-3, x0))
  then_write = jax.jit(
      lambda x0: _scan(steps, False)(1e-3, x0).at[-1].set(rosenbrock(x0)))
  points = [jnp.asarray(np.array([-1.5, 2.0]) + 0.01 * i, jnp.float32)
            for i in range(8)]
  counter = {"i": 0}

  def nxt():
    counter["i"] += 1
    return points[counter["i"] % len(points)]

  medians = time_alternating({
      "jitted scan": lambda: one(nxt()),
      "jitted scan, frozen": lambda: frozen_one(nxt()),
      "jitted scan, frozen, counted": lambda: counted_one(nxt())[0],
      "the same, minimize's 5 outputs": lambda: counted_five(nxt())[0],
      "jitted scan, then 2 f": lambda: then_pass(nxt()),
      "jitted scan, then last slot": lambda: then_write(nxt()),
      "minimize, full trace": lambda: minimize(rosenbrock, opt, nxt(),
                                               steps=steps).values,
      "minimize, record=value": lambda: minimize(
          rosenbrock, opt, nxt(), steps=steps, record=("value",)).values,
  }, rounds=31)
  print_ratios("minimize, one call (cached program, new x0)", medians,
               "jitted scan")
  scan = medians["jitted scan"]
  five = medians["the same, minimize's 5 outputs"]
  lean = medians["minimize, record=value"]
  print(f"  record=value: {lean / scan:.2f}x the jitted scan (target <= 1.3x);"
        f" the hand-written loop with its semantics and its five outputs"
        f" {five / scan:.2f}x (the floor), minimize / that {lean / five:.2f}x")
  x = points[0]
  flops = {
      "jitted scan": _flops(one, x),
      "jitted scan, frozen, counted": _flops(counted_one, x),
      "jitted scan, then 2 f": _flops(then_pass, x),
      "jitted scan, then last slot": _flops(then_write, x),
      "minimize, full trace": _minimize_flops(
          lambda: minimize(rosenbrock, opt, x, steps=steps)),
      "minimize, record=value": _minimize_flops(
          lambda: minimize(rosenbrock, opt, x, steps=steps,
                           record=("value",))),
  }
  print("  flops of each program (XLA's cost analysis; PJRT runs a program "
        "of fewer than 1000 in the calling thread, a larger one on a worker "
        "thread): " + ", ".join(f"{k} {v:.0f}" for k, v in flops.items()))


if __name__ == "__main__":
  main()
