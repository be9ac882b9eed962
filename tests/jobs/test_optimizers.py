"""The optimizer spec both jobs read: grammar, import paths, checks, errors."""

from __future__ import annotations

import textwrap

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wonderland import cli
from wonderland import optim
from wonderland.jobs import optimizers
from wonderland.jobs import train
from wonderland.jobs.compare import config as compare_config

_MINE = '''
import optax

def make_lion(learning_rate, b1=0.9, weight_decay=0.0):
  """A researcher's Lion variant."""
  return optax.lion(learning_rate, b1=b1, weight_decay=weight_decay)

def not_a_factory(learning_rate):
  return 3

def refuses(learning_rate, b1=0.9):
  if b1 > 1:
    raise ValueError("b1 must be at most 1")
  return optax.sgd(learning_rate)

def branches(learning_rate):
  if learning_rate > 1.0:  # Python control flow on a traced eta
    raise ValueError("too large")
  return optax.sgd(learning_rate)

def no_eta(step_size):
  return optax.sgd(step_size)

class NotAFunction:
  pass
'''


@pytest.fixture
def mine(tmp_path, monkeypatch):
  """A module ``mine_opt`` on sys.path; returns its file."""
  path = tmp_path / "mine_opt.py"
  path.write_text(textwrap.dedent(_MINE))
  monkeypatch.syspath_prepend(str(tmp_path))
  return path


def _step(opt, lr=0.1):
  """x_1 from x_0 = (1, -2) on f(x) = ||x||^2 / 2 (gradient x)."""
  x = jnp.array([1.0, -2.0])
  updates, _ = opt.update(x, opt.init(x), x)
  return np.asarray(optax.apply_updates(x, updates))


def test_labels_fixed_and_swept_hyperparameters():
  specs = optimizers.parse(
      "gd, sgdm=optax.sgd(momentum=0.9), sgd=optax.sgd,"
      "adam(b1=[0.8, 0.9], eps=1e-6)")
  assert [o.label for o in specs] == [
      "gd", "sgdm", "sgd", "adam(b1=[0.8,0.9],eps=1e-6)"]
  gd, sgdm, sgd, adam = specs
  assert gd.factory is optim.gd and gd.make() is optim.gd
  assert sgdm.factory is sgd.factory is optax.sgd
  assert sgdm.fixed == (("momentum", 0.9),) and sgd.fixed == ()
  # The same factory twice under two labels, each with its own numbers.
  np.testing.assert_allclose(_step(sgdm.make()(0.1)),
                             _step(optax.sgd(0.1, momentum=0.9)))
  assert adam.swept == (("b1", (0.8, 0.9)),)
  assert adam.variants() == [{"b1": 0.8}, {"b1": 0.9}]
  x = jnp.array([1.0, -2.0])
  for variant in adam.variants():
    ours, theirs = adam.make(variant)(0.1), optim.adam(0.1, eps=1e-6,
                                                       **variant)
    s1, s2 = ours.init(x), theirs.init(x)
    for _ in range(3):  # b1 shows from the second step on
      u1, s1 = ours.update(x, s1, x)
      u2, s2 = theirs.update(x, s2, x)
      np.testing.assert_allclose(u1, u2, rtol=1e-6)
  assert optimizers.describe({"b1": 0.9, "nesterov": True}) == (
      "b1=0.9,nesterov=True")
  # Commas inside brackets and strings do not split specs.
  assert optimizers.split_specs("a(b=[1,2]),c(d='x,y'),e") == [
      "a(b=[1,2])", "c(d='x,y')", "e"]


def test_any_factory_by_import_path(mine):
  for path in ("mine_opt:make_lion", "mine_opt.make_lion",
               f"{mine}:make_lion"):
    (spec,) = optimizers.parse(f"lion={path}(weight_decay=0.0)")
    assert spec.factory.__name__ == "make_lion" and spec.label == "lion"
    np.testing.assert_allclose(_step(spec.make()(0.1)),
                               _step(optax.lion(0.1, weight_decay=0.0)))
  # A file is loaded once: the same function object for the same path.
  assert optim.get(f"{mine}:make_lion") is optim.get(f"{mine}:make_lion")
  # Any depth of optax, by its dotted path.
  assert optim.get("optax.contrib.muon") is optax.contrib.muon
  assert optim.get("optax.lion") is optax.lion


