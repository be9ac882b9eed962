"""wonderland: the mathematics of a differentiable wonderland, in JAX.

Tensors (§1.1), derivatives (§1.2), and gradient descent with its accelerations
(§1.3) as Optax-compatible gradient transformations, with the objectives, runs,
sweeps and reports a researcher needs to compare optimizers.
"""

from wonderland import batching
from wonderland import data
from wonderland import landscape
from wonderland import optim
from wonderland import plots
from wonderland import problems
from wonderland import report
from wonderland import tensors
from wonderland.derivatives import check_grad
from wonderland.derivatives import directional_derivative
from wonderland.derivatives import fitted_order
from wonderland.derivatives import grad
from wonderland.derivatives import hessian
from wonderland.derivatives import hvp
from wonderland.derivatives import jacobian
from wonderland.derivatives import JACOBIAN_MODES
from wonderland.derivatives import linearize
from wonderland.derivatives import taylor_errors
from wonderland.landscape import classify_stationary_point
from wonderland.landscape import convexity_test
from wonderland.landscape import ConvexityReport
from wonderland.landscape import find_stationary_points
from wonderland.landscape import is_descent_direction
from wonderland.landscape import is_local_minimum
from wonderland.landscape import preconditioned_sharpness
from wonderland.landscape import preconditioner
from wonderland.landscape import sharpness
from wonderland.landscape import smoothness
from wonderland.problems import Problem
from wonderland._run import DIVERGENCE_THRESHOLD
from wonderland._run import minimize
from wonderland._run import Trace
from wonderland._sweep import sweep
from wonderland._sweep import SweepResult
from wonderland.tensors import batched_matmul
from wonderland.tensors import cosine_similarity
from wonderland.tensors import dot
from wonderland.tensors import hadamard
from wonderland.tensors import mask
from wonderland.tensors import matmul
from wonderland.tensors import template_match

__version__ = "0.2.0"

# Modules renamed in 0.2.0, kept as deprecated aliases for one release: the
# module ``run`` clashed with every job's ``run()`` and ``sweeps`` sat beside
# the function ``sweep``. Their public names are re-exported above.
_DEPRECATED_MODULES = {"run": "wonderland._run", "sweeps": "wonderland._sweep"}


def __getattr__(name: str):
  if name in _DEPRECATED_MODULES:
    import importlib  # pylint: disable=g-import-not-at-top
    import warnings  # pylint: disable=g-import-not-at-top

    warnings.warn(
        f"wonderland.{name} is deprecated since 0.2.0 and will be removed in "
        f"0.3.0; use the top-level names (wonderland.minimize, "
        f"wonderland.sweep, wonderland.Trace, wonderland.SweepResult).",
        DeprecationWarning, stacklevel=2,
    )
    return importlib.import_module(_DEPRECATED_MODULES[name])
  raise AttributeError(f"module 'wonderland' has no attribute {name!r}")

__all__ = [
    # §1.3 optimizers as optax transformations
    "optim",
    # §1.1 tensors
    "tensors",
    "dot",
    "cosine_similarity",
    "template_match",
    "matmul",
    "hadamard",
    "mask",
    "batched_matmul",
    # §1.2 derivatives
    "grad",
    "directional_derivative",
    "jacobian",
    "JACOBIAN_MODES",
    "linearize",
    "hessian",
    "hvp",
    "check_grad",
    "taylor_errors",
    "fitted_order",
    # §1.3.1 objectives and landscapes
    "problems",
    "Problem",
    "landscape",
    "is_descent_direction",
    "classify_stationary_point",
    "is_local_minimum",
    "convexity_test",
    "ConvexityReport",
    "smoothness",
    "sharpness",
    "preconditioned_sharpness",
    "preconditioner",
    "find_stationary_points",
    # §1.3 runs and sweeps (deterministic, or stochastic on data)
    "data",
    "minimize",
    "Trace",
    "DIVERGENCE_THRESHOLD",
    "sweep",
    "SweepResult",
    "batching",
    # experiments' tables and figures
    "report",
    "plots",
]
