"""Stationary points, convexity and momentum on the zoo (§1.3.1, §1.3.2).

  python experiments/landscape.py [--config=configs/landscape.py]
      [--workdir=runs/landscape] [--platform=cpu|gpu|tpu]
"""

from pathlib import Path

from wonderland import experiment

_CONFIG, _WORKDIR, _PLATFORM = experiment.define_flags(
    "landscape", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  experiment.set_platform(_PLATFORM.value)
  from wonderland.jobs import landscape  # pylint: disable=g-import-not-at-top

  landscape.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  experiment.run_app(main)
