"""Runs the shared tiny sweep in a fresh process; used by tests/test_sweep.py.

Usage:
  python tests/_sweep_worker.py devices N OUT.npz
      N simulated CPU devices in one process (XLA_FLAGS set before jax loads).
  python tests/_sweep_worker.py process I PORT OUT.npz
      process I of 2, coordinated on 127.0.0.1:PORT with gloo collectives.

Each writes the sweep's arrays, as this process sees them, to OUT.npz.
"""

from __future__ import annotations

import os
import sys


def problem():
  """The tiny sweep every process runs: momentum SGD on 2-D Rosenbrock."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  def rosenbrock(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2 + jnp.sum(p["z"] ** 2)

  grid = {"learning_rate": np.array([1e-4, 1e-3, 4e-3])}
  x0 = {
      "xy": np.array([[-1.5, 2.0], [0.0, 0.0], [1.2, 1.2]], np.float32),
      "z": np.array([[1.0], [-2.0], [0.5]], np.float32),
  }
  kwargs = dict(steps=20, fixed={"momentum": 0.9}, chunk_steps=8)
  return rosenbrock, optax.sgd, grid, x0, kwargs


def optax_sgd():
  import optax  # pylint: disable=g-import-not-at-top

  return optax.sgd


def stochastic_problem():
  """Minibatch least squares: 3 learning rates x 2 seeds, evaluated."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  features = rng.normal(size=(64, 3)).astype(np.float32)
  targets = features @ np.array([1.0, -2.0, 0.5], np.float32)

  def loss(w, batch):
    a, b = batch
    return jnp.mean((a @ w - b) ** 2)

  def evaluate(w):
    return {"loss": jnp.mean((features @ w - targets) ** 2)}

  grid = {"learning_rate": np.array([0.01, 0.05, 0.1])}
  x0 = np.zeros((2, 3), np.float32)
  kwargs = dict(steps=13, data=(features, targets), batch_size=8,
                key=jax.random.key(3), evaluate=evaluate, eval_every=4,
                chunk_steps=4)
  return loss, grid, x0, kwargs


def cells_problem():
  """adam and sgd on ackley and beale: 2 learning rates x 2 seeds per cell."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from wonderland import problems  # pylint: disable=g-import-not-at-top

  fns = [problems.get("ackley").fn, problems.get("beale").fn]
  x0 = np.array([[[0.7, -1.3], [2.1, 0.4]], [[1.0, 1.5], [-2.0, 0.5]]],
                np.float32)
  return fns, [optax.adam, optax.sgd], np.array([3e-3, 3e-2]), x0


def blocked_problem():
  """adam on the tests' tiny MLP, 3 learning rates x 3 seeds, in blocks of 2."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  import _models  # pylint: disable=g-import-not-at-top

  loss, params, _ = _models.tiny_mlp()
  x0 = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a, -a]), params)
  grid = {"learning_rate": np.array([1e-2, 3e-2, 1e-1], np.float32)}
  return lambda p: loss(p), optax.adam, grid, x0, dict(steps=30, block_size=2)


def run_and_save(out: str) -> None:
  # Imported here: XLA_FLAGS must be set before jax loads.
  # pylint: disable=g-import-not-at-top
  import jax
  import numpy as np

  # wonderland.sweep may be re-exported as the function: import from the module.
  from wonderland._sweep import sweep

  f, make, grid, x0, kwargs = problem()
  result = sweep(f, make, grid, x0, **kwargs)
  arrays = {
      "values": result.values,
      "grad_norms": result.grad_norms,
      "diverged": result.diverged,
      "xy": result.final_params["xy"],
      "z": result.final_params["z"],
  }
  # 8 configs x 1 seed: divides evenly over 1, 2 or 8 devices.
  even = sweep(
      f, make, {"learning_rate": np.linspace(1e-4, 1e-3, 8)},
      {k: v[:1] for k, v in x0.items()}, steps=3, fixed={"momentum": 0.9},
  )
  # A stochastic sweep with evaluations: minibatches of a linear regression.
  sf, sgrid, sx0, skwargs = stochastic_problem()
  stoch = sweep(sf, optax_sgd(), sgrid, sx0, **skwargs)
  arrays["stoch_values"] = stoch.values
  arrays["stoch_evals"] = stoch.evals["loss"]
  # Blocks of a fixed size: the per-device program is one block's, so the
  # MLP's matmul kernels do not change with the device count.
  bf, bmake, bgrid, bx0, bkwargs = blocked_problem()
  blocked = sweep(bf, bmake, bgrid, bx0, **bkwargs)
  arrays["blocked_values"] = blocked.values
  arrays["blocked_w1"] = blocked.final_params["w1"]
  # Cells computed one by one (wonderland.batching.run_cells) on problems
  # that amplify one rounding: the same bits on any device count.
  from wonderland import batching  # pylint: disable=g-import-not-at-top
  fns, factories, lrs, cx0 = cells_problem()
  result_cells = batching.run_cells(fns, factories, lrs, cx0, steps=40)
  arrays["cells_values"] = result_cells.values
  arrays["cells_final_x"] = result_cells.final_x
  np.savez(
      out,
      device_count=jax.device_count(),
      process_count=jax.process_count(),
      num_shards=len(result.values.sharding.device_set),
      even_spec=np.array([str(a) for a in even.values.sharding.spec]),
      even_values=np.asarray(even.values),
      **{k: np.asarray(v) for k, v in arrays.items()},
  )


def main(argv):
  mode = argv[1]
  if mode == "devices":
    # Appended: the suite's optimization level (tests/conftest.py) stays.
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} "
        f"--xla_force_host_platform_device_count={int(argv[2])}"
    )
    run_and_save(argv[3])
  elif mode == "process":
    import jax  # pylint: disable=g-import-not-at-top

    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{int(argv[3])}",
        num_processes=2,
        process_id=int(argv[2]),
        initialization_timeout=60,
    )
    run_and_save(argv[4])
    jax.distributed.shutdown()
  else:
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
  main(sys.argv)
