"""Optional experiment trackers (TensorBoard, MLflow), fed the same rows as metrics.jsonl.

metrics.jsonl is always written and is what the report reads; trackers are a convenience for
people who already watch runs in TensorBoard or MLflow. Only the main process creates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import Experiment
from tunelab.errors import TrainingError

_INSTALL_HINT = "pip install 'tunelab[tracking]'"


class Trackers:
    """Fan-out of metric rows to the trackers enabled in `exp.tracking` (possibly none)."""

    def __init__(self, exp: Experiment, run_dir: Path, enabled: bool = True):
        self._tb = None
        self._mlflow = None
        if not enabled:
            return
        cfg = exp.tracking
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TrainingError(f"tracking.tensorboard needs the tensorboard package: {_INSTALL_HINT}") from None
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "train" / "tensorboard"))
        if cfg.mlflow:
            try:
                import mlflow
            except ImportError:
                raise TrainingError(f"tracking.mlflow needs the mlflow package: {_INSTALL_HINT}") from None
            if cfg.mlflow_tracking_uri:
                mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
            mlflow.set_experiment(exp.name)
            self._mlflow = mlflow
            mlflow.start_run(run_name=Path(run_dir).name)
            mlflow.log_params(_flatten(exp.model_dump(mode="json"), skip=("sweep", "compare", "eval")))

    def log(self, row: dict[str, Any]) -> None:
        """Log one metrics.jsonl row: scalars as `<split>/<name>`, per-source as
        `<split>/<source>/<name>`."""
        if self._tb is None and self._mlflow is None:
            return
        step, split = int(row["step"]), row.get("split", "train")
        scalars: dict[str, float] = {}
        for key, value in row.items():
            if key in ("step", "split") or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            scalars[f"{split}/{key}"] = float(value)
        for source, stats in (row.get("per_source") or {}).items():
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    scalars[f"{split}/{source}/{key}"] = float(value)
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()
        if self._mlflow is not None:
            # MLflow metric names allow only [\w.- /]; source names come from file names.
            clean = {"".join(c if c.isalnum() or c in "_-./ " else "_" for c in k): v for k, v in scalars.items()}
            self._mlflow.log_metrics(clean, step=step)

    def close(self, status: str = "FINISHED") -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._mlflow is not None:
            self._mlflow.end_run(status=status)
            self._mlflow = None


def _flatten(obj: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not prefix and k in skip:
                continue
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    value = str(obj)
    return {prefix.rstrip("."): value[:500]}  # MLflow caps parameter values
