"""Linearization of §1.2: the notes' numbers and Taylor's second-order error.

  python experiments/taylor.py [--config=configs/taylor.py] [--workdir=runs/taylor]
"""

from pathlib import Path

from wonderland import cli
from wonderland.jobs import taylor

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "taylor", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  taylor.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
