"""Test-session setup: XLA:CPU compiles the suite's programs at LLVM -O1.

Most of the suite's time is compiling small programs, and LLVM's -O3 passes
are most of that. -O1 takes about a third less CPU time for the whole suite
and computes the same IEEE arithmetic: XLA emits the reductions' order
itself, fast math stays off, and multiply-adds are still contracted into FMA
instructions (``test_fma_contraction_is_on_as_at_the_default_level`` checks
it, since the bitwise-invariance tests depend on it). The flag is set before
jax creates its CPU backend and is inherited by the tests' subprocesses; an
``XLA_FLAGS`` that already names an optimization level is left alone.
"""

from __future__ import annotations

import os

_LEVEL = "--xla_backend_optimization_level"

if _LEVEL not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
      f"{os.environ.get('XLA_FLAGS', '')} {_LEVEL}=1".strip())
