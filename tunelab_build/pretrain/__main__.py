"""Command line of the pretraining recipe, run from a checkout:

    python -m tunelab_build.pretrain configs/pretrain/tiny-code.yaml --work-dir DIR [--set key=value] [--export DIR]

Re-running the same command after an interruption resumes from DIR/state.pt. Mistakes in the
recipe (`TunelabError`) print one message and exit with code 2, as tunelab's own commands do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from tunelab.errors import TunelabError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. configs/pretrain/tiny-code.yaml.")],
    work_dir: Annotated[Path, typer.Option(help="Corpus, checkpoints and logs; re-run to resume.")],
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe key, e.g. --set max_steps=100 (repeatable).")
    ] = None,
    export: Annotated[Optional[Path], typer.Option(help="After training, write the shippable model here.")] = None,
    corpus_only: Annotated[bool, typer.Option(help="Only build the corpus and tokenizer, print their stats.")] = False,
    time_budget: Annotated[Optional[float], typer.Option(help="Seconds; shortens max_steps to fit.")] = None,
) -> None:
    """Pretrain tunelab's built-in code model on the Python standard library (resumable)."""
    from tunelab_build.pretrain.config import load_recipe

    cfg = load_recipe(config, set_ or [])
    if corpus_only:
        from tunelab_build.pretrain.corpus import build_corpus

        stats = build_corpus(work_dir / "corpus", cfg.vocab_size, cfg.held_out_percent)
        typer.echo(json.dumps({k: v for k, v in stats.items() if k != "held_out_modules"}, indent=2))
        return
    from tunelab_build.pretrain.train import pretrain

    pretrain(cfg, work_dir, log=lambda m: print(m, flush=True), time_budget=time_budget)
    if export:
        from tunelab_build.pretrain.export import export as export_model

        export_model(work_dir, export)


def main(argv: list[str] | None = None) -> None:
    """Run the command; a user mistake exits with code 2 and one line on stderr."""
    try:
        app(args=argv, prog_name="python -m tunelab_build.pretrain")
    except TunelabError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
