"""Stochastic runs: minimize and sweep with data, minibatches and evaluations.

References: a hand-written optax loop that draws the same batches with
``wonderland.data.minibatch``, and ``evaluate`` applied to the kept path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import data as data_lib
from wonderland import optim
from wonderland._run import minimize
from wonderland._sweep import sweep

RNG = np.random.default_rng(0)
FEATURES = jnp.asarray(RNG.normal(size=(96, 4)), jnp.float32)
TARGETS = FEATURES @ jnp.array([1.0, -1.0, 2.0, 0.5]) + 0.1 * jnp.asarray(
    RNG.normal(size=96), jnp.float32)
DATA = (FEATURES, TARGETS)
KEY = jax.random.key(7)


def loss(w, batch):
  a, b = batch
  return jnp.mean((a @ w - b) ** 2)


def evaluate(w):
  residual = FEATURES @ w - TARGETS
  return {"mse": jnp.mean(residual**2), "max_abs": jnp.max(jnp.abs(residual))}


OPT = optax.sgd(0.05)
KW = dict(data=DATA, batch_size=16, key=KEY)


def _hand_loop(opt, w, steps, key):
  """The reference: the same batches, a plain optax loop, f(x_t, B_t)."""
  state = opt.init(w)
  values = []
  for t in range(steps):
    batch = data_lib.minibatch(DATA, key, t, 16)
    grad = jax.grad(loss)(w, batch)
    updates, state = opt.update(grad, state, w)
    w = optax.apply_updates(w, updates)
    values.append(loss(w, data_lib.minibatch(DATA, key, t + 1, 16)))
  return np.asarray(values), w


def test_minimize_with_data_is_a_minibatch_loop():
  trace = minimize(loss, OPT, jnp.zeros(4), steps=20, **KW)
  want_values, want_w = _hand_loop(OPT, jnp.zeros(4), 20, KEY)
  # values[t-1] = f(x_t, B_t): the loss at x_t on the batch of step t + 1.
  np.testing.assert_allclose(trace.values, want_values, rtol=1e-5)
  np.testing.assert_allclose(trace.params, want_w, rtol=1e-5)
  assert int(trace.num_steps) == 20 and not bool(trace.diverged)
  assert np.all(np.isfinite(trace.grad_norms))
  assert np.all(np.asarray(trace.cos_angles) > 0.99)  # SGD: u_t = -eta g_t


def test_a_run_is_bitwise_reproducible_and_the_key_decides_the_order():
  a = minimize(loss, OPT, jnp.zeros(4), steps=30, **KW)
  b = minimize(loss, OPT, jnp.zeros(4), steps=30, **KW)
  np.testing.assert_array_equal(a.values, b.values)
  np.testing.assert_array_equal(a.params, b.params)
  c = minimize(loss, OPT, jnp.zeros(4), steps=30,
               **{**KW, "key": jax.random.key(8)})
  assert not np.array_equal(a.values, c.values)


def test_one_epoch_of_batches_covers_every_example_once():
  # 96 examples, batches of 16: the 6 batches of epoch 0 are a partition.
  seen = np.concatenate(
      [np.asarray(data_lib.batch_indices(KEY, t, 96, 16)) for t in range(6)])
  np.testing.assert_array_equal(np.sort(seen), np.arange(96))
  # The next epoch draws a new order.
  nxt = np.concatenate(
      [np.asarray(data_lib.batch_indices(KEY, t, 96, 16)) for t in range(6, 12)])
  np.testing.assert_array_equal(np.sort(nxt), np.arange(96))
  assert not np.array_equal(seen, nxt)


def test_evaluate_runs_at_the_promised_steps():
  trace = minimize(loss, OPT, jnp.zeros(4), steps=23, keep_path=True,
                   evaluate=evaluate, eval_every=5, **KW)
  np.testing.assert_array_equal(trace.eval_steps, [5, 10, 15, 20, 23])
  for i, t in enumerate([5, 10, 15, 20, 23]):
    want = evaluate(trace.path[t - 1])
    for name in ("mse", "max_abs"):
      np.testing.assert_allclose(trace.evals[name][i], want[name], rtol=1e-5)
  # Without eval_every: once, after the last step.
  once = minimize(loss, OPT, jnp.zeros(4), steps=23, evaluate=evaluate, **KW)
  np.testing.assert_array_equal(once.eval_steps, [23])
  np.testing.assert_allclose(once.evals["mse"][0], trace.evals["mse"][-1],
                             rtol=1e-6)


def test_evaluate_also_works_for_a_deterministic_run():
  f = lambda w: loss(w, DATA)
  trace = minimize(f, optax.sgd(0.05), jnp.zeros(4), steps=9,
                   evaluate=evaluate, eval_every=3, keep_path=True)
  np.testing.assert_array_equal(trace.eval_steps, [3, 6, 9])
  np.testing.assert_allclose(trace.evals["mse"], trace.values[2::3], rtol=1e-6)


def test_a_diverged_run_has_nan_evaluations_after_it_stopped():
  trace = minimize(loss, optax.sgd(10.0), jnp.zeros(4), steps=40,
                   evaluate=evaluate, eval_every=10, **KW)
  assert bool(trace.diverged)
  late = np.asarray(trace.eval_steps) > int(trace.num_steps)
  assert late.any()
  assert np.all(np.isnan(np.asarray(trace.evals["mse"])[late]))


def test_a_sweep_cell_equals_the_matching_minimize_run():
  lrs = np.array([0.01, 0.05])
  x0 = jnp.stack([jnp.zeros(4), jnp.ones(4)])
  result = sweep(loss, optim.momentum, {"learning_rate": lrs}, x0, steps=17,
                 fixed={"decay": 0.9}, evaluate=evaluate, eval_every=6,
                 chunk_steps=5, **KW)
  assert result.values.shape == (2, 2, 17)
  assert result.evals["mse"].shape == (2, 2, 3)
  np.testing.assert_array_equal(result.eval_steps, [6, 12, 17])
  # In blocks of 3 (one program per block, chunk_steps unused): the same runs.
  blocked = sweep(loss, optim.momentum, {"learning_rate": lrs}, x0, steps=17,
                  fixed={"decay": 0.9}, evaluate=evaluate, eval_every=6,
                  block_size=3, **KW)
  np.testing.assert_array_equal(blocked.eval_steps, result.eval_steps)
  np.testing.assert_allclose(blocked.values, result.values, rtol=1e-5)
  np.testing.assert_allclose(blocked.evals["mse"], result.evals["mse"],
                             rtol=1e-5)
  # One cell (each minimize compiles anew): seed 1 draws its batches with
  # fold_in(key, 1), at the grid's first eta.
  trace = minimize(loss, optim.momentum(float(lrs[0]), decay=0.9), x0[1],
                   steps=17, evaluate=evaluate, eval_every=6,
                   **{**KW, "key": jax.random.fold_in(KEY, 1)})
  # Equal to float32 rounding: the programs differ in shape (issue #15).
  np.testing.assert_allclose(result.values[0, 1], trace.values, rtol=1e-5)
  np.testing.assert_allclose(result.evals["mse"][0, 1], trace.evals["mse"],
                             rtol=1e-5)


def test_best_chooses_on_an_evaluated_metric():
  lrs = np.array([1e-4, 0.05, 5.0])  # too small, right, diverging
  result = sweep(loss, optax.sgd, {"learning_rate": lrs}, jnp.zeros((3, 4)),
                 steps=40, evaluate=evaluate, **KW)
  assert result.best("mse") == {"learning_rate": 0.05}
  # Higher is better for -mse: the same choice through mode="max".
  neg = result._replace(evals={"neg_mse": -result.evals["mse"]})
  assert neg.best("neg_mse", mode="max") == {"learning_rate": 0.05}
  scores = neg.score("neg_mse", mode="max")
  assert scores[2] == -np.inf and scores[1] > scores[0]
  with pytest.raises(ValueError, match="mode must be 'min' for metric"):
    result.best("final_value", mode="max")
  with pytest.raises(ValueError, match="metric must be one of .*'mse'"):
    result.best("accuracy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(key=None), "key must be given with data"),
        (dict(batch_size=None), r"batch_size must be given with data: an integer in \[1, 96\]"),
        (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
        (dict(batch_size=97), "batch_size must be a positive integer, got 97"),
        (dict(data=(FEATURES, TARGETS[:10])), "leading example axis"),
        (dict(evaluate=lambda w: {"w": w}), r"evaluate must return real scalars, got 'w' of shape \(4,\)"),
        (dict(evaluate=lambda w: jnp.sum(w)), "evaluate must return a non-empty dict"),
        (dict(evaluate=evaluate, eval_every=0), "eval_every must be a positive integer, got 0"),
        (dict(eval_every=3), "eval_every is only used with evaluate"),
        (dict(tol=1e-3), "tol must be None with data"),
    ],
)
def test_bad_stochastic_arguments_get_one_sentence(kwargs, match):
  with pytest.raises(ValueError, match=match):
    minimize(loss, OPT, jnp.zeros(4), steps=3, **{**KW, **kwargs})


def test_data_arguments_without_data_are_refused():
  f = lambda w: jnp.sum(w**2)
  with pytest.raises(ValueError, match="key is only used with data"):
    minimize(f, OPT, jnp.zeros(4), steps=3, key=KEY)
  with pytest.raises(ValueError, match="batch_size is only used with data"):
    sweep(f, optax.sgd, {"learning_rate": np.array([0.1])}, jnp.zeros((1, 4)),
          steps=3, batch_size=4)


def test_a_new_learning_rate_grid_on_mlp_mnist1d_compiles_nothing():
  pytest.importorskip("mnist1d")
  from wonderland import problems  # pylint: disable=g-import-not-at-top

  task = problems.get("mlp_mnist1d")
  nets = task.init(jax.random.key(0), 3)
  compiles = []

  def listener(event, duration, **kwargs):
    del duration, kwargs
    if event == "/jax/core/compile/backend_compile_duration":
      compiles.append(event)

  kwargs = dict(steps=4, data=task.data, batch_size=100, key=KEY,
                record=("value",))
  first = sweep(task.loss, optim.adam, {"learning_rate": np.array([1e-3, 1e-2])},
                nets, **kwargs)
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    second = sweep(task.loss, optim.adam,
                   {"learning_rate": np.array([3e-3, 3e-2])}, nets, **kwargs)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert compiles == []  # one program for lr x seeds, reused for new values
  assert second.values.shape == (2, 3, 4)
  assert not np.array_equal(first.values, second.values)
