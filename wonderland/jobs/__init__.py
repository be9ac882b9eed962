"""The library side of each experiment script: ``run(config, workdir)``.

``experiments/<name>.py`` parses flags and calls ``wonderland.jobs.<name>.run``;
everything here is importable and testable without absl flags.
"""
