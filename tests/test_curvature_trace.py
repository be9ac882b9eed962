"""The sharpness in the trace: ``record=(..., "sharpness")`` in minimize and sweep.

References: eigvalsh of the full Hessian (formed with ``jax.hessian``), the
closed form of quadratics, ``landscape.preconditioner`` read from states
computed outside the run, and the matching single run for a sweep cell.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import wonderland as wl
from tests import _models
from wonderland import landscape
from wonderland import optim


_mlp = _models.tiny_mlp


@functools.lru_cache(maxsize=None)
def _hessian_fn():
  """The MLP loss's Hessian in the flattened parameters: one program."""
  loss, params, _ = _mlp()
  _, unravel = ravel_pytree(params)
  return jax.jit(jax.hessian(lambda z, *batch: loss(unravel(z), *batch)))


def _hessian(x, *batch):
  """The full Hessian of the MLP loss at x (on batch, if given), float64."""
  h = np.asarray(_hessian_fn()(ravel_pytree(x)[0], *batch), np.float64)
  return (h + h.T) / 2


def _at(path, t):
  return jax.tree.map(lambda a: a[t - 1], path)


def test_the_trace_sharpness_is_the_top_hessian_eigenvalue_along_the_path():
  loss, params, _ = _mlp()
  trace = wl.minimize(loss, optim.gd(0.2), params, steps=30, eval_every=10,
                      keep_path=True, record=("value", "sharpness"))
  np.testing.assert_array_equal(trace.eval_steps, [10, 20, 30])
  for i, t in enumerate(np.asarray(trace.eval_steps)):
    expected = np.linalg.eigvalsh(_hessian(_at(trace.path, t)))[-1]
    assert float(trace.evals["sharpness"][i]) == pytest.approx(expected, rel=1e-3)
  # Recording the sharpness does not change the run.
  plain = wl.minimize(loss, optim.gd(0.2), params, steps=30)
  np.testing.assert_array_equal(trace.values, plain.values)


def test_warm_starts_accumulate_on_a_fixed_hessian():
  # f = x^T A x / 2 with crowded top eigenvalues 10, 9.9, 9.8, ...: three
  # Lanczos steps from a cold start are far off; each evaluation restarts from
  # the last Ritz vector, whose Rayleigh quotient the new Krylov space
  # contains, so on a constant Hessian the estimates never decrease and stay
  # below lambda_max = 10.
  eigenvalues = np.linspace(5.0, 10.0, 51)[::-1].copy()
  q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((51, 51)))
  a = jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)
  f = lambda x: 0.5 * x @ (a @ x)
  trace = wl.minimize(f, optim.gd(1e-3), jnp.ones(51), steps=200, eval_every=5,
                      record=("value", "sharpness"), sharpness_iters=3)
  s = np.asarray(trace.evals["sharpness"], np.float64)
  assert s[0] < 9.9  # cold: three products
  assert np.all(np.diff(s) >= -1e-5 * 10)
  assert np.all(s <= 10 * (1 + 1e-5))
  assert s[-1] == pytest.approx(10.0, rel=2e-3)


def test_the_sharpness_is_the_largest_eigenvalue_not_the_largest_in_magnitude():
  # Hessian diag(1, 2, -50): lambda_max = 2, although -50 dominates in
  # magnitude; 20 Lanczos steps on a 3-dim space stop at the invariant space.
  f = lambda x: 0.5 * (x[0]**2 + 2 * x[1]**2 - 50 * x[2]**2)
  trace = wl.minimize(f, optim.gd(1e-3), jnp.array([1.0, 1.0, 0.1]), steps=4,
                      eval_every=2, record=("value", "sharpness"))
  np.testing.assert_allclose(trace.evals["sharpness"], [2.0, 2.0], rtol=1e-5)


def _adam_states(f, x0, eta, steps, **kwargs):
  """x_t and adam's state after t steps, t = 1..steps, outside wonderland's loop."""
  opt = optim.adam(eta, **kwargs)

  @jax.jit
  def run(x):
    def step(carry, _):
      x, s = carry
      u, s = opt.update(jax.grad(f)(x), s, x)
      x = optax.apply_updates(x, u)
      return (x, s), (x, s)

    return jax.lax.scan(step, (x, opt.init(x)), None, length=steps)[1]

  return run(x0)


