"""The compare job in-process: its plan, refusals, batches, resume and optax names.

The real entry point on the quick config runs in test_experiments.py.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import optax
import pytest

from wonderland import batching
from wonderland import cli
from wonderland.jobs import compare
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import config as config_lib
from wonderland.jobs.compare import job

_SEED = "99999999999999999999999"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.optimizers=gd,sgdd"],
         "config.optimizers has an unknown name 'sgdd'; valid names are gd, "
         "normalized_gd, momentum, nesterov, adagrad, rmsprop, adam, "
         "armijo_gd, optax.*."),
        (["--config.optimizers=gd,gd"],
         "config.optimizers must list each entry once, got 'gd,gd' ('gd' more "
         "than once)."),
        (["--config.optimizers=optax.nope"],
         "config.optimizers has 'optax.nope', which is not an optax optimizer "
         "taking learning_rate (such as optax.lion or optax.sgd); valid names "
         "are gd, "),
        (["--config.problems=rosenbrock,banana"],
         "config.problems has an unknown name 'banana'; valid names are "),
        (["--config.problems=booth,saddle"],
         "config.problems has 'saddle', which is unbounded below, so runs have "
         "no gap to f* to compare; choose problems other than monkey_saddle, "
         "saddle, x_sin_2x."),
        (["--config.steps=0"], "config.steps must be a positive integer, got 0."),
        (["--config.num_lrs=0"],
         "config.num_lrs must be a positive integer, got 0."),
        (["--config.lr_min=1.0", "--config.lr_max=0.1"],
         "config.lr_min must be at most config.lr_max, got lr_min=1.0 and "
         "lr_max=0.1."),
        # Not finite, or not a float32 once cast.
        (["--config.target_gap=inf"],
         "config.target_gap must be a finite positive number, got inf."),
        (["--config.lr_max=inf"],
         "config.lr_max must be a finite positive number, got inf."),
        (["--config.lr_max=1e39"],
         "config.lr_max must be a positive number that float32 represents "
         "(from 1.18e-38 to 3.4e+38), got 1e+39."),
        (["--config.lr_min=1e-300"],
         "config.lr_min must be a positive number that float32 represents"),
        (["--config.lr_min=nan"],
         "config.lr_min must be a finite positive number, got nan."),
        # Seeds: uint32.
        ([f"--config.seed={_SEED}"],
         f"config.seed must be an integer in [0, 2**32) (jax.random keys are "
         f"uint32), got {_SEED}."),
        (["--config.seed=-1"], "config.seed must be an integer in [0, 2**32)"),
        (["--config.batching=some"],
         "config.batching must be one of all, optimizer, problem, cell, got "
         "'some'."),
        (["--config.kappa=0.5"],
         "config.kappa and config.quadratic_dim do not make a valid "
         "quadratic: "),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(refused, flags,
                                                          message):
  sentence = refused("compare_optimizers", compare.run, flags)
  assert sentence.startswith(message), sentence


@pytest.mark.parametrize("blocker", ["cells", "figures"])
def test_a_file_where_a_subdirectory_goes_is_one_sentence(refused, tmp_path,
                                                          blocker):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text("previous\n")
  (workdir / blocker).write_text("not a directory\n")
  assert refused("compare_optimizers", compare.run, [], workdir) == (
      f"--workdir must be a directory in which {blocker}/ can be made, got "
      f"'{workdir}' (a file of that name is in the way: "
      f"'{workdir / blocker}').")


def test_validate_makes_a_frozen_plan_of_plain_values(quick_config):
  plan = compare.validate(quick_config("compare_optimizers"))
  assert plan.optimizers == ("gd", "momentum", "adam")
  assert list(plan.problems) == ["quadratic", "rosenbrock"]
  assert plan.problem_kwargs["quadratic"] == {
      "kappa": 100.0, "dim": 2, "rotated": True}
  np.testing.assert_allclose(plan.learning_rates, np.geomspace(1e-3, 3.0, 3))
  assert (plan.steps, plan.num_seeds, plan.seed, plan.batching) == (
      30, 2, 0, "all")
  with pytest.raises(dataclasses.FrozenInstanceError):
    plan.steps = 5
  with pytest.raises(ValueError):
    plan.learning_rates[0] = 1.0
  with pytest.raises(TypeError):
    plan.problems["booth"] = None
  # The rotated quadratic's key comes from the seed: the same plan twice.
  again = compare.validate(quick_config("compare_optimizers"))
  x = np.ones(2, np.float32)
  assert float(plan.problems["quadratic"].fn(x)) == float(
      again.problems["quadratic"].fn(x))


def test_batches_respect_dimensions_and_modes():
  pending = [(o, p) for o in ("a", "b") for p in ("p2", "q2", "r3")]
  dims = {"p2": 2, "q2": 2, "r3": 3}
  assert job._batches(pending, dims, "all") == [
      (["a", "b"], ["p2", "q2"]), (["a", "b"], ["r3"])]
  assert len(job._batches(pending, dims, "cell")) == 6
  assert job._batches(pending, dims, "optimizer") == [
      (["a"], ["p2", "q2"]), (["b"], ["p2", "q2"]), (["a"], ["r3"]),
      (["b"], ["r3"])]
  assert job._batches(pending, dims, "problem")[0] == (["a", "b"], ["p2"])


def test_resume_reads_finished_cells_and_a_killed_run_loses_only_its_batch(
    tmp_path, monkeypatch, quick_config):
  config = quick_config("compare_optimizers", batching="optimizer",
                        plots=False)
  calls = []
  real = batching.run_batch

  def killed_on_second(*args, **kwargs):
    calls.append(len(args[1]))
    if len(calls) == 2:
      raise KeyboardInterrupt  # the run is killed inside the second batch
    return real(*args, **kwargs)

  monkeypatch.setattr(batching, "run_batch", killed_on_second)
  with pytest.raises(KeyboardInterrupt):
    compare.run(config, str(tmp_path))
  cells = sorted(p.name for p in (tmp_path / "cells").iterdir())
  # The first optimizer's two cells are complete; nothing else, no temp file.
  assert cells == ["gd__quadratic.npz", "gd__rosenbrock.npz"]
  for name in cells:
    assert cells_lib.load_cell(tmp_path / "cells" / name) is not None
  # A truncated or corrupt cell file reads as missing: it is computed again.
  broken = tmp_path / "cells" / "broken.npz"
  whole = (tmp_path / "cells" / cells[0]).read_bytes()
  for junk in (whole[: len(whole) // 2], b"PK\x03\x04garbage"):
    broken.write_bytes(junk)
    assert cells_lib.load_cell(broken) is None
  broken.unlink()
  assert not (tmp_path / "summary.csv").exists()
  # config.json describes finished outputs only: the killed run wrote none.
  assert not (tmp_path / "config.json").exists()

  calls.clear()
  monkeypatch.setattr(batching, "run_batch",
                      lambda *a, **k: (calls.append(a), real(*a, **k))[1])
  rows = compare.run(config, str(tmp_path))
  # Only momentum and adam are computed now.
  assert [len(a[1]) for a in calls] == [1, 1]
  assert len(rows) == 6
  assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()

  def must_not_run(*args, **kwargs):
    raise AssertionError("a finished cell was recomputed")

  monkeypatch.setattr(batching, "run_batch", must_not_run)
  monkeypatch.setattr(batching, "best_paths", must_not_run)
  again = compare.run(config, str(tmp_path))
  assert again == rows
  # A changed setting changes the fingerprint: that cell is computed again.
  changed = quick_config("compare_optimizers", batching="optimizer",
                         plots=False, steps=31)
  with pytest.raises(AssertionError, match="recomputed"):
    compare.run(changed, str(tmp_path))
  # The failed run left the previous run's config.json.
  assert json.loads((tmp_path / "config.json").read_text())["steps"] == 30


def test_a_cell_of_another_fingerprint_reads_as_missing(tmp_path):
  kwargs = dict(problem_kwargs={}, learning_rates=[0.1, 1.0], num_seeds=2,
                seed=0, steps=3)
  mark = cells_lib.fingerprint("gd", "booth", **kwargs)
  cell = cells_lib.Cell(
      optimizer="gd", problem="booth", learning_rates=np.array([0.1, 1.0]),
      values=np.zeros((2, 2, 3), np.float32), diverged=np.zeros((2, 2), bool),
      path=np.zeros((0, 2), np.float32), compile_seconds=1.0, run_seconds=2.0,
      program_runs=4, program_cells=1, fingerprint=mark)
  path = cells_lib.cell_path(tmp_path, "gd", "booth")
  path.parent.mkdir()
  cells_lib.save_cell(path, cell)
  back = cells_lib.load_cell(path, mark)
  assert back.fingerprint == mark and back.program_runs == 4
  np.testing.assert_array_equal(back.values, cell.values)
  other = cells_lib.fingerprint("gd", "booth", **{**kwargs, "steps": 4})
  assert other != mark and cells_lib.load_cell(path, other) is None
  assert cells_lib.load_cell(tmp_path / "cells" / "missing.npz") is None


def test_optax_optimizers_by_name():
  assert config_lib.optimizer_factory("optax.lion") is optax.lion
  with pytest.raises(cli.ConfigError, match="optax.nothing.*valid names"):
    config_lib.optimizer_factory("optax.nothing")
  with pytest.raises(cli.ConfigError, match="optax.GradientTransformation"):
    config_lib.optimizer_factory("optax.GradientTransformation")


def test_an_optax_factory_that_fails_traced_is_refused(monkeypatch):
  def picky_sgd(learning_rate, momentum=None):
    if learning_rate > 1.0:  # a Python bool of a traced eta
      raise ValueError("learning_rate must be at most 1.")
    return optax.sgd(learning_rate, momentum)

  monkeypatch.setattr(optax, "picky_sgd", picky_sgd, raising=False)
  with pytest.raises(
      cli.ConfigError,
      match=r"^config.optimizers has 'optax.picky_sgd', which fails "
      r"\(TracerBoolConversionError\) when its learning rate is a traced "
      r"value"):
    config_lib.optimizer_factory("optax.picky_sgd")


def test_optax_lbfgs_runs_end_to_end(tmp_path, quick_config):
  # Only eta is traced (sweep and best_paths): lbfgs's `if memory_size < 1`
  # sees its Python default.
  config = quick_config("compare_optimizers", optimizers="optax.lbfgs",
                        problems="booth", steps=5, num_lrs=2, num_seeds=1,
                        plots=False)
  rows = compare.run(config, str(tmp_path))
  assert [(r["optimizer"], r["problem"]) for r in rows] == [
      ("optax.lbfgs", "booth")]
  cell = cells_lib.load_cell(tmp_path / "cells" / "optax.lbfgs__booth.npz")
  assert cell.path.shape == (6, 2) and np.isfinite(cell.path).all()
