"""behavioral-pattern-classifier: ONNX export (class probabilities) for Triton."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from exporters.model_spec import TensorSpec
from exporters.tabular import PARITY_ROWS, export_tabular_version, tabular_spec
from trademaster import registry
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.features.build import USER_BEHAVIOR_FILE
from trademaster.settings import PipelineSettings

OUTPUT = "probabilities"


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    tags = registry.version_tags(settings, version)
    feature_names = tags[Parameter.FEATURE_NAMES].split(",")
    class_labels = tags[Parameter.CLASS_LABELS].split(",")
    snapshots = pd.read_parquet(settings.features_dir / USER_BEHAVIOR_FILE)
    active = snapshots[snapshots["trades_in_window"] > 0]
    sample = active.sample(min(PARITY_ROWS, len(active)), random_state=settings.seed)
    rows = sample[feature_names].to_numpy(np.float32)
    spec = tabular_spec(
        version.name,
        TaskKind.MULTICLASS_CLASSIFICATION,
        tags[Parameter.FEATURE_SERVICE],
        feature_names,
        TensorSpec(OUTPUT, "FP32", (len(class_labels),)),
        rows,
        {Parameter.CLASS_LABELS: ",".join(class_labels)},
    )
    return export_tabular_version(settings, version, spec, rows)
