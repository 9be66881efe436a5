"""Typed experiment config: YAML + a profile + dotted `--set` overrides -> a validated `Experiment`.

Precedence is CLI overrides > profile > YAML > defaults. Every section forbids unknown keys, so a
typo fails before any work starts, naming the key, the bad value and the closest valid key.
Configs are data: YAML is parsed with `safe_load`, never executed.

- `schema`: the sections (pydantic models with defaults, bounds and descriptions);
- `loading`: reading, profiles, overrides and readable validation errors;
- `reference`: the Markdown reference of every key (docs/config.md).
"""

from tunelab.config.loading import (
    apply_override,
    apply_profile,
    apply_value,
    capped,
    format_validation_error,
    load_config,
    parse_override,
    read_yaml_mapping,
    validate_config,
    validate_section,
)
from tunelab.config.reference import reference_markdown
from tunelab.config.schema import (
    COST_OBJECTIVES,
    CompareConfig,
    DataConfig,
    EarlyStoppingConfig,
    EndpointConfig,
    EvalConfig,
    Experiment,
    GenerationMetricConfig,
    JudgeConfig,
    LoraConfig,
    ModelConfig,
    Objective,
    OptunaConfig,
    Profile,
    ReportConfig,
    SearchRange,
    Section,
    SelectionConfig,
    SourceConfig,
    SplitConfig,
    SweepConfig,
    SweepCost,
    TrackingConfig,
    TrainConfig,
)

__all__ = [
    "COST_OBJECTIVES", "CompareConfig", "DataConfig", "EarlyStoppingConfig", "EndpointConfig", "EvalConfig",
    "Experiment", "GenerationMetricConfig", "JudgeConfig", "LoraConfig", "ModelConfig", "Objective", "OptunaConfig",
    "Profile", "ReportConfig", "SearchRange", "Section", "SelectionConfig", "SourceConfig", "SplitConfig",
    "SweepConfig", "SweepCost", "TrackingConfig", "TrainConfig", "apply_override", "apply_profile", "apply_value",
    "capped", "format_validation_error", "load_config", "parse_override", "read_yaml_mapping",
    "reference_markdown", "validate_config", "validate_section",
]
