"""A job's figures in several formats: the PNG for the reports, a PDF for papers.

``wonderland.plots`` draws each figure once and writes it as a PNG
(``plots._figure.save``). ``draw`` calls such a plotting function and writes
the same figure in every other format of ``formats`` beside the PNG
(``figures/loss_booth.png`` and ``figures/loss_booth.pdf``): while the
function runs, each PNG it renders is also rendered as PDF (or SVG) from the
same ``Figure``, after its layout, so the PDF is the vector original of the
PNG, not a copy of its pixels. Each file is written atomically.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from wonderland import files

__all__ = ["draw"]


@contextlib.contextmanager
def _also(formats: Sequence[str]) -> Iterator[list[tuple[str, bytes]]]:
  """Captures every PNG rendered inside as ``(format, bytes)`` in ``formats``."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  captured: list[tuple[str, bytes]] = []
  original = Figure.savefig

  def savefig(self, fname, *args, **kwargs):
    if kwargs.get("format") == "png":
      rest = {k: v for k, v in kwargs.items() if k != "format"}
      for fmt in formats:
        buf = io.BytesIO()
        original(self, buf, *args, format=fmt, **rest)
        captured.append((fmt, buf.getvalue()))
    return original(self, fname, *args, **kwargs)

  Figure.savefig = savefig
  try:
    yield captured
  finally:
    Figure.savefig = original


def draw(plot: Callable[..., Any], path: str | Path, *args: Any,
         formats: Sequence[str] = ("png",), **kwargs: Any) -> Path:
  """``plot(path, *args, **kwargs)``, then the same figure in ``formats``.

  Args:
    plot: a ``wonderland.plots`` function that writes one PNG at ``path``.
    path: the PNG (``.png``); other formats go beside it, same stem.
    formats: "png" and any of "pdf", "svg".

  Returns:
    The PNG's path.
  """
  extra = [f for f in formats if f != "png"]
  if not extra:
    return plot(path, *args, **kwargs)
  with _also(extra) as captured:
    written = plot(path, *args, **kwargs)
  for fmt, data in captured[-len(extra):]:
    files.atomic_write(Path(path).with_suffix(f".{fmt}"), data)
  return written
