"""The command line of the experiment scripts: flags, platform, config errors.

The scripts in ``experiments/`` stay thin: ``define_flags`` (``--config``,
``--workdir``, ``--platform``), ``set_platform``, one call into a job under
``wonderland.jobs``, all wrapped by ``run_app``. A bad flag or config value
raises ``ConfigError`` with one sentence naming the key, the value given and
what is allowed; ``run_app`` makes that sentence the whole output
(``error: <sentence>`` on stderr) with exit status 2, and no traceback.

A job checks its whole config (with the ``require_*`` and ``split_*`` checks
here) and its ``--workdir`` (``prepare_workdir``) before it writes anything.
Writing files is not a command-line concern: see ``wonderland.files``.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import math
import numbers
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

__all__ = [
    "ConfigError",
    "define_flags",
    "run_app",
    "set_platform",
    "prepare_workdir",
    "require_positive",
    "require_finite",
    "require_seed",
    "require_distinct",
    "split_names",
    "split_numbers",
    "parse",
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


def _default_config(flag_values: flags.FlagValues) -> str | None:
  """The script's default --config path, as ``define_flags`` gave it.

  absl keeps every flag's default for its help text as ``default_as_str``,
  the repr of the string given.
  """
  if "config" not in flag_values:
    return None
  try:
    return ast.literal_eval(flag_values["config"].default_as_str)
  except (ValueError, SyntaxError):
    return None


def _parse_flags(argv: Sequence[str],
                 flag_values: flags.FlagValues) -> list[str]:
  """Parses argv into flag_values; returns argv[:1] (no positional argument).

  Raises:
    ConfigError: for a flag that does not parse, a config file that cannot be
      loaded, a bad or unknown ``--config.key`` override, or a positional
      argument.
  """
  argv = list(argv)
  # ml_collections raises plain AttributeError/KeyError/TypeError for a bad
  # ``--config.key=value``; absl would print a traceback for those.
  try:
    rest = flag_values(argv)
    if "config" in flag_values:  # a missing file only fails when first read
      getattr(flag_values["config"].value, "to_dict")
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    raise ConfigError(f"--config could not be loaded: {lines[-1]}") from None
  except flags.Error as e:
    # ml_collections puts the config file's traceback inside the message.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    raise ConfigError(
        lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
    ) from None
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # With --config given, ml_collections applies the overrides here.
    raise ConfigError(
        _override_error(e, argv[1:], _default_config(flag_values))
    ) from None
  if len(rest) > 1:
    raise ConfigError(
        f"unexpected positional arguments {rest[1:]}; pass flags only."
    )
  return rest


def _define(name: str, config_dir: str | os.PathLike,
            flag_values: flags.FlagValues, argv: Sequence[str] | None):
  default = str(Path(config_dir) / f"{name}.py")
  try:
    config = config_flags.DEFINE_config_file(
        "config", default, f"The {name} config file.",
        flag_values=flag_values, lock_config=True,
        sys_argv=None if argv is None else list(argv),
    )
  except (AttributeError, KeyError) as e:
    # Without --config, ml_collections applies the overrides right here.
    given = sys.argv if argv is None else argv
    raise ConfigError(_override_error(e, given[1:], default)) from None
  workdir = flags.DEFINE_string(
      "workdir", f"runs/{name}", "Directory for everything the run writes.",
      flag_values=flag_values,
  )
  platform = flags.DEFINE_enum(
      "platform", None, PLATFORMS, "JAX backend; default: JAX's choice.",
      flag_values=flag_values,
  )
  return config, workdir, platform


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
  return _or_fail(_define, name, config_dir, flags.FLAGS, None)


def parse(name: str, config_dir: str | os.PathLike, argv: Sequence[str]):
  """What ``define_flags`` and ``run_app`` make of argv, without absl's app.

  The flags of experiment ``name`` are defined on a fresh ``FlagValues`` (the
  global ``absl.flags.FLAGS`` is not touched) and parsed from argv.

  Returns:
    ``(config, workdir, platform)``: the resolved config and the two flags.

  Raises:
    ConfigError: with the sentence the script would print.
  """
  flag_values = flags.FlagValues()
  holders = _define(name, config_dir, flag_values, argv)
  _parse_flags(argv, flag_values)
  return tuple(holder.value for holder in holders)


def _or_fail(fn: Callable[..., Any], *args: Any) -> Any:
  """fn(*args), with a ``ConfigError`` as the whole output and exit status 2."""
  try:
    return fn(*args)
  except ConfigError as e:
    _fail(str(e))


def run_app(main_fn: Callable[[Sequence[str]], Any]) -> None:
  """``absl.app.run`` for experiments: any bad flag or config is one line.

  A ``ConfigError`` raised by ``main_fn`` (or a flag that does not parse)
  prints ``error: <sentence>`` to stderr and exits with status 2.
  """

  def main(argv):
    # JAX logs at INFO each backend it cannot find (TPU on a CPU machine).
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    return _or_fail(main_fn, argv)

  app.run(main, flags_parser=lambda argv: _or_fail(_parse_flags, argv,
                                                    flags.FLAGS))


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


def split_numbers(key: str, value: Any, low: float, high: float, *,
                  closed: tuple[bool, bool] = (True, True),
                  integer: bool = False) -> list:
  """Parses a comma-separated list of distinct numbers, each in [low, high].

  Args:
    key: the config key, for the message.
    value: the string (or a single number) to parse.
    low, high: the interval's ends.
    closed: whether each end belongs to it (``(False, True)``: (low, high]).
    integer: parse integers (``int``) instead of floats.

  Raises:
    ConfigError: for an empty list, an entry that does not parse or lies
      outside the interval, or an entry given twice.
  """
  parse = int if integer else float
  try:
    items = [parse(v) for v in str(value).split(",") if v.strip()]
  except ValueError:
    items = []
  def inside(v):
    return ((low <= v if closed[0] else low < v)
            and (v <= high if closed[1] else v < high))
  if not items or not all(inside(v) for v in items):
    interval = (f"{'[' if closed[0] else '('}{low:g}, {high:g}"
                f"{']' if closed[1] else ')'}")
    raise ConfigError(
        f"config.{key} must be comma-separated "
        f"{'integers' if integer else 'numbers'} in {interval}, got {value!r}."
    )
  require_distinct(key, items, value)
  return items


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
