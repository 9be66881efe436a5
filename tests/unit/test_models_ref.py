"""models.ref.ModelRef: every form a model can be named by, its errors, and what it loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tunelab.config import ModelConfig
from tunelab.errors import ModelError
from tunelab.generation import Prompt, TransformersGenerator, generate_text
from tunelab.models.ref import ModelRef

CHAT = [{"role": "user", "content": "Write add(a, b)."}]


def _make_run(root: Path, base_dir: Path, template: str, tiny_adapter) -> Path:
    root.mkdir(parents=True)
    config = {"name": root.name, "model": {"name": str(base_dir), "device": "cpu"},
              "data": {"sources": [{"builtin": "anything"}], "chat_template": template}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    tiny_adapter(base_dir, root / "checkpoints" / "step-2", 2)
    tiny_adapter(base_dir, root / "final", 9)
    (root / "train").mkdir()
    (root / "train" / "summary.json").write_text(json.dumps({"best_step": 2}))
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_qwen2_dir, tiny_adapter):
    """Two runs on the tiny base: `mine` trained with the plain template, `other` with chatml."""
    root = tmp_path_factory.mktemp("runs")
    return (_make_run(root / "mine", tiny_qwen2_dir, "plain", tiny_adapter),
            _make_run(root / "other", tiny_qwen2_dir, "chatml", tiny_adapter))


def test_bare_variants_of_the_given_run(runs):
    mine, _ = runs
    base = ModelRef.parse("base", mine)
    assert (base.kind, base.name, base.run_dir, base.adapter_dir) == ("base", "base", mine, None)
    for text, folder in [("final", mine / "final"), ("step-2", mine / "checkpoints" / "step-2"),
                         ("best", mine / "checkpoints" / "step-2")]:
        ref = ModelRef.parse(text, mine)
        assert (ref.kind, ref.name, ref.variant, ref.run_dir, ref.adapter_dir) == ("variant", text, text, mine, folder)
    assert ModelRef.parse("step-2", mine).chat_template == "plain"


def test_step_needs_digits_and_names_the_allowed_forms(runs):
    mine, _ = runs
    for text in ("step-abc", "step-", "step-1a"):
        with pytest.raises(ModelError, match="step-N takes a number.*RUN_DIR:final"):
            ModelRef.parse(text, mine)
    with pytest.raises(ModelError, match="not found in .*available: base, final, best, step-2"):
        ModelRef.parse("step-20", mine)


def test_bare_variants_need_a_run(runs):
    with pytest.raises(ModelError, match="needs --run-dir"):
        ModelRef.parse("final")
    with pytest.raises(ModelError, match="unknown model ref 'latest'.*this run has: base, final"):
        ModelRef.parse("latest", runs[0])


def test_a_checkpoint_folder_belongs_to_its_run(runs):
    mine, _ = runs
    ref = ModelRef.parse(str(mine / "checkpoints" / "step-2"))
    assert (ref.kind, ref.variant, ref.run_dir.resolve(), ref.name) == ("variant", "step-2", mine.resolve(), "mine:step-2")
    assert ModelRef.parse(str(mine / "final"), mine).name == "final"  # inside the given run: short name
    assert ref.chat_template == "plain"


def test_a_checkpoint_folder_alone_gets_the_runs_training_template(runs):
    """`tunelab generate --model runs/x/checkpoints/step-N` without --run-dir used to render
    prompts with the tokenizer's own template, not the one the run trained (and evaluated) with."""
    mine, _ = runs
    folder = str(mine / "checkpoints" / "step-2")
    model, tok, template = ModelRef.parse(folder).load()
    assert template == "plain"
    rendered = TransformersGenerator(model, tok, chat_template=template).render(Prompt(messages=CHAT))
    model2, tok2, template2 = ModelRef.parse("step-2", mine).load()
    assert rendered == TransformersGenerator(model2, tok2, chat_template=template2).render(Prompt(messages=CHAT))
    assert "<|im_start|>" not in rendered
    kwargs = {"chat": True, "max_new_tokens": 4}
    assert generate_text(folder, "Write add(a, b).", **kwargs) == generate_text("step-2", "Write add(a, b).", mine, **kwargs)


def test_a_variant_of_another_run(runs):
    mine, other = runs
    ref = ModelRef.parse(f"{other}:final", mine)
    assert (ref.kind, ref.variant, ref.run_dir, ref.adapter_dir) == ("variant", "final", other, other / "final")
    assert ref.name == "other:final" and "/" not in ref.name  # readable, never a path
    assert ref.chat_template == "chatml"  # the other run's own template
    assert ModelRef.parse(f"{other}:step-2").name == "other:step-2"
    assert ModelRef.parse(f"{other}:base").kind == "base"
    assert ModelRef.parse(f"{mine}:final", mine).name == "final"
    with pytest.raises(ModelError, match="'latest' is not a variant of a run.*has: base, final, best, step-2"):
        ModelRef.parse(f"{other}:latest")
    with pytest.raises(ModelError, match="no run directory"):
        ModelRef.parse(f"{other}-missing:final")


