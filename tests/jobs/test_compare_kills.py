"""The compare job's persistence: kills, reruns, output sets, damaged workdirs.

A kill is simulated in-process: ``os.replace`` (every file the job writes
lands by one rename) raises at its k-th call, before that rename happens.
What a real SIGKILL leaves besides (temporary files, a staging directory)
is planted by hand in ``test_a_rerun_removes_what_a_kill_left_and_only_that``.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from wonderland import batching
from wonderland import cli
from wonderland import files
from wonderland.jobs import compare
from wonderland.jobs.compare import cells as cells_lib
from wonderland.jobs.compare import job
from wonderland.jobs.compare import figures as compare_figures
from wonderland.jobs.compare import report as compare_report

from tests.jobs.conftest import CONFIGS, previous_run, snapshot

# The files that a kill and a rerun must reproduce byte for byte.
REPRODUCED = ("summary.csv", "results.jsonl", "curves.csv", "report.md")
# Two optimizers on two 2-D problems: one batch (one program) of 4 cells.
TINY = dict(problems="booth,matyas", optimizers="gd,adam", steps=5,
            num_lrs=2, num_seeds=2, plots=False, batching="all")


def _config(**overrides):
  config, _, _ = cli.parse(
      "compare_optimizers", CONFIGS,
      ["prog", f"--config={CONFIGS}/compare_optimizers.py:quick"])
  config.unlock()
  config.update({**TINY, **overrides})
  config.lock()
  return config


def _reproduced(workdir: Path) -> dict[str, bytes]:
  """The REPRODUCED files' bytes, summary.csv's wall-clock columns masked."""
  out = {name: (workdir / name).read_bytes() for name in REPRODUCED}
  rows = list(csv.reader(io.StringIO(out["summary.csv"].decode(),
                                     newline="")))
  timed = [rows[0].index(c) for c in compare_report.TIMING_COLUMNS]
  for row in rows[1:]:
    for i in timed:
      row[i] = "<seconds>"
  buf = io.StringIO(newline="")
  csv.writer(buf, lineterminator="\n").writerows(rows)
  out["summary.csv"] = buf.getvalue().encode()
  return out


class Killed(BaseException):
  """A simulated SIGKILL: nothing in the job catches it."""


def _kill_at(monkeypatch, at: int | None) -> list[Path]:
  """Makes the at-th rename (0-based) kill the run; None: count them only.

  Returns:
    The destinations of the renames done, in order.
  """
  done, real = [], os.replace

  def replace(src, dst, *args, **kwargs):
    if len(done) == at:
      raise Killed
    real(src, dst, *args, **kwargs)
    done.append(Path(dst))

  monkeypatch.setattr(os, "replace", replace)
  return done


def _must_not_run(*args, **kwargs):
  raise AssertionError("a cell read back was computed again")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run of the TINY config: its workdir."""
  workdir = tmp_path_factory.mktemp("reference")
  compare.run(_config(), str(workdir))
  return workdir


def test_a_kill_at_any_point_then_a_rerun_writes_the_same_bytes(
    reference, tmp_path, monkeypatch, capsys):
  expected = _reproduced(reference)
  workdir = tmp_path / "run"
  # Killed in the cell-save loop: 3 of the batch's 4 cells are saved.
  with monkeypatch.context() as m:
    _kill_at(m, 3)
    with pytest.raises(Killed):
      compare.run(_config(), str(workdir))
  saved = {p.name: p.read_bytes() for p in (workdir / "cells").iterdir()}
  assert sorted(saved) == ["adam__booth.npz", "gd__booth.npz",
                           "gd__matyas.npz"]
  # One saved cell is then replaced by a 4-step one under the name and the
  # fingerprint that this 5-step run reads: it must be computed again, not
  # reported.
  forged = cells_lib.cell_path(workdir, "adam", "booth")
  cell = cells_lib.load_cell(forged)
  cells_lib.save_cell(forged, cell._replace(values=cell.values[..., :4]))
  del saved[forged.name]
  # The rerun computes only the two cells missing or unfit, adam on booth
  # and on matyas, in a program of their own: a cell's bits do not depend on
  # the cells beside it (batching.run_cells), so the outputs match.
  programs, real = [], batching.run_cells
  with monkeypatch.context() as m:
    m.setattr(batching, "run_cells",
              lambda *a, **k: (programs.append(len(a[0]) * len(a[1])),
                               real(*a, **k))[1])
    compare.run(_config(), str(workdir))
  assert programs == [2]
  for name, data in saved.items():
    assert (workdir / "cells" / name).read_bytes() == data
  assert cells_lib.load_cell(forged).values.shape == (2, 2, 5)
  assert _reproduced(workdir) == expected

  # Killed at every rename of the final writes: staging, publishing, the
  # manifest. Each rerun reads every cell back and rewrites the set.
  with monkeypatch.context() as m:
    renames = _kill_at(m, None)
    compare.run(_config(), str(workdir))
  assert renames[-1] == workdir / files.MANIFEST
  assert len(renames) == 13  # 6 files staged, 6 moved, the manifest
  for k in range(len(renames)):
    with monkeypatch.context() as m:
      _kill_at(m, k)
      m.setattr(batching, "run_cells", _must_not_run)
      with pytest.raises(Killed):
        compare.run(_config(), str(workdir))
    # A manifest, where there is one, never lies.
    if (workdir / files.MANIFEST).exists():
      assert files.read_manifest(workdir) is not None, k
    compare.run(_config(), str(workdir))
    assert _reproduced(workdir) == expected, k
    assert files.read_manifest(workdir) is not None
  capsys.readouterr()
  # Nothing temporary is left.
  assert not [p for p in workdir.rglob(".*")]


