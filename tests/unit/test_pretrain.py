"""The built-in model's recipe: corpus split by module, tokenizer, resumable training, export."""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import pytest

from tunelab.errors import ConfigError
from tunelab_build.pretrain import corpus
from tunelab_build.pretrain.config import PretrainConfig, load_recipe
from tunelab_build.pretrain.export import export, python_status
from tunelab_build.pretrain.train import learning_rate, pretrain

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "tiny-code.yaml"

SHIPPED = Path(__file__).resolve().parents[2] / "src" / "tunelab" / "builtin" / "models" / "tiny-code"
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, seq_len=32,
            batch_size=2, warmup_steps=1, max_steps=4, eval_every=2, save_every=2, eval_tokens=256,
            vocab_size=300, held_out_percent=30)


def fake_stdlib(root: Path) -> Path:
    lib = root / "lib"
    for i in range(30):
        mod = lib / (f"pkg{i}/__init__.py" if i % 3 == 0 else f"mod{i}.py")
        mod.parent.mkdir(parents=True, exist_ok=True)
        mod.write_text(f'"""Module {i}."""\n\ndef f{i}(x):\n    return x * {i} + len(str(x))\n' * 20)
    (lib / "site-packages").mkdir()
    (lib / "site-packages" / "thirdparty.py").write_text("x = 1\n")
    return lib


def test_module_keys_and_held_out_split_are_by_module():
    assert corpus.module_key("json/decoder.py") == "json"
    assert corpus.module_key("os.py") == "os"
    assert corpus.module_key("test/test_json/test_x.py") == "test/test_json"
    assert corpus.module_key("test/test_os.py") == "test/test_os"
    keys = [f"m{i}" for i in range(2000)]
    share = sum(corpus.is_held_out(k, 4) for k in keys) / len(keys)
    assert 0.02 < share < 0.06
    assert corpus.is_held_out("abc", 4) == corpus.is_held_out("abc", 4)


def test_build_corpus_splits_files_and_skips_site_packages(tmp_path):
    lib = fake_stdlib(tmp_path)
    files = corpus.list_sources(lib)
    assert all("site-packages" not in f.relpath for f in files) and len(files) == 30
    stats = corpus.build_corpus(tmp_path / "c", vocab_size=300, held_out_percent=30, root=lib)
    assert stats["files"]["train"] + stats["files"]["val"] == 30 and stats["files"]["val"] > 0
    train = np.fromfile(tmp_path / "c" / "train.bin", dtype=np.uint16)
    assert train.size == stats["tokens"]["train"] and train.max() < 300
    # Every document ends with the end-of-text token (id 0).
    assert (train == 0).sum() == stats["files"]["train"]


