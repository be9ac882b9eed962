"""The compare job's cell store: one optimizer on one problem, as ``.npz``.

A cell holds every run of its learning-rate grid and a fingerprint of what
determined it (``fingerprint``), so that a rerun with the same workdir reads
it back instead of computing it again. A cell is written atomically (a
temporary file, then a rename); a missing, truncated or corrupt file, or one
of another fingerprint, reads as None: the cell is computed again.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from wonderland import files

__all__ = ["Cell", "fingerprint", "cell_path", "save_cell", "load_cell"]


class Cell(NamedTuple):
  """One optimizer on one problem: every run of its learning-rate grid.

  Attributes:
    optimizer, problem: the names.
    learning_rates: the grid ``~ (n_lr,)``.
    values: f(x_t), t = 1..steps ``~ (n_lr, n_seeds, steps)``.
    diverged: ``~ (n_lr, n_seeds)``.
    path: x_0..x_steps of seed 0 at the best eta ``~ (steps + 1, dim)``, or
      ``~ (0, dim)`` when the problem is not 2-D.
    compile_seconds, run_seconds: of the program that computed the cell.
    program_runs: how many runs that program had (run_seconds is for all).
    program_cells: how many cells it computed.
    fingerprint: what the cell depends on (checked on resume).
  """

  optimizer: str
  problem: str
  learning_rates: np.ndarray
  values: np.ndarray
  diverged: np.ndarray
  path: np.ndarray
  compile_seconds: float
  run_seconds: float
  program_runs: int
  program_cells: int
  fingerprint: str


def fingerprint(optimizer: str, problem: str, *,
                problem_kwargs: Mapping[str, Any],
                learning_rates: Sequence[float], num_seeds: int, seed: int,
                steps: int) -> str:
  """What a cell's numbers depend on, as a JSON string (9 digits per eta)."""
  return json.dumps({
      "optimizer": optimizer,
      "problem": problem,
      "problem_kwargs": dict(problem_kwargs),
      "learning_rates": [float(f"{lr:.9g}") for lr in learning_rates],
      "num_seeds": int(num_seeds),
      "seed": int(seed),
      "steps": int(steps),
  }, sort_keys=True)


def cell_path(workdir: Path, optimizer: str, problem: str) -> Path:
  """``workdir/cells/<optimizer>__<problem>.npz``."""
  return Path(workdir) / "cells" / f"{optimizer}__{problem}.npz"


def save_cell(path: str | Path, cell: Cell) -> None:
  """Writes ``cell`` as an ``.npz`` atomically (temporary file, rename)."""
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in cell._asdict().items()})
  files.atomic_write(path, buf.getvalue())


def load_cell(path: str | Path, fingerprint: str | None = None) -> Cell | None:
  """Reads a cell back; None if missing, unreadable or of another fingerprint."""
  try:
    with np.load(path, allow_pickle=False) as data:
      fields = {k: data[k] for k in Cell._fields}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None  # a truncated or corrupt file: the cell is computed again
  for key in ("optimizer", "problem", "fingerprint"):
    fields[key] = str(fields[key])
  for key in ("compile_seconds", "run_seconds"):
    fields[key] = float(fields[key])
  for key in ("program_runs", "program_cells"):
    fields[key] = int(fields[key])
  cell = Cell(**fields)
  if fingerprint is not None and cell.fingerprint != fingerprint:
    return None
  return cell
