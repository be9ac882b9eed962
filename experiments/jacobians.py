"""Forward vs reverse mode Jacobians and mode="auto" (§1.2.2).

  python experiments/jacobians.py [--config=configs/jacobians.py]
      [--workdir=runs/jacobians] [--platform=cpu|gpu|tpu]
"""

from pathlib import Path

from wonderland import cli

_CONFIG, _WORKDIR, _PLATFORM = cli.define_flags(
    "jacobians", Path(__file__).resolve().parents[1] / "configs"
)


def main(argv):
  del argv
  cli.set_platform(_PLATFORM.value)
  from wonderland.jobs import jacobians  # pylint: disable=g-import-not-at-top

  jacobians.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_app(main)
