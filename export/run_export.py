"""`xnorflow export`: a trained run -> QONNX file, verified on real test images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ..train.checkpoint import CheckpointError, load_checkpoint
from ..train.data import load_dataset
from ..train.trainer import MODEL_FILE, TrainConfig, model_from_record
from .qonnx_export import export_qonnx_model
from .verify import StageComparison, compare, execute_graph, torch_logits


@dataclass
class TrainedRun:
    model: nn.Module
    config: TrainConfig
    in_features: int
    model_file: Path

    def test_images(self, count: int, data_dir: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The first ``count`` images of the run's test split, binarized as in training."""
        dataset = load_dataset(self.config.dataset, data_dir or self.config.data_dir,
                               self.config.binarization)
        return dataset.test.images[:count], dataset.test.labels[:count]


def open_run(path: str | Path) -> TrainedRun:
    """``path`` is a run folder of `xnorflow train` or its ``model.pt``."""
    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise CheckpointError(f"{model_file}: no trained model; pass the --out folder of a "
                              f"finished `xnorflow train` run or its {MODEL_FILE}")
    state = load_checkpoint(model_file)
    return TrainedRun(model_from_record(state), TrainConfig(**state["config"]),
                      state["in_features"], model_file)


def export_run(run: TrainedRun, out: str | Path, verify_images: int = 1000,
               data_dir: str | None = None, progress: bool = True) -> StageComparison | None:
    """Export ``run`` to ``out`` and, unless ``verify_images`` is 0, compare the QONNX graph
    with the PyTorch model on that many real test images (report in ``<out>.verify.json``)."""
    out = Path(out)
    wrapper = export_qonnx_model(run.model, run.in_features, out)
    if not verify_images:
        return None
    images, labels = run.test_images(verify_images, data_dir)
    result = compare("QONNX", torch_logits(run.model, images),
                     execute_graph(wrapper, images, desc="verifying QONNX", progress=progress),
                     labels)
    out.with_suffix(".verify.json").write_text(json.dumps(result.as_dict(), indent=2))
    return result
