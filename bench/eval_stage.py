"""The quickstart's eval stage: its total time against the generation time it contains.

    python bench/eval_stage.py [--run-dir runs/quickstart] [--config configs/quickstart.yaml] [--with-compare]

Takes a finished quickstart run (`make demo` writes one), copies it without its `eval/` (and
`compare/`) results, and runs the pipeline's eval stage on the copy exactly as `tunelab run` does
(`--only eval`, or `--only eval,compare` with `--with-compare`), with the shared eval cache
switched off so that every variant is generated and scored again. Printed: the stage's seconds
(`pipeline.json`), the generation and scoring seconds of the records it computed
(`timing.generate_s`, `timing.score_s`, per variant and task), what is left (loading, merging,
bootstrap intervals, paired tests, writing), and the ratio of the stage to its generation. The
original run is not touched. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def computed(eval_dir: Path) -> list[tuple[str, int, float, float]]:
    """(variant/task, items, generate s, score s) of the records the stage computed itself: a
    record copied from a sibling variant with the same weights carries that one's timing, so it
    is left out (it cost nothing here)."""
    out = []
    for path in sorted(eval_dir.rglob("samples.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        own = [r for r in records if "copied_from" not in r and "shared_cache" not in r]
        out.append((str(path.parent.relative_to(eval_dir)), len(own),
                    sum(r["timing"]["generate_s"] for r in own), sum(r["timing"]["score_s"] for r in own)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, default=Path("runs/quickstart"))
    ap.add_argument("--config", type=Path, default=Path("configs/quickstart.yaml"))
    ap.add_argument("--with-compare", action="store_true", help="also time the compare stage")
    args = ap.parse_args()
    if not (args.run_dir / "final").is_dir():
        print(f"{args.run_dir} has no trained final/: run `make demo` (or tunelab run {args.config} "
              f"--run-dir {args.run_dir}) first", file=sys.stderr)
        return 2
    stages = "eval,compare" if args.with_compare else "eval"
    with tempfile.TemporaryDirectory(prefix="tunelab-eval-stage-") as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run_dir, run, ignore=shutil.ignore_patterns("eval", "compare", "report*"))
        env = {**os.environ, "TUNELAB_SHARED_CACHE": "0"}
        tunelab = Path(sys.executable).with_name("tunelab")
        cmd = [str(tunelab), "run", str(args.config), "--run-dir", str(run), "--only", stages, "--allow-code-execution"]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            print(res.stdout[-3000:], res.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        state = json.loads((run / "pipeline.json").read_text())
        pipeline, startup = state["stages"], (state.get("startup") or {}).get("seconds")
        rows = computed(run / "eval")
    gen = sum(r[2] for r in rows)
    score = sum(r[3] for r in rows)
    stage = pipeline["eval"]["seconds"]
    print(f"{'variant / task':<44} {'items':>6} {'generate s':>11} {'score s':>8}")
    for name, n, g, sc in rows:
        print(f"{name:<44} {n:>6} {g:>11.1f} {sc:>8.1f}")
    print(f"\neval stage: {stage:.1f} s = generation {gen:.1f} s + scoring {score:.1f} s + the rest "
          f"{stage - gen - score:.1f} s (load, merge, intervals, paired tests, writing)")
    if gen > 0:
        print(f"eval stage / generation it contains: {stage / gen:.2f}x")
    else:
        print("nothing was generated (every record came from elsewhere): no ratio")
    if args.with_compare:
        print(f"compare stage: {pipeline['compare']['seconds']:.1f} s")
    if startup is not None:
        print(f"importing torch, transformers and peft before the stages: {startup:.1f} s "
              "(paid once per `tunelab` process, inside `tunelab run` before data and training)")
    print(f"(command wall time {wall:.1f} s, including interpreter start-up and imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
