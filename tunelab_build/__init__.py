"""Tooling that builds what tunelab ships (the built-in datasets and the built-in model).

Not part of the installed package: run from a checkout, e.g. `python -m tunelab_build.pretrain`.
"""
