"""Tests for wonderland.problems: the registry, the references' minima, the real data."""

from __future__ import annotations

import functools
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wonderland import derivatives
from wonderland import landscape
from wonderland import problems

ANALYTIC = list(problems.analytic.__all__)
REAL_DATA = [n for n in problems.names() if n not in ANALYTIC]
SMALL = {"mlp_digits": {"hidden": 8}, "mlp_mnist1d": {"hidden": 8}, "cnn_mnist1d": {"channels": 4}}

# Minimizers and minima as printed by the references (Wikipedia's "Test functions
# for optimization", the SFU library), typed in independently of the module.
REFERENCE = {
    ("quadratic", ()): ([[0, 0]], 0.0),
    ("booth", ()): ([[1, 3]], 0.0),
    ("matyas", ()): ([[0, 0]], 0.0),
    ("rosenbrock", (("dim", 2),)): ([[1, 1]], 0.0),
    ("rosenbrock", (("dim", 5),)): ([[1] * 5], 0.0),
    ("beale", ()): ([[3, 0.5]], 0.0),
    ("himmelblau", ()): (
        [[3, 2], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]], 0.0),
    ("rastrigin", (("dim", 3),)): ([[0, 0, 0]], 0.0),
    ("ackley", (("dim", 2),)): ([[0, 0]], 0.0),
    ("styblinski_tang", (("dim", 2),)): ([[-2.903534] * 2], -39.16616570377 * 2),
    ("styblinski_tang", (("dim", 4),)): ([[-2.903534] * 4], -39.16616570377 * 4),
    ("three_hump_camel", ()): ([[0, 0]], 0.0),
    ("six_hump_camel", ()): ([[0.0898, -0.7126], [-0.0898, 0.7126]], -1.0316),
    ("goldstein_price", ()): ([[0, -1]], 3.0),
    ("mccormick", ()): ([[-0.54719, -1.54719]], -1.9133),
    ("sin_cos", ()): ([[4.411326, 2 * math.pi]], -1.760173),
    ("x_sin_2x", ()): ([[-5.542769], [5.542769]], -5.520354),
}


@functools.lru_cache(maxsize=None)
def _get(name):
  """One build per problem for the whole module (problems are immutable)."""
  return problems.get(name, **SMALL.get(name, {}))


@functools.lru_cache(maxsize=None)
def _batched(name):
  """jit(vmap(fn)) of ``_get(name)``: one program per problem, not one per eager op."""
  return jax.jit(jax.vmap(_get(name).fn))


@functools.lru_cache(maxsize=None)
def _hessian(name):
  return jax.jit(jax.hessian(_get(name).fn))


# Every init in this module draws N_INIT points: one sampler program per dim.
N_INIT = 2048


@pytest.fixture(scope="module")
def logistic():
  return _get("logistic_breast_cancer")


@pytest.fixture(scope="module")
def mlp():
  return _get("mlp_digits")


@pytest.mark.parametrize("key", list(REFERENCE), ids=lambda k: k[0] + str(dict(k[1])))
def test_minimizers_and_minimum_match_the_references(key):
  name, kwargs = key
  expected, fmin = REFERENCE[key]
  p = problems.get(name, **dict(kwargs))
  # Same set of minimizers, to the references' printed digits.
  got = np.asarray(p.minimizers)
  expected = np.asarray(expected, dtype=np.float64)
  assert got.shape == expected.shape
  for e in expected:
    assert np.min(np.max(np.abs(got - e), axis=1)) < 1e-4, (name, e, got)
  assert p.fmin == pytest.approx(fmin, rel=1e-4, abs=1e-5)


NO_MINIMIZER = ("saddle", "monkey_saddle")


def test_only_the_saddles_list_no_minimizer_and_they_are_unbounded():
  for name in ANALYTIC + ["logistic_breast_cancer"]:  # mlp_digits: none known
    p = _get(name)
    assert (p.minimizers.shape[0] == 0) == (name in NO_MINIMIZER), name
  for name in NO_MINIMIZER:
    p = _get(name)
    assert not p.bounded_below and np.isnan(p.fmin)
    # Unbounded below: f keeps falling along a ray from the saddle point.
    ray = jnp.array([-1.0, 0.0]) if name == "monkey_saddle" else jnp.array([0.0, 1.0])
    at_1, at_10, at_100 = (float(v) for v in _batched(name)(jnp.stack([ray, 10 * ray, 100 * ray])))
    assert at_100 < at_10 < at_1 < 0


