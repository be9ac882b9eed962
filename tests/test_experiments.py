"""The experiments end to end (real entry points, quick configs) and their logic.

The entry-point runs start together in one module-scoped fixture (they are
separate processes, so the two cores overlap their compilation), then each
test reads the files its run wrote.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import batching
from wonderland import experiment
from wonderland import optim
from wonderland import problems
from wonderland import _run as run_lib
from wonderland.jobs import compare_optimizers as co
from wonderland.jobs import convergence_rates as cr

ROOT = Path(__file__).resolve().parents[1]


def _cmd(name, *flags, config=None):
  config = config or f"{ROOT}/configs/{name}.py:quick"
  return [sys.executable, str(ROOT / "experiments" / f"{name}.py"),
          f"--config={config}", *flags]


def _load_config(spec: str):
  """The config that ``--config=spec`` (``path[:variant]``) selects."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path, _, variant = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_cfg", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant)


# One override per run of the fixture, that must come back resolved in
# config.json (values the tests below do not depend on).
OVERRIDES = {
    "compare_optimizers": ("target_gap", 0.002),
    "real_data": ("target_gap", 0.02),
    "convergence_rates": ("tolerance", 0.03),
    "jacobians": ("repeats", 2),
    "landscape": ("convexity_pairs", 100),
}


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu")


