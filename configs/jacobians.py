"""Forward vs reverse mode Jacobians (§1.2.2): where each wins, and "auto".

For f : R^d -> R^c, f(x) = W_2 tanh(W_1 x) with a hidden width h, the
Jacobian J ~ (c, d) costs d forward passes (``jax.jacfwd``: one column each)
or c reverse passes (``jax.jacrev``: one row each). ``wonderland.jacobian``
with ``mode="auto"`` picks forward mode when c >= d. Every (d, c) of the grid
is timed jitted (compile time apart) and eagerly (first call apart), the
three modes interleaved, the median of ``repeats`` calls.

Command:  python experiments/jacobians.py --workdir=runs/jacobians
Runtime:  about 30 seconds on a 2-core CPU.
Result:   jacobians.csv, report.md and two heat maps of log2(t_fwd / t_rev)
          (blue: forward faster, red: reverse faster): jitted, forward mode
          wins where d < c and reverse where d > c; auto (forward mode when
          c >= d) picks the faster mode wherever the two differ by more than
          the timing noise.
"""

import ml_collections


def get_config(variant: str = ""):
  """The default config; ``variant="quick"`` (``--config=...:quick``) is for tests."""
  if variant not in ("", "quick"):
    raise ValueError(f"config variant must be 'quick' or empty, got {variant!r}.")
  quick = variant == "quick"
  config = ml_collections.ConfigDict()
  # Comma-separated distinct input sizes d.
  config.input_sizes = "4,64" if quick else "4,16,64,256"
  # Comma-separated distinct output sizes c (quick: one, between the two d,
  # so that forward mode is the rule for one d and reverse for the other).
  config.output_sizes = "16" if quick else "4,16,64,256"
  # Hidden width h of f(x) = W_2 tanh(W_1 x).
  config.hidden = 16 if quick else 128
  # Timed calls per mode (interleaved); the median is reported.
  config.repeats = 3 if quick else 15
  # Seed of W_1, W_2 and x, an integer in [0, 2**32).
  config.seed = 0
  config.lock()
  return config
