"""MNIST-1D classification tasks: a linear model, an MLP and the paper's 1-D CNN.

MNIST-1D (Greydanus and Kobak, "Scaling down deep learning with MNIST-1D",
ICML 2024) is generated procedurally by the ``mnist1d`` package with its
canonical arguments, ``make_dataset(get_dataset_args())``: nothing is
downloaded or unpickled. It has 4,000 training and 1,000 test signals of 40
features, 10 classes. 500 of the 4,000 training examples are held out for
validation (seed ``SPLIT_SEED``): train / validation / test = 3500 / 500 /
1000. The generated arrays are cached for the process (``load``), and the
global ``random``/``numpy.random`` state that the package reseeds is restored.

Each task is a ``Problem`` over the flat parameters x ~ (dim,) (``unravel(x)``
gives the dict of weights) with ``fn`` the full-batch mean training
cross-entropy, ``loss(x, (features, labels))``, ``data`` the train split,
``evaluate(x)`` and ``minibatch``, as ``supervised_problem`` documents. The
paper feeds the raw signals, so ``standardize`` (per-feature, fitted on the
train split) is off by default. ``init`` is PyTorch's default for
``nn.Linear``/``nn.Conv1d``, the initialisation of the paper's reference code:
every weight and bias of a layer ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in
the inputs of one unit (in_features, or in_channels * kernel_size); ``bounds``
is that box. Install with ``pip install -e ".[data]"``.

References:
  Greydanus, S. and Kobak, D. (2024). Scaling down deep learning with
  MNIST-1D. ICML. https://github.com/greydanus/mnist1d
"""

from __future__ import annotations

import functools
import math
import random
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from wonderland import _checks
from wonderland import data as data_lib
from wonderland.problems.base import Problem
from wonderland.problems.base import uniform_init
from wonderland.problems.data import INSTALL_HINT
from wonderland.problems.data import SPLIT_SEED
from wonderland.problems.data import standardized
from wonderland.problems.data import supervised_problem

__all__ = ["logistic_mnist1d", "mlp_mnist1d", "cnn_mnist1d"]

N_FEATURES = 40
N_CLASSES = 10
N_VALIDATION = 500


