"""wonderland.cli: flags, config checks, the workdir and the platform, in-process.

Each refusal is checked on its sentence here; that the sentence is the whole
output of a script (exit status 2, no traceback) is checked once per script
in test_experiments.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from wonderland import cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _refusal(name: str, *flags: str) -> str:
  with pytest.raises(cli.ConfigError) as info:
    cli.parse(name, CONFIGS, ["prog", *flags])
  return str(info.value)


# --- flags ---------------------------------------------------------------------


def test_parse_applies_overrides_to_the_default_or_the_given_config():
  config, workdir, platform = cli.parse(
      "taylor", CONFIGS, ["prog", "--config.num_h=7", "--workdir=w"])
  assert (config.num_h, config.dx, workdir, platform) == (7, 0.01, "w", None)
  config, workdir, platform = cli.parse(
      "compare_optimizers", CONFIGS,
      ["prog", "--config", f"{CONFIGS}/compare_optimizers.py:quick",
       "--config.steps=3", "--platform=cpu"])
  assert (config.steps, config.optimizers) == (3, "gd,momentum,adam")
  assert (workdir, platform) == ("runs/compare_optimizers", "cpu")
  # The config is locked: a typo cannot add a key.
  with pytest.raises(AttributeError):
    config.stepz = 1


@pytest.mark.parametrize(
    "name, flags, message",
    [
        # Without --config: the overrides are applied as the flag is defined.
        ("taylor", ["--config.bogus=3"],
         "--config.bogus is not a key of the config; valid keys are dx, "
         "h_max, num_h, x0."),
        # With --config (both forms), keys of that config, not the default's.
        ("compare_optimizers",
         [f"--config={CONFIGS}/real_data.py", "--config.bogus=1"],
         "--config.bogus is not a key of the config; valid keys are batching, "
         "curves, figure_formats, kappa, lr_max, lr_min, num_lrs, num_seeds, "
         "optimizers, plots, problems, quadratic_dim, quadratic_rotated, "
         "seed, steps, target_gap."),
        ("compare_optimizers",
         ["--config", f"{CONFIGS}/compare_optimizers.py:quick",
          "--config.stepz=1"],
         "--config.stepz is not a key of the config; valid keys are batching"),
        ("compare_optimizers",
         [f"--config={CONFIGS}/compare_optimizers.py:quick", "--noconfig.plotz"],
         "--config.plotz is not a key of the config; valid keys are batching"),
        ("landscape", [f"--config={CONFIGS}/landscape.py:quick",
                       "--config.nope=1"],
         "--config.nope is not a key of the config; valid keys are "
         "convexity_pairs"),
        ("taylor", ["--config.num_h=abc"],
         "flag --config.num_h=abc: invalid literal for int()"),
        ("taylor", ["--platform=xpu"],
         "flag --platform=xpu: value should be one of <cpu|gpu|tpu>"),
        ("taylor", [f"--config={CONFIGS}/missing.py"],
         "--config could not be loaded: [Errno 2] No such file or directory"),
        ("taylor", ["positional"],
         "unexpected positional arguments ['positional']; pass flags only."),
    ],
)
def test_a_bad_flag_is_one_sentence(name, flags, message):
  sentence = _refusal(name, *flags)
  assert sentence.startswith(message), sentence
  assert "\n" not in sentence


def test_config_arg_reads_both_forms():
  assert cli._config_arg(["--config", "p.py:quick", "--config.x=1"]) == (
      "p.py:quick")
  assert cli._config_arg(["--config=p.py", "--workdir=w"]) == "p.py"
  assert cli._config_arg(["--workdir=w"]) is None


# --- config checks -------------------------------------------------------------


def test_config_checks_refuse_inf_nan_huge_and_repeated_values():
  for value in (math.inf, math.nan, -1.0, 0, True, "1"):
    with pytest.raises(cli.ConfigError, match="config.k must be a"):
      cli.require_positive("k", value)
  # An int too large for a float64 is not taken either.
  with pytest.raises(cli.ConfigError, match="a positive integer"):
    cli.require_positive("k", 10**400, integer=True)
  cli.require_positive("k", 10**300, integer=True)
  with pytest.raises(cli.ConfigError, match="float32 represents"):
    cli.require_positive("k", 10**300, float32=True)
  cli.require_positive("k", 1.2e-38, float32=True)
  for value in (math.nan, -math.inf, None):
    with pytest.raises(cli.ConfigError, match="a finite number"):
      cli.require_finite("x0", value)
  cli.require_seed("seed", 2**32 - 1)
  for value in (2**32, -1, 1.0, True):
    with pytest.raises(cli.ConfigError, match=r"\[0, 2\*\*32\)"):
      cli.require_seed("seed", value)
  with pytest.raises(cli.ConfigError, match="'a' more than once"):
    cli.split_names("names", "a, b,a", ["a", "b"])
  with pytest.raises(cli.ConfigError, match="unknown name 'c'; valid names"):
    cli.split_names("names", "a,c", ["a", "b"])
  with pytest.raises(cli.ConfigError, match="at least one of a, b"):
    cli.split_names("names", " , ", ["a", "b"])
  assert cli.split_names("names", "a,optax.lion", ["a", "optax.*"]) == [
      "a", "optax.lion"]


def test_split_numbers_checks_the_interval_its_ends_and_repeats():
  assert cli.split_numbers("k", "10, 100", 1, 1e15,
                           closed=(False, True)) == [10.0, 100.0]
  assert cli.split_numbers("d", "4,64", 1, 2**16, integer=True) == [4, 64]
  for value in ("1", "10,inf", "nan", "", "a"):
    with pytest.raises(cli.ConfigError) as info:
      cli.split_numbers("k", value, 1, 1e15, closed=(False, True))
    assert str(info.value) == (
        f"config.k must be comma-separated numbers in (1, 1e+15], got "
        f"{value!r}.")
  with pytest.raises(cli.ConfigError, match=r"integers in \[1, 65536\]"):
    cli.split_numbers("d", "4.5", 1, 2**16, integer=True)
  with pytest.raises(cli.ConfigError, match=r"in \[0, 1\), got '0.3,1'"):
    cli.split_numbers("decays", "0.3,1", 0, 1, closed=(True, False))
  assert cli.split_numbers("decays", "0", 0, 1, closed=(True, False)) == [0.0]
  with pytest.raises(cli.ConfigError, match=r"\(10.0 more than once\)"):
    cli.split_numbers("k", "10,10", 1, 1e15)


# --- the workdir -----------------------------------------------------------------


def test_prepare_workdir_refuses_what_it_cannot_use(tmp_path):
  with pytest.raises(cli.ConfigError) as info:
    cli.prepare_workdir("")
  assert str(info.value) == (
      "--workdir must name a directory, got '' (an empty workdir would write "
      "into the current directory).")
  with pytest.raises(cli.ConfigError,
                     match="--workdir must be a writable directory, got "
                     "'/proc/no/such/dir'"):
    cli.prepare_workdir("/proc/no/such/dir")
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(cli.ConfigError,
                     match=f"writable directory, got '{blocker}/run'"):
    cli.prepare_workdir(blocker / "run")
  # A failed subdirectory check makes none of them.
  (tmp_path / "figures").write_text("")
  with pytest.raises(cli.ConfigError) as info:
    cli.prepare_workdir(tmp_path, ("cells", "figures"))
  assert str(info.value) == (
      f"--workdir must be a directory in which figures/ can be made, got "
      f"'{tmp_path}' (a file of that name is in the way: "
      f"'{tmp_path / 'figures'}').")
  assert not (tmp_path / "cells").exists()
  assert cli.prepare_workdir(tmp_path / "new", ("cells",)) == tmp_path / "new"
  assert (tmp_path / "new" / "cells").is_dir()
  assert not list((tmp_path / "new").glob(".probe.*"))


# --- the platform ----------------------------------------------------------------


def test_gpu_platform_leaves_the_plugin_to_jax(monkeypatch):
  # jax_platforms="gpu" expands to cuda, rocm, ... and fails unless every one
  # of them starts (seen on an H100), so "gpu" must not be passed through.
  updates = []
  monkeypatch.setattr(jax.config, "update",
                      lambda name, value: updates.append((name, value)))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  cli.set_platform("gpu")
  assert updates == [("jax_platforms", "")]
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  with pytest.raises(cli.ConfigError, match="got 'gpu', which JAX"):
    cli.set_platform("gpu")
  with pytest.raises(cli.ConfigError, match="got 'tpu', which JAX"):
    cli.set_platform("tpu")
  assert updates[-1] == ("jax_platforms", "tpu")
  with pytest.raises(cli.ConfigError, match="--platform must be one of cpu"):
    cli.set_platform("xpu")
  cli.set_platform(None)  # JAX's choice: nothing set
  assert len(updates) == 3


def test_a_platform_this_machine_lacks_is_one_sentence():
  try:
    jax.devices("gpu")
    pytest.skip("this machine has a GPU backend")
  except RuntimeError:
    pass
  before = jax.config.jax_platforms
  try:
    with pytest.raises(cli.ConfigError) as info:
      cli.set_platform("gpu")
  finally:
    jax.config.update("jax_platforms", before)
  assert str(info.value).startswith(
      "--platform must name a backend this machine has; got 'gpu'")


# --- config files that cannot make a config ------------------------------------


@pytest.mark.parametrize(
    "source, message",
    [
        ("def get_config(:\n  pass\n",
         "--config must be a Python file that parses, got '{path}' (invalid "
         "syntax at line 1)."),
        ("raise RuntimeError('boom')\n",
         "--config must be a Python file that runs, got '{path}' "
         "(RuntimeError: boom)."),
        ("CONFIG = 1\n",
         "--config must be a file that defines get_config(), got '{path}', "
         "which does not."),
        ("def get_config():\n  return 3\n",
         "--config must be a file whose get_config() returns an "
         "ml_collections.ConfigDict, got '{path}', which returns int 3."),
        ("def get_config():\n  return {'steps': 3}\n",
         "--config must be a file whose get_config() returns an "
         "ml_collections.ConfigDict, got '{path}', which returns dict "
         "{{'steps': 3}}."),
        ("def get_config():\n  raise ValueError('no variant.')\n",
         "--config must name a config that get_config() makes, got '{path}' "
         "(ValueError: no variant)."),
    ],
)
def test_a_config_file_that_cannot_make_a_config_is_one_sentence(
    tmp_path, source, message):
  path = tmp_path / "broken.py"
  path.write_text(source)
  expected = message.format(path=path)
  # Given with --config (with and without an override), or the default.
  assert _refusal("taylor", f"--config={path}") == expected
  assert _refusal("taylor", "--config", str(path), "--config.dx=0.1") == (
      expected)
  with pytest.raises(cli.ConfigError) as info:
    cli.parse("broken", tmp_path, ["prog", "--config.dx=0.1"])
  assert str(info.value) == expected


def test_a_config_file_with_a_syntax_error_is_the_whole_output(tmp_path):
  # The one process of these tests: what run_app prints, and its status.
  path = tmp_path / "broken.py"
  path.write_text("def get_config(:\n  pass\n")
  result = subprocess.run(
      [sys.executable, str(ROOT / "experiments" / "taylor.py"),
       f"--config={path}", f"--workdir={tmp_path / 'run'}"],
      capture_output=True, text=True, cwd=ROOT, timeout=120,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 2
  assert result.stderr == (
      f"error: --config must be a Python file that parses, got '{path}' "
      "(invalid syntax at line 1).\n")
  assert result.stdout == "" and not (tmp_path / "run").exists()
