"""Stationary points, convexity and momentum on the zoo (§1.3.1, §1.3.2).

  python experiments/landscape.py [--config=configs/landscape.py]
      [--workdir=runs/landscape] [--platform=cpu|gpu|tpu]
"""

from pathlib import Path

from wonderland import cli

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "landscape", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  from wonderland.jobs import landscape  # pylint: disable=g-import-not-at-top

  landscape.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
