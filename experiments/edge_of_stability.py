"""The edge of stability: full-batch descent drives the sharpness to 2/eta.

  python experiments/edge_of_stability.py [--config=configs/edge_of_stability.py]
      [--workdir=runs/edge_of_stability]
"""

from pathlib import Path

from wonderland import cli
from wonderland.jobs import edge_of_stability

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "edge_of_stability", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  edge_of_stability.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
