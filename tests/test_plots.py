"""wonderland.plots: every figure is a PNG, written atomically; bad input is one sentence."""

import numpy as np
import pytest

from wonderland import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _grid():
  xs = np.linspace(-2, 2, 30)
  ys = np.linspace(-1, 3, 20)
  xx, yy = np.meshgrid(xs, ys)
  return xs, ys, (1 - xx) ** 2 + 100 * (yy - xx**2) ** 2


def _is_png(path):
  data = path.read_bytes()
  return data[:8] == PNG and len(data) > 2000


def test_every_figure_is_written(tmp_path):
  rng = np.random.default_rng(0)
  t = np.arange(50)
  curves = {"gd": 1 + rng.random((3, 50)) * 0.9**t,
            "adam": np.vstack([0.5**t, 0.6**t, np.full(50, np.nan)])}
  paths = {"gd": np.cumsum(rng.normal(size=(20, 2)) * 0.1, 0),
           "adam": np.vstack([np.zeros((5, 2)), np.full((2, 2), np.nan)])}
  written = [
      plots.loss_curves(tmp_path / "loss.png", curves, fmin=0.0, title="p"),
      plots.contour_paths(tmp_path / "contour.png", _grid(), paths,
                          minimizers=np.array([[1.0, 1.0]]), title="rosenbrock"),
      plots.value_vs_learning_rate(
          tmp_path / "lr.png", np.array([0.01, 0.1, 1.0]),
          {"gd": {"p": np.array([1.0, 1e-3, np.inf])},
           "adam": {"p": np.array([0.5, 0.1, 1e-9])}}),
      plots.performance_profile(tmp_path / "profile.png", np.geomspace(1, 10, 5),
                                {"gd": np.linspace(0, 1, 5),
                                 "adam": np.ones(5)}),
      plots.lines(tmp_path / "lines.png", {"a": 0.9 ** t[1:]},
                  dashed={"a": 0.9 ** t[1:]}, xlabel="t", ylabel="e",
                  title="rates"),
      plots.heatmap(tmp_path / "heat.png", np.array([[1.0, -1.0]]),
                    row_labels=["4"], col_labels=["4", "16"],
                    annotations=[["fwd", "rev"]], xlabel="c", ylabel="d",
                    title="t", colorbar="log2"),
      plots.contour_stationary_points(tmp_path / "land.png", _grid(),
                      [(np.array([1.0, 1.0]), "minimum"),
                       (np.array([0.0, 0.0]), "saddle")],
                      {"gd": paths["gd"]}, {"gd": 0.5 ** t}, title="t"),
      plots.curve_1d(tmp_path / "curve.png", np.linspace(-1, 1, 50),
                     np.linspace(-1, 1, 50) ** 2, {"gd": np.array([1.0, 0.5])},
                     {"gd": np.array([1.0, 0.25])}, title="x^2"),
  ]
  for path in written:
    assert _is_png(path), path
  # Nothing but the figures: no temporary file is left behind.
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
      p.name for p in written)


def test_colors_are_stable_per_label():
  a = plots.colors(["gd", "adam", "nesterov"])
  assert a == plots.colors(["gd", "adam", "nesterov"])
  assert len(set(a.values())) == 3


def test_bad_input_is_one_sentence(tmp_path):
  with pytest.raises(ValueError, match=r"path must end in \.png"):
    plots.loss_curves(tmp_path / "loss.jpg", {"gd": np.ones((2, 3))}, fmin=0.0,
                      title="p")
  with pytest.raises(ValueError, match=r"curves\['gd'\] must be a 2-D array"):
    plots.loss_curves(tmp_path / "loss.png", {"gd": np.ones(3)}, fmin=0.0,
                      title="p")
  with pytest.raises(ValueError, match="curves must hold at least one curve"):
    plots.loss_curves(tmp_path / "loss.png", {}, fmin=0.0, title="p")
  xs, ys, zs = _grid()
  with pytest.raises(ValueError, match=r"grid values must have shape \(len\(ys\)"):
    plots.contour_paths(tmp_path / "c.png", (xs, ys, zs.T), {}, title="t")
  with pytest.raises(ValueError, match=r"gaps\['gd'\]\['p'\] must have shape \(3,\)"):
    plots.value_vs_learning_rate(tmp_path / "lr.png", np.ones(3),
                                 {"gd": {"p": np.ones(2)}})
  with pytest.raises(ValueError, match=r"matrix must have shape"):
    plots.heatmap(tmp_path / "h.png", np.ones((2, 2)), row_labels=["a"],
                  col_labels=["b"], xlabel="", ylabel="", title="",
                  colorbar="")
  assert not list(tmp_path.iterdir())


def test_a_failed_plot_leaves_no_figure_open(tmp_path):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  before = set(plt.get_fignums())
  xs, ys, zs = _grid()
  for _ in range(3):
    with pytest.raises(ValueError):
      plots.contour_paths(tmp_path / "c.png", (xs, ys, zs.T), {}, title="t")
    with pytest.raises(ValueError):
      plots.value_vs_learning_rate(tmp_path / "lr.png", np.ones(3),
                                   {"gd": {"p": np.ones(2)}})
    with pytest.raises(KeyError):  # a palette without the label
      plots.loss_curves(tmp_path / "l.png", {"gd": np.ones((2, 3))}, fmin=0.0,
                        title="t", palette={"adam": "red"})
  assert set(plt.get_fignums()) == before


def test_non_finite_and_edge_values_give_a_figure_or_one_sentence(tmp_path):
  xs, ys, zs = _grid()
  for bad in (np.inf, np.nan):
    z = zs.copy()
    z[0, 0] = bad  # one non-finite grid value must not blank the contours
    path = plots.contour_paths(tmp_path / f"c{bad}.png", (xs, ys, z),
                               {"gd": np.zeros((3, 2))}, title="t")
    assert _is_png(path) and path.stat().st_size > 20000
  # Every run of an optimizer diverged at step 1: its curve is all NaN.
  path = plots.loss_curves(tmp_path / "nan.png", {"gd": np.full((2, 3), np.nan)},
                           fmin=0.0, title="t")
  assert _is_png(path)
  path = plots.heatmap(tmp_path / "h.png", np.array([[1.0, -3.0, np.inf]]),
                       row_labels=["a"], col_labels=["x", "y", "z"], xlabel="",
                       ylabel="", title="", colorbar="")
  assert _is_png(path)
  with pytest.raises(ValueError, match=r"gaps\['gd'\] must hold at least one problem"):
    plots.value_vs_learning_rate(tmp_path / "lr.png", np.ones(3), {"gd": {}})
  with pytest.raises(ValueError, match=r"rho\['gd'\] must have the shape of taus \(3,\)"):
    plots.performance_profile(tmp_path / "pp.png", np.array([1.0, 2.0, 4.0]),
                              {"gd": np.ones(2)})
  with pytest.raises(ValueError, match=r"curves\['gd'\] must hold at least one step"):
    plots.loss_curves(tmp_path / "e.png", {"gd": np.zeros((2, 0))}, fmin=0.0,
                      title="t")


def test_the_renamed_landscape_figure_is_a_deprecated_alias():
  with pytest.warns(DeprecationWarning, match="use wonderland.plots.contour_stationary_points"):
    assert plots.landscape is plots.contour_stationary_points
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    plots.nope  # pylint: disable=pointless-statement
