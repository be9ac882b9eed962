"""wonderland.report: the DeepOBS/AlgoPerf protocol on synthetic arrays."""

import csv
import io
import math

import numpy as np
import pytest

from wonderland import report


def test_final_values_marks_diverged_and_non_finite_runs():
  values = np.array([[[3.0, 1.0], [2.0, np.nan]], [[5.0, 4.0], [1.0, 0.5]]])
  diverged = np.array([[False, False], [True, False]])
  final = report.final_values(values, diverged)
  np.testing.assert_array_equal(final, [[1.0, np.inf], [np.inf, 0.5]])
  with pytest.raises(ValueError, match=r"diverged must have shape \(2, 2\)"):
    report.final_values(values, np.zeros(3, bool))
  with pytest.raises(ValueError, match="non-empty last"):
    report.final_values(np.zeros((2, 0)))


def test_best_index_uses_the_median_over_seeds():
  # Setting 0 has the lowest mean (one lucky seed); setting 1 the lowest median.
  final = np.array([[10.0, 10.0, -100.0], [1.0, 2.0, 3.0], [0.5, np.inf, np.inf]])
  assert report.best_index(final) == 1
  # Ties go to the first setting.
  assert report.best_index(np.array([[1.0, 1.0], [1.0, 1.0]])) == 0
  # Everything diverged: the fewest diverged runs.
  assert report.best_index(np.array([[np.inf, np.inf], [np.inf, 1.0]])) == 1
  with pytest.raises(ValueError, match=r"final must have shape \(n_hparams"):
    report.best_index(np.ones(3))


def test_steps_to_target_counts_steps_from_one():
  values = np.array([[5.0, 3.0, 1.0, 0.5], [5.0, 4.0, 4.0, 4.0],
                     [0.1, 0.1, 0.1, 0.1], [np.nan, np.nan, np.nan, np.nan]])
  np.testing.assert_array_equal(report.steps_to_target(values, 1.0),
                                [3.0, np.inf, 1.0, np.inf])
  with pytest.raises(ValueError, match="target must be a finite number"):
    report.steps_to_target(values, math.nan)


def test_summarize_one_cell():
  steps = 10
  t = np.arange(1, steps + 1)
  # eta = 0.1: slow; eta = 1: fast; eta = 10: diverges on one of two seeds.
  values = np.stack([
      np.stack([1.0 / t, 2.0 / t]),
      np.stack([0.5**t, 0.25**t]),
      np.stack([0.1**t, np.full(steps, np.nan)]),
  ])
  diverged = np.array([[False, False], [False, False], [False, True]])
  row = report.summarize(values, diverged, [0.1, 1.0, 10.0], fmin=0.0,
                         target_gap=1e-2, compile_seconds=2.0,
                         run_seconds=6.0)
  # eta = 10's median is inf (one seed diverged), so eta = 1 wins.
  assert row["best"] == 1
  assert row["best_learning_rate"] == 1.0
  assert row["median_final_gap"] == pytest.approx(np.median([0.5**10, 0.25**10]))
  # 0.5^t <= 1e-2 at t = 7, 0.25^t at t = 4: median 5.5 steps.
  assert row["median_steps_to_target"] == 5.5
  # 6 s for 6 runs of 10 steps: 1 s per run, 0.55 s for 5.5 steps.
  assert row["time_to_target"] == pytest.approx(0.55)
  assert row["compile_seconds"] == 2.0
  assert row["diverged_fraction"] == pytest.approx(1 / 6)
  # Unknown f*: measured from the lowest value reached.
  unknown = report.summarize(values + 3.0, diverged, [0.1, 1.0, 10.0],
                             fmin=None, target_gap=1e-2, compile_seconds=0.0,
                             run_seconds=1.0)
  assert unknown["median_final_gap"] == pytest.approx(
      np.median([0.5**10, 0.25**10]) - 0.1**10)
  # The target never reached: infinite steps and time.
  far = report.summarize(values, diverged, [0.1, 1.0, 10.0], fmin=-1.0,
                         target_gap=1e-2, compile_seconds=0.0, run_seconds=0.0)
  assert far["median_steps_to_target"] == math.inf
  assert far["time_to_target"] == math.inf


def test_summarize_rejects_bad_input():
  values = np.ones((2, 3, 4))
  with pytest.raises(ValueError, match=r"learning_rates must have shape \(2,\)"):
    report.summarize(values, np.zeros((2, 3), bool), [1.0], fmin=0.0,
                     target_gap=1.0, compile_seconds=0.0, run_seconds=0.0)
  with pytest.raises(ValueError, match="target_gap must be a finite number > 0, got 0"):
    report.summarize(values, np.zeros((2, 3), bool), [1.0, 2.0], fmin=0.0,
                     target_gap=0, compile_seconds=0.0, run_seconds=0.0)
  with pytest.raises(ValueError, match=r"values must have shape \(n_lr"):
    report.summarize(np.ones((2, 3)), None, [1.0, 2.0], fmin=0.0,
                     target_gap=1.0, compile_seconds=0.0, run_seconds=0.0)


