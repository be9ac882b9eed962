"""What every experiment script shares: config errors, the workdir, atomic files.

The scripts in ``experiments/`` stay thin (flags, platform, one call into the
library). A bad config value raises ``ConfigError`` with one sentence naming
the key, the value given and what is allowed; ``main`` wraps an absl ``main``
so that the sentence is the whole output and the exit status is non-zero.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import ml_collections
from absl import app
from absl import flags
from ml_collections import config_flags

__all__ = [
    "ConfigError",
    "define_flags",
    "run_app",
    "prepare_workdir",
    "atomic_write",
    "save_config",
    "split_names",
    "set_platform",
    "require_positive",
]

PLATFORMS = ("cpu", "gpu", "tpu")


class ConfigError(ValueError):
  """A config value or flag that cannot be used, said in one sentence."""


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _parse_flags(argv: list[str]) -> list[str]:
  # ml_collections raises plain AttributeError/KeyError/TypeError for a bad
  # ``--config.key=value``; absl would print a traceback for those.
  try:
    rest = flags.FLAGS(argv)
    if "config" in flags.FLAGS:  # a missing file only fails when first read
      getattr(flags.FLAGS["config"].value, "to_dict")
    return rest
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    _fail(f"--config could not be loaded: {lines[-1]}")
  except flags.Error as e:
    # ml_collections puts the config file's traceback inside the message.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    message = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
    _fail(message)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    message = str(e).strip("\"'")
    _fail(f"bad --config override ({type(e).__name__}: {message}).")


def _config_keys(config_path: str) -> list[str]:
  path, _, variant = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("_wonderland_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant) if variant else module.get_config()
  return sorted(config.to_dict())


def define_flags(name: str, config_dir: str | os.PathLike):
  """Defines ``--config``, ``--workdir`` and ``--platform`` for experiment ``name``.

  ``--config`` defaults to ``config_dir/<name>.py`` (``path:variant`` selects
  a variant such as ``quick``); ``--config.key=value`` overrides one key;
  ``--workdir`` defaults to ``runs/<name>``. An override of a key that the
  config does not have is reported in one line, with the valid keys.

  Returns:
    The three flag holders ``(config, workdir, platform)``.
  """
  default = str(Path(config_dir) / f"{name}.py")
  try:
    config = config_flags.DEFINE_config_file(
        "config", default, f"The {name} config file.", lock_config=True
    )
  except (AttributeError, KeyError) as e:
    config_path = flags.FLAGS["config"].value if "config" in flags.FLAGS else None
    for arg in sys.argv[1:]:
      if arg.startswith("--config="):
        config_path = arg.split("=", 1)[1]
    unknown = str(e).strip("\"'")
    keys = _config_keys(config_path or default)
    _fail(
        f"--config.{unknown} is not a key of the config; valid keys are "
        f"{', '.join(keys)}."
    )
  workdir = flags.DEFINE_string(
      "workdir", f"runs/{name}", "Directory for everything the run writes."
  )
  platform = flags.DEFINE_enum(
      "platform", None, PLATFORMS, "JAX backend; default: JAX's choice."
  )
  return config, workdir, platform


def run_app(main_fn: Callable[[Sequence[str]], Any]) -> None:
  """``absl.app.run`` for experiments: any bad flag or config is one line.

  A ``ConfigError`` raised by ``main_fn`` (or a flag that does not parse)
  prints ``error: <sentence>`` to stderr and exits with status 2.
  """

  def main(argv):
    if len(argv) > 1:
      _fail(f"unexpected positional arguments {argv[1:]}; pass flags only.")
    # JAX logs at INFO each backend it cannot find (TPU on a CPU machine).
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
      return main_fn(argv)
    except ConfigError as e:
      _fail(str(e))

  app.run(main, flags_parser=_parse_flags)


def require_positive(key: str, value: Any, *, integer: bool = False) -> None:
  """Raises ``ConfigError`` unless ``value`` is a positive number (int if asked)."""
  kind = "a positive integer" if integer else "a positive number"
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  ok = ok and value > 0 and (not integer or float(value).is_integer())
  if not ok:
    raise ConfigError(f"config.{key} must be {kind}, got {value!r}.")


def split_names(key: str, value: str | Iterable[str], valid: Sequence[str]):
  """Parses a comma-separated list of names and checks each against ``valid``.

  ``valid`` may hold ``"optax.*"``: any ``optax.<name>`` is then accepted here
  and checked by the caller.
  """
  names = value.split(",") if isinstance(value, str) else list(value)
  names = [n.strip() for n in names if n.strip()]
  if not names:
    raise ConfigError(
        f"config.{key} must name at least one of {', '.join(valid)}; got "
        f"{value!r}."
    )
  for name in names:
    if name in valid or ("optax.*" in valid and name.startswith("optax.")):
      continue
    raise ConfigError(
        f"config.{key} has an unknown name {name!r}; valid names are "
        f"{', '.join(valid)}."
    )
  return names


def set_platform(platform: str | None) -> None:
  """Selects JAX's backend (``cpu``, ``gpu`` or ``tpu``) before it starts.

  ``cpu`` and ``tpu`` become ``jax_platforms``. ``gpu`` does not: JAX expands
  it to every GPU plugin it knows (cuda, rocm, ...) and fails unless all of
  them start, so for ``gpu`` JAX picks among the installed plugins and the
  choice is checked afterwards.
  """
  if platform is None:
    return
  if platform not in PLATFORMS:
    raise ConfigError(
        f"--platform must be one of {', '.join(PLATFORMS)}, got {platform!r}."
    )
  import jax  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_platforms", "" if platform == "gpu" else platform)
  try:
    started = jax.default_backend()
  except RuntimeError:
    started = None
  if started != platform:
    raise ConfigError(
        f"--platform must name a backend this machine has; got {platform!r}, "
        "which JAX cannot start here (install the matching jax package, e.g. "
        "jax[cuda12] or jax[cuda13] for gpu, or leave --platform unset)."
    )


def prepare_workdir(workdir: str | os.PathLike) -> Path:
  """Creates ``workdir`` (and parents) and checks that it can be written."""
  path = Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
      pass
  except OSError as e:
    raise ConfigError(
        f"--workdir must be a writable directory, got {str(workdir)!r} "
        f"({e.strerror or e})."
    ) from None
  return path


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


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
  """Saves the resolved config as ``workdir/config.json``."""
  atomic_write(
      workdir / "config.json", json.dumps(config.to_dict(), indent=2) + "\n"
  )