def test_a_rerun_removes_what_a_kill_left_and_only_that(reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  stale = [
      "cells/.gd__matyas.npz.k2j3_h4g.tmp", "cells/.gd__matyas.npz.abcd1234",
      ".summary.csv.x1y2z3w4", ".report.md.q1w2e3r4.tmp",
      ".probe.a1b2c3d4.tmp", "figures/.loss_booth.png.abcd1234.tmp",
      ".staging.zz00yy11.tmp/summary.csv",
      ".staging.zz00yy11.tmp/figures/loss_booth.png",
  ]
  kept = ["notes.txt", "keep.tmp", ".gitignore", ".notes.20240101",
          ".summary.csv.bak", "cells/.keep", "cells/.x.npz.abc",
          "figures/mine.png"]
  for name in stale + kept:
    (workdir / name).parent.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text("left behind\n")
  compare.run(_config(), str(workdir))
  for name in stale:
    assert not (workdir / name).exists(), name
  assert not (workdir / ".staging.zz00yy11.tmp").exists()
  for name in kept:
    assert (workdir / name).read_text() == "left behind\n", name
  assert _reproduced(workdir) == _reproduced(reference)


def test_a_kill_while_a_new_set_is_moved_in_never_mixes_two_runs(
    reference, tmp_path, monkeypatch, capsys):
  # The reference's cells with figures, then another run in the same workdir
  # (another target gap: the same cells, other tables and report; no
  # figures, which take time to draw).
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  first_config = _config(plots=True)
  second_config = _config(target_gap=2.0)
  compare.run(first_config, str(workdir))
  first = files.read_manifest(workdir)
  assert set(first["files"]) == {
      "summary.csv", "results.jsonl", "curves.csv", "report.md",
      "report.html", "config.json",
      *compare_figures.figure_files(compare.validate(first_config))}
  assert "figures/contour_matyas.png" in first["files"]
  old = {name: (workdir / name).read_bytes() for name in first["files"]}

  # Killed while staging: the old set is whole, with its manifest.
  with monkeypatch.context() as m:
    _kill_at(m, 2)
    with pytest.raises(Killed):
      compare.run(second_config, str(workdir))
  assert files.read_manifest(workdir) == first
  assert {n: (workdir / n).read_bytes() for n in first["files"]} == old

  # Killed just after report.md is moved in (summary.csv comes after it):
  # no manifest, so a reader cannot take the old summary.csv and the new
  # report.md for one run's.
  with monkeypatch.context() as m:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
      real(src, dst, *args, **kwargs)
      if Path(dst) == workdir / "report.md":
        raise Killed

    m.setattr(os, "replace", replace)
    with pytest.raises(Killed):
      compare.run(second_config, str(workdir))
  assert (workdir / "report.md").read_bytes() != old["report.md"]
  assert (workdir / "summary.csv").read_bytes() == old["summary.csv"]
  assert not (workdir / files.MANIFEST).exists()
  assert files.read_manifest(workdir) is None

  # The rerun completes the second set.
  compare.run(second_config, str(workdir))
  capsys.readouterr()
  second = files.read_manifest(workdir)
  assert second is not None and set(second["files"]) == set(REPRODUCED) | {
      "report.html", "config.json"}
  assert "f* <= 2, median" in (workdir / "report.md").read_text()
  assert (workdir / "summary.csv").read_bytes() != old["summary.csv"]
  assert '"target_gap": 2.0' in (workdir / "config.json").read_text()
  # A file changed after the fact no longer matches the manifest.
  (workdir / "curves.csv").write_text("edited\n")
  assert files.read_manifest(workdir) is None


@pytest.mark.parametrize("blocked", [
    "summary.csv", "report.md", "manifest.json", "cells/adam__matyas.npz",
    "figures/loss_booth.png", "figures/performance_profile.pdf"])
def test_a_directory_where_an_output_goes_is_one_sentence(refused, tmp_path,
                                                          blocked):
  workdir = tmp_path / "run"
  previous_run(workdir)
  (workdir / "cells").mkdir()
  (workdir / "figures").mkdir()
  (workdir / blocked).unlink(missing_ok=True)  # the previous run's file
  (workdir / blocked).mkdir()
  (workdir / blocked / "kept.txt").write_text("not ours\n")
  flags = [f"--config.{k}={v}" for k, v in TINY.items() if k != "plots"]
  sentence = refused("compare_optimizers", compare.run,
                     [*flags, "--config.figure_formats=png,pdf"], workdir)
  assert sentence == (
      f"--workdir must have no directory where an output goes, got "
      f"'{workdir}' (a directory is in the way: '{workdir / blocked}').")


def test_a_full_disk_is_one_sentence_and_keeps_what_was_saved(
    reference, tmp_path, monkeypatch, capsys):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  real = files.atomic_write
  writes = []
  # The cells as the batch would compute them (the reference's), without
  # compiling it again.
  plan = compare.validate(_config())
  cells = {(o, p): cells_lib.load_cell(cells_lib.cell_path(reference, o, p))
           for o in plan.labels for p in plan.problems}

  def computed(plan, opts, probs, done, fingerprints, layouts):
    del plan, fingerprints, layouts
    return {(o, p): cells[(o, p)] for o in opts for p in probs
            if (o, p) not in done}

  def full_at(k):
    def write(path, data):
      writes.append(Path(path).name)
      if len(writes) == k:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      real(path, data)
    return write

  # The disk fills while the outputs are staged (every cell read back),
  # then while a missing cell is saved: each time one sentence, exit status
  # 2, and the workdir as it was.
  for k, landed in ((4, "report.md"), (1, "adam__matyas.npz")):
    if k == 1:
      (workdir / "cells" / "adam__matyas.npz").unlink()
    before = snapshot(workdir)
    writes.clear()
    with monkeypatch.context() as m:
      m.setattr(files, "atomic_write", full_at(k))
      m.setattr(job, "_compute", computed)
      with pytest.raises(SystemExit) as info:
        cli._or_fail(compare.run, _config(), str(workdir))  # pylint: disable=protected-access
    assert info.value.code == 2 and writes[-1] == landed
    err = capsys.readouterr().err
    assert err == (
        f"error: --workdir must be able to hold the run's files, got "
        f"'{workdir}' (No space left on device); the cells saved so far are "
        "kept, so a rerun once that is fixed computes only the others.\n")
    assert snapshot(workdir) == before


def test_a_cell_that_does_not_fit_the_plan_reads_as_missing(reference,
                                                           tmp_path):
  # A 5-step cell under the name (and, forged, the fingerprint) that a
  # 6-step run reads: its shapes give it away. (A run that meets such a
  # cell computes it again: test_a_kill_at_any_point_then_a_rerun_...)
  plan = compare.validate(_config(steps=6))
  fingerprint = job._fingerprints(plan)[("gd", "booth")]  # pylint: disable=protected-access
  layout = job._layouts(plan)[("gd", "booth")]  # pylint: disable=protected-access
  short = cells_lib.load_cell(cells_lib.cell_path(reference, "gd", "booth"))
  path = cells_lib.cell_path(tmp_path, "gd", "booth")
  path.parent.mkdir()
  cells_lib.save_cell(path, short._replace(fingerprint=fingerprint))
  assert cells_lib.load_cell(path, fingerprint) is not None
  assert cells_lib.load_cell(path, fingerprint, layout) is None
  assert cells_lib.mismatch(short, layout) == (
      "values is float32[2, 2, 5], the plan's float32[2, 2, 6]")
  # A 6-step cell fits; other dtypes, shapes, names and grids do not.
  fits = short._replace(values=np.zeros((2, 2, 6), np.float32),
                        path=np.zeros((7, 2), np.float32))
  assert cells_lib.mismatch(fits, layout) is None
  for wrong in (dict(values=fits.values.astype(np.float64)),
                dict(diverged=np.zeros((2, 2), np.float32)),
                dict(final_x=np.zeros((2, 3, 2), np.float32)),
                dict(path=np.zeros((0, 2), np.float32)),
                dict(problem="matyas"),
                dict(variants_json="[{}]"),
                dict(learning_rates=fits.learning_rates * 2)):
    assert cells_lib.mismatch(fits._replace(**wrong), layout), wrong
