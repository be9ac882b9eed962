"""The edge of stability (Cohen et al., 2021): sharpness rises to 2/eta, stays.

Full-batch gradient descent on a tanh MLP 40-100-100-10 with the mean squared
error (one-hot targets) on the first 500 MNIST-1D training signals, at three
step sizes eta = 2/12, 2/15, 2/18 (their edges 2/eta lie above the initial
sharpness, 4.33), plus momentum (lambda = 0.9, eta = 0.19: edge
(2 + 2 lambda)/eta = 20) and adam (beta_1 = 0.9, eta = 1e-3: its
preconditioned sharpness against 38/eta = 38,000), 2,000 steps each. The
sharpness lambda_max of the Hessian is measured every 20 steps inside the
compiled runs (warm-started Lanczos, ``record=("value", "sharpness")``). See ``wonderland/jobs/edge_of_stability.py``
for the method and the checks.

Command:  python experiments/edge_of_stability.py --workdir=runs/edge_of_stability
Runtime:  about 35 seconds on a 2-core CPU.
Result:   edge_of_stability.csv (step, eta, optimizer, loss, sharpness,
          threshold; the sharpness every 20 steps, adam's preconditioned),
          edge_of_stability.png (Figure 1's layout), report.md, config.json.
          For every gradient descent step size the three checks hold:

            2/eta  crossing  rise   median / (2/eta)  loss: crossing -> end
            12     step 360  +216%  1.054             0.302 -> 0.056
            15     step 560  +279%  1.039             0.275 -> 0.087
            18     step 940  +351%  1.032             0.228 -> 0.106

          (rise >= 20% before the sharpness first reaches 2/eta; its median
          from then on within [0.9, 1.3] x 2/eta; the loss lower at the end
          than at the crossing). Momentum's sharpness settles at
          (2 + 2 lambda)/eta (median 0.98 x 20), adam's preconditioned
          sharpness at 38/eta (median 1.00 x 38,000).

Variants: ``:quick`` (a 40-32-32-10 MLP on 100 signals, 600 steps, edges 6,
8, 10: the same three checks hold, in about 10 seconds, for the tests) and
``:paper`` (issue #17's size: 40-200-200-10 on 1,000 signals, eta = 2/30,
2/34, 2/38, 5,000 steps; about 6 minutes: the checks hold there too, with
crossings at steps 2450, 3150, 4150 and medians 1.020, 1.016, 1.008 x 2/eta).
"""

import ml_collections

VARIANTS = ("", "quick", "paper")


def get_config(variant: str = ""):
  """The default config; ``:quick`` is for tests, ``:paper`` is issue #17's size."""
  if variant not in VARIANTS:
    raise ValueError(
        f"config variant must be 'quick', 'paper' or empty, got {variant!r}.")
  quick, paper = variant == "quick", variant == "paper"
  config = ml_collections.ConfigDict()
  # The first n_examples of MNIST-1D's 4,000 training signals (at most 4000).
  config.n_examples = 100 if quick else 1000 if paper else 500
  # Hidden width w of the tanh MLP 40-w-w-10.
  config.width = 32 if quick else 200 if paper else 100
  # Comma-separated distinct edges 2/eta of the gradient descent runs (eta =
  # 2/edge), each above the initial sharpness (checked).
  config.gd_edges = "6,8,10" if quick else "30,34,38" if paper else "12,15,18"
  # Momentum (§1.3.2) at one step size eta > 0, with lambda in [0, 1): its
  # edge (2 + 2 lambda)/eta must lie above the initial sharpness (checked).
  config.momentum_eta = 0.32 if quick else 0.095 if paper else 0.19
  config.momentum_decay = 0.9
  # Adam at one step size eta > 0 with beta_1 in [0, 1) (beta_2 = 0.999, eps =
  # 1e-8): its edge is (2 + 2 beta_1)/((1 - beta_1) eta).
  config.adam_eta = 3e-3 if quick else 5e-4 if paper else 1e-3
  config.adam_b1 = 0.9
  # Steps of every run, a multiple of sharpness_every.
  config.steps = 600 if quick else 5000 if paper else 2000
  # The sharpness is measured after every sharpness_every steps ...
  config.sharpness_every = 10 if quick else 25 if paper else 20
  # ... in the compiled run, by sharpness_iters Lanczos steps on
  # Hessian-vector products, warm-started from the previous measurement.
  # 20 agree with a cold power iteration run to a relative change of 1e-6
  # within 5e-4 (median 1e-5) along the default 2/15 run.
  config.sharpness_iters = 20
  # Seed of the initialisation, an integer in [0, 2**32).
  config.seed = 0
  config.lock()
  return config
