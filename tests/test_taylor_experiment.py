"""The taylor job in-process: the fitted order and its bad-input behaviour.

The real entry point on the quick config, and its one-line refusal of a bad
flag, run in test_experiments.py.
"""

from pathlib import Path

import pytest

from wonderland import cli
from wonderland.jobs import taylor

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _snapshot(workdir):
  return {str(p.relative_to(workdir)): p.read_bytes()
          for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_run_returns_the_fitted_order(tmp_path, capsys):
  config, _, _ = cli.parse("taylor", CONFIGS, ["prog"])  # the default config
  result = taylor.run(config, str(tmp_path))
  assert result["order"] == pytest.approx(2.0, abs=0.05)
  assert result["value"] == pytest.approx(-0.5049, abs=5e-5)
  assert result["linearization"] == pytest.approx(-0.5050, abs=5e-5)
  assert "fitted order of the error: " in capsys.readouterr().out
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "config.json", "taylor.csv"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.num_h=1"], "config.num_h must be at least 2 to fit an "
         "order, got 1."),
        (["--config.dx=-0.1"],
         "config.dx must be a finite positive number, got -0.1."),
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
        (["--workdir=/proc/no/such/dir"],
         "--workdir must be a writable directory, got '/proc/no/such/dir'"),
    ],
)
def test_values_that_give_garbage_are_refused(tmp_path, flags, message):
  (tmp_path / "config.json").write_text('{"from": "the previous run"}\n')
  (tmp_path / "taylor.csv").write_text("h,error\n")
  before = _snapshot(tmp_path)
  if not any(f.startswith("--workdir") for f in flags):
    flags = [*flags, f"--workdir={tmp_path}"]
  with pytest.raises(cli.ConfigError) as info:
    config, workdir, _ = cli.parse(
        "taylor", CONFIGS, ["prog", f"--config={CONFIGS}/taylor.py:quick",
                            *flags])
    taylor.run(config, workdir)
  assert str(info.value).startswith(message), str(info.value)
  assert "\n" not in str(info.value)
  assert _snapshot(tmp_path) == before


def test_an_empty_workdir_is_refused_not_the_current_directory(tmp_path,
                                                               monkeypatch):
  monkeypatch.chdir(tmp_path)
  config, workdir, _ = cli.parse("taylor", CONFIGS, ["prog", "--workdir="])
  with pytest.raises(cli.ConfigError, match=r"^--workdir must name a "
                     r"directory, got '' \(an empty workdir would write into "
                     r"the current directory\)\.$"):
    taylor.run(config, workdir)
  assert not list(tmp_path.iterdir())


def test_a_failed_run_keeps_the_previous_config_json(tmp_path, monkeypatch):
  (tmp_path / "config.json").write_text("previous\n")

  def broken(*args, **kwargs):
    raise RuntimeError("the run failed after its checks")

  monkeypatch.setattr(taylor.derivatives, "fitted_order", broken)
  config, _, _ = cli.parse(
      "taylor", CONFIGS, ["prog", f"--config={CONFIGS}/taylor.py:quick"])
  with pytest.raises(RuntimeError, match="after its checks"):
    taylor.run(config, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == "previous\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
