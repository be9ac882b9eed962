"""The experiment scripts end to end: real entry points on their quick configs.

Every script runs once on its quick config (``real_data`` too, through
``compare_optimizers.py``): its module is loaded from experiments/ with its
flags on a fresh ``absl.flags.FlagValues``, argv is parsed as ``run_app``
parses it and the script's ``main`` runs in this process (one module-scoped
fixture; a subprocess per run would import jax six more times). Once per
script, a bad flag runs the script as a process (another fixture, the
processes started together): exit status 2, one line, no traceback, nothing
written. Everything else that can be checked in-process (config refusals,
resume, batches, the fits) lives in tests/jobs/ and tests/test_cli.py.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

import wonderland as wl
from wonderland import cli
from wonderland import files
from wonderland import optim
from wonderland import problems
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import job as compare_job
from wonderland.jobs.compare.report import SUMMARY_COLUMNS

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
    "taylor": ("h_max", 0.25),
}


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu")


def _start(cmd, cwd=ROOT):
  return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=cwd, env=_env())


def _finish(proc, timeout=300):
  stdout, stderr = proc.communicate(timeout=timeout)
  return subprocess.CompletedProcess(proc.args, proc.returncode, stdout,
                                     stderr)


@dataclasses.dataclass
class Run:
  """What a script's run left: its argv, exit status, stdout, error."""

  args: list[str]
  returncode: int
  stdout: str
  stderr: str


