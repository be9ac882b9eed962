"""Linear convergence rates on quadratics: measured against the closed forms.

On f(x) = 1/2 x^T A x with the eigenvalues of A evenly spaced in [mu, L] =
[1, kappa] (``problems.get("quadratic", kappa=..., dim=...)``, randomly
rotated), each method contracts ||x_t - x*|| like r^t, with

  gd, eta = 2/(L + mu):                      r = (kappa - 1)/(kappa + 1)
  heavy ball (§1.3.2 momentum), Polyak's
    eta = 4/(sqrt L + sqrt mu)^2,
    lambda = ((sqrt kappa - 1)/(sqrt kappa + 1))^2:  r = (sqrt kappa - 1)/(sqrt kappa + 1)
  Nesterov, eta = 1/L,
    lambda = (sqrt kappa - 1)/(sqrt kappa + 1):      r = 1 - 1/sqrt kappa

The measured r is fitted on the tail of the run (see the job's docstring).

Command:  python experiments/convergence_rates.py --workdir=runs/convergence_rates
Runtime:  about 10 seconds on a 2-core CPU.
Result:   rates.csv (method, kappa, measured, theory): every measured rate is
          within 0.13% of theory (the worst: nesterov at kappa = 10, 0.129%;
          the check is 2%); rates.png shows
          ||x_t - x*|| on a log scale with the theoretical slopes dashed.
"""

import ml_collections


def get_config(variant: str = ""):
  """The default config; ``variant="quick"`` (``--config=...:quick``) is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  quick = variant == "quick"
  config = ml_collections.ConfigDict()
  # Comma-separated distinct condition numbers kappa = L / mu, each in
  # (1, 1e15] (above, gd's rate (kappa - 1)/(kappa + 1) rounds to 1).
  config.kappas = "100" if quick else "10,100,1000"
  # Comma-separated distinct methods: gd, heavy_ball, nesterov.
  config.methods = "gd,heavy_ball,nesterov"
  # Dimension of the quadratic.
  config.dim = 10 if quick else 20
  # Each run lasts until theory predicts ||x_t - x*|| / ||x_0 - x*|| <=
  # decrease, but at most max_steps steps. decrease >= 1e-18: the errors are
  # float32, whose squares underflow below ~1e-19 (the fit then goes wrong).
  config.decrease = 1e-8 if quick else 1e-12
  config.max_steps = 20000
  # The rate is fitted on t >= fit_from * steps (the transient is left out);
  # max_steps, fit_from and decrease must leave at least 3 steps to fit.
  config.fit_from = 0.5
  # Measured and theoretical rates must agree within this relative tolerance.
  config.tolerance = 0.02
  # Seed of the rotation of A and of x_0 (drawn in the quadratic's box), an
  # integer in [0, 2**32).
  config.seed = 0
  config.lock()
  return config