def test_pretrain_resumes_exactly_and_exports_a_loadable_model(tmp_path, monkeypatch):
    lib = fake_stdlib(tmp_path)
    monkeypatch.setattr(corpus, "stdlib_dir", lambda: lib)
    full = pretrain(PretrainConfig(**TINY), tmp_path / "full", log=lambda m: None)

    def crash_at_step_4(msg: str) -> None:
        if msg.startswith("step 4:"):
            raise KeyboardInterrupt  # killed after the step-2 checkpoint, before step 4's

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainConfig(**TINY), part, log=crash_at_step_4)
    logs: list[str] = []
    resumed = pretrain(PretrainConfig(**TINY), part, log=logs.append)
    assert any(m.startswith("resumed at step 2") for m in logs)
    assert resumed["step"] == 4
    assert [h["val_loss"] for h in resumed["history"]] == [h["val_loss"] for h in full["history"]]
    export(tmp_path / "full", tmp_path / "export")
    meta = json.loads((tmp_path / "export" / "pretrain_meta.json").read_text())
    assert meta["val_loss"] == pytest.approx(full["best_val_loss"])
    assert "Held-out loss" in (tmp_path / "export" / "README.md").read_text()

    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_base

    model, tok = load_base(ModelConfig(name=str(tmp_path / "export")))
    assert next(model.parameters()).dtype == torch.float32  # bf16 on disk, fp32 on CPU
    ids = tok("def f(x):", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == 300


@pytest.mark.skipif(
    sys.version_info[:3] != (3, 11, 7) or platform.python_implementation() != "CPython",
    reason="the shipped tokenizer was trained on the CPython 3.11.7 standard library",
)
@pytest.mark.skipif(
    json.loads((SHIPPED / "tokenizer_config.json").read_text()).get("tokenizer_class") != "Qwen2Tokenizer",
    reason="the shipped tokenizer predates the recipe's Qwen2 pre-tokenizer; it is reproduced once the "
           "built-in model is re-pretrained with the recipe",
)
def test_recipe_reproduces_the_shipped_tokenizer(tmp_path):
    cfg = load_recipe(RECIPE)
    files = [f for f in corpus.list_sources() if not corpus.is_held_out(f.module_key, cfg.held_out_percent)]
    corpus.train_tokenizer(files, cfg.vocab_size, tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text()) == json.loads((SHIPPED / "tokenizer.json").read_text())


# Run in a fresh interpreter that never imports tunelab: what a user, vLLM or TGI does.
_PLAIN_LOAD = """
import json, sys
from tokenizers import Tokenizer
from transformers import AutoTokenizer

folder, texts = sys.argv[1], json.loads(sys.argv[2])
auto = AutoTokenizer.from_pretrained(folder)
raw = Tokenizer.from_file(folder + "/tokenizer.json")
chat = auto.apply_chat_template([{"role": "user", "content": "Add 12 and 30."}], tokenize=False,
                                add_generation_prompt=True)
print(json.dumps({
    "class": type(auto).__name__, "tunelab_imported": any(m.startswith("tunelab") for m in sys.modules),
    "auto": [auto(t)["input_ids"] for t in [*texts, chat]],
    "raw": [raw.encode(t, add_special_tokens=False).ids for t in [*texts, chat]],
    "eos": auto.eos_token, "pad": auto.pad_token, "im_end": auto.convert_tokens_to_ids("<|im_end|>"),
}))
"""


def test_recipe_tokenizer_loads_identically_with_plain_auto_tokenizer(tmp_path):
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    assert corpus.QWEN2_PRETOKENIZE_REGEX == PRETOKENIZE_REGEX  # the copy tracks transformers' class
    wanted = {"json/decoder.py", "textwrap.py", "string.py", "bisect.py", "heapq.py", "fractions.py"}
    files = [f for f in corpus.list_sources() if f.relpath in wanted]
    assert len(files) == len(wanted)
    corpus.train_tokenizer(files, 600, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": 600}))
    texts = [
        (corpus.stdlib_dir() / "heapq.py").read_text(encoding="utf-8")[:3000],
        "x = 123 + 4567 - 0.25e10\n", " 123", "    if a:\n\t\treturn  b   \n\n\n    \n",
        "caf\u0065\u0301 na\u00efve \u00c5ngstr\u00f6m \U0001f600", "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    ]
    import subprocess

    res = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, str(tmp_path), json.dumps(texts)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["class"] == "Qwen2Tokenizer" and not got["tunelab_imported"]
    for auto, raw in zip(got["auto"], got["raw"], strict=True):
        assert auto == raw
    assert (got["eos"], got["pad"]) == (corpus.EOS, corpus.PAD)
    assert got["im_end"] in got["auto"][-1]  # the chat template's markers are single special tokens


def test_bf16_precision_autocasts_and_is_named_on_the_card(tmp_path, monkeypatch):
    lib = fake_stdlib(tmp_path)
    monkeypatch.setattr(corpus, "stdlib_dir", lambda: lib)
    fp32 = pretrain(PretrainConfig(**TINY), tmp_path / "fp32", log=lambda m: None)
    bf16 = pretrain(PretrainConfig(**TINY, precision="bf16"), tmp_path / "bf16", log=lambda m: None)
    a = [h["val_loss"] for h in fp32["history"]]
    b = [h["val_loss"] for h in bf16["history"]]
    assert a != b  # the forward passes really ran in bfloat16 ...
    assert b == pytest.approx(a, abs=0.1)  # ... and trained the same model to within rounding
    export(tmp_path / "bf16", tmp_path / "export")
    assert "bf16 autocast with fp32 master weights on cpu" in (tmp_path / "export" / "README.md").read_text()


def test_unknown_precision_names_the_allowed_values(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("precision: fp16\n")
    with pytest.raises(ConfigError, match=r"precision: Input should be 'fp32' or 'bf16' \(got 'fp16'\)"):
        load_recipe(recipe)


def test_misspelt_recipe_key_is_a_config_error_with_the_closest_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("hiden_size: 64\n")
    with pytest.raises(ConfigError, match=r"hiden_size: unknown key \(did you mean 'hidden_size'\?\)"):
        load_recipe(recipe)


def test_set_overrides_are_checked_and_win_over_the_yaml():
    assert load_recipe(RECIPE, ["max_steps=7", "lr=1e-3"]).max_steps == 7
    with pytest.raises(ConfigError, match=r"unknown key 'warmup' .*\(did you mean 'warmup_steps'\?\)"):
        load_recipe(RECIPE, ["warmup=10"])
    with pytest.raises(ConfigError, match=r"min_lr_ratio: .*less than or equal to 1 \(got 2\)"):
        load_recipe(RECIPE, ["min_lr_ratio=2"])


def test_recipe_lr_is_the_one_schedule_with_warmup_and_a_cosine_floor():
    cfg = load_recipe(RECIPE)  # warmup 300, 5000 steps, peak 2e-3, floor 0.1 x peak
    lrs = [learning_rate(s, cfg) for s in range(cfg.max_steps + 1)]
    assert lrs[0] == pytest.approx(cfg.lr / cfg.warmup_steps)
    assert lrs[cfg.warmup_steps - 1] == pytest.approx(cfg.lr) and lrs[cfg.warmup_steps] == pytest.approx(cfg.lr)
    assert lrs[cfg.max_steps] == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    middle = (cfg.warmup_steps + cfg.max_steps) // 2
    assert lrs[middle] == pytest.approx(cfg.lr * (0.1 + 0.9 * 0.5))
    assert all(a >= b for a, b in zip(lrs[cfg.warmup_steps :], lrs[cfg.warmup_steps + 1 :]))


def test_a_corpus_too_small_for_the_windows_is_a_config_error(tmp_path, monkeypatch):
    lib = fake_stdlib(tmp_path)
    monkeypatch.setattr(corpus, "stdlib_dir", lambda: lib)
    with pytest.raises(ConfigError, match="corpus too small for seq_len 100000"):
        pretrain(PretrainConfig(**{**TINY, "seq_len": 100_000}), tmp_path / "w", log=lambda m: None)


def test_python_status_tells_a_cut_off_program_from_a_broken_one():
    assert python_status("def f(x):\n    return x + 1\n") == "parses"
    assert python_status("class A:\n    def f(self):\n        return 1\n    def g(sel") == "parses"  # last line cut
    assert python_status('def f(n):\n    """Return the\n    nth number.\n') == "prefix"  # open docstring
    assert python_status("x = foo(1,\n      2,\n") == "prefix"  # open bracket
    assert python_status("def f(:\n    pass\n") == "error"
    assert python_status("def f():\n        return 1\n    return 2\n") == "error"  # bad dedent


def test_command_line_runs_the_recipe_and_reports_mistakes_in_one_line(tmp_path, monkeypatch, capsys):
    from tunelab_build.pretrain.__main__ import main

    lib = fake_stdlib(tmp_path)
    monkeypatch.setattr(corpus, "stdlib_dir", lambda: lib)
    with pytest.raises(SystemExit) as stop:
        main([str(RECIPE), "--work-dir", str(tmp_path / "w"), "--corpus-only",
              "--set", "vocab_size=300", "--set", "held_out_percent=30"])
    assert stop.value.code == 0
    assert json.loads(capsys.readouterr().out)["files"]["train"] > 0
    with pytest.raises(SystemExit) as stop:
        main([str(RECIPE), "--work-dir", str(tmp_path / "w"), "--set", "hiden_size=3"])
    assert stop.value.code == 2
    assert "did you mean 'hidden_size'" in capsys.readouterr().err
