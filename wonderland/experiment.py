"""What every experiment script shares: config errors, the workdir, atomic files.

The scripts in ``experiments/`` stay thin (flags, platform, one call into the
library). A bad config value raises ``ConfigError`` with one sentence naming
the key, the value given and what is allowed; ``main`` wraps an absl ``main``
so that the sentence is the whole output and the exit status is non-zero.

A job checks its whole config before it creates or writes anything, and saves
``config.json`` last, once the outputs it describes are written: a run that
fails leaves the previous run's files, ``config.json`` included, as they were.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import math
import numbers
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import ml_collections
import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

from wonderland.files import atomic_write
from wonderland.files import save_config

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
    "require_finite",
    "require_seed",
    "require_distinct",
]

PLATFORMS = ("cpu", "gpu", "tpu")
# Seeds are uint32: ``jax.random.key`` and ``fold_in`` take no more.
SEED_LIMIT = 2**32
# The smallest and the largest positive normal float32: a number outside them
# is 0 (a flushed subnormal) or inf once cast to float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)



class ConfigError(ValueError):
  """A config value or flag that cannot be used, said in one sentence."""


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _config_arg(argv: Sequence[str]) -> str | None:
  """The value of the last ``--config=path`` or ``--config path`` of argv."""
  value = None
  for i, arg in enumerate(argv):
    name, eq, rest = arg.partition("=")
    if name in ("--config", "-config"):
      if eq:
        value = rest
      elif i + 1 < len(argv):
        value = argv[i + 1]
  return value


def _config_keys(config_path: str) -> list[str]:
  path, _, variant = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("_wonderland_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant) if variant else module.get_config()
  return sorted(config.to_dict())


def _unknown_key(argv: Sequence[str], default: str | None) -> str | None:
  """The sentence for the first ``--config.X`` of argv that is not a key.

  The keys are those of the config that argv selects (its ``--config``, else
  the script's default). None if every override names a key or the config
  cannot be read.
  """
  path = _config_arg(argv) or default
  if path is None:
    return None
  try:
    keys = _config_keys(path)
  except Exception:  # pylint: disable=broad-except
    return None
  for arg in argv:
    name = arg.partition("=")[0]
    for prefix in ("--config.", "-config.", "--noconfig.", "-noconfig."):
      if name.startswith(prefix):
        key = name[len(prefix):].split(".", 1)[0]
        if key not in keys:
          return (
              f"--config.{key} is not a key of the config; valid keys are "
              f"{', '.join(keys)}."
          )
  return None


def _override_error(e: Exception, argv: Sequence[str],
                    default: str | None) -> str:
  unknown = _unknown_key(argv, default)
  if unknown is not None:
    return unknown
  lines = [line.strip() for line in str(e).splitlines() if line.strip()]
  message = lines[0].strip("\"'") if lines else ""
  return f"bad --config override ({type(e).__name__}: {message})."


def _default_config() -> str | None:
  """The script's default --config path, as ``define_flags`` gave it.

  absl keeps every flag's default for its help text as ``default_as_str``,
  the repr of the string given.
  """
  if "config" not in flags.FLAGS:
    return None
  try:
    return ast.literal_eval(flags.FLAGS["config"].default_as_str)
  except (ValueError, SyntaxError):
    return None


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
    # With --config given, ml_collections applies the overrides here.
    _fail(_override_error(e, argv[1:], _default_config()))


def define_flags(name: str, config_dir: str | os.PathLike):
  """Defines ``--config``, ``--workdir`` and ``--platform`` for experiment ``name``.

  ``--config`` defaults to ``config_dir/<name>.py`` (``path:variant`` selects
  a variant such as ``quick``); ``--config.key=value`` overrides one key;
  ``--workdir`` defaults to ``runs/<name>``. An override of a key that the
  config does not have is reported in one line, with the valid keys of the
  config given (``--config=path`` or ``--config path``) or of the default.

  Returns:
    The three flag holders ``(config, workdir, platform)``.
  """
  default = str(Path(config_dir) / f"{name}.py")
  try:
    config = config_flags.DEFINE_config_file(
        "config", default, f"The {name} config file.", lock_config=True
    )
  except (AttributeError, KeyError) as e:
    # Without --config, ml_collections applies the overrides right here.
    _fail(_override_error(e, sys.argv[1:], default))
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


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(
      value, (bool, np.bool_)
  )


def _as_float(value: Any) -> float:
  """float(value), with an int too large for a float as inf."""
  try:
    return float(value)
  except OverflowError:
    return math.inf if value > 0 else -math.inf


def require_positive(
    key: str, value: Any, *, integer: bool = False, float32: bool = False
) -> None:
  """Raises ``ConfigError`` unless ``value`` is a finite number > 0.

  Args:
    key: the config key, for the message.
    value: the value to check.
    integer: also require a whole number.
    float32: also require that the value stays finite and > 0 once cast to
      float32 (a normal float32, between ``FLOAT32_TINY`` and
      ``FLOAT32_MAX``), for values that enter a float32 computation.
  """
  kind = "a positive integer" if integer else "a finite positive number"
  ok = _is_number(value) and math.isfinite(_as_float(value)) and value > 0
  ok = ok and (not integer or isinstance(value, numbers.Integral)
               or float(value).is_integer())
  if not ok:
    raise ConfigError(f"config.{key} must be {kind}, got {value!r}.")
  if float32 and not FLOAT32_TINY <= _as_float(value) <= FLOAT32_MAX:
    raise ConfigError(
        f"config.{key} must be a positive number that float32 represents "
        f"(from {FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}), got {value!r}."
    )


def require_finite(key: str, value: Any) -> None:
  """Raises ``ConfigError`` unless ``value`` is a finite number (no nan, inf)."""
  if not (_is_number(value) and math.isfinite(_as_float(value))):
    raise ConfigError(f"config.{key} must be a finite number, got {value!r}.")


def require_seed(key: str, value: Any) -> None:
  """Raises ``ConfigError`` unless ``value`` is an integer in [0, 2**32)."""
  ok = isinstance(value, numbers.Integral) and not isinstance(
      value, (bool, np.bool_)
  )
  if not (ok and 0 <= value < SEED_LIMIT):
    raise ConfigError(
        f"config.{key} must be an integer in [0, 2**32) (jax.random keys are "
        f"uint32), got {value!r}."
    )


def require_distinct(key: str, items: Sequence[Any], value: Any) -> None:
  """Raises ``ConfigError`` if ``items``, parsed from ``value``, repeat one."""
  seen = []
  for item in items:
    if item in seen:
      raise ConfigError(
          f"config.{key} must list each entry once, got {value!r} "
          f"({item!r} more than once)."
      )
    seen.append(item)


def split_names(key: str, value: str | Iterable[str], valid: Sequence[str]):
  """Parses a comma-separated list of distinct names, each one of ``valid``.

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
  require_distinct(key, names, value)
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


def prepare_workdir(
    workdir: str | os.PathLike, subdirs: Sequence[str] = ()
) -> Path:
  """Creates ``workdir`` (and parents) and its ``subdirs``; checks writing.

  Raises:
    ConfigError: if workdir is empty (that would be the current directory),
      cannot be created or written, or a subdirectory cannot be made (a file
      of that name is in the way).
  """
  if not str(workdir).strip():
    raise ConfigError(
        f"--workdir must name a directory, got {str(workdir)!r} (an empty "
        "workdir would write into the current directory)."
    )
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
  def refuse(name, why):
    raise ConfigError(
        f"--workdir must be a directory in which {name}/ can be made, got "
        f"{str(workdir)!r} ({why}: {str(path / name)!r})."
    )

  for name in subdirs:  # all checked before any is made
    if (path / name).exists() and not (path / name).is_dir():
      refuse(name, "a file of that name is in the way")
  for name in subdirs:
    try:
      (path / name).mkdir(exist_ok=True)
    except OSError as e:
      refuse(name, e.strerror or str(e))
  return path
