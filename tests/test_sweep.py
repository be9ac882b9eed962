"""Tests of wonderland.sweep: layout, minimize equality, compiles, devices."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import hypothesis
from hypothesis import strategies as st
import numpy as np
import optax
import pytest

from wonderland import optim
from wonderland import report
from wonderland._run import minimize
from wonderland._sweep import SweepResult
from wonderland._sweep import sweep

sys.path.insert(0, str(Path(__file__).parent))
import _sweep_worker  # pylint: disable=wrong-import-position
from tests import _models  # pylint: disable=wrong-import-position

WORKER = Path(__file__).parent / "_sweep_worker.py"
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def rosenbrock(x):
  return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


X0 = np.array([[-1.5, 2.0], [0.0, 0.0], [1.2, 1.2]], np.float32)
LRS = np.array([1e-4, 1e-3, 4e-3])  # 4e-3 diverges from the first seed
STEPS = 20


@pytest.fixture(scope="module")
def base():
  return sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0,
               steps=STEPS, fixed={"momentum": 0.9})


def test_shapes_and_layout(base):
  assert isinstance(base, SweepResult)
  assert base.values.shape == (3, 3, STEPS)
  assert base.grad_norms.shape == (3, 3, STEPS)
  assert base.final_params.shape == (3, 3, 2)
  assert base.diverged.shape == (3, 3)
  assert base.names == ("learning_rate",)
  np.testing.assert_array_equal(base.hparams["learning_rate"], LRS)
  assert base.fixed == {"momentum": 0.9} and base.steps == STEPS
  assert base.compile_seconds > 0.0 and base.run_seconds > 0.0


def test_every_cell_equals_minimize(base):
  for i, lr in enumerate(LRS):
    opt = optax.sgd(float(lr), momentum=0.9)  # one compile per optimizer
    for s in range(len(X0)):
      trace = minimize(rosenbrock, opt, jnp.asarray(X0[s]), steps=STEPS)
      assert bool(base.diverged[i, s]) == bool(trace.diverged), (i, s)
      # The batched program rounds differently from the single one in the
      # last bit (x64 below shows the two are the same iteration); heavy
      # momentum on Rosenbrock's valley amplifies that to ~1e-4 by step 20.
      np.testing.assert_allclose(base.values[i, s], trace.values, rtol=1e-3,
                                 atol=1e-4, err_msg=f"cell {i}, seed {s}")
      np.testing.assert_allclose(base.grad_norms[i, s], trace.grad_norms,
                                 rtol=1e-3, atol=1e-3)
      np.testing.assert_allclose(base.final_params[i, s], trace.params,
                                 rtol=1e-3, atol=1e-5)


def test_cell_equals_minimize_in_float64():
  with jax.enable_x64(True):
    x0 = X0.astype(np.float64)
    result = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS[:2]}, x0,
                   steps=STEPS, fixed={"momentum": 0.9})
    assert result.values.dtype == np.float64
    for i, lr in enumerate(LRS[:2]):
      opt = optax.sgd(float(lr), momentum=0.9)
      for s in range(len(x0)):
        trace = minimize(rosenbrock, opt, jnp.asarray(x0[s]), steps=STEPS)
        np.testing.assert_allclose(result.values[i, s], trace.values,
                                   rtol=1e-11)


def test_divergence_is_isolated(base):
  diverged = np.asarray(base.diverged)
  assert diverged[2, 0] and diverged.sum() == 1
  values = np.asarray(base.values)
  first_nan = int(np.argmax(np.isnan(values[2, 0])))
  assert 0 < first_nan and np.all(np.isnan(values[2, 0, first_nan:]))
  assert np.all(np.isfinite(values[~diverged]))
  assert np.all(np.isfinite(np.asarray(base.final_params)))
  # The stopped run keeps the point where it blew up, as minimize does.
  trace = minimize(rosenbrock, optax.sgd(4e-3, momentum=0.9),
                   jnp.asarray(X0[0]), steps=STEPS)
  assert int(trace.num_steps) == first_nan
  np.testing.assert_allclose(base.final_params[2, 0], trace.params, rtol=1e-5)


def test_two_dimensional_grid_with_wonderland_momentum():
  from wonderland import optim  # pylint: disable=g-import-not-at-top
  grid = {"learning_rate": np.array([1e-4, 1e-3]),
          "decay": np.array([0.0, 0.5, 0.9])}
  result = sweep(rosenbrock, optim.momentum, grid, X0[:2], steps=10)
  assert result.values.shape == (2, 3, 2, 10)
  assert result.hparams["decay"].shape == (2, 3)
  np.testing.assert_array_equal(result.hparams["decay"][1], grid["decay"])
  np.testing.assert_array_equal(result.hparams["learning_rate"][:, 2],
                                grid["learning_rate"])
  for i, j in [(0, 0), (1, 2)]:  # two corners of the grid
    lr, decay = grid["learning_rate"][i], grid["decay"][j]
    trace = minimize(rosenbrock, optim.momentum(float(lr), float(decay)),
                     jnp.asarray(X0[1]), steps=10)
    np.testing.assert_allclose(result.values[i, j, 1], trace.values,
                               rtol=2e-5)


def test_non_numeric_fixed_argument():
  result = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS[:2]}, X0[:1],
                 steps=10, fixed={"momentum": 0.9, "nesterov": True})
  plain = minimize(rosenbrock, optax.sgd(float(LRS[1]), 0.9, nesterov=True),
                   jnp.asarray(X0[0]), steps=10)
  heavy = minimize(rosenbrock, optax.sgd(float(LRS[1]), 0.9),
                   jnp.asarray(X0[0]), steps=10)
  np.testing.assert_allclose(result.values[1, 0], plain.values, rtol=1e-5)
  assert not np.allclose(result.values[1, 0], heavy.values, rtol=1e-3)


def test_pytree_params_and_empty_grid():
  x0 = {"w": np.ones((2, 3), np.float32), "b": np.array([0.5, -1.0])}
  f = lambda p: jnp.sum((p["w"] - 2.0) ** 2) + p["b"] ** 2
  result = sweep(f, optax.sgd, {}, x0, steps=5,
                 fixed={"learning_rate": 0.1})
  assert result.values.shape == (2, 5)
  assert result.final_params["w"].shape == (2, 3)
  assert result.final_params["b"].shape == (2,)
  assert result.best() == {}
  # gd on (w - 2)^2 + b^2 with eta = 0.1: each coordinate shrinks by 0.8.
  np.testing.assert_allclose(result.final_params["w"],
                             2.0 - 0.8**5 * np.ones((2, 3)), rtol=1e-5)
  np.testing.assert_allclose(result.final_params["b"],
                             0.8**5 * np.array([0.5, -1.0]), rtol=1e-5)


def test_chunks_equal_one_program_and_log_progress(base, caplog):
  with caplog.at_level(logging.INFO, logger="absl"):
    chunked = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0,
                    steps=STEPS, fixed={"momentum": 0.9}, chunk_steps=6)
  lines = [r.getMessage() for r in caplog.records if "sweep:" in r.getMessage()]
  # ceil(20 / 6) = 4 chunks of 5, a line after each (from inside the one
  # program), then the summary.
  assert [line.split(" steps")[0] for line in lines] == [
      "sweep: 5/20", "sweep: 10/20", "sweep: 15/20", "sweep: 20/20",
      "sweep: 20"]
  assert lines[-1].startswith("sweep: 20 steps of 9 runs (4 chunks of 5), "
                              "1 diverged")
  assert "1 diverged" in lines[-2]
  # Chunks of 8 (6 rounded up to a multiple of eval_every) overshoot the
  # last step by 4: those steps are masked, and the lines count right.
  caplog.clear()
  with caplog.at_level(logging.INFO, logger="absl"):
    over = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0,
                 steps=STEPS, fixed={"momentum": 0.9}, chunk_steps=6,
                 evaluate=lambda x: {"x0": x[0]}, eval_every=4)
  lines = [r.getMessage() for r in caplog.records if "sweep:" in r.getMessage()]
  assert lines[2].startswith("sweep: 20/20 steps of 9 runs (3 chunks of 8), "
                             "1 diverged")
  for name in ("values", "grad_norms", "final_params", "diverged"):
    np.testing.assert_array_equal(getattr(over, name), getattr(base, name),
                                  err_msg=name)
  for name in ("values", "grad_norms", "final_params", "diverged"):
    np.testing.assert_array_equal(getattr(chunked, name), getattr(base, name),
                                  err_msg=name)


def test_progress_lines_are_compiled_in_only_where_absl_logs_them(
    base, caplog, monkeypatch):
  from wonderland import _sweep as sweep_module  # pylint: disable=g-import-not-at-top

  programs = []
  original = sweep_module.compile_and_run

  def spy(jitted, timing, static, *args):
    programs.append(jitted.lower(*static, *args).as_text())
    return original(jitted, timing, static, *args)

  monkeypatch.setattr(sweep_module, "compile_and_run", spy)
  results = {}
  for level in (logging.INFO, logging.WARNING):
    caplog.clear()
    with caplog.at_level(level, logger="absl"):
      results[level] = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS},
                             X0, steps=STEPS, fixed={"momentum": 0.9},
                             chunk_steps=6)
    results[level, "lines"] = [r.getMessage() for r in caplog.records
                               if "/20 steps" in r.getMessage()]
  assert len(results[logging.INFO, "lines"]) == 4
  assert not results[logging.WARNING, "lines"]
  with_line, without = programs
  assert "callback" in with_line
  assert "callback" not in without
  # Dropping the callback changes no bit.
  for name in ("values", "grad_norms", "final_params", "diverged"):
    np.testing.assert_array_equal(getattr(results[logging.WARNING], name),
                                  getattr(base, name), err_msg=name)


@pytest.mark.skipif(jax.device_count() > 1, reason="the one-device path")
def test_one_device_takes_the_host_arrays_with_the_same_bits(base,
                                                              monkeypatch):
  # On one device of one process the program takes the host arrays as they
  # are (jax's dispatch copies them over): no global array is made, and the
  # bits are those of the global arrays the program takes otherwise.
  from wonderland import _sweep as sweep_module  # pylint: disable=g-import-not-at-top

  made = []
  original = sweep_module.global_array

  def counted(host, sharding):
    made.append(host.shape)
    return original(host, sharding)

  monkeypatch.setattr(sweep_module, "global_array", counted)
  direct = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0,
                 steps=STEPS, fixed={"momentum": 0.9})
  assert not made
  monkeypatch.setattr(sweep_module, "_argument",
                      lambda host, sharding, direct: counted(host, sharding))
  via_global = sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0,
                     steps=STEPS, fixed={"momentum": 0.9})
  assert len(made) == 4  # the learning rates, x0, the real runs, steps
  for name in ("values", "grad_norms", "final_params", "diverged"):
    np.testing.assert_array_equal(getattr(direct, name),
                                  getattr(via_global, name), err_msg=name)
    np.testing.assert_array_equal(getattr(direct, name), getattr(base, name),
                                  err_msg=name)


def test_new_values_compile_nothing_and_reproduce():
  f = lambda x: jnp.sum((x - 1.0) ** 2)  # a fresh f: a fresh program
  compiles = []

  def listener(event, duration, **kwargs):
    del duration, kwargs
    if event == BACKEND_COMPILE:
      compiles.append(event)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    args = dict(steps=8, fixed={"b1": 0.9})
    first = sweep(f, optax.adam, {"learning_rate": np.array([0.1, 0.2])},
                  np.zeros((2, 3), np.float32), **args)
    n_first = len(compiles)
    second = sweep(f, optax.adam, {"learning_rate": np.array([0.3, 0.05])},
                   np.ones((2, 3), np.float32), **args)
    n_second = len(compiles) - n_first
    again = sweep(f, optax.adam, {"learning_rate": np.array([0.1, 0.2])},
                  np.zeros((2, 3), np.float32), **args)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert n_first == 1  # one chunk: one program, x0 to the laid-out result
  assert n_second == 0
  assert not np.array_equal(first.values, second.values)
  for name in ("values", "grad_norms", "final_params", "diverged"):
    np.testing.assert_array_equal(getattr(first, name), getattr(again, name))


def _result(values, diverged, lrs):
  values = np.asarray(values, np.float32)
  return SweepResult(
      values=values, grad_norms=values, final_params=None,
      diverged=np.asarray(diverged), hparams={"learning_rate": np.asarray(lrs)},
      names=("learning_rate",), fixed={}, steps=values.shape[-1],
      compile_seconds=0.0, run_seconds=0.0,
  )


def test_best_uses_the_median_over_seeds_and_diverged_as_worst():
  # 3 learning rates x 3 seeds x 4 steps.
  values = np.array([
      [[9, 5, 3, 2.0], [9, 5, 3, 2.0], [9, 5, 3, 2.0]],       # median 2
      [[9, 1, 0.5, 0.1], [9, 8, 7, 6.0], [9, 1, 0.5, 0.4]],   # median 0.4
      [[9, 1, 0.1, 0.0], [9, 1, 0.1, 0.0], [9, 1, 0.1, 0.0]],  # 2 diverged
  ])
  diverged = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 1]], bool)
  result = _result(values, diverged, [0.1, 0.2, 0.3])
  np.testing.assert_allclose(result.score(), [2.0, 0.4, np.inf])
  assert result.best() == {"learning_rate": 0.2}
  # Steps to f <= 1: rows need [inf x3], [2, inf, 2], [2, 2, 2]: a run that
  # reaches the target and diverges later keeps its count (report's rule).
  np.testing.assert_allclose(result.score("steps_to_target", target=1.0),
                             [np.inf, 2.0, 2.0])
  # Medians tie at 2: the median final value (0.4 against +inf) decides.
  assert result.best("steps_to_target", target=1.0) == {"learning_rate": 0.2}
  # Only the third row reaches 1e-3 (at step 4, before the flag was set).
  assert result.best("steps_to_target", target=1e-3) == {"learning_rate": 0.3}
  assert result.best("steps_to_target", target=2.5) == {"learning_rate": 0.2}
  np.testing.assert_allclose(result.score("steps_to_target", target=2.5),
                             [4.0, 2.0, 2.0])


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**31 - 1),
    n_lr=st.integers(1, 5),
    n_seeds=st.integers(1, 4),
    target=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_best_and_the_compare_job_choose_the_same(seed, n_lr, n_seeds, target):
  # One protocol: SweepResult.best and report.best_index (the compare job's
  # choice, on report.final_values / report.steps_to_target) agree on sweeps
  # with diverging seeds, all-diverged grid points, and targets reached and
  # then lost (NaN after the divergence, as in a real trace).
  rng = np.random.default_rng(seed)
  steps = 5
  values = rng.choice([0.1, 0.7, 1.5, 3.0], size=(n_lr, n_seeds, steps))
  diverged = rng.random((n_lr, n_seeds)) < 0.4
  diverged[rng.integers(n_lr)] = True           # one all-diverged grid point
  stop = rng.integers(1, steps, size=(n_lr, n_seeds))
  after = np.arange(steps) >= stop[..., None]
  values = np.where(diverged[..., None] & after, np.nan, values)
  lrs = np.linspace(0.1, 0.5, n_lr)
  result = _result(values, diverged, lrs)
  final = report.final_values(values, diverged)
  assert result.best() == {"learning_rate": float(lrs[report.best_index(final)])}
  to_target = report.steps_to_target(values, target)
  chosen = report.best_index(to_target, tiebreak=final)
  assert result.best("steps_to_target", target=target) == {
      "learning_rate": float(lrs[chosen])}


def test_best_on_a_real_sweep(base):
  per_run = np.where(np.asarray(base.diverged), np.inf,
                     np.asarray(base.values)[..., -1])
  expected = LRS[np.argmin(np.median(per_run, axis=1))]
  assert base.best() == {"learning_rate": float(expected)}


def test_bad_best_arguments(base):
  with pytest.raises(ValueError, match="metric must be one of"):
    base.best("loss")
  with pytest.raises(ValueError, match="target must be a finite number"):
    base.best("steps_to_target")
  with pytest.raises(ValueError, match="target is only used with"):
    base.score("final_value", target=1.0)


@pytest.mark.parametrize(
    "grid, kwargs, match",
    [
        ({"lr": LRS}, {},
         r"grid name 'lr' is not a hyperparameter of sgd; accepted names are "
         r"learning_rate, momentum, nesterov"),
        ({"learning_rate": LRS.reshape(3, 1)}, {},
         r"grid\['learning_rate'\] must be a non-empty 1-D array of floats or "
         r"signed integers, "
         r"got shape \(3, 1\)"),
        ({"learning_rate": np.array([])}, {}, "non-empty 1-D"),
        ({"learning_rate": np.array(["a"])}, {}, "1-D array of floats"),
        ({"learning_rate": np.array([1], np.uint8)}, {},
         r"floats or signed integers, got shape \(1,\) and dtype uint8"),
        ({"learning_rate": [[1e-3], [1e-3, 2e-3]]}, {},
         r"grid\['learning_rate'\] .*got a ragged sequence"),
        ({"learning_rate": LRS}, {"steps": 0},
         "steps must be a positive integer, got 0"),
        ({"learning_rate": LRS}, {"chunk_steps": 0},
         "chunk_steps must be a positive integer"),
        ({"learning_rate": LRS}, {"block_size": 0},
         "block_size must be a positive integer, got 0"),
        ({"learning_rate": LRS}, {"block_size": 2.0},
         "block_size must be a positive integer"),
        ({"learning_rate": LRS}, {"fixed": {"learning_rate": 0.1}},
         "fixed must not repeat a swept name, got learning_rate"),
        ({"learning_rate": LRS}, {"fixed": {"decay": 0.9}},
         "fixed name 'decay' is not a hyperparameter of sgd"),
        ({"learning_rate": LRS}, {"fixed": {"momentum": [0.9]}},
         r"fixed\['momentum'\] must be hashable"),
        ({}, {}, "sgd requires learning_rate; give it in grid or in fixed"),
        ("learning_rate", {}, "grid must be a dict"),
    ],
)
def test_bad_sweep_arguments(grid, kwargs, match):
  kwargs = {"steps": 3, **kwargs}
  with pytest.raises(ValueError, match=match):
    sweep(rosenbrock, optax.sgd, grid, X0, **kwargs)


def test_swept_values_meet_the_optimizers_own_checks_before_compiling():
  # Swept values reach the factory as tracers, which it cannot check; sweep
  # builds it on the host first, so a bad value is refused like a fixed one.
  with pytest.raises(ValueError, match=r"grid\['decay'\] holds 1\.5, which "
                     r"momentum refuses: decay must be in \[0, 1\); got 1\.5\."):
    sweep(rosenbrock, optim.momentum,
          {"learning_rate": [1e-3], "decay": [0.5, 1.5]}, X0, steps=3)
  with pytest.raises(ValueError, match=r"momentum refused the first grid point "
                     r".*learning_rate must be > 0 and finite"):
    sweep(rosenbrock, optim.momentum, {"learning_rate": [np.inf]}, X0, steps=3)
  with pytest.raises(ValueError, match=r"make_optimizer\(\.\.\.\) \(<lambda>\) "
                     r"must be an optax.GradientTransformation"):
    sweep(rosenbrock, lambda learning_rate: 3, {"learning_rate": LRS}, X0,
          steps=3)


def test_unswept_defaults_stay_python_values():
  # optax.adam's b1, b2, eps and eps_root are not swept: they must enter the
  # cell as the Python floats a direct call uses (traced, they were float32
  # copies, 3e-6 away from minimize after 3 steps), and a factory's Python
  # checks on them must work (optax.lbfgs: `if memory_size < 1`).
  lrs = np.array([1e-3, 1e-2], np.float32)
  result = sweep(rosenbrock, optax.adam, {"learning_rate": lrs}, X0, steps=3)
  for i, lr in enumerate(lrs):
    trace = minimize(rosenbrock, optax.adam(lr), jnp.asarray(X0[1]), steps=3)
    np.testing.assert_allclose(result.values[i, 1], trace.values, rtol=1e-7)
  lbfgs = sweep(rosenbrock, optax.lbfgs, {"learning_rate": [0.5, 1.0]}, X0,
                steps=5)
  assert np.all(np.isfinite(lbfgs.values[..., -1]))


def test_x0_without_seed_axis():
  with pytest.raises(ValueError, match="x0 must have a leading seed axis"):
    sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, X0[0], steps=3)
  with pytest.raises(ValueError, match="x0 must have a leading seed axis"):
    sweep(rosenbrock, optax.sgd, {"learning_rate": LRS}, np.float32(1.0),
          steps=3)
  with pytest.raises(ValueError, match="leading seed axis shared by every"):
    sweep(lambda p: p["a"] @ p["b"], optax.sgd, {"learning_rate": LRS},
          {"a": np.ones((2, 3)), "b": np.ones((3, 3))}, steps=3)


# --- 8 simulated devices and 2 processes give the one-device result ---------


def _reference(tmp_path):
  """The worker's problem on one CPU device: here if that is this process.

  The claim is that 8 simulated CPU devices and 2 CPU processes give one CPU
  device's bits, so on a GPU or TPU machine the reference runs in a
  one-device CPU subprocess too.
  """
  out = tmp_path / "one.npz"
  if jax.default_backend() == "cpu" and jax.device_count() == 1:
    _sweep_worker.run_and_save(str(out))
  else:
    _run_on_cpu_devices(1, out)
  return np.load(out)


def _env():
  """This process's environment on the CPU, its device count flag dropped
  (the worker sets its own); the rest of XLA_FLAGS (the suite's optimization
  level, tests/conftest.py) is kept, so that both compile alike."""
  env = dict(os.environ)
  flags = [flag for flag in env.get("XLA_FLAGS", "").split()
           if not flag.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags)
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _run_on_cpu_devices(n, out):
  """The worker's sweep on n simulated CPU devices, saved to out."""
  subprocess.run(
      [sys.executable, str(WORKER), "devices", str(n), str(out)],
      env=_env(), check=True, timeout=120, capture_output=True,
  )


