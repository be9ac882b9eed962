"""``sweep(..., block_size=B)``: which bits it fixes, and what it costs.

1. The device count: a small tanh MLP (3-4-2, 16 examples, adam, 3 learning
   rates x 3 seeds, 30 steps) swept on 1, 2, 3 and 8 simulated CPU devices
   (subprocesses with ``--xla_force_host_platform_device_count``), without
   blocks and in blocks of 2; counts the values that differ from the
   2-device run's.
2. The cost: run seconds of a sweep without blocks against blocks of B,
   side by side in one process (``_timing.py``): ``mlp_mnist1d`` and
   ``cnn_mnist1d`` (adam, 5 learning rates x 3 seeds, batch 100, 100 steps,
   blocks of 3, the seeds of one learning rate), and 1,024 momentum runs on
   2-D Rosenbrock (1,000 steps, blocks of 256 and of 8).

Usage:  python benchmarks/blocks.py            (about 1 minute on 2 cores)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

DEVICE_COUNTS = (1, 2, 3, 8)


def _mlp():
  """The tests' 3-4-2 tanh MLP (tests/_models.py), 3 initial points."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, root)
  from tests import _models  # pylint: disable=g-import-not-at-top

  loss, params, _ = _models.tiny_mlp()
  x0 = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a, -a]), params)
  return lambda p: loss(p), x0


def _child(out: str) -> None:
  import optax  # pylint: disable=g-import-not-at-top
  from wonderland import sweep  # pylint: disable=g-import-not-at-top

  loss, x0 = _mlp()
  grid = {"learning_rate": np.array([1e-2, 3e-2, 1e-1], np.float32)}
  plain = sweep(loss, optax.adam, grid, x0, steps=30)
  blocked = sweep(loss, optax.adam, grid, x0, steps=30, block_size=2)
  np.savez(out, plain=np.asarray(plain.values),
           blocked=np.asarray(blocked.values))


def _devices() -> None:
  got = {}
  with tempfile.TemporaryDirectory() as tmp:
    for n in DEVICE_COUNTS:
      out = os.path.join(tmp, f"{n}.npz")
      env = dict(os.environ, JAX_PLATFORMS="cpu",
                 XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
      subprocess.run([sys.executable, __file__, "--child", out], env=env,
                     check=True, capture_output=True)
      got[n] = dict(np.load(out))
  size = got[2]["plain"].size
  print(f"\nValues that differ from the 2-device run's (of {size}):")
  print(f"  {'devices':>8} {'no blocks':>10} {'blocks of 2':>12}")
  for n in DEVICE_COUNTS:
    differ = {k: int((got[n][k] != got[2][k]).sum())
              for k in ("plain", "blocked")}
    print(f"  {n:>8} {differ['plain']:>10} {differ['blocked']:>12}")


def _cost() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from wonderland import optim, problems, sweep  # pylint: disable=g-import-not-at-top

  sys.path.insert(0, os.path.dirname(__file__))
  import _timing  # pylint: disable=g-import-not-at-top

  lrs = np.geomspace(1e-3, 1e-1, 5).astype(np.float32)
  for name in ("mlp_mnist1d", "cnn_mnist1d"):
    task = problems.get(name)
    nets = task.init(jax.random.key(0), 3)
    kwargs = dict(steps=100, data=task.data, batch_size=100,
                  key=jax.random.key(1), evaluate=task.evaluate,
                  eval_every=50)
    run = lambda block: sweep(task.loss, optim.adam, {"learning_rate": lrs},
                              nets, block_size=block, **kwargs).values
    medians = _timing.time_alternating(
        {"no blocks": lambda: run(None), "blocks of 3": lambda: run(3)},
        rounds=5, warmup=1)
    _timing.print_ratios(f"{name}: 15 runs x 100 steps (compile excluded)",
                         medians, "no blocks")

  rosenbrock = problems.get("rosenbrock").fn
  x0 = np.asarray(problems.get("rosenbrock").init(jax.random.key(0), 4))
  grid = {"learning_rate": np.geomspace(1e-4, 2e-3, 256).astype(np.float32)}
  run = lambda block: sweep(rosenbrock, optax.sgd, grid, x0, steps=1000,
                            fixed={"momentum": 0.9}, chunk_steps=1000,
                            block_size=block).values
  medians = _timing.time_alternating(
      {"no blocks": lambda: run(None), "blocks of 256": lambda: run(256),
       "blocks of 8": lambda: run(8)}, rounds=7, warmup=1)
  _timing.print_ratios("rosenbrock: 1,024 momentum runs x 1,000 steps",
                       medians, "no blocks")


def main() -> None:
  if len(sys.argv) == 3 and sys.argv[1] == "--child":
    _child(sys.argv[2])
    return
  _devices()
  _cost()


if __name__ == "__main__":
  main()
