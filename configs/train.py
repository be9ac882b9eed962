"""Minibatch training on MNIST-1D: optimizers tuned on validation, tested.

The three MNIST-1D tasks of Greydanus and Kobak, "Scaling down deep learning
with MNIST-1D" (ICML 2024): a linear model, a 40-100-100-10 ReLU MLP and the
paper's small 1-D CNN, trained with batches of 100 (``wonderland.jobs.train``
describes the protocol). MNIST-1D is generated procedurally by the ``mnist1d``
package (``pip install -e ".[data]"``).

Default: gd, momentum, rmsprop and adam, 5 learning rates x 3 seeds, 1,500
steps, every task (the "configs/mnist1d.py" of issue #14). Any optimizer of
compare_optimizers' spec runs here too (--config.optimizers=...).
  Command:  python experiments/train.py --config=configs/train.py
  Runtime:  about 3 minutes on a 2-core CPU; a rerun with the same workdir
            reads finished (task, optimizer) results back.
  Result:   summary.csv, results.jsonl, curves.csv, report.md, report.html
            and figures/ (PNG and PDF) in --workdir (default runs/train);
            which optimizer wins depends on the budget.

``:paper``: the paper's protocol with Adam (batch 100, 6,000 steps; the
learning rate tuned on the validation split among 5 values from 3e-4 to
3e-2, around the paper's 1e-2; 3 seeds).
  Command:  python experiments/train.py --config=configs/train.py:paper
  Runtime:  a few minutes on a 2-core CPU.
  Result:   median test accuracies near the paper's 32% (logistic), 68%
            (MLP) and 94% (CNN); the measured table is in the README.

``:quick``: a seconds-long run for the tests.
"""

import ml_collections


def get_config(variant: str = ""):
  """The default config; ``paper`` and ``quick`` variants (``...py:paper``)."""
  if variant not in ("", "paper", "quick"):
    raise ValueError(
        f"config variant must be 'paper', 'quick' or empty, got {variant!r}.")
  config = ml_collections.ConfigDict()
  # Comma-separated training tasks of wonderland.problems (each has loss,
  # data and evaluate).
  config.tasks = "logistic_mnist1d,mlp_mnist1d,cnn_mnist1d"
  # The optimizers, as for compare_optimizers (wonderland.jobs.optimizers):
  # comma-separated specs [label=]path[(name=value, ...)], path a built-in,
  # optax.<name> or an import path (mypkg.mod:make_lion, ./my_lion.py:lion);
  # name=[v1, v2] sweeps a hyperparameter with eta (one sweep per value).
  config.optimizers = "gd,momentum,rmsprop,adam"
  # The learning-rate grid: num_lrs log-spaced values in [lr_min, lr_max].
  config.lr_min = 1e-3
  config.lr_max = 1.0
  config.num_lrs = 5
  # Seeds: seed s starts from init(fold_in(key(seed), 0))[s] and draws its
  # minibatches with fold_in(fold_in(key(seed), 1), s), for every optimizer.
  config.num_seeds = 3
  config.seed = 0
  # Steps of every run, the minibatch size, and how often (in steps) every
  # run is evaluated on its train, validation and test splits.
  config.steps = 1500
  config.batch_size = 100
  config.eval_every = 250
  # B > 0: each device computes a sweep's runs in blocks of B (here the seeds
  # of one learning rate), one after another, each block one program from x0
  # to the end (wonderland.sweep's block_size), so a run's numbers do not
  # change with num_lrs or with the device count. 0: each device vectorizes
  # over all of its runs at once (on a GPU, the faster choice).
  config.block_size = 3
  # Per-feature standardisation fitted on the train split (the paper feeds
  # the raw signals).
  config.standardize = False
  # AlgoPerf's validation target per task: the best median validation
  # accuracy any optimizer reaches, less this margin (an accuracy in [0, 1)).
  config.target_margin = 0.02
  # Comma-separated formats of every figure: png (always) and any of pdf, svg.
  config.figure_formats = "png,pdf"
  if variant == "paper":
    config.optimizers = "adam"
    config.lr_min = 3e-4
    config.lr_max = 3e-2
    config.num_lrs = 5
    config.steps = 6000
    config.eval_every = 500
  elif variant == "quick":
    config.figure_formats = "png"
    config.tasks = "logistic_mnist1d,mlp_mnist1d"
    config.optimizers = "gd,adam"
    config.num_lrs = 2
    config.num_seeds = 2
    config.steps = 40
    config.eval_every = 20
  config.lock()
  return config
