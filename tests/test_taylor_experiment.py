"""experiments/taylor.py end to end, and its bad-input behaviour."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wonderland.jobs import taylor

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "taylor.py"


def _run(*flags, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run(
      [sys.executable, str(SCRIPT), *flags],
      capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
  )


def test_entry_point_reproduces_the_notes_and_writes_the_table(tmp_path):
  result = _run(f"--config={ROOT}/configs/taylor.py:quick", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert "f(0.51) = -0.5049" in result.stdout
  assert "linearization at 0.5: -0.5050" in result.stdout
  rows = list(csv.DictReader(open(tmp_path / "taylor.csv")))
  assert len(rows) == 4
  assert b"\r" not in (tmp_path / "taylor.csv").read_bytes()  # LF like every csv
  # error / h^2 settles to a constant: the error is second order.
  ratios = [float(r["error_over_h2"]) for r in rows]
  assert max(ratios) / min(ratios) < 1.3
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["num_h"] == 4


def test_run_returns_the_fitted_order(tmp_path):
  from configs import taylor as taylor_config  # pylint: disable=g-import-not-at-top
  result = taylor.run(taylor_config.get_config(), str(tmp_path))
  assert result["order"] == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.num_h=1"], "config.num_h must be at least 2"),
        (["--config.dx=-0.1"],
         "config.dx must be a finite positive number, got -0.1"),
        (["--config.bogus=3"], "--config.bogus is not a key of the config; valid keys are dx"),
        (["--config.num_h=abc"], "--config.num_h=abc"),
        (["--platform=xpu"], "cpu|gpu|tpu"),
        (["--config=configs/missing.py"], "No such file"),
        (["--workdir=/proc/no/such/dir"], "--workdir must be a writable directory"),
    ],
)
def test_bad_input_is_one_sentence_without_traceback(tmp_path, flags, message):
  if not any(f.startswith("--workdir") for f in flags):
    flags = [*flags, f"--workdir={tmp_path}"]
  result = _run(*flags)
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_a_platform_this_machine_lacks_is_one_sentence(tmp_path):
  import jax  # pylint: disable=g-import-not-at-top
  try:
    jax.devices("gpu")
    pytest.skip("this machine has a GPU backend")
  except RuntimeError:
    pass
  result = _run("--platform=gpu", f"--workdir={tmp_path}")
  assert result.returncode == 2
  assert "--platform must name a backend this machine has; got 'gpu'" in result.stderr
  assert "Traceback" not in result.stderr


def test_gpu_platform_leaves_the_plugin_to_jax(monkeypatch):
  # jax_platforms="gpu" expands to cuda, rocm, ... and fails unless every one
  # of them starts (seen on an H100), so "gpu" must not be passed through.
  import jax  # pylint: disable=g-import-not-at-top
  from wonderland import experiment  # pylint: disable=g-import-not-at-top

  updates = []
  monkeypatch.setattr(jax.config, "update",
                      lambda name, value: updates.append((name, value)))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  experiment.set_platform("gpu")
  assert updates == [("jax_platforms", "")]
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  with pytest.raises(experiment.ConfigError, match="got 'gpu', which JAX"):
    experiment.set_platform("gpu")
  with pytest.raises(experiment.ConfigError, match="got 'tpu', which JAX"):
    experiment.set_platform("tpu")
  assert updates[-1] == ("jax_platforms", "tpu")


def _snapshot(workdir):
  return {str(p.relative_to(workdir)): p.read_bytes()
          for p in sorted(workdir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.x0=inf"], "config.x0 must be a finite number, got inf."),
        (["--config.x0=nan"], "config.x0 must be a finite number, got nan."),
        (["--config.x0=1e30"],
         "config.x0 and config.dx must keep |x0| + dx at most 1e+18"),
        (["--config.dx=inf"],
         "config.dx must be a finite positive number, got inf."),
        (["--config.h_max=1e30"],
         "config.h_max must be at most 10 (Taylor's order 2 is a limit "
         "h -> 0, and f overflows float32 near h = 100), got 1e+30."),
        (["--config.num_h=60"],
         "config.num_h and config.h_max must keep the smallest step "
         "h_max / 2^(num_h - 1) at least 0.001 (below, float32 rounding of f "
         "swamps the error ~h^2), got num_h=60 and h_max=0.5 (smallest step "
         "8.67e-19)."),
    ],
)
def test_values_that_give_garbage_are_refused(tmp_path, flags, message):
  (tmp_path / "config.json").write_text('{"from": "the previous run"}\n')
  (tmp_path / "taylor.csv").write_text("h,error\n")
  before = _snapshot(tmp_path)
  result = _run(f"--config={ROOT}/configs/taylor.py:quick", *flags,
                f"--workdir={tmp_path}")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), (
      result.stderr)
  assert "Traceback" not in result.stderr
  assert _snapshot(tmp_path) == before


def test_an_empty_workdir_is_refused_not_the_current_directory(tmp_path):
  result = _run(f"--config={ROOT}/configs/taylor.py:quick", "--workdir=",
                cwd=tmp_path)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "error: --workdir must name a directory, got '' (an empty workdir "
      "would write into the current directory)."]
  assert not list(tmp_path.iterdir())


def test_a_failed_run_keeps_the_previous_config_json(tmp_path, monkeypatch):
  from configs import taylor as taylor_config  # pylint: disable=g-import-not-at-top
  (tmp_path / "config.json").write_text("previous\n")

  def broken(*args, **kwargs):
    raise RuntimeError("the run failed after its checks")

  monkeypatch.setattr(taylor.derivatives, "fitted_order", broken)
  with pytest.raises(RuntimeError, match="after its checks"):
    taylor.run(taylor_config.get_config("quick"), str(tmp_path))
  assert (tmp_path / "config.json").read_text() == "previous\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
