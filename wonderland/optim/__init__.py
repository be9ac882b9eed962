"""Gradient descent and its accelerations (§1.3, §1.3.2) as Optax transformations.

x_t = x_{t-1} + eta_t p_t: every optimizer here turns the gradient
grad f(x_{t-1}) into the step x_t - x_{t-1}, which ``optax.apply_updates``
adds to the params. Each is an ``optax.GradientTransformation``: a
``NamedTuple`` state and two pure functions, ``init(params) -> state`` and
``update(grads, state, params) -> (updates, state)``; ``update`` keeps the
tree structure of ``grads`` and the dtypes of the state, so a jitted step
compiles once. The ``scale_by_*`` blocks are sign-neutral; the named
optimizers chain one with the step size eta_t (a number or a schedule).
Hyperparameters are checked when an optimizer is built (a schedule or a
traced value, as under ``optax.inject_hyperparams``, is let through).

The named optimizers by name, like ``wonderland.problems``: ``names()`` lists
them in the notes' order and ``get(name)`` returns the factory, whose first
argument is the learning rate eta; ``get`` also finds any other factory by its
import path:

  >>> from wonderland import optim
  >>> optim.get("adam")(1e-2)                     # the same as optim.adam(1e-2)
  >>> optim.get("optax.lion")(1e-3)               # any optax optimizer by name
  >>> optim.get("optax.contrib.muon")             # a dotted import path
  >>> optim.get("mypkg.mod:make_lion")            # module:attribute
  >>> optim.get("./my_lion.py:lion")              # a file:attribute
"""

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

import optax

from wonderland import _checks

from wonderland.optim.alias import adagrad
from wonderland.optim.alias import adam
from wonderland.optim.alias import gd
from wonderland.optim.alias import momentum
from wonderland.optim.alias import nesterov
from wonderland.optim.alias import normalized_gd
from wonderland.optim.alias import rmsprop
from wonderland.optim.linesearch import armijo_gd
from wonderland.optim.linesearch import ArmijoState
from wonderland.optim.linesearch import scale_by_armijo
from wonderland.optim.transforms import AdagradState
from wonderland.optim.transforms import AdamState
from wonderland.optim.transforms import MomentumState
from wonderland.optim.transforms import RmspropState
from wonderland.optim.transforms import scale_by_adagrad
from wonderland.optim.transforms import scale_by_adam
from wonderland.optim.transforms import scale_by_learning_rate
from wonderland.optim.transforms import scale_by_momentum
from wonderland.optim.transforms import scale_by_rmsprop
from wonderland.optim.transforms import scale_by_unit_norm
from wonderland.optim.transforms import ScaleByLearningRateState

__all__ = [
    # the registry
    "get",
    "names",
    # §1.3: steepest descent, the normalized direction, a careful step size
    "gd",
    "normalized_gd",
    "armijo_gd",
    # §1.3.2: momentum and step sizes that adapt to the gradient
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    # sign-neutral building blocks and their states
    "scale_by_learning_rate",
    "scale_by_unit_norm",
    "scale_by_momentum",
    "scale_by_adagrad",
    "scale_by_rmsprop",
    "scale_by_adam",
    "scale_by_armijo",
    "ScaleByLearningRateState",
    "MomentumState",
    "AdagradState",
    "RmspropState",
    "AdamState",
    "ArmijoState",
]

# The named optimizers, in the notes' order: a factory each, whose first
# argument is the learning rate.
_REGISTRY: dict[str, Callable[..., optax.GradientTransformation]] = {
    "gd": gd,
    "normalized_gd": normalized_gd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "armijo_gd": armijo_gd,
}


def names() -> tuple[str, ...]:
  """The registry's optimizer names, in the notes' order (gd first)."""
  return tuple(_REGISTRY)


def _import_path(name: str) -> Any:
  """The object an import path names: ``a.b.c``, ``a.b:c.d`` or ``f.py:c``.

  A dotted path is split at its longest importable module prefix; with a
  colon, the left side is the module (or a ``.py`` file, loaded by path) and
  the right side the attribute chain.
  """
  module_part, colon, attrs = name.partition(":")
  if colon:
    if not (module_part and attrs):
      raise ValueError(
          f"optimizer {name!r} must read module:attribute, with both parts.")
    if module_part.endswith(".py"):
      module = _load_file(name, module_part)
    else:
      try:
        module = importlib.import_module(module_part)
      except ModuleNotFoundError as e:
        raise ValueError(
            f"optimizer {name!r}: no module named {e.name!r} (is it installed, "
            f"or on PYTHONPATH?).") from None
    return _attribute(name, module, module_part, attrs.split("."))
  parts = name.split(".")
  for cut in range(len(parts) - 1, 0, -1):
    module_name = ".".join(parts[:cut])
    try:
      module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
      if e.name is not None and not module_name.startswith(e.name):
        raise ValueError(  # the module exists but imports a missing one
            f"optimizer {name!r}: importing {module_name!r} failed, no module "
            f"named {e.name!r}.") from None
      continue
    return _attribute(name, module, module_name, parts[cut:])
  raise ValueError(
      f"optimizer {name!r}: no module named {parts[0]!r} (is it installed, or "
      f"on PYTHONPATH? A file reads path/to/file.py:factory).")


