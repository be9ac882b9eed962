"""Test-session setup: the LLVM optimization level XLA:CPU compiles at.

Most of the suite's time is compiling small programs, and most of that is
LLVM's optimization passes. So the suite compiles at -O0 (the README's
quickstart gives the figures), with IEEE arithmetic like the default level's
but for one thing: -O0 does not contract a multiply and an add into one FMA
instruction, where -O1 and above do (XLA emits the reductions' order itself,
and fast math stays off). The tests marked ``fma`` check bitwise claims that
hinge on how LLVM compiles a fusion (a run's bits do not depend on the
program around it), so each runs in a child pytest at -O1
(``test_fma_contraction_is_on_as_at_the_default_level`` checks that
contractions happen there). One such claim fails at -O0 only, without any
FMA: that ``minimize(record=("value",))`` records the full trace's f
bitwise. At -O0 the two programs rounded f(x_t) one ulp apart at 7 of 40
steps, from the same points; at -O1, -O2 and -O3 they agree, with each
other and with the code before the change that showed it (2026-12-02, the
carry's ``alive`` flag).

The flag is set before jax creates its CPU backend and is inherited by the
tests' subprocesses. An ``XLA_FLAGS`` that already names a level is left
alone, and then the ``fma`` tests run in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_LEVEL = "--xla_backend_optimization_level"
# Set with the flag, so that pytest-xdist's workers (which inherit both) know
# that the level is the suite's, not one the user chose.
_OURS = "WONDERLAND_TESTS_AT_O0"

if _LEVEL not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
      f"{os.environ.get('XLA_FLAGS', '')} {_LEVEL}=0".strip())
  os.environ[_OURS] = "1"
_SPAWN = os.environ.get(_OURS) == "1"


def pytest_configure(config):
  config.addinivalue_line(
      "markers",
      "fma: a bitwise claim that hinges on how LLVM compiles a fusion (FMA "
      "contraction); runs in a child pytest at LLVM -O1 (tests/conftest.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
  """Runs an ``fma`` test in a child pytest at -O1 instead of here."""
  if not _SPAWN or pyfuncitem.get_closest_marker("fma") is None:
    return None
  flags = os.environ["XLA_FLAGS"].replace(f"{_LEVEL}=0", f"{_LEVEL}=1")
  env = dict(os.environ, XLA_FLAGS=flags)
  env.pop(_OURS)
  child = subprocess.run(
      [sys.executable, "-m", "pytest", pyfuncitem.nodeid, "-q", "-n", "0",
       "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"],
      cwd=pyfuncitem.config.rootpath, env=env, capture_output=True,
      text=True, timeout=600, check=False)
  if child.returncode != 0:
    pytest.fail(f"at -O1 in a child pytest:\n{child.stdout[-6000:]}"
                f"{child.stderr[-2000:]}", pytrace=False)
  return True
