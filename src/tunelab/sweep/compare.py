"""A sweep's trials compared with each other, once they have finished (`sweep.compare`).

    SWEEP_DIR/compare/next_token.json, generations.json, token_classes.json, paired.json,
                      baselines.json   the compare views (`tunelab.compare`) of the trials' variants

`sweep.compare: [base, final]` compares the base model and every finished trial's `final`: the
same prompts answered side by side (greedy, the `compare` section's settings), the next-token
view, token classes, and paired tests on every eval task, from each trial's own eval results
(nothing is evaluated again; a trial's eval/<variant>/ must hold the task). Variants are
labelled `TRIAL:final`; each is loaded and prompted with its own trial's chat template. `base`
is one variant when every trial has the same base weights and template, else one per group of
trials that share them (`TRIAL:base`, a note says which trials it stands for). The model views
are cached by their fingerprint (settings, prompts' data, every variant's weights): a re-run
of the sweep with unchanged trials loads no model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.compare import compare_variants
from tunelab.compare.paired import eval_index
from tunelab.compare.variants import Variant, check_labels
from tunelab.config import Experiment
from tunelab.errors import ConfigError, ModelError, did_you_mean
from tunelab.models.ref import ModelRef
from tunelab.runs import read_json
from tunelab.sweep.trials import Trial


def check_compare_trials(exp: Experiment, trials: list[Trial]) -> None:
    """Fail before any trial runs when `sweep.compare` names a trial the sweep does not have."""
    names = [t.name for t in trials]
    for entry in exp.sweep.compare:
        trial = entry.rpartition(":")[0]
        if trial and trial not in names:
            raise ConfigError(f"sweep.compare: '{entry}' names no trial of this sweep{did_you_mean(trial, names)}; "
                              f"its trials: {', '.join(names)}")


def compare_trials(root: Path, exp: Experiment, trials: list[Trial], console: Console) -> dict[str, Any]:
    """Run the compare views over the variants `sweep.compare` names into `root/compare/`;
    returns what sweep.json records of it (variants, files, notes, seconds)."""
    t0 = time.perf_counter()
    variants, index, notes = trial_variants(root, exp, trials)
    if any(k.startswith("data.") for k in [*exp.sweep.grid, *exp.sweep.zip]):
        notes.append("the trials differ in data settings: the prompts and their in-training check come from the "
                     "sweep config's own data")
    console.print(f"sweep: comparing {', '.join(v.label for v in variants) or 'nothing'} across trials",
                  markup=False, highlight=False)
    written = compare_variants(root / "compare", exp, variants, index, console, notes=notes,
                               reference=exp.sweep.compare[0], all_pairs=exp.sweep.compare_pairs == "all")
    return {"variants": [v.label for v in variants], "files": {k: str(Path(p).relative_to(root)) for k, p in written.items()},
            "notes": notes, "seconds": round(time.perf_counter() - t0, 2)}


def trial_variants(root: Path, exp: Experiment, trials: list[Trial]
                   ) -> tuple[list[Variant], dict[str, dict[str, Path]], list[str]]:
    """The Variants `sweep.compare` names, their eval results ({label: {task: folder}}) and notes.

    Raises:
        ConfigError: a `TRIAL:VARIANT` of no trial, or one the trial does not hold (its
            variants are listed).
    """
    check_compare_trials(exp, trials)  # an Optuna search names its trials only as it goes
    done = [t for t in trials if _status(root / "trials" / t.name) == "done"]
    notes = []
    waiting = [t.name for t in trials if t not in done]
    if waiting:
        notes.append(f"not compared, not finished: {', '.join(waiting)}")
    variants: list[Variant] = []
    index: dict[str, dict[str, Path]] = {}

    def add(label: str, tdir: Path, variant: str, ref: ModelRef) -> None:
        variants.append(Variant(label, ref, own=False))
        found = eval_index(tdir).get(variant)
        if found:
            index[label] = found

    for entry in exp.sweep.compare:
        trial, _, variant = entry.rpartition(":")
        targets = [t for t in done if t.name == trial] if trial else done
        if trial and not targets:
            notes.append(f"{entry}: the trial has not finished; left out")
        if variant == "base" and not trial:
            for label, tdir, ref in _bases(root, done, notes):
                add(label, tdir, "base", ref)
            continue
        for t in targets:
            tdir = root / "trials" / t.name
            try:
                ref = ModelRef.parse(f"{tdir}:{variant}")
            except ModelError as e:
                if trial:  # named on its own: a mistake to fix, not a gap to note
                    raise ConfigError(f"sweep.compare: '{entry}': {e}") from None
                notes.append(f"{t.name} has no {variant}; left out")
                continue
            add(ref.name, tdir, variant, ref)
    check_labels(variants, "sweep.compare")
    return variants, index, notes


def _bases(root: Path, done: list[Trial], notes: list[str]) -> list[tuple[str, Path, ModelRef]]:
    """One base variant per group of trials with the same base weights and chat template."""
    groups: dict[tuple[str, str], list[tuple[Trial, ModelRef]]] = {}
    for t in done:
        ref = ModelRef.parse(f"{root / 'trials' / t.name}:base")
        groups.setdefault((ref.identity(), ref.chat_template), []).append((t, ref))
    out = []
    for members in groups.values():
        # The base results of the group: those of its first trial that evaluated base.
        t, ref = next(((t, r) for t, r in members if "base" in eval_index(root / "trials" / t.name)), members[0])
        label = "base" if len(groups) == 1 else f"{t.name}:base"
        if len(groups) > 1:
            notes.append(f"{label} stands for the base of {', '.join(m.name for m, _ in members)} "
                         f"(template {ref.chat_template})")
        out.append((label, root / "trials" / t.name, ref))
    return out


def _status(tdir: Path) -> str | None:
    try:
        return read_json(tdir / "trial.json").get("status") if (tdir / "trial.json").is_file() else None
    except (OSError, ValueError):
        return None
