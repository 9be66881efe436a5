"""tunelab.export: merged model == adapter (checked on the saved files), no-op and divergent merges fail loudly,
and plain transformers in a fresh process sees the model tunelab trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.config import ModelConfig
from tunelab.data.tokenize import CHATML_TEMPLATE
from tunelab.errors import ModelError
from tunelab.export import PARITY_CHAT, PARITY_NEW_TOKENS, export_adapter
from tunelab.generation import generate_text
from tunelab.models.ref import ModelRef
from tunelab.models.loading import load_tokenizer

IDS = torch.tensor([[5, 17, 300, 42, 7, 1000, 8000, 11]])


@pytest.fixture(scope="module")
def mismatching_dir(tmp_path_factory, tiny_qwen2_dir) -> Path:
    """The tiny random Qwen2 with a tokenizer.json whose pre-tokenizer is not Qwen2's (a prefix space
    before the first word) and a config declaring the generic class: tunelab loads it exactly, plain
    AutoTokenizer rebuilds Qwen2's pre-tokenizer for every qwen2 folder and so tokenizes differently."""
    out = tmp_path_factory.mktemp("mismatching") / "model"
    shutil.copytree(tiny_qwen2_dir, out)
    tok = json.loads((out / "tokenizer.json").read_text())
    tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    (out / "tokenizer.json").write_text(json.dumps(tok))
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_qwen2_dir, tiny_adapter) -> Path:
    """A run trained with the chatml template: a trained-looking final/ and an untrained step-1/."""
    run = tmp_path_factory.mktemp("export") / "run"
    (run / "train").mkdir(parents=True)
    config = {"name": "t", "model": {"name": str(tiny_qwen2_dir), "device": "cpu"},
              "data": {"sources": [{"builtin": "anything"}], "chat_template": "chatml"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    tiny_adapter(tiny_qwen2_dir, run / "final", 3)
    tiny_adapter(tiny_qwen2_dir, run / "checkpoints" / "step-1", 3, scale=0.0)  # LoRA B = 0: does nothing
    return run


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_export_saves_a_plain_model_that_behaves_like_the_adapter(run_dir, tmp_path):
    out = tmp_path / "merged"
    check = export_adapter("final", out, run_dir=run_dir)
    assert check["passed"] and check["problems"] == [] and check["dtype"] == "float32"
    assert json.loads((out / "export_check.json").read_text()) == check
    assert check["merged_vs_adapter"]["max_abs_diff"] <= check["tolerance"]
    assert check["adapter_vs_base"]["max_abs_diff"] > 10 * check["merged_vs_adapter"]["max_abs_diff"]
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    # A standard transformers folder: loads with no PEFT and no tunelab-specific step.
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    adapter, _, _ = ModelRef.parse("final", run_dir).load()
    assert torch.allclose(_logits(merged), _logits(adapter), atol=1e-4)
    tok = load_tokenizer(ModelConfig(name=str(out)))
    assert tok.chat_template == CHATML_TEMPLATE  # the training template travels with the export
    assert tok.convert_tokens_to_ids("<|im_end|>") in merged.generation_config.eos_token_id


def test_plain_transformers_in_a_fresh_process_tokenizes_and_generates_as_tunelab(run_dir, tmp_path):
    check = export_adapter("final", tmp_path / "m", run_dir=run_dir)
    plain = check["plain_transformers"]
    assert check["passed"] and check["tokenizer_parity"] and check["greedy_parity"] and check["warnings"] == []
    assert plain["loads"] and plain["tokenizer_class"] == "Qwen2Tokenizer" and not plain["tunelab_imported"]
    assert plain["template_parity"] and check["tokenizer_mismatch"] is None
    reply = generate_text("final", PARITY_CHAT[0]["content"], run_dir=run_dir, max_new_tokens=PARITY_NEW_TOKENS,
                          chat=True)
    assert reply and plain["greedy"]["plain"] == reply == plain["greedy"]["adapter"]


def test_a_tokenizer_plain_transformers_reads_differently_fails_the_export_unless_allowed(mismatching_dir, tiny_adapter, tmp_path):
    tiny_adapter(mismatching_dir, tmp_path / "a", 3)
    with pytest.raises(ModelError, match=r"plain AutoTokenizer \(Qwen2Tokenizer\) tokenizes 'x = 123 \+ 4567' "
                                         r"differently .* token \d+ is .* instead of .*--allow-tokenizer-mismatch"):
        export_adapter(str(tmp_path / "a"), tmp_path / "strict")
    check = json.loads((tmp_path / "strict" / "export_check.json").read_text())
    assert check["passed"] is False and check["tokenizer_parity"] is False
    assert not (tmp_path / "strict" / "model.safetensors").exists()
    m = check["tokenizer_mismatch"]
    assert m["text"] == "x = 123 + 4567" and m["trained_tokens"] != m["plain_tokens"]
    res = CliRunner().invoke(app, ["export", str(tmp_path / "a"), "--out", str(tmp_path / "loose"),
                                   "--allow-tokenizer-mismatch"])
    assert res.exit_code == 0, res.output
    assert "WARNING: TOKENIZER MISMATCH" in res.output and "tokenizer ids DIFFERENT" in res.output
    check = json.loads((tmp_path / "loose" / "export_check.json").read_text())
    assert check["passed"] and check["tokenizer_parity"] is False and check["tokenizer_mismatch"]["position"] >= 0
    assert check["warnings"] and (tmp_path / "loose" / "model.safetensors").is_file()


@pytest.mark.slow  # each export reloads the folder in a fresh process (~10 s); the default tier keeps the parity checks
def test_half_precision_export_keeps_the_adapter_and_the_files_hold_exactly_the_rounded_merge(run_dir, tmp_path):
    check = export_adapter("final", tmp_path / "bf16", run_dir=run_dir, dtype="bfloat16")
    assert check["passed"] and check["dtype"] == "bfloat16"
    assert check["merge_float32_vs_adapter"]["max_abs_diff"] <= check["tolerance"]
    assert check["saved_vs_merged"]["max_abs_diff"] <= 1e-4 * check["logit_scale"]
    assert check["merged_vs_adapter"]["max_abs_diff"] > 0  # rounding is visible, and reported
    from safetensors import safe_open

    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.bfloat16


@pytest.mark.slow  # each export reloads the folder in a fresh process (~10 s); the default tier keeps the parity checks
def test_a_small_adapter_whose_effect_bfloat16_rounding_erases_is_refused(tiny_qwen2_dir, tiny_adapter, tmp_path):
    tiny_adapter(tiny_qwen2_dir, tmp_path / "weak", 3, scale=3e-5)
    assert export_adapter(str(tmp_path / "weak"), tmp_path / "f32")["passed"]  # float32 keeps it
    with pytest.raises(ModelError, match="lost in the export's error"):
        export_adapter(str(tmp_path / "weak"), tmp_path / "b16", dtype="bfloat16")


def test_an_adapter_that_changes_nothing_is_refused_and_no_weights_are_left(run_dir, tmp_path):
    out = tmp_path / "noop"
    with pytest.raises(ModelError, match="does not change the base"):
        export_adapter("step-1", out, run_dir=run_dir)
    assert [p.name for p in out.iterdir()] == ["export_check.json"]
    check = json.loads((out / "export_check.json").read_text())
    assert check["passed"] is False and check["adapter_vs_base"]["max_abs_diff"] == 0.0


@pytest.mark.slow  # each export reloads the folder in a fresh process (~10 s); the default tier keeps the parity checks
def test_a_merge_that_diverges_fails_unless_forced(run_dir, tmp_path, monkeypatch):
    import tunelab.export as export

    real = export._merge

    def broken_merge(model):  # e.g. a scaling bug: one layer's weights come out wrong
        merged = real(model)
        with torch.no_grad():
            merged.model.layers[0].mlp.down_proj.weight.mul_(1.5)
        return merged

    monkeypatch.setattr(export, "_merge", broken_merge)
    with pytest.raises(ModelError, match="diverges from the adapter"):
        export_adapter("final", tmp_path / "bad", run_dir=run_dir)
    assert not (tmp_path / "bad" / "model.safetensors").exists()
    check = export_adapter("final", tmp_path / "forced", run_dir=run_dir, force=True)
    assert check["passed"] is False and (tmp_path / "forced" / "model.safetensors").is_file()


def test_export_refuses_what_it_cannot_merge_or_overwrite(run_dir, tmp_path):
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        export_adapter("base", tmp_path / "x", run_dir=run_dir)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="not an earlier export"):
        export_adapter("final", tmp_path / "busy", run_dir=run_dir)


@pytest.mark.slow  # each export reloads the folder in a fresh process (~10 s); the default tier keeps the parity checks
def test_export_command_line(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export", "final", "--run-dir", str(run_dir), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "check passed" in res.output and "saved model vs adapter" in res.output
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Sort a list in Python.\nWhat is 2 + 2?\n")
    res = runner.invoke(app, ["export", "final", "--run-dir", str(run_dir), "--out", str(tmp_path / "m"),
                              "--prompts", str(prompts)])  # over an earlier export: allowed
    assert res.exit_code == 0, res.output
    check = json.loads((tmp_path / "m" / "export_check.json").read_text())
    assert check["prompts"] == f"file:{prompts}" and check["n_prompts"] == 2
    res = runner.invoke(app, ["export", "step-1", "--run-dir", str(run_dir), "--out", str(tmp_path / "n")])
    assert res.exit_code != 0 and isinstance(res.exception, ModelError)


def test_the_builtin_model_and_an_export_of_it_load_in_plain_transformers_as_tunelab_loads_them(tiny_adapter, tmp_path):
    # What a user, vLLM or TGI does with builtin:tiny-code's own folder and with a merged export of
    # an adapter trained on it: plain AutoTokenizer + AutoModelForCausalLM, in a fresh process.
    from tunelab.export import PARITY_TEXTS, parity_check
    from tunelab.models.paths import builtin_models_dir

    folder = builtin_models_dir() / "tiny-code"
    tok = load_tokenizer(ModelConfig(name="builtin:tiny-code"))
    prompt = tok.apply_chat_template(list(PARITY_CHAT), tokenize=False, add_generation_prompt=True)
    reply = generate_text("builtin:tiny-code", PARITY_CHAT[0]["content"], max_new_tokens=PARITY_NEW_TOKENS, chat=True)
    plain = parity_check(folder, tok, list(PARITY_TEXTS), prompt, reply)
    assert plain["loads"] and plain["tokenizer_class"] == "Qwen2Tokenizer" and not plain["tunelab_imported"]
    assert plain["tokenizer_parity"] and plain["mismatch"] is None and plain["template_parity"]
    assert reply and plain["greedy_parity"], plain["greedy"]

    adapter = tiny_adapter(folder, tmp_path / "adapter", 5)
    check = export_adapter(str(adapter), tmp_path / "merged")  # strict: no --allow-tokenizer-mismatch
    assert check["passed"] and check["tokenizer_parity"] and check["greedy_parity"] and check["warnings"] == []
    tuned = generate_text(str(adapter), PARITY_CHAT[0]["content"], max_new_tokens=PARITY_NEW_TOKENS, chat=True)
    assert check["plain_transformers"]["greedy"]["plain"] == tuned
