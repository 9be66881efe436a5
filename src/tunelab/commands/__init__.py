"""Command glue: one module per command family, turning CLI arguments into calls of a layer.

The layers (evaluation, compare, ...) never import from here; cli.py and the pipeline do.
"""
