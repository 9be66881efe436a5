"""The variants a compare is about: readable labels, the weights behind them, their eval results.

A compare names each variant by a label (`base`, `final`, `deep:final` for another run's final,
`lora.r=4:final` for a sweep trial's), never by a path: the label keys every compare file and
every table. Each variant is loaded and prompted as its own run trained it (`ModelRef.load`
gives that run's chat template), and its eval results are looked up by that label: in the
compared run's `eval/<label>/` (where `tunelab eval --models OTHER_RUN:final` files another
run's variant), else in the variant's own run (`OTHER_RUN/eval/final/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError, ModelError
from tunelab.models.ref import ModelRef


@dataclass(frozen=True)
class Variant:
    """One compared variant.

    Attributes:
        label: its name in compare files and the report (`final`, `deep:final`).
        ref: the weights (`ModelRef`): what is loaded, its identity and its run's chat template.
        own: a variant of the compared run itself (its identity alone keys the cached views,
            as before variants of other runs could be compared).
    """

    label: str
    ref: ModelRef
    own: bool = True

    def cache_key(self) -> str:
        """What the model views of this variant depend on: its weights, and for a variant of
        another run its label and its run's chat template (this run's is in the data settings)."""
        ident = self.ref.identity()
        return ident if self.own else f"{self.label}={ident}|template={self.ref.chat_template}"


def run_variants(run_dir: Path, exp: Any, refs: list[str]) -> tuple[list[Variant], list[str]]:
    """`compare.variants` of a run as Variants, and notes on the ones left out.

    A variant name of this run that the run does not hold (no `best` without validation) is
    left out with a note. Anything else (`OTHER_RUN:final`, a run's folder, an adapter folder)
    must resolve: an unknown variant of another run is an error that lists what that run holds.

    Raises:
        ConfigError: an unresolvable ref, or two refs that would get one label.
    """
    from tunelab.models.adapters import is_variant_name, list_variants

    have = list_variants(run_dir)
    out: list[Variant] = []
    notes: list[str] = []
    for text in refs:
        if is_variant_name(text):
            if text not in have:
                notes.append(f"variant {text} is not in this run (it has: {', '.join(have)}); left out")
                continue
            out.append(Variant(text, ModelRef.parse(text, run_dir, base=exp.model)))
            continue
        try:
            ref = ModelRef.parse(text, run_dir, base=exp.model)
        except ModelError as e:
            raise ConfigError(f"compare.variants: {e}") from None
        own = ref.run is not None and ref.run.resolve() == Path(run_dir).resolve() and ref.kind in ("base", "variant")
        out.append(Variant(ref.name, ref, own=own))
    check_labels(out, "compare.variants")
    return out, notes


def check_labels(variants: list[Variant], key: str) -> None:
    """Two variants with one label would overwrite each other's columns: refuse them."""
    seen: dict[str, str] = {}
    for v in variants:
        if v.label in seen:
            raise ConfigError(f"{key}: '{seen[v.label]}' and '{v.ref.text}' would both be labelled '{v.label}' "
                              "(same variant, or runs in folders of the same name); name each variant once, "
                              "or rename one run's folder")
        seen[v.label] = v.ref.text


def result_index(run_dir: Path | None, variants: list[Variant]) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """{label: {task label: result folder}}: every eval result of `run_dir` (all its variant
    folders, prompting baselines included), plus, for a compared variant of another run not
    evaluated into `run_dir`, the results its own run holds for it. Notes say where those came from."""
    from tunelab.compare.paired import eval_index

    index = eval_index(run_dir) if run_dir is not None else {}
    notes = []
    for v in variants:
        if v.label in index or v.own or v.ref.run is None or v.ref.variant is None:
            continue
        found = eval_index(v.ref.run).get(v.ref.variant)
        if found:
            index[v.label] = found
            if run_dir is not None:
                notes.append(f"{v.label}: eval results from its own run ({v.ref.run / 'eval' / v.ref.variant})")
    return index, notes
