"""Evaluation: task contract and registry, generation backends, statistics, the eval runner.

Import submodules directly (`tunelab.evaluation.registry`, ...); this package imports nothing so
that `import tunelab` stays cheap.
"""
