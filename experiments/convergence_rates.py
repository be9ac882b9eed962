"""Measured linear rates of gd, heavy ball and Nesterov against theory (§1.3.2).

  python experiments/convergence_rates.py [--config=configs/convergence_rates.py]
      [--workdir=runs/convergence_rates] [--platform=cpu|gpu|tpu]
"""

from pathlib import Path

from wonderland import cli

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "convergence_rates", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  from wonderland.jobs import convergence_rates  # pylint: disable=g-import-not-at-top

  convergence_rates.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
