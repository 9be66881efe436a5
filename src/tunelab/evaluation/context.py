"""What an evaluation holds open while it runs: the sandbox, the judge and the model sessions.

    with EvalContext(cfg, tasks, run_dir, exp) as ectx:
        session = ectx.session("final")          # loads nothing until a task generates
        run_task(..., session, ..., ectx.scoring(task), ectx.judge_id)

The sandbox is created only when a task executes code (after the opt-in check), the judge only
when `eval.judge` names one (and a local judge model loads on its first call). Everything the
context opened is closed when the `with` block ends, also when a task raises or the user presses
Ctrl-C: a sandbox left open keeps worker processes, a session keeps a model in (GPU) memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tunelab.evaluation.generation import VariantSession
from tunelab.evaluation.task import EvalError, GenerationSettings, Prompt, ScoringContext, Task
from tunelab.generation import OpenAIGenerator, TransformersGenerator
from tunelab.models.ref import ModelRef

SessionFactory = Callable[[str], Any]  # ModelRef -> a VariantSession (or a fake in tests)
RULE_JUDGE = "rules"  # eval.judge.model: the rule-based stand-in hint judge (offline studies), not a model


class EvalContext:
    """Owns the sandbox, the judge and every VariantSession of one evaluation (a context manager).

    Args:
        cfg: the `eval` settings (judge, sandbox limits, backend).
        tasks: the tasks that will be scored; a sandbox is opened only if one executes code.
        run_dir, exp: the run the variants belong to (None when scoring a samples file).
        session_factory: builds a session for a ModelRef; default: `VariantSession`.
    """

    def __init__(self, cfg: Any, tasks: Sequence[Task], run_dir: Path | None = None, exp: Any = None,
                 session_factory: SessionFactory | None = None) -> None:
        self.cfg, self.tasks, self.run_dir, self.exp = cfg, list(tasks), run_dir, exp
        self._factory = session_factory or (lambda ref: VariantSession(ref, Path(run_dir), exp, cfg))
        self.sandbox: Any = None
        self.judge: Any = None
        self.judge_id: str | None = None
        self._session: tuple[str, Any] | None = None
        self._stack = ExitStack()

    def __enter__(self) -> EvalContext:
        # If opening the judge fails after the sandbox started, the sandbox is closed on the way out.
        with ExitStack() as stack:
            if any(t.executes_code for t in self.tasks):
                self.sandbox = _open_sandbox(self.cfg)
                stack.callback(_close, self.sandbox)
            self.judge, self.judge_id = make_judge(self.cfg, self.run_dir, self.exp)
            stack.callback(_close, self.judge)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close every session, the judge and the sandbox (each even if another one fails)."""
        self._session = None
        self._stack.close()

    @property
    def held(self) -> str | None:
        """The ref of the session held open now (its model may be loaded), or None."""
        return self._session[0] if self._session is not None else None

    def session(self, ref: str) -> Any:
        """The session of model variant `ref`. One variant is held at a time: asking for another
        closes the current one first, so two models never sit in memory together."""
        if self._session is not None and self._session[0] == ref:
            return self._session[1]
        if self._session is not None:
            _close(self._session[1])
            self._session = None
        session = self._factory(ref)
        self._stack.callback(_close, session)
        self._session = (ref, session)
        return session

    def scoring(self, task: Task) -> ScoringContext:
        """The handles `task` may score with: the sandbox only for code-executing tasks (opened
        here if the context was entered for tasks that did not need one)."""
        if task.executes_code and self.sandbox is None:
            self.sandbox = _open_sandbox(self.cfg)
            self._stack.callback(_close, self.sandbox)
        return ScoringContext(sandbox=self.sandbox if task.executes_code else None, judge=self.judge)


def _open_sandbox(cfg: Any) -> Any:
    from tunelab.evaluation.sandbox import create_sandbox  # part of the code-execution layer

    return create_sandbox(cfg)


def _close(obj: Any) -> None:
    if obj is not None and hasattr(obj, "close"):
        obj.close()


# ---- the judge ----------------------------------------------------------------------------------


def make_judge(cfg: Any, run_dir: Path | None, exp: Any | None) -> tuple[Any, str | None]:
    """The judge generator of `eval.judge` and its identity, or (None, None) if none is set.
    `eval.judge.model: rules` is the rule-based stand-in of the hint judge (`tasks.judge_rules`)."""
    j = cfg.judge
    if j.base_url:
        name = j.endpoint_model or j.model
        if not name:
            raise EvalError("eval.judge.base_url needs eval.judge.endpoint_model (the judge's name on the server)")
        return (OpenAIGenerator(j.base_url, name, j.api_key_env, enable_thinking=cfg.enable_thinking),
                f"openai:{j.base_url}:{name}")
    if not j.model:
        return None, None
    if j.model == RULE_JUDGE:
        from tunelab.evaluation.tasks.judge_rules import RuleJudge

        return RuleJudge(), RuleJudge.identity
    is_ref = j.model in ("base", "final", "best") or j.model.startswith("step-") or Path(j.model).is_dir()
    in_run = is_ref and run_dir is not None
    ref = ModelRef.parse(j.model, run_dir if in_run else None, base=exp.model if in_run and exp is not None else None)
    # Weights of a run (this one's, `OTHER_RUN:final`, a run's folder) or an adapter folder are
    # hashed like any evaluated variant's, so a retrained judge invalidates its cached scores.
    hashed = (in_run and exp is not None) or ref.run is not None or ref.folder is not None
    ident = ref.identity() if hashed else j.model

    def load() -> TransformersGenerator:
        model, tok, own_template = ref.load()
        # A judge from a run is asked through that run's training template (another run's own).
        template = own_template if ref.run is not None else exp.data.chat_template if exp is not None else "auto"
        return TransformersGenerator(model, tok, cfg.batch_size, template, enable_thinking=cfg.enable_thinking)

    return _LazyGenerator(load), f"model:{ident}"


class _LazyGenerator:
    """A generator built on first use, so a configured judge costs nothing when no task asks it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build, self._gen = build, None

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        if self._gen is None:
            self._gen = self._build()
        return self._gen.generate(prompts, settings)

    def close(self) -> None:
        """Drop the judge model (it is rebuilt if asked again)."""
        self._gen = None
