"""Config: YAML + overrides validate into typed sections; mistakes name the key and a fix."""

from pathlib import Path

import pytest
import yaml

from tunelab.config import Experiment, Section, apply_override, load_config, validate_section
from tunelab.errors import ConfigError

MINIMAL = {
    "name": "t",
    "model": {"name": "builtin:tiny-random-qwen2"},
    "data": {"sources": [{"path": "train.jsonl"}]},
}


def write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_minimal_config_gets_defaults_and_resolves_paths(tmp_path):
    exp = load_config(write(tmp_path, MINIMAL))
    assert isinstance(exp, Experiment)
    assert exp.lora.r == 16 and exp.train.scheduler == "cosine"
    assert exp.data.sources[0].path == str((tmp_path / "train.jsonl").resolve())
    assert exp.data.sources[0].label == "train"


def test_override_beats_yaml_and_parses_types(tmp_path):
    cfg = {**MINIMAL, "train": {"lr": 1e-3}}
    exp = load_config(write(tmp_path, cfg), ["train.lr=1e-4", "lora.target_modules=[q_proj, v_proj]", "data.packing=true"])
    assert exp.train.lr == pytest.approx(1e-4)
    assert exp.lora.target_modules == ["q_proj", "v_proj"]
    assert exp.data.packing is True


def test_misspelt_key_names_key_and_suggestion(tmp_path):
    cfg = {**MINIMAL, "train": {"learning_rate": 1e-4, "lr": 1e-4, "epochz": 2}}
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, cfg))
    msg = str(e.value)
    assert "train.epochz: unknown key (did you mean 'epochs'?)" in msg
    assert "train.learning_rate: unknown key" in msg


def test_misspelt_override_fails_before_validation(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'lr' in lora \(did you mean 'r'\?\)"):
        load_config(write(tmp_path, MINIMAL), ["lora.lr=3"])
    with pytest.raises(ConfigError, match="expects key=value"):
        load_config(write(tmp_path, MINIMAL), ["train.lr"])


def test_wrong_type_and_range_name_key_and_value(tmp_path):
    cfg = {**MINIMAL, "train": {"lr": -1, "batch_size": "eight"}, "lora": {"dropout": 1.5}}
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, cfg))
    msg = str(e.value)
    assert "train.lr: Input should be greater than 0 (got -1)" in msg
    assert "train.batch_size" in msg and "'eight'" in msg
    assert "lora.dropout" in msg and "1.5" in msg


def test_enum_error_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, {**MINIMAL, "train": {"scheduler": "cosin"}}))
    assert "'cosine'" in str(e.value) and "'linear'" in str(e.value)


def test_missing_sections_and_bad_source(tmp_path):
    with pytest.raises(ConfigError, match="model: required key is missing"):
        load_config(write(tmp_path, {"data": MINIMAL["data"]}))
    bad = {**MINIMAL, "data": {"sources": [{"path": "a.jsonl", "hub": "x/y"}]}}
    with pytest.raises(ConfigError, match="exactly one of path, hub or builtin"):
        load_config(write(tmp_path, bad))


def test_unreadable_or_non_mapping_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)
    p.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_to_yaml_round_trips(tmp_path):
    exp = load_config(write(tmp_path, MINIMAL), ["train.max_steps=7"])
    again = Experiment.model_validate(yaml.safe_load(exp.to_yaml()))
    assert again == exp


def test_apply_override_creates_nested_sections():
    raw: dict = {}
    apply_override(raw, "train.early_stopping.patience=3")
    assert raw == {"train": {"early_stopping": {"patience": 3}}}


def test_sweep_grid_keys_are_dotted_config_keys_on_the_command_line(tmp_path):
    raw: dict = {}
    apply_override(raw, "sweep.grid.lora.r=[4, 8]")
    apply_override(raw, "sweep.grid.data.sources.0.weight=[1, 3]")
    apply_override(raw, "sweep.zip.lora.alpha=[8, 16]")
    assert raw == {"sweep": {"grid": {"lora.r": [4, 8], "data.sources.0.weight": [1, 3]},
                             "zip": {"lora.alpha": [8, 16]}}}
    exp = load_config(write(tmp_path, MINIMAL), ["sweep.grid.lora.r=[4, 8]", "sweep.grid.train.lr=[0.0001]"])
    assert exp.sweep.grid == {"lora.r": [4, 8], "train.lr": [0.0001]}


