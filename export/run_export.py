"""`xnorflow export`: a trained run -> QONNX file, verified on real test images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ..train.data import load_dataset
from ..train.trainer import describe_record, load_run_record, model_from_record
from .qonnx_export import export_qonnx_model
from .verify import StageComparison, compare, execute_graph, torch_logits


@dataclass
class TrainedRun:
    model: nn.Module
    config: dict          # the training configuration as recorded (keys depend on the trainer)
    description: str      # e.g. "SFC W1A1 (bnn++, mnist)", for reports
    in_features: int
    model_file: Path

    def reference(self, count: int, data_dir: str | None = None) -> Reference:
        """The first ``count`` test images (binarized as in training), their labels and the
        PyTorch logits every later stage is compared with."""
        dataset = load_dataset(self.config["dataset"], data_dir or self.config["data_dir"],
                               self.config["binarization"])
        images = dataset.test.images[:count]
        return Reference(images, dataset.test.labels[:count], torch_logits(self.model, images))


@dataclass(frozen=True)
class Reference:
    images: np.ndarray
    labels: np.ndarray
    logits: np.ndarray


def open_run(path: str | Path) -> TrainedRun:
    """``path`` is a run folder of `xnorflow train` or its ``model.pt``."""
    state, model_file = load_run_record(path)
    return TrainedRun(model_from_record(state), state["config"], describe_record(state),
                      state["in_features"], model_file)


def export_run(run: TrainedRun, out: str | Path, reference: Reference | None = None,
               progress: bool = True) -> StageComparison | None:
    """Export ``run`` to ``out`` and, given a ``reference``, compare the QONNX graph with the
    PyTorch model on its images (report in ``<out>.verify.json``)."""
    out = Path(out)
    wrapper = export_qonnx_model(run.model, run.in_features, out)
    if reference is None:
        return None
    result = compare("QONNX", reference.logits,
                     execute_graph(wrapper, reference.images, desc="verifying QONNX",
                                   progress=progress), reference.labels)
    out.with_suffix(".verify.json").write_text(json.dumps(result.as_dict(), indent=2))
    return result
