"""The edge_of_stability job in-process: issue #17's checks on the quick config.

The quick config (a 40-32-32-10 tanh MLP on 100 MNIST-1D signals, 600 steps)
runs once for the module (about 10 s, most of it compiling the sweep and the
adam scan, and generating MNIST-1D); its runs are checked against the claims
of the config's docstring and against the library's own loop.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import wonderland as wl
from wonderland import cli
from wonderland import optim
from wonderland import plots
from wonderland.jobs import edge_of_stability as eos

pytest.importorskip("mnist1d")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  """The quick config's run, through the script's flag parsing."""
  workdir = tmp_path_factory.mktemp("edge_of_stability")
  config, path, _ = cli.parse(
      "edge_of_stability", CONFIGS,
      ["prog", f"--config={CONFIGS}/edge_of_stability.py:quick",
       f"--workdir={workdir}"])
  return config, workdir, eos.run(config, path)


@pytest.mark.slow
def test_the_run_writes_the_csv_figure_report_and_config(quick):
  config, workdir, result = quick
  assert sorted(p.name for p in workdir.iterdir()) == [
      "config.json", "edge_of_stability.csv", "edge_of_stability.png",
      "report.md"]
  with open(workdir / "edge_of_stability.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == eos.COLUMNS
  n_gd = len(config.gd_edges.split(","))
  assert len(rows) == (n_gd + 2) * config.steps
  assert [r["optimizer"] for r in rows[::config.steps]] == (
      ["gd"] * n_gd + ["momentum", "adam"])
  measured = [r for r in rows if r["sharpness"]]
  assert len(measured) == (n_gd + 2) * config.steps // config.sharpness_every
  assert {int(r["step"]) % config.sharpness_every for r in measured} == {0}
  np.testing.assert_array_equal(
      result["eval_steps"],
      np.arange(1, config.steps // config.sharpness_every + 1)
      * config.sharpness_every)
  report = (workdir / "report.md").read_text()
  assert "every gradient descent run passes the three checks" in report


@pytest.mark.slow
def test_every_step_size_sharpens_then_hovers_at_its_edge(quick):
  """Issue #17's checks: rise >= 20%, median in [0.9, 1.3] x edge, loss down."""
  config, _, result = quick
  assert result["initial_sharpness"] < min(
      float(e) for e in config.gd_edges.split(","))
  for run, check in zip(result["runs"], result["checks"]):
    # Momentum and adam (preconditioned) at their own edges pass them too.
    assert check.crossing_step is not None, run.label
    assert check.rise >= 0.2, (run.label, check)
    assert 0.9 <= check.median_over_threshold <= 1.3, (run.label, check)
    assert check.final_loss < check.loss_at_crossing, (run.label, check)
    assert check.passed


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, -1], ids=["gd", "adam"])
def test_runs_take_the_steps_of_the_library_loop(quick, index):
  """The sweep's gd (momentum with lambda = 0) and the adam scan vs minimize.

  Up to the crossing only: past the edge the iteration amplifies rounding
  differences, so two correct loops part ways.
  """
  config, _, result = quick
  run, check = result["runs"][index], result["checks"][index]
  f, x0 = eos.objective(config.n_examples, config.width, config.seed)
  opt = (optim.gd(run.eta) if run.optimizer == "gd"
         else optim.adam(run.eta, b1=config.adam_b1))
  steps = check.crossing_step
  # Values only: the plain loop, the cheapest program to compile.
  trace = wl.minimize(f, opt, x0, steps=steps, record=("value",))
  np.testing.assert_allclose(run.loss[:steps], np.asarray(trace.values),
                             rtol=1e-4)


def test_edges_are_the_stability_thresholds():
  assert eos.edge("gd", 0.1) == pytest.approx(20.0)
  assert eos.edge("momentum", 0.1, 0.9) == pytest.approx(38.0)
  assert eos.edge("adam", 0.001, 0.9) == pytest.approx(38_000.0)
  with pytest.raises(ValueError, match="optimizer must be"):
    eos.edge("sgd", 0.1)


def test_edge_checks_on_known_curves():
  steps = np.arange(1, 11) * 10
  loss = np.linspace(1.0, 0.1, 100)
  # Sharpening from 4 to 10 (edge 10 at step 40), then hovering at 10.5.
  sharp = np.array([5, 4, 7, 10, 10.5, 10.5, 10.5, 9.5, 10.5, 10.5])
  check = eos.edge_checks(loss, sharp, steps, 10.0)
  assert check.crossing_step == 40
  assert check.rise == pytest.approx(10 / 4 - 1)
  assert check.median_over_threshold == pytest.approx(1.05)
  assert check.loss_at_crossing == loss[39]
  assert check.final_loss == loss[-1]
  assert check.passed
  # A run that starts past its edge shows no sharpening.
  assert not eos.edge_checks(loss, sharp + 6, steps, 10.0).passed
  # One that never reaches it.
  never = eos.edge_checks(loss, sharp / 2, steps, 10.0)
  assert never.crossing_step is None and not never.passed
  # One that overshoots and stays above 1.3 x edge.
  assert not eos.edge_checks(loss, sharp * 1.4, steps, 10.0).passed
  # A loss that rises after the crossing.
  assert not eos.edge_checks(loss[::-1], sharp, steps, 10.0).passed


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.gd_edges=6,6"],
         "config.gd_edges must list each entry once, got '6,6'"),
        (["--config.gd_edges=0,6"],
         "config.gd_edges must be comma-separated numbers in (0, "),
        (["--config.n_examples=4001"],
         "config.n_examples must be at most 4000 (MNIST-1D's training "
         "signals), got 4001."),
        (["--config.momentum_decay=1.0"],
         "config.momentum_decay must be in [0, 1), got 1.0."),
        (["--config.adam_eta=0.0"],
         "config.adam_eta must be a finite positive number, got 0.0."),
        (["--config.steps=605"],
         "config.steps must be a multiple of config.sharpness_every, got "
         "steps=605 and sharpness_every=10."),
        (["--config.sharpness_iters=0"],
         "config.sharpness_iters must be a positive integer, got 0."),
        # 2/eta below the initial sharpness (about 3): no sharpening to see.
        (["--config.gd_edges=2,6"],
         "config.gd_edges puts the edge of gd eta=2/2 at 2, at or below the "
         "initial sharpness "),
        (["--config.momentum_eta=10.0"],
         "config.momentum_eta puts the edge of momentum at 0.38, at or below "
         "the initial sharpness "),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(refused, flags,
                                                          message):
  sentence = refused("edge_of_stability", eos.run, flags)
  assert sentence.startswith(message), sentence


def test_the_figure_refuses_a_panel_without_sharpness(tmp_path):
  with pytest.raises(ValueError, match=r"panels\['s'\] names 'b'"):
    plots.edge_of_stability(
        tmp_path / "f.png", {"a": np.ones(4)}, {"a": np.ones(2)},
        {"a": 1.0}, eval_steps=np.array([2, 4]), panels={"s": ["a", "b"]})
  assert not (tmp_path / "f.png").exists()
