"""Which variants an evaluation runs and where their results go.

A variant is a ModelRef (`base`, `final`, `step-N`, an adapter folder, `OTHER_RUN:final`),
optionally with a prompt variant after `+` (`base+few-shot`, `base+cot`). `expand_models` turns
the user's patterns into variants, `split_prompting` reads the suffix, `variant_folder` names
the folder under `run_dir/eval/`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

from tunelab.config import Experiment
from tunelab.errors import did_you_mean
from tunelab.evaluation.task import PROMPT_VARIANTS, EvalError
from tunelab.models.ref import ModelRef
from tunelab.models.ref import split_prompting as ref_split_prompting

PROMPT_ALIASES = {"cot": "chain-of-thought"}


def split_prompting(name: str) -> tuple[str, str | None]:
    """A variant name as (weights ModelRef, prompt variant or None): `base+cot` -> ("base",
    "chain-of-thought"), `final` -> ("final", None); the suffix is read by `models.ref`."""
    weights, prompt = ref_split_prompting(name)
    if prompt is None:
        return name, None  # no suffix, or an adapter folder whose path has a "+" in it
    known = [*PROMPT_VARIANTS, *PROMPT_ALIASES]
    if prompt not in known:
        raise EvalError(f"'{name}': '{prompt}' is not a prompt variant{did_you_mean(prompt, known)}; "
                        f"write VARIANT+PROMPT with PROMPT one of {', '.join(known)}")
    return weights, PROMPT_ALIASES.get(prompt, prompt)


def expand_models(patterns: Sequence[str], available: Sequence[str]) -> list[str]:
    """Variants named by `patterns` (exact refs or globs like `step-*`, each optionally with a
    `+prompt` suffix), in available order."""
    chosen: list[str] = []
    for pat in patterns:
        weights, prompt = split_prompting(pat)
        hits = [v for v in available if fnmatch.fnmatchcase(v, weights)]
        if not hits:
            if not any(ch in weights for ch in "*?[") and (Path(weights).is_dir() or _other_run_ref(weights)):
                hits = [weights]  # an adapter folder outside the run, or RUN_DIR:VARIANT
            else:
                raise EvalError(f"no model variant matches '{weights}'{did_you_mean(weights, available)}; "
                                f"this run has: {', '.join(available)}")
        if prompt is not None:
            suffix = pat[len(weights):]  # "+cot" stays as the user wrote it: it names the folder
            hits = [h + suffix for h in hits]
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _other_run_ref(text: str) -> bool:
    """`RUN_DIR:VARIANT` with an existing RUN_DIR (ModelRef checks the rest)."""
    prefix, colon, _ = text.rpartition(":")
    return bool(colon and prefix) and Path(prefix).expanduser().is_dir()


def variant_folder(ref: str, run_dir: Path, exp: Experiment) -> str:
    """The folder name under run_dir/eval/ for the variant `ref`: the ref itself for this run's
    variants (`final`, `base+cot`), a readable name for anything else (`otherrun:final`, an
    adapter folder's name), so results of another run's adapter stay in this run and never
    land in a path built from an absolute one."""
    weights, _ = split_prompting(ref)
    suffix = ref[len(weights):]
    if "/" not in weights and "\\" not in weights and ":" not in weights:
        return ref
    return ModelRef.parse(weights, run_dir, base=exp.model).name + suffix
