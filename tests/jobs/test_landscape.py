"""The landscape job in-process: its refusals.

The real entry point on the quick config runs in test_experiments.py.
"""

from __future__ import annotations

import pytest

from wonderland.jobs import landscape

_SEED = "99999999999999999999999"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.sin_cos_lr=inf"],
         "config.sin_cos_lr must be a finite positive number, got inf."),
        (["--config.x_sin_2x_lr=inf"],
         "config.x_sin_2x_lr must be a finite positive number, got inf."),
        (["--config.x_sin_2x_x0=nan"],
         "config.x_sin_2x_x0 must be a finite number, got nan."),
        (["--config.x_sin_2x_x0=7.0"],
         "config.x_sin_2x_x0 must be in x_sin_2x's box [-6, 6]"),
        ([f"--config.seed={_SEED}"],
         f"config.seed must be an integer in [0, 2**32) (jax.random keys are "
         f"uint32), got {_SEED}."),
        (["--config.sin_cos_decay=1.0"],
         "config.sin_cos_decay must be in [0, 1), got 1.0."),
        (["--config.x_sin_2x_decays=0.3,0.3"],
         "config.x_sin_2x_decays must list each entry once"),
        (["--config.x_sin_2x_decays=0.3,1.5"],
         "config.x_sin_2x_decays must be comma-separated numbers in [0, 1), "
         "got '0.3,1.5'."),
        (["--config.n_starts=0"], "config.n_starts must be a positive integer"),
        # (The real-data problem of the compare script's quick run.)
        (["--config.problems=quadratic,logistic_breast_cancer"],
         "config.problems has 'logistic_breast_cancer' of dimension 31; the "
         "search forms d x d Hessians, so it takes dimension <= 10."),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(refused, flags,
                                                          message):
  sentence = refused("landscape", landscape.run, flags)
  assert sentence.startswith(message), sentence
