"""The pretraining corpus: Python standard library source, split by module, and its tokenizer.

Every machine with Python has the standard library's `.py` files, so the built-in model can be
rebuilt anywhere without downloading anything. The held-out split is chosen by module (a hash
of the module key), never by file chunk, so held-out loss measures code the model never saw
from that module family.

Only `tokenizers`, `numpy` and the standard library are imported here: this runs on machines
where the rest of tunelab is not installed.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOS, IM_START, IM_END, PAD]

# ChatML, the format of the Qwen family. The `{% generation %}` markers let transformers return
# an assistant-token mask (`return_assistant_tokens_mask=True`).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    relpath: str
    module_key: str


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def module_key(relpath: str) -> str:
    """Group files by module: `json/decoder.py` -> `json`; `test/test_json/x.py` -> `test/test_json`.

    The `test` package holds a third of the standard library, so it is split one level deeper.
    """
    parts = relpath.split("/")
    if parts[0] == "test" and len(parts) > 2:
        return "/".join(parts[:2])
    if parts[0] == "test" and len(parts) == 2:
        return "test/" + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py")


def is_held_out(key: str, percent: int) -> bool:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def list_sources(root: Path | None = None) -> list[SourceFile]:
    """Every `.py` file of the standard library, sorted, excluding site-packages."""
    root = root or stdlib_dir()
    files = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("site-packages/", "dist-packages/")) or "/site-packages/" in rel:
            continue
        files.append(SourceFile(p, rel, module_key(rel)))
    return files


def read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    # A few stdlib files are data blobs (huge tables); they teach the model nothing about code.
    if len(text) > 400_000 or "\x00" in text:
        return None
    return text


def iter_texts(files: list[SourceFile]) -> Iterator[str]:
    for f in files:
        text = read_text(f.path)
        if text:
            yield text


# Qwen2's pre-tokenization, copied from transformers' Qwen2Tokenizer: transformers (5.x) loads
# every `qwen2` folder through that class, which rebuilds the pre-tokenizer and normalizer from
# these constants and ignores tokenizer.json's own. A BPE trained with exactly these pieces is
# tokenized identically by tunelab, plain `AutoTokenizer`, vLLM and TGI.
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def train_tokenizer(files: list[SourceFile], vocab_size: int, out_dir: Path) -> None:
    """Train a byte-level BPE on the training files and save it as a Qwen2 tokenizer folder.

    The normalizer (NFC), pre-tokenizer (Qwen2's split regex, then byte-level without its own
    regex) and decoder are exactly those `Qwen2Tokenizer` builds, and `tokenizer_config.json`
    declares that class, so `AutoTokenizer.from_pretrained` on a folder with a qwen2
    config.json gives the same ids as `tokenizers.Tokenizer.from_file` on this tokenizer.json.
    Written with `tokenizers` directly (not `AutoTokenizer.train_new_from_iterator`) because
    there is no base tokenizer to start from here.

    Args:
        files: The training split's source files.
        vocab_size: Size of the vocabulary, special tokens included.
        out_dir: Folder for tokenizer.json, tokenizer_config.json and special_tokens_map.json.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(iter_texts(files), trainer=trainer)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "bos_token": None,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "add_prefix_space": False,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
        "additional_special_tokens": [IM_START, IM_END],
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": EOS, "pad_token": PAD, "additional_special_tokens": [IM_START, IM_END]}, indent=2)
        + "\n"
    )


def encode_files(files: list[SourceFile], tokenizer_dir: Path) -> np.ndarray:
    """Token ids of all files, each followed by the end-of-text token, as one uint16 array."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = tok.token_to_id(EOS)
    texts = list(iter_texts(files))
    ids: list[int] = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eos)
    assert tok.get_vocab_size() < 2**16
    return np.asarray(ids, dtype=np.uint16)


def build_corpus(out_dir: Path, vocab_size: int, held_out_percent: int, root: Path | None = None) -> dict:
    """Train the tokenizer and write `train.bin`/`val.bin` (uint16 token ids) plus `corpus.json`."""
    files = list_sources(root)
    train_files = [f for f in files if not is_held_out(f.module_key, held_out_percent)]
    val_files = [f for f in files if is_held_out(f.module_key, held_out_percent)]
    tok_dir = out_dir / "tokenizer"
    train_tokenizer(train_files, vocab_size, tok_dir)
    stats: dict = {
        "source": f"Python {sysconfig.get_python_version()} standard library (.py files)",
        "files": {"train": len(train_files), "val": len(val_files)},
        "held_out_percent": held_out_percent,
        "held_out_modules": sorted({f.module_key for f in val_files}),
        "vocab_size": vocab_size,
    }
    for split, group in (("train", train_files), ("val", val_files)):
        arr = encode_files(group, tok_dir)
        arr.tofile(out_dir / f"{split}.bin")
        stats.setdefault("tokens", {})[split] = int(arr.size)
    (out_dir / "corpus.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
