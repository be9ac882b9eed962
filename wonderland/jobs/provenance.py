"""What decided a job's numbers: versions, sources, devices, the git commit.

Two uses, one vocabulary:

* a finished cell's *fingerprint* (``wonderland.jobs.compare.cells``) holds
  ``versions()``, ``library_source()`` and the ``function_identity`` of its
  optimizer factory, so that a cell computed by another optimizer under the
  same name, another problem definition or another library is never read
  back;
* ``config.json`` holds ``environment()`` beside the resolved config
  (``save_config``): the versions, the device kind and count, and the git
  commit of the checkout when there is one.

Nothing here fails for want of git, of a source file or of a package's
metadata: what cannot be read is recorded as None.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from wonderland import files

__all__ = [
    "versions", "library_source", "function_identity", "digest",
    "git_commit", "environment", "save_config",
]

# The packages whose versions decide a run's numbers.
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "wonderland")
_ROOT = Path(__file__).resolve().parents[1]  # the wonderland package
# Modules that only present numbers (tables, figures, files, flags): editing
# them leaves every computed number as it was.
_PRESENTATION = ("plots", "jobs", "report.py", "cli.py", "files.py")


def _version(package: str) -> str | None:
  """The version of ``package``: installed metadata, or its ``__version__``.

  wonderland's own is ``wonderland.__version__``: the metadata of an
  editable install keeps the version of the day it was installed.
  """
  if package == "wonderland":
    import wonderland  # pylint: disable=g-import-not-at-top
    return wonderland.__version__
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    module = sys.modules.get(package)
    return getattr(module, "__version__", None)


def versions() -> dict[str, str | None]:
  """Python's version and those of ``PACKAGES`` (None where not installed)."""
  return {"python": platform.python_version(),
          **{p: _version(p) for p in PACKAGES}}


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


@functools.cache
def library_source() -> str:
  """sha256 of wonderland's computing modules (all but ``_PRESENTATION``).

  An editable checkout keeps its version number while its code changes: this
  hash changes with the code that computes (the loops, sweeps, optimizers,
  problems, data). Computed once per process.
  """
  h = hashlib.sha256()
  for path in sorted(_ROOT.rglob("*.py")):
    rel = path.relative_to(_ROOT)
    if rel.parts[0] in _PRESENTATION:
      continue
    h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
  return h.hexdigest()


def file_digest(path: str | Path) -> str | None:
  """sha256 of a file's bytes, or None if it cannot be read."""
  try:
    return _sha256(Path(path).read_bytes())
  except OSError:
    return None


def function_identity(fn: Callable[..., Any]) -> dict[str, Any]:
  """Who ``fn`` is: module, qualified name, and hashes of its source.

  ``source_sha256`` is the hash of the function's own source and
  ``module_sha256`` that of its module's file (which holds the helpers it
  calls); both None where Python has no source (builtins, code typed at a
  prompt). A ``functools.partial`` is the identity of its function and its
  bound arguments.
  """
  if isinstance(fn, functools.partial):
    return {"partial": function_identity(fn.func),
            "args": [repr(a) for a in fn.args],
            "keywords": {k: repr(v) for k, v in sorted(fn.keywords.items())}}
  target = inspect.unwrap(fn) if callable(fn) else fn
  identity = {
      "module": getattr(target, "__module__", None),
      "qualname": getattr(target, "__qualname__",
                          getattr(target, "__name__", repr(type(target)))),
      "source_sha256": None,
      "module_sha256": None,
  }
  try:
    identity["source_sha256"] = _sha256(inspect.getsource(target).encode())
  except (OSError, TypeError):
    pass
  try:
    source_file = inspect.getsourcefile(target)
  except TypeError:
    source_file = None
  if source_file:
    identity["module_sha256"] = file_digest(source_file)
  return identity


def digest(*arrays: Any) -> str:
  """sha256 of arrays (their dtype, shape and bytes), e.g. initial points."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(np.asarray(a))
    h.update(f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
  return h.hexdigest()


def _git(*args: str) -> str | None:
  try:
    out = subprocess.run(
        ["git", "-C", str(_ROOT.parent), *args], capture_output=True,
        text=True, timeout=10, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> dict[str, Any] | None:
  """``{"commit": sha, "dirty": bool}`` of wonderland's checkout, or None.

  None where git is not installed or wonderland is not in a git checkout.
  ``dirty``: tracked files differ from the commit.
  """
  commit = _git("rev-parse", "HEAD")
  if not commit:
    return None
  status = _git("status", "--porcelain", "--untracked-files=no")
  return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment() -> dict[str, Any]:
  """Versions, library source hash, devices and git commit, JSON-able."""
  import jax  # pylint: disable=g-import-not-at-top

  devices = jax.devices()
  return {
      "versions": versions(),
      "library_source": library_source(),
      "platform": devices[0].platform,
      "device_kind": devices[0].device_kind,
      "device_count": len(devices),
      "git": git_commit(),
  }


def save_config(config: Any, workdir: Path,
                env: Mapping[str, Any] | None = None) -> None:
  """``config.json``: the resolved config, with ``environment`` beside its keys.

  Written last by the jobs (``wonderland.files.save_config``'s rule): a run
  that fails earlier leaves the previous run's file as it was.
  """
  values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  values["environment"] = dict(env) if env is not None else environment()
  files.atomic_write(Path(workdir) / "config.json",
                     json.dumps(values, indent=2) + "\n")
