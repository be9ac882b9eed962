"""``wonderland.sweep`` against Python loops over the same runs; its compiles.

1. K momentum runs x S steps on 2-D Rosenbrock (a learning-rate x decay grid,
   one initial point), the sweep against three loops over the same runs:
   - ``loop of jitted runs``: one jitted function runs all S steps of one run
     (``lax.scan``, hyperparameters as traced arguments, compiled once) and
     Python calls it K times: the strongest loop;
   - ``loop of jitted steps``: the usual optax loop, a jitted step called S
     times per run (timed on a few runs, scaled to K);
   - ``one jit per run``: the whole run jitted with its hyperparameters as
     constants, so every run compiles (timed on a few runs, scaled to K);
   - an eager PyTorch loop, if torch is installed (report only);
   and against the loop's own run vmapped over the grid by hand (f only, no
   divergence check): the ceiling of any sweep on the machine.
   The sweep is timed warm (its programs cached) and cold (compile included).
   Target: loop / sweep >= 100x.
2. Backend compiles (counted with ``jax.monitoring``) of a 64-point
   learning-rate sweep, then of a second one with new values (expected 0).
3. Compile and run time as the grid grows from 1 to 65,536 configurations:
   flat while the machine has idle lanes, then linear in K.

  python benchmarks/sweep.py            # K = 1024, S = 1000; ~30 s on 2 cores
  python benchmarks/sweep.py --quick    # K = 256, S = 200, curve to 4,096
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wonderland._sweep import sweep

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"

try:
  from wonderland.optim import momentum as MOMENTUM
  MOMENTUM_NAME = "wonderland.optim.momentum"
except ImportError:  # the optimizers are not there yet: optax's twin

  def MOMENTUM(learning_rate, decay):  # pylint: disable=invalid-name
    return optax.sgd(learning_rate, decay)

  MOMENTUM_NAME = "optax.sgd(momentum=decay)"


def rosenbrock(x):
  return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


X0 = np.array([-1.5, 2.0], np.float32)


def grid_of(k):
  """A learning-rate x decay grid of k = 16 m points (m learning rates)."""
  n_decay = 16 if k >= 16 else 1
  return {
      "learning_rate": np.logspace(-5, -3, k // n_decay),
      "decay": np.linspace(0.5, 0.95, n_decay),
  }


def flat_points(grid):
  lr, decay = np.meshgrid(grid["learning_rate"], grid["decay"], indexing="ij")
  return lr.ravel().astype(np.float32), decay.ravel().astype(np.float32)


def make_run(steps):
  """One run as one jitted program; the hyperparameters are traced."""
  factory = optax.inject_hyperparams(MOMENTUM)

  @jax.jit
  def run(lr, decay, x0):
    opt = factory(learning_rate=lr, decay=decay)

    def body(carry, _):
      x, state = carry
      value, grad = jax.value_and_grad(rosenbrock)(x)
      updates, state = opt.update(grad, state, x)
      return (optax.apply_updates(x, updates), state), value

    (x, _), values = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
    return x, values

  return run


def loop_of_runs(run, lrs, decays):
  out = [run(lr, d, X0) for lr, d in zip(lrs, decays)]
  return jax.block_until_ready(out)


def loop_of_steps(lrs, decays, steps):
  """The textbook loop: a jitted step, S Python iterations per run."""
  factory = optax.inject_hyperparams(MOMENTUM)
  opt = factory(learning_rate=1.0, decay=0.0)  # hyperparameters live in state

  @jax.jit
  def step(x, state):
    value, grad = jax.value_and_grad(rosenbrock)(x)
    updates, state = opt.update(grad, state, x)
    return optax.apply_updates(x, updates), state, value

  def go():
    finals = []
    for lr, d in zip(lrs, decays):
      x = jnp.asarray(X0)
      hparams = {"learning_rate": jnp.asarray(lr), "decay": jnp.asarray(d)}
      state = factory(**hparams).init(x)
      for _ in range(steps):
        x, state, _ = step(x, state)
      finals.append(x)
    return jax.block_until_ready(finals)

  go()  # compile
  start = time.perf_counter()
  go()
  return time.perf_counter() - start


def one_jit_per_run(lrs, decays, steps):
  """Each run jitted with its hyperparameters as constants: K compiles."""
  start = time.perf_counter()
  for lr, d in zip(lrs, decays):
    opt = MOMENTUM(float(lr), float(d))

    def run(x0, opt=opt):
      def body(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(rosenbrock)(x)
        updates, state = opt.update(grad, state, x)
        return (optax.apply_updates(x, updates), state), value

      return jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)

    jax.block_until_ready(jax.jit(run)(X0))
  return time.perf_counter() - start


def torch_loop(lrs, decays, steps):
  """Eager PyTorch, the same momentum g_t = -eta grad + lambda g_{t-1}."""
  import torch  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  for lr, d in zip(lrs, decays):
    x = torch.tensor(X0, requires_grad=True)
    g = torch.zeros(2)
    for _ in range(steps):
      f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
      (grad,) = torch.autograd.grad(f, x)
      with torch.no_grad():
        g = -float(lr) * grad + float(d) * g
        x += g
  return time.perf_counter() - start


def section_loops(k, steps, rounds, n_sub):
  grid = grid_of(k)
  lrs, decays = flat_points(grid)
  x0 = X0[None]
  print(f"\n1. {k} runs x {steps} steps, {MOMENTUM_NAME} on 2-D Rosenbrock "
        f"({len(grid['learning_rate'])} learning rates x "
        f"{len(grid['decay'])} decays, one x_0), "
        f"{jax.device_count()} device(s)")
  cold = sweep(rosenbrock, MOMENTUM, grid, x0, steps=steps)
  run = make_run(steps)
  loop_of_runs(run, lrs[:1], decays[:1])  # compile
  # The loop records f only: so does the lean sweep, in one program.
  lean = dict(steps=steps, record=("value",), chunk_steps=steps)
  sweep(rosenbrock, MOMENTUM, grid, x0, **lean)  # compile
  # The ceiling of any sweep here: the loop's own run, vmapped over the grid
  # by hand (f recorded, no divergence check, no freeze).
  vmapped = jax.jit(jax.vmap(run, in_axes=(0, 0, None)))
  jax.block_until_ready(vmapped(lrs, decays, X0))  # compile
  names = ["sweep", "lean", "loop", "vmapped"]
  samples = {name: [] for name in names}
  shuffle = random.Random(0).shuffle  # as in _timing.py: no fixed predecessor
  for _ in range(rounds):
    order = list(names)
    shuffle(order)
    for name in order:
      start = time.perf_counter()
      if name == "sweep":
        result = sweep(rosenbrock, MOMENTUM, grid, x0, steps=steps)
      elif name == "lean":
        jax.block_until_ready(
            sweep(rosenbrock, MOMENTUM, grid, x0, **lean).values)
      elif name == "vmapped":
        jax.block_until_ready(vmapped(lrs, decays, X0))
      else:
        finals = loop_of_runs(run, lrs, decays)
      samples[name].append(time.perf_counter() - start)
  t_sweep = statistics.median(samples["sweep"])
  t_lean = statistics.median(samples["lean"])
  t_loop = statistics.median(samples["loop"])
  t_vmapped = statistics.median(samples["vmapped"])
  # The loop and the sweep take the same steps: compare the final values.
  loop_final = np.array([float(rosenbrock(x)) for x, _ in finals])
  sweep_final = np.asarray(result.values)[..., 0, -1].ravel()
  both = np.isfinite(loop_final) & np.isfinite(sweep_final)
  agree = np.mean(np.isclose(loop_final[both], sweep_final[both], rtol=1e-3))

  t_steps = loop_of_steps(lrs[:n_sub], decays[:n_sub], steps) * k / n_sub
  t_jits = one_jit_per_run(lrs[:n_sub], decays[:n_sub], steps) * k / n_sub
  rows = [
      ("sweep, warm (programs cached)", t_sweep,
       f"full trace, chunks of 256; loop / sweep {t_loop / t_sweep:.1f}x"),
      ("sweep, record=value, one chunk", t_lean,
       f"warm; loop / this {t_loop / t_lean:.1f}x (target >= 10x)"),
      ("sweep, cold (compile + run)",
       cold.compile_seconds + cold.run_seconds,
       f"compile {cold.compile_seconds:.2f} s"),
      ("vmapped scan, by hand", t_vmapped,
       f"f only, no freeze: the ceiling; loop / this {t_loop / t_vmapped:.1f}x"),
      ("loop of jitted runs", t_loop, "compiled once"),
      ("loop of jitted steps", t_steps, f"{n_sub} runs timed, x{k // n_sub}"),
      ("one jit per run", t_jits, f"{n_sub} runs timed, x{k // n_sub}"),
  ]
  try:
    t_torch = torch_loop(lrs[:n_sub], decays[:n_sub], steps) * k / n_sub
    rows.append(("eager PyTorch loop", t_torch, f"{n_sub} runs timed"))
  except ImportError:
    rows.append(("eager PyTorch loop", float("nan"), "torch not installed"))
  print(f"   {'':<32} {'seconds':>9} {'/ sweep warm':>13}   note")
  for name, t, note in rows:
    if np.isnan(t):
      print(f"   {name:<32} {'-':>9} {'-':>13}   {note}")
    else:
      print(f"   {name:<32} {t:9.3f} {t / t_sweep:12.1f}x   {note}")
  print(f"   final values of loop and sweep agree to 1e-3 in {agree:.1%} of "
        f"the {both.sum()} finite runs (float32, chaotic runs drift); "
        f"{int(np.asarray(result.diverged).sum())} runs diverged.")


def section_compiles():
  counts = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda event, duration, **kw: counts.append(event)
      if event == BACKEND_COMPILE else None
  )
  f = lambda x: rosenbrock(x) + 0.0  # a fresh function: nothing cached yet
  x0 = X0[None]
  first = len(counts)
  a = sweep(f, optax.sgd, {"learning_rate": np.logspace(-5, -3, 64)}, x0,
            steps=1000, fixed={"momentum": 0.9})
  second = len(counts)
  b = sweep(f, optax.sgd, {"learning_rate": np.logspace(-4, -2, 64)}, x0,
            steps=1000, fixed={"momentum": 0.9})
  third = len(counts)
  print("\n2. backend compiles of a 64-point learning-rate sweep "
        "(optax.sgd, momentum 0.9, 1000 steps)")
  print(f"   first sweep:                 {second - first} compiles "
        f"({a.compile_seconds:.2f} s), run {a.run_seconds:.3f} s")
  print(f"   second sweep, new values:    {third - second} compiles "
        f"({b.compile_seconds:.3f} s), run {b.run_seconds:.3f} s")


def section_curve(max_k, steps):
  print(f"\n3. compile + run time against the grid size ({steps} steps, "
        f"one x_0, lr x decay grid of {MOMENTUM_NAME})")
  print(f"   {'K':>7} {'compile s':>10} {'run s':>9} {'total s':>9} "
        f"{'ns / run-step':>14}")
  f = lambda x: rosenbrock(x) + 0.0  # fresh: no program of section 1 reused
  k = 1
  while k <= max_k:
    grid = grid_of(k)
    result = sweep(f, MOMENTUM, grid, X0[None], steps=steps)
    compile_s, run_s = result.compile_seconds, result.run_seconds
    print(f"   {k:7d} {compile_s:10.2f} {run_s:9.3f} {compile_s + run_s:9.2f} "
          f"{run_s / (k * steps) * 1e9:14.1f}", flush=True)
    del result
    k *= 4


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  if args.quick:
    k, steps, max_k, curve_steps, n_sub = 256, 200, 4096, 200, 4
  else:
    k, steps, max_k, curve_steps, n_sub = 1024, 1000, 65536, 1000, 4
  print(f"wonderland.sweep benchmark on {jax.devices()[0].platform} "
        f"x{jax.device_count()}")
  section_loops(k, steps, args.rounds, n_sub)
  section_compiles()
  section_curve(max_k, curve_steps)


if __name__ == "__main__":
  main()
