"""Files an experiment writes: atomically, so a reader never sees half of one.

Not a command-line concern: the jobs, the plots and the cell store all write
through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "save_config"]


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes ``data`` to a temporary file beside ``path``, then renames it.

  A reader (or a rerun after a crash) sees either the old file or the whole
  new one, never half of it.
  """
  path = Path(path)
  mode = "wb" if isinstance(data, bytes) else "w"
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> a usual new file's mode
    with os.fdopen(fd, mode) as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
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
