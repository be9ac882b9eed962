"""Linearization (§1.2): the notes' example and the order of Taylor's error.

Reproduces the notes' code: f(x) = x^2 - 1.5 x at x = 0.5 gives
f(0.51) = -0.5049 and its linearization -0.5050. Then it measures
||f(x0 + h v) - f(x0) - df(x0) h v|| for a vector function f : R^3 -> R^3 and
shrinking h, and fits the order of the error (Taylor: 2).

Command:  python experiments/taylor.py --workdir=runs/taylor
Runtime:  about 3 seconds on a 2-core CPU.
Result:   taylor.csv in the workdir; the fitted order printed is 2.00 +- 0.05.
"""

import ml_collections


def get_config(variant: str = ""):
  """The default config; ``variant="quick"`` (``--config=...:quick``) is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  config = ml_collections.ConfigDict()
  # The scalar example of the notes: f(x) = x^2 - 1.5 x, linearized at x0 ...
  config.x0 = 0.5
  # ... and evaluated at x0 + dx (dx > 0; |x0| + dx <= 1e18, finite in
  # float32).
  config.dx = 0.01
  # Step lengths h of the vector example: h_k = h_max / 2^k, k = 0..num_h-1,
  # with h_max <= 10 and the smallest h >= 1e-3 (below, float32 rounding of
  # f swamps the error ~h^2): num_h = 8 gives h down to 0.0039.
  config.h_max = 0.5
  config.num_h = 4 if variant == "quick" else 8
  config.lock()
  return config
