"""compare_optimizers.py on the real-data problems, full batch.

Logistic regression on scikit-learn's breast-cancer set (convex) and a small
MLP on its digits set (non-convex), each as one deterministic objective over
the whole training set. The same protocol as the default config: a
learning-rate grid per optimizer, the best eta by the median over seeds.

Command:  python experiments/compare_optimizers.py \
            --config=configs/real_data.py --workdir=runs/real_data
Runtime:  about 35 seconds on a 2-core CPU (needs scikit-learn).
Result:   the files of compare_optimizers in the workdir. Expected (seed 0):
          on breast cancer (f* known) every optimizer gets within 1e-2 of f*
          in at most ~200 steps (rmsprop, the slowest, in 205), armijo_gd (15
          steps) and gd with eta = 10 (19) first; on digits (f* unknown: gaps
          are to the lowest loss any run reached) armijo_gd gets there first
          (43 steps), then rmsprop (65) and adagrad (79), and plain gd last
          (255): armijo_gd wins both problems. 5 of the 16 cells are edge
          cells at lr_max = 10 (gd and armijo_gd on breast cancer; momentum,
          nesterov and armijo_gd on digits).
"""

import importlib.util
from pathlib import Path

# The base config is the sibling file (config files are loaded by path).
_spec = importlib.util.spec_from_file_location(
    "_compare_optimizers_config", Path(__file__).with_name("compare_optimizers.py")
)
compare_optimizers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_optimizers)


def get_config(variant: str = ""):
  """The real-data config; ``variant="quick"`` is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  quick = variant == "quick"
  # Every key is documented in compare_optimizers.py; these differ.
  config = compare_optimizers.get_config(variant)
  config.unlock()
  config.optimizers = "gd" if quick else compare_optimizers.OPTIMIZERS
  # Full-batch losses of ``wonderland.problems`` (they load scikit-learn data).
  config.problems = (
      "logistic_breast_cancer" if quick else "logistic_breast_cancer,mlp_digits"
  )
  config.lr_min = 1e-3
  config.lr_max = 10.0
  config.num_lrs = 2 if quick else 5
  # Initial weights per eta (Problem.init).
  config.num_seeds = 2 if quick else 3
  config.steps = 20 if quick else 300
  # f* is known for breast cancer (Newton's method in float64), not for
  # digits: there gaps are measured from the lowest loss any run reached.
  config.target_gap = 1e-2
  # One program per optimizer: the switch over optimizers would run Armijo's
  # backtracking loop (f on the whole data set, up to 30 times a step) for
  # every run of the batch.
  config.batching = "optimizer"
  config.lock()
  return config
