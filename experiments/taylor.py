"""Linearization of §1.2: the notes' numbers and Taylor's second-order error.

  python experiments/taylor.py [--config=configs/taylor.py] [--workdir=runs/taylor]
"""

from pathlib import Path

from wonderland import experiment
from wonderland.jobs import taylor

_CONFIG, _WORKDIR, _PLATFORM = experiment.define_flags(
    "taylor", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  experiment.set_platform(_PLATFORM.value)
  taylor.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  experiment.run_app(main)
