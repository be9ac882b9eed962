"""``record=``: what a trace records is what a run computes."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland._run import minimize
from wonderland._sweep import sweep


def f(x):
  return jnp.sum((x - 1.0) ** 2) + 0.1 * jnp.sum(x**4)


OPT = optax.sgd(0.05)


@pytest.mark.fma  # at -O0, f(x_t) rounded differently in the two programs
def test_values_only_matches_the_full_trace_and_leaves_the_rest_out():
  full = minimize(f, OPT, jnp.zeros(3), steps=40)
  light = minimize(f, OPT, jnp.zeros(3), steps=40, record=("value",))
  np.testing.assert_array_equal(light.values, full.values)
  np.testing.assert_array_equal(light.params, full.params)
  for name in ("grad_norms", "update_norms", "cos_angles", "step_sizes"):
    assert getattr(light, name) is None, name
  some = minimize(f, OPT, jnp.zeros(3), steps=40,
                  record=("update_norm", "value"))
  np.testing.assert_array_equal(some.update_norms, full.update_norms)
  assert some.grad_norms is None and some.cos_angles is None


def _reductions(lowered) -> int:
  text = lowered.compile().as_text()
  return sum(line.count(" reduce(") for line in text.splitlines())


def test_what_is_not_recorded_is_not_computed():
  # The values-only program has the reductions of a hand-written optax scan
  # that records f(x_t) for t = 1..steps (those of f, in the loop and once at
  # the last point); the full trace has more (its sums over g and u_t).
  x0 = jnp.zeros(1024)

  @jax.jit
  def hand(x):
    def body(c, _):
      x, s = c
      value, g = jax.value_and_grad(f)(x)
      u, s = OPT.update(g, s, x)
      return (optax.apply_updates(x, u), s), value
    (x, _), values = jax.lax.scan(body, (x, OPT.init(x)), None, length=50)
    return values, f(x)

  from wonderland import _run  # pylint: disable=g-import-not-at-top

  def lowered(record):
    return _run._minimize_jit.lower(
        f, OPT, x0, None, None, None, None, steps=50, has_tol=False,
        keep_path=False, batch_size=None, every=None, record=record,
        sharpness_iters=20)

  bare = _reductions(hand.lower(x0))
  assert _reductions(lowered(("value",))) == bare
  assert _reductions(lowered(("value", "grad_norm", "update_norm",
                              "cos_angle", "step_size"))) > bare


def test_without_norms_a_run_stops_one_step_later():
  # f is finite at 0 but its gradient is not: the full check stops at x_0;
  # the values-only check applies the step and stops where f blew up.
  g = lambda x: jnp.sum(jnp.sqrt(jnp.abs(x)))
  full = minimize(g, optax.sgd(0.1), jnp.zeros(2), steps=5)
  light = minimize(g, optax.sgd(0.1), jnp.zeros(2), steps=5, record=("value",))
  assert bool(full.diverged) and bool(light.diverged)
  assert int(full.num_steps) == 0 and int(light.num_steps) == 0
  np.testing.assert_array_equal(full.params, jnp.zeros(2))
  assert not np.all(np.isfinite(light.params))  # the point that blew up
  assert np.all(np.isnan(light.values))


def test_a_sweep_records_values_only_when_asked():
  grid = {"learning_rate": np.array([0.01, 0.05, 5.0])}
  full = sweep(f, optax.sgd, grid, jnp.zeros((2, 3)), steps=30)
  light = sweep(f, optax.sgd, grid, jnp.zeros((2, 3)), steps=30,
                record=("value",))
  assert light.grad_norms is None
  # The same arithmetic in another program: equal to float32 rounding (the
  # sums of the full check change the fusions around f).
  np.testing.assert_allclose(light.values, full.values, rtol=1e-6)
  np.testing.assert_array_equal(light.diverged, full.diverged)
  assert light.best() == full.best()


def test_a_values_only_sweep_writes_the_trace_the_counters_would(caplog):
  """Values-only deterministic sweeps keep no counters and write the trace in
  place (wonderland._loop.step): checked against minimize, which counts, on
  runs that converge, diverge mid-way, and start above the divergence
  threshold (f(x_0) ~ 1e31, finite); in one program, in chunks that
  overshoot the last step, and in blocks."""
  lrs = np.array([0.01, 0.05, 1.0])
  x0 = np.stack([np.zeros(3), np.full(3, 2.0), np.full(3, 1e8)]).astype(
      np.float32)
  evaluate = lambda x: {"norm": jnp.sum(x**2)}
  kw = dict(steps=30, record=("value",), evaluate=evaluate, eval_every=7)
  with caplog.at_level(logging.INFO, logger="absl"):
    results = [sweep(f, optax.sgd, {"learning_rate": lrs}, x0, **kw),
               sweep(f, optax.sgd, {"learning_rate": lrs}, x0, chunk_steps=8,
                     **kw),
               sweep(f, optax.sgd, {"learning_rate": lrs}, x0, block_size=2,
                     **kw)]
  lines = [r.getMessage() for r in caplog.records if "sweep:" in r.getMessage()]
  diverged = np.zeros((3, 3), bool)
  for i, lr in enumerate(lrs):
    for j in range(3):
      trace = minimize(f, optax.sgd(float(lr)), jnp.asarray(x0[j]), **kw)
      diverged[i, j] = bool(trace.diverged)
      for result in results:
        np.testing.assert_allclose(result.values[i, j], trace.values,
                                   rtol=1e-5)
        np.testing.assert_allclose(result.final_params[i, j], trace.params,
                                   rtol=1e-5)
        np.testing.assert_allclose(result.evals["norm"][i, j],
                                   trace.evals["norm"], rtol=1e-5)
        assert bool(result.diverged[i, j]) == diverged[i, j]
  # The cases the test means to cover: mid-way divergences (eta = 1, after 4
  # and 3 steps), starts above the threshold, and runs that do not diverge.
  assert diverged[2].all() and diverged[:, 2].all()
  assert not diverged[:2, :2].any()
  values = results[0].values
  np.testing.assert_array_equal(np.isfinite(values[2, :2, :5]),
                                [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
  assert np.all(np.isnan(values[:, 2]))
  # The chunked sweep's progress lines count the diverged runs too.
  # (chunk_steps=8 rounds up to 14, a multiple of eval_every: 3 chunks).
  assert lines[3].startswith("sweep: 30/30 steps of 9 runs (3 chunks of 14)")
  assert f"{diverged.sum()} diverged" in lines[3]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(record=("grad_norm",)), "record must include 'value'"),
        (dict(record=("value", "speed")), "record must name only value, grad_norm"),
        (dict(record="value"), "record must be a sequence of names"),
        (dict(record=("value",), tol=1e-3), "record must include 'grad_norm' with tol"),
    ],
)
def test_bad_records_are_refused(kwargs, match):
  with pytest.raises(ValueError, match=match):
    minimize(f, OPT, jnp.zeros(3), steps=3, **kwargs)


@pytest.mark.parametrize("slot", [0, 3, 4, 9, -1])
@pytest.mark.parametrize("batched", [(0, 0), (0, None), (None, 0)])
def test_runs_write_their_trace_slot_as_jax_batches_it(batched, slot):
  # Every run of a sweep writes the same slot of its trace at each step: one
  # dynamic update slice of the batch, not jax's scatter (whose bounds check
  # costs kernels per step and a copy of the trace after the loop). Same
  # result as jax's own batching, slot clamped into range or negative.
  from wonderland import _loop  # pylint: disable=g-import-not-at-top

  buffers = jnp.arange(15.0).reshape(3, 5)
  values = jnp.array([-1.0, -2.0, -3.0])
  args = (buffers if batched[0] == 0 else buffers[0],
          values if batched[1] == 0 else values[0], slot)
  plain = lambda b, v, s: jax.lax.dynamic_update_index_in_dim(b, v, s, 0)
  in_axes = (*batched, None)
  expected = jax.vmap(plain, in_axes, axis_size=3)(*args)
  np.testing.assert_array_equal(
      jax.vmap(_loop._put, in_axes, axis_size=3)(*args), expected)
  lowered = jax.jit(jax.vmap(_loop._put, in_axes, axis_size=3)).lower(*args)
  assert "scatter" not in lowered.as_text()
  assert "scatter" in jax.jit(jax.vmap(plain, in_axes, axis_size=3)).lower(
      *args).as_text()
  # A slot per run (batched) still writes each run's own slot.
  slots = jnp.array([0, 2, 4])
  np.testing.assert_array_equal(
      jax.vmap(_loop._put)(buffers, values, slots),
      jax.vmap(plain)(buffers, values, slots))