def test_the_preconditioned_sharpness_uses_the_state_of_the_step():
  # adam's b2 = 0.99 is not its default: read from inject_hyperparams' state.
  loss, params, _ = _mlp()
  injected = wl.minimize(
      loss, optax.inject_hyperparams(optim.adam)(learning_rate=0.05, b2=0.99),
      params, steps=20, eval_every=10, sharpness_iters=24,
      record=("value", "preconditioned_sharpness"))
  xs, states = _adam_states(loss, params, 0.05, 20, b2=0.99)
  for i, t in enumerate((10, 20)):
    state = jax.tree.map(lambda a: a[t - 1], states)
    p, _ = ravel_pytree(landscape.preconditioner(state, b2=0.99))
    s = np.diag(1 / np.sqrt(np.asarray(p, np.float64)))
    expected = np.linalg.eigvalsh(s @ _hessian(_at(xs, t)) @ s)[-1]
    assert float(injected.evals["preconditioned_sharpness"][i]) == pytest.approx(
        expected, rel=1e-3)


def test_a_sweep_cell_records_what_the_single_run_records():
  loss, params, _ = _mlp()
  x0 = jax.tree.map(lambda a: jnp.stack([a, -a]), params)
  record = ("value", "sharpness", "preconditioned_sharpness")
  result = wl.sweep(loss, optim.adam, {"learning_rate": jnp.array([0.01, 0.05])},
                    x0, steps=12, fixed={"b2": 0.99}, eval_every=4, record=record)
  assert result.evals["sharpness"].shape == (2, 2, 3)
  # The sweep knows b2 from fixed; the single run from inject_hyperparams.
  opt = optax.inject_hyperparams(optim.adam)(learning_rate=0.05, b2=0.99)
  for s in range(2):
    single = wl.minimize(loss, opt, jax.tree.map(lambda a: a[s], x0),
                         steps=12, eval_every=4, record=record)
    for name in ("sharpness", "preconditioned_sharpness"):
      np.testing.assert_allclose(result.evals[name][1, s], single.evals[name],
                                 rtol=1e-5)
  best = result.best(metric="sharpness", mode="min")
  assert set(best) == {"learning_rate"}


def test_a_stochastic_run_records_the_sharpness_of_its_minibatch_loss():
  loss, params, data = _mlp()
  key = jax.random.key(3)
  trace = wl.minimize(loss, optim.gd(0.1), params, steps=8, data=data,
                      batch_size=4, key=key, eval_every=4, keep_path=True,
                      record=("value", "sharpness"))
  for i, t in enumerate((4, 8)):
    batch = wl.data.minibatch(data, key, t, 4)
    expected = np.linalg.eigvalsh(_hessian(_at(trace.path, t), batch))[-1]
    assert float(trace.evals["sharpness"][i]) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tol=1e-3, record=("value", "grad_norm", "sharpness")),
         "record 'sharpness' needs a run of fixed length: give tol=None"),
        (dict(record=("value", "preconditioned_sharpness")),
         "opt_state must hold exactly one of AdagradState, AdamState, "
         "RmspropState"),
        (dict(record=("value", "sharpness"), sharpness_iters=0),
         "sharpness_iters must be a positive integer, got 0"),
        (dict(record=("value", "sharpness"), eval_every=2,
              evaluate=lambda x: {"sharpness": jnp.sum(x)}),
         "evaluate must not return a metric named 'sharpness' while record "
         "names it"),
        (dict(record=("value", "curvature")),
         "record must name only value, grad_norm, update_norm, cos_angle, "
         "step_size, sharpness, preconditioned_sharpness, got curvature"),
    ],
)
def test_bad_curvature_requests_are_refused(kwargs, match):
  with pytest.raises(ValueError, match=match):
    wl.minimize(lambda x: jnp.sum(x**2), optim.gd(0.1), jnp.ones(2), steps=4,
                **kwargs)


def test_a_sweep_refuses_a_preconditioned_sharpness_without_a_preconditioner():
  with pytest.raises(ValueError, match="opt_state must hold exactly one of"):
    wl.sweep(lambda x: jnp.sum(x**2), optim.momentum,
             {"learning_rate": jnp.array([0.1])}, jnp.ones((1, 2)), steps=4,
             record=("value", "preconditioned_sharpness"))
