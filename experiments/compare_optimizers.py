"""The main job: §1.3's optimizers compared on the zoo of test problems.

  python experiments/compare_optimizers.py [--config=configs/compare_optimizers.py]
      [--config.optimizers='gd,adam,optax.lion,mine=./my_opt.py:make(b1=[0.9,0.95])']
      [--workdir=runs/compare_optimizers] [--platform=cpu|gpu|tpu]
"""

from pathlib import Path

from wonderland import cli

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "compare_optimizers", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  from wonderland.jobs import compare  # pylint: disable=g-import-not-at-top

  compare.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
