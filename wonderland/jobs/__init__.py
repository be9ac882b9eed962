"""The library side of each experiment script: ``run(config, workdir)``.

``experiments/<name>.py`` parses flags (``wonderland.cli``) and calls the
``run`` of its job: ``wonderland.jobs.compare`` for ``compare_optimizers.py``,
``wonderland.jobs.<name>`` for the others. Everything here is importable and
testable without absl flags.
"""
