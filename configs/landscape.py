"""The landscape of §1.3.1: stationary points, their kinds, convexity, momentum.

For each problem of the zoo, a multi-start damped Newton search on
grad f(x) = 0 finds stationary points and classifies them by the Hessian's
eigenvalues (minimum, maximum, saddle, degenerate), and sampled chords test
convexity. Then the book's exercise f = sin(x1) cos(x2) + sin(x1/2) cos(x2/2)
on [0, 10]^2: its contours with the points found, gradient-descent and
momentum paths from several starts, and ||grad f(x_t)|| -> 0 (gradient
descent only promises a stationary point). Last, f(x) = x sin(2x): from x_0 on
the slope of a tall maximum, plain gradient descent stops in the first local
minimum; momentum with lambda = 0.3 stops there too, lambda = 0.9 carries the
iterate past it.

Command:  python experiments/landscape.py --workdir=runs/landscape
Runtime:  about 40 seconds on a 2-core CPU (one compiled search per problem).
Result:   landscape.csv (a row per problem: the kinds found, the convexity
          violation fraction, whether the global minimum was found),
          points.csv, report.md, sin_cos.png and x_sin_2x.png. Expected: no
          chord violation on the convex problems (quadratic, booth, matyas),
          violations on all others; Himmelblau's 4 minima, 1 maximum and 4
          saddles; on x sin 2x gradient descent and lambda = 0.3 stop at
          x = 2.457 and lambda = 0.9 passes it to x = 0.
"""

import ml_collections

# The analytic problems of the zoo (``wonderland.problems``); the real-data
# ones are too large for the d x d Hessians of the search.
PROBLEMS = (
    "quadratic,booth,matyas,rosenbrock,beale,himmelblau,rastrigin,ackley,"
    "styblinski_tang,three_hump_camel,six_hump_camel,goldstein_price,"
    "mccormick,saddle,monkey_saddle,sin_cos,x_sin_2x"
)


def get_config(variant: str = ""):
  """The default config; ``variant="quick"`` (``--config=...:quick``) is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  quick = variant == "quick"
  config = ml_collections.ConfigDict()
  # Comma-separated problem names (dimension at most 10).
  config.problems = "quadratic,himmelblau,sin_cos,x_sin_2x" if quick else PROBLEMS
  # Starts of the multi-start stationary-point search, per problem.
  config.n_starts = 64 if quick else 256
  # Damped Newton steps per start.
  config.n_steps = 50 if quick else 100
  # Chords (x1, x2) of the sampled convexity test, 8 points on each.
  config.convexity_pairs = 128 if quick else 1024
  # The sin_cos figure: paths from this many starts (uniform in [2.5, 7.5]^2) ...
  config.sin_cos_starts = 2 if quick else 3
  # ... of this many steps, for gradient descent with step size eta ...
  config.sin_cos_steps = 60 if quick else 150
  config.sin_cos_lr = 0.4
  # ... and for momentum (§1.3.2) with the same eta and this lambda.
  config.sin_cos_decay = 0.7
  # The x_sin_2x figure: the start x_0, the step size eta, the steps, and the
  # comma-separated distinct momentum lambdas drawn beside plain gradient
  # descent. x_0 lies in x_sin_2x's box [-6, 6].
  config.x_sin_2x_x0 = 3.8
  config.x_sin_2x_lr = 0.05
  config.x_sin_2x_steps = 300
  config.x_sin_2x_decays = "0.3,0.9"
  # Seed of the searches, the chords and the sin_cos starts, in [0, 2**32).
  config.seed = 0
  config.lock()
  return config
