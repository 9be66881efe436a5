"""`tunelab chat` driven through a pipe: one variant streamed, two side by side, /reset, /exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tunelab.config import LoraConfig, ModelConfig
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
from tunelab.models.ref import ModelRef
from tunelab.models.loading import load_model
from tunelab.models.lora import attach_lora

pytestmark = pytest.mark.timeout(120)
QUESTION = "Write a function that adds two numbers."


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_qwen2_dir) -> Path:
    """A run trained with the `plain` chat template (not the tokenizer's ChatML), adapter in final/."""
    run = tmp_path_factory.mktemp("chat") / "run"
    (run / "train").mkdir(parents=True)
    config = {"name": "t", "model": {"name": str(tiny_qwen2_dir), "device": "cpu"},
              "data": {"sources": [{"builtin": "anything"}], "chat_template": "plain"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    model = attach_lora(load_model(ModelConfig(name=str(tiny_qwen2_dir)), "cpu"), LoraConfig(r=4))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    model.save_pretrained(run / "final")
    return run


def _chat(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tunelab.cli", "chat", *args], input=stdin, capture_output=True,
                          text=True, timeout=90, env=env)


def _expected(run_dir: Path, ref: str, template: str) -> str:
    model, tok, _ = ModelRef.parse(ref, run_dir).load()
    gen = TransformersGenerator(model, tok, batch_size=1, chat_template=template)
    return gen.generate([Prompt(messages=[{"role": "user", "content": QUESTION}])], GenerationSettings(max_new_tokens=8))[0][0]


def test_two_variants_answer_side_by_side_in_the_training_template(run_dir):
    res = _chat(["base", "final", "--run-dir", str(run_dir), "--max-new-tokens", "8"],
                f"{QUESTION}\n/reset\n{QUESTION}\n/exit\nnever read\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    final = _expected(run_dir, "final", "plain")
    assert final.strip() and final != _expected(run_dir, "final", "chatml")  # the template matters here
    first, second = out.split("(new conversation)")
    for part in (first, second):  # after /reset the same question gets the same answers
        assert part.count("[base]\n") == 1 and part.count("[final]\n") == 1
        assert part.split("[final]\n")[1].strip() == final.strip()
        assert part.index("[base]") < part.index("[final]")
    assert "never read" not in out


def test_one_variant_streams_its_reply_and_keeps_the_conversation(run_dir):
    """In-process (same code as the CLI, no second interpreter start): two turns, one history."""
    import io

    from rich.console import Console

    from tunelab.serve.chat import chat_command

    buf = io.StringIO()
    answered = chat_command(["final"], run_dir, max_new_tokens=8, stdin=io.StringIO(f"{QUESTION}\n\nAnd now in C?\n"),
                            console=Console(file=buf, highlight=False, emoji=False))
    replies = [x for x in buf.getvalue().split("final> ") if x.strip()]
    assert answered == 2 and len(replies) == 2  # the empty line was skipped; end of input quits
    assert replies[0].strip() == _expected(run_dir, "final", "plain").strip()
