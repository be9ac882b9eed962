"""§1.1: every tensor operation equals its jnp counterpart and checks shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wonderland as wl

_dims = st.integers(min_value=1, max_value=6)

# Each example has new shapes, so each compiles its ops afresh: few examples,
# checked against numpy (which compiles nothing).
_EXAMPLES = settings(max_examples=10, deadline=None)


def _randn(seed, shape):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_dot_is_the_sum_of_products():
  x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, -5.0, 6.0])
  assert wl.dot(x, y) == pytest.approx(1 * 4 - 2 * 5 + 3 * 6)


def test_cosine_similarity_is_one_for_the_same_direction_only():
  x = jnp.array([3.0, -1.0, 2.0])
  assert wl.cosine_similarity(x, 2.5 * x) == pytest.approx(1.0, abs=1e-6)
  assert wl.cosine_similarity(x, -x) == pytest.approx(-1.0, abs=1e-6)
  assert wl.cosine_similarity(x, jnp.zeros(3)) == 0.0


def test_template_match_finds_a_scaled_copy_of_a_template():
  templates = jnp.asarray(_randn(0, (8, 16)))
  x = 3.7 * templates[5]
  scores, best = jax.jit(wl.template_match)(x, templates)  # one program, not op by op
  assert int(best) == 5
  assert scores.shape == (8,)
  np.testing.assert_allclose(scores[5], 1.0, atol=1e-6)
  assert np.all(np.delete(np.asarray(scores), 5) < 0.99)


def test_template_match_ignores_the_scale_of_other_templates():
  # The raw dot product would pick the long template; the normalized one picks
  # the template that points the same way.
  templates = jnp.array([[1.0, 0.0], [10.0, 10.0]])
  _, best = jax.jit(wl.template_match)(jnp.array([1.0, 0.1]), templates)
  assert int(best) == 0


@_EXAMPLES
@given(a=_dims, b=_dims, c=_dims, seed=st.integers(0, 2**16))
def test_matmul_equals_the_matrix_product(a, b, c, seed):
  X, Y = _randn(seed, (a, b)), _randn(seed + 1, (b, c))
  Z = wl.matmul(X, Y)
  assert Z.shape == (a, c)
  np.testing.assert_allclose(Z, X @ Y, rtol=1e-5, atol=1e-5)


def test_matmul_entry_is_row_dot_column():
  X, Y = _randn(1, (3, 4)), _randn(2, (4, 5))
  Z = wl.matmul(X, Y)
  assert Z[2, 3] == pytest.approx(float(np.dot(X[2], Y[:, 3])), rel=1e-5)


@_EXAMPLES
@given(n=_dims, a=_dims, b=_dims, c=_dims, seed=st.integers(0, 2**16))
def test_batched_matmul_equals_jnp_matmul(n, a, b, c, seed):
  X, Y = _randn(seed, (n, a, b)), _randn(seed + 1, (n, b, c))
  Z = wl.batched_matmul(X, Y)
  assert Z.shape == (n, a, c)
  np.testing.assert_allclose(Z, np.matmul(X, Y), rtol=1e-5, atol=1e-5)  # as jnp.matmul


@_EXAMPLES
@given(a=_dims, b=_dims, seed=st.integers(0, 2**16))
def test_hadamard_and_mask_are_elementwise(a, b, seed):
  X, Y = _randn(seed, (a, b)), _randn(seed + 1, (a, b))
  np.testing.assert_array_equal(wl.hadamard(X, Y), X * Y)
  M = np.random.default_rng(seed).random((a, b)) < 0.5
  masked = wl.mask(X, M)
  np.testing.assert_array_equal(masked, np.where(M, X, 0.0))
  np.testing.assert_array_equal(wl.mask(X, M.astype(np.float32)), masked)


def test_ops_work_under_jit_and_vmap():
  X, Y = _randn(3, (4, 3, 2)), _randn(4, (4, 2, 5))
  np.testing.assert_allclose(
      jax.jit(wl.batched_matmul)(X, Y), X @ Y, rtol=1e-5, atol=1e-5
  )
  np.testing.assert_allclose(
      jax.vmap(wl.matmul)(X, Y), X @ Y, rtol=1e-5, atol=1e-5
  )


@pytest.mark.parametrize(
    "fn, args, shapes",
    [
        (wl.dot, (np.ones(3), np.ones(4)), ["(3,)", "(4,)"]),
        (wl.dot, (np.ones((3, 1)), np.ones(3)), ["(3, 1)"]),
        (wl.matmul, (np.ones((2, 3)), np.ones((4, 5))), ["(2, 3)", "(4, 5)"]),
        (wl.matmul, (np.ones(3), np.ones((3, 5))), ["(3,)"]),
        (wl.hadamard, (np.ones((2, 3)), np.ones((3, 2))), ["(2, 3)", "(3, 2)"]),
        (wl.mask, (np.ones((2, 3)), np.ones((2,))), ["(2, 3)", "(2,)"]),
        (
            wl.batched_matmul,
            (np.ones((2, 3, 4)), np.ones((3, 4, 5))),
            ["(2, 3, 4)", "(3, 4, 5)"],
        ),
        (
            wl.batched_matmul,
            (np.ones((2, 3, 4)), np.ones((2, 5, 5))),
            ["(2, 3, 4)", "(2, 5, 5)"],
        ),
        (wl.template_match, (np.ones(3), np.ones((4, 2))), ["(3,)", "(4, 2)"]),
    ],
)
def test_shape_mismatch_names_both_shapes(fn, args, shapes):
  with pytest.raises(ValueError) as info:
    fn(*args)
  for shape in shapes:
    assert shape in str(info.value)


def test_cosine_similarity_at_any_scale():
  # Squared norms of float32 vectors underflow below ~1e-19 and overflow above
  # ~1e19; the cosine depends on directions only.
  for scale in (1e-30, 1e-7, 1.0, 1e20, 1e30):
    x = jnp.array([scale, 0.0], jnp.float32)
    assert float(wl.cosine_similarity(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(wl.cosine_similarity(x, jnp.array([1.0, 0.0]))) == pytest.approx(
        1.0, abs=1e-6)
    assert float(wl.cosine_similarity(x, jnp.array([1.0, 1.0]))) == pytest.approx(
        0.5**0.5, abs=1e-6)
  # The exactly parallel template wins even when it is tiny.
  _, best = wl.template_match(jnp.array([1e-6, 0.0]),
                              jnp.array([[1e-7, 0.0], [1.0, 1.0]]))
  assert int(best) == 0


def test_mask_scales_integer_and_boolean_tensors_without_truncating():
  np.testing.assert_array_equal(
      wl.mask(jnp.array([[4, 6]]), jnp.array([[0.5, 1.0]])), [[2.0, 6.0]])
  np.testing.assert_array_equal(
      wl.mask(jnp.array([[True, True]]), jnp.array([[0.5, 0.0]])), [[0.5, 0.0]])
  masked = wl.mask(jnp.array([[4, 6]], jnp.int32), jnp.array([[True, False]]))
  assert masked.dtype == jnp.int32  # a boolean mask keeps X's dtype
  np.testing.assert_array_equal(masked, [[4, 0]])


def test_lists_are_tensors_and_complex_or_empty_input_is_refused():
  assert float(wl.dot([1.0, 2.0], [3.0, 4.0])) == 11.0
  np.testing.assert_array_equal(wl.matmul([[1.0, 2.0]], [[3.0], [4.0]]), [[11.0]])
  with pytest.raises(ValueError, match="x must be a real tensor, got dtype complex64"):
    wl.cosine_similarity(jnp.array([1j, 0]), jnp.array([1j, 0]))
  with pytest.raises(ValueError, match="X must be a real tensor .*got str"):
    wl.hadamard("ab", "cd")
  with pytest.raises(ValueError, match=r"at least one template, got \(0, 3\)"):
    wl.template_match(jnp.ones(3), jnp.ones((0, 3)))
  with pytest.raises(ValueError, match="non-empty vectors"):
    wl.cosine_similarity(jnp.ones(0), jnp.ones(0))


def test_masking_by_a_fixed_mask_is_linear_and_composes():
  """Where the notes are imprecise (§1.1.2): a fixed mask is a linear map.

  The notes say: "The Hadamard multiplication method does not preserve
  linearity and cannot be used in operations where linearity is required.
  Additionally, it cannot be used in compositions of functions such as
  f(g(x))". For a fixed M, X -> M * X is linear in X, its linearization at any
  point is the map itself, and it composes with other linear maps like any
  linear map (it is the diagonal matrix diag(vec M) acting on vec X).
  """
  X, X2 = jnp.asarray(_randn(5, (3, 4))), jnp.asarray(_randn(6, (3, 4)))
  M = jnp.asarray(np.random.default_rng(7).random((3, 4)) < 0.5, jnp.float32)
  f = lambda X: wl.mask(X, M)
  a, b = 2.5, -0.75
  np.testing.assert_allclose(f(a * X + b * X2), a * f(X) + b * f(X2), rtol=1e-6, atol=1e-6)
  # jax.linearize at any point gives back f itself: f(x0) + f'(x0) dX = f(x0 + dX).
  value, f_lin = jax.linearize(f, X)
  np.testing.assert_allclose(value, f(X))
  np.testing.assert_allclose(f_lin(X2), f(X2), rtol=1e-6)
  # It is multiplication by the diagonal matrix diag(vec M).
  np.testing.assert_allclose(
      jnp.ravel(f(X2)), jnp.diag(jnp.ravel(M)) @ jnp.ravel(X2), rtol=1e-6, atol=1e-6)
  # Composed with a matrix product, f(g(X)) = M * (X W), it is still linear.
  W = jnp.asarray(_randn(8, (4, 4)))
  h = lambda X: f(wl.matmul(X, W))
  np.testing.assert_allclose(h(a * X + b * X2), a * h(X) + b * h(X2), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(jax.linearize(h, X)[1](X2), h(X2), rtol=1e-5, atol=1e-5)


def test_the_hadamard_product_is_bilinear_not_linear_in_both_factors():
  """Where the notes are imprecise (§1.1.2): X * Y is bilinear.

  What the notes' "does not preserve linearity" can mean: (X, Y) -> X * Y is
  linear in X for a fixed Y and in Y for a fixed X, but not linear in the pair
  (X, Y) together (scaling both scales the product by a^2), like the matrix
  product itself. Its linearization at (X0, Y0) is
  (dX, dY) -> dX * Y0 + X0 * dY, and the exact remainder is dX * dY.
  """
  X, X2, Y, Y2 = (jnp.asarray(_randn(s, (3, 4))) for s in (9, 10, 11, 12))
  a, b = 2.5, -0.75
  h = wl.hadamard
  np.testing.assert_allclose(h(a * X + b * X2, Y), a * h(X, Y) + b * h(X2, Y),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h(X, a * Y + b * Y2), a * h(X, Y) + b * h(X, Y2),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h(a * X, a * Y), a**2 * h(X, Y), rtol=1e-5)
  assert not np.allclose(h(a * X, a * Y), a * h(X, Y))  # not linear in (X, Y)
  value, h_lin = jax.linearize(h, X, Y)
  np.testing.assert_allclose(h_lin(X2, Y2), X2 * Y + X * Y2, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h(X + X2, Y + Y2), value + h_lin(X2, Y2) + X2 * Y2,
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(h_lin(X2, Y2), h(X2, Y2))  # not its own linearization
