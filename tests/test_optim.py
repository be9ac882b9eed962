"""§1.3 and §1.3.2: the optimizers of wonderland.optim against independent references.

References: optax's own optimizers where the algorithms coincide, NumPy
recursions written from the notes' formulas, the linear rates of Polyak's
theory on a quadratic, and the known minima of a parabola and of Rosenbrock.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import optim as wo

X0_ROSENBROCK = (-1.2, 1.0)


def rosenbrock(x):
  return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


PARABOLA_MIN = (1.0, -2.0)


def parabola(x):
  return jnp.sum(jnp.array([1.0, 10.0]) * (x - jnp.array(PARABOLA_MIN)) ** 2)


def _scan(opt, f, x0, steps):
  def step(carry, _):
    x, state = carry
    value, grad = jax.value_and_grad(f)(x)
    updates, state = opt.update(
        grad, state, x, value=value, grad=grad, value_fn=f
    )
    x = optax.apply_updates(x, updates)
    return (x, state), x

  return jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)[1]


def trajectories(*runs):
  """For each run (opt, f, x0, steps): x_1, ..., x_steps of opt on f from x0.

  One jitted program holds every run's scan (one compilation, not one per
  run). Every optimizer gets the line-search keyword arguments; the chains
  ignore the ones they do not use.
  """

  @jax.jit
  def run(x0s):
    return [_scan(opt, f, x0, steps) for (opt, f, _, steps), x0 in zip(runs, x0s)]

  return [np.asarray(xs) for xs in run([jnp.asarray(r[2], jnp.float32) for r in runs])]


def trajectory(opt, f, x0, steps):
  """x_1, ..., x_steps of opt on f from x0, one jitted scan."""
  return trajectories((opt, f, x0, steps))[0]


# --- trajectories equal optax's where the algorithms coincide -----------------

TWINS = {
    "gd~sgd": (wo.gd(1e-3), optax.sgd(1e-3)),
    "momentum~sgd(momentum)": (
        wo.momentum(1e-3, decay=0.9),
        optax.sgd(1e-3, momentum=0.9),
    ),
    "nesterov~sgd(nesterov)": (
        wo.nesterov(1e-3, decay=0.9),
        optax.sgd(1e-3, momentum=0.9, nesterov=True),
    ),
    "adam~adam": (wo.adam(1e-2), optax.adam(1e-2)),
    # A large eps tells eps outside the square root from eps inside.
    "adam(eps=0.1)~adam(eps=0.1)": (
        wo.adam(1e-2, b1=0.8, b2=0.99, eps=0.1),
        optax.adam(1e-2, b1=0.8, b2=0.99, eps=0.1),
    ),
    "rmsprop~rmsprop(eps_in_sqrt=False)": (
        wo.rmsprop(1e-2, decay=0.8, eps=0.1),
        optax.rmsprop(1e-2, decay=0.8, eps=0.1, eps_in_sqrt=False),
    ),
}


@pytest.mark.parametrize("name", list(TWINS))
def test_trajectory_equals_optax_over_100_rosenbrock_steps(name):
  ours, theirs = TWINS[name]
  xs, ref = trajectories((ours, rosenbrock, X0_ROSENBROCK, 100),
                         (theirs, rosenbrock, X0_ROSENBROCK, 100))
  assert np.max(np.abs(ref - np.asarray(X0_ROSENBROCK))) > 0.05  # it moved
  np.testing.assert_allclose(xs, ref, rtol=1e-5, atol=1e-5)


def test_rmsprop_differs_from_optax_default_eps_inside_the_root():
  # The docstring's claim: optax's default puts eps inside sqrt, ours outside.
  xs, ref = trajectories((wo.rmsprop(1e-2, eps=0.1), parabola, (0.0, 0.0), 20),
                         (optax.rmsprop(1e-2, eps=0.1), parabola, (0.0, 0.0), 20))
  assert np.max(np.abs(xs - ref)) > 1e-2 * np.max(np.abs(ref))


@functools.lru_cache(maxsize=None)
def _jitted_grad(f):
  return jax.jit(jax.grad(f))


def numpy_steps(rule, f, x0, steps):
  """Iterates of a hand-written update rule(t, x, grad) -> x, in float64."""
  grad = _jitted_grad(f)  # the gradient in float32, as the optimizers see it
  x, xs = np.asarray(x0, np.float64), []
  for t in range(1, steps + 1):
    x = rule(t, x, np.asarray(grad(jnp.asarray(x, jnp.float32)), np.float64))
    xs.append(x)
  return np.asarray(xs)


def test_adagrad_follows_the_recursion_with_eps_outside_the_root():
  eta, eps = 0.1, 0.5  # an eps this large separates the two conventions
  acc = {"G": 0.0}

  def rule(t, x, g):
    acc["G"] = acc["G"] + g**2
    return x - eta * g / (np.sqrt(acc["G"]) + eps)

  ref = numpy_steps(rule, parabola, (0.0, 0.0), 30)
  # With eps negligible it takes the steps of optax.adagrad from G_0 = 0.
  xs, ours, theirs = trajectories(
      (wo.adagrad(eta, eps=eps), parabola, (0.0, 0.0), 30),
      (wo.adagrad(eta, eps=1e-30), rosenbrock, X0_ROSENBROCK, 50),
      (optax.adagrad(eta, initial_accumulator_value=0.0, eps=1e-30),
       rosenbrock, X0_ROSENBROCK, 50),
  )
  np.testing.assert_allclose(xs, ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


# --- momentum: the notes' recursion, with eta_t inside ------------------------

ETA = optax.exponential_decay(0.02, transition_steps=5, decay_rate=0.5)
LAMBDA = 0.9


def test_momentum_under_a_schedule_follows_the_notes_recursion():
  g_prev = {"g": np.zeros(2)}

  def rule(t, x, grad):
    g = -float(ETA(t - 1)) * grad + LAMBDA * g_prev["g"]  # g_t
    g_prev["g"] = g
    return x + g  # x_t = x_{t-1} + g_t

  ref = numpy_steps(rule, parabola, (0.0, 0.0), 40)
  xs, theirs = trajectories(
      (wo.momentum(ETA, decay=LAMBDA), parabola, (0.0, 0.0), 40),
      # optax.sgd rescales the whole velocity by today's eta_t: another path.
      (optax.sgd(ETA, momentum=LAMBDA), parabola, (0.0, 0.0), 40),
  )
  np.testing.assert_allclose(xs, ref, rtol=1e-5, atol=1e-6)
  assert np.max(np.abs(theirs - xs)) > 1e-2


def test_momentum_two_term_expansion_of_the_notes():
  opt = wo.momentum(ETA, decay=LAMBDA)

  @jax.jit
  def run(x0):
    def step(carry, _):
      x, state = carry
      grad = jax.grad(parabola)(x)
      g, state = opt.update(grad, state, x)
      return (x + g, state), (grad, g)

    return jax.lax.scan(step, (x0, opt.init(x0)), None, length=12)[1]

  grads, gs = (np.asarray(a, np.float64) for a in run(jnp.zeros(2)))
  assert np.all(np.isfinite(gs)) and np.all(np.abs(gs[2:]) > 1e-4)
  eta = np.array([float(ETA(t)) for t in range(12)])  # eta of steps 1..12
  # g_t = -eta_t grad f(x_{t-1}) - lambda eta_{t-1} grad f(x_{t-2}) + lambda^2 g_{t-2}
  # (row i of grads/gs belongs to step t = i + 1).
  for i in range(2, 12):
    expected = (
        -eta[i] * grads[i]
        - LAMBDA * eta[i - 1] * grads[i - 1]
        + LAMBDA**2 * gs[i - 2]
    )
    np.testing.assert_allclose(gs[i], expected, rtol=1e-5, atol=1e-7)
  # The notes' literal eta_t on the second gradient needs a constant eta.
  literal = -eta[6] * grads[6] - LAMBDA * eta[6] * grads[5] + LAMBDA**2 * gs[4]
  assert np.max(np.abs(gs[6] - literal)) > 1e-3 * np.max(np.abs(gs[6]))


# --- Polyak's rates on a quadratic with kappa = 100 ---------------------------

MU, L = 1.0, 100.0
KAPPA = L / MU


@pytest.fixture(scope="module")
def quadratic():
  """f(x) = x^T A x / 2 with eigenvalues spread over [mu, L], x* = 0.

  x* = 0 keeps float32's relative precision as the error shrinks, so the
  linear rate can be read over hundreds of steps.
  """
  d = 8
  q = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))[0]
  a = jnp.asarray((q * np.linspace(MU, L, d)) @ q.T, jnp.float32)
  return lambda x: 0.5 * x @ a @ x


def measured_rate(opt, f, window):
  xs = trajectory(opt, f, np.ones(8), window[1])
  errors = np.linalg.norm(xs.astype(np.float64), axis=1)
  t = np.arange(*window)
  slope = np.polyfit(t, np.log(errors[t - 1]), 1)[0]  # log-slope of ||x_t - x*||
  return float(np.exp(slope))


def test_gd_converges_at_the_optimal_linear_rate(quadratic):
  rate = measured_rate(wo.gd(2 / (L + MU)), quadratic, (50, 400))
  np.testing.assert_allclose(rate, (KAPPA - 1) / (KAPPA + 1), rtol=1e-3)


def test_heavy_ball_converges_at_the_accelerated_rate(quadratic):
  alpha = 4 / (np.sqrt(L) + np.sqrt(MU)) ** 2
  lam = ((np.sqrt(KAPPA) - 1) / (np.sqrt(KAPPA) + 1)) ** 2
  rate = measured_rate(wo.momentum(alpha, decay=lam), quadratic, (100, 300))
  # The extreme eigenvalues give a double root: the error is ~ t rho^t, which
  # biases a finite window's slope by about 1/t (0.5% here).
  np.testing.assert_allclose(
      rate, (np.sqrt(KAPPA) - 1) / (np.sqrt(KAPPA) + 1), rtol=0.015
  )


# --- Armijo backtracking --------------------------------------------------------


def test_armijo_converges_where_gd_with_the_same_step_diverges(quadratic):
  steps = 400
  diverging = trajectory(wo.gd(10.0), quadratic, np.ones(8), steps)
  assert not np.all(np.isfinite(diverging[-1]))  # gd(10) blows up
  opt = wo.armijo_gd(learning_rate=10.0)
  c = 1e-4

  @jax.jit
  def run(x0):
    def step(carry, _):
      x, state = carry
      value, grad = jax.value_and_grad(quadratic)(x)
      updates, state = opt.update(
          grad, state, x, value=value, grad=grad, value_fn=quadratic
      )
      eta = optax.tree_utils.tree_get(state, "step_size")
      x_new = optax.apply_updates(x, updates)
      # Armijo with p = -grad: f(x + eta p) <= f(x) - c eta ||grad||^2.
      bound = value - c * eta * jnp.vdot(grad, grad)
      return (x_new, state), (value, quadratic(x_new), bound, eta)

    return jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)[1]

  before, after, bound, eta = (np.asarray(a) for a in run(jnp.ones(8)))
  assert np.all(after <= before)  # f never increases
  assert np.all(after <= bound + 1e-6 * np.abs(before))  # each step is sufficient
  assert np.all((eta > 0) & (eta < 10.0))  # every step was shrunk, none refused
  assert after[-1] < 1e-8 * before[0]


def test_armijo_takes_the_first_step_that_decreases_enough():
  # f = x^2 from x = 1 with eta_0 = 10, shrink 0.5: 10, 5, 2.5, 1.25 overshoot
  # (f(1 - 2 eta) >= f(1)); 0.625 gives f = 0.0625 < 1 - c 0.625 4.
  f = lambda x: jnp.sum(x**2)
  opt = wo.armijo_gd(learning_rate=10.0, c=1e-4, shrink=0.5)
  x = jnp.array([1.0])

  @jax.jit  # one program, not op by op
  def search(x):
    value, grad = jax.value_and_grad(f)(x)
    return opt.update(grad, opt.init(x), x, value=value, grad=grad, value_fn=f)

  updates, state = search(x)
  armijo = state[1]
  assert float(armijo.step_size) == 0.625
  assert int(armijo.num_backtracks) == 4
  np.testing.assert_allclose(updates, [-1.25])
  np.testing.assert_allclose(armijo.value, 0.0625)


def test_armijo_without_value_fn_names_it():
  opt = wo.armijo_gd()
  x = jnp.ones(2)
  with pytest.raises(ValueError, match="value_fn"):
    opt.update(x, opt.init(x), x)


def test_armijo_refuses_every_step_when_none_decreases_enough():
  # max_backtracks=0 leaves only eta_0 = 10, which overshoots: a zero step.
  f = lambda x: jnp.sum(x**2)
  opt = wo.armijo_gd(learning_rate=10.0, max_backtracks=0)
  x = jnp.array([1.0, 2.0])
  updates, state = opt.update(x, opt.init(x), x, value_fn=f)  # grad, value from f
  np.testing.assert_array_equal(updates, [0.0, 0.0])
  assert float(state[1].step_size) == 0.0
  assert float(state[1].value) == 5.0


def test_armijo_passes_value_fn_the_extra_arguments_it_accepts():
  f = lambda x, target: jnp.sum((x - target) ** 2)
  target = jnp.array([3.0, -1.0])
  x = jnp.zeros(2)
  opt = optax.chain(optax.identity(), wo.armijo_gd(learning_rate=2.0))
  value, grad = jax.value_and_grad(f)(x, target)
  # ``target`` goes to f; ``other`` (for another member of a chain) is ignored.
  updates, state = opt.update(
      grad, opt.init(x), x, value=value, grad=grad, value_fn=f,
      target=target, other=1.0,
  )
  # 2 and 1 overshoot (f(x + eta (-grad)) >= f(x)); 0.5 lands on the minimum.
  np.testing.assert_allclose(optax.apply_updates(x, updates), target)
  assert float(optax.tree_utils.tree_get(state, "step_size")) == 0.5


# --- every optimizer reaches the minimum --------------------------------------

CONVERGING = {
    "gd": wo.gd(2e-3),
    "normalized_gd": wo.normalized_gd(optax.exponential_decay(0.5, 1000, 0.3)),
    "momentum": wo.momentum(1e-3, decay=0.9),
    "nesterov": wo.nesterov(1e-3, decay=0.9),
    "adagrad": wo.adagrad(0.5),
    "rmsprop": wo.rmsprop(optax.exponential_decay(1e-2, 1000, 0.3)),
    "adam": wo.adam(2e-2),
    "armijo_gd": wo.armijo_gd(1.0),
}


@pytest.mark.parametrize("name", list(CONVERGING))
def test_reaches_the_minimum_of_a_parabola_and_of_rosenbrock(name):
  opt = CONVERGING[name]
  problems = ((parabola, (0.0, 0.0), PARABOLA_MIN), (rosenbrock, X0_ROSENBROCK, (1.0, 1.0)))
  runs = trajectories(*((opt, f, x0, 10_000) for f, x0, _ in problems))
  for (f, _, x_star), xs in zip(problems, runs):
    error = np.linalg.norm(xs - np.asarray(x_star), axis=1)
    assert error[-1] < 1e-3, (f.__name__, error[-1])
