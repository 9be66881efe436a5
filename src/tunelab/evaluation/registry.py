"""The task registry: every task module in `tunelab/evaluation/tasks/` registers its tasks in one
place, its module-level `TASKS` tuple.

Discovery is lazy (first call of `list_tasks` / `get_task`), so importing tunelab runs nothing.
Rules, all enforced loudly:
- every module of `tunelab.evaluation.tasks` whose name does not start with `_` must define
  `TASKS` (a tuple of `Task` subclasses; `()` for a module of shared helpers);
- a task name registered twice raises, naming both classes;
- an unknown task name or option fails with the closest name (`did_you_mean`) and the choices.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, did_you_mean
from tunelab.evaluation.task import EvalError, Task

if TYPE_CHECKING:
    from tunelab.config import EvalConfig

_REGISTRY: dict[str, type[Task]] = {}
_DISCOVERED = False


def register(cls: type[Task]) -> type[Task]:
    """Add one task class; raises on a duplicate name or a class that does not fit the contract."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{cls!r} is not a Task subclass")
    if not cls.name:
        raise TypeError(f"task class {cls.__qualname__} has no name")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"task class {cls.__qualname__} must be a dataclass (its fields are its options)")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        other = _REGISTRY[cls.name]
        raise ValueError(f"task '{cls.name}' is registered twice: by {other.__module__}.{other.__qualname__} "
                         f"and {cls.__module__}.{cls.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    """Import every task module once and register its TASKS."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import tunelab.evaluation.tasks as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if not hasattr(module, "TASKS"):
            raise TypeError(f"task module {module.__name__} defines no TASKS tuple "
                            "(use TASKS = () for a helper module)")
        for cls in module.TASKS:
            register(cls)
    _DISCOVERED = True


def list_tasks() -> dict[str, type[Task]]:
    """Every registered task: name -> class, sorted by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def task_class(name: str) -> type[Task]:
    """The class of task `name`. Raises EvalError with suggestions for an unknown name."""
    tasks = list_tasks()
    if name not in tasks:
        raise EvalError(f"unknown task '{name}'{did_you_mean(name, tasks)}; available: {', '.join(tasks)}")
    return tasks[name]


def get_task(name: str, **options: Any) -> Task:
    """An instance of task `name` with its options (dataclass fields) set.

    Raises:
        EvalError: unknown task, or an option the task does not have (with suggestions).
    """
    cls = task_class(name)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in fields:
            raise EvalError(f"task '{name}' has no option '{key}'{did_you_mean(key, fields)}; "
                            f"its options: {', '.join(fields) or 'none'}")
    return cls(**options)


def validate_eval_config(cfg: EvalConfig, runs_tasks: bool = False) -> None:
    """Check `eval.tasks` and `eval.task_options` against the registry, before any work starts.

    Every command calls this right after loading its config, so a misspelt task or option
    fails at once instead of after training.

    Args:
        cfg: the experiment's `eval` section.
        runs_tasks: the command is about to run the tasks (`tunelab run` with its eval stage):
            code-executing tasks then also need `eval.allow_code_execution`.

    Raises:
        ConfigError: an unknown task or option (naming the key and the closest valid name), a
            code-executing task without the opt-in, or checkpoint selection on the report split
            or (without `eval.selection.allow_train_split`) on the train split.
    """
    from tunelab.evaluation.holdout import check_selection_split

    try:
        check_selection_split(cfg.selection)
    except EvalError as e:
        raise ConfigError(str(e)) from None
    if not cfg.tasks and not cfg.task_options:
        return  # nothing to check: keep `tunelab config show` free of the task imports
    tasks = list_tasks()
    for name in cfg.tasks:
        if name not in tasks:
            raise ConfigError(f"eval.tasks: unknown task '{name}'{did_you_mean(name, tasks)}; "
                              f"registered tasks: {', '.join(tasks)}")
    for name, options in cfg.task_options.items():
        if name not in tasks:
            raise ConfigError(f"eval.task_options.{name}: unknown task '{name}'{did_you_mean(name, tasks)}; "
                              f"registered tasks: {', '.join(tasks)}")
        if cfg.tasks and name not in cfg.tasks:  # the runner refuses options of a task it does not run
            raise ConfigError(f"eval.task_options.{name}: task '{name}' is not in eval.tasks "
                              f"({', '.join(cfg.tasks)}); add it there or drop its options")
        fields = [f.name for f in dataclasses.fields(tasks[name])]
        for key in options:
            if key not in fields:
                raise ConfigError(f"eval.task_options.{name}.{key}: task '{name}' has no option '{key}'"
                                  f"{did_you_mean(key, fields)}; its options: {', '.join(fields) or 'none'}")
    risky = [n for n in cfg.tasks if tasks[n].executes_code]
    if runs_tasks and risky and not cfg.allow_code_execution:
        raise ConfigError(
            f"eval.tasks: {', '.join(risky)} execute model-written code. It runs in tunelab's sandbox "
            "(separate process group, limits, no network where possible), but only if you opt in: "
            "pass --allow-code-execution or set eval.allow_code_execution: true")