def test_standalone_adapter_and_whole_model_folders(runs, tmp_path, tiny_qwen2_dir):
    mine, _ = runs
    lone = shutil.copytree(mine / "final", tmp_path / "lone")
    ref = ModelRef.parse(str(lone))
    assert (ref.kind, ref.name, ref.adapter_dir, ref.run_dir) == ("adapter", "adapter:lone", lone, None)
    assert ref.base_config().name == str(tiny_qwen2_dir)  # adapter_config.json's base_model_name_or_path
    assert ref.chat_template == "auto"
    whole = ModelRef.parse(str(tiny_qwen2_dir))
    assert (whole.kind, whole.name, whole.adapter_dir) == ("model", f"model:{tiny_qwen2_dir.name}", None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="not a PEFT adapter folder"):
        ModelRef.parse(str(empty))


def test_missing_folders_hub_ids_and_builtins(tmp_path):
    with pytest.raises(ModelError, match="model folder not found"):
        ModelRef.parse(str(tmp_path / "gone" / "checkpoints" / "step-2"))
    hub = ModelRef.parse("Qwen/Qwen2.5-0.5B")
    assert (hub.kind, hub.name, hub.model) == ("model", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B")
    builtin = ModelRef.parse("builtin:tiny-random-qwen2")
    assert (builtin.kind, builtin.name) == ("model", "builtin:tiny-random-qwen2")
    assert builtin.identity().startswith("base:builtin:tiny-random-qwen2@None#")
    with pytest.raises(ModelError, match="unknown built-in model"):
        ModelRef.parse("builtin:tiny-randm-qwen2")


def test_a_prompting_suffix_names_the_style_not_other_weights(runs):
    mine, _ = runs
    plain, few = ModelRef.parse("base", mine), ModelRef.parse("base+few-shot", mine)
    assert (few.kind, few.prompting, few.name, few.text) == ("base", "few-shot", "base+few-shot", "base+few-shot")
    assert few.identity() == plain.identity()
    cot = ModelRef.parse("final+cot", mine)
    assert (cot.prompting, cot.name, cot.adapter_dir) == ("cot", "final+cot", mine / "final")
    assert cot.identity() == ModelRef.parse("final", mine).identity()
    assert ModelRef.parse("base", mine).prompting is None
    with pytest.raises(ModelError, match="step-N takes a number"):
        ModelRef.parse("step-x+cot", mine)


def test_identity_follows_the_weights_and_the_base(runs, tmp_path):
    mine, _ = runs
    copy = shutil.copytree(mine, tmp_path / "mine")
    before = ModelRef.parse("final", copy).identity()
    assert before.startswith("adapter:") and before == ModelRef.parse("final", copy).identity()
    (copy / "final" / "adapter_model.safetensors").write_bytes(b"retrained")
    assert ModelRef.parse("final", copy).identity() != before
    assert ModelRef.parse("base", copy).identity().startswith("base:")


def test_base_without_a_run_takes_a_model_config(tiny_qwen2_dir):
    ref = ModelRef.parse("base", base=ModelConfig(name=str(tiny_qwen2_dir), device="cpu"))
    model, tok, template = ref.load()
    assert not model.training and template == "auto" and tok.pad_token_id is not None


def test_byte_identical_adapters_have_one_identity_whatever_their_names(tmp_path):
    """final/ and the last checkpoint usually hold the same adapter (final/ also carries tokenizer
    files): one identity, so evaluation scores them once; other weights, another identity."""
    import shutil

    from tunelab.models.identity import folder_identity

    a, b, c = tmp_path / "final", tmp_path / "step-20", tmp_path / "step-10"
    for d in (a, b, c):
        d.mkdir()
        (d / "adapter_config.json").write_text('{"r": 8}')
        (d / "adapter_model.safetensors").write_bytes(b"weights")
    (a / "tokenizer.json").write_text("{}")
    (a / "state.json").write_text('{"step": 20}')
    (c / "adapter_model.safetensors").write_bytes(b"other weights")
    assert folder_identity("adapter", a, "base:x") == folder_identity("adapter", b, "base:x")
    assert folder_identity("adapter", c, "base:x") != folder_identity("adapter", b, "base:x")
    assert folder_identity("adapter", b, "base:y") != folder_identity("adapter", b, "base:x")
    shutil.rmtree(c)
