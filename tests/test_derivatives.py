"""§1.2: gradients, directional derivatives, Jacobians and linearization."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wonderland as wl

# The derivatives are pure JAX transformations: each test evaluates them
# inside one jitted program (one compilation) instead of op by op.


def test_the_notes_linearization_numbers():
  f = lambda x: x**2 - 1.5 * x
  f_lin = wl.linearize(f, jnp.asarray(0.5))
  at = jax.jit(lambda: (f(jnp.asarray(0.51)),
                        [f_lin(jnp.asarray(x)) for x in (0.51, 0.5, 1.5)]))
  f_051, (lin_051, lin_05, lin_15) = at()
  assert round(float(f_051), 4) == -0.5049
  assert round(float(lin_051), 4) == -0.5050
  # The linearization is exact in value at x0 and has the slope f'(x0) = -0.5.
  assert float(lin_05) == pytest.approx(-0.5)
  assert float(lin_15 - lin_05) == pytest.approx(-0.5)


def test_grad_matches_the_closed_form():
  f = lambda x: jnp.sum(x**3) + x[0] * x[1]
  x = np.array([1.0, -2.0, 0.5], np.float32)
  expected = 3 * x**2 + np.array([x[1], x[0], 0.0], np.float32)
  np.testing.assert_allclose(jax.jit(wl.grad(f))(x), expected, rtol=1e-6)


def test_grad_of_a_pytree():
  f = lambda p: jnp.sum(p["w"] ** 2) + 3.0 * p["b"]
  g = jax.jit(wl.grad(f))({"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.3)})
  np.testing.assert_allclose(g["w"], [2.0, 4.0])
  assert float(g["b"]) == 3.0


def test_grad_of_a_vector_function_names_the_shape():
  with pytest.raises(ValueError, match=r"f must return a scalar at x, got an output of shape \(3,\)"):
    wl.grad(lambda x: 2 * x)(jnp.ones(3))


def test_directional_derivative_is_the_gradient_dot_direction():
  f = lambda x: jnp.sin(x[0]) * x[1] ** 2 + jnp.exp(x[2])
  x = jnp.array([0.3, -1.2, 0.4])
  v = jnp.array([1.0, 2.0, -0.5])

  @jax.jit
  def derivatives(x, v):
    g = jax.grad(f)(x)
    return g, wl.directional_derivative(f, x, v), wl.directional_derivative(f, x, -g)

  g, along_v, along_minus_g = (np.asarray(a, np.float64) for a in derivatives(x, v))
  assert float(along_v) == pytest.approx(float(g @ np.asarray(v)), rel=1e-6)
  # Steepest descent: along -grad f the derivative is -||grad f||^2 < 0.
  assert float(along_minus_g) == pytest.approx(-float(g @ g), rel=1e-6)


def test_directional_derivative_is_forward_mode_only():
  # A while_loop has no reverse-mode rule: jax.grad fails on it, while a
  # Jacobian-vector product works. So the directional derivative never forms
  # the gradient.
  def f(x):
    def body(carry):
      i, y = carry
      return i + 1, jnp.sin(y) + y
    return jnp.sum(jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1])

  x, v = jnp.array([0.1, 0.2]), jnp.array([1.0, 0.0])
  with pytest.raises(ValueError):
    jax.grad(f)(x)
  h = 1e-3
  fd, dd = jax.jit(lambda x, v: ((f(x + h * v) - f(x - h * v)) / (2 * h),
                                 wl.directional_derivative(f, x, v)))(x, v)
  assert float(dd) == pytest.approx(float(fd), rel=1e-3)


def test_directional_derivative_rejects_a_mismatched_direction():
  with pytest.raises(ValueError, match=r"v must have .*\(3,\).*\(2,\)"):
    wl.directional_derivative(jnp.sum, jnp.ones(3), jnp.ones(2))


def _g(x):  # R^3 -> R^2
  return jnp.array([x[0] * x[1], jnp.sin(x[2]) + x[0] ** 2])


def _f(y):  # R^2 -> R^4
  return jnp.array([y[0] ** 2, y[0] * y[1], jnp.exp(y[1]), y[0] - y[1]])


@pytest.mark.parametrize("mode", wl.JACOBIAN_MODES)
def test_jacobian_rows_are_output_gradients(mode):
  """Where the notes are imprecise (§1.2.2): rows, not columns, are gradients.

  The notes say: "Each column of the Jacobian corresponds to the gradient of
  f(x) that maximizes a specific value within the output vector y", and "Each
  row of the Jacobian describes how the rate of change for the outputs changes
  with respect to a specific input". With their own matrix, entry (i, j) =
  d y_i / d x_j, it is the other way round: row i is the (transposed)
  gradient of the output y_i, and column j says how every output moves when
  the input x_j moves.
  """
  x = jnp.array([0.5, -1.0, 2.0])
  h = 1e-3
  square = lambda x: jnp.array([x[0] * x[1], x[1] ** 2])

  @jax.jit
  def compute(x):
    J = wl.jacobian(_g, mode=mode)(x)
    rows = [jax.grad(lambda x, i=i: _g(x)[i])(x) for i in range(2)]
    columns = [(_g(x + h * e) - _g(x - h * e)) / (2 * h) for e in jnp.eye(3)]
    return J, rows, columns, wl.jacobian(square, mode=mode)(jnp.array([2.0, 3.0]))

  J, rows, columns, Js = compute(x)
  J, Js = np.asarray(J), np.asarray(Js)
  assert J.shape == (2, 3)  # (c, d): outputs are rows, inputs columns
  for i in range(2):  # row i is grad y_i, a vector ~ (d,) like x
    np.testing.assert_allclose(J[i], rows[i], rtol=1e-6)
  # A column has c = 2 entries: it cannot be a gradient with respect to
  # x ~ (3,). Column j is d y / d x_j, a finite difference along e_j.
  assert J[:, 0].shape == (2,) != x.shape
  for j in range(3):
    np.testing.assert_allclose(J[:, j], columns[j], rtol=1e-3, atol=1e-4)
  # Square case, c = d: the columns are not the gradients (J is not symmetric).
  np.testing.assert_allclose(Js, [[3.0, 2.0], [0.0, 6.0]])  # rows: grad(x0 x1), grad(x1^2)
  assert not np.allclose(Js, Js.T)


def test_chain_rule_jacobian_of_a_composition_is_the_product():
  x = jnp.array([0.5, -1.0, 2.0])

  @jax.jit
  def compute(x):
    J_fg = wl.jacobian(lambda x: _f(_g(x)))(x)
    J_f = wl.jacobian(_f)(_g(x))
    J_g = wl.jacobian(_g)(x)
    return J_fg, wl.matmul(J_f, J_g)

  J_fg, product = compute(x)
  assert J_fg.shape == (4, 3)
  np.testing.assert_allclose(J_fg, product, rtol=1e-5, atol=1e-6)


def test_scalar_output_jacobian_is_the_gradient():
  f = lambda x: jnp.sum(jnp.tanh(x) * x)
  x = jnp.array([0.3, -0.7, 1.1])
  np.testing.assert_allclose(*jax.jit(lambda x: (wl.jacobian(f)(x), wl.grad(f)(x)))(x),
                             rtol=1e-6)


def test_c_equals_d_equals_one_gives_the_ordinary_derivative():
  f = lambda x: x**3 - 2 * x
  xs = (-1.0, 0.0, 2.5)
  derivatives = jax.jit(lambda: [wl.jacobian(f)(jnp.asarray(x)) for x in xs])()
  for x, d in zip(xs, derivatives):
    assert d.shape == ()
    assert float(d) == pytest.approx(3 * x**2 - 2)


def test_auto_mode_picks_forward_for_tall_and_reverse_for_wide():
  # A while_loop only has forward mode; a custom_vjp function only reverse.
  # "auto" must pick the mode that exists for each shape.
  def tall(x):  # R^2 -> R^8 (c >= d): forward
    y = jax.lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * 1.5),
                           (0, x))[1]
    return jnp.concatenate([y, y**2, jnp.sin(y), y**3])

  @jax.custom_vjp
  def square(x):
    return x**2

  square.defvjp(lambda x: (x**2, x), lambda x, g: (2 * x * g,))

  def wide(x):  # R^6 -> R^2 (c < d): reverse
    s = square(x)
    return jnp.array([jnp.sum(s), jnp.sum(s[:3])])

  x2, x6 = jnp.array([0.5, -1.0]), jnp.arange(6.0)
  tall_auto, tall_fwd, wide_auto, wide_rev = jax.jit(lambda x2, x6: (
      wl.jacobian(tall)(x2), wl.jacobian(tall, "fwd")(x2),
      wl.jacobian(wide)(x6), wl.jacobian(wide, "rev")(x6)))(x2, x6)
  np.testing.assert_allclose(tall_auto, tall_fwd, rtol=1e-6)
  np.testing.assert_allclose(wide_auto, wide_rev, rtol=1e-6)
  with pytest.raises(Exception):  # at trace time: nothing is compiled
    jax.jit(wl.jacobian(tall, "rev"))(x2)
  with pytest.raises(Exception):
    jax.jit(wl.jacobian(wide, "fwd"))(x6)


def test_jacobian_of_pytrees_nests_like_jacfwd():
  f = lambda p: {"y": p["a"] * p["b"][0]}
  p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0, 4.0])}
  J = jax.jit(wl.jacobian(f))(p)
  np.testing.assert_allclose(J["y"]["a"], 3.0 * np.eye(2))
  np.testing.assert_allclose(J["y"]["b"], [[1.0, 0.0], [2.0, 0.0]])


def test_unknown_jacobian_mode_lists_the_three():
  with pytest.raises(ValueError, match="'auto', 'fwd', 'rev'.*'forward'"):
    wl.jacobian(jnp.sin, mode="forward")


def test_linearize_pytrees():
  f = lambda p: jnp.sum(p["w"] ** 2) * p["s"]
  p0 = {"w": jnp.array([1.0, 2.0]), "s": jnp.array(2.0)}
  p1 = {"w": jnp.array([1.0, 2.5]), "s": jnp.array(2.0)}
  # f(p0) = 10, d/dw2 = 2 * w2 * s = 8, so the step of 0.5 adds 4.
  assert float(jax.jit(wl.linearize(f, p0))(p1)) == pytest.approx(14.0)


def test_taylor_error_is_of_order_two():
  f = lambda x: jnp.array([jnp.sin(x[0]) * x[1], jnp.exp(x[0] - x[1])])
  hs = 0.4 / 2.0 ** np.arange(7)
  errors = wl.taylor_errors(f, jnp.array([0.3, 0.2]), jnp.array([0.6, 0.8]), hs)
  assert np.all(np.diff(errors) < 0)
  assert wl.fitted_order(hs, errors) == pytest.approx(2.0, abs=0.1)


def test_hessian_and_hvp_match_the_closed_form():
  A = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
  f = lambda x: 0.5 * x @ A @ x + jnp.sum(x)
  x, v = jnp.array([0.3, -0.2, 1.0]), jnp.array([1.0, -1.0, 2.0])
  g = lambda x: jnp.sum(jnp.sin(x) * x[0])
  hess_f, hvp_f, hvp_g, hess_g = jax.jit(lambda x, v: (
      wl.hessian(f)(x), wl.hvp(f, x, v), wl.hvp(g, x, v), wl.hessian(g)(x)))(x, v)
  A, v = np.asarray(A), np.asarray(v)
  np.testing.assert_allclose(hess_f, A, rtol=1e-6)
  np.testing.assert_allclose(hvp_f, A @ v, rtol=1e-6)
  np.testing.assert_allclose(hvp_g, np.asarray(hess_g) @ v, rtol=1e-5, atol=1e-6)


def test_hvp_of_a_pytree():
  f = lambda p: jnp.sum(p["a"] ** 2 * p["b"])
  p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0, 4.0])}
  v = {"a": jnp.array([1.0, 0.0]), "b": jnp.array([0.0, 1.0])}
  out = jax.jit(lambda p, v: wl.hvp(f, p, v))(p, v)
  # d2f/da2 = 2b, d2f/dadb = 2a: H v = (2 b_0 + 0, 2 a_1 ; 2 a_0 * 1, 0)
  np.testing.assert_allclose(out["a"], [6.0, 4.0])
  np.testing.assert_allclose(out["b"], [2.0, 0.0])


def test_check_grad_accepts_a_true_gradient_and_rejects_a_wrong_one():
  f = lambda x: jnp.sum(jnp.sin(x) ** 2) + x[0] * x[-1]
  x = jnp.linspace(-1.0, 1.0, 7)
  assert wl.check_grad(f, x) < 1e-2

  @jax.custom_jvp
  def wrong(x):
    return jnp.sum(x**2)

  wrong.defjvp(lambda p, t: (wrong(p[0]), jnp.sum(-2 * p[0] * t[0])))  # sign!
  assert wl.check_grad(wrong, x) > 0.5


def test_check_grad_rejects_integer_input():
  with pytest.raises(ValueError, match="floating"):
    wl.check_grad(jnp.sum, jnp.arange(3))


def _program(fn, x):
  """The lowered StableHLO of jit(fn), without the module's name line."""
  return jax.jit(fn).lower(x).as_text().split("\n", 1)[1]


