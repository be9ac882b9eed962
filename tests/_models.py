"""Small models the tests share."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=None)
def tiny_mlp():
  """A 3-4-2 tanh MLP with squared error on 16 fixed examples (24 parameters).

  Returns:
    ``(loss, params, data)``: loss(params, batch=None) on ``data`` (or on a
    given ``(inputs, targets)`` batch), the parameters, ``(inputs, targets)``.
  """
  rng = np.random.default_rng(1)
  inputs = jnp.asarray(rng.standard_normal((16, 3)), jnp.float32)
  targets = jnp.asarray(rng.standard_normal((16, 2)), jnp.float32)
  params = {"w1": jnp.asarray(rng.standard_normal((3, 4)), jnp.float32),
            "b1": jnp.asarray(0.1 * rng.standard_normal(4), jnp.float32),
            "w2": jnp.asarray(rng.standard_normal((4, 2)), jnp.float32)}

  def loss(p, batch=None):
    x, y = (inputs, targets) if batch is None else batch
    out = jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]
    return jnp.mean((out - y) ** 2)

  return loss, params, (inputs, targets)
