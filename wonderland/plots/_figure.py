"""What every figure shares: the Agg backend, atomic PNG writes, stable colours."""

from __future__ import annotations

import functools
import io
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from wonderland import files

TINY = 1e-12  # floor of log-scaled values
_DPI = 100


def pyplot():
  """matplotlib.pyplot on the Agg backend, imported on first use."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def closes_on_error(fn):
  """Closes the figures ``fn`` opened if it raises: a failed plot leaks none."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    plt = pyplot()
    before = set(plt.get_fignums())
    try:
      return fn(*args, **kwargs)
    except BaseException:
      for num in set(plt.get_fignums()) - before:
        plt.close(num)
      raise

  return wrapper


def save(fig, path: str | os.PathLike, *, layout: bool = True) -> Path:
  """Writes fig to path (a .png) atomically and closes it; returns path."""
  plt = pyplot()
  path = Path(path)
  if path.suffix != ".png":
    plt.close(fig)
    raise ValueError(f"path must end in .png, got {str(path)!r}.")
  buf = io.BytesIO()
  try:
    # tight_layout once, rather than bbox_inches="tight" (which draws twice).
    if layout:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=_DPI)
  finally:
    plt.close(fig)
  files.atomic_write(path, buf.getvalue())
  return path


def colors(labels: Sequence[str]) -> dict[str, str]:
  """A colour per label (tab10, then tab20), in the order given."""
  plt = pyplot()
  palette = list(plt.get_cmap("tab10").colors) + list(
      plt.get_cmap("tab20").colors[1::2]
  )
  return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def check_curves(name: str, curves: Mapping[str, np.ndarray], rank: int):
  """curves holds at least one label -> array of the given rank."""
  if not curves:
    raise ValueError(f"{name} must hold at least one curve, got none.")
  for label, c in curves.items():
    if np.ndim(c) != rank:
      raise ValueError(
          f"{name}[{label!r}] must be a {rank}-D array, got shape "
          f"{np.shape(c)}."
      )