@pytest.mark.parametrize("d_in, d_out, same_as", [(3, 12, "fwd"), (12, 3, "rev")])
def test_auto_mode_compiles_to_exactly_the_chosen_program(d_in, d_out, same_as):
  # Under jit the choice costs nothing: auto lowers to the very program of the
  # mode it picks, and differs from the other one.
  W = jnp.arange(d_in * d_out, dtype=jnp.float32).reshape(d_out, d_in) / 10
  f = lambda x: jnp.tanh(W @ x)
  x = jnp.ones(d_in)
  other = "rev" if same_as == "fwd" else "fwd"
  auto = _program(wl.jacobian(f), x)
  assert auto == _program(wl.jacobian(f, same_as), x)
  assert auto != _program(wl.jacobian(f, other), x)


def test_integer_points_are_taken_at_their_float_values():
  # The notes differentiate at x = 1; an int point must work like 1.0.
  g = lambda x: x**2 - 1.5 * x
  assert float(wl.linearize(g, 1)(2)) == pytest.approx(float(wl.linearize(g, 1.0)(2.0)))
  f = lambda x: jnp.sum(x**3)
  np.testing.assert_allclose(wl.grad(f)(jnp.arange(3)), [0.0, 3.0, 12.0])
  np.testing.assert_allclose(wl.hessian(f)(jnp.arange(3)), np.diag([0.0, 6.0, 12.0]))
  np.testing.assert_allclose(wl.jacobian(lambda x: x**2)(jnp.arange(3)),
                             np.diag([0.0, 2.0, 4.0]))
  assert float(wl.directional_derivative(f, jnp.ones(3), jnp.arange(3))) == 9.0
  np.testing.assert_allclose(wl.hvp(f, jnp.ones(3), jnp.arange(3)), [0.0, 6.0, 12.0])


