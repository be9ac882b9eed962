"""wonderland.batching: switched optimizers and problems change no number."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wonderland as wl
from wonderland import batching
from wonderland import optim
from wonderland import problems


def _x0(probs, n):
  key = jax.random.key(0)
  return np.stack([np.asarray(p.init(jax.random.fold_in(key, i), n), np.float32)
                   for i, p in enumerate(probs)])


def test_batched_cells_equal_single_runs():
  """The switch over problems and optimizers changes nothing in the numbers."""
  probs = [problems.get("quadratic", kappa=100.0, dim=2),
           problems.get("rosenbrock")]
  factories = [optim.momentum, optim.armijo_gd]
  lrs = np.array([1e-3, 3e-2])
  x0 = _x0(probs, 2)
  batch = batching.run_batch([p.fn for p in probs], factories, lrs, x0,
                             steps=25)
  assert batch.values.shape == (2, 2, 2, 2, 25)
  assert batch.diverged.shape == (2, 2, 2, 2)
  assert batch.compile_seconds > 0 and batch.run_seconds > 0
  for i, make in enumerate(factories):
    for j, p in enumerate(probs):
      trace = wl.minimize(p.fn, make(float(lrs[1])), jnp.asarray(x0[j, 1]),
                          steps=25)
      np.testing.assert_allclose(batch.values[i, 1, j, 1], trace.values,
                                 rtol=1e-4, atol=1e-6)
  paths = batching.best_paths([p.fn for p in probs], factories,
                              np.full((2, 2), lrs[1]), x0[:, 1], steps=25)
  assert paths.shape == (2, 2, 26, 2)
  trace = wl.minimize(probs[1].fn, optim.armijo_gd(float(lrs[1])),
                      jnp.asarray(x0[1, 1]), steps=25, keep_path=True)
  np.testing.assert_allclose(paths[1, 1, 0], x0[1, 1])
  np.testing.assert_allclose(paths[1, 1, 1:], trace.path, rtol=1e-4, atol=1e-6)


def test_one_optimizer_on_one_problem_runs_without_a_switch():
  p = problems.get("booth")
  x0 = _x0([p], 2)
  batch = batching.run_batch([p.fn], [optim.gd], np.array([0.05]), x0, steps=5)
  trace = wl.minimize(p.fn, optim.gd(0.05), jnp.asarray(x0[0, 1]), steps=5,
                      keep_path=True)
  np.testing.assert_allclose(batch.values[0, 0, 0, 1], trace.values,
                             rtol=1e-5, atol=1e-7)
  paths = batching.best_paths([p.fn], [optim.gd], np.array([[0.05]]),
                              x0[:, 1], steps=5)
  np.testing.assert_allclose(paths[0, 0, 1:], np.asarray(trace.path),
                             rtol=1e-5, atol=1e-7)


def _chaotic():
  """Cells whose runs amplify one float32 rounding: ackley and beale."""
  probs = [problems.get("ackley"), problems.get("beale")]
  return probs, [optax.adam, optax.sgd], np.array([3e-3, 3e-2]), _x0(probs, 2)


@pytest.mark.fma
def test_run_cells_computes_the_batch_and_a_cell_alone_gives_the_same_bits():
  probs, factories, lrs, x0 = _chaotic()
  fns = [p.fn for p in probs]
  cells = batching.run_cells(fns, factories, lrs, x0, steps=40)
  batch = batching.run_batch(fns, factories, lrs, x0, steps=40)
  assert cells.values.shape == batch.values.shape == (2, 2, 2, 2, 40)
  assert cells.final_x.shape == (2, 2, 2, 2, 2)
  assert cells.compile_seconds > 0 and cells.run_seconds > 0
  # The same runs: equal to float32 rounding over the first steps.
  np.testing.assert_allclose(cells.values[..., :3], batch.values[..., :3],
                             rtol=1e-5)
  np.testing.assert_array_equal(cells.diverged, batch.diverged)
  # adam on beale alone, and among the cells in another order: the same
  # bits. run_batch's switched program does not keep them (the check can
  # fail: there the cell alone parts from the cell in the batch at step 22).
  swapped = batching.run_cells(fns[::-1], factories[::-1], lrs, x0[::-1],
                               steps=40)
  alone = batching.run_cells(fns[1:], factories[:1], lrs, x0[1:], steps=40)
  for got in (alone.values[0, :, 0], swapped.values[1, :, 0]):
    np.testing.assert_array_equal(got, cells.values[0, :, 1])
  single = batching.run_batch(fns[1:], factories[:1], lrs, x0[1:], steps=40)
  assert not np.array_equal(single.values[0, :, 0],
                            batch.values[0, :, 1], equal_nan=True)


@pytest.mark.fma
def test_fma_contraction_is_on_as_at_the_default_level():
  """The tests marked ``fma`` run at LLVM -O1 (tests/conftest.py). They
  guard against XLA:CPU contracting multiply-adds into FMA differently in
  different programs, which only bites where it contracts them, as the
  default level does (and -O1; -O0 does not). a b + c, a = b = 1 + 2^-12,
  c = -(1 + 2^-11): 2^-24 with one rounding (FMA), 0 with two."""
  a = np.full(64, 1 + 2.0**-12, np.float32)
  c = np.full(64, -(1 + 2.0**-11), np.float32)
  fused = jax.jit(lambda a, b, c: a * b + c)(a, a, c)
  np.testing.assert_array_equal(fused, np.float32(2.0**-24))


def test_run_batch_refuses_initial_points_of_the_wrong_shape():
  fns = [problems.get("booth").fn, problems.get("matyas").fn]
  with pytest.raises(ValueError, match=r"x0 must have shape \(len\(fns\), "
                     r"n_seeds, dim\) = \(2, ...\), got \(3, 2, 2\)"):
    batching.run_batch(fns, [optim.gd], np.array([0.1]), np.zeros((3, 2, 2)),
                       steps=2)
  with pytest.raises(ValueError, match=r"got \(2, 2\)"):
    batching.run_batch(fns, [optim.gd], np.array([0.1]), np.zeros((2, 2)),
                       steps=2)


def test_switch_optimizer_never_moves_the_problem_index():
  make = batching.switch_optimizer([optim.adam, optax.lion])
  f = batching.stack_problems([lambda x: jnp.sum(x**2), lambda x: jnp.sum(x**4)])
  params = {"x": jnp.ones(2), "k": jnp.asarray(1.0)}
  opt = make(0.1, 1.0)
  state = opt.init(params)
  grads = jax.grad(f)(params)
  updates, _ = opt.update(grads, state, params, value=f(params), grad=grads,
                          value_fn=f)
  # lion's weight decay (1e-3) would shrink k by eta wd k; k must not move.
  assert float(updates["k"]) == 0.0
  # lion on x: -eta (sign(grad) + wd x) with x = 1.
  np.testing.assert_allclose(updates["x"], [-0.1001, -0.1001], rtol=1e-6)
  # index 0 is adam, whose first step is -eta sign(grad) (bias-corrected).
  updates, _ = make(0.1, 0.0).update(grads, state, params, value=f(params),
                                     grad=grads, value_fn=f)
  np.testing.assert_allclose(updates["x"], [-0.1, -0.1], rtol=1e-5)
