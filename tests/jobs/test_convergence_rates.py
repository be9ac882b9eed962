"""The convergence_rates job in-process: closed forms, the fit, keys, refusals.

The real entry point on the quick config runs in test_experiments.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from wonderland import cli
from wonderland.jobs import convergence_rates as cr

_SEED = "99999999999999999999999"
_FIT = "config.max_steps, config.fit_from and config.decrease leave "


@pytest.mark.parametrize(
    "flags, message",
    [
        ([f"--config.seed={_SEED}"],
         f"config.seed must be an integer in [0, 2**32) (jax.random keys are "
         f"uint32), got {_SEED}."),
        # Too few steps in the fit window, the float32 floor of decrease.
        (["--config.max_steps=2"],
         _FIT + "2 of gd's 2 steps at kappa=100 in the fit window"),
        (["--config.kappas=1.00001"],
         _FIT + "2 of gd's 2 steps at kappa=1.00001"),
        (["--config.fit_from=0.99", "--config.kappas=10"],
         _FIT + "1 of gd's 92 steps at kappa=10"),
        (["--config.decrease=1e-300"],
         "config.decrease must be in [1e-18, 1) (the errors are float32"),
        (["--config.fit_from=1.0"], "config.fit_from must be in [0, 1), got 1.0."),
        (["--config.kappas=1e16"],
         "config.kappas must be comma-separated numbers in (1, 1e+15], got "
         "'1e16'."),
        (["--config.kappas=10,0.5"],
         "config.kappas must be comma-separated numbers in (1, 1e+15], got "
         "'10,0.5'."),
        (["--config.kappas=10,10"],
         "config.kappas must list each entry once, got '10,10' (10.0 more "
         "than once)."),
        (["--config.methods=gd,gd"],
         "config.methods must list each entry once, got 'gd,gd'"),
        (["--config.methods=gd,adam"],
         "config.methods has an unknown name 'adam'; valid names are gd, "
         "heavy_ball, nesterov."),
        (["--config.dim=1"],
         "config.dim must be at least 2 (mu < L needs two eigenvalues), got 1."),
        (["--config.tolerance=0.0"],
         "config.tolerance must be a finite positive number, got 0.0."),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(refused, flags,
                                                          message):
  sentence = refused("convergence_rates", cr.run, flags)
  assert sentence.startswith(message), sentence


@pytest.mark.parametrize("name", ["gd", "heavy_ball", "nesterov"])
@pytest.mark.parametrize("kappa", [10.0, 1000.0])
def test_closed_form_rates_are_the_spectral_radius(name, kappa):
  """The theory column against the iteration matrices, eigenvalue by eigenvalue."""
  m = cr.method(name, kappa, 1.0)
  eta, lam = m.learning_rate, m.decay
  radius = 0.0
  for h in np.linspace(1.0, kappa, 2001):
    if name == "nesterov":
      # y_t = x_t + lam (x_t - x_{t-1}), x_{t+1} = (1 - eta h) y_t.
      a = np.array([[(1 - eta * h) * (1 + lam), -(1 - eta * h) * lam], [1, 0]])
    else:  # x_{t+1} = x_t - eta h x_t + lam (x_t - x_{t-1})
      a = np.array([[1 + lam - eta * h, -lam], [1, 0]])
    radius = max(radius, max(abs(np.linalg.eigvals(a))))
  # A double root at h = mu (and L) is sensitive to rounding: 1e-6.
  assert radius == pytest.approx(m.theory, rel=1e-6)


def test_method_refuses_unknown_names_and_mu_not_below_l():
  with pytest.raises(ValueError, match="name must be one of gd"):
    cr.method("adam", 10.0, 1.0)
  with pytest.raises(ValueError, match="need 0 < mu < lipschitz"):
    cr.method("gd", 1.0, 1.0)


def test_fit_rate_recovers_a_double_root():
  t = np.arange(1, 401)
  r = 0.97
  # log(3 + 2t) = log(2t) + O(1/t): the fit is exact up to that term.
  assert cr.fit_rate((3 + 2 * t) * r**t) == pytest.approx(r, rel=1e-4)
  # A plain straight-line fit would be off by log(t)/t: ~2.3e-3 here.
  line = np.exp(np.polyfit(t[200:], np.log((3 + 2 * t) * r**t)[200:], 1)[0])
  assert abs(line - r) > 1e-3
  assert cr.fit_rate(5 * r**t * (1 + 0.01 * np.cos(t))) == pytest.approx(
      r, rel=1e-4)
  with pytest.raises(ValueError, match="fit_from must be in"):
    cr.fit_rate(r**t, fit_from=1.0)
  with pytest.raises(ValueError, match="at least 3 positive"):
    cr.fit_rate(np.zeros(10))


def test_kappa_keys_keep_the_old_derivation_below_2_32(tmp_path, quick_config):
  key = jax.random.key(0)
  same = jax.random.key_data
  np.testing.assert_array_equal(same(cr.kappa_key(key, 10.0)),
                                same(jax.random.fold_in(key, 10)))
  big = same(cr.kappa_key(key, 5e9))
  assert not np.array_equal(big, same(cr.kappa_key(key, 6e9)))
  rows = cr.run(quick_config("convergence_rates", kappas="5e9", methods="gd",
                             dim=2, max_steps=20), str(tmp_path))
  assert [(r["method"], r["kappa"], r["steps"]) for r in rows] == [
      ("gd", 5e9, 20)]
  assert (tmp_path / "config.json").is_file()


def test_a_fit_that_fails_at_run_time_is_one_sentence(tmp_path, monkeypatch,
                                                      quick_config):
  (tmp_path / "config.json").write_text("previous\n")

  def no_fit(errors, *, fit_from):
    raise ValueError("errors must hold at least 3 positive finite values for "
                     "t >= 0.5 * 4, got 2.")

  monkeypatch.setattr(cr, "fit_rate", no_fit)
  with pytest.raises(
      cli.ConfigError,
      match=r"^config.max_steps, config.fit_from and config.decrease leave no "
      r"rate to fit for gd at kappa=10 \(errors must hold at least 3 .*got "
      r"2\)\.$"):
    cr.run(quick_config("convergence_rates", methods="gd", kappas="10", dim=2),
           str(tmp_path))
  assert (tmp_path / "config.json").read_text() == "previous\n"
