"""The named optimizers of §1.3 and §1.3.2: a building block and a step size.

Each is an ``optax.chain`` of a sign-neutral block of
``wonderland.optim.transforms`` with ``scale_by_learning_rate``, so it
composes with any other optax transformation and works under
``optax.inject_hyperparams``, ``optax.apply_if_finite`` and
``optax.MultiSteps``. Every ``learning_rate`` is a number eta > 0 or an optax
schedule t -> eta_t.

Example::

  opt = wonderland.optim.momentum(learning_rate=0.01, decay=0.9)
  state = opt.init(x)
  updates, state = opt.update(jax.grad(f)(x), state, x)
  x = optax.apply_updates(x, updates)    # x_t = x_{t-1} + g_t
"""

from __future__ import annotations

import jax
import optax

from wonderland.optim import transforms

__all__ = [
    "gd",
    "normalized_gd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
]


def gd(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
  r"""Steepest descent, p_t = -grad f(x_{t-1}) (§1.3).

  .. math::
    x_t = x_{t-1} - \eta_t \nabla f(x_{t-1})

  The same steps as ``optax.sgd(learning_rate)``.

  Args:
    learning_rate: eta_t > 0, a number or a schedule.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` is not > 0.
  """
  return optax.chain(transforms.scale_by_learning_rate(learning_rate))


def normalized_gd(
    learning_rate: optax.ScalarOrSchedule,
) -> optax.GradientTransformationExtraArgs:
  r"""Descent along the normalized direction of §1.3: every step has length eta_t.

  .. math::
    p_t = -\frac{\nabla f(x_{t-1})}{\lVert \nabla f(x_{t-1}) \rVert}, \qquad
    x_t = x_{t-1} + \eta_t p_t

  The norm is over the whole pytree. A zero gradient gives a zero step, never
  NaN. With a constant eta the iterates cannot settle closer to a minimum than
  about eta; a decaying schedule lets them converge.

  Args:
    learning_rate: eta_t > 0 (the step length), a number or a schedule.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` is not > 0.
  """
  return optax.chain(
      transforms.scale_by_unit_norm(),
      transforms.scale_by_learning_rate(learning_rate),
  )


def momentum(
    learning_rate: optax.ScalarOrSchedule, decay: jax.typing.ArrayLike = 0.9
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent with momentum, exactly as §1.3.2 writes it.

  .. math::
    g_t = -\eta_t \nabla f(x_{t-1}) + \lambda g_{t-1}, \qquad
    x_t = x_{t-1} + g_t, \qquad g_0 = 0

  eta_t sits **inside** the accumulator: unrolled,
  g_t = -sum_k lambda^k eta_{t-k} grad f(x_{t-k-1}), each gradient keeping the
  step size of its own step. ``optax.sgd(learning_rate, momentum=lambda)``
  puts eta **outside**: it accumulates v_t = grad f(x_{t-1}) + lambda v_{t-1}
  and steps by -eta_t v_t = -sum_k lambda^k eta_t grad f(x_{t-k-1}), rescaling
  every past gradient by today's eta_t. The two coincide for a constant eta.
  Under a schedule they differ: when eta_t drops, optax's step shrinks at
  once, while ours still carries lambda times the larger previous step (and
  during a warm-up optax amplifies the accumulated velocity, ours does not).

  Unrolled twice (the expansion of §1.3.2, with eta_{t-1} on the second
  gradient; the notes write eta_t, which is the same for a constant eta):

  .. math::
    g_t = -\eta_t \nabla f(x_{t-1}) - \lambda \eta_{t-1} \nabla f(x_{t-2})
          + \lambda^2 g_{t-2}

  Args:
    learning_rate: eta_t > 0, a number or a schedule.
    decay: lambda in [0, 1).

  Returns:
    An ``optax.GradientTransformationExtraArgs``; its momentum state holds
    g_{t-1} (field ``velocity``).

  Raises:
    ValueError: if a concrete ``learning_rate`` is not > 0 or ``decay`` is
      outside [0, 1).

  References:
    Polyak, Some methods of speeding up the convergence of iteration methods,
    USSR Comp. Math. and Math. Physics, 1964.
  """
  return optax.chain(
      transforms.scale_by_learning_rate(learning_rate),
      transforms.scale_by_momentum(decay),
  )


def nesterov(
    learning_rate: optax.ScalarOrSchedule, decay: jax.typing.ArrayLike = 0.9
) -> optax.GradientTransformationExtraArgs:
  r"""Nesterov momentum: the momentum step is taken from the looked-ahead point.

  .. math::
    g_t = -\eta_t \nabla f(x_{t-1}) + \lambda g_{t-1}, \qquad
    x_t = x_{t-1} - \eta_t \nabla f(x_{t-1}) + \lambda g_t, \qquad g_0 = 0

  This is the form of Sutskever et al. (2013) used by
  ``optax.sgd(..., nesterov=True)`` and PyTorch's ``SGD(nesterov=True)``, with
  eta_t inside the accumulator as in ``momentum``; it takes the same steps as
  optax's for a constant eta.

  Args:
    learning_rate: eta_t > 0, a number or a schedule.
    decay: lambda in [0, 1).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` is not > 0 or ``decay`` is
      outside [0, 1).

  References:
    Nesterov, A method for solving the convex programming problem with
    convergence rate O(1/k^2), Soviet Math. Doklady, 1983.
    Sutskever, Martens, Dahl & Hinton, On the importance of initialization and
    momentum in deep learning, ICML 2013.
  """
  return optax.chain(
      transforms.scale_by_learning_rate(learning_rate),
      transforms.scale_by_momentum(decay, nesterov=True),
  )


def adagrad(
    learning_rate: optax.ScalarOrSchedule, eps: jax.typing.ArrayLike = 1e-10
) -> optax.GradientTransformationExtraArgs:
  r"""Adagrad: each coordinate's step shrinks with its accumulated gradients.

  .. math::
    G_t = G_{t-1} + \nabla f(x_{t-1})^2, \quad G_0 = 0, \qquad
    x_t = x_{t-1} - \eta_t \frac{\nabla f(x_{t-1})}{\sqrt{G_t} + \epsilon}

  eps is **outside** the square root, like PyTorch's ``Adagrad`` (same
  default, 1e-10, and G_0 = 0: the same steps). ``optax.adagrad`` puts it
  inside, sqrt(G_t + eps) with eps = 1e-7, and starts from G_0 = 0.1.

  Args:
    learning_rate: eta_t > 0, a number or a schedule.
    eps: eps > 0.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` or ``eps`` is not > 0.
  """
  return optax.chain(
      transforms.scale_by_adagrad(eps),
      transforms.scale_by_learning_rate(learning_rate),
  )


def rmsprop(
    learning_rate: optax.ScalarOrSchedule,
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  r"""RMSprop: steps divided by the root of a moving average of squared gradients.

  .. math::
    v_t = \lambda v_{t-1} + (1 - \lambda) \nabla f(x_{t-1})^2, \quad v_0 = 0,
    \qquad x_t = x_{t-1} - \eta_t \frac{\nabla f(x_{t-1})}{\sqrt{v_t} + \epsilon}

  eps is **outside** the square root, like PyTorch's ``RMSprop`` and
  ``optax.rmsprop(..., eps_in_sqrt=False)`` (both take the same steps);
  optax's default ``eps_in_sqrt=True`` uses sqrt(v_t + eps).

  Args:
    learning_rate: eta_t > 0, a number or a schedule.
    decay: lambda in [0, 1).
    eps: eps > 0.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` or ``eps`` is not > 0, or
      ``decay`` is outside [0, 1).
  """
  return optax.chain(
      transforms.scale_by_rmsprop(decay, eps),
      transforms.scale_by_learning_rate(learning_rate),
  )


def adam(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam: momentum and per-coordinate step sizes, both bias-corrected.

  .. math::
    x_t = x_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

  with m_t, v_t, hat m_t, hat v_t as in ``transforms.scale_by_adam``. eps is
  **outside** the square root, as in ``optax.adam`` and PyTorch's ``Adam``:
  all three take the same steps.

  Args:
    learning_rate: eta_t > 0, a number or a schedule.
    b1: beta_1 in [0, 1).
    b2: beta_2 in [0, 1).
    eps: eps > 0.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: if a concrete ``learning_rate`` or ``eps`` is not > 0, or
      ``b1`` or ``b2`` is outside [0, 1).

  References:
    Kingma & Ba, Adam: a method for stochastic optimization, ICLR 2015.
  """
  return optax.chain(
      transforms.scale_by_adam(b1, b2, eps),
      transforms.scale_by_learning_rate(learning_rate),
  )
