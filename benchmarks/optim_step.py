"""One optimizer step of wonderland.optim against its optax twin, side by side.

For each optimizer with an optax twin (the same algorithm), times the jitted
``update + apply_updates`` step on one float32 vector of 16M parameters, ours
and optax's alternating in one process, params and state donated in both.
Prints the median time ratio ours / optax (target <= 1.05; a last control row
times optax against itself, to show the noise) and the bytes the
step must move per second (every array read once and written once) as a
fraction of a plain jitted array copy's on the same machine: the
memory-bandwidth limit of an elementwise step.

  python benchmarks/optim_step.py            # 16M params, ~1-2 minutes on 2 CPU cores
  python benchmarks/optim_step.py --quick    # 1M params, a few seconds
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from wonderland import optim as wo

# name -> (ours, optax's twin, float32 arrays the step reads + writes per param).
# gd: read x, grad; write x. momentum/nesterov/rmsprop: + read, write one
# accumulator. adam: + two accumulators.
TWINS = {
    "gd ~ sgd": (lambda: wo.gd(1e-3), lambda: optax.sgd(1e-3), 3),
    "momentum ~ sgd(momentum)": (
        lambda: wo.momentum(1e-3, 0.9),
        lambda: optax.sgd(1e-3, momentum=0.9),
        5,
    ),
    "nesterov ~ sgd(nesterov)": (
        lambda: wo.nesterov(1e-3, 0.9),
        lambda: optax.sgd(1e-3, momentum=0.9, nesterov=True),
        5,
    ),
    "rmsprop ~ rmsprop(eps_in_sqrt=False)": (
        lambda: wo.rmsprop(1e-3),
        lambda: optax.rmsprop(1e-3, eps_in_sqrt=False),
        5,
    ),
    "adam ~ adam": (lambda: wo.adam(1e-3), lambda: optax.adam(1e-3), 7),
    # Control: optax against itself. Its spread is the machine's noise floor.
    "(control) optax momentum ~ itself": (
        lambda: optax.sgd(1e-3, momentum=0.9),
        lambda: optax.sgd(1e-3, momentum=0.9),
        5,
    ),
}


def make_step(opt):
  def step(params, state, grads):
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=(0, 1))


class Runner:
  """A jitted step with its own donated params and state."""

  def __init__(self, opt, n, grads):
    self.step = make_step(opt)
    self.params = jnp.zeros(n, jnp.float32)
    self.state = opt.init(self.params)
    self.grads = grads
    self.time(1)  # compile and warm up

  def time(self, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
      self.params, self.state = self.step(self.params, self.state, self.grads)
    jax.block_until_ready((self.params, self.state))
    return (time.perf_counter() - t0) / steps


def copy_bandwidth(n, steps, repeats):
  """Bytes/s of the faster of a jitted copy and a donated x -> x + 1."""
  x = jnp.ones(n, jnp.float32)
  copy = jax.jit(jnp.copy)
  inc = jax.jit(lambda v: v + 1.0, donate_argnums=0)
  jax.block_until_ready(copy(x))
  y = jax.block_until_ready(inc(jnp.ones(n, jnp.float32)))
  best = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      out = copy(x)
    jax.block_until_ready(out)
    t_copy = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(steps):
      y = inc(y)
    jax.block_until_ready(y)
    t_inc = (time.perf_counter() - t0) / steps
    best.append(min(t_copy, t_inc))
  return 2 * n * 4 / statistics.median(best)


def lone_add_ratio(n, steps, repeats):
  """Median time of a donated x + v over a donated x + (-1) v, alternating.

  The same bytes move in both. On XLA:CPU a single add is emitted as a lone
  "wrapped" kernel, a multiply-add as a loop fusion; this prices the
  difference, which is what separates our momentum step from optax's there.
  """
  fns = {
      "add": jax.jit(lambda x, v: x + v, donate_argnums=0),
      "multiply_add": jax.jit(lambda x, v: x + (-1.0) * v, donate_argnums=0),
  }
  v = jnp.ones(n, jnp.float32)
  xs = {k: jax.block_until_ready(f(jnp.zeros(n, jnp.float32), v))
        for k, f in fns.items()}
  ratios = []
  for r in range(repeats):
    t = {}
    for k in (("add", "multiply_add") if r % 2 else ("multiply_add", "add")):
      t0 = time.perf_counter()
      for _ in range(steps):
        xs[k] = fns[k](xs[k], v)
      jax.block_until_ready(xs[k])
      t[k] = time.perf_counter() - t0
    ratios.append(t["add"] / t["multiply_add"])
  return statistics.median(ratios)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=16 * 2**20, help="parameters")
  parser.add_argument("--repeats", type=int, default=15)
  parser.add_argument("--steps", type=int, default=5, help="steps per timing")
  parser.add_argument("--quick", action="store_true", help="1M params, 3 repeats")
  args = parser.parse_args()
  n, repeats, steps = args.size, args.repeats, args.steps
  if args.quick:
    n, repeats = 2**20, 3

  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{n / 2**20:.0f}M float32 params, {repeats} repeats x {steps} steps")
  bandwidth = copy_bandwidth(n, steps, repeats)
  print(f"plain array copy: {bandwidth / 1e9:.1f} GB/s (read + write)\n")
  grads = jax.random.normal(jax.random.key(0), (n,), jnp.float32) * 1e-3

  header = (f"{'optimizer ~ optax twin':38s} {'ours ms':>8s} {'optax ms':>9s} "
            f"{'ratio':>6s} {'(IQR)':>13s} {'ours GB/s':>10s} {'of copy':>8s} "
            f"{'optax of copy':>14s}")
  print(header)
  print("-" * len(header))
  for name, (ours_fn, theirs_fn, arrays) in TWINS.items():
    ours, theirs = Runner(ours_fn(), n, grads), Runner(theirs_fn(), n, grads)
    t_ours, t_theirs, ratios = [], [], []
    for r in range(repeats):
      # Alternate which goes first, so drift favours neither.
      if r % 2:
        b = theirs.time(steps)
        a = ours.time(steps)
      else:
        a = ours.time(steps)
        b = theirs.time(steps)
      t_ours.append(a)
      t_theirs.append(b)
      ratios.append(a / b)
    a, b = statistics.median(t_ours), statistics.median(t_theirs)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    moved = arrays * n * 4
    print(f"{name:38s} {a * 1e3:8.2f} {b * 1e3:9.2f} "
          f"{statistics.median(ratios):6.3f} {f'({q1:.2f}-{q3:.2f})':>13s} "
          f"{moved / a / 1e9:10.1f} {moved / a / bandwidth:8.2f} "
          f"{moved / b / bandwidth:14.2f}")
    del ours, theirs
  print("\nratio: median over repeats of ours / optax (target <= 1.05), with "
        "its interquartile range; 'of copy': bytes the step must move per "
        "second / the copy's.")
  print(f"x + v / x + (-1) v on this backend: "
        f"{lone_add_ratio(n, steps, repeats):.3f} (our momentum returns g_t, "
        "so x_{t-1} + g_t is a lone add; optax's returns -eta m_t, a "
        "multiply-add)")


if __name__ == "__main__":
  main()
