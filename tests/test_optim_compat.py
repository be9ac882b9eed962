"""wonderland.optim inside the optax ecosystem: composition, injection, dtypes.

Every optimizer must compose in ``optax.chain``, take every hyperparameter
traced and vmapped through ``optax.inject_hyperparams``, work under
``optax.apply_if_finite`` and ``optax.MultiSteps``, keep the params' dtype,
compile once, and refuse bad hyperparameters in one sentence.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import optim as wo

# Each factory with valid hyperparameters, and a second valid value for each.
FACTORIES = {
    "gd": (wo.gd, dict(learning_rate=(0.1, 0.02))),
    "normalized_gd": (wo.normalized_gd, dict(learning_rate=(0.1, 0.3))),
    "momentum": (wo.momentum, dict(learning_rate=(0.1, 0.02), decay=(0.5, 0.9))),
    "nesterov": (wo.nesterov, dict(learning_rate=(0.1, 0.02), decay=(0.5, 0.9))),
    "adagrad": (wo.adagrad, dict(learning_rate=(0.1, 0.3), eps=(0.01, 1.0))),
    "rmsprop": (
        wo.rmsprop,
        dict(learning_rate=(0.1, 0.3), decay=(0.5, 0.9), eps=(0.01, 1.0)),
    ),
    "adam": (
        wo.adam,
        dict(learning_rate=(0.1, 0.3), b1=(0.5, 0.0), b2=(0.9, 0.6), eps=(0.01, 1.0)),
    ),
    "armijo_gd": (
        wo.armijo_gd,
        dict(
            learning_rate=(1.0, 3.0),
            c=(0.3, 0.01),
            shrink=(0.7, 0.2),
            max_backtracks=(10, 1),  # 1 binds: set 1 would move with more
        ),
    ),
}
NAMES = list(FACTORIES)


def hparams(name, which=0):
  return {k: v[which] for k, v in FACTORIES[name][1].items()}


def build(name, which=0):
  factory, _ = FACTORIES[name]
  return factory(**hparams(name, which))


TARGET = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(3.0)}
SCALES = {"w": jnp.array([1.0, 4.0, 0.3]), "b": jnp.array(2.0)}


def loss(params):
  """A separable quadratic on a pytree, minimum at TARGET."""
  terms = jax.tree.map(
      lambda p, t, s: jnp.sum(s * (p.astype(jnp.float32) - t) ** 2),
      params,
      TARGET,
      SCALES,
  )
  return sum(jax.tree.leaves(terms))


def start(dtype=jnp.float32):
  return {"w": jnp.zeros(3, dtype), "b": jnp.zeros((), dtype)}


def update(opt, grads, state, params, grad=None):
  """One update with the line-search keyword arguments (ignored by the chains)."""
  grad = grads if grad is None else grad
  return opt.update(
      grads, state, params, value=loss(params), grad=grad, value_fn=loss
  )


def run(opt, params, steps=4):
  def step(carry, _):
    params, state = carry
    updates, state = update(opt, jax.grad(loss)(params), state, params)
    return (optax.apply_updates(params, updates), state), None

  return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[0][0]


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  close = lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
  jax.tree.map(close, a, b)


# --- optax.inject_hyperparams: every hyperparameter traced and vmapped --------


@pytest.mark.parametrize("name", NAMES)
def test_every_hyperparameter_injectable_traced_and_vmapped(name):
  factory, _ = FACTORIES[name]
  injected = optax.inject_hyperparams(factory)

  @jax.vmap
  def sweep(hp):
    return run(injected(**hp), start())

  # The sweep and both direct runs in one program.
  @jax.jit
  def runs(batch):
    return sweep(batch), [run(build(name, i), start()) for i in (0, 1)]

  batch = {k: jnp.asarray(v) for k, v in FACTORIES[name][1].items()}
  swept, direct = runs(batch)
  for i in (0, 1):
    assert_trees_close(jax.tree.map(lambda x: x[i], swept), direct[i])
  # The two hyperparameter sets lead to different points: the sweep is real.
  assert not np.allclose(direct[0]["w"], direct[1]["w"])


# --- optax.chain ------------------------------------------------------------


def test_composes_in_chain_like_its_optax_twin():
  ours = optax.chain(
      optax.clip_by_global_norm(0.5),
      optax.add_decayed_weights(0.1),
      wo.adam(0.1),
  )
  theirs = optax.chain(
      optax.clip_by_global_norm(0.5),
      optax.add_decayed_weights(0.1),
      optax.adam(0.1),
  )
  assert_trees_close(*jax.jit(lambda: (run(ours, start(), 8), run(theirs, start(), 8)))())


def test_armijo_step_size_is_found_through_chain_and_inject():
  opts = (
      optax.chain(optax.clip_by_global_norm(100.0), wo.armijo_gd(4.0)),
      optax.inject_hyperparams(wo.armijo_gd)(learning_rate=4.0),
      optax.chain(optax.inject_hyperparams(wo.armijo_gd)(learning_rate=4.0)),
  )
  # The three first steps in one program.
  states = jax.jit(lambda p: [update(opt, jax.grad(loss)(p), opt.init(p), p)[1]
                              for opt in opts])(start())
  for state in states:
    # From 0 along -grad f(0) = 2 s t the loss is sum s t^2 (2 eta s - 1)^2:
    # the coordinate with s = 4 grows for eta > 0.25, so 4, 2, 1 and 0.5 are
    # refused and 0.25 (f: 35.08 -> 16.30) is the first accepted.
    assert float(optax.tree_utils.tree_get(state, "step_size")) == 0.25


# --- optax.apply_if_finite and optax.MultiSteps --------------------------------


@functools.lru_cache(maxsize=None)
def wrapped_updates(name):
  """The first updates of ``name`` under apply_if_finite and MultiSteps, next
  to the plain optimizer's, in one program per optimizer (both tests read it)."""

  @jax.jit
  def compute():
    params = start()
    grads = jax.grad(loss)(params)
    reference = build(name)
    expected, _ = update(reference, grads, reference.init(params), params)
    out = {"grads": grads, "expected": expected}
    # apply_if_finite: a NaN step is skipped (and counted), a finite one taken.
    opt = optax.apply_if_finite(build(name), max_consecutive_errors=3)
    state = opt.init(params)
    nan_grads = jax.tree.map(lambda g: jnp.full_like(g, jnp.nan), grads)
    out["finite_skipped"], state = update(opt, nan_grads, state, params, grad=grads)
    out["notfinite_count"] = state.notfinite_count
    out["finite_taken"], _ = update(opt, grads, state, params)
    # MultiSteps: two mini-steps whose mean is grads make one step.
    opt = optax.MultiSteps(build(name), every_k_schedule=2)
    state = opt.init(params)
    first = jax.tree.map(lambda g: 1.5 * g, grads)
    second = jax.tree.map(lambda g: 0.5 * g, grads)  # their mean is grads
    out["multi_first"], state = update(opt, first, state, params, grad=grads)
    out["multi_second"], _ = update(opt, second, state, params, grad=grads)
    return out

  return compute()


