"""Minibatch training in one program: ``sweep`` with data against the loops.

R runs of ``mlp_mnist1d`` (40-100-100-10 ReLU, adam, batch 100, S steps,
evaluated every S/4 steps on the validation and test splits), four ways:

- ``sweep``: ``wonderland.sweep(..., data=, batch_size=, key=, evaluate=)``,
  R runs = 4 learning rates x R/4 seeds in one program (warm: compiled once),
  with the full trace and with ``record=("value",)``;
- ``vmapped scan``: a hand-written ``jax.jit(jax.vmap(run))`` optax scan
  with the same sampler (``wonderland.data.minibatch``) and the same
  evaluations: the bar to meet (target: sweep <= 1.2x);
- ``loop of jitted runs``: one jitted whole run (``lax.scan``, the learning
  rate a traced argument, compiled once) called R times from Python
  (target: sweep >= 3x faster);
- ``torch eager``: the same network and optimizer as an eager PyTorch loop
  on the CPU, if torch is installed (not a dependency: ``pip install
  torch``), timed on one run and compared per run (report only; target:
  sweep >= 10x faster per run).

  python benchmarks/stochastic.py            # R = 16, S = 2000
  python benchmarks/stochastic.py --quick    # R = 8, S = 400
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _timing import print_ratios
from _timing import time_alternating
from wonderland import data as data_lib
from wonderland import optim
from wonderland import problems
from wonderland._sweep import sweep

BATCH = 100


def _hand_written(p, steps, every):
  """One run as a plain optax scan: same sampler, same evaluations."""

  def run(lr, x0, key):
    opt = optim.adam(lr)

    def step(carry, t):
      x, state = carry
      batch = data_lib.minibatch(p.data, key, t, BATCH)
      value, grad = jax.value_and_grad(p.loss)(x, batch)
      updates, state = opt.update(grad, state, x)
      return (optax.apply_updates(x, updates), state), value

    def block(carry, i):
      carry, values = jax.lax.scan(
          step, carry, i * every + jnp.arange(every, dtype=jnp.int32))
      return carry, (values, p.evaluate(carry[0]))

    carry = (x0, opt.init(x0))
    _, (values, evals) = jax.lax.scan(
        block, carry, jnp.arange(steps // every, dtype=jnp.int32))
    return values.reshape(-1), evals

  return run


def _torch_run(p, x0, lr, steps, every):
  """The same run as an eager PyTorch loop (CPU); None without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  # One thread: on 2 shared cores torch's second OpenMP thread spins and was
  # measured up to 80x slower per step than one.
  torch.set_num_threads(1)
  w = p.unravel(jnp.asarray(x0))
  params = [torch.tensor(np.asarray(w[k]), requires_grad=True)
            for k in ("w1", "b1", "w2", "b2", "w3", "b3")]
  features = torch.tensor(np.asarray(p.data[0]), dtype=torch.float32)
  labels = torch.tensor(np.asarray(p.data[1]), dtype=torch.long)
  opt = torch.optim.Adam(params, lr=lr)
  gen = torch.Generator().manual_seed(0)
  n = features.shape[0]

  def forward(x):
    h = torch.relu(x @ params[0] + params[1])
    h = torch.relu(h @ params[2] + params[3])
    return h @ params[4] + params[5]

  start = time.perf_counter()
  perm = torch.randperm(n, generator=gen)
  per_epoch = n // BATCH
  for t in range(steps):
    if t % per_epoch == 0:
      perm = torch.randperm(n, generator=gen)
    idx = perm[(t % per_epoch) * BATCH:(t % per_epoch + 1) * BATCH]
    loss = torch.nn.functional.cross_entropy(forward(features[idx]), labels[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if (t + 1) % every == 0:
      with torch.no_grad():
        forward(features).argmax(1)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args()
  runs, steps = (8, 400) if args.quick else (16, 2000)
  every = steps // 4
  p = problems.get("mlp_mnist1d")
  seeds = runs // 4
  lrs = np.array([3e-4, 1e-3, 3e-3, 1e-2], np.float32)
  x0 = p.init(jax.random.key(0), seeds)
  key = jax.random.key(1)
  print(f"mlp_mnist1d, dim {p.dim}: {runs} runs (4 lrs x {seeds} seeds) x "
        f"{steps} steps, batch {BATCH}, evaluated every {every} steps; "
        f"{jax.device_count()} {jax.default_backend()} device(s)")

  kwargs = dict(steps=steps, data=p.data, batch_size=BATCH, key=key,
                evaluate=p.evaluate, eval_every=every, chunk_steps=steps)

  def run_sweep():
    return sweep(p.loss, optim.adam, {"learning_rate": lrs}, x0,
                 **kwargs).values

  def run_sweep_values():
    return sweep(p.loss, optim.adam, {"learning_rate": lrs}, x0,
                 record=("value",), **kwargs).values

  run = _hand_written(p, steps, every)
  lr_runs = jnp.repeat(jnp.asarray(lrs), seeds)
  x0_runs = jnp.tile(x0, (4, 1))
  keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(
      jnp.tile(jnp.arange(seeds, dtype=jnp.uint32), 4))
  vmapped = jax.jit(jax.vmap(run))
  one = jax.jit(run)

  def run_vmapped():
    return vmapped(lr_runs, x0_runs, keys)

  def run_loop():
    return [one(lr_runs[i], x0_runs[i], keys[i]) for i in range(runs)]

  start = time.perf_counter()
  first = sweep(p.loss, optim.adam, {"learning_rate": lrs}, x0, **kwargs)
  print(f"\ncold sweep (compile + run): {time.perf_counter() - start:.2f} s; "
        f"best lr by val_accuracy: {first.best('val_accuracy', mode='max')}, "
        f"median test accuracy there: "
        f"{np.nanmax(np.median(np.asarray(first.evals['test_accuracy'])[..., -1], axis=-1)):.3f}")
  medians = time_alternating(
      {"sweep": run_sweep, "sweep, record=value": run_sweep_values,
       "vmapped scan": run_vmapped, "loop of jitted runs": run_loop},
      rounds=5, warmup=1,
  )
  print_ratios("per sweep of all runs (warm)", medians, "sweep")
  print(f"  loop / sweep: {medians['loop of jitted runs'] / medians['sweep']:.2f}x"
        f" (target >= 3x); sweep / vmapped scan: "
        f"{medians['sweep'] / medians['vmapped scan']:.2f}x, with record=value "
        f"{medians['sweep, record=value'] / medians['vmapped scan']:.2f}x "
        f"(target <= 1.2x)")
  torch_seconds = _torch_run(p, x0[0], 1e-3, steps, every)
  if torch_seconds is None:
    print("\ntorch not installed: the PyTorch comparison is skipped.")
  else:
    per_run = medians["sweep"] / runs
    print(f"\ntorch eager, one run: {torch_seconds:.3f} s; sweep per run: "
          f"{per_run:.4f} s: {torch_seconds / per_run:.1f}x faster per run "
          f"(target >= 10x)")


if __name__ == "__main__":
  main()
