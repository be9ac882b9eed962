"""§1.1 and §1.2 costs: our vmapped products and auto-mode Jacobians vs JAX's.

  python benchmarks/tensors_and_jacobians.py

Prints ratios of medians (ours / baseline) from interleaved runs in one process:
- batched_matmul (vmap of vmap of dot) vs jnp.matmul on X ~ (64, 256, 256),
  under jit: target <= 1.1x;
- jacobian(mode="auto") vs the faster of jacfwd/jacrev on a tall
  (16 in, 4096 out) and a wide (4096 in, 16 out) function: target <= 1.05x,
  and how much slower the wrong mode is.
"""

import jax
import jax.numpy as jnp

import wonderland as wl
from _timing import print_ratios, time_alternating


def bench_batched_matmul():
  kx, ky = jax.random.split(jax.random.key(0))
  X = jax.random.normal(kx, (64, 256, 256))
  Y = jax.random.normal(ky, (64, 256, 256))
  ours, ref = jax.jit(wl.batched_matmul), jax.jit(jnp.matmul)
  medians = time_alternating(
      {"jnp.matmul": lambda: ref(X, Y), "wl.batched_matmul": lambda: ours(X, Y)}
  )
  print_ratios("batched_matmul, X ~ (64, 256, 256), jit", medians, "jnp.matmul")
  return medians["wl.batched_matmul"] / medians["jnp.matmul"]


def _mlp(d_in, d_out):
  k1, k2 = jax.random.split(jax.random.key(1))
  W1 = jax.random.normal(k1, (256, d_in)) / d_in**0.5
  W2 = jax.random.normal(k2, (d_out, 256)) / 16.0
  return lambda x: W2 @ jnp.tanh(W1 @ x)


def bench_jacobian(label, d_in, d_out):
  f = _mlp(d_in, d_out)
  x = jnp.linspace(-1.0, 1.0, d_in)
  fns = {
      "jacfwd": jax.jit(jax.jacfwd(f)),
      "jacrev": jax.jit(jax.jacrev(f)),
      "wl.jacobian(auto)": jax.jit(wl.jacobian(f)),
  }
  medians = time_alternating({k: (lambda g=g: g(x)) for k, g in fns.items()})
  best = min(("jacfwd", "jacrev"), key=medians.get)
  worst = "jacrev" if best == "jacfwd" else "jacfwd"
  print_ratios(f"jacobian, {label}: {d_in} in, {d_out} out, jit", medians, best)
  print(f"  the wrong mode ({worst}) is {medians[worst] / medians[best]:.1f}x slower")
  return medians["wl.jacobian(auto)"] / medians[best]


if __name__ == "__main__":
  print(f"devices: {jax.devices()}")
  r_mm = bench_batched_matmul()
  r_tall = bench_jacobian("tall", 16, 4096)
  r_wide = bench_jacobian("wide", 4096, 16)
  print("\nsummary (target): batched_matmul "
        f"{r_mm:.3f}x (<= 1.1), jacobian tall {r_tall:.3f}x (<= 1.05), "
        f"wide {r_wide:.3f}x (<= 1.05)")
