"""The main job (``experiments/compare_optimizers.py``): optimizers x problems.

``config`` checks the ``ConfigDict`` once into a frozen ``Plan`` (the
optimizers through ``wonderland.jobs.optimizers``, the spec the train job
reads too); ``job`` runs (or resumes) the cells of the plan in batches;
``cells`` stores each finished cell on disk with the fingerprint of what
decided it; ``protocol`` holds the selection rules (runs that left the
domain, eta* and its ties, edges); ``report`` turns the cells into
``summary.csv``, ``results.jsonl``, ``curves.csv``, ``report.md``,
``report.html`` and the figures."""

from wonderland.jobs.compare.config import Plan
from wonderland.jobs.compare.config import validate
from wonderland.jobs.compare.job import run

__all__ = ["Plan", "validate", "run"]
