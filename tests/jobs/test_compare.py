"""The compare job in-process: plan, refusals, batches, resume, fingerprints,
the protocol (left the domain, ties, edges) and a run's outputs.

The real entry point on the quick config runs in test_experiments.py.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html.parser
import json
import re

import numpy as np
import optax
import pytest

import wonderland
from wonderland import batching
from wonderland import optim
from wonderland import problems
from wonderland.jobs import compare
from wonderland.jobs import provenance
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import job
from wonderland.jobs.compare import protocol
from wonderland.jobs.compare import report as compare_report

_SEED = "99999999999999999999999"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.optimizers=gd,sgdd"],
         "config.optimizers has 'sgdd': unknown optimizer 'sgdd'; valid names "
         "are: gd, normalized_gd, momentum, nesterov, adagrad, rmsprop, adam, "
         "armijo_gd, optax.<name>."),
        (["--config.optimizers=gd,gd"],
         "config.optimizers has 'gd' twice; give each optimizer its own label"),
        (["--config.optimizers=optax.nope"],
         "config.optimizers has 'optax.nope': 'optax.nope' is not an optax "
         "optimizer taking learning_rate (such as optax.lion or optax.sgd); "
         "valid names are: gd, "),
        (["--config.optimizers=gd,mypkg.mod:make_lion"],
         "config.optimizers has 'mypkg.mod:make_lion': no module named "
         "'mypkg'"),
        (["--config.optimizers=sgdm=optax.sgd(momentum=0.9"],
         "config.optimizers has 'sgdm=optax.sgd(momentum=0.9', which does not "
         "read [label=]path[(name=value, ...)]"),
        (["--config.figure_formats=pdf"],
         "config.figure_formats must include png (report.md and report.html "
         "show the PNGs), got 'pdf'."),
        (["--config.figure_formats=png,gif"],
         "config.figure_formats has an unknown name 'gif'; valid names are "
         "png, pdf, svg."),
        (["--config.curves=some"],
         "config.curves must be one of best, all, got 'some'."),
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
  assert plan.labels == ("gd", "momentum", "adam")
  assert plan.optimizer("adam").factory is optim.adam
  assert list(plan.problems) == ["quadratic", "rosenbrock"]
  assert plan.problem_kwargs["quadratic"] == {
      "kappa": 100.0, "dim": 2, "rotated": True}
  np.testing.assert_allclose(plan.learning_rates, np.geomspace(1e-3, 3.0, 3))
  assert (plan.steps, plan.num_seeds, plan.seed, plan.batching,
          plan.figure_formats, plan.curves) == (30, 2, 0, "all", ("png",),
                                                "best")
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
  # Two optimizers, one batch (one compiled program) each.
  config = quick_config("compare_optimizers", optimizers="gd,adam",
                        batching="optimizer", plots=False)
  calls = []
  real = batching.run_cells

  def killed_on_second(*args, **kwargs):
    calls.append(len(args[1]))
    if len(calls) == 2:
      raise KeyboardInterrupt  # the run is killed inside the second batch
    return real(*args, **kwargs)

  monkeypatch.setattr(batching, "run_cells", killed_on_second)
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
  monkeypatch.setattr(batching, "run_cells",
                      lambda *a, **k: (calls.append(a), real(*a, **k))[1])
  rows = compare.run(config, str(tmp_path))
  # Only adam is computed now.
  assert [len(a[1]) for a in calls] == [1]
  assert len(rows) == 4
  saved = json.loads((tmp_path / "config.json").read_text())
  env = saved.pop("environment")
  assert saved == config.to_dict()
  assert set(env["versions"]) >= {"jax", "jaxlib", "optax", "wonderland"}
  assert env["versions"]["optax"] == optax.__version__
  assert env["device_count"] >= 1 and env["device_kind"]
  assert env["git"] is None or len(env["git"]["commit"]) == 40

  def must_not_run(*args, **kwargs):
    raise AssertionError("a finished cell was recomputed")

  monkeypatch.setattr(batching, "run_cells", must_not_run)
  monkeypatch.setattr(batching, "best_paths", must_not_run)
  again = compare.run(config, str(tmp_path))
  assert again == rows
  # A changed setting changes the fingerprint: that cell is computed again.
  changed = quick_config("compare_optimizers", optimizers="gd,adam",
                         batching="optimizer", plots=False, steps=31)
  with pytest.raises(AssertionError, match="recomputed"):
    compare.run(changed, str(tmp_path))
  # So does another optimizer under the same name (read back before).
  def other_gd(learning_rate):
    return optim.momentum(learning_rate)

  monkeypatch.setitem(optim._REGISTRY, "gd", other_gd)  # pylint: disable=protected-access
  with pytest.raises(AssertionError, match="recomputed"):
    compare.run(config, str(tmp_path))
  # The failed runs left the previous run's config.json.
  assert json.loads((tmp_path / "config.json").read_text())["steps"] == 30


def _cell(mark, **fields):
  base = dict(
      optimizer="gd", problem="booth", learning_rates=np.array([0.1, 1.0]),
      values=np.zeros((2, 2, 3), np.float32), diverged=np.zeros((2, 2), bool),
      final_x=np.zeros((2, 2, 2), np.float32),
      path=np.zeros((0, 2), np.float32), compile_seconds=1.0, run_seconds=2.0,
      program_runs=4, program_cells=1, variants_json="[{}, {}]",
      fingerprint=mark)
  return cells_lib.Cell(**{**base, **fields})


def test_a_cell_of_another_fingerprint_reads_as_missing(tmp_path):
  kwargs = dict(problem={"name": "booth"}, learning_rates=[0.1, 1.0],
                num_seeds=2, seed=0, steps=3)
  mark = cells_lib.fingerprint(optimizer={"label": "gd"}, **kwargs)
  cell = _cell(mark)
  path = cells_lib.cell_path(tmp_path, "gd", "booth")
  path.parent.mkdir()
  cells_lib.save_cell(path, cell)
  back = cells_lib.load_cell(path, mark)
  assert back.fingerprint == mark and back.program_runs == 4
  assert back.variants() == [{}, {}]
  np.testing.assert_array_equal(back.values, cell.values)
  other = cells_lib.fingerprint(optimizer={"label": "gd"},
                                **{**kwargs, "steps": 4})
  assert other != mark and cells_lib.load_cell(path, other) is None
  assert cells_lib.load_cell(tmp_path / "cells" / "missing.npz") is None
  # A cell of an older layout (no final_x) reads as missing too.
  np.savez(path, **{k: v for k, v in cell._asdict().items()
                    if k != "final_x"})
  assert cells_lib.load_cell(path) is None


def test_labels_make_distinct_file_names(tmp_path):
  names = {cells_lib.cell_path(tmp_path, label, "booth").name for label in (
      "optax.sgd(momentum=0.9)", "optax.sgd(momentum=0.5)", "optax.sgd",
      "sgdm", "mine:lion")}
  assert len(names) == 5
  assert cells_lib.cell_path(tmp_path, "optax.sgd", "booth").name == (
      "optax.sgd__booth.npz")
  assert all("(" not in n and ":" not in n for n in names)


def test_the_fingerprint_covers_what_decides_the_numbers(quick_config,
                                                         monkeypatch):
  def marks(**overrides):
    overrides = {"optimizers": "sgdm=optax.sgd(momentum=0.9),lion=optax.lion",
                 **overrides}
    config = quick_config("compare_optimizers", **overrides)
    return job._fingerprints(compare.validate(config))  # pylint: disable=protected-access

  base = marks()
  assert len(set(base.values())) == len(base) == 4
  key = ("sgdm", "quadratic")
  parts = json.loads(base[key])
  assert parts["optimizer"]["factory"]["qualname"] == "sgd"
  assert parts["optimizer"]["factory"]["source_sha256"]
  assert parts["versions"]["jax"] and parts["library_source"]
  assert parts["problem"]["kwargs"] == {"kappa": 100.0, "dim": 2,
                                        "rotated": True}
  # Every one of these changes every cell it concerns.
  changed = {
      "hyperparameter": marks(optimizers="sgdm=optax.sgd(momentum=0.8),"
                              "lion=optax.lion"),
      "problem": marks(kappa=50.0),
      "seeds": marks(num_seeds=3),
      "seed": marks(seed=1),
      "steps": marks(steps=31),
      "grid": marks(lr_max=2.0),
  }
  for what, other in changed.items():
    assert other[key] != base[key], what
  assert marks(kappa=50.0)[("sgdm", "rosenbrock")] == base[
      ("sgdm", "rosenbrock")]
  # Another factory under the same label (an upgrade or an edit of optax).
  real_lion = optax.lion

  def lion(learning_rate, b1=0.9, b2=0.99, weight_decay=1e-3):
    return real_lion(learning_rate, b1, b2, weight_decay=weight_decay)

  monkeypatch.setattr(optax, "lion", lion)
  assert marks()[("lion", "quadratic")] != base[("lion", "quadratic")]
  monkeypatch.undo()
  assert marks() == base
  # Another version of a library, or of wonderland's own code.
  monkeypatch.setattr(provenance, "versions",
                      lambda: {"jax": "0.0.1", "optax": "0.0.1"})
  assert marks()[key] != base[key]
  monkeypatch.undo()
  monkeypatch.setattr(provenance, "library_source", lambda: "edited")
  assert marks()[key] != base[key]


def test_environment_is_recorded_and_never_fails_without_git(monkeypatch,
                                                             tmp_path):
  env = provenance.environment()
  assert env["versions"]["optax"] == optax.__version__
  # wonderland's own version is the package's, not an editable install's
  # stale metadata.
  assert env["versions"]["wonderland"] == wonderland.__version__
  assert env["device_count"] >= 1
  def no_git(*args, **kwargs):
    raise FileNotFoundError("git")

  monkeypatch.setattr(provenance.subprocess, "run", no_git)
  assert provenance.git_commit() is None
  provenance.save_config({"steps": 3}, tmp_path)
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["steps"] == 3 and saved["environment"]["git"] is None
  # A function without source (a builtin) still has an identity.
  assert provenance.function_identity(len)["source_sha256"] is None


def test_a_run_that_leaves_mccormicks_box_below_fstar_left_the_domain():
  problem = problems.get("mccormick")
  fstar = problem.fmin
  x_star = np.asarray(problem.minimizers[0])
  # Seeds: at x* (rounding puts f 2e-7 below f*), outside the box far below
  # f* (optax.lion's -86), outside the box above f*, diverged.
  final_x = np.array([[x_star, [-40.0, -40.0], [5.0, 5.0], [0.0, 0.0]]])
  last = np.array([[fstar - 2e-7, fstar - 86.3, fstar + 1.0, np.nan]])
  values = np.repeat(last[..., None], 3, axis=-1)
  diverged = np.array([[False, False, False, True]])
  left = protocol.left_domain(values, final_x, problem)
  np.testing.assert_array_equal(left, [[False, True, False, False]])
  np.testing.assert_array_equal(
      protocol.scores(values, diverged, left),
      [[fstar - 2e-7, np.inf, fstar + 1.0, np.inf]])
  # Goldstein-Price: float32 reads 1.8e-5 below f* = 3 inside the box.
  gp = problems.get("goldstein_price")
  assert not protocol.left_domain(np.full((1, 1, 1), 3 - 1.8e-5),
                                  np.zeros((1, 1, 2)) + [0.0, -1.0], gp).any()
  # f* unknown: no such rule.
  unknown = problem._replace(fmin=float("nan"))
  assert not protocol.left_domain(values, final_x, unknown).any()


def test_eta_star_ties_go_to_the_smaller_eta_and_ends_are_edges():
  # Momentum on McCormick: medians 1.2e-7 apart, float32 noise, tie at 5
  # significant digits: the smaller eta is eta*, whatever the other runs.
  final = np.array([[np.inf, np.inf], [-1.9132228, -1.9132229],
                    [-1.9132230, -1.9132231]])
  assert protocol.choose(final) == 1
  grid = np.geomspace(1e-3, 3.0, 8)
  assert protocol.edge(grid[0], grid) == "lr_min"
  assert protocol.edge(float(np.float32(grid[-1])), grid) == "lr_max"
  assert protocol.edge(grid[3], grid) == ""
  assert protocol.edge(1.0, [1.0]) == ""


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


class _Page(html.parser.HTMLParser):
  """Collects a page's tags, image sources and links."""

  def __init__(self):
    super().__init__()
    self.tags, self.images, self.links = [], [], []

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    self.tags.append(tag)
    if tag == "img":
      self.images.append(attrs["src"])
    for key in ("href", "src"):
      if key in attrs and tag != "img":
        self.links.append(attrs[key])