def _load_file(name: str, path: str) -> Any:
  """The module of a ``.py`` file, loaded once per path."""
  file = Path(path).expanduser().resolve()
  if not file.is_file():
    raise ValueError(f"optimizer {name!r}: no file {path!r}.")
  digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
  module_name = f"_optimizer_file_{file.stem}_{digest}"
  if module_name in sys.modules:
    return sys.modules[module_name]
  spec = importlib.util.spec_from_file_location(module_name, file)
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    del sys.modules[module_name]
    raise ValueError(
        f"optimizer {name!r}: loading {path!r} raised {type(e).__name__}: "
        f"{e}.") from None
  return module


def _attribute(name: str, module: Any, module_name: str, attrs) -> Any:
  obj = module
  for i, attr in enumerate(attrs):
    if not hasattr(obj, attr):
      owner = ".".join([module_name, *attrs[:i]])
      raise ValueError(
          f"optimizer {name!r}: {owner!r} has no attribute {attr!r}.")
    obj = getattr(obj, attr)
  return obj


def _is_optax_name(name: str) -> bool:
  return name.startswith("optax.") and "." not in name[6:] and ":" not in name


def get(name: str) -> Callable[..., optax.GradientTransformation]:
  """The optimizer factory named ``name``; its first argument is eta.

  Args:
    name: one of ``names()``; ``"optax.<name>"`` for an optax optimizer
      whose first argument is ``learning_rate`` (such as ``optax.lion``); or
      the import path of any factory that takes ``learning_rate`` and returns
      an ``optax.GradientTransformation``: dotted (``optax.contrib.muon``,
      ``mypkg.mod.make_lion``), ``module:attribute`` (``mypkg.mod:make_lion``)
      or ``file.py:attribute`` (``./my_lion.py:lion``).

  Returns:
    The factory, e.g. ``get("adam") is adam`` and ``get("optax.lion") is
    optax.lion``.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones); an
      import path whose module is not found or lacks the attribute; an object
      that is not a function taking ``learning_rate``; or, where its other
      arguments have defaults, one that ``factory(learning_rate=1e-3)`` does
      not turn into a transformation (``optax.<name>``: "not an optax
      optimizer taking learning_rate").
  """
  if isinstance(name, str) and name in _REGISTRY:
    return _REGISTRY[name]
  valid = ", ".join(names()) + ", optax.<name>"
  if not isinstance(name, str) or not ("." in name or ":" in name):
    raise ValueError(
        f"unknown optimizer {name!r}; valid names are: {valid}. Any other "
        f"factory goes by its import path (module.path:factory).")
  if _is_optax_name(name):
    factory = getattr(optax, name[len("optax."):], None)
    refused = ValueError(
        f"{name!r} is not an optax optimizer taking learning_rate (such as "
        f"optax.lion or optax.sgd); valid names are: {valid}."
    )
    if not callable(factory) or isinstance(factory, type):
      raise refused
    try:
      _checks.transformation(factory(learning_rate=1e-3))
    except Exception:  # pylint: disable=broad-except
      raise refused from None
    return factory
  factory = _import_path(name)
  what = f"optimizer {name!r} is not a transformation factory"
  if not callable(factory) or isinstance(factory, type):
    raise ValueError(
        f"{what}: it is a {type(factory).__name__}, not a function of "
        f"learning_rate returning an optax.GradientTransformation.")
  accepted = _checks.keyword_names(factory, open_ok=True)
  if accepted is not None and "learning_rate" not in accepted[0]:
    raise ValueError(
        f"{what}: it takes no learning_rate (its arguments are "
        f"{', '.join(accepted[0]) or 'none'}).")
  if accepted is None or set(accepted[1]) <= {"learning_rate"}:
    try:
      built = factory(learning_rate=1e-3)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(
          f"{what}: {name}(learning_rate=0.001) raised {type(e).__name__}: "
          f"{e}") from None
    if not (callable(getattr(built, "init", None))
            and callable(getattr(built, "update", None))):
      raise ValueError(
          f"{what}: {name}(learning_rate=0.001) returned a "
          f"{type(built).__name__}, not an optax.GradientTransformation.")
  return factory
