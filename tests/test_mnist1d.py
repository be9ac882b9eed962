"""Tests for the MNIST-1D tasks of wonderland.problems (logistic, MLP, the paper's CNN)."""

from __future__ import annotations

import functools
import importlib
import math
import random
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import data
from wonderland import problems
from wonderland.problems import mnist1d

NAMES = ("logistic_mnist1d", "mlp_mnist1d", "cnn_mnist1d")
DIMS = {"logistic_mnist1d": 410, "mlp_mnist1d": 15_210, "cnn_mnist1d": 5_210}


@functools.lru_cache(maxsize=None)
def _get(name, **kwargs):
  return problems.get(name, **kwargs)


# Every init here draws N_INIT points (one sampler program per task), and
# evaluate, unravel and loss run compiled, once per task, not op by op.
N_INIT = 4


@functools.lru_cache(maxsize=None)
def _jitted(name, what):
  return jax.jit(getattr(_get(name), what))


def test_generated_arrays_are_the_canonical_mnist1d():
  # Pinned from make_dataset(get_dataset_args()) of mnist1d 0.0.2: a change of
  # the package (or of its arguments) shows up here.
  a = mnist1d.load()
  assert a.x_train.shape == (4000, 40) and a.x_test.shape == (1000, 40)
  assert a.y_train.shape == (4000,) and a.y_test.shape == (1000,)
  np.testing.assert_allclose(
      a.x_train[0, :4], [-0.33200566736939, -0.47191036565572, -0.77869707629350,
                         -1.00974082653670], rtol=1e-6)
  np.testing.assert_allclose(a.x_test[-1, -3:], [0.65987564708908, 0.87773434975280,
                                                 1.19315183683528], rtol=1e-6)
  assert a.y_train[:12].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9]
  assert a.y_test[:8].tolist() == [2, 6, 3, 9, 4, 3, 1, 9]
  assert np.bincount(a.y_train).tolist() == [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
  assert float(a.x_train.sum()) == pytest.approx(-51.78746787509559, rel=1e-6)
  assert not a.x_train.flags.writeable  # the cache cannot be corrupted
  assert mnist1d.load() is a  # generated once per process


def test_generation_leaves_the_global_generators_as_they_were(monkeypatch):
  package = importlib.import_module("mnist1d.data")  # not wonderland's mnist1d

  def reseeding_make_dataset(args):  # what the package does, in small
    random.seed(args.seed)
    np.random.seed(args.seed)
    x, y = np.random.rand(5, 40), np.arange(5)
    return {"x": x[:4], "y": y[:4], "x_test": x[4:], "y_test": y[4:]}

  monkeypatch.setattr(package, "make_dataset", reseeding_make_dataset)
  random.seed(123)
  np.random.seed(123)
  expected = (random.random(), np.random.rand())
  random.seed(123)
  np.random.seed(123)
  arrays = mnist1d._generate.__wrapped__()  # pylint: disable=protected-access  # uncached
  assert arrays.x_train.shape == (4, 40)
  assert (random.random(), np.random.rand()) == expected


def test_missing_package_says_which_extra_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "mnist1d", None)
  monkeypatch.setitem(sys.modules, "mnist1d.data", None)
  with pytest.raises(ImportError) as raised:
    mnist1d._generate.__wrapped__()  # pylint: disable=protected-access
  assert str(raised.value) == (
      "the MNIST-1D problems need the mnist1d package, which is not installed; "
      'install the data extra with pip install -e ".[data]".')


