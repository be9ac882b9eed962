"""The training job: a real run on a shrunken config, and its config refusals."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil

import numpy as np
import pytest

from wonderland import cli
from wonderland import optim
from wonderland.jobs import train

pytest.importorskip("mnist1d")


def _config(**overrides):
  import configs.train as train_config  # pylint: disable=g-import-not-at-top

  config = train_config.get_config("quick")
  config.unlock()
  config.tasks = "logistic_mnist1d"
  # The compare job's spec: a label and b1 swept with eta (one sweep per
  # value; each sweep costs a compilation).
  config.optimizers = "adam=adam(b1=[0.9,0.5])"
  config.steps = 30
  config.eval_every = 10
  for key, value in overrides.items():
    config[key] = value
  config.lock()
  return config


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("train")
  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout):
    rows = train.run(_config(), str(workdir))
  return workdir, rows, stdout.getvalue()


def test_the_job_writes_its_outputs_and_chooses_on_validation(outputs):
  workdir, rows, _ = outputs
  for name in ("summary.csv", "results.jsonl", "curves.csv", "report.md",
               "report.html", "config.json", "figures/logistic_mnist1d.png",
               "cells/adam__logistic_mnist1d.npz"):
    assert (workdir / name).stat().st_size > 0, name
  assert [(r["task"], r["optimizer"]) for r in rows] == [
      ("logistic_mnist1d", "adam")]
  assert rows[0]["hparams"] in ("b1=0.9", "b1=0.5")
  records = [json.loads(line) for line in
             (workdir / "results.jsonl").read_text().splitlines()]
  assert len(records) == 2 * 2 * 2  # variants x lrs x seeds
  for row in rows:
    mine = [r for r in records if r["optimizer"] == row["optimizer"]]
    configs = {}
    for r in mine:
      configs.setdefault((r["learning_rate"], json.dumps(r["hparams"])),
                         []).append(r)
    def key(k):  # 5 significant digits; lower val loss; smaller eta; order
      acc = np.median([r["val_accuracy"] for r in configs[k]])
      loss = np.median([r["val_loss"] for r in configs[k]])
      return (-float(f"{acc:.5g}"), float(f"{loss:.5g}"), k[0])
    lr, hp = min(configs, key=key)
    assert row["best_learning_rate"] == pytest.approx(lr)
    assert {(r["learning_rate"], json.dumps(r["hparams"])) for r in mine
            if r["best"]} == {(lr, hp)}
    test = [r["test_accuracy"] for r in configs[(lr, hp)]]
    assert row["median_test_accuracy"] == pytest.approx(np.median(test))
    assert 0.0 <= row["median_test_accuracy"] <= 1.0
    assert row["edge"] in ("lr_min", "lr_max")  # a 2-point grid: an end
  assert rows[0]["paper_test_accuracy"] == 0.32
  # AlgoPerf's target: the best median validation accuracy less the margin;
  # the best optimizer reaches it by its last evaluation.
  target = max(r["median_val_accuracy"] for r in rows) - 0.02
  assert all(r["val_target"] == pytest.approx(target) for r in rows)
  best = max(rows, key=lambda r: r["median_val_accuracy"])
  assert best["median_steps_to_target"] in (10, 20, 30)
  assert f"logistic_mnist1d {target:.3f}" in outputs[2]
  with open(workdir / "curves.csv") as f:
    curves = list(csv.DictReader(f))
  assert tuple(curves[0]) == train.CURVE_COLUMNS
  assert {int(c["step"]) for c in curves} == {10, 20, 30}
  assert len(curves) == 2 * 2 * 2 * 3 * len(train.METRICS)
  text = (workdir / "report.md").read_text()
  assert "Edge cells" in text and "adam on logistic_mnist1d (lr_" in text
  assert "| b1=0." in text  # the swept value chosen
  assert "edge cells (1 of 1" in outputs[2]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["environment"]["versions"]["jax"]
  page = (workdir / "report.html").read_text()
  assert page.count('src="data:image/png;base64,') == 1


def test_block_size_reaches_every_sweep(tmp_path, monkeypatch):
  asked = []

  class Stop(Exception):
    pass

  def sweep(*args, **kwargs):
    asked.append(kwargs["block_size"])
    raise Stop

  monkeypatch.setattr(train._sweep, "sweep", sweep)  # pylint: disable=protected-access
  with pytest.raises(Stop):
    train.run(_config(block_size=2), str(tmp_path / "a"))
  with pytest.raises(Stop):
    train.run(_config(block_size=0), str(tmp_path / "b"))
  assert asked == [2, None]  # 0: no blocks


def test_a_rerun_reads_finished_results_back_unless_they_changed(
    outputs, tmp_path, monkeypatch, capsys):
  workdir, rows, _ = outputs
  shutil.copytree(workdir, tmp_path / "w")
  assert sorted(p.name for p in (tmp_path / "w" / "cells").iterdir()) == [
      "adam__logistic_mnist1d.npz"]

  def must_not_run(*args, **kwargs):
    raise AssertionError("a finished result was recomputed")

  monkeypatch.setattr(train._sweep, "sweep", must_not_run)  # pylint: disable=protected-access
  again = train.run(_config(), str(tmp_path / "w"))
  assert again == rows
  assert "(0 computed, 1 read back" in capsys.readouterr().out
  # Another setting, or another factory under the same label: recomputed.
  with pytest.raises(AssertionError, match="recomputed"):
    train.run(_config(eval_every=15), str(tmp_path / "w"))
  monkeypatch.setitem(optim._REGISTRY, "adam", lambda learning_rate, b1=0.9:  # pylint: disable=protected-access
                      optim.momentum(learning_rate))
  with pytest.raises(AssertionError, match="recomputed"):
    train.run(_config(), str(tmp_path / "w"))


def test_choose_ties_at_five_digits_to_lower_loss_then_smaller_eta():
  nan = np.nan
  acc = np.array([[0.5, 0.5], [0.5000001, 0.5000001], [0.4, 0.4]])
  loss = np.array([[1.0, 1.0], [1.0, 1.0], [0.1, 0.1]])
  evals = {"val_accuracy": acc[..., None], "val_loss": loss[..., None]}
  diverged = np.zeros((3, 2), bool)
  assert train.choose(evals, diverged) == 0  # float noise: the smaller eta
  evals["val_loss"] = np.array([[1.0, 1.0], [0.9, 0.9], [0.1, 0.1]])[..., None]
  assert train.choose(evals, diverged) == 1  # equal accuracy: lower loss
  diverged[1] = True
  evals["val_accuracy"][0] = nan
  assert train.choose(evals, diverged) == 2  # failed runs never win


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(tasks="rosenbrock"), "config.tasks"),
        (dict(optimizers="gd,nope"), "nope"),
        (dict(optimizers="gd,mypkg.mod:make_lion"), "no module named 'mypkg'"),
        (dict(figure_formats="pdf"), "must include png"),
        (dict(target_margin=1.5), "target_margin must be a number in"),
        (dict(lr_min=1.0, lr_max=0.1), "lr_min must be <= config.lr_max"),
        (dict(num_lrs=0), "num_lrs"),
        (dict(block_size=-1), r"block_size must be an integer in \[0, 4096\]"),
        (dict(num_seeds=1000), "at most 64"),
        (dict(batch_size=5000), "batch_size must be at most 3500"),
        (dict(steps=10**9), "run-steps"),
    ],
)
def test_bad_configs_are_refused_in_one_sentence(overrides, match, tmp_path):
  with pytest.raises(cli.ConfigError, match=match):
    train.run(_config(**overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()  # refused before anything is written