@pytest.mark.parametrize(
    "name", [n for n in ANALYTIC if n not in NO_MINIMIZER] + ["logistic_breast_cancer"])
def test_every_known_minimizer_is_a_stationary_minimum_with_value_fmin(name):
  p = _get(name)
  m = p.minimizers.shape[0]
  assert m >= 1
  # f at the minimizers and at N_INIT points sampled in the box, in one program.
  points = p.minimizers
  if p.bounded_below:
    points = jnp.concatenate([points, p.init(jax.random.key(0), N_INIT)])
  values = np.asarray(_batched(name)(points))
  np.testing.assert_allclose(values[:m], p.fmin, rtol=1e-6, atol=1e-5)
  for x in p.minimizers:
    # Stationary (||grad f|| <= 1e-4 max(1, |lambda|_max): the float32 rounding
    # of x, not a step of 1e-4 away) and a minimum (a positive definite Hessian).
    assert landscape.classify_stationary_point(p.fn, x) == "minimum"
  # Nothing sampled in the box is lower than fmin.
  if p.bounded_below:
    assert values[m:].shape == (N_INIT,)
    assert float(values[m:].min()) >= p.fmin - 1e-5 * max(1.0, abs(p.fmin))


@pytest.mark.parametrize("name", ["himmelblau", "saddle", "monkey_saddle", "x_sin_2x"])
def test_listed_stationary_points_are_stationary_and_of_their_kind(name):
  p = _get(name)
  assert p.stationary_points
  for x, kind in p.stationary_points:
    assert landscape.classify_stationary_point(p.fn, x) == kind


def test_himmelblau_local_maximum_matches_the_reference():
  p = _get("himmelblau")
  maxima = [x for x, kind in p.stationary_points if kind == "maximum"]
  assert len(maxima) == 1
  np.testing.assert_allclose(maxima[0], [-0.270845, -0.923039], atol=1e-6)
  assert float(_batched("himmelblau")(maxima[0][None])[0]) == pytest.approx(181.617, abs=1e-3)


def test_sin_cos_minimum_is_the_lowest_point_of_a_fine_grid():
  p = _get("sin_cos")
  grid = np.linspace(0.0, 10.0, 801)
  xs, ys = np.meshgrid(grid, grid, indexing="ij")
  values = np.sin(xs) * np.cos(ys) + np.sin(xs / 2) * np.cos(ys / 2)  # numpy, float64
  i = np.unravel_index(np.argmin(values), values.shape)
  np.testing.assert_allclose(p.minimizers[0], [xs[i], ys[i]], atol=0.0125)
  assert p.fmin <= values.min() < p.fmin + 1e-3


def test_x_sin_2x_momentum_carries_past_the_local_minimum_gradient_descent_stops_in():
  p = _get("x_sin_2x")

  @jax.jit
  def run(lam):
    # g_t = -eta grad f(x_{t-1}) + lambda g_{t-1};  x_t = x_{t-1} + g_t  (§1.3.2)
    def step(carry, _):
      x, g = carry
      g = -0.05 * jax.grad(p.fn)(x) + lam * g
      return (x + g, g), None

    (x, _), _ = jax.lax.scan(step, (jnp.array([-3.9]), jnp.zeros(1)), None, length=1000)
    return x

  np.testing.assert_allclose(run(0.0), [-2.456590], atol=1e-4)  # stuck
  np.testing.assert_allclose(run(0.9), [0.0], atol=1e-4)  # carried past


@pytest.mark.parametrize("name", ["quadratic", "booth", "matyas", "rastrigin", "saddle"])
def test_smoothness_and_strong_convexity_match_the_hessian(name):
  p = _get(name)
  x = p.minimizers[0] if p.minimizers.shape[0] else jnp.zeros(p.dim)
  eigenvalues = np.linalg.eigvalsh(np.asarray(_hessian(name)(x)))
  assert p.smoothness == pytest.approx(np.max(np.abs(eigenvalues)), rel=1e-5)
  if p.strong_convexity is not None:
    assert p.strong_convexity == pytest.approx(eigenvalues.min(), rel=1e-5)


