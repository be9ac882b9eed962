"""wonderland: the mathematics of a differentiable wonderland, in JAX.

Tensors (§1.1), derivatives (§1.2), and gradient descent with its accelerations
(§1.3) as Optax-compatible gradient transformations, with the objectives, runs,
sweeps and reports a researcher needs to compare optimizers.
"""

from wonderland import batching
from wonderland import landscape
from wonderland import optim
from wonderland import plots
from wonderland import problems
from wonderland import report
from wonderland import run
from wonderland import sweeps
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
from wonderland.landscape import smoothness
from wonderland.problems import Problem
from wonderland.run import DIVERGENCE_THRESHOLD
from wonderland.run import minimize
from wonderland.run import Trace
from wonderland.sweeps import sweep
from wonderland.sweeps import SweepResult
from wonderland.tensors import batched_matmul
from wonderland.tensors import cosine_similarity
from wonderland.tensors import dot
from wonderland.tensors import hadamard
from wonderland.tensors import mask
from wonderland.tensors import matmul
from wonderland.tensors import template_match

__version__ = "0.1.0"

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
    "find_stationary_points",
    # §1.3 runs and sweeps
    "run",
    "minimize",
    "Trace",
    "DIVERGENCE_THRESHOLD",
    "sweeps",
    "sweep",
    "SweepResult",
    "batching",
    # experiments' tables and figures
    "report",
    "plots",
]