def _run(cmd, timeout=120):
  return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                        env=_env(), timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Every experiment on its quick config, run concurrently; name -> (result, workdir)."""
  base = tmp_path_factory.mktemp("runs")
  jobs = {
      "compare_optimizers": _cmd("compare_optimizers"),
      "real_data": _cmd("compare_optimizers",
                        config=f"{ROOT}/configs/real_data.py:quick"),
      "convergence_rates": _cmd("convergence_rates"),
      "jacobians": _cmd("jacobians"),
      "landscape": _cmd("landscape"),
  }
  procs = {}
  for name, cmd in jobs.items():
    workdir = base / name
    key, value = OVERRIDES[name]
    procs[name] = (subprocess.Popen(
        [*cmd, f"--config.{key}={value}", f"--workdir={workdir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env()), workdir)
  out = {}
  for name, (proc, workdir) in procs.items():
    stdout, stderr = proc.communicate(timeout=300)
    out[name] = (subprocess.CompletedProcess(proc.args, proc.returncode,
                                             stdout, stderr), workdir)
  return out


def _ok(runs, name):
  result, workdir = runs[name]
  assert result.returncode == 0, result.stderr[-3000:]
  return result, workdir


def _images(report_md: Path) -> list[str]:
  return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_md.read_text())


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


# --- compare_optimizers ------------------------------------------------------


def test_compare_optimizers_writes_every_output(runs):
  result, workdir = _ok(runs, "compare_optimizers")
  rows = _csv(workdir / "summary.csv")
  assert {(r["optimizer"], r["problem"]) for r in rows} == {
      (o, p) for o in ("gd", "momentum", "adam")
      for p in ("quadratic", "rosenbrock")}
  assert list(rows[0]) == list(co.SUMMARY_COLUMNS)
  # 3 learning rates x 2 seeds per cell, every run a JSON line.
  lines = (workdir / "results.jsonl").read_text().splitlines()
  assert len(lines) == 6 * 3 * 2
  record = json.loads(lines[0])
  assert {"optimizer", "problem", "learning_rate", "seed", "final_value",
          "final_gap", "steps_to_target", "diverged", "best"} <= set(record)
  # The best eta of each cell is one of the grid's and is flagged in the runs.
  grid = np.geomspace(1e-3, 3.0, 3)
  for row in rows:
    lr = float(row["best_learning_rate"])
    assert np.min(abs(grid - lr) / grid) < 1e-5
  config = json.loads((workdir / "config.json").read_text())
  assert config["steps"] == 30 and config["optimizers"] == "gd,momentum,adam"
  assert "problem" in result.stdout and "adam" in result.stdout
  assert len(list((workdir / "cells").glob("*.npz"))) == 6
  # The documented columns, by name (not only the module's own list).
  assert {"best_learning_rate", "median_final_value", "median_final_gap",
          "median_steps_to_target", "time_to_target", "compile_seconds",
          "diverged_fraction"} <= set(rows[0])


def test_summary_follows_the_median_protocol_on_every_run(runs):
  """summary.csv recomputed from results.jsonl: best eta by the median final
  value over seeds (diverged runs as worst, ties to the first), its median,
  the gap to f* and the fraction of diverged runs."""
  _, workdir = _ok(runs, "compare_optimizers")
  records = [json.loads(line) for line in
             (workdir / "results.jsonl").read_text().splitlines()]
  fmin = {"quadratic": 0.0, "rosenbrock": 0.0}
  for row in _csv(workdir / "summary.csv"):
    cell = [r for r in records if (r["optimizer"], r["problem"])
            == (row["optimizer"], row["problem"])]
    lrs = sorted({r["learning_rate"] for r in cell})
    assert len(cell) == 3 * 2 and len(lrs) == 3
    finals = [[math.inf if r["diverged"] or r["final_value"] is None
               else r["final_value"] for r in cell if r["learning_rate"] == lr]
              for lr in lrs]
    medians = [float(np.median(f)) for f in finals]
    best = int(np.argmin(medians))
    assert float(row["best_learning_rate"]) == pytest.approx(lrs[best],
                                                             rel=1e-5)
    assert {r["learning_rate"] for r in cell if r["best"]} == {lrs[best]}
    assert float(row["median_final_value"]) == pytest.approx(medians[best],
                                                             rel=1e-5)
    assert float(row["median_final_gap"]) == pytest.approx(
        medians[best] - fmin[row["problem"]], rel=1e-5, abs=1e-9)
    assert float(row["diverged_fraction"]) == pytest.approx(
        np.mean([r["diverged"] for r in cell]), abs=1e-5)


def test_every_experiment_saves_its_resolved_config(runs):
  for name in runs:
    result, workdir = _ok(runs, name)
    saved = json.loads((workdir / "config.json").read_text())
    # The whole config its --config selects, with the override applied.
    spec = next(a for a in result.args if a.startswith("--config="))
    expected = _load_config(spec.split("=", 1)[1]).to_dict()
    key, value = OVERRIDES[name]
    assert saved[key] == value != expected[key], name
    expected[key] = value
    assert saved == expected, name


def test_compare_optimizers_report_references_existing_files(runs):
  _, workdir = _ok(runs, "compare_optimizers")
  images = _images(workdir / "report.md")
  # loss curves and contours for both problems, the lr figure, the profile.
  assert len(images) == 2 + 2 + 1 + 1
  for image in images:
    assert (workdir / image).is_file(), image
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_temporary_file_is_left(runs):
  for name in runs:
    _, workdir = _ok(runs, name)
    files = [p for p in workdir.rglob("*") if p.is_file()]
    # The run wrote its outputs (config.json last), and nothing else.
    assert (workdir / "config.json").is_file(), name
    assert len(files) >= 3, (name, files)
    assert not [p for p in files if p.name.startswith(".")], name


def test_real_data_config_runs_full_batch(runs):
  _, workdir = _ok(runs, "real_data")
  rows = _csv(workdir / "summary.csv")
  assert {r["problem"] for r in rows} == {"logistic_breast_cancer"}
  # f* is known (Newton in float64): no run is below it beyond rounding.
  problem = problems.get("logistic_breast_cancer")
  for row in rows:
    assert float(row["median_final_value"]) >= problem.fmin - 1e-4
  # Full batch: every recorded f(x_t) is the loss on the whole data set, the
  # deterministic Problem.fn, as a single minimize run of gd reproduces.
  cell = co.load_cell(workdir / "cells" / "gd__logistic_breast_cancer.npz")
  assert cell.values.shape == (2, 2, 20)
  x0 = co.initial_points(problem, 0, 2)
  for i, lr in enumerate(cell.learning_rates):
    for s in range(2):
      trace = run_lib.minimize(problem.fn, optim.gd(float(lr)),
                               jnp.asarray(x0[s]), steps=20)
      np.testing.assert_allclose(cell.values[i, s], trace.values, rtol=1e-4,
                                 atol=1e-6)
  # Not 2-D: loss curves and the two summary figures, no contours.
  images = _images(workdir / "report.md")
  assert sorted(images) == [
      "figures/learning_rates.png", "figures/loss_logistic_breast_cancer.png",
      "figures/performance_profile.png"]
  for image in images:
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _quick_config(**overrides):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "_cfg", ROOT / "configs" / "compare_optimizers.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("quick")
  config.unlock()
  config.update(overrides)
  config.lock()
  return config


def test_resume_reads_finished_cells_and_a_killed_run_loses_only_its_batch(
    tmp_path, monkeypatch):
  config = _quick_config(batching="optimizer", plots=False)
  calls = []
  real = co.run_batch

  def killed_on_second(*args, **kwargs):
    calls.append(len(args[1]))
    if len(calls) == 2:
      raise KeyboardInterrupt  # the run is killed inside the second batch
    return real(*args, **kwargs)

  monkeypatch.setattr(co, "run_batch", killed_on_second)
  with pytest.raises(KeyboardInterrupt):
    co.run(config, str(tmp_path))
  cells = sorted(p.name for p in (tmp_path / "cells").iterdir())
  # The first optimizer's two cells are complete; nothing else, no temp file.
  assert cells == ["gd__quadratic.npz", "gd__rosenbrock.npz"]
  for name in cells:
    assert co.load_cell(tmp_path / "cells" / name) is not None
  # A truncated or corrupt cell file reads as missing: it is computed again.
  broken = tmp_path / "cells" / "broken.npz"
  whole = (tmp_path / "cells" / cells[0]).read_bytes()
  for junk in (whole[: len(whole) // 2], b"PK\x03\x04garbage"):
    broken.write_bytes(junk)
    assert co.load_cell(broken) is None
  broken.unlink()
  assert not (tmp_path / "summary.csv").exists()
  # config.json describes finished outputs only: the killed run wrote none.
  assert not (tmp_path / "config.json").exists()

  calls.clear()
  monkeypatch.setattr(co, "run_batch", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
  rows = co.run(config, str(tmp_path))
  # Only momentum and adam are computed now.
  assert [len(a[1]) for a in calls] == [1, 1]
  assert len(rows) == 6
  assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()

  def must_not_run(*args, **kwargs):
    raise AssertionError("a finished cell was recomputed")

  monkeypatch.setattr(co, "run_batch", must_not_run)
  monkeypatch.setattr(co, "best_paths", must_not_run)
  again = co.run(config, str(tmp_path))
  assert again == rows
  # A changed setting changes the fingerprint: that cell is computed again.
  changed = _quick_config(batching="optimizer", plots=False, steps=31)
  with pytest.raises(AssertionError, match="recomputed"):
    co.run(changed, str(tmp_path))
  # The failed run left the previous run's config.json.
  assert json.loads((tmp_path / "config.json").read_text())["steps"] == 30


def test_batched_cells_equal_single_runs():
  """The switch over problems and optimizers changes nothing in the numbers."""
  probs = [problems.get("quadratic", kappa=100.0, dim=2),
           problems.get("rosenbrock")]
  factories = [optim.momentum, optim.armijo_gd]
  lrs = np.array([1e-3, 3e-2])
  x0 = np.stack([co.initial_points(p, 0, 2) for p in probs])
  batch = co.run_batch([p.fn for p in probs], factories, lrs, x0, steps=25)
  assert batch.values.shape == (2, 2, 2, 2, 25)
  for i, make in enumerate(factories):
    for j, p in enumerate(probs):
      trace = run_lib.minimize(p.fn, make(float(lrs[1])), jnp.asarray(x0[j, 1]),
                               steps=25)
      np.testing.assert_allclose(batch.values[i, 1, j, 1], trace.values,
                                 rtol=1e-4, atol=1e-6)
  paths = co.best_paths([p.fn for p in probs], factories,
                        np.full((2, 2), lrs[1]), x0[:, 1], steps=25)
  trace = run_lib.minimize(probs[1].fn, optim.armijo_gd(float(lrs[1])),
                           jnp.asarray(x0[1, 1]), steps=25, keep_path=True)
  np.testing.assert_allclose(paths[1, 1, 0], x0[1, 1])
  np.testing.assert_allclose(paths[1, 1, 1:], trace.path, rtol=1e-4, atol=1e-6)


def test_switch_optimizer_never_moves_the_problem_index():
  make = batching.switch_optimizer([optim.adam, optax.lion])
  f = batching.stack_problems([lambda x: jnp.sum(x**2), lambda x: jnp.sum(x**4)])
  params = {"x": jnp.ones(2), "k": jnp.asarray(1.0)}
  opt = make(0.1, 1.0)
  state = opt.init(params)
  grads = jax.grad(f)(params)
  updates, _ = opt.update(grads, state, params, value=f(params), grad=grads,
                          value_fn=f)
  # lion's weight decay (1e-3) would shrink k by eta wd k; k must not move.
  assert float(updates["k"]) == 0.0
  # lion on x: -eta (sign(grad) + wd x) with x = 1.
  np.testing.assert_allclose(updates["x"], [-0.1001, -0.1001], rtol=1e-6)
  # index 0 is adam, whose first step is -eta sign(grad) (bias-corrected).
  updates, _ = make(0.1, 0.0).update(grads, state, params, value=f(params),
                                     grad=grads, value_fn=f)
  np.testing.assert_allclose(updates["x"], [-0.1, -0.1], rtol=1e-5)


def test_optax_optimizers_by_name():
  assert co.optimizer_factory("optax.lion") is optax.lion
  with pytest.raises(experiment.ConfigError, match="optax.nothing.*valid names"):
    co.optimizer_factory("optax.nothing")
  with pytest.raises(experiment.ConfigError, match="optax.GradientTransformation"):
    co.optimizer_factory("optax.GradientTransformation")


def test_batches_respect_dimensions_and_modes():
  pending = [(o, p) for o in ("a", "b") for p in ("p2", "q2", "r3")]
  dims = {"p2": 2, "q2": 2, "r3": 3}
  assert co._batches(pending, dims, "all") == [
      (["a", "b"], ["p2", "q2"]), (["a", "b"], ["r3"])]
  assert len(co._batches(pending, dims, "cell")) == 6
  assert co._batches(pending, dims, "optimizer")[0] == (["a"], ["p2", "q2"])
  assert co._batches(pending, dims, "problem")[0] == (["a", "b"], ["p2"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.optimizers=gd,sgdd"],
         "config.optimizers has an unknown name 'sgdd'; valid names are gd, "
         "normalized_gd, momentum"),
        (["--config.problems=rosenbrock,banana"],
         "config.problems has an unknown name 'banana'; valid names are "),
        (["--config.steps=0"], "config.steps must be a positive integer, got 0"),
        (["--config.num_lrs=0"],
         "config.num_lrs must be a positive integer, got 0"),
        (["--config.lr_min=1.0", "--config.lr_max=0.1"],
         "config.lr_min must be at most config.lr_max"),
        (["--config.batching=some"],
         "config.batching must be one of all, optimizer, problem, cell"),
        (["--config.optimizers=optax.nope"], "'optax.nope', which is not an optax"),
        (["--config.problems=booth,saddle"],
         "config.problems has 'saddle', which is unbounded below, so runs have "
         "no gap to f* to compare; choose problems other than monkey_saddle, "
         "saddle, x_sin_2x."),
    ],
)
def test_bad_input_is_one_sentence_without_traceback(tmp_path, flags, message):
  result = _run(_cmd("compare_optimizers", *flags, f"--workdir={tmp_path}"))
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_workdir_is_one_sentence(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = _run(_cmd("compare_optimizers", f"--workdir={blocker}/run"))
  assert result.returncode != 0
  assert f"--workdir must be a writable directory, got '{blocker}/run'" in (
      result.stderr)
  assert "Traceback" not in result.stderr


# --- convergence_rates -------------------------------------------------------


def test_rates_csv_agrees_with_theory(runs):
  _, workdir = _ok(runs, "convergence_rates")
  rows = _csv(workdir / "rates.csv")
  assert list(rows[0]) == ["method", "kappa", "measured", "theory"]
  assert {(r["method"], float(r["kappa"])) for r in rows} == {
      (m, k) for m in ("gd", "heavy_ball", "nesterov") for k in (10.0, 100.0)}
  for r in rows:
    measured, theory = float(r["measured"]), float(r["theory"])
    assert measured == pytest.approx(theory, rel=0.02)
    # 1 - r, the speed, also within 5%: eta = 1/L instead of 2/(L + mu) for
    # gd would give 1 - r half as large.
    assert (1 - measured) == pytest.approx(1 - theory, rel=0.05)
  assert (workdir / "rates.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["gd", "heavy_ball", "nesterov"])
@pytest.mark.parametrize("kappa", [10.0, 1000.0])
def test_closed_form_rates_are_the_spectral_radius(name, kappa):
  """The theory column against the iteration matrices, eigenvalue by eigenvalue."""
  m = cr.method(name, kappa, 1.0)
  eta, lam = m.learning_rate, m.decay
  radius = 0.0
  for h in np.linspace(1.0, kappa, 2001):
    if name == "nesterov":
      # y_t = x_t + lam (x_t - x_{t-1}), x_{t+1} = (1 - eta h) y_t.
      a = np.array([[(1 - eta * h) * (1 + lam), -(1 - eta * h) * lam], [1, 0]])
    else:  # x_{t+1} = x_t - eta h x_t + lam (x_t - x_{t-1})
      a = np.array([[1 + lam - eta * h, -lam], [1, 0]])
    radius = max(radius, max(abs(np.linalg.eigvals(a))))
  # A double root at h = mu (and L) is sensitive to rounding: 1e-6.
  assert radius == pytest.approx(m.theory, rel=1e-6)


def test_fit_rate_recovers_a_double_root():
  t = np.arange(1, 401)
  r = 0.97
  # log(3 + 2t) = log(2t) + O(1/t): the fit is exact up to that term.
  assert cr.fit_rate((3 + 2 * t) * r**t) == pytest.approx(r, rel=1e-4)
  # A plain straight-line fit would be off by log(t)/t: ~2.3e-3 here.
  line = np.exp(np.polyfit(t[200:], np.log((3 + 2 * t) * r**t)[200:], 1)[0])
  assert abs(line - r) > 1e-3
  assert cr.fit_rate(5 * r**t * (1 + 0.01 * np.cos(t))) == pytest.approx(
      r, rel=1e-4)
  with pytest.raises(ValueError, match="fit_from must be in"):
    cr.fit_rate(r**t, fit_from=1.0)
  with pytest.raises(ValueError, match="at least 3 positive"):
    cr.fit_rate(np.zeros(10))


def test_convergence_rates_bad_input():
  result = _run(_cmd("convergence_rates", "--config.kappas=10,0.5",
                     "--workdir=/tmp/unused_rates"))
  assert result.returncode != 0
  assert ("config.kappas must be comma-separated numbers in (1, 1e+15], got "
          "'10,0.5'") in result.stderr
  assert "Traceback" not in result.stderr
  with pytest.raises(ValueError, match="name must be one of gd"):
    cr.method("adam", 10.0, 1.0)


# --- jacobians ---------------------------------------------------------------


def test_jacobians_table_and_heat_maps(runs):
  result, workdir = _ok(runs, "jacobians")
  rows = _csv(workdir / "jacobians.csv")
  # 2 input sizes x 2 output sizes x (jit, eager) x 3 modes.
  assert len(rows) == 2 * 2 * 2 * 3
  assert {r["mode"] for r in rows} == {"fwd", "rev", "auto"}
  assert all(float(r["seconds"]) > 0 for r in rows)
  images = _images(workdir / "report.md")
  assert images == ["jacobians_jit.png", "jacobians_eager.png"]
  for image in images:
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "auto chose the faster mode" in result.stdout
  # auto's rule: forward mode when c >= d.
  checked = 0
  for line in result.stdout.splitlines():
    parts = line.split()
    if len(parts) == 9 and parts[0] in ("True", "False"):
      d, c, picks = int(parts[1]), int(parts[2]), parts[7]
      assert picks == ("fwd" if c >= d else "rev")
      checked += 1
  assert checked == 2 * 2 * 2  # every row of the table was read


# --- landscape ---------------------------------------------------------------


def test_landscape_points_convexity_and_momentum(runs):
  _, workdir = _ok(runs, "landscape")
  rows = {r["problem"]: r for r in _csv(workdir / "landscape.csv")}
  assert set(rows) == {"quadratic", "himmelblau", "sin_cos", "x_sin_2x"}
  assert float(rows["quadratic"]["violation_fraction"]) == 0.0
  assert int(rows["quadratic"]["minima"]) == 1
  assert float(rows["himmelblau"]["violation_fraction"]) > 0.0
  assert int(rows["himmelblau"]["minima"]) == 4
  assert int(rows["himmelblau"]["maxima"]) == 1
  assert rows["sin_cos"]["global_found"] == "True"
  ends = {r["method"]: r for r in _csv(workdir / "x_sin_2x.csv")}
  # gd and lambda = 0.3 stop in the local minimum at 2.4566; 0.9 passes it.
  assert float(ends["gd"]["end"]) == pytest.approx(2.4566, abs=1e-3)
  assert float(ends["momentum lambda=0.3"]["end"]) == pytest.approx(2.4566, abs=1e-3)
  assert abs(float(ends["momentum lambda=0.9"]["end"])) < 1e-3
  assert {r["kind"] for r in ends.values()} == {"minimum"}
  sin_cos = _csv(workdir / "sin_cos.csv")
  assert len(sin_cos) == 2 * 2  # 2 starts x (gd, momentum)
  for r in sin_cos:
    assert float(r["grad_norm"]) < 1e-4
  images = _images(workdir / "report.md")
  assert images == ["sin_cos.png", "x_sin_2x.png"]
  for image in images:
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_landscape_rejects_large_problems():
  result = _run(_cmd("landscape", "--config.problems=quadratic,mlp_digits",
                     "--workdir=/tmp/unused_landscape"))
  assert result.returncode != 0
  assert ("config.problems has 'mlp_digits' of dimension 2410; the search "
          "forms d x d Hessians, so it takes dimension <= 10.") in result.stderr
  assert "Traceback" not in result.stderr


def test_atomic_write_keeps_the_old_file_when_killed(tmp_path, monkeypatch):
  path = tmp_path / "summary.csv"
  experiment.atomic_write(path, "old\n")

  def killed(fd):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "fsync", killed)
  with pytest.raises(KeyboardInterrupt):
    experiment.atomic_write(path, "new, half written")
  assert path.read_text() == "old\n"
  assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


# --- bad input: one sentence, exit 2, nothing in the workdir touched ----------


def _snapshot(workdir: Path) -> dict[str, bytes | None]:
  """Every file (its bytes) and directory (None) under workdir."""
  return {str(p.relative_to(workdir)): p.read_bytes() if p.is_file() else None
          for p in sorted(workdir.rglob("*"))}


def _previous_run(workdir: Path) -> dict[str, bytes | None]:
  """Fills workdir with a previous run's files; returns their snapshot."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text('{"from": "the previous run"}\n')
  (workdir / "summary.csv").write_text("previous,results\n")
  return _snapshot(workdir)


