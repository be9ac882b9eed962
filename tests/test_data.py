"""Tests for wonderland.data: splits, standardisation, the stateless minibatch sampler."""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wonderland import data


def _reference_permute(key, positions, n):
  """The swap-or-not shuffle written out in Python integers."""
  rounds = data.permutation_rounds(n)
  bits = np.asarray(jax.random.bits(key, (rounds, 2), jnp.uint32)).astype(np.int64)

  def mix(x):
    m = 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & m
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & m
    return x ^ (x >> 16)

  out = []
  for x in positions:
    for pivot, seed in bits:
      partner = (int(pivot) % n - x) % n
      if mix(max(x, partner) ^ int(seed)) & 1:
        x = partner
    out.append(x)
  return np.array(out)


def _reference_batch(key, t, n, b):
  """The documented rule, written out: batch t of epoch t // (n // b)."""
  per_epoch = n // b
  epoch, slot = divmod(t, per_epoch)
  positions = range(slot * b, (slot + 1) * b)
  return _reference_permute(jax.random.fold_in(key, epoch), positions, n)


PERMUTE_NS = (1, 2, 3, 7, 10, 64, 97, 1000)


@functools.lru_cache(maxsize=None)
def _permutations():
  """permute(key(seed), arange(n), n) for seeds 0, 1, 2 and every n, in one program."""

  @jax.jit
  def permutations(seeds):
    keys = jax.vmap(jax.random.key)(seeds)
    return {n: jax.vmap(lambda k, n=n: data.permute(k, jnp.arange(n), n))(keys)
            for n in PERMUTE_NS}

  return {n: np.asarray(pi) for n, pi in permutations(jnp.arange(3)).items()}


@pytest.mark.parametrize("n", PERMUTE_NS)
def test_permute_is_a_bijection_of_range_n(n):
  pis = _permutations()[n]
  assert pis.shape == (3, n) and pis.dtype == np.int32
  for pi in pis:  # seeds 0, 1, 2
    np.testing.assert_array_equal(np.sort(pi), np.arange(n))


def test_permute_is_close_to_uniform():
  # Over 20,000 keys, pi(0) and the pair (pi(0), pi(1)) of a permutation of
  # [0, 5) hit every value (every ordered pair) about equally often.
  pis = np.asarray(jax.jit(lambda key: jax.vmap(lambda k: data.permute(k, jnp.arange(2), 5))(
      jax.random.split(key, 20_000)))(jax.random.key(0)))  # one program
  first = np.bincount(pis[:, 0], minlength=5) / len(pis)
  np.testing.assert_allclose(first, 0.2, atol=0.015)
  pairs = np.bincount(pis[:, 0] * 5 + pis[:, 1], minlength=25) / len(pis)
  off_diagonal = pairs[[i * 5 + j for i in range(5) for j in range(5) if i != j]]
  np.testing.assert_allclose(off_diagonal, 1 / 20, atol=0.012)
  assert pairs[[i * 6 for i in range(5)]].sum() == 0  # pi(0) != pi(1)


@pytest.mark.parametrize("n, b", [(12, 4), (10, 3), (7, 7), (5, 1)])
def test_one_epoch_covers_every_example_at_most_once_and_drops_n_mod_b(n, b):
  key = jax.random.key(0)
  per_epoch = n // b
  for epoch in range(2):
    steps = range(epoch * per_epoch, (epoch + 1) * per_epoch)
    batches = [np.asarray(data.batch_indices(key, t, n, b)) for t in steps]
    seen = np.concatenate(batches)
    assert all(x.shape == (b,) and x.dtype == np.int32 for x in batches)
    assert len(set(seen.tolist())) == len(seen) == per_epoch * b  # no repeats
    assert set(seen.tolist()) <= set(range(n))
    for t, batch in zip(steps, batches):
      np.testing.assert_array_equal(batch, _reference_batch(key, t, n, b))