def _run_main(cmd) -> Run:
  """Runs ``[python, script, *flags]`` in-process, as ``cli.run_app`` would.

  The script is loaded as a fresh module (its ``cli.define_flags`` defines
  --config, --workdir and --platform on a fresh ``FlagValues`` standing in
  for ``absl.flags.FLAGS``, with ``sys.argv`` the command's), the flags are
  parsed by run_app's parser, and the script's ``main`` runs with stdout
  captured. An exception becomes exit status 1 with its traceback as stderr.
  """
  argv = cmd[1:]
  stdout = io.StringIO()
  try:
    with pytest.MonkeyPatch.context() as patch:
      flag_values = flags.FlagValues()
      patch.setattr(flags, "FLAGS", flag_values)
      patch.setattr(sys, "argv", argv)
      spec = importlib.util.spec_from_file_location(
          f"_script_{Path(argv[0]).stem}", argv[0])
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      rest = cli._parse_flags(argv, flag_values)  # pylint: disable=protected-access
      with contextlib.redirect_stdout(stdout):
        module.main(rest)
  except BaseException:  # pylint: disable=broad-except
    return Run(cmd, 1, stdout.getvalue(), traceback.format_exc())
  return Run(cmd, 0, stdout.getvalue(), "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Every script's main on its quick config; name -> (result, workdir)."""
  base = tmp_path_factory.mktemp("runs")
  jobs = {
      "compare_optimizers": _cmd("compare_optimizers"),
      "real_data": _cmd("compare_optimizers",
                        config=f"{ROOT}/configs/real_data.py:quick"),
      "convergence_rates": _cmd("convergence_rates"),
      "jacobians": _cmd("jacobians"),
      "landscape": _cmd("landscape"),
      "taylor": _cmd("taylor"),
  }
  results = {}
  for name, cmd in jobs.items():
    workdir = base / name
    key, value = OVERRIDES[name]
    results[name] = (_run_main([*cmd, f"--config.{key}={value!r}",
                                f"--workdir={workdir}"]), workdir)
  return results


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
  assert list(rows[0]) == list(SUMMARY_COLUMNS)
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
    env = saved.pop("environment", None)
    if name in ("compare_optimizers", "real_data"):
      # Provenance: the versions and device the cells were computed with.
      assert env["versions"]["jax"], name
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


# What each run writes besides config.json (and, for some, figures).
OUTPUTS = {
    "compare_optimizers": ("summary.csv", "results.jsonl", "report.md"),
    "real_data": ("summary.csv", "results.jsonl", "report.md"),
    "convergence_rates": ("rates.csv", "rates.png"),
    "jacobians": ("jacobians.csv", "report.md"),
    "landscape": ("landscape.csv", "points.csv", "report.md"),
    "taylor": ("taylor.csv",),
}


def test_no_temporary_file_is_left(runs):
  for name in runs:
    _, workdir = _ok(runs, name)
    files_ = [p for p in workdir.rglob("*") if p.is_file()]
    # The run wrote its outputs (config.json last), and nothing else.
    for output in ("config.json", *OUTPUTS[name]):
      assert (workdir / output).is_file(), (name, output)
    assert not [p for p in files_ if p.name.startswith(".")], name


def test_real_data_config_runs_full_batch(runs):
  _, workdir = _ok(runs, "real_data")
  rows = _csv(workdir / "summary.csv")
  assert {(r["optimizer"], r["problem"]) for r in rows} == {
      ("gd", "logistic_breast_cancer")}
  # f* is known (Newton in float64): no run is below it beyond rounding.
  problem = problems.get("logistic_breast_cancer")
  for row in rows:
    assert float(row["median_final_value"]) >= problem.fmin - 1e-4
  # Full batch: every recorded f(x_t) is the loss on the whole data set, the
  # deterministic Problem.fn, as a single minimize run of gd reproduces.
  cell = cells_lib.load_cell(
      workdir / "cells" / "gd__logistic_breast_cancer.npz")
  assert cell.values.shape == (2, 2, 20)
  x0 = compare_job.initial_points(problem, 0, 2)
  # Each eta and each seed once (a run per eta compiles a program).
  for i, s in ((0, 0), (1, 1)):
    trace = wl.minimize(problem.fn, optim.gd(float(cell.learning_rates[i])),
                        jnp.asarray(x0[s]), steps=20, record=("value",))
    np.testing.assert_allclose(cell.values[i, s], trace.values, rtol=1e-4,
                               atol=1e-6)
  # Not 2-D: loss curves and the two summary figures, no contours.
  images = _images(workdir / "report.md")
  assert sorted(images) == [
      "figures/learning_rates.png", "figures/loss_logistic_breast_cancer.png",
      "figures/performance_profile.png"]
  for image in images:
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- convergence_rates -------------------------------------------------------


def test_rates_csv_agrees_with_theory(runs):
  _, workdir = _ok(runs, "convergence_rates")
  rows = _csv(workdir / "rates.csv")
  assert list(rows[0]) == ["method", "kappa", "measured", "theory"]
  assert {(r["method"], float(r["kappa"])) for r in rows} == {
      (m, 100.0) for m in ("gd", "heavy_ball", "nesterov")}
  for r in rows:
    measured, theory = float(r["measured"]), float(r["theory"])
    assert measured == pytest.approx(theory, rel=0.02)
    # 1 - r, the speed, also within 5%: eta = 1/L instead of 2/(L + mu) for
    # gd would give 1 - r half as large.
    assert (1 - measured) == pytest.approx(1 - theory, rel=0.05)
  assert (workdir / "rates.png").read_bytes()[:4] == b"\x89PNG"


# --- jacobians ---------------------------------------------------------------


def test_jacobians_table_and_heat_maps(runs):
  result, workdir = _ok(runs, "jacobians")
  rows = _csv(workdir / "jacobians.csv")
  # 2 input sizes x 1 output size x (jit, eager) x 3 modes.
  assert len(rows) == 2 * 1 * 2 * 3
  assert {r["mode"] for r in rows} == {"fwd", "rev", "auto"}
  assert all(float(r["seconds"]) > 0 for r in rows)
  images = _images(workdir / "report.md")
  assert images == ["jacobians_jit.png", "jacobians_eager.png"]
  for image in images:
    assert (workdir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "auto chose the faster mode" in result.stdout
  # auto's rule: forward mode when c >= d.
  checked, picked = 0, []
  for line in result.stdout.splitlines():
    parts = line.split()
    if len(parts) == 9 and parts[0] in ("True", "False"):
      d, c, picks = int(parts[1]), int(parts[2]), parts[7]
      assert picks == ("fwd" if c >= d else "rev")
      picked.append(picks)
      checked += 1
  assert checked == 2 * 1 * 2  # every row of the table was read
  assert set(picked) == {"fwd", "rev"}  # both sides of c = d


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




# --- taylor ------------------------------------------------------------------


def test_taylor_reproduces_the_notes_and_writes_the_table(runs):
  result, workdir = _ok(runs, "taylor")
  assert "f(0.51) = -0.5049" in result.stdout
  assert "linearization at 0.5: -0.5050" in result.stdout
  rows = _csv(workdir / "taylor.csv")
  assert len(rows) == 4
  assert b"\r" not in (workdir / "taylor.csv").read_bytes()  # LF like every csv
  # error / h^2 settles to a constant: the error is second order.
  ratios = [float(r["error_over_h2"]) for r in rows]
  assert max(ratios) / min(ratios) < 1.3


# --- bad input: one sentence, exit 2, no traceback, nothing written ------------


# One bad invocation per script, one path of wonderland.cli each: an unknown
# key without --config (refused as the flag is defined), one with --config
# (refused as the flags are parsed), a flag absl refuses, a value the job's
# validate refuses, and an empty --workdir (run from an empty directory).
_SEED = "99999999999999999999999"
REFUSALS = {
    "taylor": (["--config.bogus=3"],
               "--config.bogus is not a key of the config; valid keys are dx, "
               "h_max, num_h, x0."),
    "landscape": (["--config.nope=1"],
                  "--config.nope is not a key of the config; valid keys are "
                  "convexity_pairs"),
    "jacobians": (["--platform=xpu"],
                  "flag --platform=xpu: value should be one of <cpu|gpu|tpu>"),
    "compare_optimizers": ([f"--config.seed={_SEED}"],
                           f"config.seed must be an integer in [0, 2**32) "
                           f"(jax.random keys are uint32), got {_SEED}."),
    "convergence_rates": (["--workdir="],
                          "--workdir must name a directory, got '' (an empty "
                          "workdir would write into the current directory)."),
}


def _snapshot(workdir: Path) -> dict[str, bytes | None]:
  """Every file (its bytes) and directory (None) under workdir."""
  return {str(p.relative_to(workdir)): p.read_bytes() if p.is_file() else None
          for p in sorted(workdir.rglob("*"))}


# The bad flags run in one interpreter that imports what the scripts import
# (jax among them) once, then forks a child per script: each child runs its
# script as ``__main__`` (``runpy``, as ``python script.py`` does) with the
# script's argv, working directory, stdout and stderr, and exits as the
# interpreter would (status from SystemExit; an uncaught exception prints its
# traceback, status 1). A process per script, without five jax imports.
_FORKS = r"""
import json, os, runpy, sys, traceback
import wonderland.cli
from wonderland.jobs import compare, convergence_rates, jacobians, landscape
from wonderland.jobs import taylor
for case in json.loads(sys.argv[1]):
  sys.stdout.flush(); sys.stderr.flush()
  pid = os.fork()
  if pid == 0:
    code = 1
    try:
      os.chdir(case["cwd"])
      for fd, path in ((1, case["stdout"]), (2, case["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
      sys.argv = case["argv"]
      sys.path[0] = os.path.dirname(case["argv"][0])
      runpy.run_path(case["argv"][0], run_name="__main__")
      code = 0
    except SystemExit as e:
      if e.code is None or isinstance(e.code, int):
        code = e.code or 0
      else:
        print(e.code, file=sys.stderr)
    except BaseException:
      traceback.print_exc()
    finally:
      sys.stdout.flush(); sys.stderr.flush()
      os._exit(code)
  _, status = os.waitpid(pid, 0)
  print(os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
  """Every script on one bad flag, a process each; name -> (result, dir, before)."""
  out = tmp_path_factory.mktemp("refused_output")
  cases, dirs = [], {}
  for name, (flags, _) in REFUSALS.items():
    workdir = tmp_path_factory.mktemp(f"refused_{name}")
    if name == "taylor":  # the default config: the key is checked at define
      cmd = [sys.executable, str(ROOT / "experiments" / "taylor.py"), *flags]
    else:
      cmd = _cmd(name, *flags)
    if not any(f.startswith("--workdir") for f in flags):
      (workdir / "config.json").write_text('{"from": "the previous run"}\n')
      (workdir / "summary.csv").write_text("previous,results\n")
      cmd.append(f"--workdir={workdir}")
    dirs[name] = (workdir, _snapshot(workdir))
    cases.append({"argv": cmd[1:], "cwd": str(workdir),
                  "stdout": str(out / f"{name}.out"),
                  "stderr": str(out / f"{name}.err")})
  driver = subprocess.run([sys.executable, "-c", _FORKS, json.dumps(cases)],
                          capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=300, check=False)
  codes = driver.stdout.split()
  assert driver.returncode == 0 and len(codes) == len(cases), driver.stderr
  results = {}
  for (name, (workdir, before)), case, code in zip(dirs.items(), cases, codes):
    result = subprocess.CompletedProcess(
        case["argv"], int(code), Path(case["stdout"]).read_text(),
        Path(case["stderr"]).read_text())
    results[name] = (result, workdir, before)
  return results


@pytest.mark.parametrize("name", list(REFUSALS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(refusals, name):
  result, workdir, before = refusals[name]
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr[-3000:]
  assert lines[0].startswith(f"error: {REFUSALS[name][1]}"), lines[0]
  assert result.stdout == ""
  assert _snapshot(workdir) == before


# --- files -------------------------------------------------------------------


def test_atomic_write_keeps_the_old_file_when_killed(tmp_path, monkeypatch):
  path = tmp_path / "summary.csv"
  files.atomic_write(path, "old\n")

  def killed(fd):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "fsync", killed)
  with pytest.raises(KeyboardInterrupt):
    files.atomic_write(path, "new, half written")
  assert path.read_text() == "old\n"
  assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