@pytest.mark.parametrize("name", NAMES)
def test_works_under_apply_if_finite(name):
  out = wrapped_updates(name)
  chex.assert_trees_all_equal(out["finite_skipped"], jax.tree.map(jnp.zeros_like, out["grads"]))
  assert int(out["notfinite_count"]) == 1
  assert_trees_close(out["finite_taken"], out["expected"])


@pytest.mark.parametrize("name", NAMES)
def test_works_under_multisteps(name):
  out = wrapped_updates(name)
  chex.assert_trees_all_equal(out["multi_first"], jax.tree.map(jnp.zeros_like, out["grads"]))
  updates = out["multi_second"]
  assert_trees_close(updates, out["expected"])
  assert np.max(np.abs(updates["w"])) > 1e-3


# --- dtypes and compilation -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_params_stay_bfloat16(name):
  opt = build(name)
  params = start(jnp.bfloat16)
  state = opt.init(params)
  dtypes = jax.tree.map(lambda x: x.dtype, state)

  @jax.jit
  def step(p, s):
    updates, s = update(opt, jax.grad(loss)(p), s, p)
    return updates, s, optax.apply_updates(p, updates), loss(p)

  values = []
  for _ in range(3):
    updates, state, params, value = step(params, state)
    values.append(float(value))
    chex.assert_trees_all_equal_structs(updates, params)
    chex.assert_trees_all_equal_dtypes(updates, params)
  chex.assert_trees_all_equal_dtypes(params, start(jnp.bfloat16))
  assert jax.tree.map(lambda x: x.dtype, state) == dtypes  # state keeps its dtypes
  # values[0] is loss(start()): bfloat16 zeros are float32 zeros.
  assert float(step(params, state)[3]) < 0.9 * values[0]