def test_without_remainder_every_example_appears_once_per_epoch():
  key, n, b, epochs = jax.random.key(3), 12, 4, 5
  counts = collections.Counter()
  for t in range(epochs * n // b):
    counts.update(np.asarray(data.batch_indices(key, t, n, b)).tolist())
  assert counts == {i: epochs for i in range(n)}


def test_each_epoch_draws_a_new_order_and_the_same_key_the_same_batches():
  key, n, b = jax.random.key(1), 12, 4  # the (n, b) compiled above: 3 batches an epoch
  epoch0 = np.concatenate([data.batch_indices(key, t, n, b) for t in range(3)])
  epoch1 = np.concatenate([data.batch_indices(key, t, n, b) for t in range(3, 6)])
  assert sorted(epoch0) == sorted(epoch1) == list(range(n))
  assert not np.array_equal(epoch0, epoch1)
  again = np.concatenate([data.batch_indices(jax.random.key(1), t, n, b) for t in range(3)])
  np.testing.assert_array_equal(epoch0, again)
  other = np.concatenate([data.batch_indices(jax.random.key(2), t, n, b) for t in range(3)])
  assert not np.array_equal(epoch0, other)


def test_traced_step_under_scan_and_traced_key_under_vmap_match_python_calls():
  n, b, steps = 50, 8, 20  # 6 batches an epoch: crosses three epochs

  @jax.jit
  def all_batches(key):
    def step(carry, t):
      return carry, data.batch_indices(key, t, n, b)
    return jax.lax.scan(step, None, jnp.arange(steps, dtype=jnp.int32))[1]

  keys = jax.random.split(jax.random.key(7), 3)
  traced = jax.vmap(all_batches)(keys)
  assert traced.shape == (3, steps, b)
  for k in range(3):
    for t in (0, 5, 6, 13, 19):
      np.testing.assert_array_equal(traced[k, t], _reference_batch(keys[k], t, n, b))
  # Legacy uint32 keys work too.
  legacy = jax.random.PRNGKey(0)
  np.testing.assert_array_equal(data.batch_indices(legacy, 3, n, b),
                                _reference_batch(legacy, 3, n, b))


def test_minibatch_takes_the_same_rows_of_every_leaf():
  n = 30
  features = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
  tree = jax.device_put({"x": features, "y": np.arange(n, dtype=np.int32),
                         "pair": (np.arange(n, dtype=np.int32) * 10, features[:, :1])})
  key = jax.random.key(4)
  batch, index = jax.jit(lambda t: (data.minibatch(tree, key, t, 7),
                                    data.batch_indices(key, t, n, 7)))(jnp.int32(9))
  index = np.asarray(index)
  np.testing.assert_array_equal(batch["y"], index)
  np.testing.assert_array_equal(batch["x"], features[index])
  np.testing.assert_array_equal(batch["pair"][0], index * 10)
  assert batch["pair"][1].shape == (7, 1)


@pytest.mark.parametrize("n, b", [(20, 3), (20, 20)])
def test_every_batch_holds_distinct_valid_indices(n, b):
  steps = jnp.arange(100, dtype=jnp.int32)
  index = np.asarray(jax.vmap(lambda t: data.batch_indices(jax.random.key(n), t, n, b))(steps))
  assert index.shape == (100, b)
  assert all(len(set(row.tolist())) == b for row in index)
  assert index.min() == 0 and index.max() == n - 1


def test_split_is_a_seeded_disjoint_cover():
  n = 50
  tree = (np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3)), np.arange(n))
  parts = data.split(tree, {"train": None, "validation": 10, "test": 5}, jax.random.key(0))
  assert list(parts) == ["train", "validation", "test"]
  ids = {k: np.asarray(v[1]) for k, v in parts.items()}
  assert [len(v) for v in ids.values()] == [35, 10, 5]
  assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(n))
  for features, labels in parts.values():  # rows stay aligned across leaves
    np.testing.assert_array_equal(features[:, 2], labels)
  # The documented rule: consecutive pieces of permutation(key, n).
  permutation = np.asarray(jax.random.permutation(jax.random.key(0), n))
  np.testing.assert_array_equal(ids["train"], permutation[:35])
  np.testing.assert_array_equal(ids["test"], permutation[45:])
  again = data.split(tree, {"train": None, "validation": 10, "test": 5}, jax.random.key(0))
  np.testing.assert_array_equal(again["validation"][1], ids["validation"])
  other = data.split(tree, {"train": None, "validation": 10, "test": 5}, jax.random.key(1))
  assert not np.array_equal(other["validation"][1], ids["validation"])
  # Sizes that add up to n, no None part (the pieces of the split above).
  exact = data.split(tree, {"a": 35, "b": 15}, jax.random.key(0))
  assert exact["a"][0].shape == (35, 3) and exact["b"][1].shape == (15,)
  np.testing.assert_array_equal(exact["b"][1], permutation[35:])
  assert isinstance(data.Dataset(**data.split(tree, {"train": 35, "validation": 10, "test": 5},
                                              jax.random.key(0))).test, tuple)