def test_bad_derivative_arguments_get_one_sentence():
  f = lambda x: jnp.sum(x**2)
  for call in (lambda: wl.jacobian(jnp.sin)("abc"), lambda: wl.grad(f)("abc"),
               lambda: wl.hessian(f)("abc"), lambda: wl.linearize(f, "abc"),
               lambda: wl.hvp(f, {"a": "abc"}, {"a": 1.0})):
    with pytest.raises(ValueError, match=r"x0? must be an array of numbers or a pytree "
                       r"of them, got a leaf of type str: 'abc'\."):
      call()
  for build in (wl.grad, wl.jacobian, wl.hessian):
    with pytest.raises(ValueError, match="f must be a callable function, got 3"):
      build(3)
  with pytest.raises(ValueError, match="x must hold floating-point arrays to "
                     "differentiate f, got dtype int32"):
    wl.check_grad(lambda p: jnp.sum(p["a"] ** 2), {"a": jnp.ones(2), "n": jnp.arange(2)})
  for h in (0.0, float("nan"), "a"):
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
      wl.check_grad(f, jnp.ones(2), h=h)
  with pytest.raises(ValueError, match="x must hold at least one number"):
    wl.check_grad(f, jnp.ones(0))
  with pytest.raises(ValueError, match=r"v must have the shape of x0, got x0 ~ \(2,\) "
                     r"and v ~ \(1,\)"):
    wl.taylor_errors(f, jnp.ones(2), jnp.ones(1), [0.1])
  with pytest.raises(ValueError, match="hs must hold finite numbers > 0"):
    wl.taylor_errors(f, jnp.ones(2), jnp.ones(2), [0.1, 0.0])
  with pytest.raises(ValueError, match=r"errors must have one entry per h \(3\), got 2"):
    wl.fitted_order([0.1, 0.05, 0.01], [1e-2, 2.5e-3])
  with pytest.raises(ValueError, match="errors must hold finite numbers > 0"):
    wl.fitted_order([0.1, 0.05], [0.0, 0.0])  # an exactly linear f
  with pytest.raises(ValueError, match="at least two steps"):
    wl.fitted_order([0.1], [1e-2])


def test_derivative_matrices_too_large_for_memory_are_refused_before_forming():
  x = jnp.zeros(10**5)  # J and H would be 10^5 x 10^5 floats: 37 GiB
  with pytest.raises(ValueError, match=r"x must keep the 100000 x 100000 matrix within "
                     r"2\.0 GiB \(wonderland\._checks\.MAX_BYTES\), got 100000 inputs for "
                     r"100000 outputs, which needs about 37\.3 GiB\."):
    wl.jacobian(jnp.sin)(x)
  with pytest.raises(ValueError, match=r"x must keep the 100000 x 100000 matrix"):
    wl.hessian(jnp.sum)(x)
  assert jax.eval_shape(wl.jacobian(jnp.sum), x).shape == (10**5,)  # one row: fine