def _assert_same(got, want):
  """Blocks and cells: the same bits (the promise). A plain sweep: the same
  runs in the same places (its bits may change with the runs per device, and
  momentum on Rosenbrock grows one rounding to about 1e-4 in 20 steps)."""
  for name in ("blocked_values", "blocked_w1", "cells_values",
               "cells_final_x"):
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  np.testing.assert_array_equal(got["diverged"], want["diverged"])
  for name in ("values", "grad_norms", "xy", "z", "stoch_values",
               "stoch_evals"):
    np.testing.assert_allclose(got[name], want[name], rtol=1e-3,
                               err_msg=name)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.fma
def test_eight_devices_and_two_processes_equal_one(tmp_path):
  """8 simulated devices in one process, and 2 processes (gloo), started
  together: each gives the one-device bits, the blocked sweep's included."""
  port = _free_port()
  outs = [tmp_path / "eight.npz", tmp_path / "process0.npz",
          tmp_path / "process1.npz"]
  commands = [[sys.executable, str(WORKER), "devices", "8", str(outs[0])]]
  commands += [[sys.executable, str(WORKER), "process", str(i), str(port),
                str(outs[1 + i])] for i in range(2)]
  procs = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT) for cmd in commands]
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=180)[0].decode(errors="replace"))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  reference = _reference(tmp_path)
  eight, *processes = [np.load(out) for out in outs]
  assert int(eight["device_count"]) == 8
  assert int(eight["num_shards"]) == 8  # the result lives on all 8 devices
  # 8 configs x 1 seed divide evenly: that result is sharded, not replicated.
  assert list(eight["even_spec"]) == ["runs"]
  _assert_same(eight, reference)
  np.testing.assert_allclose(eight["even_values"], reference["even_values"],
                             rtol=1e-3)
  for got in processes:
    assert int(got["process_count"]) == 2 and int(got["device_count"]) == 2
    _assert_same(got, reference)


