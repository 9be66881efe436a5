"""Evaluation: task contract and registry, generation backends, statistics, the engine
(`engine.py`) and what it holds open while it runs (`context.py`).

Import submodules directly (`tunelab.evaluation.registry`, ...); this package imports nothing so
that `import tunelab` stays cheap.
"""
