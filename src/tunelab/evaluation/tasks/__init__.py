"""Evaluation tasks: one module per task family, each listing its classes in `TASKS`."""
