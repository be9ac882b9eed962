"""Public contracts that cut across modules: exports, composition, dtypes, protocols.

Each test names the claim it checks. They are small and fast: the
expensive end-to-end checks live in the per-module files.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wonderland as wl
from wonderland import optim as wo
from wonderland import problems

ROOT = Path(__file__).resolve().parents[1]


# --- §1.1-§1.2: the public API, tensors and derivatives ---


def test_public_api_resolves_and_exports_the_functions():
  assert isinstance(wl.__version__, str) and wl.__version__
  missing = [name for name in wl.__all__ if not hasattr(wl, name)]
  assert not missing
  assert len(set(wl.__all__)) == len(wl.__all__)
  # These are top-level functions, not modules.
  for name in ("grad", "jacobian", "linearize", "hessian", "hvp",
               "check_grad", "directional_derivative", "minimize", "sweep"):
    assert name in wl.__all__, name
    assert callable(getattr(wl, name)) and not isinstance(
        getattr(wl, name), type(wl)), name


def test_cosine_similarity_mismatch_names_both_shapes():
  with pytest.raises(ValueError) as info:
    wl.cosine_similarity(np.ones(3), np.ones(4))
  assert "(3,)" in str(info.value) and "(4,)" in str(info.value)


def test_template_scores_are_the_normalized_inner_products():
  rng = np.random.default_rng(7)
  templates = rng.standard_normal((6, 5)).astype(np.float32)
  x = rng.standard_normal(5).astype(np.float32)
  scores, best = wl.template_match(jnp.asarray(x), jnp.asarray(templates))
  expected = templates @ x / (np.linalg.norm(templates, axis=1)
                              * np.linalg.norm(x))
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
  assert int(best) == int(np.argmax(expected))
  # A negatively scaled copy points away from its template: cos = -1.
  scores, best = wl.template_match(-2.0 * jnp.asarray(templates[3]),
                                   jnp.asarray(templates))
  np.testing.assert_allclose(scores[3], -1.0, atol=1e-6)
  assert int(best) != 3


@pytest.mark.parametrize(
    "call",
    [
        lambda: wl.hessian(lambda x: x**2)(jnp.ones(3)),
        lambda: wl.hvp(lambda x: x**2, jnp.ones(3), jnp.ones(3)),
        lambda: wl.check_grad(lambda x: x**2, jnp.ones(3)),
    ],
    ids=["hessian", "hvp", "check_grad"],
)
def test_second_order_tools_refuse_a_vector_function(call):
  with pytest.raises(ValueError, match=r"scalar.*\(3,\)"):
    call()


def test_hvp_and_linearize_name_both_shapes_of_a_mismatch():
  with pytest.raises(ValueError, match=r"v must .*\(3,\).*\(2,\)"):
    wl.hvp(jnp.sum, jnp.ones(3), jnp.ones(2))
  f_lin = wl.linearize(jnp.sin, jnp.ones(3))
  with pytest.raises(ValueError, match=r"x must .*\(3,\).*\(2,\)"):
    f_lin(jnp.ones(2))


def test_auto_mode_picks_forward_when_output_and_input_sizes_are_equal():
  # "forward mode when the output is at least as large as the input": the
  # boundary c = d. A while_loop has forward mode only, so auto must be fwd.
  def f(x):  # R^3 -> R^3
    y = jax.lax.while_loop(lambda c: c[0] < 2,
                           lambda c: (c[0] + 1, c[1] * 1.5), (0, x))[1]
    return y**2

  x = jnp.array([1.0, 2.0, 3.0])
  np.testing.assert_allclose(wl.jacobian(f)(x),
                             np.diag(2 * 1.5**4 * np.asarray(x)), rtol=1e-6)
  with pytest.raises(ValueError):
    wl.jacobian(f, "rev")(x)


def test_directional_derivative_of_a_pytree():
  f = lambda p: jnp.sum(p["a"] ** 2) * p["b"]
  p = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
  v = {"a": jnp.array([0.5, 1.0]), "b": jnp.array(-1.0)}
  # grad: a -> 2 a b = (6, -12), b -> |a|^2 = 5; dot with v: 3 - 12 - 5.
  assert float(wl.directional_derivative(f, p, v)) == pytest.approx(-14.0)


# --- §1.3: optimizers ---

PLAIN = {
    "gd": lambda: wo.gd(0.1),
    "normalized_gd": lambda: wo.normalized_gd(0.1),
    "momentum": lambda: wo.momentum(0.1, decay=0.5),
    "nesterov": lambda: wo.nesterov(0.1, decay=0.5),
    "adagrad": lambda: wo.adagrad(0.1, eps=0.1),
    "rmsprop": lambda: wo.rmsprop(0.1, decay=0.5, eps=0.1),
    "adam": lambda: wo.adam(0.1, eps=0.1),
}
GRADS = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -4.0], [-1.0, 1.0, 2.0]],
                 np.float32)


def _updates(opt, grads, scale=1.0):
  state = opt.init(jnp.zeros(3))
  out = []
  for g in grads:
    u, state = opt.update(scale * jnp.asarray(g), state, jnp.zeros(3))
    out.append(np.asarray(u))
  return np.asarray(out)


@pytest.mark.parametrize("name", list(PLAIN))
def test_optimizer_in_a_chain_acts_on_the_incoming_updates(name):
  # chain(scale(s), opt) must equal opt fed s * grad: it transforms what the
  # previous member hands it, not a gradient of its own.
  chained = _updates(optax.chain(optax.scale(0.25), PLAIN[name]()), GRADS)
  direct = _updates(PLAIN[name](), GRADS, scale=0.25)
  np.testing.assert_allclose(chained, direct, rtol=1e-6, atol=1e-7)
  # The eps (or the lack of scale invariance) makes the scale visible for
  # every optimizer but normalized_gd.
  if name != "normalized_gd":
    assert not np.allclose(direct, _updates(PLAIN[name](), GRADS), rtol=1e-3)


def test_building_blocks_are_sign_neutral_and_named_optimizers_descend():
  g = jnp.asarray(GRADS[0])
  eta = 0.1
  blocks = {
      "momentum": (wo.scale_by_momentum(0.9), wo.momentum(eta, decay=0.9),
                   np.asarray(g)),
      "unit_norm": (wo.scale_by_unit_norm(), wo.normalized_gd(eta),
                    np.asarray(g) / np.linalg.norm(g)),
      "adagrad": (wo.scale_by_adagrad(eps=1e-7), wo.adagrad(eta, eps=1e-7),
                  np.sign(g)),
      "rmsprop": (wo.scale_by_rmsprop(decay=0.9, eps=1e-7),
                  wo.rmsprop(eta, decay=0.9, eps=1e-7),
                  np.asarray(g) / np.sqrt(0.1 * np.asarray(g) ** 2)),
      "adam": (wo.scale_by_adam(), wo.adam(eta), np.sign(g)),
  }
  for name, (block, named, first) in blocks.items():
    u = block.update(g, block.init(g), g)[0]
    # Sign-neutral: the block keeps the gradient's direction ...
    np.testing.assert_allclose(u, first, rtol=1e-4, err_msg=name)
    # ... and the named optimizer scales it by -eta_t.
    step = named.update(g, named.init(g), g)[0]
    np.testing.assert_allclose(step, -eta * np.asarray(u), rtol=1e-5,
                               err_msg=name)
  lr = wo.scale_by_learning_rate(eta)
  np.testing.assert_allclose(lr.update(g, lr.init(g))[0], -eta * np.asarray(g),
                             rtol=1e-6)


ALL = {**PLAIN, "armijo_gd": lambda: wo.armijo_gd(1.0)}


def test_optimizer_registry_names_every_named_optimizer_like_problems():
  # optim.names()/get(name) as problems.names()/get(name): every named
  # optimizer of __all__ (the lower-case factories that take eta) is listed.
  factories = [n for n in wo.__all__ if n.islower()
               and not n.startswith("scale_by") and n not in ("get", "names")]
  assert sorted(wo.names()) == sorted(factories) == sorted(ALL)
  assert wo.names()[0] == "gd"  # the notes' order, not sorted
  for name in wo.names():
    assert wo.get(name) is getattr(wo, name)
  assert wo.get("optax.lion") is optax.lion
  with pytest.raises(ValueError, match=r"unknown optimizer 'sgdd'; valid "
                     r"names are: gd, normalized_gd, .*, optax.<name>\."):
    wo.get("sgdd")
  for name in ("optax.nope", "optax.GradientTransformation",
               "optax.scale_by_adam"):
    with pytest.raises(ValueError, match="not an optax optimizer taking "
                       "learning_rate"):
      wo.get(name)


@pytest.mark.parametrize("name", list(ALL))
def test_float32_params_stay_float32_with_x64_enabled(name):
  # "preserve the parameters' dtype": float64 hyperparameters or x64 mode
  # must not promote a float32 step.
  f = lambda x: jnp.sum((x - 1.0) ** 2)
  with jax.enable_x64(True):
    opt = ALL[name]()
    x = jnp.zeros(3, jnp.float32)
    state = opt.init(x)
    dtypes = jax.tree.map(lambda a: a.dtype, state)
    for _ in range(2):
      value, grad = jax.value_and_grad(f)(x)
      updates, state = opt.update(grad, state, x, value=value, grad=grad,
                                  value_fn=f)
      assert updates.dtype == jnp.float32
      x = optax.apply_updates(x, updates)
    assert x.dtype == jnp.float32
    assert jax.tree.map(lambda a: a.dtype, state) == dtypes
    assert float(f(x)) < float(f(jnp.zeros(3)))


# --- §1.3.1: problems ---

REQUIRED_PROBLEMS = (
    "quadratic", "booth", "rosenbrock", "beale", "himmelblau", "rastrigin",
    "ackley", "styblinski_tang", "saddle", "monkey_saddle", "sin_cos",
    "x_sin_2x", "logistic_breast_cancer", "mlp_digits",
)


def test_registry_holds_every_documented_problem():
  assert set(REQUIRED_PROBLEMS) <= set(problems.names())
  p = problems.get("sin_cos")
  np.testing.assert_array_equal(p.bounds[0], [0.0, 0.0])
  np.testing.assert_array_equal(p.bounds[1], [10.0, 10.0])
  for name in ("saddle", "monkey_saddle"):
    assert problems.get(name).minimizers.shape == (0, 2)


@pytest.mark.parametrize("name", ["rosenbrock", "himmelblau", "sin_cos",
                                  "styblinski_tang"])
def test_init_is_uniform_over_the_whole_box(name):
  # Inside the bounds is not enough: it must fill the box uniformly.
  p = problems.get(name)
  lower, upper = (np.asarray(b, np.float64) for b in p.bounds)
  width = upper - lower
  u = (np.asarray(p.init(jax.random.key(11), 4096), np.float64) - lower) / width
  assert np.all((u >= 0) & (u <= 1))
  # Uniform on [0, 1]: mean 1/2 (sd 0.0045), variance 1/12, quartiles 1/4, 3/4.
  np.testing.assert_allclose(u.mean(0), 0.5, atol=0.025)
  np.testing.assert_allclose(u.var(0), 1 / 12, rtol=0.1)
  np.testing.assert_allclose(np.quantile(u, [0.25, 0.75], axis=0),
                             [[0.25] * p.dim, [0.75] * p.dim], atol=0.03)
  # The coordinates are drawn independently.
  assert abs(np.corrcoef(u.T)[0, 1]) < 0.1


# --- runs and sweeps ---

A = jnp.array([1.0, 4.0, 10.0])


def _quadratic(x):
  return 0.5 * jnp.sum(A * x**2)


def test_sweep_runs_a_line_search_optimizer_like_minimize():
  # armijo_gd needs value, grad and value_fn: sweep must pass them too.
  lrs = np.array([0.15, 1.0])
  x0 = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], np.float32)
  result = wl.sweep(_quadratic, wo.armijo_gd, {"learning_rate": lrs}, x0,
                    steps=6)
  assert result.values.shape == (2, 2, 6)
  assert not np.any(np.asarray(result.diverged))
  for i, lr in enumerate(lrs):
    for s in range(2):
      trace = wl.minimize(_quadratic, wo.armijo_gd(float(lr)),
                          jnp.asarray(x0[s]), steps=6)
      np.testing.assert_allclose(result.values[i, s], trace.values,
                                 rtol=1e-5, atol=1e-7)
  # eta_0 = 1 overshoots on a = 10 (1 - eta a = -9) and must be shrunk;
  # eta_0 = 0.15 is accepted. Backtracking makes f decrease monotonically.
  values = np.asarray(result.values)
  assert np.all(np.diff(values, axis=-1) <= 0)
  assert not np.allclose(values[0], values[1], rtol=1e-3)


def test_descent_method_never_has_a_negative_cosine():
  # "cos_angles ... negative never for a descent method": adagrad's diagonal
  # preconditioner keeps -P grad within 90 degrees of -grad.
  trace = wl.minimize(_quadratic, wo.adagrad(0.5),
                      jnp.array([1.0, -2.0, 0.5]), steps=40)
  cos = np.asarray(trace.cos_angles)
  assert np.all(cos[np.isfinite(cos)] > 0)
  assert np.nanmin(cos) < 0.999  # not trivially the steepest direction


# --- experiment configs ---

CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py")
                 if not p.stem.startswith("_"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_header_quick_variant_and_lock(name):
  path = ROOT / "configs" / f"{name}.py"
  doc = ast.get_docstring(ast.parse(path.read_text())) or ""
  for section in ("Command:", "Runtime:", "Result:", "python experiments/"):
    assert section in doc, (name, section)
  spec = importlib.util.spec_from_file_location(f"_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  full, quick = module.get_config(), module.get_config("quick")
  assert set(full.keys()) == set(quick.keys())
  assert full.to_dict() != quick.to_dict()  # quick really is smaller
  for config in (full, quick):
    with pytest.raises(AttributeError):
      config.not_a_key = 1  # locked: a typo cannot add a key
  with pytest.raises(ValueError, match="quick"):
    module.get_config("fast")
