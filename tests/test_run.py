"""Tests of wonderland.run.minimize against hand-written loops and theory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from wonderland import _sums as sums_lib
from wonderland import _run as run_lib
from wonderland._run import minimize

# f(x) = 1/2 x^T A x with A = diag(a): x_t = (1 - eta a)^t x_0 for gd.
A = jnp.array([1.0, 4.0, 10.0])
X0 = jnp.array([1.0, -2.0, 0.5])


def quadratic(x):
  return 0.5 * jnp.sum(A * x**2)


def rosenbrock(x):
  return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def reference_loop(f, optimizer, x0, steps):
  """The textbook optax loop, step by step in Python: x_t and per-step data."""
  state = optimizer.init(x0)
  update = jax.jit(optimizer.update, static_argnames="value_fn")
  x = x0
  value, grad = jax.value_and_grad(f)(x)
  out = {k: [] for k in ("x", "values", "grad_norms", "update_norms", "cos")}
  out["states"] = []
  for _ in range(steps):
    updates, state = update(grad, state, x, value=value, grad=grad, value_fn=f)
    u = np.asarray(ravel_pytree(updates)[0], np.float64)
    g = np.asarray(ravel_pytree(grad)[0], np.float64)
    x = optax.apply_updates(x, updates)
    value, grad = jax.value_and_grad(f)(x)
    out["x"].append(x)
    out["values"].append(float(value))
    out["grad_norms"].append(float(np.linalg.norm(ravel_pytree(grad)[0])))
    out["update_norms"].append(float(np.linalg.norm(u)))
    out["cos"].append(float(-u @ g / (np.linalg.norm(u) * np.linalg.norm(g))))
    out["states"].append(state)
  return out


def test_trace_shapes_and_fields():
  trace = minimize(quadratic, optax.sgd(0.05), X0, steps=7)
  assert isinstance(trace, run_lib.Trace)
  for name in ("values", "grad_norms", "update_norms", "cos_angles",
               "step_sizes"):
    assert getattr(trace, name).shape == (7,), name
  assert trace.params.shape == (3,)
  assert int(trace.num_steps) == 7
  assert not bool(trace.converged) and not bool(trace.diverged)
  assert trace.path is None
  # optax.sgd keeps no step size in its state.
  assert np.all(np.isnan(trace.step_sizes))


def test_gradient_descent_matches_closed_form():
  eta, steps = 0.05, 30
  trace = minimize(quadratic, optax.sgd(eta), X0, steps=steps, keep_path=True)
  t = np.arange(1, steps + 1)[:, None]
  a, x0 = np.asarray(A, np.float64), np.asarray(X0, np.float64)
  xs = (1.0 - eta * a) ** t * x0  # x_t, t = 1..steps
  np.testing.assert_allclose(trace.path, xs, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(trace.params, xs[-1], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(
      trace.values, 0.5 * np.sum(a * xs**2, axis=1), rtol=1e-5
  )
  np.testing.assert_allclose(
      trace.grad_norms, np.linalg.norm(a * xs, axis=1), rtol=1e-5
  )
  x_prev = np.concatenate([x0[None], xs[:-1]])
  np.testing.assert_allclose(
      trace.update_norms, eta * np.linalg.norm(a * x_prev, axis=1), rtol=1e-5
  )
  # p_t = -grad f(x_{t-1}): the steepest descent direction, cos = 1.
  np.testing.assert_allclose(trace.cos_angles, 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "optimizer",
    [optax.sgd(1e-3, momentum=0.6), optax.adam(0.05)],
    ids=["momentum", "adam"],
)
def test_matches_reference_loop(optimizer):
  x0 = jnp.array([-1.5, 2.0])
  trace = minimize(rosenbrock, optimizer, x0, steps=25)
  ref = reference_loop(rosenbrock, optimizer, x0, 25)
  # Float32 rounding (fused vs step-by-step) grows slowly along the run.
  np.testing.assert_allclose(trace.values, ref["values"], rtol=1e-4)
  np.testing.assert_allclose(trace.grad_norms, ref["grad_norms"], rtol=1e-4)
  np.testing.assert_allclose(
      trace.update_norms, ref["update_norms"], rtol=1e-4
  )
  np.testing.assert_allclose(trace.cos_angles, ref["cos"], atol=1e-4)
  np.testing.assert_allclose(trace.params, ref["x"][-1], rtol=1e-4)


def test_trace_norms_are_accurate_at_a_million_parameters():
  # f = ||x||^2 / 2 and gd(0.5): u_1 = -x_0 / 2 and x_1 = x_0 / 2. A float32
  # running sum over 2^20 squares drifts by ~5e-4; pairwise sums stay ~1e-7.
  x0 = jax.random.normal(jax.random.key(3), (2**20,), jnp.float32)
  trace = minimize(lambda x: 0.5 * jnp.sum(x * x), optax.sgd(0.5), x0, steps=1)
  half = 0.5 * np.linalg.norm(np.asarray(x0, np.float64))
  np.testing.assert_allclose(trace.update_norms[0], half, rtol=1e-6)
  np.testing.assert_allclose(trace.grad_norms[0], half, rtol=1e-6)
  np.testing.assert_allclose(trace.values[0], half**2 / 2, rtol=1e-6)
  np.testing.assert_allclose(trace.cos_angles[0], 1.0, rtol=1e-6)


@pytest.mark.parametrize("how", ["_blocked_sums", "_flat_sums", "sums"])
def test_trace_sums_of_every_backend_match_float64(how):
  # Both ways of cutting the reduction (blocks on CPU, flat elsewhere) give
  # <u, u>, <u, g>, <g, g> over a pytree: leaves with a tail past the last
  # block of 256, an empty leaf, a bfloat16 leaf summed in float32.
  keys = jax.random.split(jax.random.key(4), 6)
  u = {"a": jax.random.normal(keys[0], (3, 700)),
       "b": jnp.zeros((0,)),
       "c": jax.random.normal(keys[1], (5,), jnp.bfloat16),
       "d": jax.random.normal(keys[2], (2048,))}
  g = {"a": jax.random.normal(keys[3], (3, 700)),
       "b": jnp.zeros((0,)),
       "c": jax.random.normal(keys[4], (5,), jnp.bfloat16),
       "d": jax.random.normal(keys[5], (2048,))}
  sums = jax.jit(getattr(sums_lib, how))(u, g)
  flat64 = lambda t: np.concatenate(
      [np.asarray(a, np.float64).ravel() for a in jax.tree.leaves(t)])
  u64, g64 = flat64(u), flat64(g)
  expected = (u64 @ u64, u64 @ g64, g64 @ g64)
  for got, want in zip(sums, expected):
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_momentum_can_leave_the_descent_cone():
  # On Rosenbrock's valley heavy momentum overshoots: some steps have
  # cos < 0 (not descent directions), which gd never has.
  x0 = jnp.array([-1.5, 2.0])
  heavy = minimize(rosenbrock, optax.sgd(1e-3, momentum=0.99), x0, steps=200)
  plain = minimize(rosenbrock, optax.sgd(1e-3), x0, steps=200)
  assert np.nanmin(heavy.cos_angles) < -0.5
  assert np.nanmin(plain.cos_angles) > 0.99


def test_early_stop_at_tol():
  eta, tol = 0.05, 1e-2
  trace = minimize(quadratic, optax.sgd(eta), X0, steps=500, tol=tol,
                   keep_path=True)
  a, x0 = np.asarray(A, np.float64), np.asarray(X0, np.float64)
  t = np.arange(1, 501)[:, None]
  norms = np.linalg.norm(a * (1.0 - eta * a) ** t * x0, axis=1)
  expected = int(np.argmax(norms <= tol)) + 1  # first t with ||g|| <= tol
  n = int(trace.num_steps)
  assert n == expected
  assert bool(trace.converged) and not bool(trace.diverged)
  assert trace.grad_norms[n - 1] <= tol < trace.grad_norms[n - 2]
  assert np.all(np.isfinite(trace.values[:n]))
  assert np.all(np.isnan(trace.values[n:]))
  assert np.all(np.isnan(trace.path[n:]))
  np.testing.assert_allclose(trace.params, trace.path[n - 1])


def test_tol_reached_at_start_and_never():
  start = minimize(quadratic, optax.sgd(0.05), jnp.zeros(3), steps=10, tol=0.0)
  assert int(start.num_steps) == 0 and bool(start.converged)
  assert np.all(np.isnan(start.values))
  never = minimize(quadratic, optax.sgd(1e-4), X0, steps=10, tol=1e-6)
  assert int(never.num_steps) == 10 and not bool(never.converged)
  plain = minimize(quadratic, optax.sgd(1e-4), X0, steps=10)
  np.testing.assert_allclose(never.values, plain.values, rtol=1e-6)


@pytest.mark.parametrize("tol", [None, 1e-8])
def test_divergence_is_reported_not_raised(tol):
  # eta a = 3 for the last coordinate: |x| grows 2x per step until f > 1e30.
  eta = 0.3
  trace = minimize(quadratic, optax.sgd(eta), X0, steps=200, tol=tol,
                   keep_path=True)
  assert bool(trace.diverged) and not bool(trace.converged)
  n = int(trace.num_steps)
  a, x0 = np.asarray(A, np.float64), np.asarray(X0, np.float64)
  values = [0.5 * np.sum(a * ((1 - eta * a) ** t * x0) ** 2)
            for t in range(1, 200)]
  # Step n + 1 is the first past the threshold: the run stops at x_{n+1}.
  assert n == int(np.argmax(np.array(values) > run_lib.DIVERGENCE_THRESHOLD))
  assert np.all(np.isfinite(trace.values[:n]))
  assert np.all(np.isnan(trace.values[n:]))
  assert np.all(np.isfinite(trace.params))
  np.testing.assert_allclose(trace.params, (1 - eta * a) ** (n + 1) * x0,
                             rtol=1e-4)
  assert float(quadratic(trace.params)) > run_lib.DIVERGENCE_THRESHOLD


def test_nan_objective_freezes_the_run():
  # f = x - log x, minimum at x = 1; the step -6 f'(2) = -3 from x = 2 lands
  # at x = -1, where log is NaN: the run stops there, at x = -1.
  f = lambda x: jnp.sum(x - jnp.log(x))
  trace = minimize(f, optax.sgd(6.0), jnp.array([2.0]), steps=5)
  assert bool(trace.diverged) and int(trace.num_steps) == 0
  np.testing.assert_array_equal(trace.params, [-1.0])
  assert np.all(np.isnan(trace.values))
  bad_start = minimize(f, optax.sgd(0.1), jnp.array([-1.0]), steps=5)
  assert bool(bad_start.diverged) and int(bad_start.num_steps) == 0
  np.testing.assert_array_equal(bad_start.params, [-1.0])


def _cliff(x):
  """f(x) = -x while x < 3.5, NaN beyond: gd with eta = 1 walks x_t = t."""
  return jnp.sum(-x + 0.0 * jnp.log(3.5 - x))


@pytest.mark.parametrize("tol", [None, 1e-6])
@pytest.mark.parametrize("start", [0.0, 1.0])
def test_diverged_run_stops_where_f_blew_up_at_either_parity(tol, start):
  # From x_0 = start, x_t = start + t; the run stops at the first x_t > 3.5,
  # where f is NaN, reached at an odd or an even step.
  steps = 7
  trace = minimize(_cliff, optax.sgd(1.0), jnp.array([start]), steps=steps,
                   tol=tol, keep_path=True)
  n = int(3.5 - start)  # x_n = start + n is the last point below 3.5
  assert bool(trace.diverged) and not bool(trace.converged)
  assert int(trace.num_steps) == n
  np.testing.assert_array_equal(trace.params, [start + n + 1])
  expected = start + np.arange(1, n + 1)
  np.testing.assert_array_equal(trace.values[:n], -expected)
  np.testing.assert_array_equal(trace.path[:n, 0], expected)
  np.testing.assert_array_equal(trace.grad_norms[:n], 1.0)
  np.testing.assert_array_equal(trace.update_norms[:n], 1.0)
  np.testing.assert_array_equal(trace.cos_angles[:n], 1.0)
  for name in ("values", "grad_norms", "update_norms", "cos_angles"):
    assert np.all(np.isnan(getattr(trace, name)[n:])), name
  assert np.all(np.isnan(trace.path[n:]))


def _blow_up(learning_rate):
  """sgd whose update is finite for two steps, then infinite."""

  def update(updates, state, params=None):
    del params
    scale = jnp.where(state >= 2, jnp.inf, -learning_rate)
    return jax.tree.map(lambda g: scale * g, updates), state + 1

  return optax.GradientTransformation(lambda p: jnp.zeros((), jnp.int32),
                                      update)


@pytest.mark.parametrize("tol", [None, 1e-6])
def test_infinite_update_keeps_the_last_point(tol):
  trace = minimize(quadratic, _blow_up(0.05), X0, steps=5, tol=tol)
  expected = (1 - 0.05 * np.asarray(A)) ** 2 * np.asarray(X0)
  assert bool(trace.diverged) and int(trace.num_steps) == 2
  np.testing.assert_allclose(trace.params, expected, rtol=1e-6)
  np.testing.assert_allclose(trace.values[1], quadratic(expected), rtol=1e-6)
  assert np.all(np.isnan(trace.values[2:]))
  assert np.all(np.isnan(trace.update_norms[2:]))


def test_optax_line_search_inside_minimize():
  opt = optax.chain(
      optax.sgd(1.0),
      optax.scale_by_backtracking_linesearch(max_backtracking_steps=50),
  )
  x0 = jnp.array([-1.5, 2.0])
  trace = minimize(rosenbrock, opt, x0, steps=15)
  ref = reference_loop(rosenbrock, opt, x0, 15)
  np.testing.assert_allclose(trace.values, ref["values"], rtol=1e-4)
  rates = [float(optax.tree_utils.tree_get(s, "learning_rate"))
           for s in ref["states"]]
  np.testing.assert_allclose(trace.step_sizes, rates, rtol=1e-6)
  # Armijo: f never increases, from f(x_0) = 12.5 on.
  assert np.all(np.diff(np.concatenate([[12.5], trace.values])) <= 0)
  assert np.all(trace.step_sizes < 1.0)  # it did backtrack


def test_armijo_gd_inside_minimize():
  from wonderland import optim  # pylint: disable=g-import-not-at-top
  c = 1e-4
  opt = optim.armijo_gd(learning_rate=1.0, c=c)
  x0 = jnp.array([-1.5, 2.0])
  trace = minimize(rosenbrock, opt, x0, steps=20)
  ref = reference_loop(rosenbrock, opt, x0, 20)
  # Rosenbrock's valley amplifies float32 rounding up to ~3e-4 here.
  np.testing.assert_allclose(trace.values, ref["values"], rtol=2e-3)
  steps = [float(optax.tree_utils.tree_get(s, "step_size"))
           for s in ref["states"]]
  np.testing.assert_allclose(trace.step_sizes, steps, rtol=1e-6)
  # Sufficient decrease: f(x_t) <= f(x_{t-1}) - c eta_t ||grad f(x_{t-1})||^2.
  prev_values = np.concatenate([[float(rosenbrock(x0))], trace.values[:-1]])
  g0 = float(jnp.linalg.norm(jax.grad(rosenbrock)(x0)))
  prev_norms = np.concatenate([[g0], trace.grad_norms[:-1]])
  bound = prev_values - c * trace.step_sizes * prev_norms**2
  assert np.all(trace.values <= bound + 1e-6 * np.abs(bound))


def test_pytree_params_equal_flat_params():
  params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
  flat, unravel = ravel_pytree(params)

  def f_tree(p):
    return 0.5 * jnp.sum(A[:2] * p["w"] ** 2) + 5.0 * p["b"] ** 2

  def f_flat(v):
    return f_tree(unravel(v))

  opt = optax.sgd(0.05, momentum=0.5)
  tree = minimize(f_tree, opt, params, steps=12, keep_path=True)
  vec = minimize(f_flat, opt, flat, steps=12, keep_path=True)
  for name in ("values", "grad_norms", "update_norms", "cos_angles"):
    np.testing.assert_allclose(getattr(tree, name), getattr(vec, name),
                               rtol=1e-6, err_msg=name)
  np.testing.assert_allclose(ravel_pytree(tree.params)[0], vec.params,
                             rtol=1e-6)
  assert tree.path["w"].shape == (12, 2) and tree.path["b"].shape == (12,)


def test_minimize_under_vmap_keeps_runs_independent():
  # One learning rate diverges (eta a = 3 > 2); the others must not notice.
  lrs = jnp.array([0.05, 0.3, 0.1])
  batched = jax.vmap(
      lambda lr: minimize(quadratic, optax.sgd(lr), X0, steps=60)
  )(lrs)
  np.testing.assert_array_equal(batched.diverged, [False, True, False])
  for i, lr in enumerate([0.05, 0.3, 0.1]):
    single = minimize(quadratic, optax.sgd(lr), X0, steps=60)
    np.testing.assert_allclose(batched.values[i], single.values, rtol=1e-5)
    np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-5)
  assert np.all(np.isfinite(np.asarray(batched.values)[[0, 2]]))


def test_reproducible():
  opt = optax.adam(0.05)
  x0 = jnp.array([-1.5, 2.0])
  a = minimize(rosenbrock, opt, x0, steps=30)
  run_lib._minimize_jit.clear_cache()  # compiled again: the same bits
  b = minimize(rosenbrock, opt, x0, steps=30)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps must be a positive integer, got 0"),
        (dict(steps=2.5), "steps must be a positive integer, got 2.5"),
        (dict(steps=True), "steps must be a positive integer, got True"),
        (dict(steps=3, tol=-1.0), "tol must be None or a finite number >= 0"),
        (dict(steps=3, tol=float("nan")), "tol must be None or a finite"),
        (dict(steps=3, keep_path="yes"), "keep_path must be True or False"),
    ],
)
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    minimize(quadratic, optax.sgd(0.1), X0, **kwargs)


def test_bad_objective_optimizer_and_x0():
  with pytest.raises(ValueError, match="optimizer must be an optax"):
    minimize(quadratic, "sgd", X0, steps=3)
  with pytest.raises(ValueError, match=r"f must return a scalar .* \(3,\)"):
    minimize(lambda x: x**2, optax.sgd(0.1), X0, steps=3)
  with pytest.raises(ValueError, match="x0 must hold floating-point arrays"):
    minimize(quadratic, optax.sgd(0.1), jnp.arange(3), steps=3)
  with pytest.raises(ValueError, match="f could not be evaluated at x0"):
    minimize(rosenbrock, optax.sgd(0.1), jnp.array(1.0), steps=3)
  with pytest.raises(ValueError, match="f must be a callable"):
    minimize(3.0, optax.sgd(0.1), X0, steps=3)
  with pytest.raises(ValueError, match="x0 must hold .* leaf of type str"):
    minimize(quadratic, optax.sgd(0.1), "x0", steps=3)
  with pytest.raises(ValueError, match="x0 must hold .* ShapeDtypeStruct"):
    minimize(quadratic, optax.sgd(0.1), jax.ShapeDtypeStruct((3,), jnp.float32),
             steps=3)
  for dtype in (jnp.int32, jnp.bool_, jnp.complex64):
    with pytest.raises(ValueError, match=f"f must return a real floating-point "
                       f"scalar at x0 .*got dtype {jnp.dtype(dtype)}"):
      minimize(lambda x, d=dtype: quadratic(x).astype(d), optax.sgd(0.1), X0,
               steps=3)

  class Unhashable:  # a dataclass-like objective: __eq__ without __hash__
    __hash__ = None

    def __call__(self, x):
      return quadratic(x)

  with pytest.raises(ValueError, match="f must be hashable .*Unhashable"):
    minimize(Unhashable(), optax.sgd(0.1), X0, steps=3)


def test_tol_and_keep_path_accept_numpy_and_jax_scalars():
  a = minimize(quadratic, optax.sgd(0.1), X0, steps=50, tol=1e-2, keep_path=True)
  b = minimize(quadratic, optax.sgd(0.1), X0, steps=50, tol=np.float32(1e-2),
               keep_path=np.bool_(True))
  c = minimize(quadratic, optax.sgd(0.1), X0, steps=50, tol=jnp.asarray(1e-2))
  assert bool(a.converged) and int(a.num_steps) < 50
  for t in (b, c):
    assert int(t.num_steps) == int(a.num_steps)
  assert b.path is not None


def test_tol_is_not_rounded_to_float32_under_x64():
  with jax.enable_x64(True):
    x0 = jnp.ones(3, jnp.float64)  # ||grad f|| = sqrt(3) everywhere
    tiny = lambda x: 1e-50 * jnp.sum(x)
    # tol = 1e-49 is 0 in float32; ||grad|| = 1.7e-50 <= tol in float64.
    assert bool(minimize(tiny, optax.sgd(0.0), x0, steps=2, tol=1e-49).converged)
    just_above = float(np.sqrt(3.0)) * (1 + 1e-9)  # rounds below sqrt(3) in f32
    assert bool(minimize(lambda x: jnp.sum(x), optax.sgd(0.0), x0, steps=2,
                         tol=just_above).converged)


def test_a_cached_call_does_not_trace_f_again():
  # f is checked while jax traces minimize's program, not on every call: a
  # second call with the same f, optimizer and shapes runs no Python of f.
  traced = []

  def f(x):
    traced.append(1)
    return quadratic(x)

  optimizer = optax.sgd(0.1)
  first = minimize(f, optimizer, X0, steps=5)
  calls = len(traced)
  assert calls > 0
  second = minimize(f, optimizer, X0 + 1.0, steps=5)
  assert len(traced) == calls
  assert not np.array_equal(first.values, second.values)
  with pytest.raises(ValueError, match="f must return a scalar"):
    minimize(lambda x: x, optimizer, X0, steps=5)


def test_a_call_with_new_values_of_the_same_shapes_skips_the_checks(
    monkeypatch):
  # The checks' conclusions are remembered by what they read: f, the
  # optimizer, x0's structure, types, shapes and dtypes, and the other
  # arguments. New values of x0 (or of tol) go straight to the program;
  # anything else the checks read is checked again, and refused as before.
  from wonderland import _checks  # pylint: disable=g-import-not-at-top

  checked = []
  float_tree = _checks.float_tree
  monkeypatch.setattr(_checks, "float_tree",
                      lambda *a, **k: (checked.append(1), float_tree(*a, **k)))
  f = lambda x: quadratic(x)
  optimizer = optax.sgd(0.1)
  first = minimize(f, optimizer, X0, steps=7, tol=1e-9)
  assert len(checked) == 1
  second = minimize(f, optimizer, X0 + 1.0, steps=7, tol=1e-8)
  assert len(checked) == 1
  assert not np.array_equal(first.values, second.values)
  np.testing.assert_array_equal(
      second.values, minimize(lambda x: quadratic(x), optimizer, X0 + 1.0,
                              steps=7, tol=1e-8).values)
  with pytest.raises(ValueError, match=r"tol must be None or a finite number"):
    minimize(f, optimizer, X0, steps=7, tol=-1.0)
  minimize(f, optimizer, np.asarray(X0, np.float64), steps=7, tol=1e-9)
  assert len(checked) == 3  # a new dtype, and the new lambda above
  with pytest.raises(ValueError, match="x0 must hold floating-point arrays"):
    minimize(f, optimizer, np.zeros(3, np.int32), steps=7, tol=1e-9)
  with pytest.raises(ValueError, match="steps must be"):
    minimize(f, optimizer, X0, steps=7.0, tol=1e-9)  # a float 7.0 is not 7
  with pytest.raises(ValueError, match="keep_path must be"):
    minimize(f, optimizer, X0, steps=7, tol=1e-9, keep_path=1)
  # Arguments that do not hash are checked every time.
  before = len(checked)
  for _ in range(2):
    minimize(f, optimizer, X0, steps=7, record=["value"])
  assert len(checked) == before + 2
  with pytest.raises(ValueError, match="steps must be"):
    minimize(f, optimizer, X0, steps=[7])
