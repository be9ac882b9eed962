"""The command line of the experiment scripts: flags, platform, config errors.

The scripts in ``experiments/`` stay thin: ``define_flags`` (``--config``,
``--workdir``, ``--platform``), ``set_platform``, one call into a job under
``wonderland.jobs``, all wrapped by ``run_app``. A bad flag or config value
raises ``ConfigError`` with one sentence naming the key, the value given and
what is allowed; ``run_app`` makes that sentence the whole output
(``error: <sentence>`` on stderr) with exit status 2, and no traceback.

A ``--config`` file that cannot make a config (a syntax error, an exception,
no ``get_config``, or a ``get_config`` that returns something other than an
``ml_collections.ConfigDict``) is one such sentence too, naming the file.

A job checks its whole config (with the ``require_*`` and ``split_*`` checks
here) and its ``--workdir`` (``prepare_workdir``) before it writes anything;
a write that fails once it has started (a full disk) raises
``WorkdirError``, printed the same way. Writing files is not a command-line
concern: see ``wonderland.files``.
"""

from __future__ import annotations

import ast
import importlib.machinery
import logging
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

# The config-value checks and their bounds live in ``wonderland.config_values``;
# the jobs use them from here. pylint: disable=unused-import
from wonderland.config_values import ConfigError
from wonderland.config_values import FLOAT32_MAX
from wonderland.config_values import FLOAT32_TINY
from wonderland.config_values import require_distinct
from wonderland.config_values import require_finite
from wonderland.config_values import require_positive
from wonderland.config_values import require_seed
from wonderland.config_values import SEED_LIMIT
from wonderland.config_values import split_names
from wonderland.config_values import split_numbers

__all__ = [
    "ConfigError",
    "WorkdirError",
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
class WorkdirError(ConfigError):
  """A ``--workdir`` that could not take a write, said in one sentence.

  Raised once the job has started (a full disk, a directory that appeared
  where an output goes); a ``ConfigError``, so that ``run_app`` prints it
  the same way.
  """


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


def _lines(e: BaseException) -> list[str]:
  """The non-blank lines of an exception's message, stripped."""
  return [line.strip() for line in str(e).splitlines() if line.strip()]


def _config_keys(config_path: str) -> list[str]:
  config, sentence = _load_config(config_path)
  if config is None:
    raise ValueError(sentence or f"no config file {config_path!r}")
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
  lines = _lines(e)
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


def _first_line(e: BaseException) -> str:
  """``Type: first line of the message`` without a final period."""
  lines = _lines(e)
  message = lines[0].rstrip(".") if lines else ""
  return f"{type(e).__name__}: {message}" if message else type(e).__name__


def _load_config(spec: str | None
                 ) -> tuple[ml_collections.ConfigDict | None, str | None]:
  """The config that ``spec`` (``path[:variant]``) makes, or why it cannot.

  The file is run and its ``get_config`` called, as ml_collections does.

  Returns:
    ``(config, None)``; ``(None, sentence)`` for a file that cannot make a
    ``ConfigDict``; ``(None, None)`` if there is no such file (the caller
    then says why the flag failed).
  """
  if not spec:
    return None, None
  path, _, variant = spec.partition(":")
  if not os.path.isfile(path):
    return None, None
  loader = importlib.machinery.SourceFileLoader("_wonderland_config", path)
  module = types.ModuleType(loader.name)
  module.__file__ = path
  try:
    loader.exec_module(module)
  except SyntaxError as e:
    return None, (f"--config must be a Python file that parses, got "
                  f"{path!r} ({e.msg} at line {e.lineno}).")
  except Exception as e:  # pylint: disable=broad-except
    return None, (f"--config must be a Python file that runs, got {path!r} "
                  f"({_first_line(e)}).")
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    return None, (f"--config must be a file that defines get_config(), got "
                  f"{path!r}, which does not.")
  try:
    config = get_config(variant) if variant else get_config()
  except Exception as e:  # pylint: disable=broad-except
    return None, (f"--config must name a config that get_config() makes, "
                  f"got {spec!r} ({_first_line(e)}).")
  if not isinstance(config, ml_collections.ConfigDict):
    shown = repr(config)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return None, (f"--config must be a file whose get_config() returns an "
                  f"ml_collections.ConfigDict, got {path!r}, which returns "
                  f"{type(config).__name__} {shown}.")
  return config, None


def _flag_error(e: Exception, argv: Sequence[str],
                flag_values: flags.FlagValues) -> str | None:
  """The sentence for an exception of absl's parsing, or None (a bug)."""
  if isinstance(e, OSError):
    return f"--config could not be loaded: {_lines(e)[-1]}"
  if isinstance(e, flags.Error):
    # ml_collections puts the config file's traceback inside the message.
    lines = _lines(e)
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
  if isinstance(e, (AttributeError, KeyError, TypeError, ValueError)):
    # With --config given, ml_collections applies the overrides here.
    return _override_error(e, argv[1:], _default_config(flag_values))
  return None


def _parse_flags(argv: Sequence[str],
                 flag_values: flags.FlagValues) -> list[str]:
  """Parses argv into flag_values; returns argv[:1] (no positional argument).

  Raises:
    ConfigError: for a flag that does not parse, a config file that cannot be
      loaded or cannot make a config, a bad or unknown ``--config.key``
      override, or a positional argument.
  """
  argv = list(argv)
  # ml_collections raises plain AttributeError/KeyError/TypeError for a bad
  # ``--config.key=value``, and whatever the config file raises (a
  # SyntaxError); absl would print a traceback for those.
  try:
    rest = flag_values(argv)
    if "config" in flag_values:  # a missing file only fails when first read
      getattr(flag_values["config"].value, "to_dict")
  except Exception as e:  # pylint: disable=broad-except
    spec = _config_arg(argv[1:]) or _default_config(flag_values)
    sentence = _load_config(spec)[1] or _flag_error(e, argv, flag_values)
    if sentence is None:
      raise
    raise ConfigError(sentence) from None
  if len(rest) > 1:
    raise ConfigError(
        f"unexpected positional arguments {rest[1:]}; pass flags only."
    )
  return rest


def _define(name: str, config_dir: str | os.PathLike,
            flag_values: flags.FlagValues, argv: Sequence[str] | None):
  default = str(Path(config_dir) / f"{name}.py")
  # ml_collections runs every config file as the module "config_config",
  # into the one already in sys.modules if any: a file parsed in the same
  # process before (``parse`` in tests) would lend its get_config to a file
  # without one.
  sys.modules.pop("config_config", None)
  try:
    config = config_flags.DEFINE_config_file(
        "config", default, f"The {name} config file.",
        flag_values=flag_values, lock_config=True,
        sys_argv=None if argv is None else list(argv),
    )
  except Exception as e:  # pylint: disable=broad-except
    # Without --config, ml_collections applies the overrides right here.
    given = sys.argv if argv is None else argv
    sentence = _load_config(_config_arg(given[1:]) or default)[1]
    if sentence is None and isinstance(e, (AttributeError, KeyError)):
      sentence = _override_error(e, given[1:], default)
    if sentence is None:
      raise
    raise ConfigError(sentence) from None
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
    # Named as wonderland.files names its temporaries: a killed run's probe
    # is removed by the next run (files.remove_temporaries).
    with tempfile.NamedTemporaryFile(dir=path, prefix=".probe.",
                                     suffix=".tmp"):
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
