"""The jacobians job in-process: its refusals and its interleaved timing.

The real entry point on the quick config runs in test_experiments.py.
"""

from __future__ import annotations

import pytest

from wonderland.jobs import jacobians

_SEED = "99999999999999999999999"


@pytest.mark.parametrize(
    "flags, message",
    [
        ([f"--config.seed={_SEED}"],
         f"config.seed must be an integer in [0, 2**32) (jax.random keys are "
         f"uint32), got {_SEED}."),
        (["--config.input_sizes=4,4"],
         "config.input_sizes must list each entry once, got '4,4'"),
        (["--config.input_sizes=4,5000000"],
         "config.input_sizes must be comma-separated integers in [1, 65536], "
         "got '4,5000000'."),
        (["--config.output_sizes=0"],
         "config.output_sizes must be comma-separated integers in [1, 65536], "
         "got '0'."),
        (["--config.hidden=0"], "config.hidden must be a positive integer"),
        (["--config.repeats=0"], "config.repeats must be a positive integer"),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(refused, flags,
                                                          message):
  sentence = refused("jacobians", jacobians.run, flags)
  assert sentence.startswith(message), sentence


def test_time_modes_rotates_and_keeps_the_median():
  calls = []
  fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
  first, median = jacobians.time_modes(fns, repeats=3)
  assert set(first) == set(median) == set("abc")
  # One warm-up call each, then rounds starting at a, b, c in turn.
  assert calls == list("abc") + list("abc") + list("bca") + list("cab")
