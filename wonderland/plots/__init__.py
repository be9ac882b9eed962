"""Figures for experiments (PNG, matplotlib's Agg backend).

Every function takes NumPy arrays (a function's values on a grid rather than
the function, so that nothing here runs JAX), draws one figure, writes it
atomically to ``path`` and closes it. Colours are stable per label: the same
optimizer has the same colour in every figure of a report.

Two kinds of figure, one module each: ``runs`` (values against steps or
learning rates, performance profiles, heat maps of a table) and ``functions``
(a function over its domain: contours with paths and stationary points, a 1-D
curve with iterates).
"""

from wonderland.plots._figure import colors
from wonderland.plots.functions import contour_paths
from wonderland.plots.functions import contour_stationary_points
from wonderland.plots.functions import curve_1d
from wonderland.plots.runs import heatmap
from wonderland.plots.runs import line_panels
from wonderland.plots.runs import lines
from wonderland.plots.runs import loss_curves
from wonderland.plots.runs import performance_profile
from wonderland.plots.runs import value_vs_learning_rate
from wonderland.plots.stability import edge_of_stability
from wonderland.plots.training import training_curves

__all__ = [
    "colors",
    "loss_curves",
    "contour_paths",
    "value_vs_learning_rate",
    "performance_profile",
    "lines",
    "line_panels",
    "heatmap",
    "contour_stationary_points",
    "curve_1d",
    "training_curves",
    "edge_of_stability",
]

# Renamed in 0.2.0, kept as a deprecated alias for one release: ``landscape``
# was also the name of the analysis module and of the experiment.
_DEPRECATED = {"landscape": "contour_stationary_points"}


def __getattr__(name: str):
  if name in _DEPRECATED:
    import warnings  # pylint: disable=g-import-not-at-top

    warnings.warn(
        f"wonderland.plots.{name} is deprecated since 0.2.0 and will be "
        f"removed in 0.3.0; use wonderland.plots.{_DEPRECATED[name]}.",
        DeprecationWarning, stacklevel=2,
    )
    return globals()[_DEPRECATED[name]]
  raise AttributeError(f"module 'wonderland.plots' has no attribute {name!r}")
