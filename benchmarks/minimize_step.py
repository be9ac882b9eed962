"""Per-step cost of ``wonderland.minimize`` against a bare jitted optax loop.

Two problems of 16M float32 parameters:

- ``least squares``: f(W) = ||X W - Y||^2 / (2 m) with W ~ (4096, 4096) and
  m = 32 rows, a linear model whose step is dominated by its matmuls;
- ``elementwise``: f(x) = sum((x - 1)^2 / 2 + log cosh(x - 1) / 10), whose step
  is a few passes over memory, the worst case for the trace's extra work.

The baseline is the loop everyone writes: a jitted ``value_and_grad + update +
apply_updates`` step with params and state donated, called ``steps`` times
from Python. ``minimize`` runs the same steps as one compiled program and also
records f, ||grad f||, ||u_t||, the descent cosine and the step size at every
step (one variadic reduction for its three sums, and the divergence check as
one elementwise select x_t = where(ok, x_{t-1} + u_t, x_{t-1})). The two
alternate in one process (median of several rounds); the printed ratio is
minimize / bare per step (target <= 1.0), both as the average over a run and as
the marginal cost of more steps. XLA:CPU and XLA:GPU both run the sums and the
select as passes of their own after the update. Where the bare step is one
fused pass over its arrays, as on an H100, that sets a floor above 1.0x on the
marginal cost (the README counts the passes); XLA:CPU's bare step makes more
passes than that, and there minimize measures below 1.0x.
``minimize(record=("value",))`` is timed the same way (``--record value``; both
by default): it records f alone, as the bare loop does, so its steps take no
sums (target <= 1.05).

  python benchmarks/minimize_step.py          # 16M params, ~9 min on 2 cores
  python benchmarks/minimize_step.py --quick  # 1M params, under a minute
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wonderland._run import minimize
from wonderland._run import RECORDS
from _timing import time_alternating


def elementwise(x):
  """A smooth, strongly convex, elementwise objective with minimum at x = 1."""
  return jnp.sum(0.5 * (x - 1.0) ** 2 + 0.1 * jnp.log(jnp.cosh(x - 1.0)))


def least_squares(n, m=32):
  """f(W) = ||X W - Y||^2 / (2 m) for W ~ (n, n), and a start W_0."""
  kx, ky, kw = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (m, n), jnp.float32) / jnp.sqrt(n)
  y = jax.random.normal(ky, (m, n), jnp.float32)

  def f(w):
    return 0.5 / m * jnp.sum((x @ w - y) ** 2)

  return f, 0.01 * jax.random.normal(kw, (n, n), jnp.float32)


def bare_loop(objective, opt, steps):
  """The hand-written loop: one donated jitted step per Python iteration."""

  def step(x, state):
    value, grad = jax.value_and_grad(objective)(x)
    updates, state = opt.update(grad, state, x)
    return optax.apply_updates(x, updates), state, value

  step = jax.jit(step, donate_argnums=(0, 1))

  def run(x0):
    x = jnp.array(x0)  # a copy: the loop donates it
    state = opt.init(x)
    values = []
    for _ in range(steps):
      x, state, value = step(x, state)
      values.append(value)
    return x, jnp.stack(values)

  return run


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="1M parameters")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--record", choices=("full", "value", "both"),
                      default="both",
                      help="minimize's record: the full trace, f alone, or "
                      "both, each against the bare loop")
  args = parser.parse_args()
  records = {"full": [("full", RECORDS)], "value": [("value", ("value",))],
             "both": [("full", RECORDS), ("value", ("value",))]}[args.record]
  side = 1024 if args.quick else 4096
  steps = args.steps
  problems = {
      "least squares": least_squares(side),
      "elementwise": (
          elementwise,
          jax.random.normal(jax.random.key(0), (side * side,), jnp.float32),
      ),
  }
  print(f"minimize vs bare jitted optax loop: {side * side:,} float32 params, "
        f"{steps} and {3 * steps} steps, median of {args.rounds} alternating "
        f"rounds, {jax.devices()[0].platform} x{jax.device_count()}")
  print("per step: a {steps}-step run's time / {steps}; marginal: the extra "
        "time of {3 steps} steps over {steps}, per extra step (no fixed "
        "costs)".format(steps=steps, **{"3 steps": 3 * steps}))
  print(f"{'problem':<14} {'optimizer':<18} {'record':<7} {'bare ms/step':>13} "
        f"{'minimize':>9} {'ratio':>7} {'bare marginal':>14} {'minimize':>9} "
        f"{'ratio':>7}")
  for problem, (objective, x0) in problems.items():
    for (name, opt), (kind, record) in itertools.product([
        ("sgd(momentum=0.9)", optax.sgd(0.1, momentum=0.9)),
        ("adam", optax.adam(1e-3)),
    ], records):
      fns = {}
      for n in (steps, 3 * steps):
        bare = bare_loop(objective, opt, n)
        fns[f"bare/{n}"] = lambda bare=bare, x0=x0: bare(x0)
        fns[f"minimize/{n}"] = (
            lambda f=objective, opt=opt, x0=x0, n=n, record=record: (
                minimize(f, opt, x0, steps=n, record=record)))
      for fn in fns.values():  # compile all
        jax.block_until_ready(fn())
      _, bare_values = fns[f"bare/{steps}"]()
      trace = fns[f"minimize/{steps}"]()
      # They take the same steps: bare records f(x_{t-1}), minimize f(x_t).
      np.testing.assert_allclose(trace.values[:-1], bare_values[1:],
                                 rtol=1e-3)
      medians = time_alternating(fns, rounds=args.rounds, warmup=0)
      per = {k: medians[f"{k}/{steps}"] / steps * 1e3
             for k in ("bare", "minimize")}
      marginal = {
          k: (medians[f"{k}/{3 * steps}"] - medians[f"{k}/{steps}"])
          / (2 * steps) * 1e3 for k in ("bare", "minimize")
      }
      print(f"{problem:<14} {name:<18} {kind:<7} {per['bare']:13.3f} "
            f"{per['minimize']:9.3f} {per['minimize'] / per['bare']:6.2f}x "
            f"{marginal['bare']:14.3f} {marginal['minimize']:9.3f} "
            f"{marginal['minimize'] / marginal['bare']:6.2f}x", flush=True)
  print("(minimize also evaluates f and grad f once at the last point; its "
        "full record is f, ||grad f||, ||u_t||, the descent cosine and the "
        "step size at every step, its value record f alone.)")


if __name__ == "__main__":
  main()