def test_config_reference_doc_is_current():
    """docs/config.md is generated from the typed config; regenerate with `tunelab config reference`."""
    from tunelab.config import reference_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text() == reference_markdown() + "\n", "run: tunelab config reference > docs/config.md"
    assert "| `lr` |" in doc.read_text() and "## `train.early_stopping`" in doc.read_text()


def test_names_from_other_tools_suggest_ours(tmp_path):
    cfg = {**MINIMAL, "train": {"learning_rate": 1e-4, "gradient_accumulation_steps": 2}, "lora": {"lora_alpha": 8}}
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, cfg))
    msg = str(e.value)
    assert "train.learning_rate: unknown key (did you mean 'lr'?)" in msg
    assert "(did you mean 'grad_accum'?)" in msg and "(did you mean 'alpha'?)" in msg


def test_override_indexes_into_lists_of_sections(tmp_path):
    cfg = {**MINIMAL, "data": {"sources": [{"path": "a.jsonl"}, {"path": "b.jsonl"}]}}
    exp = load_config(write(tmp_path, cfg), ["data.sources.1.weight=3", "data.sources.0.max_examples=16"])
    assert exp.data.sources[1].weight == 3 and exp.data.sources[0].max_examples == 16
    with pytest.raises(ConfigError, match="list of 2; use an index 0..1"):
        load_config(write(tmp_path, cfg), ["data.sources.5.weight=3"])
    with pytest.raises(ConfigError, match="unknown key 'wieght'.*did you mean 'weight'"):
        load_config(write(tmp_path, cfg), ["data.sources.0.wieght=3"])


class _ToolConfig(Section):
    """A config of a tool outside the experiment (the pretraining recipe is one)."""

    hidden_size: int = 8
    lr: float = 1e-3


def test_other_config_models_get_the_same_errors_and_overrides():
    raw = {"hidden_size": 16}
    apply_override(raw, "lr=0.5", root=_ToolConfig)
    assert validate_section(_ToolConfig, raw, "tool.yaml") == _ToolConfig(hidden_size=16, lr=0.5)
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate' in the top level \(did you mean 'lr'\?\)"):
        apply_override({}, "learning_rate=1", root=_ToolConfig)
    with pytest.raises(ConfigError, match=r"tool.yaml: invalid config\n  hiden_size: unknown key \(did you mean 'hidden_size'\?\)"):
        validate_section(_ToolConfig, {"hiden_size": 3}, "tool.yaml")
    with pytest.raises(ConfigError, match=r"hidden_size: .* \(got 'big'\)"):
        validate_section(_ToolConfig, {"hidden_size": "big"}, "tool.yaml")
def test_task_options_override_dotted_and_mapping_forms(tmp_path):
    cfg = {**MINIMAL, "eval": {"tasks": ["humaneval", "similarity"], "task_options": {"humaneval": {"timeout_s": 5}}}}
    exp = load_config(write(tmp_path, cfg), ["eval.task_options.humaneval.timeout_s=2.5",
                                             "eval.task_options.similarity.dataset=my.data.jsonl"])
    assert exp.eval.task_options == {"humaneval": {"timeout_s": 2.5}, "similarity": {"dataset": "my.data.jsonl"}}
    exp = load_config(write(tmp_path, cfg), ["eval.task_options={repair: {timeout_s: 3}}"])
    assert exp.eval.task_options == {"repair": {"timeout_s": 3}}
    exp = load_config(write(tmp_path, cfg), ["eval.task_options.stdio={timeout_s: 4}"])
    assert exp.eval.task_options["stdio"] == {"timeout_s": 4} and exp.eval.task_options["humaneval"] == {"timeout_s": 5}