def test_standardize_fits_on_train_only():
  rng = np.random.default_rng(0)
  train = rng.normal(size=(200, 3)) * [2.0, 5.0, 0.0] + [1.0, -3.0, 7.0]
  other = rng.normal(size=(50, 3)) * 3.0 + 10.0
  out_train, out_other = (np.asarray(a, np.float64) for a in data.standardize(train, other))
  np.testing.assert_allclose(out_train[:, :2].mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(out_train[:, :2].std(0), 1.0, rtol=1e-5)
  # A constant feature (std 0) is only centred.
  np.testing.assert_allclose(out_train[:, 2], 0.0, atol=1e-6)
  np.testing.assert_allclose(out_other[:, 2], other[:, 2] - 7.0, rtol=1e-5)
  # The held-out array uses train's statistics, not its own.
  mean, std = train.mean(0), train.std(0)
  np.testing.assert_allclose(out_other[:, :2], (other[:, :2] - mean[:2]) / std[:2], rtol=1e-4)
  assert abs(out_other[:, 0].mean()) > 1.0
  (alone,) = data.standardize(np.arange(6.0).reshape(3, 2))
  np.testing.assert_allclose(alone[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: data.batch_indices(jax.random.key(0), 0, 10, 0),
     r"^batch_size must be a positive integer, got 0 \(at most 10\)\.$"),
    (lambda: data.batch_indices(jax.random.key(0), 0, 10, 11), r"got 11 \(at most 10\)\.$"),
    (lambda: data.batch_indices(jax.random.key(0), 0, 10, 2.0), r"^batch_size .*got 2\.0 "),
    (lambda: data.batch_indices(jax.random.key(0), 0, 10, True), r"^batch_size .*got True "),
    (lambda: data.batch_indices(jax.random.key(0), 0, 0, 1),
     r"^n must be a positive integer, got 0\.$"),
    (lambda: data.batch_indices(jax.random.key(0), -1, 10, 2),
     r"^t must be an integer >= 0, got -1 "),
    (lambda: data.batch_indices(jax.random.key(0), 1.5, 10, 2),
     r"^t must be an integer >= 0, got 1\.5 "),
    (lambda: data.batch_indices(0, 0, 10, 2),
     r"^key must be a jax.random key, such as jax.random.key\(0\), got 0\.$"),
    (lambda: data.minibatch((jnp.ones((4, 2)), jnp.ones(3)), jax.random.key(0), 0, 2),
     r"^data must be a pytree of arrays sharing a leading example axis, got "
     r"data\[0\] ~ \(4, 2\), data\[1\] ~ \(3,\)\.$"),
    (lambda: data.minibatch({"x": jnp.ones((4, 2)), "y": jnp.ones(4)}, jax.random.key(0), 0, 5),
     r"^batch_size must be a positive integer, got 5 \(at most 4\)\.$"),
    (lambda: data.check_data({"x": np.ones((0, 2))}),
     r"^data must hold at least one example, got data\['x'\] ~ \(0, 2\)\.$"),
    (lambda: data.check_data(()), r"^data must be a pytree of arrays .*got \(\)\.$"),
    (lambda: data.split(np.ones(5), {"a": 2, "b": 2}, jax.random.key(0)),
     r"^sizes must add up to exactly 5 \(the number of examples\), got \{'a': 2, 'b': 2\}\.$"),
    (lambda: data.split(np.ones(5), {"a": None, "b": 5}, jax.random.key(0)),
     r"^sizes must add up to less than 5"),
    (lambda: data.split(np.ones(5), {"a": None, "b": None}, jax.random.key(0)),
     r"^sizes must map each part to an integer >= 1 \(at most one part to None"),
    (lambda: data.split(np.ones(5), {"a": 0, "b": 5}, jax.random.key(0)), r"integer >= 1"),
    (lambda: data.split(np.ones(5), [3, 2], jax.random.key(0)),
     r"^sizes must be a non-empty mapping"),
    (lambda: data.standardize(jnp.ones((4, 2)), jnp.ones((4, 3))),
     r"^standardize takes feature arrays ~ \(n, \.\.\.\) with one trailing shape, got "
     r"shapes \(4, 2\), \(4, 3\)\.$"),
])
def test_bad_inputs_get_one_sentence(call, match):
  with pytest.raises(ValueError, match=match):
    call()
