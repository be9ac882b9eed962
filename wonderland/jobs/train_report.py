"""The train job's report.md (``wonderland.jobs.train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from wonderland import report

__all__ = ["edge_cells", "report_md"]


def edge_cells(rows: Sequence[Mapping[str, Any]]) -> list[str]:
  """"optimizer on task (low|high)" for each row whose eta* is at a grid end."""
  return [f"{r['optimizer']} on {r['task']} ({r['edge']})"
          for r in rows if r["edge"]]


def report_md(plan: Any, rows, figures, out: Path,
               env: Mapping[str, Any]) -> str:
  """report.md: the setting, the table of eta* and accuracies, the figures.

  Args:
    plan: the job's ``wonderland.jobs.train.Plan``.
    rows: the summary rows.
    figures: task -> the path of its figure (under out).
    out: the workdir.
    env: ``wonderland.jobs.provenance.environment()``.
  """
  v = env["versions"]
  git = env.get("git")
  lines = [
      "# Training tasks: optimizers tuned on validation, reported on test",
      "",
      f"{len(plan.learning_rates)} learning rates from "
      f"{plan.learning_rates[0]:.3g} to {plan.learning_rates[-1]:.3g} x "
      f"{plan.seeds} seeds, {plan.steps} steps of batch {plan.batch_size}, "
      f"evaluated every {plan.eval_every} steps. eta* maximises the median "
      "validation accuracy over seeds (compared at 5 significant digits; "
      "ties to the lower validation loss, then to the smaller eta); the test "
      "accuracy is the median over seeds at eta*, with its interquartile "
      "range. The validation target of a task is the best median validation "
      f"accuracy any optimizer reached, less {plan.target_margin:g}; *steps* "
      "is the first evaluated step at which the median validation accuracy "
      "over seeds reaches it. `paper` is Adam's test accuracy in Greydanus and Kobak "
      "(2024), which trains on all 4,000 training examples (we hold 500 out).",
      "",
      f"Computed with jax {v['jax']}, optax {v['optax']}, wonderland "
      f"{v['wonderland']} ({'commit ' + git['commit'][:12] if git else 'no git commit'})"
      f" on {env['device_count']} x {env['device_kind']}.",
      "",
  ]
  swept = any(o.swept for o in plan.optimizers)
  table = []
  for r in rows:
    table.append({
        "task": r["task"], "optimizer": r["optimizer"],
        "eta*": r["best_learning_rate"] if not r["edge"]
                else f"{r['best_learning_rate']:.3g} ({r['edge']})",
        "hparams": r["hparams"],
        "val acc": r["median_val_accuracy"],
        "test acc": f"{r['median_test_accuracy']:.3f} "
                    f"[{r['test_accuracy_q25']:.3f}, "
                    f"{r['test_accuracy_q75']:.3f}]",
        "target": r["val_target"], "steps": r["median_steps_to_target"],
        "paper": r["paper_test_accuracy"],
    })
  columns = ("task", "optimizer", "eta*", *(("hparams",) if swept else ()),
             "val acc", "test acc", "target", "steps", "paper")
  lines.append(report.markdown_table(table, columns))
  edges = edge_cells(rows)
  lines += ["", f"**Edge cells** ({len(edges)} of {len(rows)}; eta* at an end "
            "of the grid: widen it and rerun): "
            + ("; ".join(edges) if edges else "none") + ".", ""]
  for task, path in figures.items():
    lines.append(f"![{task}]({Path(path).relative_to(out).as_posix()})")
  return "\n".join(lines) + "\n"