def test_other_free_form_mappings_from_the_docs_take_both_forms(tmp_path):
    exp = load_config(write(tmp_path, MINIMAL), ["sweep.grid={lora.r: [4, 8]}", "data.sources.0.columns.output=answer",
                                                 "sweep.zip.train.lr=[0.1, 0.2]"])
    assert exp.sweep.grid == {"lora.r": [4, 8]} and exp.sweep.zip == {"train.lr": [0.1, 0.2]}
    assert exp.data.sources[0].columns == {"output": "answer"}
    exp = load_config(write(tmp_path, MINIMAL), ["data.sources.0.columns={instruction: q, output: a}"])
    assert exp.data.sources[0].columns == {"instruction": "q", "output": "a"}


def test_misspelt_task_and_option_fail_at_load_naming_key_and_closest_name(tmp_path):
    from tunelab.evaluation.registry import validate_eval_config

    with pytest.raises(ConfigError) as e:
        validate_eval_config(load_config(write(tmp_path, MINIMAL), ["eval.tasks=[humanevl]"]).eval)
    assert "eval.tasks" in str(e.value) and "'humanevl'" in str(e.value) and "did you mean 'humaneval'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        validate_eval_config(load_config(write(tmp_path, MINIMAL), ["eval.tasks=[humaneval]",
                                                                    "eval.task_options.humaneval.timeout=3"]).eval)
    msg = str(e.value)
    assert "eval.task_options.humaneval.timeout" in msg and "timeout_s" in msg and "its options:" in msg
    with pytest.raises(ConfigError, match="eval.task_options.repiar"):
        validate_eval_config(load_config(write(tmp_path, MINIMAL), ["eval.task_options.repiar.timeout_s=3"]).eval)
    ok = load_config(write(tmp_path, MINIMAL), ["eval.tasks=[humaneval]", "eval.task_options.humaneval.timeout_s=3"])
    validate_eval_config(ok.eval)  # loading or showing a config never needs the code opt-in
    with pytest.raises(ConfigError, match="allow-code-execution"):
        validate_eval_config(ok.eval, runs_tasks=True)
    ok.eval.allow_code_execution = True
    validate_eval_config(ok.eval, runs_tasks=True)


PROFILED = {
    **MINIMAL,
    "train": {"max_steps": 500},
    "profiles": {"offline": {"description": "built-in stand-ins", "set": {
        "model.name": "builtin:tiny-code", "train.max_steps": 20,
        "data.sources": [{"builtin": "math-word"}], "eval.task_options": {"math-word": {"prompt_format": "benchmark"}}}}},
}


def test_a_profile_applies_its_settings_before_every_set_override(tmp_path):
    path = write(tmp_path, PROFILED)
    plain = load_config(path)
    assert plain.model.name == "builtin:tiny-random-qwen2" and plain.train.max_steps == 500 and plain.profile is None
    # Whatever its position, the profile goes first, so an explicit --set wins over it.
    exp = load_config(path, ["train.max_steps=7", "profile=offline"])
    assert exp.profile == "offline" and exp.model.name == "builtin:tiny-code"
    assert exp.train.max_steps == 7 and exp.data.sources[0].builtin == "math-word"
    assert exp.eval.task_options == {"math-word": {"prompt_format": "benchmark"}}
    # The resolved config records the profile; loading it again keeps the values as they are.
    again = tmp_path / "resolved.yaml"
    again.write_text(exp.to_yaml())
    assert load_config(again).train.max_steps == 7


def test_an_unknown_profile_or_profile_key_is_a_config_error_naming_it(tmp_path):
    path = write(tmp_path, PROFILED)
    with pytest.raises(ConfigError, match=r"--profile ofline: no such profile \(did you mean 'offline'\?\); "
                                          r"this config has: offline"):
        load_config(path, ["profile=ofline"])
    bad = {**PROFILED, "profiles": {"offline": {"set": {"train.max_step": 3}}}}
    with pytest.raises(ConfigError, match=r"profiles\.offline\.set: .*unknown key 'max_step' .*did you mean 'max_steps'"):
        load_config(write(tmp_path, bad), ["profile=offline"])


def test_the_profile_flag_reaches_config_show(tmp_path):
    from typer.testing import CliRunner

    from tunelab.cli import app

    res = CliRunner().invoke(app, ["config", "show", str(write(tmp_path, PROFILED)), "--profile", "offline"])
    assert res.exit_code == 0, res.output
    shown = yaml.safe_load(res.output)
    assert shown["profile"] == "offline" and shown["model"]["name"] == "builtin:tiny-code"
