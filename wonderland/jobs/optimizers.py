"""The optimizers a job compares, from one config string: the spec.

Both jobs (``compare`` and ``train``) read ``config.optimizers`` here, so the
two accept exactly the same optimizers. The string is a comma-separated list
of specs::

  spec  := [label "="] path ["(" name=value, ... ")"]
  path  := a name of wonderland.optim.names()        gd, adam, ...
         | optax.<name>                              optax.lion
         | an import path (wonderland.optim.get)     optax.contrib.muon,
                                                     mypkg.mod:make_lion,
                                                     ./my_lion.py:lion
  value := a Python literal; a list [v1, v2, ...] is swept

The factory at ``path`` takes ``learning_rate`` (the job's grid) and returns
an ``optax.GradientTransformation``. ``name=value`` fixes a hyperparameter;
``name=[v1, v2]`` sweeps it: every value is a *variant*, tuned jointly with
eta (the best (eta, variant) pair is the optimizer's; ties go to the smaller
eta, then to the earlier value). The label names the optimizer in every
table and figure; it defaults to the spec itself, and the same factory twice
needs two labels:

  gd,adam,sgdm=optax.sgd(momentum=0.9),sgd=optax.sgd,adam(b1=[0.8,0.9,0.95])

Every spec is checked before a job runs: the factory is found (module,
attribute), its hyperparameters are names it takes, every variant builds a
transformation, and (for anything but a registry optimizer at its defaults)
two steps trace with eta a traced value, as the sweeps run it.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from wonderland import _checks
from wonderland import cli
from wonderland import optim
from wonderland.jobs import provenance

__all__ = ["Optimizer", "parse", "split_specs"]

_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+\-]*$")
_SPEC = re.compile(
    r"^\s*(?:(?P<label>[^=()\[\],]+?)\s*=\s*)?(?P<path>[^=()\s]+)\s*"
    r"(?:\((?P<args>.*)\))?\s*$", re.S)
_GRAMMAR = ("[label=]path[(name=value, ...)], a list value [v1, v2] swept, "
            "e.g. sgdm=optax.sgd(momentum=0.9)")


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """One spec of ``config.optimizers``, checked.

  Attributes:
    label: its name in every table, figure and file of the job.
    path: the factory's name or import path, as given.
    factory: the factory, ``factory(learning_rate, **hyperparameters)``.
    fixed: the fixed hyperparameters, ``((name, value), ...)`` in the spec's
      order.
    swept: the swept ones, ``((name, (v1, v2, ...)), ...)``.
  """

  label: str
  path: str
  factory: Callable[..., optax.GradientTransformation]
  fixed: tuple[tuple[str, Any], ...] = ()
  swept: tuple[tuple[str, tuple[Any, ...]], ...] = ()

  def variants(self) -> list[dict[str, Any]]:
    """The swept values' product, in order (the last name varies fastest)."""
    names = [n for n, _ in self.swept]
    return [dict(zip(names, values))
            for values in itertools.product(*(v for _, v in self.swept))]

  def make(self, variant: Mapping[str, Any] | None = None
           ) -> Callable[..., optax.GradientTransformation]:
    """``make(learning_rate)``: the factory with the fixed and ``variant``'s
    hyperparameters bound (Python values, compiled in as constants)."""
    kwargs = {**dict(self.fixed), **dict(variant or {})}
    factory = self.factory
    if not kwargs:
      return factory

    def make(learning_rate):
      return factory(learning_rate=learning_rate, **kwargs)

    make.__name__ = self.label
    return make

  def identity(self) -> dict[str, Any]:
    """What decides this optimizer's numbers (JSON-able, for fingerprints)."""
    return {
        "path": self.path,
        "factory": provenance.function_identity(self.factory),
        "fixed": [[n, repr(v)] for n, v in self.fixed],
        "swept": [[n, [repr(v) for v in vs]] for n, vs in self.swept],
    }


def describe(variant: Mapping[str, Any]) -> str:
  """``b1=0.9,b2=0.99``: a variant in the spec's own notation."""
  return ",".join(f"{k}={v!r}" for k, v in variant.items())


def split_specs(value: str) -> list[str]:
  """Splits at the commas outside brackets and quotes."""
  parts, depth, quote, start = [], 0, None, 0
  for i, ch in enumerate(value):
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == "," and depth == 0:
      parts.append(value[start:i])
      start = i + 1
  parts.append(value[start:])
  return [p.strip() for p in parts if p.strip()]


def _fail(message: str):
  raise cli.ConfigError(f"config.optimizers {message}")


def _arguments(spec: str, args: str) -> list[tuple[str, Any]]:
  """``name=value, ...`` as (name, literal) pairs, in order."""
  try:
    call = ast.parse(f"f({args})", mode="eval").body
    if call.args:
      raise ValueError("positional")
    pairs = [(kw.arg, ast.literal_eval(kw.value)) for kw in call.keywords]
    if any(name is None for name, _ in pairs):
      raise ValueError("**")
  except (SyntaxError, ValueError):
    _fail(f"has {spec!r}, whose arguments are not name=value pairs of Python "
          f"literals; write {_GRAMMAR}.")
  return pairs


