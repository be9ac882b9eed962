"""Sign-neutral building blocks of the optimizers of §1.3 and §1.3.2.

Each block is an ``optax.GradientTransformation``: a ``NamedTuple`` state and
two pure closures, ``init(params)`` and ``update(updates, state, params)``. A
block maps the incoming updates u_t (the gradient grad f(x_{t-1}), or what an
earlier block made of it) to new updates without choosing a sign; the sign and
the step size eta_t come from ``scale_by_learning_rate``. The named optimizers
of ``wonderland.optim.alias`` chain a block with it, and
``optax.apply_updates`` then takes the step x_t = x_{t-1} + updates.

dtypes: arithmetic runs in at least float32 (a bfloat16 gradient is squared
and accumulated in float32), state accumulators are stored in the dtype of the
params they shadow (as in optax), and the returned updates have the dtype of
the incoming ones. For complex params the square u^2 of the formulas is
|u|^2 = u conj(u), as in optax. A state's dtypes never change from one step to the next, so
a jitted step compiles once and the state can be a ``lax.scan`` carry.

Hyperparameters are validated when a block is built, if they are concrete; a
traced value (``optax.inject_hyperparams`` under ``jit`` or ``vmap``) or a
schedule is let through. ``optax.inject_hyperparams`` casts hyperparameters to
the params' dtype unless given ``hyperparam_dtype``: with bfloat16 params a
decay of 0.999 becomes 1.0. That is refused when known; when traced, it
silently changes the method (momentum never forgets, rmsprop divides by eps,
adam's second moment and its bias correction are 0, so its steps are NaN, as
optax's adam's are). Pass ``hyperparam_dtype=jnp.float32``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wonderland.optim import _validation

__all__ = [
    "ScaleByLearningRateState",
    "scale_by_learning_rate",
    "scale_by_unit_norm",
    "MomentumState",
    "scale_by_momentum",
    "AdagradState",
    "scale_by_adagrad",
    "RmspropState",
    "scale_by_rmsprop",
    "AdamState",
    "scale_by_adam",
]

PyTree = Any


def _wide(x: jax.Array) -> jax.Array:
  """x in at least float32, the dtype the blocks compute in."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _abs_sq(x: jax.Array) -> jax.Array:
  """|x|^2 elementwise: x^2 for real x, x conj(x) (a real number) for complex x."""
  if jnp.iscomplexobj(x):
    return jnp.square(x.real) + jnp.square(x.imag)
  return jnp.square(x)


def _cast_like(tree: PyTree, like: PyTree) -> PyTree:
  return jax.tree.map(lambda t, o: t.astype(o.dtype), tree, like)


# --- §1.3: the learning rate eta_t and the normalized direction p_t ----------


class ScaleByLearningRateState(NamedTuple):
  """The step count t and the step size eta_t of the last update."""

  count: jax.Array  # shape=(), int32
  learning_rate: jax.Array  # shape=(), eta_t used by the last update


