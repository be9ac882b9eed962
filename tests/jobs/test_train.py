"""The training job: a real run on a shrunken config, and its config refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from wonderland import cli
from wonderland.jobs import train

pytest.importorskip("mnist1d")


def _config(**overrides):
  import configs.train as train_config  # pylint: disable=g-import-not-at-top

  config = train_config.get_config("quick")
  config.unlock()
  config.tasks = "logistic_mnist1d"
  config.optimizers = "adam"  # one sweep: each costs a compilation
  config.steps = 30
  config.eval_every = 10
  for key, value in overrides.items():
    config[key] = value
  config.lock()
  return config


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("train")
  rows = train.run(_config(), str(workdir))
  return workdir, rows


def test_the_job_writes_its_outputs_and_chooses_on_validation(outputs):
  workdir, rows = outputs
  for name in ("summary.csv", "results.jsonl", "curves.csv", "report.md",
               "config.json", "figures/logistic_mnist1d.png"):
    assert (workdir / name).stat().st_size > 0, name
  assert [(r["task"], r["optimizer"]) for r in rows] == [
      ("logistic_mnist1d", "adam")]
  records = [json.loads(line) for line in
             (workdir / "results.jsonl").read_text().splitlines()]
  assert len(records) == 2 * 2  # lrs x seeds
  for row in rows:
    mine = [r for r in records if r["optimizer"] == row["optimizer"]]
    lrs = sorted({r["learning_rate"] for r in mine})
    val = {lr: np.median([r["val_accuracy"] for r in mine
                          if r["learning_rate"] == lr]) for lr in lrs}
    # eta* has the best median validation accuracy; ties go to the smaller.
    best = max(val.values())
    assert row["best_learning_rate"] == min(lr for lr in lrs if val[lr] == best)
    test = [r["test_accuracy"] for r in mine
            if r["learning_rate"] == row["best_learning_rate"]]
    assert row["median_test_accuracy"] == pytest.approx(np.median(test))
    assert 0.0 <= row["median_test_accuracy"] <= 1.0
    assert row["edge"]  # a 2-point grid: eta* is always at an end
  assert rows[0]["paper_test_accuracy"] == 0.32
  with open(workdir / "curves.csv") as f:
    curves = list(csv.DictReader(f))
  assert tuple(curves[0]) == train.CURVE_COLUMNS
  assert {int(c["step"]) for c in curves} == {10, 20, 30}
  assert len(curves) == 2 * 2 * 3 * len(train.METRICS)
  text = (workdir / "report.md").read_text()
  assert "Edge cells" in text and "logistic_mnist1d/adam" in text


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(tasks="rosenbrock"), "config.tasks"),
        (dict(optimizers="gd,nope"), "nope"),
        (dict(lr_min=1.0, lr_max=0.1), "lr_min must be <= config.lr_max"),
        (dict(num_lrs=0), "num_lrs"),
        (dict(num_seeds=1000), "at most 64"),
        (dict(batch_size=5000), "batch_size must be at most 3500"),
        (dict(steps=10**9), "run-steps"),
    ],
)
def test_bad_configs_are_refused_in_one_sentence(overrides, match, tmp_path):
  with pytest.raises(cli.ConfigError, match=match):
    train.run(_config(**overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()  # refused before anything is written
