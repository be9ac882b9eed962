"""The README's Python snippets run, in order, as a reader would paste them."""

import contextlib
import io
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippets_run_and_keep_their_promises():
  blocks = re.findall(r"~~~python\n(.*?)~~~", README.read_text(), re.S)
  assert len(blocks) >= 6
  namespace = {}
  printed = io.StringIO()
  for block in blocks:
    with contextlib.redirect_stdout(printed):
      exec(compile(block, str(README), "exec"), namespace)  # pylint: disable=exec-used
  ns = namespace
  wl, landscape, problems = ns["wl"], ns["landscape"], ns["problems"]
  # What the comments promise, re-evaluated where the snippet discards it.
  np.testing.assert_allclose(ns["scores"], [0.6, 1.0], atol=1e-6)
  assert int(ns["best"]) == 1
  assert ns["Z"].shape == (8, 3, 3)
  assert float(ns["f"](0.51)) == pytest.approx(-0.5049, abs=5e-5)
  assert float(wl.linearize(ns["f"], 0.5)(0.51)) == pytest.approx(-0.5050, abs=5e-5)
  assert wl.jacobian(ns["g"])(jnp.ones(3)).shape == (2, 3)
  kinds = [line.rsplit(" ", 1)[-1] for line in printed.getvalue().splitlines()]
  assert sorted(kinds) == sorted(["minimum"] * 4 + ["saddle"] * 4 + ["maximum"])
  assert landscape.classify_stationary_point(
      problems.get("monkey_saddle").fn, jnp.zeros(2)) == "degenerate"
  assert landscape.convexity_test(
      ns["p"].fn, jax.random.key(1), ns["p"].bounds).violation_fraction > 0
  assert float(landscape.smoothness(
      problems.get("quadratic", kappa=50.0).fn, jnp.ones(2))) == pytest.approx(50.0, rel=1e-5)
  assert ns["x0s"].shape == (8, 2)
  assert ns["result"].values.shape == (64, 8, 1000)
  assert set(ns["result"].best()) == {"learning_rate"}
  assert bool(ns["trace"].converged)
  assert ns["fast"].grad_norms is None
  # The same runs: the same divergences, and values equal to float32 rounding
  # over the first steps (the programs fuse differently; chaotic runs drift).
  healthy = ~np.asarray(ns["fast"].diverged) & ~np.asarray(ns["result"].diverged)
  np.testing.assert_allclose(np.asarray(ns["fast"].values)[healthy][:, :5],
                             np.asarray(ns["result"].values)[healthy][:, :5],
                             rtol=1e-4)
  assert ns["trained"].evals["val_accuracy"].shape == (3, 3, 3)
  assert set(ns["trained"].best("val_accuracy", mode="max")) == {"learning_rate"}
  assert ns["one_run"].values.shape == (50,) and not bool(ns["one_run"].diverged)
  curved = ns["curved"]
  assert float(curved.evals["sharpness"][-1]) == pytest.approx(
      float(landscape.sharpness(problems.get("rosenbrock").fn, curved.params)), rel=1e-3)
  assert ns["adaptive"].evals["preconditioned_sharpness"].shape == (2, 2, 4)
