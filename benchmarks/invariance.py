"""Does a cell's result depend on what else the program computes? And at what cost is it not?

Compares ``wonderland.batching.run_batch`` (every cell in one switched sweep)
with ``wonderland.batching.run_cells`` (each cell its own block) on cells
that amplify one float32 rounding (adam and sgd on ackley and beale, among
momentum and gd on rosenbrock and booth):

1. the program's other cells: each cell computed alone vs in the batch;
2. the device count: the same batch on 1, 3 and 8 simulated CPU devices
   (subprocesses with ``--xla_force_host_platform_device_count``);
3. FMA contraction: (1) again in a subprocess with ``--xla_cpu_max_isa=AVX``
   (no FMA instructions);
4. the cost: compile and run seconds of both on the compare job's default
   problems and optimizers (104 cells), side by side in one process.

Usage:  python benchmarks/invariance.py            (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

STEPS = 200


def _setup():
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from wonderland import optim, problems  # pylint: disable=g-import-not-at-top

  names = ("ackley", "beale", "rosenbrock", "booth")
  probs = [problems.get(n) for n in names]
  x0 = np.stack([np.asarray(p.init(jax.random.key(i), 4), np.float32)
                 for i, p in enumerate(probs)])
  factories = [optax.adam, optax.sgd, optim.momentum, optim.gd]
  return [p.fn for p in probs], factories, np.geomspace(1e-3, 1e-1, 6), x0


def _composition(run) -> tuple[int, int]:
  """(cells whose values differ alone vs in the batch, cells compared)."""
  fns, factories, lrs, x0 = _setup()
  batch = run(fns, factories, lrs, x0, steps=STEPS)
  differ = 0
  for o in range(2):  # adam, sgd
    for p in range(2):  # ackley, beale
      alone = run([fns[p]], [factories[o]], lrs, x0[p:p + 1], steps=STEPS)
      differ += not np.array_equal(alone.values[0, :, 0],
                                   batch.values[o, :, p], equal_nan=True)
  return differ, 4


def _child(mode: str, out: str) -> None:
  from wonderland import batching  # pylint: disable=g-import-not-at-top

  if mode == "composition":
    np.save(out, np.array(_composition(batching.run_batch)))
    return
  fns, factories, lrs, x0 = _setup()
  arrays = {}
  for name in ("run_batch", "run_cells"):
    arrays[name] = getattr(batching, name)(fns, factories, lrs, x0,
                                           steps=STEPS).values
  np.savez(out, **arrays)


def _in_subprocess(mode: str, flags: str, suffix: str):
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "out" + suffix)
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, __file__, "--child", mode, out], env=env,
                   check=True)
    return dict(np.load(out)) if suffix == ".npz" else np.load(out)


def _cost(repeats: int = 2) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  from wonderland import batching, problems  # pylint: disable=g-import-not-at-top
  from wonderland.jobs import compare  # pylint: disable=g-import-not-at-top
  from wonderland.jobs.compare.job import initial_points  # pylint: disable=g-import-not-at-top
  from configs import compare_optimizers  # pylint: disable=g-import-not-at-top

  plan = compare.validate(compare_optimizers.get_config())
  two_d = [p for p in plan.problems.values() if p.dim == 2]
  fns = [p.fn for p in two_d]
  factories = [plan.optimizer(o).make(v) for o in plan.labels
               for v in plan.optimizer(o).variants()]
  x0 = np.stack([initial_points(p, plan.seed, plan.num_seeds)
                 for p in two_d])
  print(f"\n4. cost on the default config's 2-D cells: {len(factories)} "
        f"optimizers x {len(fns)} problems, {plan.learning_rates.size} etas x "
        f"{plan.num_seeds} seeds, {plan.steps} steps; {jax.device_count()} "
        "device(s)")
  for r in range(repeats):
    for name in ("run_batch", "run_cells"):
      jax.clear_caches()
      t = time.perf_counter()
      b = getattr(batching, name)(fns, factories, plan.learning_rates, x0,
                                  steps=plan.steps)
      print(f"   {name}: compile {b.compile_seconds:5.1f}s, run "
            f"{b.run_seconds:5.2f}s, wall {time.perf_counter() - t:5.1f}s "
            f"(repeat {r + 1})")
  del problems


def main() -> None:
  if len(sys.argv) == 4 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3])
    return
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from wonderland import batching  # pylint: disable=g-import-not-at-top

  print(f"1. the program's other cells ({STEPS} steps; adam and sgd on ackley "
        "and beale, computed alone vs among 16 cells):")
  for name in ("run_batch", "run_cells"):
    differ, n = _composition(getattr(batching, name))
    print(f"   {name}: {differ} of {n} cells differ")
  one = _in_subprocess("devices", "", ".npz")
  for n in (3, 8):
    many = _in_subprocess(
        "devices", f"--xla_force_host_platform_device_count={n}", ".npz")
    print(f"2. 1 vs {n} devices (16 cells x 24 runs):")
    for name in ("run_batch", "run_cells"):
      a, b = one[name], many[name]
      same = (a == b) | (np.isnan(a) & np.isnan(b))
      cells = (~same).reshape(4, 6, 4, 4, STEPS).any(axis=(1, 3, 4)).sum()
      print(f"   {name}: {int((~same).sum())} of {a.size} values differ, in "
            f"{int(cells)} of 16 cells")
  differ, n = _in_subprocess("composition", "--xla_cpu_max_isa=AVX", ".npy")
  print(f"3. (1) with --xla_cpu_max_isa=AVX (no FMA): run_batch: {differ} of "
        f"{n} cells differ")
  _cost()


if __name__ == "__main__":
  main()
