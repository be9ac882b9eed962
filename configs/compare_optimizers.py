"""The main job: gradient descent and its accelerations compared on the zoo.

Every optimizer runs on every problem for a log-spaced grid of learning rates
eta and several initial points x_0 (seeds, drawn by ``Problem.init``). Per
optimizer and problem, the learning rate with the lowest median final value
over seeds wins (the DeepOBS/AlgoPerf protocol); the report compares the
winners: final gap to f*, steps and time to a target gap, divergence.

Command:  python experiments/compare_optimizers.py --workdir=runs/compare_optimizers
          (--config.optimizers=gd,adam,optax.lion --config.steps=500 ...)
Runtime:  about 25 seconds on a 2-core CPU, compilation included (all cells
          in one compiled program, see ``batching``); a rerun with the same
          workdir reads the finished cells back and only redraws the figures.
Result:   summary.csv, results.jsonl, report.md and figures/ in the workdir.
          Expected (seed 0): adam and armijo_gd reach the target gap 1e-3
          on 9 of the 13 problems, momentum and nesterov on 7, gd on 5,
          normalized_gd on 2 (its steps keep the length eta, so it hovers
          about eta from the minimizer); armijo_gd leads the performance
          profile; no method reaches the target on Rosenbrock in 200 steps
          or on Rastrigin (a local minimum from most starts).
"""

import ml_collections

# A dozen 2-D problems of the zoo (``wonderland.problems.two_d()``) and the
# ill-conditioned quadratic.
PROBLEMS = (
    "quadratic,booth,matyas,rosenbrock,beale,himmelblau,rastrigin,ackley,"
    "styblinski_tang,three_hump_camel,six_hump_camel,goldstein_price,mccormick"
)
OPTIMIZERS = "gd,normalized_gd,momentum,nesterov,adagrad,rmsprop,adam,armijo_gd"


def get_config(variant: str = ""):
  """The default config; ``variant="quick"`` (``--config=...:quick``) is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  quick = variant == "quick"
  config = ml_collections.ConfigDict()
  # Comma-separated distinct optimizer names: gd, normalized_gd, momentum,
  # nesterov, adagrad, rmsprop, adam, armijo_gd, or any optax optimizer as
  # optax.<name> (e.g. optax.lion or optax.lbfgs) that runs with a traced
  # eta. Each runs with its default hyperparameters but eta.
  config.optimizers = "gd,momentum,adam" if quick else OPTIMIZERS
  # Comma-separated distinct problem names of ``wonderland.problems.names()``.
  config.problems = "quadratic,rosenbrock" if quick else PROBLEMS
  # Condition number kappa = L / mu of the problem named "quadratic".
  config.kappa = 100.0
  # Dimension of the problem named "quadratic" (2 gives it a contour plot).
  config.quadratic_dim = 2
  # Rotate the quadratic's axes at random (key: seed), so that the diagonal
  # preconditioners (adagrad, rmsprop, adam) cannot exploit them.
  config.quadratic_rotated = True
  # The learning-rate grid: num_lrs values log-spaced from lr_min to lr_max,
  # both positive normal float32 numbers (1.2e-38 to 3.4e38).
  config.lr_min = 1e-3
  config.lr_max = 3.0
  config.num_lrs = 3 if quick else 8
  # Initial points x_0 per (optimizer, problem, eta), drawn from Problem.init
  # with jax.random.key(seed), seed an integer in [0, 2**32); the same
  # points for every optimizer.
  config.num_seeds = 2 if quick else 5
  config.seed = 0
  # Optimizer steps per run.
  config.steps = 30 if quick else 200
  # A run reaches the target at the first t with f(x_t) - f* <= target_gap
  # (finite, > 0).
  config.target_gap = 1e-3
  # Which cells share a compiled program: "all" (one program per problem
  # dimension: the fastest), "optimizer", "problem", or "cell" (one sweep per
  # optimizer and problem: exact per-cell compile and run times; slowest).
  # A killed run loses at most the program in flight.
  config.batching = "all"
  # Draw the figures (PNG) and embed them in report.md.
  config.plots = True
  config.lock()
  return config
