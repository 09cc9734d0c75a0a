"""The export stage: a trained run -> QONNX file, verified on real test images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..outputs import claim_file, write_text
from ..train.data import load_dataset
from ..train.runs import Run, open_run
from ..train.models import model_inputs
from .qonnx_export import export_qonnx_model, save_model
from .verify import StageComparison, compare, execute_graph, torch_logits

STAGE = "export"
QONNX_FILE = "model.qonnx.onnx"


@dataclass(frozen=True)
class Reference:
    """The first test images of a run's data set (binarized as in training), their labels and
    the PyTorch logits every later stage is compared with."""

    images: np.ndarray
    labels: np.ndarray
    logits: np.ndarray

    def first(self, count: int) -> Reference:
        return Reference(self.images[:count], self.labels[:count], self.logits[:count])


def reference_for(run: Run, model, count: int, data_dir: str | None = None) -> Reference:
    config = run.config
    dataset = load_dataset(config.dataset, data_dir or config.data_dir, config.binarization)
    images = model_inputs(model, dataset.test.images[:count])
    return Reference(images, dataset.test.labels[:count], torch_logits(model, images))


@dataclass
class ExportResult:
    qonnx: Path
    comparison: StageComparison | None

    def lines(self) -> list[str]:
        return [f"wrote {self.qonnx}"] + ([self.comparison.summary()] if self.comparison else [])

    @property
    def identical(self) -> bool:
        return self.comparison is None or self.comparison.identical


def export_model(model, out: Path, reference: Reference | None,
                 progress: bool = True) -> StageComparison | None:
    """Export ``model`` to ``out`` (atomically) and, given a ``reference``, compare the QONNX
    graph with the PyTorch model on its images (report in ``<out>.verify.json``)."""
    wrapper = export_qonnx_model(model)
    save_model(wrapper, out)
    if reference is None:
        return None
    result = compare("QONNX", reference.logits,
                     execute_graph(wrapper, reference.images, desc="verifying QONNX",
                                   progress=progress), reference.labels)
    write_text(out.with_suffix(".verify.json"), json.dumps(result.as_dict(), indent=2))
    return result


def export_stage(run_path: str | Path, out: str | Path | None = None, verify: int = 1000,
                 data_dir: str | None = None, progress: bool = True) -> ExportResult:
    """`xnorflow export`: open the run, check the output paths, load the reference images, then
    export and verify. Nothing is written before every check has passed."""
    run = open_run(run_path)
    out = Path(out) if out else run.folder / QONNX_FILE
    claim_file(out, STAGE, inputs=run.inputs())
    if verify:
        claim_file(out.with_suffix(".verify.json"), STAGE, inputs=run.inputs())
    model = run.model()
    reference = reference_for(run, model, verify, data_dir) if verify else None
    return ExportResult(out, export_model(model, out, reference, progress))