def _rounded_median(scores):
  m = float(np.median(scores))
  return float(f"{m:.5g}") if np.isfinite(m) else m


def test_own_optimizers_on_mccormick_make_a_report_for_a_paper(
    tmp_path, quick_config, capsys):
  # The same factory twice (two labels), a swept hyperparameter, and Lion,
  # whose b1 = 0.99 variant at eta = 1 leaves McCormick's box for gaps of
  # -4.5 to -12.6: it used to win the cell by doing so.
  config = quick_config(
      "compare_optimizers", problems="mccormick", steps=60, num_lrs=3,
      lr_min=0.01, lr_max=1.0, num_seeds=3, figure_formats="png,pdf",
      curves="all", optimizers="gd,sgdm=optax.sgd(momentum=0.9),"
      "lion=optax.lion(b1=[0.9,0.99])")
  rows = compare.run(config, str(tmp_path))
  stdout = capsys.readouterr().out
  assert [(r["optimizer"], r["hparams"]) for r in rows] == [
      ("gd", ""), ("sgdm", ""), ("lion", "b1=0.9")]

  # eta* from results.jsonl, by the documented protocol: a diverged run or
  # one that left the domain scores +inf; medians at 5 significant digits;
  # ties to the smaller eta, then the earlier b1, then the fewest failures.
  records = [json.loads(line) for line in
             (tmp_path / "results.jsonl").read_text().splitlines()]
  lo, hi = (np.asarray(b) for b in problems.get("mccormick").bounds)
  left = [r for r in records if r["left_domain"]]
  assert {(r["optimizer"], r["learning_rate"], r["hparams"].get("b1"))
          for r in left} >= {("lion", 1.0, 0.99)}
  for r in left:  # below f* by more than float32 rounding: never solved
    assert r["final_gap"] < -1e-6 and not r["best"]
  for row in rows:
    runs = [r for r in records if r["optimizer"] == row["optimizer"]]
    configs = {}
    for r in runs:
      score = (np.inf if r["diverged"] or r["left_domain"]
               or r["final_value"] is None else r["final_value"])
      configs.setdefault((r["learning_rate"], json.dumps(r["hparams"])),
                         []).append(score)
    ranked = sorted(configs, key=lambda k: (
        _rounded_median(configs[k]), sum(np.isinf(configs[k])), k[0]))
    lr, hp = ranked[0]
    assert row["best_learning_rate"] == pytest.approx(lr, rel=1e-6)
    assert row["hparams"] == ",".join(
        f"{k}={v!r}" for k, v in json.loads(hp).items())
    assert {(r["learning_rate"], json.dumps(r["hparams"])) for r in runs
            if r["best"]} == {(lr, hp)}
    # Medians with their interquartile ranges.
    assert (row["final_gap_q25"] <= row["median_final_gap"]
            <= row["final_gap_q75"])
    assert (row["steps_to_target_q25"] <= row["median_steps_to_target"]
            <= row["steps_to_target_q75"])
    assert row["median_final_gap"] > -1e-5  # no cell wins by leaving
    # Edge: eta* at an end of the grid, and every edge cell is printed.
    assert row["edge"] == {0.01: "lr_min", 1.0: "lr_max"}.get(
        round(row["best_learning_rate"], 6), "")
    if row["edge"]:
      assert f"{row['optimizer']} on mccormick ({row['edge']})" in stdout
  assert "edge cells (" in stdout and "left the domain" in stdout

  # curves.csv: tidy, every step of every run (curves="all"), pandas-ready.
  with open(tmp_path / "curves.csv", newline="") as f:
    curves = list(csv.DictReader(f))
  assert tuple(curves[0]) == compare_report.CURVE_COLUMNS
  assert len(curves) == (1 + 1 + 2) * 3 * 3 * 60
  assert {c["metric"] for c in curves} == {"f"}
  lion_099 = [c for c in curves if c["optimizer"] == "lion"
              and c["hparams"] == "b1=0.99" and c["learning_rate"] == "1"
              and c["seed"] == "0" and c["step"] == "60"]
  assert float(lion_099[0]["value"]) == pytest.approx(
      next(r["final_value"] for r in records if r["optimizer"] == "lion"
           and r["hparams"] == {"b1": 0.99} and r["learning_rate"] == 1.0
           and r["seed"] == 0), rel=1e-6)

  # Every figure as PNG and PDF; report.md shows the PNGs.
  images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)",
                      (tmp_path / "report.md").read_text())
  assert len(images) == 4
  for image in images:
    assert (tmp_path / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = (tmp_path / image).with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-", pdf
  report_md = (tmp_path / "report.md").read_text()
  assert "| gd | 0.1 |" in report_md and " [" in report_md  # IQRs
  assert "lion on mccormick" in report_md.split("Left the domain")[1]

  # report.html: one self-contained page, the same figures inline.
  page = _Page()
  page.feed((tmp_path / "report.html").read_text())
  page.close()
  assert page.tags[:2] == ["html", "head"] and "table" in page.tags
  assert len(page.images) == len(images) and not page.links
  for src, image in zip(page.images, images):
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]) == (
        tmp_path / image).read_bytes()
