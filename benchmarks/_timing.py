"""Side-by-side timing: candidates alternate in one process, medians compared.

The machine is shared and noisy, so no absolute time is trusted alone: each
round runs every candidate once, in an order shuffled afresh each round (a
seeded shuffle: the same orders every run), and the report is the ratio of
medians against a named baseline.

Why shuffled, not rotated: a rotation keeps the cyclic order, so each
candidate always follows the same one, and a call pays for what the call
before it left behind. On this project's CPU machine a candidate that followed
one returning 8 MB of arrays took 2-3 ms longer, every round: glibc had handed
the freed buffers back to the system, and the next call's 4 MB result
page-faulted in afresh (with ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` set high, so that freed buffers stay in the heap,
the difference went away). Shuffled, that cost falls on every candidate alike.
"""

from __future__ import annotations

import random
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
  shuffle = random.Random(0).shuffle
  for _ in range(rounds):
    order = list(names)
    shuffle(order)
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