class Arrays(NamedTuple):
  """The generated MNIST-1D arrays (numpy, read-only).

  Attributes:
    x_train: the 4,000 training signals ``~ (4000, 40)``, float64.
    y_train: their labels ``~ (4000,)`` in {0, ..., 9}, int64.
    x_test: the 1,000 test signals ``~ (1000, 40)``.
    y_test: their labels ``~ (1000,)``.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


@functools.lru_cache(maxsize=1)
def _generate() -> Arrays:
  try:
    from mnist1d.data import get_dataset_args  # pylint: disable=g-import-not-at-top
    from mnist1d.data import make_dataset  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(
        "the MNIST-1D problems need the mnist1d package, which is not installed; "
        f"install the data extra with {INSTALL_HINT}."
    ) from None
  # make_dataset reseeds Python's and numpy's global generators: restore them.
  python_state, numpy_state = random.getstate(), np.random.get_state()
  try:
    dataset = make_dataset(get_dataset_args())
  finally:
    random.setstate(python_state)
    np.random.set_state(numpy_state)
  arrays = Arrays(dataset["x"], dataset["y"], dataset["x_test"], dataset["y_test"])
  for a in arrays:
    a.setflags(write=False)
  return arrays


def load() -> Arrays:
  """The MNIST-1D arrays of ``make_dataset(get_dataset_args())``, cached.

  Generated once per process; deterministic (the package's seed 42), so the
  cache changes nothing but time.

  Returns:
    ``Arrays(x_train, y_train, x_test, y_test)``, read-only numpy arrays.

  Raises:
    ImportError: if the ``mnist1d`` package is not installed.
  """
  return _generate()


@functools.lru_cache(maxsize=2)
def _splits(standardize: bool) -> data_lib.Dataset:
  arrays = load()
  parts = data_lib.split(
      (arrays.x_train, arrays.y_train),
      {"train": None, "validation": N_VALIDATION},
      jax.random.key(SPLIT_SEED))
  test = (jnp.asarray(arrays.x_test, dtype=float), jnp.asarray(arrays.y_test, dtype=jnp.int32))
  return standardized(data_lib.Dataset(parts["train"], parts["validation"], test), standardize)


def _network(name: str, shapes: dict[str, tuple[int, ...]], fan_in: dict[str, int],
             logits: Callable[[dict[str, jax.Array], jax.Array], jax.Array],
             standardize: bool, doc: str, description: str, convex: bool = False) -> Problem:
  """A ``supervised_problem`` with PyTorch-default init over ``shapes``."""
  standardize = _checks.boolean(f"{name}: standardize", standardize)
  splits = _splits(standardize)
  _, unravel = ravel_pytree({k: jnp.zeros(s, dtype=float) for k, s in shapes.items()})
  upper, _ = ravel_pytree(
      {k: jnp.full(s, 1 / math.sqrt(fan_in[k]), dtype=float) for k, s in shapes.items()})
  bounds = (-upper, upper)
  return supervised_problem(
      name,
      logits=lambda x, features: logits(unravel(x), features),
      splits=splits,
      dim=int(upper.shape[0]),
      bounds=bounds,
      init=uniform_init(bounds),
      doc=doc,
      convex=convex,
      unravel=unravel,
      description=description + (", standardized" if standardize else ""),
  )


def logistic_mnist1d(standardize: bool = False) -> Problem:
  """Multinomial logistic regression on MNIST-1D (a linear softmax classifier).

  logits_i = a_i W + b with W ~ (40, 10), b ~ (10,), dim = 410, and

      f(x) = 1/n sum_i cross_entropy(logits_i, y_i)

  over the n = 3500 training signals a_i (no regularizer): convex, no
  minimizer known. The paper reports 32% test accuracy.

  Raises:
    ValueError: if standardize is not a bool.
    ImportError: if the mnist1d package is not installed.
  """
  shapes = {"w": (N_FEATURES, N_CLASSES), "b": (N_CLASSES,)}

  def logits(p, features):
    return features @ p["w"] + p["b"]

  return _network("logistic_mnist1d", shapes, {"w": N_FEATURES, "b": N_FEATURES}, logits,
                  standardize, logistic_mnist1d.__doc__, "linear softmax 40-10, MNIST-1D",
                  convex=True)


def mlp_mnist1d(hidden: int = 100, standardize: bool = False) -> Problem:
  """A two-hidden-layer ReLU network on MNIST-1D (40-100-100-10).

  With W1 ~ (40, hidden), W2 ~ (hidden, hidden), W3 ~ (hidden, 10) and biases
  (dim = 15,210 for hidden = 100):

      h1 = relu(a_i W1 + b1),  h2 = relu(h1 W2 + b2),  logits_i = h2 W3 + b3,
      f(x) = 1/n sum_i cross_entropy(logits_i, y_i),

  over the n = 3500 training signals (no regularizer). The paper reports 68%
  test accuracy. (The reference notebook's ``MLPBase`` adds a skip connection
  around the second layer, h1 + relu(h1 W2 + b2); this is the plain MLP.)

  Raises:
    ValueError: if hidden is not a positive integer or standardize not a bool.
    ImportError: if the mnist1d package is not installed.
  """
  name = "mlp_mnist1d"
  hidden = _checks.integer(f"{name}: hidden", hidden)
  shapes = {"w1": (N_FEATURES, hidden), "b1": (hidden,), "w2": (hidden, hidden),
            "b2": (hidden,), "w3": (hidden, N_CLASSES), "b3": (N_CLASSES,)}
  fan_in = {"w1": N_FEATURES, "b1": N_FEATURES, "w2": hidden, "b2": hidden,
            "w3": hidden, "b3": hidden}

  def logits(p, features):
    h = jax.nn.relu(features @ p["w1"] + p["b1"])
    h = jax.nn.relu(h @ p["w2"] + p["b2"])
    return h @ p["w3"] + p["b3"]

  return _network(name, shapes, fan_in, logits, standardize, mlp_mnist1d.__doc__,
                  f"ReLU MLP 40-{hidden}-{hidden}-10, MNIST-1D")


def _conv_length(length: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
  return (length + 2 * padding - kernel) // stride + 1


def cnn_mnist1d(channels: int = 25, standardize: bool = False) -> Problem:
  """The paper's small 1-D convolutional network on MNIST-1D (``ConvBase``).

  The signal a_i ~ (40,) is one input channel; three convolutions with
  stride 2 and padding 1, each followed by a ReLU, then a linear classifier
  on the flattened features (channel-major, as PyTorch's ``view``):

      conv1: 1 -> channels, kernel 5   (length 40 -> 19)
      conv2: channels -> channels, kernel 3   (19 -> 10)
      conv3: channels -> channels, kernel 3   (10 -> 5)
      logits_i = flatten(h3) W + b,  W ~ (5 channels, 10),
      f(x) = 1/n sum_i cross_entropy(logits_i, y_i),

  over the n = 3500 training signals (no regularizer). Convolution kernels
  ``c1, c2, c3`` are ``(out, in, width)`` (PyTorch's layout; cross-correlation as a
  matmul of strided patches) with biases ``d1, d2, d3``; dim = 5,210
  for 25 channels. The paper reports 94% test accuracy.

  Raises:
    ValueError: if channels is not a positive integer or standardize not a bool.
    ImportError: if the mnist1d package is not installed.
  """
  name = "cnn_mnist1d"
  channels = _checks.integer(f"{name}: channels", channels)
  length = _conv_length(_conv_length(_conv_length(N_FEATURES, 5), 3), 3)  # 5
  shapes = {"c1": (channels, 1, 5), "d1": (channels,),
            "c2": (channels, channels, 3), "d2": (channels,),
            "c3": (channels, channels, 3), "d3": (channels,),
            "w": (channels * length, N_CLASSES), "b": (N_CLASSES,)}
  fan_in = {"c1": 5, "d1": 5, "c2": 3 * channels, "d2": 3 * channels,
            "c3": 3 * channels, "d3": 3 * channels,
            "w": channels * length, "b": channels * length}

  def conv(h, kernel, bias):
    # Cross-correlation with stride 2 and padding 1 as one matmul of patches:
    # the k strided slices of the padded signal side by side (b, out, k c)
    # times the kernel as a (k c, o) matrix. Under vmap over runs this is a
    # batched matmul; lax.conv_general_dilated with batched kernels became a
    # grouped convolution that XLA:CPU ran several times slower.
    width = kernel.shape[-1]
    out = (h.shape[-1] + 2 - width) // 2 + 1
    padded = jnp.pad(h, ((0, 0), (0, 0), (1, 1))).transpose(0, 2, 1)
    patches = jnp.concatenate(
        [padded[:, j:j + 2 * out - 1:2, :] for j in range(width)], axis=-1)
    weights = kernel.transpose(2, 1, 0).reshape(-1, kernel.shape[0])
    return jax.nn.relu(patches @ weights + bias).transpose(0, 2, 1)

  def logits(p, features):
    h = features[:, None, :]  # (b, 1, 40)
    h = conv(h, p["c1"], p["d1"])
    h = conv(h, p["c2"], p["d2"])
    h = conv(h, p["c3"], p["d3"])
    return h.reshape(h.shape[0], -1) @ p["w"] + p["b"]

  return _network(name, shapes, fan_in, logits, standardize, cnn_mnist1d.__doc__,
                  f"1-D CNN ({channels} channels, ConvBase), MNIST-1D")
