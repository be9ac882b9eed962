"""Minibatch training judged on held-out data: optimizers x training tasks.

  python experiments/train.py [--config=configs/train.py[:paper]] [--workdir=runs/train]
      [--config.optimizers='adam,sgdm=optax.sgd(momentum=0.9),mine=./my_opt.py:make']
"""

from pathlib import Path

from wonderland import cli
from wonderland.jobs import train

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "train", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  train.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