def test_validation_is_500_of_the_4000_training_examples_with_a_fixed_seed():
  a = mnist1d.load()
  p = _get("logistic_mnist1d")
  features, labels = p.data
  assert features.shape == (3500, 40) and labels.shape == (3500,)
  assert labels.dtype == jnp.int32 and features.dtype == jnp.float32
  # The documented split, rebuilt: 3500 distinct training rows, raw signals.
  parts = data.split((a.x_train, a.y_train), {"train": None, "validation": 500},
                     jax.random.key(0))
  np.testing.assert_array_equal(features, parts["train"][0])
  np.testing.assert_array_equal(labels, parts["train"][1])
  rows = {r.tobytes() for r in np.asarray(a.x_train, np.float32)}
  train_rows = {r.tobytes() for r in np.asarray(features)}
  val_rows = {r.tobytes() for r in np.asarray(parts["validation"][0])}
  assert len(train_rows) == 3500 and train_rows <= rows and not train_rows & val_rows
  # evaluate's held-out accuracies are those of the rebuilt splits.
  x = p.init(jax.random.key(1), N_INIT)[0]
  w = {k: np.asarray(v) for k, v in _jitted(p.name, "unravel")(x).items()}
  metrics = _jitted(p.name, "evaluate")(x)
  for (f, y), key in ((parts["validation"], "val_accuracy"),
                      ((a.x_test, a.y_test), "test_accuracy")):
    predicted = np.argmax(np.asarray(f, np.float32) @ w["w"] + w["b"], axis=-1)
    assert float(metrics[key]) == pytest.approx(np.mean(predicted == np.asarray(y)), abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_each_task_is_a_full_problem(name):
  p = _get(name)
  assert p.dim == DIMS[name] and p.convex == (name == "logistic_mnist1d")
  assert p.minimizers.shape == (0, p.dim) and math.isnan(p.fmin)
  x = p.init(jax.random.key(0), N_INIT)
  assert x.shape == (N_INIT, p.dim)
  assert np.all((np.asarray(x) >= np.asarray(p.bounds[0]))
                & (np.asarray(x) <= np.asarray(p.bounds[1])))

  @jax.jit
  def check(x):
    value, grad = jax.value_and_grad(p.fn)(x)
    return value, grad, p.loss(x, p.data), p.evaluate(x)

  value, grad, whole, metrics = check(x[0])
  grad = np.asarray(grad)
  assert np.all(np.isfinite(grad)) and float(np.linalg.norm(grad)) > 0
  assert float(value) == pytest.approx(math.log(10), rel=0.15)  # near chance at init
  assert float(whole) == pytest.approx(float(value), rel=1e-6)
  assert set(metrics) == {"train_loss", "val_loss", "val_accuracy", "test_accuracy"}
  assert all(v.shape == () for v in metrics.values())
  assert float(metrics["train_loss"]) == pytest.approx(float(value), rel=1e-6)
  for k in ("val_accuracy", "test_accuracy"):
    assert 0.0 <= float(metrics[k]) <= 1.0
  with pytest.raises(ValueError, match=rf"{name} takes a point x ~ \({p.dim},\)"):
    p.evaluate(x)


def test_evaluate_vmaps_over_points_and_minibatch_is_the_loss_of_a_sampled_batch():
  p = _get("logistic_mnist1d")
  x = p.init(jax.random.key(6), N_INIT)[:3]

  @jax.jit
  def check(x, key):
    return (jax.vmap(p.evaluate)(x), jax.vmap(p.fn)(x),
            p.minibatch(key, 3500)(x[0]), p.minibatch(key, 100)(x[0]),
            p.loss(x[0], data.minibatch(p.data, key, 0, 100)))

  batched, values, whole, sampled, by_hand = check(x, jax.random.key(2))
  assert all(v.shape == (3,) for v in batched.values())
  np.testing.assert_allclose(batched["train_loss"], values, rtol=1e-6)
  for i in range(3):
    one = _jitted(p.name, "evaluate")(x[i])
    for k, v in one.items():
      assert float(batched[k][i]) == pytest.approx(float(v), rel=1e-5, abs=1e-6), k
  assert float(whole) == pytest.approx(float(values[0]), rel=1e-5)
  assert float(sampled) == float(by_hand)  # step 0 of wonderland.data's sampler


@pytest.mark.parametrize("name", NAMES)
def test_init_is_pytorch_default_uniform_over_fan_in(name):
  p = _get(name)
  weights = _jitted(name, "unravel")(p.init(jax.random.key(3), N_INIT)[0])
  weights = {k: np.asarray(w) for k, w in weights.items()}
  fan_in = {"w": 40, "b": 40} if name == "logistic_mnist1d" else (
      {"w1": 40, "b1": 40, "w2": 100, "b2": 100, "w3": 100, "b3": 100}
      if name == "mlp_mnist1d" else
      {"c1": 5, "d1": 5, "c2": 75, "d2": 75, "c3": 75, "d3": 75, "w": 125, "b": 125})
  assert set(weights) == set(fan_in)
  for k, w in weights.items():
    bound = 1 / math.sqrt(fan_in[k])
    assert float(np.max(np.abs(w))) <= np.float32(bound)
    if w.size >= 1000:  # U(-bound, bound) has std bound / sqrt(3)
      assert float(np.std(w)) == pytest.approx(bound / math.sqrt(3), rel=0.1), k


def _conv1d(h, kernel, bias):
  """PyTorch's Conv1d (stride 2, padding 1) then ReLU, by explicit sums."""
  width = kernel.shape[2]
  h = np.pad(h, ((0, 0), (1, 1)))
  length = (h.shape[1] - width) // 2 + 1
  out = np.stack([np.einsum("oik,ik->o", kernel, h[:, 2 * j:2 * j + width])
                  for j in range(length)], axis=1)
  return np.maximum(out + bias[:, None], 0.0)


def _cross_entropy(logits, labels):
  logits = logits - logits.max(axis=1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return -np.mean(log_p[np.arange(len(labels)), labels])


def test_cnn_matches_the_papers_convbase_written_out():
  p = _get("cnn_mnist1d")
  x = p.init(jax.random.key(4), N_INIT)[0]
  w = {k: np.asarray(v, np.float64) for k, v in _jitted(p.name, "unravel")(x).items()}
  assert {k: v.shape for k, v in w.items()} == {
      "c1": (25, 1, 5), "d1": (25,), "c2": (25, 25, 3), "d2": (25,),
      "c3": (25, 25, 3), "d3": (25,), "w": (125, 10), "b": (10,)}
  features, labels = (np.asarray(a) for a in p.data)
  features, labels = features[:6].astype(np.float64), labels[:6]
  logits = []
  for signal in features:
    h = _conv1d(signal[None, :], w["c1"], w["d1"])  # (25, 19)
    h = _conv1d(h, w["c2"], w["d2"])  # (25, 10)
    h = _conv1d(h, w["c3"], w["d3"])  # (25, 5)
    logits.append(h.reshape(-1) @ w["w"] + w["b"])  # channel-major flatten
  expected = _cross_entropy(np.stack(logits), labels)
  got = float(_jitted(p.name, "loss")(x, (p.data[0][:6], p.data[1][:6])))
  assert got == pytest.approx(expected, rel=1e-5)


def test_mlp_matches_a_numpy_forward_pass():
  p = _get("mlp_mnist1d")
  x = p.init(jax.random.key(5), N_INIT)[0]
  w = {k: np.asarray(v, np.float64) for k, v in _jitted(p.name, "unravel")(x).items()}
  features, labels = np.asarray(p.data[0][:8], np.float64), np.asarray(p.data[1][:8])
  h = np.maximum(features @ w["w1"] + w["b1"], 0)
  h = np.maximum(h @ w["w2"] + w["b2"], 0)
  expected = _cross_entropy(h @ w["w3"] + w["b3"], labels)
  got = float(_jitted(p.name, "loss")(x, (p.data[0][:8], p.data[1][:8])))
  assert got == pytest.approx(expected, rel=1e-5)


def test_standardize_is_fitted_on_the_train_split():
  raw, scaled = _get("logistic_mnist1d"), _get("logistic_mnist1d", standardize=True)
  features = np.asarray(scaled.data[0], np.float64)
  np.testing.assert_allclose(features.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(features.std(0), 1.0, rtol=1e-4)
  mean, std = np.asarray(raw.data[0], np.float64).mean(0), np.asarray(raw.data[0]).std(0)
  np.testing.assert_allclose(features, (np.asarray(raw.data[0]) - mean) / std, atol=1e-4)
  np.testing.assert_array_equal(raw.data[1], scaled.data[1])
  assert "standardized" in scaled.description and "standardized" not in raw.description


def test_mlp_learns_with_adam_on_minibatches_of_100():
  # A hand-written compiled loop: 300 Adam steps (lr 1e-3), batches of 100
  # from the stateless sampler. It reaches about 46% on validation; chance is 10%.
  p = _get("mlp_mnist1d")
  opt = optax.adam(1e-3)

  @jax.jit
  def train(x, key):
    def step(carry, t):
      x, state = carry
      grad = jax.grad(p.loss)(x, data.minibatch(p.data, key, t, 100))
      updates, state = opt.update(grad, state, x)
      return (optax.apply_updates(x, updates), state), None

    (x_end, _), _ = jax.lax.scan(step, (x, opt.init(x)), jnp.arange(300))
    return p.evaluate(x), p.evaluate(x_end)

  before, after = train(p.init(jax.random.key(0), N_INIT)[0], jax.random.key(1))
  assert float(after["val_accuracy"]) > 0.3 > float(before["val_accuracy"])
  assert float(after["train_loss"]) < 0.7 * float(before["train_loss"])


@pytest.mark.parametrize("name, kwargs, match", [
    ("mlp_mnist1d", {"hidden": 0}, "mlp_mnist1d: hidden must be a positive integer, got 0."),
    ("cnn_mnist1d", {"channels": 2.0},
     "cnn_mnist1d: channels must be a positive integer, got 2.0."),
    ("logistic_mnist1d", {"standardize": "yes"},
     "logistic_mnist1d: standardize must be True or False, got 'yes'."),
])
def test_bad_arguments_get_one_sentence(name, kwargs, match):
  with pytest.raises(ValueError) as raised:
    problems.get(name, **kwargs)
  assert str(raised.value) == match


def test_bad_batches_get_one_sentence():
  p = _get("logistic_mnist1d")
  x = np.zeros(p.dim, np.float32)
  with pytest.raises(ValueError, match=r"^logistic_mnist1d: batch must be a pair \(features ~ "
                     r"\(b, 40\), labels ~ \(b,\)\), got shapes \(5, 40\) and \(4,\)\.$"):
    p.loss(x, (np.zeros((5, 40)), np.zeros(4, np.int32)))
  with pytest.raises(ValueError, match=r"batch must be a pair .*got an array of shape "
                     r"\(7, 40\)\.$"):
    p.loss(x, np.zeros((7, 40)))
  with pytest.raises(ValueError, match=r"^logistic_mnist1d: batch labels must be integers, "
                     r"got dtype float32\.$"):
    p.loss(x, (np.zeros((5, 40)), np.zeros(5, np.float32)))