def test_quadratic_spreads_eigenvalues_over_one_to_kappa_even_when_rotated():
  p = problems.get("quadratic", kappa=100.0, dim=5, key=jax.random.key(1))
  hess = np.asarray(jax.jit(jax.hessian(p.fn))(jnp.zeros(5)))
  np.testing.assert_allclose(np.linalg.eigvalsh(hess), np.linspace(1, 100, 5), rtol=1e-4)
  assert np.max(np.abs(hess - np.diag(np.diag(hess)))) > 1.0  # really rotated
  assert (p.smoothness, p.strong_convexity, p.convex) == (100.0, 1.0, True)


@pytest.mark.parametrize("name", problems.names())
def test_init_stays_inside_the_bounds(name):
  p = _get(name)
  lower, upper = (np.asarray(b) for b in p.bounds)
  assert lower.shape == upper.shape == (p.dim,)
  x = np.asarray(p.init(jax.random.key(3), N_INIT))
  assert x.shape == (N_INIT, p.dim)
  assert np.all((x >= lower) & (x <= upper))
  # Different keys give different points.
  assert not np.allclose(x, p.init(jax.random.key(4), N_INIT))


def test_two_d_lists_a_dozen_two_dimensional_registry_problems():
  assert len(problems.two_d()) >= 12
  for name in problems.two_d():
    assert _get(name).dim == 2
  assert "quadratic" in problems.two_d()


