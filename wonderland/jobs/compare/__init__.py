"""The main job (``experiments/compare_optimizers.py``): optimizers x problems.

``config`` checks the ``ConfigDict`` once into a frozen ``Plan``; ``job``
runs (or resumes) the cells of the plan in batches; ``cells`` stores each
finished cell on disk; ``report`` turns the cells into ``summary.csv``,
``results.jsonl``, ``report.md`` and the figures.
"""

from wonderland.jobs.compare.config import Plan
from wonderland.jobs.compare.config import validate
from wonderland.jobs.compare.job import run

__all__ = ["Plan", "validate", "run"]