@pytest.mark.fma
def test_a_blocked_run_has_the_same_bits_whatever_the_grid_size():
  """block_size: a run is computed in a block of B runs, however many there
  are. Without blocks, this MLP's run alone and among 36 differ in the last
  bits (XLA:CPU picks its matmul kernels by the batch; benchmarks/README.md)."""
  loss, params, _ = _models.tiny_mlp()
  f = lambda p: loss(p)
  x0 = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a, -a]), params)
  lrs = np.geomspace(1e-3, 0.3, 12).astype(np.float32)
  many = sweep(f, optax.adam, {"learning_rate": lrs}, x0, steps=60,
               block_size=3)
  alone = sweep(f, optax.adam, {"learning_rate": lrs[5:6]},
                jax.tree.map(lambda a: a[1:2], x0), steps=60, block_size=3)
  assert many.values.shape == (12, 3, 60) and alone.values.shape == (1, 1, 60)
  np.testing.assert_array_equal(alone.values[0, 0], many.values[5, 1])
  np.testing.assert_array_equal(alone.grad_norms[0, 0], many.grad_norms[5, 1])
  for name, leaf in alone.final_params.items():
    np.testing.assert_array_equal(leaf[0, 0], many.final_params[name][5, 1])
  # The same runs as without blocks, to float32 rounding.
  plain = sweep(f, optax.adam, {"learning_rate": lrs[:2]},
                x0, steps=60)
  np.testing.assert_allclose(many.values[:2], plain.values, rtol=1e-5)


def test_sizes_beyond_memory_are_refused_before_allocating():
  f = lambda x: jnp.sum(x**2)
  with pytest.raises(ValueError, match=r"grid, x0 and steps must keep the "
                     r"records and states of the runs within .*10,000,000 runs"):
    sweep(f, optax.adam, {"learning_rate": np.logspace(-4, -1, 10**7)},
          np.zeros((1, 2), np.float32), steps=100)


def test_a_negative_learning_rate_is_refused_even_for_an_optax_factory():
  # optax.adam(-1e-3) builds (gradient ascent); the sweep refuses it.
  with pytest.raises(ValueError, match=r"grid\['learning_rate'\] must hold "
                     r"step sizes eta > 0 .*got -0\.001"):
    sweep(lambda x: jnp.sum(x**2), optax.adam,
          {"learning_rate": np.array([-1e-3, 1e-3])},
          np.zeros((1, 2), np.float32), steps=3)