def test_unknown_name_lists_the_valid_names():
  with pytest.raises(ValueError, match="unknown problem 'rosenbrok'.*rosenbrock"):
    problems.get("rosenbrok")


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("rosenbrock", {"dim": 1}, "dim must be an integer >= 2, got 1"),
        ("rastrigin", {"dim": 0}, "rastrigin: dim must be a positive integer, got 0"),
        ("ackley", {"dim": 2.5}, "ackley: dim must be a positive integer, got 2.5"),
        ("quadratic", {"kappa": 0.5}, "quadratic: kappa must be a finite number >= 1, got 0.5"),
        ("quadratic", {"kappa": 10.0, "dim": 1}, "dim=1 .* kappa must be 1"),
        ("booth", {"dim": 3}, "'booth' got unexpected argument.*dim.*no arguments"),
        ("rosenbrock", {"kappa": 3}, "unexpected argument.*kappa.*accepts: dim"),
        ("logistic_breast_cancer", {"l2": 0.0}, "l2 must be a finite number > 0"),
        ("mlp_digits", {"hidden": 0}, "hidden must be a positive integer, got 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(name, kwargs, match):
  with pytest.raises(ValueError, match=match):
    problems.get(name, **kwargs)


def test_wrong_dimension_input_names_the_expected_dim():
  p = problems.get("rosenbrock", dim=3)
  with pytest.raises(ValueError, match=r"rosenbrock takes a point x ~ \(3,\), got shape \(2,\)"):
    p.fn(jnp.ones(2))
  with pytest.raises(ValueError, match=r"x ~ \(3,\), got shape \(4, 3\)"):
    jax.jit(p.fn)(jnp.ones((4, 3)))
  np.testing.assert_allclose(jax.jit(jax.vmap(p.fn))(jnp.ones((4, 3))), np.zeros(4))
  assert float(p.fn(jnp.array([1, 1, 1]))) == 0.0  # integers are promoted
  with pytest.raises(ValueError, match="init: n must be a positive integer, got 0"):
    p.init(jax.random.key(0), 0)


def test_sizes_that_would_exhaust_memory_are_refused_before_allocating():
  # The dense quadratic would need 10^12 float64 entries (7 TiB and more).
  with pytest.raises(ValueError, match=r"quadratic: dim must keep the dense 1000000 x "
                     r"1000000 matrix A within 2\.0 GiB \(wonderland\._checks\.MAX_BYTES\), "
                     r"got 1000000, which needs about 10\.9 TiB\."):
    problems.get("quadratic", dim=10**6)
  with pytest.raises(ValueError, match=r"quadratic: dim must keep the dense .*"
                     r"which needs about 40\.0 TiB\."):
    problems.get("quadratic", dim=10**6, key=jax.random.key(0))
  with pytest.raises(ValueError, match=r"rosenbrock: dim must keep the problem's arrays "
                     r"within 2\.0 GiB"):
    problems.get("rosenbrock", dim=10**9)
  with pytest.raises(ValueError, match=r"init: n must keep the 10000000000 x 2 points "
                     r"within 2\.0 GiB"):
    problems.get("booth").init(jax.random.key(0), 10**10)
  assert problems.get("rastrigin", dim=10**5).init(jax.random.key(0), 2).shape == (2, 10**5)


def test_logistic_regression_minimizer_matches_scikit_learn(logistic):
  from sklearn.linear_model import LogisticRegression

  # fn is over the train split (399 of the 569 examples), standardized with
  # the train split's own mean and standard deviation.
  features, labels = (np.asarray(a, np.float64) for a in logistic.data)
  assert features.shape == (399, 30)
  np.testing.assert_allclose(features.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(features.std(0), 1.0, rtol=1e-4)
  augmented = np.hstack([features, np.ones((len(features), 1))])
  n, l2 = len(features), 1e-2
  # sklearn minimizes 1/2 ||w||^2 + C sum_i loss_i: C = 1/(n l2) is our objective
  # times 1/l2. fit_intercept=False with a column of ones regularizes the bias too.
  model = LogisticRegression(C=1 / (n * l2), fit_intercept=False, tol=1e-10, max_iter=10_000)
  model.fit(augmented, labels)
  np.testing.assert_allclose(logistic.minimizers[0], model.coef_[0], atol=2e-4)
  assert logistic.dim == 31 and logistic.convex and logistic.strong_convexity == l2
  # L bounds the Hessian's largest eigenvalue, at the minimizer and elsewhere.
  hessians = jax.jit(jax.vmap(jax.hessian(logistic.fn)))(
      jnp.stack([logistic.minimizers[0], jnp.zeros(31)]))
  tops = np.linalg.eigvalsh(np.asarray(hessians)).max(axis=1)
  for top in tops:
    assert top <= logistic.smoothness * (1 + 1e-5)
  top_at_zero = tops[1]
  assert top_at_zero == pytest.approx(logistic.smoothness, rel=1e-4)  # attained at 0


def test_minibatch_is_the_full_loss_at_full_size_and_unbiased_below(logistic):
  x = logistic.init(jax.random.key(0), N_INIT)[0]

  @jax.jit
  def losses(key):
    full = logistic.fn(x)
    whole = logistic.minibatch(key, 399)(x)  # the whole train split
    keys = jax.random.split(key, 1024)
    batches = jax.vmap(lambda k: logistic.minibatch(k, 16)(x))(keys)
    return full, whole, batches

  full, whole, batches = losses(jax.random.key(1))
  assert float(whole) == pytest.approx(float(full), rel=1e-5)
  assert float(jnp.std(batches)) > 0.01 * float(full)  # really a sample
  standard_error = float(jnp.std(batches)) / math.sqrt(1024)
  assert abs(float(jnp.mean(batches)) - float(full)) < 4 * standard_error
  with pytest.raises(ValueError, match=r"^batch_size must be a positive integer, got 400 "
                     r"\(at most 399\)\.$"):
    logistic.minibatch(jax.random.key(0), 400)


def test_mlp_digits_shapes_gradient_and_init(mlp):
  assert mlp.dim == 75 * 8 + 10 and mlp.convex is False and math.isnan(mlp.fmin)
  assert mlp.minimizers.shape == (0, mlp.dim)
  x = mlp.init(jax.random.key(0), N_INIT)[0]
  params = mlp.unravel(x)
  assert {k: v.shape for k, v in params.items()} == {
      "w1": (64, 8), "b1": (8,), "w2": (8, 10), "b2": (10,)}
  assert float(jnp.std(params["w1"])) == pytest.approx(0.88 / 8, rel=0.1)  # LeCun
  assert float(jnp.max(jnp.abs(params["b1"]))) == 0.0

  @jax.jit
  def check(x, key):
    # The gradient along v against a central difference (h = 1e-2).
    g = jax.grad(mlp.fn)(x)
    v = g / jnp.linalg.norm(g) + jax.random.normal(key, x.shape) / math.sqrt(x.shape[0])
    fd = (mlp.fn(x + 1e-2 * v) - mlp.fn(x - 1e-2 * v)) / 2e-2
    dd = derivatives.directional_derivative(mlp.fn, x, v)
    return mlp.fn(x), dd, fd, mlp.minibatch(key, 1257)(x)

  value, dd, fd, whole = check(x, jax.random.key(1))
  assert float(value) == pytest.approx(math.log(10), rel=0.3)  # small random init
  assert float(dd) == pytest.approx(float(fd), rel=1e-2)
  assert float(whole) == pytest.approx(float(value), rel=1e-5)


def test_real_data_without_scikit_learn_says_which_extra_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)
  for name in ("logistic_breast_cancer", "mlp_digits"):
    with pytest.raises(ImportError) as raised:
      problems.get(name)
    message = str(raised.value)
    assert message == (f"problem {name!r} needs scikit-learn, which is not installed; "
                       'install the data extra with pip install -e ".[data]".')
    assert raised.value.__cause__ is None  # one sentence, no chained traceback


@pytest.mark.parametrize("name", problems.names())
def test_only_real_data_problems_have_data_loss_evaluate_and_minibatch(name):
  p = _get(name)
  fields = (p.minibatch, p.loss, p.data, p.evaluate, p.unravel)
  if name in ANALYTIC:
    assert fields == (None,) * 5
  else:
    assert all(f is not None for f in fields), name


@pytest.mark.parametrize("name, sizes", [
    ("logistic_breast_cancer", (399, 85, 85)), ("mlp_digits", (1257, 270, 270))])
def test_real_data_splits_loss_and_evaluate(name, sizes):
  from sklearn import datasets
  from wonderland import data as data_lib

  raw = (datasets.load_breast_cancer() if name == "logistic_breast_cancer"
         else datasets.load_digits())
  # The documented split: SPLIT_SEED, 70 / 15 / 15 %, standardized on train.
  parts = data_lib.split((raw.data, raw.target),
                         dict(zip(("train", "validation", "test"), (None,) + sizes[1:])),
                         jax.random.key(0))
  assert parts["train"][0].shape[0] == sizes[0]
  x_train, x_val, x_test = data_lib.standardize(
      parts["train"][0], parts["validation"][0], parts["test"][0])
  p = _get(name)
  np.testing.assert_allclose(p.data[0], x_train, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(p.data[1], parts["train"][1])
  x = p.init(jax.random.key(5), N_INIT)[0] if name == "mlp_digits" else p.minimizers[0]
  held_out = ((x_val, parts["validation"][1], "val_accuracy"),
              (x_test, parts["test"][1], "test_accuracy"))

  @jax.jit
  def compute(x):
    # Held-out accuracies by hand on the documented splits, next to evaluate.
    w = p.unravel(x)
    by_hand = {}
    for features, labels, key in held_out:
      if name == "logistic_breast_cancer":
        predicted = (features @ w["w"] + w["b"]) > 0
      else:
        predicted = jnp.argmax(jnp.tanh(features @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"], -1)
      by_hand[key] = jnp.mean(predicted == labels)
    return p.evaluate(x), p.fn(x), p.loss(x, p.data), by_hand

  metrics, value, loss, by_hand = compute(x)
  assert set(metrics) == {"train_loss", "val_loss", "val_accuracy", "test_accuracy"}
  assert all(v.shape == () for v in metrics.values())
  assert float(metrics["train_loss"]) == pytest.approx(float(value), rel=1e-6)
  assert float(loss) == pytest.approx(float(value), rel=1e-6)
  for key in ("val_accuracy", "test_accuracy"):
    assert float(metrics[key]) == pytest.approx(float(by_hand[key]), abs=1e-6)
  if name == "logistic_breast_cancer":  # the minimizer classifies held-out data well
    assert float(metrics["test_accuracy"]) > 0.9 and float(metrics["val_accuracy"]) > 0.9
  with pytest.raises(ValueError, match=rf"{name}: batch must be a pair \(features ~ "
                     rf"\(b, {p.data[0].shape[1]}\), labels ~ \(b,\)\), got shapes"):
    p.loss(x, (p.data[0][:, :3], p.data[1]))


def test_bad_keys_names_and_points_get_one_sentence():
  p = problems.get("rosenbrock")
  with pytest.raises(ValueError, match="init: key must be a jax.random key, such as "
                     r"jax.random.key\(0\), got 0\."):
    p.init(0, 4)
  with pytest.raises(ValueError, match="quadratic: key must be a jax.random key"):
    problems.get("quadratic", key=3)
  with pytest.raises(ValueError, match="unknown problem \\['a'\\]; valid names are"):
    problems.get(["a"])
  with pytest.raises(ValueError, match="rosenbrock takes a real point x, got dtype complex64"):
    p.fn(jnp.array([1 + 1j, 1.0]))
  assert p.init(jax.random.PRNGKey(0), 2).shape == (2, 2)  # legacy keys work