def test_bfloat16_injected_adam_needs_float32_hyperparameters():
  params = start(jnp.bfloat16)
  # b2 = 0.999 rounds to 1.0 in bfloat16, which the check refuses...
  with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\)"):
    optax.inject_hyperparams(wo.adam)(learning_rate=0.1).init(params)
  # ... and float32 hyperparameters keep it below 1.
  opt = optax.inject_hyperparams(wo.adam, hyperparam_dtype=jnp.float32)(0.1)
  new = jax.jit(lambda p: optax.apply_updates(
      p, opt.update(jax.grad(loss)(p), opt.init(p), p)[0]))(params)
  chex.assert_trees_all_equal_dtypes(new, params)


@pytest.mark.parametrize("inject", [False, True], ids=["plain", "injected"])
@pytest.mark.parametrize("name", NAMES)
def test_a_second_update_does_not_recompile(name, inject):
  factory, _ = FACTORIES[name]
  if inject:
    factory = optax.inject_hyperparams(factory)
  opt = factory(**hparams(name))

  @jax.jit
  def step(params, state):
    updates, state = update(opt, jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  params = start()
  state = opt.init(params)
  for _ in range(3):
    params, state = step(params, state)
  assert step._cache_size() == 1


# --- §1.3's normalized direction --------------------------------------------------


def test_normalized_gd_steps_have_length_eta_over_the_whole_pytree():
  rng = np.random.default_rng(0)
  grads = {
      "w": rng.standard_normal((5, 3)).astype(np.float32),
      "b": rng.standard_normal(3).astype(np.float32),
  }
  opt = wo.normalized_gd(0.3)
  updates, _ = jax.jit(opt.update)(grads, opt.init(grads))
  updates = jax.tree.map(lambda u: np.asarray(u, np.float64), updates)
  norm = np.sqrt(sum(np.sum(u**2) for u in jax.tree.leaves(updates)))
  np.testing.assert_allclose(norm, 0.3, rtol=1e-6)
  g_norm = np.sqrt(sum(np.sum(np.float64(g)**2) for g in jax.tree.leaves(grads)))
  assert_trees_close(updates, jax.tree.map(lambda g: -0.3 * g / g_norm, grads))


def test_normalized_gd_zero_gradient_gives_a_zero_step_and_no_nan():
  opt = wo.normalized_gd(0.3)
  zero = start()
  updates, _ = jax.jit(opt.update)(zero, opt.init(zero))
  chex.assert_trees_all_equal(updates, zero)
  # Differentiating through the step at a zero gradient gives finite numbers.
  jac = jax.jit(jax.jacobian(lambda g: opt.update(g, opt.init(g))[0]))(zero)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(jac))


# --- hyperparameters are checked when an optimizer is built ----------------------