def _assert_refused(result, message: str, workdir: Path, before) -> None:
  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr[-3000:]
  assert lines[0].startswith("error: ") and message in lines[0], lines[0]
  assert "Traceback" not in result.stderr
  assert _snapshot(workdir) == before


_SEED = "99999999999999999999999"
_SEED_MESSAGE = (f"config.seed must be an integer in [0, 2**32) (jax.random "
                 f"keys are uint32), got {_SEED}.")
_FIT = "config.max_steps, config.fit_from and config.decrease leave "


@pytest.mark.parametrize(
    "name, flags, message",
    [
        # Not finite, or not a float32 once cast.
        ("compare_optimizers", ["--config.target_gap=inf"],
         "config.target_gap must be a finite positive number, got inf."),
        ("compare_optimizers", ["--config.lr_max=inf"],
         "config.lr_max must be a finite positive number, got inf."),
        ("compare_optimizers", ["--config.lr_max=1e39"],
         "config.lr_max must be a positive number that float32 represents "
         "(from 1.18e-38 to 3.4e+38), got 1e+39."),
        ("compare_optimizers", ["--config.lr_min=1e-300"],
         "config.lr_min must be a positive number that float32 represents"),
        ("compare_optimizers", ["--config.lr_min=nan"],
         "config.lr_min must be a finite positive number, got nan."),
        ("landscape", ["--config.sin_cos_lr=inf"],
         "config.sin_cos_lr must be a finite positive number, got inf."),
        ("landscape", ["--config.x_sin_2x_lr=inf"],
         "config.x_sin_2x_lr must be a finite positive number, got inf."),
        ("landscape", ["--config.x_sin_2x_x0=nan"],
         "config.x_sin_2x_x0 must be a finite number, got nan."),
        ("landscape", ["--config.x_sin_2x_x0=7.0"],
         "config.x_sin_2x_x0 must be in x_sin_2x's box [-6, 6]"),
        # Seeds: uint32.
        ("compare_optimizers", [f"--config.seed={_SEED}"], _SEED_MESSAGE),
        ("compare_optimizers", ["--config.seed=-1"],
         "config.seed must be an integer in [0, 2**32)"),
        ("convergence_rates", [f"--config.seed={_SEED}"], _SEED_MESSAGE),
        ("jacobians", [f"--config.seed={_SEED}"], _SEED_MESSAGE),
        ("landscape", [f"--config.seed={_SEED}"], _SEED_MESSAGE),
        # Too few steps in the fit window, the float32 floor of decrease.
        ("convergence_rates", ["--config.max_steps=2"],
         _FIT + "2 of gd's 2 steps at kappa=10 in the fit window"),
        ("convergence_rates", ["--config.kappas=1.00001"],
         _FIT + "2 of gd's 2 steps at kappa=1.00001"),
        ("convergence_rates", ["--config.fit_from=0.99", "--config.kappas=10"],
         _FIT + "1 of gd's 92 steps at kappa=10"),
        ("convergence_rates", ["--config.decrease=1e-300"],
         "config.decrease must be in [1e-18, 1) (the errors are float32"),
        ("convergence_rates", ["--config.kappas=1e16"],
         "config.kappas must be comma-separated numbers in (1, 1e+15], got "
         "'1e16'."),
        # Duplicates.
        ("compare_optimizers", ["--config.optimizers=gd,gd"],
         "config.optimizers must list each entry once, got 'gd,gd' ('gd' more "
         "than once)."),
        ("convergence_rates", ["--config.kappas=10,10"],
         "config.kappas must list each entry once, got '10,10' (10.0 more "
         "than once)."),
        ("convergence_rates", ["--config.methods=gd,gd"],
         "config.methods must list each entry once, got 'gd,gd'"),
        ("jacobians", ["--config.input_sizes=4,4"],
         "config.input_sizes must list each entry once, got '4,4'"),
        ("jacobians", ["--config.input_sizes=4,5000000"],
         "config.input_sizes must be comma-separated integers in [1, 65536], "
         "got '4,5000000'."),
        ("landscape", ["--config.x_sin_2x_decays=0.3,0.3"],
         "config.x_sin_2x_decays must list each entry once"),
        # An unknown key with a --config other than the default, both forms.
        ("compare_optimizers",
         ["--config=configs/real_data.py", "--config.bogus=1"],
         "--config.bogus is not a key of the config; valid keys are batching, "
         "kappa, lr_max, lr_min, num_lrs, num_seeds, optimizers, plots, "),
        ("compare_optimizers",
         ["--config", "configs/compare_optimizers.py:quick",
          "--config.stepz=1"],
         "--config.stepz is not a key of the config; valid keys are batching"),
        ("compare_optimizers",
         ["--config=configs/compare_optimizers.py:quick", "--noconfig.plotz"],
         "--config.plotz is not a key of the config; valid keys are batching"),
        ("landscape",
         ["--config=configs/landscape.py:quick", "--config.nope=1"],
         "--config.nope is not a key of the config; valid keys are "
         "convexity_pairs"),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(tmp_path, name,
                                                          flags, message):
  workdir = tmp_path / "run"
  before = _previous_run(workdir)
  if not any(f == "--config" or f.startswith("--config=") for f in flags):
    flags = [f"--config={ROOT}/configs/{name}.py:quick", *flags]
  cmd = [sys.executable, str(ROOT / "experiments" / f"{name}.py"), *flags,
         f"--workdir={workdir}"]
  _assert_refused(_run(cmd), message, workdir, before)


@pytest.mark.parametrize("blocker", ["cells", "figures"])
def test_a_file_where_a_subdirectory_goes_is_one_sentence(tmp_path, blocker):
  workdir = tmp_path / "run"
  _previous_run(workdir)
  (workdir / blocker).write_text("not a directory\n")
  before = _snapshot(workdir)
  result = _run(_cmd("compare_optimizers", f"--workdir={workdir}"))
  _assert_refused(
      result, f"--workdir must be a directory in which {blocker}/ can be "
      f"made, got '{workdir}' (a file of that name is in the way: "
      f"'{workdir / blocker}').", workdir, before)


def test_an_empty_workdir_is_refused(tmp_path):
  result = subprocess.run(_cmd("convergence_rates", "--workdir="),
                          capture_output=True, text=True, cwd=tmp_path,
                          env=_env(), timeout=120)
  _assert_refused(result, "--workdir must name a directory, got ''", tmp_path,
                  {})


def test_config_checks_refuse_inf_nan_huge_and_repeated_values(tmp_path):
  for value in (math.inf, math.nan, -1.0, 0, True, "1"):
    with pytest.raises(experiment.ConfigError, match="config.k must be a"):
      experiment.require_positive("k", value)
  # An int too large for a float64 is not taken either.
  with pytest.raises(experiment.ConfigError, match="a positive integer"):
    experiment.require_positive("k", 10**400, integer=True)
  experiment.require_positive("k", 10**300, integer=True)
  with pytest.raises(experiment.ConfigError, match="float32 represents"):
    experiment.require_positive("k", 10**300, float32=True)
  experiment.require_positive("k", 1.2e-38, float32=True)
  for value in (math.nan, -math.inf, None):
    with pytest.raises(experiment.ConfigError, match="a finite number"):
      experiment.require_finite("x0", value)
  experiment.require_seed("seed", 2**32 - 1)
  for value in (2**32, -1, 1.0, True):
    with pytest.raises(experiment.ConfigError, match=r"\[0, 2\*\*32\)"):
      experiment.require_seed("seed", value)
  with pytest.raises(experiment.ConfigError, match="'a' more than once"):
    experiment.split_names("names", "a, b,a", ["a", "b"])
  assert experiment._config_arg(["--config", "p.py:quick", "--config.x=1"]) == (
      "p.py:quick")
  assert experiment._config_arg(["--config=p.py", "--workdir=w"]) == "p.py"
  # A failed subdirectory check makes none of them.
  (tmp_path / "figures").write_text("")
  with pytest.raises(experiment.ConfigError, match="figures/ can be made"):
    experiment.prepare_workdir(tmp_path, ("cells", "figures"))
  assert not (tmp_path / "cells").exists()


# --- optax optimizers that must run traced -----------------------------------


def test_optax_lbfgs_runs_end_to_end(tmp_path):
  # Only eta is traced (sweep and best_paths): lbfgs's `if memory_size < 1`
  # sees its Python default.
  config = _quick_config(optimizers="optax.lbfgs", problems="booth", steps=5,
                         num_lrs=2, num_seeds=1, plots=False)
  rows = co.run(config, str(tmp_path))
  assert [(r["optimizer"], r["problem"]) for r in rows] == [
      ("optax.lbfgs", "booth")]
  cell = co.load_cell(tmp_path / "cells" / "optax.lbfgs__booth.npz")
  assert cell.path.shape == (6, 2) and np.isfinite(cell.path).all()


def test_an_optax_factory_that_fails_traced_is_refused(monkeypatch):
  def picky_sgd(learning_rate, momentum=None):
    if learning_rate > 1.0:  # a Python bool of a traced eta
      raise ValueError("learning_rate must be at most 1.")
    return optax.sgd(learning_rate, momentum)

  monkeypatch.setattr(optax, "picky_sgd", picky_sgd, raising=False)
  with pytest.raises(
      experiment.ConfigError,
      match=r"^config.optimizers has 'optax.picky_sgd', which fails "
      r"\(TracerBoolConversionError\) when its learning rate is a traced "
      r"value"):
    co.optimizer_factory("optax.picky_sgd")


# --- convergence_rates: keys of large kappas, fits that cannot be made --------


def _rates_config(**overrides):
  config = _load_config(f"{ROOT}/configs/convergence_rates.py:quick")
  config.unlock()
  config.update(overrides)
  config.lock()
  return config


def test_kappa_keys_keep_the_old_derivation_below_2_32(tmp_path):
  key = jax.random.key(0)
  same = jax.random.key_data
  np.testing.assert_array_equal(same(cr.kappa_key(key, 10.0)),
                                same(jax.random.fold_in(key, 10)))
  big = same(cr.kappa_key(key, 5e9))
  assert not np.array_equal(big, same(cr.kappa_key(key, 6e9)))
  rows = cr.run(_rates_config(kappas="5e9", methods="gd", dim=2,
                              max_steps=20), str(tmp_path))
  assert [(r["method"], r["kappa"], r["steps"]) for r in rows] == [
      ("gd", 5e9, 20)]
  assert (tmp_path / "config.json").is_file()


def test_a_fit_that_fails_at_run_time_is_one_sentence(tmp_path, monkeypatch):
  (tmp_path / "config.json").write_text("previous\n")

  def no_fit(errors, *, fit_from):
    raise ValueError("errors must hold at least 3 positive finite values for "
                     "t >= 0.5 * 4, got 2.")

  monkeypatch.setattr(cr, "fit_rate", no_fit)
  with pytest.raises(
      experiment.ConfigError,
      match=r"^config.max_steps, config.fit_from and config.decrease leave no "
      r"rate to fit for gd at kappa=10 \(errors must hold at least 3 .*got "
      r"2\)\.$"):
    cr.run(_rates_config(methods="gd", kappas="10", dim=2), str(tmp_path))
  assert (tmp_path / "config.json").read_text() == "previous\n"