def _traced_failure(make) -> str | None:
  """None if ``make`` runs with a traced eta as the sweeps run it, else why.

  Every job runs its optimizers under ``jax.vmap`` over a traced learning
  rate; this traces two steps of ``wonderland.minimize`` on f(x) = ||x||^2
  (``jax.eval_shape``: nothing is compiled or run).
  """
  import wonderland as wl  # pylint: disable=g-import-not-at-top
  from wonderland._sweep import inject_traced  # pylint: disable=g-import-not-at-top

  factory = inject_traced(make, ("learning_rate",))
  x0 = jnp.ones(2, jnp.float32)

  def one(lr):
    trace = wl.minimize(lambda x: jnp.sum(x**2), factory(learning_rate=lr),
                        x0, steps=2, keep_path=True)
    return trace.path

  try:
    jax.eval_shape(jax.vmap(one), jax.ShapeDtypeStruct((2,), jnp.float32))
  except Exception as e:  # pylint: disable=broad-except
    return type(e).__name__
  return None


def _check(opt: Optimizer, spec: str) -> None:
  """Every variant builds a transformation and runs with a traced eta."""
  accepted = _checks.keyword_names(opt.factory)
  given = [n for n, _ in opt.fixed] + [n for n, _ in opt.swept]
  if "learning_rate" in given:
    _fail(f"has {spec!r}: learning_rate is the job's grid (config.lr_min, "
          f"config.lr_max, config.num_lrs), not a hyperparameter to set.")
  if accepted is not None:
    for name in given:
      if name not in accepted[0]:
        _fail(f"has {spec!r}: {opt.path} takes no hyperparameter {name!r}; it "
              f"takes {', '.join(accepted[0])}.")
    missing = [n for n in accepted[1] if n != "learning_rate" and n not in given]
    if missing:
      _fail(f"has {spec!r}: {opt.path} requires {', '.join(missing)}; give "
            f"{'them' if len(missing) > 1 else 'it'} as "
            f"{opt.path}({missing[0]}=...).")
  for variant in opt.variants():
    make = opt.make(variant)
    try:
      built = make(1e-3)
      _checks.transformation(built)
    except Exception as e:  # pylint: disable=broad-except
      where = f" with {describe(variant)}" if variant else ""
      _fail(f"has {spec!r}, which is not a transformation factory{where}: "
            f"building it with learning_rate=0.001 gave "
            f"{type(e).__name__}: {str(e).rstrip('.')}.")
    if opt.path in optim.names() and not opt.fixed and not opt.swept:
      continue  # the registry's own optimizers are tested to run traced
    failure = _traced_failure(make)
    if failure is not None:
      _fail(f"has {spec!r}, which fails ({failure}) when its learning rate is "
            f"a traced value, as the sweep over eta needs; a factory must "
            f"not branch in Python on learning_rate (optax.lion and optax.sgd "
            f"are examples that run traced).")


def parse(value: str | Sequence[str]) -> tuple[Optimizer, ...]:
  """The optimizers of ``config.optimizers``, each checked (module docstring).

  Raises:
    cli.ConfigError: one sentence naming the spec and what is wrong with it:
      the grammar, an unknown name, a module not found, an attribute
      missing, not a transformation factory, a hyperparameter the factory
      does not take, an empty or repeated swept list, a repeated label, or a
      factory that fails with a traced learning rate.
  """
  specs = split_specs(value) if isinstance(value, str) else [
      s.strip() for s in value if s.strip()]
  if not specs:
    _fail(f"must name at least one optimizer ({_GRAMMAR}; the built-ins are "
          f"{', '.join(optim.names())}), got {value!r}.")
  out, labels = [], {}
  for spec in specs:
    match = _SPEC.match(spec)
    if not match:
      _fail(f"has {spec!r}, which does not read {_GRAMMAR}.")
    label, path, args = match.group("label", "path", "args")
    if label is not None and not _LABEL.match(label):
      _fail(f"has the label {label!r}, which must be letters, digits and _ . "
            f"+ - (starting with a letter, digit or _).")
    try:
      factory = optim.get(path)
    except ValueError as e:
      why = str(e)
      prefix = f"optimizer {path!r}"
      if why.startswith(prefix + ": "):
        why = ": " + why[len(prefix) + 2:]
      elif why.startswith(prefix + " "):
        why = ", which " + why[len(prefix) + 1:]
      else:
        why = ": " + why
      _fail(f"has {spec!r}{why}")
    fixed, swept = [], []
    for name, v in _arguments(spec, args) if args is not None else []:
      if isinstance(v, list):
        if not v or any(v.count(x) > 1 for x in v):
          _fail(f"has {spec!r}: a swept value {name}={v!r} must list distinct "
                f"values, at least one.")
        swept.append((name, tuple(v)))
      else:
        fixed.append((name, v))
    names = [n for n, _ in fixed + swept]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
      _fail(f"has {spec!r}, which sets {', '.join(twice)} more than once.")
    label = label or re.sub(r"\s+", "", spec)
    if label in labels:
      twice = (f"{spec!r} twice" if labels[label] == spec else
               f"the label {label!r} twice ({labels[label]!r} and {spec!r})")
      _fail(f"has {twice}; give each optimizer its own label, label=path, "
            f"e.g. sgdm=optax.sgd(momentum=0.9).")
    labels[label] = spec
    opt = Optimizer(label=label, path=path, factory=factory,
                    fixed=tuple(fixed), swept=tuple(swept))
    _check(opt, spec)
    out.append(opt)
  return tuple(out)