BAD = [
    (wo.gd, dict(learning_rate=0.0), r"learning_rate must be > 0 and finite .*got 0\.0\."),
    (wo.gd, dict(learning_rate=-1.0), r"learning_rate must be > 0 and finite .*got -1\.0\."),
    (wo.gd, dict(learning_rate=jnp.asarray(-0.5)), r"learning_rate .*got -0\.5\."),
    (wo.gd, dict(learning_rate=np.float32(np.nan)), r"learning_rate must be > 0 and finite"),
    (wo.gd, dict(learning_rate="0.1"), r"learning_rate must be a real number"),
    (wo.normalized_gd, dict(learning_rate=-0.1), r"learning_rate must be > 0 and finite"),
    (wo.momentum, dict(learning_rate=-0.1), r"learning_rate must be > 0 and finite"),
    (
        wo.momentum,
        dict(learning_rate=0.1, decay=1.0),
        r"decay must be in \[0, 1\); got 1\.0\.",
    ),
    (wo.nesterov, dict(learning_rate=0.1, decay=-0.1), r"decay must be in \[0, 1\)"),
    (wo.adagrad, dict(learning_rate=0.1, eps=0.0), r"eps must be > 0 and finite; got 0\.0\."),
    (wo.adagrad, dict(learning_rate=0.0), r"learning_rate must be > 0 and finite"),
    (wo.rmsprop, dict(learning_rate=0.1, decay=1.5), r"decay must be in \[0, 1\)"),
    (wo.rmsprop, dict(learning_rate=0.1, eps=-1e-8), r"eps must be > 0 and finite"),
    (wo.adam, dict(learning_rate=0.1, b1=1.0), r"b1 must be in \[0, 1\)"),
    (wo.adam, dict(learning_rate=0.1, b2=-0.5), r"b2 must be in \[0, 1\)"),
    (wo.adam, dict(learning_rate=0.1, eps=0), r"eps must be > 0 and finite"),
    (wo.adam, dict(learning_rate=-3), r"learning_rate must be > 0 and finite"),
    (wo.armijo_gd, dict(learning_rate=0.0), r"learning_rate must be > 0 and finite"),
    (wo.armijo_gd, dict(c=1.0), r"c must be in \(0, 1\)"),
    (wo.armijo_gd, dict(shrink=0.0), r"shrink must be in \(0, 1\)"),
    (wo.armijo_gd, dict(max_backtracks=-1), r"max_backtracks must be in \[0, 2147483647\]; got -1\."),
    (wo.armijo_gd, dict(max_backtracks=2.5), r"max_backtracks must be an integer"),
    (wo.armijo_gd, dict(max_backtracks=2**40), r"max_backtracks must be in \[0, 2147483647\]; got 1099511627776\."),
    (wo.gd, dict(learning_rate=float("inf")), r"learning_rate must be > 0 and finite .*got inf\."),
    (wo.adam, dict(learning_rate=0.1, eps=float("inf")), r"eps must be > 0 and finite; got inf\."),
    (wo.gd, dict(learning_rate=jnp.array([])), r"learning_rate must be a real number > 0 and finite .*got an empty array\."),
    (
        wo.momentum,
        dict(learning_rate=0.1, decay=jnp.asarray(0.999, jnp.bfloat16)),
        r"decay must be in \[0, 1\); got 1\.0, a bfloat16 value \(optax\.inject_hyperparams casts .*hyperparam_dtype=jnp\.float32\)\.",
    ),
    (wo.scale_by_momentum, dict(decay=2.0), r"decay must be in \[0, 1\)"),
    (wo.scale_by_momentum, dict(nesterov="no"), r"nesterov must be True or False, got 'no'\."),
    (wo.scale_by_learning_rate, dict(learning_rate=0.1, flip_sign=0), r"flip_sign must be True or False, got 0\."),
    (wo.scale_by_learning_rate, dict(learning_rate=-1.0), r"learning_rate must be > 0 and finite"),
]


@pytest.mark.parametrize(
    "factory,kwargs,message", BAD, ids=[f"{f.__name__}-{k}" for f, k, _ in BAD]
)
def test_bad_hyperparameters_are_refused_when_built(factory, kwargs, message):
  with pytest.raises(ValueError, match=message):
    factory(**kwargs)


def test_schedules_and_traced_values_are_not_refused():
  wo.adam(optax.linear_schedule(0.0, 1.0, 10))  # a schedule (even from 0)
  wo.armijo_gd(optax.constant_schedule(2.0))

  @jax.jit
  def traced(lr, decay):
    opt = wo.momentum(lr, decay)
    return opt.update(jnp.ones(2), opt.init(jnp.ones(2)))[0]

  # Checked only when known: a traced value goes through (and is used as is).
  np.testing.assert_allclose(traced(-1.0, 0.5), [1.0, 1.0])


# --- float64 and complex params -------------------------------------------------


