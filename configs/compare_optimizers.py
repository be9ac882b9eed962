"""The main job: gradient descent and its accelerations compared on the zoo.

Every optimizer runs on every problem for a log-spaced grid of learning rates
eta and several initial points x_0 (seeds, drawn by ``Problem.init``). Per
optimizer and problem, the learning rate with the lowest median final value
over seeds wins (the DeepOBS/AlgoPerf protocol; medians compared at 5
significant digits, ties to the smaller eta; a run that leaves a problem's
box below its f*, as on McCormick, counts as failed); the report compares
the winners: final gap to f*, steps and time to a target gap, divergence,
each a median with its interquartile range.

Command:  python experiments/compare_optimizers.py --workdir=runs/compare_optimizers
          (--config.optimizers='gd,adam,optax.lion,mine=./my_opt.py:make'
           --config.steps=500 ...; see wonderland/jobs/optimizers.py)
Runtime:  about 55 seconds on a 2-core CPU: 35 s for the 104 cells (one
          compiled program in which each cell is its own branch, so that a
          cell's numbers do not depend on the others: almost all of it
          compilation, see ``wonderland.batching.run_cells``), 17 s for the
          28 figures as PNG and PDF (--config.figure_formats=png saves 6 s); a
          rerun with the same workdir reads the finished cells back and only
          redraws.
Result:   summary.csv, results.jsonl, curves.csv, report.md, report.html and
          figures/ in the workdir. Expected (seed 0): adam and armijo_gd
          reach the target gap 1e-3 on 9 of the 13 problems, momentum and
          nesterov on 7, adagrad on 6, gd on 5, rmsprop on 4, normalized_gd
          on 2 (its steps keep the length eta, so it hovers about eta from
          the minimizer); armijo_gd wins 7 problems and leads the performance
          profile; no method reaches the target on Rosenbrock in 200 steps or
          on Rastrigin (a local minimum from most starts). 31 of the 104
          cells are edge cells (eta* at an end of the grid: adagrad at
          lr_max on 8 problems, and many lr_min cells where every eta ends
          in the same local minimum or diverges), each named at the end of
          the output. Adding optax.lion: it leaves McCormick's box in a
          quarter of its runs, which count as failed, and no longer wins
          McCormick (gap 0.76 at eta* = 0.031).
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
  # The optimizers, comma-separated specs [label=]path[(name=value, ...)]
  # (wonderland.jobs.optimizers): path is a built-in (gd, normalized_gd,
  # momentum, nesterov, adagrad, rmsprop, adam, armijo_gd), optax.<name>, or
  # the import path of any factory of learning_rate returning an
  # optax.GradientTransformation (optax.contrib.muon, mypkg.mod:make_lion,
  # ./my_lion.py:lion); name=value fixes a hyperparameter, name=[v1, v2]
  # sweeps it with eta; the label names it (the same factory twice needs two),
  # e.g. "adam,sgdm=optax.sgd(momentum=0.9),lion=optax.lion(b1=[0.9,0.95])".
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
  # dimension: the fastest), "optimizer", "problem", or "cell" (one program
  # per optimizer and problem: exact per-cell compile and run times; slowest).
  # It never changes a cell's numbers. A killed run loses at most the program
  # in flight.
  config.batching = "all"
  # Draw the figures and embed them in report.md and report.html.
  config.plots = True
  # Comma-separated formats of every figure: png (always; the reports show
  # it) and any of pdf, svg, written beside it (figures/loss_booth.pdf).
  config.figure_formats = "png" if quick else "png,pdf"
  # Which runs curves.csv holds, f(x_t) at every step: "best" (every seed at
  # eta*) or "all" (every eta and variant: 8 optimizers x 13 problems x 8
  # etas x 5 seeds x 200 steps is 830,000 rows, about 40 MB).
  config.curves = "best"
  config.lock()
  return config
