"""Side-by-side timing: candidates alternate in one process, medians compared.

The machine is shared and noisy, so no absolute time is trusted alone: each
round runs every candidate once, in a rotating order, and the report is the
ratio of medians against a named baseline.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping

import jax


def _block(x):
  return jax.block_until_ready(x)


def time_alternating(
    fns: Mapping[str, Callable[[], object]], *, rounds: int = 15, warmup: int = 2
) -> dict[str, float]:
  """Median seconds per call of each zero-argument ``fn``, interleaved."""
  names = list(fns)
  for _ in range(warmup):
    for name in names:
      _block(fns[name]())
  samples = {name: [] for name in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[: r % len(names)]
    for name in order:
      start = time.perf_counter()
      _block(fns[name]())
      samples[name].append(time.perf_counter() - start)
  return {name: statistics.median(s) for name, s in samples.items()}


def print_ratios(title: str, medians: Mapping[str, float], baseline: str) -> None:
  print(f"\n{title}")
  base = medians[baseline]
  for name, t in medians.items():
    print(f"  {name:<40} {t * 1e3:10.3f} ms   {t / base:6.3f}x {baseline}")