def test_adam_debiases_float64_params_in_float64():
  # 1 - beta^t in float32 would leave ~1e-5 relative error in every step.
  with jax.enable_x64(True):
    x = np.array([1e-3, 5.0])
    m, v = np.zeros(2), np.zeros(2)
    ours, opt = jnp.asarray(x), wo.adam(0.1)
    state = opt.init(ours)

    @jax.jit
    def step(ours, state):
      updates, state = opt.update(2 * (ours - 1.5), state, ours)
      return optax.apply_updates(ours, updates), state

    for t in range(1, 201):
      g = 2 * (x - 1.5)
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g**2
      x = x - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
      ours, state = step(ours, state)
    assert ours.dtype == jnp.float64
    np.testing.assert_allclose(ours, x, rtol=1e-13)


COMPLEX_TWINS = {
    "gd": (wo.gd(0.1), optax.sgd(0.1)),
    "momentum": (wo.momentum(0.1, 0.9), optax.sgd(0.1, momentum=0.9)),
    "adagrad": (
        wo.adagrad(0.1, eps=1e-10),
        optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-20),
    ),
    "rmsprop": (wo.rmsprop(0.1), optax.rmsprop(0.1, eps_in_sqrt=False)),
    "adam": (wo.adam(0.1), optax.adam(0.1)),
    "normalized_gd": (
        wo.normalized_gd(0.1),
        optax.chain(optax.normalize_by_update_norm(scale_factor=1.0), optax.scale(-0.1)),
    ),
}


@pytest.mark.parametrize("name", list(COMPLEX_TWINS))
def test_complex_params_square_as_abs_squared_like_optax(name):
  ours, theirs = COMPLEX_TWINS[name]
  z = jnp.array([1 + 2j, -3 + 0.5j], jnp.complex64)
  gs = [jnp.array([0.3 - 1j, 2 + 1j]).astype(jnp.complex64),
        jnp.array([-1 + 0.5j, 0.2j]).astype(jnp.complex64)]

  @jax.jit
  def two_steps(z):  # both optimizers, two steps each, in one program
    states, out = (ours.init(z), theirs.init(z)), []
    for g in gs:
      u_ours, s_ours = ours.update(g, states[0], z)
      u_theirs, s_theirs = theirs.update(g, states[1], z)
      states = s_ours, s_theirs
      out.append((u_ours, u_theirs))
    return out

  for u_ours, u_theirs in two_steps(z):
    assert u_ours.dtype == jnp.complex64
    np.testing.assert_allclose(u_ours, u_theirs, rtol=2e-6, atol=1e-7)
  if name == "normalized_gd":  # a step of length eta along -g
    np.testing.assert_allclose(np.linalg.norm(np.asarray(u_ours)), 0.1, rtol=1e-6)


def test_armijo_judges_the_bfloat16_point_it_returns():
  # XLA keeps excess precision in bfloat16 chains; the search must round its
  # trial point as optax.apply_updates will, or it accepts a step that rounds
  # back to no decrease (value in the state != f at the new point).
  f = lambda x: jnp.sum((x.astype(jnp.float32) - 1.3) ** 2)
  opt = wo.armijo_gd(1.0, c=0.5)
  search = jax.jit(  # one program for every seed
      lambda x, v, g: opt.update(g, opt.init(x), x, value=v, grad=g, value_fn=f))
  # The noise of seeds 0..7 (jax.random.normal(jax.random.key(seed), (4,))), drawn at once.
  noises = jax.jit(jax.vmap(lambda s: jax.random.normal(jax.random.key(s), (4,))))(jnp.arange(8))
  value_and_grad, f_jit = jax.jit(jax.value_and_grad(f)), jax.jit(f)
  for noise in np.asarray(noises):
    x = (1.296875 + jnp.asarray(noise) * 0.01).astype(jnp.bfloat16)
    value, grad = value_and_grad(x)
    updates, state = search(x, value, grad)
    armijo = state[1]
    new = optax.apply_updates(x, updates)  # eager, as a training loop rounds
    assert new.dtype == jnp.bfloat16
    f_new = float(f_jit(new))
    np.testing.assert_allclose(armijo.value, f_new, rtol=1e-6)  # same point
    # Sufficient decrease at the returned point, in the search's float32.
    g = np.asarray(grad.astype(jnp.float32))
    slope = -np.float32(np.dot(g, g))
    assert f_new <= np.float32(value) + np.float32(0.5) * np.float32(armijo.step_size) * slope