def test_performance_profile_by_hand():
  # Solver A is best on p0 and p1, B on p2, nobody solves p3.
  costs = np.array([[10.0, 20.0, 40.0, np.inf],
                    [20.0, 20.0, 10.0, np.inf],
                    [np.inf, 60.0, 10.0, np.inf]])
  rho = report.performance_profile(costs, [1.0, 2.0, 3.0, 4.0, 100.0])
  np.testing.assert_allclose(rho[0], [0.50, 0.50, 0.50, 0.75, 0.75])
  np.testing.assert_allclose(rho[1], [0.50, 0.75, 0.75, 0.75, 0.75])
  np.testing.assert_allclose(rho[2], [0.25, 0.25, 0.50, 0.50, 0.50])
  assert np.all(np.diff(rho, axis=1) >= 0)
  # A zero cost (target met at the start) is best; others are infinitely worse.
  zero = report.performance_profile(np.array([[0.0], [5.0]]), [1.0, 1e6])
  np.testing.assert_array_equal(zero, [[1.0, 1.0], [0.0, 0.0]])
  with pytest.raises(ValueError, match="taus must be a 1-D array of finite factors >= 1"):
    report.performance_profile(costs, [0.5, 2.0])
  with pytest.raises(ValueError, match="costs must be non-negative"):
    report.performance_profile(-costs, [1.0])


def test_tables():
  rows = [{"name": "gd", "eta": 0.1, "steps": math.inf, "ok": True},
          {"name": "adam", "eta": 0.001234567, "steps": 12.0, "ok": False}]
  cols = ["name", "eta", "steps", "ok"]
  text = report.format_table(rows, cols)
  lines = text.splitlines()
  assert lines[0].split() == cols
  assert set(lines[1].replace(" ", "")) == {"-"}
  assert lines[2].split() == ["gd", "0.1", "inf", "True"]
  assert len({len(line) for line in lines}) == 1  # aligned
  md = report.markdown_table(rows, cols).splitlines()
  assert md[0] == "| name | eta | steps | ok |"
  assert md[3] == "| adam | 0.00123 | 12 | False |"
  parsed = list(csv.DictReader(io.StringIO(report.csv_text(rows, cols))))
  assert float(parsed[1]["eta"]) == pytest.approx(0.001234567, rel=1e-5)
  assert parsed[0]["steps"] == "inf"
  with pytest.raises(ValueError, match=r"rows\[0\] lacks the columns \['x'\]"):
    report.format_table(rows, ["x"])


def test_ranking_orders_by_problems_solved_then_mean_rank():
  inf = float("inf")
  rows = [
      # p1: b reaches the target first; a later; c never (but a smaller gap
      # than d, which also misses).
      dict(problem="p1", optimizer="a", median_steps_to_target=30, median_final_gap=1e-6),
      dict(problem="p1", optimizer="b", median_steps_to_target=10, median_final_gap=1e-4),
      dict(problem="p1", optimizer="c", median_steps_to_target=inf, median_final_gap=0.1),
      dict(problem="p1", optimizer="d", median_steps_to_target=inf, median_final_gap=float("nan")),
      # p2: a and b tie exactly and share place 1; c solves it too.
      dict(problem="p2", optimizer="a", median_steps_to_target=5, median_final_gap=0.0),
      dict(problem="p2", optimizer="b", median_steps_to_target=5, median_final_gap=0.0),
      dict(problem="p2", optimizer="c", median_steps_to_target=50, median_final_gap=0.0),
      dict(problem="p2", optimizer="d", median_steps_to_target=None, median_final_gap=1.0),
  ]
  table = report.ranking(rows)
  assert [r["optimizer"] for r in table] == ["b", "a", "c", "d"]
  by = {r["optimizer"]: r for r in table}
  assert (by["b"]["solved"], by["b"]["wins"], by["b"]["mean_rank"]) == (2, 2, 1.0)
  assert (by["a"]["solved"], by["a"]["wins"], by["a"]["mean_rank"]) == (2, 1, 1.5)
  assert (by["c"]["solved"], by["c"]["mean_rank"]) == (1, 3.0)
  assert (by["d"]["solved"], by["d"]["wins"], by["d"]["mean_rank"]) == (0, 0, 4.0)
  assert all(r["problems"] == 2 for r in table)


