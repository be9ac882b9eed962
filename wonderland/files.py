"""Files an experiment writes: atomically, so a reader never sees half of one.

Not a command-line concern: the jobs, the plots and the cell store all write
through here.

* ``atomic_write`` writes one file: a temporary file beside it
  (``.<name>.XXXXXXXX.tmp``), then a rename. A process killed in between
  leaves that temporary file behind (never a half-written ``<name>``);
  ``remove_temporaries`` deletes such leftovers, and only them, at the start
  of the next run.
* ``staging`` and ``publish`` write a *set* of files that belong together
  (one run's tables, report and figures): each is written into a private
  staging directory, then ``publish`` deletes the set's manifest, renames
  every staged file into place and writes the new manifest last (the sha256
  of every file of the set). ``read_manifest`` is what a reader relies on:
  it returns the manifest only where every file it lists has exactly the
  bytes listed, i.e. all of them come from the same run. While a set is
  being replaced, or after a run was killed while replacing it, there is no
  manifest (``read_manifest`` returns None): rerun the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = [
    "MANIFEST", "atomic_write", "save_config", "is_temporary",
    "remove_temporaries", "staging", "publish", "read_manifest",
]

MANIFEST = "manifest.json"
# What ``tempfile`` appends to a prefix: 8 of [a-z0-9_].
_RANDOM = r"[a-z0-9_]{8}"
# Ours: ``.<name>.XXXXXXXX.tmp`` (atomic_write), ``.staging.XXXXXXXX.tmp``
# (staging), ``.probe.XXXXXXXX.tmp`` (cli.prepare_workdir); and, from
# versions before the ``.tmp`` suffix, ``.<name>.XXXXXXXX`` where name has
# the extension of a file the jobs write.
_TEMPORARY = re.compile(
    rf"\..+\.{_RANDOM}\.tmp"
    rf"|\..+\.(npz|csv|jsonl|json|md|html|png|pdf|svg)\.{_RANDOM}")


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes ``data`` to a temporary file beside ``path``, then renames it.

  A reader (or a rerun after a crash) sees either the old file or the whole
  new one, never half of it. The temporary file is
  ``.<name>.XXXXXXXX.tmp`` in the same directory; it is removed if the write
  fails, and left behind only if the process is killed.

  Raises:
    OSError: as the system reports it (a full disk, a directory in the way),
      with the filename set to ``path`` where the system gave none.
  """
  path = Path(path)
  mode = "wb" if isinstance(data, bytes) else "w"
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                             suffix=".tmp")
  try:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> a usual new file's mode
    with os.fdopen(fd, mode) as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    if os.path.exists(tmp):
      os.unlink(tmp)
    if isinstance(e, OSError) and e.errno and e.filename is None:
      # A failed write (ENOSPC) names no file: name the one being written.
      raise OSError(e.errno, e.strerror, str(path)) from e
    raise


def save_config(config: Any, workdir: Path) -> None:
  """Saves the resolved config as ``workdir/config.json``.

  Call it after the run's outputs are written: a run that fails earlier must
  leave the previous run's ``config.json`` (which describes the files still
  there) as it was.
  """
  atomic_write(
      workdir / "config.json", json.dumps(config.to_dict() if hasattr(config, "to_dict") else dict(config), indent=2) + "\n"
  )


def is_temporary(name: str) -> bool:
  """Whether a file name is one of this module's temporary names."""
  return _TEMPORARY.fullmatch(name) is not None


def remove_temporaries(directory: str | os.PathLike,
                       subdirs: Sequence[str] = ()) -> list[Path]:
  """Deletes the temporaries a killed run left in directory and its subdirs.

  Only entries whose names ``is_temporary`` accepts are removed (a stale
  staging directory with its contents); nothing else is touched, and
  nothing below the subdirectories named. One run per directory at a time:
  a concurrent run's temporaries would be deleted too.

  Returns:
    The paths removed.
  """
  removed = []
  for folder in (Path(directory), *(Path(directory) / s for s in subdirs)):
    if not folder.is_dir():
      continue
    for entry in sorted(folder.iterdir()):
      if not is_temporary(entry.name):
        continue
      if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
      else:
        entry.unlink()
      removed.append(entry)
  return removed


def staging(directory: str | os.PathLike) -> Path:
  """A new, empty staging directory ``directory/.staging.XXXXXXXX.tmp``."""
  return Path(tempfile.mkdtemp(dir=directory, prefix=".staging.",
                               suffix=".tmp"))


def _sha256(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_directory(path: Path) -> None:
  """Makes the renames in ``path`` durable (where the system allows it)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def publish(staged: str | os.PathLike, directory: str | os.PathLike, *,
            about: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Moves every file of ``staged`` into ``directory`` as one set.

  In order: ``directory/manifest.json`` is deleted (from then on, until the
  new one is written, a reader finds no manifest: the set is being
  replaced); every staged file is renamed to the same relative path under
  ``directory`` (its folders made as needed); the new manifest is written
  atomically: ``about`` and ``files``, each file's relative path and
  sha256. The empty staging directory is then removed. A kill at any point
  leaves the old set with its manifest, no manifest, or the new set with
  its manifest.

  Returns:
    The manifest written.
  """
  staged, directory = Path(staged), Path(directory)
  names = sorted(p.relative_to(staged).as_posix()
                 for p in staged.rglob("*") if p.is_file())
  manifest = {**(about or {}),
              "files": {n: _sha256(staged / n) for n in names}}
  (directory / MANIFEST).unlink(missing_ok=True)
  _fsync_directory(directory)
  folders = {directory}
  for name in names:
    target = directory / name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged / name, target)
    folders.add(target.parent)
  for folder in sorted(folders):
    _fsync_directory(folder)
  atomic_write(directory / MANIFEST,
               json.dumps(manifest, indent=2, sort_keys=True) + "\n")
  shutil.rmtree(staged, ignore_errors=True)
  return manifest


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
  """The manifest of the set in ``directory``, if the set is whole.

  Returns:
    The manifest (``files``: relative path -> sha256, and what ``publish``
    was given as ``about``) if it exists, parses and every file it lists
    has exactly those bytes; else None (no set was published, one is being
    replaced, a run was killed while replacing it, or a file was changed
    since).
  """
  directory = Path(directory)
  try:
    manifest = json.loads((directory / MANIFEST).read_text())
    listed = manifest["files"]
    for name, sha in listed.items():
      if _sha256(directory / name) != sha:
        return None
  except (OSError, ValueError, KeyError, TypeError, AttributeError):
    return None
  return manifest