def scale_by_learning_rate(
    learning_rate: optax.ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformation:
  r"""Multiplies the updates by -eta_t (or by eta_t when ``flip_sign=False``).

  .. math::
    u_t \mapsto -\eta_t \, u_t

  The state records eta_t, so that ``wonderland.minimize`` traces the step
  size of every optimizer built on this block (``Trace.step_sizes``).

  Args:
    learning_rate: the step size eta_t > 0, a number or a schedule (a function
      of the step count t = 0, 1, ...).
    flip_sign: multiply by -eta_t (default), so that a gradient becomes a
      descent step.

  Returns:
    An ``optax.GradientTransformation`` with a ``ScaleByLearningRateState``
    (eta_t is NaN before the first update).

  Raises:
    ValueError: if a concrete ``learning_rate`` is not > 0.
  """
  _validation.positive("learning_rate", learning_rate, schedule=True)
  _validation.boolean("flip_sign", flip_sign)
  sign = -1 if flip_sign else 1

  def scale(updates, eta):
    return jax.tree.map(lambda u: jnp.asarray(sign * eta).astype(u.dtype) * u, updates)

  def init_fn(params):
    del params
    return ScaleByLearningRateState(
        count=jnp.zeros([], jnp.int32),
        learning_rate=jnp.full([], jnp.nan, jnp.float32),
    )

  def update_fn(updates, state, params=None):
    del params
    eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
    updates = scale(updates, eta)
    return updates, ScaleByLearningRateState(
        count=optax.safe_increment(state.count),
        learning_rate=jnp.asarray(eta, jnp.float32),
    )

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_unit_norm() -> optax.GradientTransformation:
  r"""Divides the updates by their global norm: the notes' normalized direction.

  .. math::
    u_t \mapsto \frac{u_t}{\lVert u_t \rVert}, \qquad
    \lVert u \rVert^2 = \sum_{\text{leaves}} \sum_i u_i^2

  The norm is taken over the whole pytree, so the result has norm exactly 1
  and, chained with ``scale_by_learning_rate``, every step has length eta_t.
  A zero update gives a zero update (never NaN), also under ``jax.grad`` of
  the transformation. Squares (|u_i|^2 for complex u) are summed in at least
  float32, so a norm outside about [1.1e-19, 1.8e19] (float32; the square
  underflows to zero or overflows) gives a zero update, as a zero gradient
  does.

  Returns:
    A stateless ``optax.GradientTransformation``.
  """

  def update_fn(updates, state, params=None):
    del params
    leaves = jax.tree.leaves(updates)
    if not leaves:
      return updates, state
    sq = sum(jnp.sum(_abs_sq(_wide(u))) for u in leaves)
    nonzero = sq > 0
    # Both branches of the outer where must be finite for the gradient to be.
    inv_norm = jnp.where(nonzero, jax.lax.rsqrt(jnp.where(nonzero, sq, 1.0)), 0.0)
    updates = jax.tree.map(lambda u: (inv_norm * _wide(u)).astype(u.dtype), updates)
    return updates, state

  return optax.GradientTransformation(optax.init_empty_state, update_fn)


# --- §1.3.2: momentum --------------------------------------------------------


class MomentumState(NamedTuple):
  """The notes' g_{t-1}: the last step taken, before it is applied."""

  velocity: PyTree


def scale_by_momentum(
    decay: jax.typing.ArrayLike = 0.9, *, nesterov: bool = False
) -> optax.GradientTransformation:
  r"""Adds lambda times the previous output to the incoming updates u_t.

  .. math::
    g_t = u_t + \lambda g_{t-1}, \qquad g_0 = 0

  and returns g_t. Fed u_t = -eta_t grad f(x_{t-1}) (that is, chained *after*
  ``scale_by_learning_rate``) this is the momentum of §1.3.2 with eta_t inside
  the accumulator. With ``nesterov=True`` it returns u_t + lambda g_t instead:
  the look-ahead form of Nesterov momentum used by optax and PyTorch
  (Sutskever et al., 2013).

  Args:
    decay: lambda in [0, 1), how much of the previous step is kept.
    nesterov: return u_t + lambda g_t instead of g_t.

  Returns:
    An ``optax.GradientTransformation`` with a ``MomentumState``; the velocity
    has the dtype of the params.

  Raises:
    ValueError: if a concrete ``decay`` is outside [0, 1).
  """
  _validation.unit_interval("decay", decay)
  _validation.boolean("nesterov", nesterov)

  def init_fn(params):
    return MomentumState(velocity=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    velocity = jax.tree.map(
        lambda u, g: _wide(u) + decay * _wide(g), updates, state.velocity
    )
    if nesterov:
      out = jax.tree.map(lambda u, g: _wide(u) + decay * g, updates, velocity)
    else:
      out = velocity
    return _cast_like(out, updates), MomentumState(
        velocity=_cast_like(velocity, state.velocity)
    )

  return optax.GradientTransformation(init_fn, update_fn)


# --- §1.3.2: step sizes that shrink where gradients have been large ----------


class AdagradState(NamedTuple):
  """G_t, the sum of the squared gradients so far."""

  sum_of_squares: PyTree


def scale_by_adagrad(eps: jax.typing.ArrayLike = 1e-10) -> optax.GradientTransformation:
  r"""Divides each coordinate by the root of its summed squared gradients.

  .. math::
    G_t = G_{t-1} + u_t^2, \quad G_0 = 0, \qquad
    u_t \mapsto \frac{u_t}{\sqrt{G_t} + \epsilon}

  eps sits **outside** the square root, as in PyTorch's ``torch.optim.Adagrad``
  (default eps 1e-10, initial accumulator 0), so ours matches PyTorch.
  ``optax.adagrad`` puts it inside, 1 / sqrt(G_t + eps) (default eps 1e-7),
  and starts from G_0 = 0.1; the two agree only when eps and G_0 are
  negligible next to G_t. A coordinate whose gradients have all been zero gets
  a zero update.

  Args:
    eps: eps > 0, added to sqrt(G_t).

  Returns:
    An ``optax.GradientTransformation`` with an ``AdagradState``.

  Raises:
    ValueError: if a concrete ``eps`` is not > 0.

  References:
    Duchi, Hazan & Singer, Adaptive subgradient methods for online learning
    and stochastic optimization, JMLR 2011.
  """
  _validation.positive("eps", eps)

  def init_fn(params):
    return AdagradState(sum_of_squares=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    sums = jax.tree.map(
        lambda u, s: _wide(s) + _abs_sq(_wide(u)), updates, state.sum_of_squares
    )
    out = jax.tree.map(lambda u, s: _wide(u) / (jnp.sqrt(s) + eps), updates, sums)
    return _cast_like(out, updates), AdagradState(
        sum_of_squares=_cast_like(sums, state.sum_of_squares)
    )

  return optax.GradientTransformation(init_fn, update_fn)


class RmspropState(NamedTuple):
  """v_t, the exponential moving average of the squared gradients."""

  nu: PyTree


def scale_by_rmsprop(
    decay: jax.typing.ArrayLike = 0.9, eps: jax.typing.ArrayLike = 1e-8
) -> optax.GradientTransformation:
  r"""Divides each coordinate by the root of a moving average of its squares.

  .. math::
    v_t = \lambda v_{t-1} + (1 - \lambda) u_t^2, \quad v_0 = 0, \qquad
    u_t \mapsto \frac{u_t}{\sqrt{v_t} + \epsilon}

  eps sits **outside** the square root, as in PyTorch's
  ``torch.optim.RMSprop`` (whose decay ``alpha`` defaults to 0.99) and as in
  ``optax.rmsprop(..., eps_in_sqrt=False)``; optax's default
  (``eps_in_sqrt=True``) uses 1 / sqrt(v_t + eps) instead.

  Args:
    decay: lambda in [0, 1).
    eps: eps > 0, added to sqrt(v_t).

  Returns:
    An ``optax.GradientTransformation`` with an ``RmspropState``.

  Raises:
    ValueError: if a concrete ``decay`` is outside [0, 1) or ``eps`` is not > 0.

  References:
    Tieleman & Hinton, Lecture 6.5 of Neural Networks for Machine Learning,
    Coursera 2012.
  """
  _validation.unit_interval("decay", decay)
  _validation.positive("eps", eps)

  def init_fn(params):
    return RmspropState(nu=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    nu = jax.tree.map(
        lambda u, v: decay * _wide(v) + (1 - decay) * _abs_sq(_wide(u)),
        updates,
        state.nu,
    )
    out = jax.tree.map(lambda u, v: _wide(u) / (jnp.sqrt(v) + eps), updates, nu)
    return _cast_like(out, updates), RmspropState(nu=_cast_like(nu, state.nu))

  return optax.GradientTransformation(init_fn, update_fn)


class AdamState(NamedTuple):
  """Step count t and the two moving averages m_t, v_t of Adam."""

  count: jax.Array  # shape=(), int32
  mu: PyTree
  nu: PyTree


def scale_by_adam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> optax.GradientTransformation:
  r"""Momentum on the gradient divided by the root of a moving average of squares.

  .. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) u_t, \quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) u_t^2, \quad m_0 = v_0 = 0,

    u_t \mapsto \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}, \quad
    \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad
    \hat v_t = \frac{v_t}{1 - \beta_2^t}

  eps sits **outside** the square root, as in ``optax.scale_by_adam`` (with
  its default ``eps_root=0``) and PyTorch's ``torch.optim.Adam``: all three
  take the same steps.

  Args:
    b1: beta_1 in [0, 1), the decay of the first moment.
    b2: beta_2 in [0, 1), the decay of the second moment.
    eps: eps > 0, added to sqrt(v_hat_t).

  Returns:
    An ``optax.GradientTransformation`` with an ``AdamState``.

  Raises:
    ValueError: if a concrete ``b1`` or ``b2`` is outside [0, 1) or ``eps`` is
      not > 0. (Under ``optax.inject_hyperparams`` with bfloat16 params, b2 =
      0.999 rounds to 1.0 and is rejected; pass ``hyperparam_dtype=jnp.float32``.)

  References:
    Kingma & Ba, Adam: a method for stochastic optimization, ICLR 2015.
  """
  _validation.unit_interval("b1", b1)
  _validation.unit_interval("b2", b2)
  _validation.positive("eps", eps)

  def init_fn(params):
    return AdamState(
        count=jnp.zeros([], jnp.int32),
        mu=optax.tree.zeros_like(params),
        nu=optax.tree.zeros_like(params),
    )

  def update_fn(updates, state, params=None):
    del params
    mu = jax.tree.map(
        lambda u, m: b1 * _wide(m) + (1 - b1) * _wide(u), updates, state.mu
    )
    nu = jax.tree.map(
        lambda u, v: b2 * _wide(v) + (1 - b2) * _abs_sq(_wide(u)),
        updates,
        state.nu,
    )
    count = optax.safe_increment(state.count)

    def step(m, v):
      t = count.astype(jnp.real(v).dtype)  # float64 params debias in float64
      return (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps)

    out = jax.tree.map(step, mu, nu)
    return _cast_like(out, updates), AdamState(
        count=count, mu=_cast_like(mu, state.mu), nu=_cast_like(nu, state.nu)
    )

  return optax.GradientTransformation(init_fn, update_fn)