def test_ranking_ties_gaps_that_differ_by_float32_noise_only():
  # Two runs stuck in the same local minimum: gaps 24.873844 and 24.873842
  # differ in the 8th digit, which is rounding, not a better optimizer.
  inf = float("inf")
  rows = [
      dict(problem="p", optimizer="gd", median_steps_to_target=inf, median_final_gap=24.873842),
      dict(problem="p", optimizer="momentum", median_steps_to_target=inf, median_final_gap=24.873844),
      dict(problem="p", optimizer="adam", median_steps_to_target=inf, median_final_gap=24.9),
  ]
  by = {r["optimizer"]: r for r in report.ranking(rows)}
  assert by["gd"]["mean_rank"] == by["momentum"]["mean_rank"] == 1.0
  assert by["gd"]["wins"] == by["momentum"]["wins"] == 1
  assert by["adam"]["mean_rank"] == 3.0
  # With all the digits the noise decides, as it did before.
  by = {r["optimizer"]: r for r in report.ranking(rows, gap_digits=12)}
  assert by["momentum"]["mean_rank"] == 2.0
  with pytest.raises(ValueError, match="gap_digits must be an integer >= 1, got 0"):
    report.ranking(rows, gap_digits=0)


def test_edge_inputs_are_one_sentence_and_negative_zero_prints_as_zero():
  with pytest.raises(ValueError, match=r"values must have a non-empty step axis, got shape \(2, 0\)"):
    report.steps_to_target(np.zeros((2, 0)), 1.0)
  with pytest.raises(ValueError, match="taus must be a 1-D array of finite factors >= 1"):
    report.performance_profile([[1.0, np.inf], [2.0, np.inf]], [1.0, np.inf])
  with pytest.raises(ValueError, match="target_gap must be a finite number > 0, got inf"):
    report.summarize(np.ones((1, 2, 3)), np.zeros((1, 2), bool), [0.1], fmin=0.0,
                     target_gap=float("inf"), compile_seconds=0.0, run_seconds=1.0)
  assert "| 0 |" in report.markdown_table([{"x": -0.0}], ["x"])
  assert "-0" not in report.csv_text([{"x": -0.0}], ["x"])


def test_best_index_tie_rules():
  inf = np.inf
  # Lowest median wins; equal medians go to the first index.
  assert report.best_index([[1.0, 2.0, 3.0], [0.5, 2.0, 9.0]]) == 0
  # Equal medians: the tiebreak's medians decide.
  assert report.best_index([[2.0, 2.0], [2.0, 2.0]],
                           tiebreak=[[5.0, 5.0], [1.0, 1.0]]) == 1
  # Every median +inf: the setting with the fewest failed runs wins.
  assert report.best_index([[inf, inf, inf], [inf, inf, 1.0]]) == 1
  # NaN counts as +inf.
  assert report.best_index([[np.nan, np.nan, 1.0], [inf, 1.0, 1.0]]) == 1
  with pytest.raises(ValueError, match="tiebreak must have the shape"):
    report.best_index([[1.0]], tiebreak=[[1.0, 2.0]])


def test_best_index_ties_at_significant_digits_go_to_the_first_index():
  # Momentum on McCormick: neighbouring etas' medians 1.2e-7 apart (float32
  # noise) tie at 5 significant digits; the first (smaller) eta wins.
  final = [[-1.9132229, -1.9132229], [-1.9132230, -1.9132231]]
  assert report.best_index(final) == 1
  assert report.best_index(final, digits=5) == 0
  # A real difference at the 5th digit still decides, as in the ranking.
  assert report.best_index([[1.0001, 1.0001], [1.0, 1.0]], digits=5) == 1
  # Tiny values keep their digits: 1e-12 and 3e-12 do not tie.
  assert report.best_index([[3e-12, 3e-12], [1e-12, 1e-12]], digits=5) == 1
  # The tiebreak is rounded alike; +inf stays +inf.
  assert report.best_index([[np.inf], [np.inf]], tiebreak=[[2.000001],
                                                           [2.0]],
                           digits=5) == 0
  # The ranking rounds the same way.
  rows = [{"problem": "p", "optimizer": o, "median_steps_to_target": 5,
           "median_final_gap": g}
          for o, g in (("a", 1.2345649), ("b", 1.2345551))]
  assert [r["wins"] for r in report.ranking(rows)] == [1, 1]
  assert report.best_index([[1.2345649], [1.2345551]], digits=5) == 0
  for bad in (0, 2.5, True):
    with pytest.raises(ValueError, match="digits must be an integer >= 1"):
      report.best_index([[1.0]], digits=bad)


def test_steps_to_target_keeps_a_target_reached_before_divergence():
  # Reached at step 2, then NaN from the divergence on: 2 steps, as AlgoPerf.
  values = np.array([[3.0, 0.5, np.nan, np.nan], [3.0, 2.0, 1.5, 1.2]])
  np.testing.assert_array_equal(report.steps_to_target(values, 1.0), [2.0, np.inf])
