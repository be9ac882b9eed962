"""The compare job's cell store: one optimizer on one problem, as ``.npz``.

A cell holds every run of its grid (each learning rate eta, times each
variant of the optimizer's swept hyperparameters) and a fingerprint of
everything that determined it (``fingerprint``), so that a rerun with the
same workdir reads it back instead of computing it again, and never reads
back a cell that another optimizer, problem, grid or library would compute
differently. A cell is written atomically (a temporary file, then a rename);
a missing, truncated or corrupt file, one of an older layout, one of another
fingerprint, or one whose contents do not fit the plan (``Layout``: its
names, grid, variants, and the shapes and dtypes of its arrays) reads as
None: the cell is computed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from absl import logging

from wonderland import files

__all__ = ["Cell", "Layout", "fingerprint", "cell_path", "save_cell",
           "load_cell", "mismatch"]


class Cell(NamedTuple):
  """One optimizer on one problem: every run of its grid.

  The grid's configurations are eta-major: configuration c runs eta
  ``learning_rates[c]`` with the swept hyperparameters ``variants()[c]``
  (one configuration per eta where nothing else is swept).

  Attributes:
    optimizer, problem: the optimizer's label and the problem's name.
    learning_rates: eta of each configuration ``~ (n_configs,)``.
    values: f(x_t), t = 1..steps ``~ (n_configs, n_seeds, steps)``.
    diverged: ``~ (n_configs, n_seeds)``.
    final_x: where each run stopped ``~ (n_configs, n_seeds, dim)``.
    path: x_0..x_steps of seed 0 at eta* ``~ (steps + 1, dim)``, or
      ``~ (0, dim)`` when the problem is not 2-D.
    compile_seconds, run_seconds: of the program that computed the cell.
    program_runs: how many runs that program had (run_seconds is for all).
    program_cells: how many cells it computed.
    variants_json: the swept hyperparameters of each configuration, a JSON
      list of dicts (``variants()``).
    fingerprint: what the cell depends on (checked on resume).
  """

  optimizer: str
  problem: str
  learning_rates: np.ndarray
  values: np.ndarray
  diverged: np.ndarray
  final_x: np.ndarray
  path: np.ndarray
  compile_seconds: float
  run_seconds: float
  program_runs: int
  program_cells: int
  variants_json: str
  fingerprint: str

  def variants(self) -> list[dict[str, Any]]:
    """The swept hyperparameters of each configuration (empty dicts if none)."""
    return json.loads(self.variants_json)


class Layout(NamedTuple):
  """What a cell of the plan holds, to check a cell read back against.

  Attributes:
    optimizer, problem: the optimizer's label and the problem's name.
    learning_rates: eta of each configuration ``~ (n_configs,)`` (float64).
    variants_json: the swept hyperparameters of each configuration.
    num_seeds, steps, dim: seeds, steps per run, the problem's dimension.
  """

  optimizer: str
  problem: str
  learning_rates: np.ndarray
  variants_json: str
  num_seeds: int
  steps: int
  dim: int

  def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of each array of such a cell."""
    n = len(self.learning_rates)
    path_steps = self.steps + 1 if self.dim == 2 else 0
    f32 = np.dtype(np.float32)
    return {
        "learning_rates": ((n,), np.dtype(np.float64)),
        "values": ((n, self.num_seeds, self.steps), f32),
        "diverged": ((n, self.num_seeds), np.dtype(bool)),
        "final_x": ((n, self.num_seeds, self.dim), f32),
        "path": ((path_steps, self.dim), f32),
    }


def mismatch(cell: Cell, layout: Layout) -> str | None:
  """What of ``cell`` does not fit ``layout`` (a phrase), or None if it fits."""
  for key, (shape, dtype) in layout.shapes().items():
    a = np.asarray(getattr(cell, key))
    if a.shape != shape or a.dtype != dtype:
      return (f"{key} is {a.dtype}{list(a.shape)}, the plan's "
              f"{dtype}{list(shape)}")
  for key in ("optimizer", "problem", "variants_json"):
    given, planned = getattr(cell, key), getattr(layout, key)
    if given != planned:
      return f"{key} is {given!r}, the plan's {planned!r}"
  if not np.array_equal(cell.learning_rates, layout.learning_rates):
    return "its learning rates are not the plan's"
  if cell.program_runs < 1 or cell.program_cells < 1:
    return f"it counts {cell.program_runs} runs in {cell.program_cells} cells"
  return None


def fingerprint(**parts: Any) -> str:
  """What a cell's numbers depend on, as a JSON string (sorted keys).

  The job passes the optimizer's identity (factory module, qualified name,
  source hashes, fixed and swept hyperparameters), the problem's definition
  (name, parameters, box, f*, a hash of the initial points and of its data),
  the eta grid (9 significant digits), seeds, steps, batch size, and the
  versions and library source hash of ``wonderland.jobs.provenance``.
  """
  def plain(x):
    if isinstance(x, np.ndarray):
      x = x.tolist()
    if isinstance(x, (float, np.floating)):
      return float(f"{float(x):.9g}")
    if isinstance(x, np.integer):
      return int(x)
    if isinstance(x, (list, tuple)):
      return [plain(v) for v in x]
    if isinstance(x, dict):
      return {str(k): plain(v) for k, v in x.items()}
    return x

  return json.dumps(plain(parts), sort_keys=True)


def cell_path(workdir: Path, optimizer: str, problem: str) -> Path:
  """``workdir/cells/<optimizer>__<problem>.npz``.

  A label with characters other than letters, digits and ``_ . + -`` (a
  default label such as ``optax.sgd(momentum=0.9)``) has them replaced by
  ``_`` and a short hash of the label appended, so that two labels never
  share a file.
  """
  safe = re.sub(r"[^A-Za-z0-9_.+\-]", "_", optimizer)
  if safe != optimizer:
    safe += "-" + hashlib.sha1(optimizer.encode()).hexdigest()[:8]
  return Path(workdir) / "cells" / f"{safe}__{problem}.npz"


def save_cell(path: str | Path, cell: Cell) -> None:
  """Writes ``cell`` as an ``.npz`` atomically (temporary file, rename)."""
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in cell._asdict().items()})
  files.atomic_write(path, buf.getvalue())


def load_cell(path: str | Path, fingerprint: str | None = None,
              layout: Layout | None = None) -> Cell | None:
  """Reads a cell back.

  Returns:
    The cell; None if the file is missing, unreadable, of another
    fingerprint than ``fingerprint`` (when given) or does not fit ``layout``
    (when given; logged with what does not fit).
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      fields = {k: data[k] for k in Cell._fields}
    for key in ("optimizer", "problem", "variants_json", "fingerprint"):
      fields[key] = str(fields[key])
    for key in ("compile_seconds", "run_seconds"):
      fields[key] = float(fields[key])
    for key in ("program_runs", "program_cells"):
      fields[key] = int(fields[key])
  except (OSError, ValueError, TypeError, KeyError, EOFError,
          zipfile.BadZipFile):
    return None  # a truncated or corrupt file: the cell is computed again
  cell = Cell(**fields)
  if fingerprint is not None and cell.fingerprint != fingerprint:
    return None
  wrong = None if layout is None else mismatch(cell, layout)
  if wrong is not None:
    logging.warning("%s does not fit the plan (%s): computed again.", path,
                    wrong)
    return None
  return cell
