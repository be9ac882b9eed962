"""The README's Python snippets run, in order, as a reader would paste them."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippets_run():
  blocks = re.findall(r"~~~python\n(.*?)~~~", README.read_text(), re.S)
  assert len(blocks) >= 6
  namespace = {}
  for block in blocks:
    exec(compile(block, str(README), "exec"), namespace)  # pylint: disable=exec-used
  # What the comments promise.
  assert int(namespace["best"]) == 1
  assert namespace["Z"].shape == (8, 3, 3)
  assert namespace["result"].values.shape == (64, 8, 1000)
  assert set(namespace["result"].best()) == {"learning_rate"}
  assert bool(namespace["trace"].converged)