@pytest.mark.parametrize(
    "spec, message",
    [
        ("myopt.lion", "has 'myopt.lion': no module named 'myopt' (is it "
         "installed, or on PYTHONPATH?"),
        ("myopt:lion", "has 'myopt:lion': no module named 'myopt'"),
        ("mine_opt:make_lionn", "has 'mine_opt:make_lionn': 'mine_opt' has no "
         "attribute 'make_lionn'."),
        ("optax.contrib.nope", "has 'optax.contrib.nope': 'optax.contrib' has "
         "no attribute 'nope'."),
        ("./no/such/file.py:lion", "has './no/such/file.py:lion': no file "
         "'./no/such/file.py'."),
        ("mine_opt:not_a_factory", "has 'mine_opt:not_a_factory', which is "
         "not a transformation factory: "
         "mine_opt:not_a_factory(learning_rate=0.001) returned a int, not an "
         "optax.GradientTransformation."),
        ("mine_opt:NotAFunction", "has 'mine_opt:NotAFunction', which is not "
         "a transformation factory: it is a type, not a function of "
         "learning_rate"),
        ("mine_opt:no_eta", "has 'mine_opt:no_eta', which is not a "
         "transformation factory: it takes no learning_rate (its arguments "
         "are step_size)."),
        ("mine_opt:refuses(b1=[0.9,2.0])", "has "
         "'mine_opt:refuses(b1=[0.9,2.0])', which is not a transformation "
         "factory with b1=2.0: building it with learning_rate=0.001 gave "
         "ValueError: b1 must be at most 1."),
        ("mine_opt:branches", "has 'mine_opt:branches', which fails "
         "(TracerBoolConversionError) when its learning rate is a traced "
         "value"),
        ("optax.sgd(momentun=0.9)", "has 'optax.sgd(momentun=0.9)': optax.sgd "
         "takes no hyperparameter 'momentun'; it takes learning_rate, "
         "momentum, nesterov"),
        ("adam(learning_rate=0.1)", "has 'adam(learning_rate=0.1)': "
         "learning_rate is the job's grid"),
        ("adam(b1=[])", "has 'adam(b1=[])': a swept value b1=[] must list "
         "distinct values, at least one."),
        ("adam(b1=0.9, b1=[0.8])", "has 'adam(b1=0.9, b1=[0.8])', which "
         "sets b1 more than once."),
        ("optax.sgd(0.9)", "has 'optax.sgd(0.9)', whose arguments are not "
         "name=value pairs of Python literals"),
        ("gd,gd", "has 'gd' twice; give each optimizer its own label, "
         "label=path, e.g. sgdm=optax.sgd(momentum=0.9)."),
        ("a=gd,a=adam", "has the label 'a' twice ('a=gd' and 'a=adam')"),
        ("my opt=gd", "has the label 'my opt', which must be letters"),
        ("sgdd", "has 'sgdd': unknown optimizer 'sgdd'; valid names are: gd, "
         "normalized_gd, momentum, nesterov, adagrad, rmsprop, adam, "
         "armijo_gd, optax.<name>."),
        ("optax.nope", "has 'optax.nope': 'optax.nope' is not an optax "
         "optimizer taking learning_rate"),
        ("", "must name at least one optimizer"),
    ],
)
def test_a_bad_spec_is_one_sentence_that_names_what_is_wrong(mine, spec,
                                                             message):
  with pytest.raises(cli.ConfigError) as info:
    optimizers.parse(spec)
  sentence = str(info.value)
  assert sentence.startswith("config.optimizers " + message), sentence
  assert "\n" not in sentence and sentence.endswith("."), sentence


def test_both_jobs_read_the_same_spec(quick_config, mine):
  spec = "adam,sgdm=optax.sgd(momentum=[0.5,0.9]),lion=mine_opt:make_lion"
  plan = compare_config.validate(quick_config("compare_optimizers",
                                              optimizers=spec))
  trained = train.validate(quick_config("train", optimizers=spec))
  assert plan.labels == tuple(o.label for o in trained.optimizers) == (
      "adam", "sgdm", "lion")
  assert [o.variants() for o in plan.optimizers] == [
      o.variants() for o in trained.optimizers]
