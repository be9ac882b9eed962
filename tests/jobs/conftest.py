"""Helpers of the jobs' tests: quick configs, and refusals checked in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from wonderland import cli

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def snapshot(workdir: Path) -> dict[str, bytes | None]:
  """Every file (its bytes) and directory (None) under workdir."""
  return {str(p.relative_to(workdir)): p.read_bytes() if p.is_file() else None
          for p in sorted(workdir.rglob("*"))}


def previous_run(workdir: Path) -> dict[str, bytes | None]:
  """Fills workdir with a previous run's files; returns their snapshot."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text('{"from": "the previous run"}\n')
  (workdir / "summary.csv").write_text("previous,results\n")
  return snapshot(workdir)


@pytest.fixture
def quick_config():
  """``quick_config(name, key=value, ...)``: configs/<name>.py:quick, overridden."""

  def make(name: str, **overrides):
    config, _, _ = cli.parse(
        name, CONFIGS, ["prog", f"--config={CONFIGS}/{name}.py:quick"])
    config.unlock()
    config.update(overrides)
    config.lock()
    return config

  return make


@pytest.fixture
def refused(tmp_path):
  """``refused(script, run, flags)``: the sentence that refuses the flags.

  The flags (on the script's quick config unless they give --config) are
  parsed as the script parses them and the job's ``run`` is called on a
  workdir that holds a previous run's files: a ``ConfigError`` must come
  before anything in it changes. Returns the sentence.
  """

  def check(script: str, run: Callable, flags, workdir: Path | None = None):
    workdir = workdir or tmp_path / "run"
    before = snapshot(workdir) if workdir.exists() else previous_run(workdir)
    if not any(f == "--config" or f.startswith("--config=") for f in flags):
      flags = [f"--config={CONFIGS}/{script}.py:quick", *flags]
    argv = ["prog", *flags, f"--workdir={workdir}"]
    with pytest.raises(cli.ConfigError) as info:
      config, path, _ = cli.parse(script, CONFIGS, argv)
      run(config, path)
    assert snapshot(workdir) == before
    sentence = str(info.value)
    assert "\n" not in sentence and sentence.endswith("."), sentence
    return sentence

  return check
