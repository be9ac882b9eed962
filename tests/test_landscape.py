"""Tests for wonderland.landscape: the definitions of §1.3.1, checked numerically."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from tests import _models
from wonderland import landscape
from wonderland import optim
from wonderland import problems

KEY = jax.random.key(0)


@functools.lru_cache(maxsize=None)
def _get(name, **kwargs):
  return problems.get(name, **kwargs)


@functools.lru_cache(maxsize=None)
def _quadratic_8():
  """quadratic(kappa=50, dim=8), rotated: one build (one fn) for the module."""
  return problems.get("quadratic", kappa=50.0, dim=8, key=jax.random.key(2))


def _cube(x):
  return x[0] ** 3


def _neg_square(x):
  return -jnp.sum(x**2)


# is_descent_direction ----------------------------------------------------------


def test_descent_direction_is_the_sign_of_the_directional_derivative():
  f = _get("rosenbrock").fn
  x = jnp.array([-1.0, 2.0])
  g = np.asarray(jax.jit(jax.grad(f))(x))
  orthogonal = np.array([-g[1], g[0]])
  # p descends exactly when it is within 90 degrees of -g (cos alpha < 0 with g).
  angles = (0.0, 1.0, 1.5, 1.65, 2.5, 3.1)
  rotated = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32) @ -g
             for a in angles]
  directions = jnp.asarray(np.stack([-g, g, orthogonal, *rotated]), jnp.float32)
  # Every direction in one program (is_descent_direction is traceable).
  descends = np.asarray(jax.jit(jax.vmap(
      lambda p: landscape.is_descent_direction(f, x, p)))(directions))
  assert descends[0]  # steepest descent
  assert not descends[1]
  assert not descends[2]  # D_p f = 0
  for angle, got in zip(angles, descends[3:]):
    assert bool(got) == (np.cos(angle) > 0), angle


def test_descent_direction_rejects_a_misshapen_direction():
  with pytest.raises(ValueError, match=r"p must have the structure and shapes of x, got x ~ \(2,\) and p ~ \(3,\)"):
    landscape.is_descent_direction(_get("booth").fn, jnp.zeros(2), jnp.ones(3))


# classify_stationary_point -----------------------------------------------------


@pytest.mark.parametrize(
    "name, x, kind",
    [
        ("himmelblau", [-0.270845, -0.923039], "maximum"),  # the reference's maximum
        ("himmelblau", [3.0, 2.0], "minimum"),
        ("himmelblau", [0.0, 0.0], "not stationary"),
        ("saddle", [0.0, 0.0], "saddle"),
        ("saddle", [0.5, 0.0], "not stationary"),
        ("monkey_saddle", [0.0, 0.0], "degenerate"),
        ("rosenbrock", [1.0, 1.001], "not stationary"),  # 1e-3 from the minimum
        ("rosenbrock", [0.5, 0.25], "not stationary"),  # on the flat valley floor
    ],
)
def test_classify_known_points(name, x, kind):
  assert landscape.classify_stationary_point(_get(name).fn, jnp.array(x)) == kind


def test_classify_one_dimensional_textbook_cases():
  assert landscape.classify_stationary_point(_cube, jnp.array([0.0])) == "degenerate"
  assert landscape.classify_stationary_point(_neg_square, jnp.zeros(3)) == "maximum"
  # An indefinite Hessian is a saddle even with a zero eigenvalue.
  f = lambda x: x[0] ** 2 - x[1] ** 2 + x[2] ** 4
  assert landscape.classify_stationary_point(f, jnp.zeros(3)) == "saddle"


def test_classify_rejects_bad_arguments():
  f = _get("booth").fn
  with pytest.raises(ValueError, match=r"x must be a point ~ \(d,\).*got shape \(1, 2\)"):
    landscape.classify_stationary_point(f, jnp.zeros((1, 2)))
  with pytest.raises(ValueError, match="tol must be a finite number > 0, got 0"):
    landscape.classify_stationary_point(f, jnp.zeros(2), tol=0)
  with pytest.raises(ValueError, match=r"booth takes a point x ~ \(2,\), got shape \(3,\)"):
    landscape.classify_stationary_point(f, jnp.zeros(3))


# is_local_minimum --------------------------------------------------------------


def test_local_minimum_by_the_epsilon_ball_definition():
  him = _get("himmelblau")
  for x in np.asarray(him.minimizers):
    assert bool(landscape.is_local_minimum(him.fn, x, KEY))
  for x, _ in him.stationary_points:  # the maximum and the saddles
    assert not bool(landscape.is_local_minimum(him.fn, x, KEY))
  assert not bool(landscape.is_local_minimum(_get("saddle").fn, jnp.zeros(2), KEY))
  # The monkey saddle's cubic drop is visible at a larger radius.
  assert not bool(landscape.is_local_minimum(_get("monkey_saddle").fn, jnp.zeros(2), KEY, eps=0.1))
  # A minimizer moved by 1e-2 is not a local minimum.
  assert not bool(landscape.is_local_minimum(him.fn, him.minimizers[0] + 1e-2, KEY))


def test_local_minimum_rejects_bad_arguments():
  f = _get("booth").fn
  with pytest.raises(ValueError, match="eps must be a finite number > 0, got -1"):
    landscape.is_local_minimum(f, jnp.zeros(2), KEY, eps=-1)
  with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
    landscape.is_local_minimum(f, jnp.zeros(2), KEY, n=0)


# convexity_test ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, convex",
    [("quadratic", True), ("booth", True), ("logistic_breast_cancer", True),
     ("rastrigin", False), ("himmelblau", False)],
)
def test_convexity_test_separates_convex_from_non_convex(name, convex):
  p = _get(name)
  # The default n_pairs: the chord sampler is the one the other tests compile.
  report = landscape.convexity_test(p.fn, KEY, p.bounds)
  assert report.n_points == 1024 * 8
  if convex:
    assert report.violation_fraction == 0.0
    f_x1 = float(jax.jit(p.fn)(report.worst_x1))
    assert report.worst_violation <= 1e-5 * max(1.0, abs(f_x1))
  else:
    assert report.violation_fraction > 0.05
    # The worst chord really violates the inequality (recomputed in float64).
    a = report.worst_alpha
    x1 = np.asarray(report.worst_x1, np.float64)
    x2 = np.asarray(report.worst_x2, np.float64)
    with jax.enable_x64(True):
      f_mid, f1, f2 = (float(v) for v in jax.jit(jax.vmap(p.fn))(
          jnp.asarray(np.stack([a * x1 + (1 - a) * x2, x1, x2]), jnp.float64)))
    gap = f_mid - (a * f1 + (1 - a) * f2)
    assert gap == pytest.approx(report.worst_violation, rel=1e-3)
    assert gap > 1.0


def test_convexity_test_rejects_bad_bounds():
  f = _get("booth").fn
  with pytest.raises(ValueError, match="lower < upper"):
    landscape.convexity_test(f, KEY, (jnp.ones(2), jnp.zeros(2)))
  with pytest.raises(ValueError, match="same shape"):
    landscape.convexity_test(f, KEY, (jnp.zeros(2), jnp.ones(3)))
  with pytest.raises(ValueError, match="pair"):
    landscape.convexity_test(f, KEY, jnp.zeros(3))
  with pytest.raises(ValueError, match=r"bounds\[0\] must be a point ~ \(d,\)"):
    landscape.convexity_test(f, KEY, (0.0, 1.0))
  with pytest.raises(ValueError, match="n_pairs must be a positive integer"):
    landscape.convexity_test(f, KEY, _get("booth").bounds, n_pairs=0)


# smoothness --------------------------------------------------------------------


def test_smoothness_of_quadratic_kappa_50_is_50():
  q = _get("quadratic", kappa=50.0)
  assert float(landscape.smoothness(q.fn, jnp.array([0.3, -2.0]))) == pytest.approx(50.0, rel=1e-3)


def test_smoothness_matches_the_hessian_spectrum():
  q = _quadratic_8()
  assert float(landscape.smoothness(q.fn, jnp.ones(8))) == pytest.approx(50.0, rel=1e-3)
  # Away from a quadratic: the largest |eigenvalue| of the Hessian at x.
  him = _get("himmelblau")
  for x in (jnp.array([1.0, -0.5]), jnp.array([-0.270845, -0.923039])):
    top = np.max(np.abs(np.linalg.eigvalsh(_flat_hessian(him.fn, x))))
    assert float(landscape.smoothness(him.fn, x, key=KEY)) == pytest.approx(top, rel=1e-3)
  # Eigenvalues +-2: the magnitude, not the sign.
  assert float(landscape.smoothness(_get("saddle").fn, jnp.zeros(2))) == pytest.approx(2.0)
  # Gradient descent with eta = 1/L decreases the quadratic at every step.
  x = jnp.ones(8)
  eta = 1 / float(landscape.smoothness(q.fn, x))

  @jax.jit
  def descend(x):
    def step(x, _):
      x = x - eta * jax.grad(q.fn)(x)
      return x, q.fn(x)
    return q.fn(x), jax.lax.scan(step, x, None, length=20)[1]

  first, rest = descend(x)
  values = [float(first), *np.asarray(rest).tolist()]
  assert len(values) == 21
  assert all(b < a for a, b in zip(values, values[1:]))


def test_smoothness_rejects_bad_arguments():
  with pytest.raises(ValueError, match="max_iter must be a positive integer, got 0"):
    landscape.smoothness(_get("booth").fn, jnp.zeros(2), max_iter=0)


# find_stationary_points --------------------------------------------------------


def test_multistart_finds_himmelblau_four_minima_maximum_and_saddles():
  p = _get("himmelblau")
  found = landscape.find_stationary_points(p.fn, KEY, p.bounds, n_starts=256)
  kinds = [kind for _, kind in found]
  assert kinds.count("minimum") == 4
  assert kinds.count("maximum") == 1
  assert kinds.count("saddle") == 4
  minima = np.array([np.asarray(x) for x, kind in found if kind == "minimum"])
  reference = np.array([[3, 2], [-2.805118, 3.131312], [-3.779310, -3.283186],
                        [3.584428, -1.848126]])
  for r in reference:  # each reference minimum found once, to its printed digits
    assert np.sum(np.max(np.abs(minima - r), axis=1) < 1e-5) == 1
  (maximum,) = [x for x, kind in found if kind == "maximum"]
  np.testing.assert_allclose(maximum, [-0.270845, -0.923039], atol=1e-5)
  values = np.asarray(jax.jit(jax.vmap(p.fn))(jnp.stack([x for x, _ in found]))).tolist()
  assert values == sorted(values)


def _grid_extrema(values):
  """Interior grid points lower (higher) than their 8 neighbours."""
  core = values[1:-1, 1:-1]
  neighbours = [values[1 + i:values.shape[0] - 1 + i, 1 + j:values.shape[1] - 1 + j]
                for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
  lower = np.all([core < n for n in neighbours], axis=0)
  higher = np.all([core > n for n in neighbours], axis=0)
  return np.argwhere(lower) + 1, np.argwhere(higher) + 1


def test_multistart_finds_the_minima_maxima_and_saddles_of_sin_cos():
  p = _get("sin_cos")
  found = landscape.find_stationary_points(p.fn, KEY, p.bounds, n_starts=256)
  by_kind = {k: np.array([np.asarray(x) for x, kind in found if kind == k]).reshape(-1, 2)
             for k in landscape.KINDS}
  interior = {k: v[np.all((v > 1e-3) & (v < 10 - 1e-3), axis=1)] for k, v in by_kind.items()}
  # Independent reference: the local extrema of f on a 401 x 401 grid (numpy).
  grid = np.linspace(0.0, 10.0, 401)
  xs, ys = np.meshgrid(grid, grid, indexing="ij")
  values = np.sin(xs) * np.cos(ys) + np.sin(xs / 2) * np.cos(ys / 2)
  for kind, cells in zip(("minimum", "maximum"), _grid_extrema(values)):
    expected = grid[cells]
    got = interior[kind]
    assert len(got) == len(expected), kind
    for e in expected:
      assert np.min(np.max(np.abs(got - e), axis=1)) <= 0.025, (kind, e)
  assert len(interior["minimum"]) == 5 and len(interior["maximum"]) == 4
  np.testing.assert_allclose(found[0][0], p.minimizers[0], atol=1e-4)  # lowest first
  # Saddles: neither minima of f nor of -f on the eps-ball (sampled, no Hessian).
  assert len(interior["saddle"]) == 9
  neg = lambda x: -p.fn(x)
  for x in interior["saddle"]:
    assert not bool(landscape.is_local_minimum(p.fn, jnp.asarray(x), KEY))
    assert not bool(landscape.is_local_minimum(neg, jnp.asarray(x), KEY))
  assert not by_kind["degenerate"].size


def test_multistart_on_rosenbrock_finds_only_the_minimum_not_the_flat_valley():
  p = _get("rosenbrock")
  found = landscape.find_stationary_points(p.fn, KEY, p.bounds, n_starts=64)
  assert len(found) == 1 and found[0][1] == "minimum"
  np.testing.assert_allclose(found[0][0], [1.0, 1.0], atol=1e-5)


def test_multistart_finds_the_degenerate_monkey_saddle():
  p = _get("monkey_saddle")
  found = landscape.find_stationary_points(p.fn, KEY, p.bounds, n_starts=16)
  assert len(found) == 1 and found[0][1] == "degenerate"
  np.testing.assert_allclose(found[0][0], [0.0, 0.0], atol=1e-3)


def test_find_stationary_points_rejects_bad_arguments():
  p = _get("booth")
  with pytest.raises(ValueError, match="n_starts must be a positive integer, got 0"):
    landscape.find_stationary_points(p.fn, KEY, p.bounds, n_starts=0)
  with pytest.raises(ValueError, match="merge_tol must be a finite number > 0"):
    landscape.find_stationary_points(p.fn, KEY, p.bounds, merge_tol=-1.0)


def test_vector_valued_f_bad_keys_and_complex_points_are_refused():
  vector = lambda x: 2 * x
  key = jax.random.key(0)
  box = (jnp.zeros(2), jnp.ones(2))
  with pytest.raises(ValueError, match="f must return a scalar at x"):
    landscape.is_descent_direction(vector, jnp.ones(2), -jnp.ones(2))
  with pytest.raises(ValueError, match="f must return a scalar at x"):
    landscape.is_local_minimum(vector, jnp.zeros(2), key)
  with pytest.raises(ValueError, match="f must return a scalar at x"):
    landscape.convexity_test(vector, key, box)
  booth = _get("booth").fn
  for bad in (0, jnp.zeros(3, jnp.uint32), "key"):
    with pytest.raises(ValueError, match="key must be a jax.random key"):
      landscape.convexity_test(booth, bad, box)
  landscape.convexity_test(booth, jax.random.PRNGKey(0), box)  # legacy keys work
  with pytest.raises(ValueError, match=r"x must be a real point ~ \(d,\), got dtype complex64"):
    landscape.classify_stationary_point(booth, jnp.array([1 + 1j, 3]))


def test_half_precision_points_and_boxes_are_computed_in_float32():
  booth = _get("booth").fn  # convex, minimum at (1, 3)
  for dtype in (jnp.float16, jnp.bfloat16):
    assert landscape.classify_stationary_point(
        booth, jnp.array([1.0, 3.0], dtype)) == "minimum"
    box = (jnp.zeros(2, dtype), jnp.ones(2, dtype))
    report = landscape.convexity_test(booth, jax.random.key(0), box)
    assert report.violation_fraction == 0.0  # no rounding fakes non-convexity


def test_convexity_test_refuses_a_box_where_f_is_not_finite():
  f = lambda x: jnp.where(x[0] > 0, jnp.nan, jnp.sum(x**2))
  with pytest.raises(ValueError, match=r"f must be finite in bounds .*sampled "
                     r"chord points; shrink bounds"):
    landscape.convexity_test(f, jax.random.key(0), (-jnp.ones(2), jnp.ones(2)))


def test_smoothness_default_start_is_not_orthogonal_to_simple_eigenvectors():
  # Top eigenvectors (2, -1) and (1, -2, 1) are orthogonal to any evenly
  # spaced start such as (1, ..., 2): power iteration then finds lambda_2.
  for top, d in (([2.0, -1.0], 2), ([1.0, -2.0, 1.0], 3)):
    u = np.asarray(top) / np.linalg.norm(top)
    a = jnp.asarray(9.0 * np.outer(u, u) + np.eye(d), jnp.float32)  # L = 10
    f = lambda x, a=a: 0.5 * x @ a @ x
    assert float(landscape.smoothness(f, jnp.ones(d))) == pytest.approx(10.0, rel=1e-5)


# sizes -------------------------------------------------------------------------


def test_sizes_that_would_exhaust_memory_are_refused_before_allocating():
  booth = _get("booth")
  with pytest.raises(ValueError, match=r"n_pairs must keep the sampled chords .* within "
                     r"2\.0 GiB \(wonderland\._checks\.MAX_BYTES\), got 1000000000, which "
                     r"needs about \d+\.\d GiB\."):
    landscape.convexity_test(booth.fn, KEY, booth.bounds, n_pairs=10**9)
  with pytest.raises(ValueError, match=r"n_starts must keep the starts' Hessians and "
                     r"their 1000000000 x 1000000000 distances within 2\.0 GiB .*got "
                     r"1000000000, which needs about \d+\.\d PiB\."):
    landscape.find_stationary_points(booth.fn, KEY, booth.bounds, n_starts=10**9)
  with pytest.raises(ValueError, match=r"n must keep the sampled points within 2\.0 GiB"):
    landscape.is_local_minimum(booth.fn, jnp.zeros(2), KEY, n=10**10)
  with pytest.raises(ValueError, match=r"x must keep its d x d Hessian within 2\.0 GiB "
                     r".*got a point ~ \(100000,\)"):
    landscape.classify_stationary_point(jnp.sum, jnp.zeros(10**5))
  with pytest.raises(ValueError, match=r"n_steps must be a positive integer.*"
                     r"10000000000.*2,147,483,647"):
    landscape.find_stationary_points(booth.fn, KEY, booth.bounds, n_steps=10**10)


# sharpness ---------------------------------------------------------------------


def _rotated(eigenvalues, seed=0):
  """A = Q diag(eigenvalues) Q^T for a random rotation Q, float32."""
  d = len(eigenvalues)
  q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
  return jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)


def _quadratic_with_eigenvalues(eigenvalues, seed=0):
  """f(x) = x^T A x / 2 with A = Q diag(eigenvalues) Q^T for a random rotation Q."""
  a = _rotated(eigenvalues, seed)
  return lambda x: 0.5 * x @ (a @ x)


@jax.jit
def _quadratic_sharpness(a, x):
  """sharpness of x^T a x / 2 at x, a an argument: one program per shape, not per a."""
  return landscape.sharpness(lambda x: 0.5 * x @ (a @ x), x)


_HESSIANS = {}


def _flat_hessian(f, x):
  """The full Hessian of f at the flattened x, float64; one program per f."""
  flat, unravel = ravel_pytree(x)
  if f not in _HESSIANS:  # every f here takes one structure of x
    _HESSIANS[f] = jax.jit(jax.hessian(lambda z: f(unravel(z))))
  return np.asarray(_HESSIANS[f](flat), np.float64)


def _top_eigenvalue(f, x):
  """The reference: eigvalsh of the full Hessian of f at the flattened x."""
  h = _flat_hessian(f, x)
  return float(np.linalg.eigvalsh((h + h.T) / 2)[-1])


def _mlp():
  """A 3-4-2 tanh MLP with squared error on 16 fixed examples: a pytree x."""
  loss, params, _ = _models.tiny_mlp()
  return loss, params


def test_sharpness_of_quadratics_is_the_largest_eigenvalue_of_a():
  q = _quadratic_8()
  assert float(landscape.sharpness(q.fn, jnp.ones(8))) == pytest.approx(50.0, rel=1e-4)
  # The largest algebraic eigenvalue, not the largest magnitude: where a
  # negative eigenvalue dominates, power iteration alone would answer -10.
  for eigenvalues, top in (([-10.0, 1.0, 3.0], 3.0), ([-6.0, -2.0], -2.0),
                           ([-5.0, 4.9, 1.0], 4.9)):
    x = jnp.ones(len(eigenvalues))
    got = float(_quadratic_sharpness(_rotated(eigenvalues), x))
    assert got == pytest.approx(top, rel=1e-4), eigenvalues
  f = _quadratic_with_eigenvalues(eigenvalues)
  assert float(landscape.smoothness(f, x)) == pytest.approx(5.0, rel=1e-4)  # |lambda|
  # Eigenvalues +-2 of equal magnitude: the positive one.
  assert float(landscape.sharpness(_get("saddle").fn, jnp.zeros(2))) == pytest.approx(2.0)


def test_sharpness_matches_eigvalsh_of_the_full_hessian():
  loss, params = _mlp()
  him = _get("himmelblau")
  cases = [(loss, params), (him.fn, jnp.array([1.0, -0.5])),
           (him.fn, jnp.array([-0.270845, -0.923039]))]  # a maximum: lambda_max < 0
  for f, x in cases:
    expected = _top_eigenvalue(f, x)
    got = float(landscape.sharpness(f, x))
    assert abs(got - expected) <= 1e-3 * abs(expected), (expected, got)
  # A Gaussian start or a given one reach the same value.
  expected = _top_eigenvalue(loss, params)
  assert float(landscape.sharpness(loss, params, key=KEY)) == pytest.approx(expected, rel=1e-3)
  v0 = jax.tree.map(jnp.ones_like, params)
  assert float(landscape.sharpness(loss, params, v0=v0)) == pytest.approx(expected, rel=1e-3)


def test_sharpness_is_pure_and_jittable_and_vmappable():
  him = _get("himmelblau")
  xs = np.array([[1.0, -0.5], [3.0, 2.0], [-2.0, 1.0]], np.float32)
  expected = [_top_eigenvalue(him.fn, x) for x in xs]
  jitted = jax.jit(lambda x: landscape.sharpness(him.fn, x))
  np.testing.assert_allclose([float(jitted(x)) for x in xs], expected, rtol=1e-3)
  batched = jax.vmap(lambda x: landscape.sharpness(him.fn, x))(jnp.asarray(xs))
  np.testing.assert_allclose(batched, expected, rtol=1e-3)


def test_preconditioned_sharpness_is_the_top_eigenvalue_of_the_rescaled_hessian():
  loss, params = _mlp()
  flat, unravel = ravel_pytree(params)
  p_flat = jnp.asarray(np.random.default_rng(3).uniform(0.1, 2.0, flat.size), jnp.float32)
  h = _flat_hessian(loss, params)
  s = np.diag(1 / np.sqrt(np.asarray(p_flat, np.float64)))
  expected = float(np.linalg.eigvalsh(s @ h @ s)[-1])
  got = float(landscape.preconditioned_sharpness(loss, params, unravel(p_flat)))
  assert got == pytest.approx(expected, rel=1e-3)
  ones = jax.tree.map(jnp.ones_like, params)  # P = I: the plain sharpness
  assert float(landscape.preconditioned_sharpness(loss, params, ones)) == pytest.approx(
      float(landscape.sharpness(loss, params)), rel=1e-5)


def test_preconditioner_reads_adagrad_rmsprop_and_adam_states():
  f = _quadratic_with_eigenvalues([1.0, 4.0])
  x = jnp.array([1.0, -2.0])

  def state_after(opt, steps=3):
    @jax.jit  # the three steps in one program, not op by op
    def run(x):
      state, y = opt.init(x), x
      for _ in range(steps):
        updates, state = opt.update(jax.grad(f)(y), state, y)
        y = optax.apply_updates(y, updates)
      return state

    return run(x)

  adam = state_after(optim.adam(0.1, b2=0.99, eps=1e-3))
  nu = adam[0].nu
  np.testing.assert_allclose(landscape.preconditioner(adam, b2=0.99, eps=1e-3),
                             np.sqrt(np.asarray(nu) / np.float32(1 - 0.99**3)) + np.float32(1e-3),
                             rtol=1e-6)
  rms = state_after(optim.rmsprop(0.1))
  np.testing.assert_allclose(landscape.preconditioner(rms),
                             np.sqrt(np.asarray(rms[0].nu)) + np.float32(1e-8))
  ada = state_after(optim.adagrad(0.1))
  np.testing.assert_allclose(landscape.preconditioner(ada),
                             np.sqrt(np.asarray(ada[0].sum_of_squares)) + np.float32(1e-10))
  # optax.inject_hyperparams keeps eps and b2 in the state: they are read there.
  injected = state_after(optax.inject_hyperparams(optim.adam)(
      learning_rate=0.1, b2=0.99, eps=1e-3))
  np.testing.assert_allclose(landscape.preconditioner(injected),
                             landscape.preconditioner(adam, b2=0.99, eps=1e-3), rtol=1e-6)
  assert np.all(np.asarray(landscape.preconditioner(optim.adam(0.1).init(x))) == 1e-8)
  with pytest.raises(ValueError, match="opt_state must hold exactly one of AdagradState, "
                     "AdamState, RmspropState .*got 0"):
    landscape.preconditioner(optim.gd(0.1).init(x))


def test_sharpness_rejects_bad_arguments():
  loss, params = _mlp()
  with pytest.raises(ValueError, match="key and v0 must not both be given"):
    landscape.sharpness(loss, params, key=KEY, v0=params)
  with pytest.raises(ValueError, match=r"v0 must have the structure and shapes of x"):
    landscape.sharpness(loss, params, v0=jnp.ones(3))
  with pytest.raises(ValueError, match=r"p_diag must have the structure and shapes of x"):
    landscape.preconditioned_sharpness(loss, params, {"w1": jnp.ones((3, 4))})
  with pytest.raises(ValueError, match="iters must be a positive integer"):
    landscape.sharpness(loss, params, iters=0)
  with pytest.raises(ValueError, match="tol must be a finite number > 0"):
    landscape.sharpness(loss, params, tol=-1.0)
  with pytest.raises(ValueError, match="f must return a scalar at x"):
    landscape.sharpness(lambda x: 2 * x, jnp.ones(2))
  with pytest.raises(ValueError, match="x must hold floating-point arrays"):
    landscape.sharpness(jnp.sum, jnp.arange(3))
