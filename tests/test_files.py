"""wonderland.files: temporaries, a failed write, output sets and manifests.

The jobs' use of these (kills and reruns of the compare job) is tested in
tests/jobs/test_compare_kills.py.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from wonderland import files


def test_temporary_names_are_ours_only():
  for name in (".summary.csv.k2j3_h4g.tmp", ".gd__matyas.npz.abcd1234.tmp",
               ".staging.zz00yy11.tmp", ".probe.a1b2c3d4.tmp",
               # written before the .tmp suffix
               ".gd__matyas.npz.abcd1234", ".summary.csv.x1y2z3w4",
               ".loss_booth.png.x1y2z3w4"):
    assert files.is_temporary(name), name
  for name in ("summary.csv", ".gitignore", ".summary.csv.bak",
               ".notes.20240101", ".summary.csv.abc.tmp", "keep.tmp",
               "x.summary.csv.abcd1234.tmp", ".summary.csv.ABCD1234"):
    assert not files.is_temporary(name), name


def test_a_failed_write_names_its_file_and_keeps_the_old_one(tmp_path,
                                                             monkeypatch):
  path = tmp_path / "summary.csv"
  files.atomic_write(path, "old\n")

  def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, "fsync", full)
  with pytest.raises(OSError) as info:
    files.atomic_write(path, "new\n")
  assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
  assert path.read_text() == "old\n"
  assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
  # A directory where the file goes: the system's error, with its name.
  monkeypatch.undo()
  (tmp_path / "report.md").mkdir()
  with pytest.raises(IsADirectoryError):
    files.atomic_write(tmp_path / "report.md", "text\n")
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "report.md", "summary.csv"]


def test_publish_moves_a_set_and_the_manifest_vouches_for_it(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "summary.csv").write_text("old\n")
  assert files.read_manifest(out) is None  # never published
  stage = files.staging(out)
  assert files.is_temporary(stage.name) and stage.parent == out
  (stage / "figures").mkdir()
  (stage / "summary.csv").write_text("new\n")
  (stage / "figures" / "a.png").write_bytes(b"png")
  manifest = files.publish(stage, out, about={"job": "test"})
  assert not stage.exists()
  assert (out / "summary.csv").read_text() == "new\n"
  assert (out / "figures" / "a.png").read_bytes() == b"png"
  assert sorted(manifest["files"]) == ["figures/a.png", "summary.csv"]
  assert files.read_manifest(out) == manifest
  assert json.loads((out / files.MANIFEST).read_text())["job"] == "test"
  # A file changed or gone since: the set is no longer whole.
  (out / "summary.csv").write_text("edited\n")
  assert files.read_manifest(out) is None
  (out / "summary.csv").write_text("new\n")
  assert files.read_manifest(out) == manifest
  (out / "figures" / "a.png").unlink()
  assert files.read_manifest(out) is None
  (out / files.MANIFEST).write_text("{not json")
  assert files.read_manifest(out) is None


def test_remove_temporaries_looks_only_where_it_is_told(tmp_path):
  for name in (".a.csv.abcd1234.tmp", "cells/.b.npz.abcd1234.tmp",
               "deep/.c.csv.abcd1234.tmp", "cells/keep.npz",
               ".staging.abcd1234.tmp/summary.csv"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("x")
  removed = files.remove_temporaries(tmp_path, ("cells", "figures"))
  assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
      ".a.csv.abcd1234.tmp", ".staging.abcd1234.tmp",
      "cells/.b.npz.abcd1234.tmp"]
  assert sorted(p.relative_to(tmp_path).as_posix()
                for p in tmp_path.rglob("*") if p.is_file()) == [
                    "cells/keep.npz", "deep/.c.csv.abcd1234.tmp"]
