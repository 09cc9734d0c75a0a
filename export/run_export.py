"""The export stage: a trained run -> QONNX file, verified on real test images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..outputs import write_text
from ..train.configs import NOT_BUILDABLE
from ..train.data import Dataset, DatasetError, fingerprint, load_dataset
from ..train.models import model_inputs
from ..train.runs import CHECKPOINT, Run, RunRecordError, load_record
from .qonnx_export import UnsupportedModelError, export_qonnx_model, save_model
from .sampling import SAMPLE_SEED, describe_sample, stratified_order
from .verify import StageComparison, compare, execute_graph, torch_logits

STAGE = "export"
QONNX_FILE = "model.qonnx.onnx"


@dataclass(frozen=True)
class Reference:
    """Test images of a run's data set (binarized as in training) in a seeded stratified order
    (:mod:`~xnorflow.export.sampling`), their labels and the PyTorch logits every later stage is
    compared with. Any prefix (:meth:`first`) holds every class in proportion."""

    images: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    test_set_size: int  # images in the whole test split (a bundle names how many more exist)
    indices: np.ndarray | None = None  # test-set index of each image; None: 0, 1, 2, ...
    seed: int | None = None  # of the stratified order; None: the images in test-set order

    def __post_init__(self):
        if self.indices is None:
            object.__setattr__(self, "indices", np.arange(len(self.labels)))

    def first(self, count: int) -> Reference:
        """The first ``count`` images: a prefix of a stratified order is stratified too."""
        return Reference(self.images[:count], self.labels[:count], self.logits[:count],
                         self.test_set_size, self.indices[:count], self.seed)

    def describe_sample(self) -> str:
        """Which test images these are, in one line (see :func:`~.sampling.describe_sample`)."""
        return describe_sample(self.labels, self.test_set_size, self.seed)

    def sample_record(self) -> dict:
        """The sample as a report records it (verify.json, a bundle's manifest.json)."""
        return {"description": self.describe_sample(), "seed": self.seed,
                "test_set_images": self.test_set_size,
                "test_set_indices": [int(i) for i in self.indices]}


def check_buildable(model: str | None, subject: str) -> None:
    """Refuse a network FINN cannot build (:data:`~xnorflow.train.configs.NOT_BUILDABLE`),
    naming ``subject`` (the run, the exploration), the model and the reason. Export, build,
    deploy and explore call this before they write anything or run any FINN code."""
    reason = NOT_BUILDABLE.get(model or "")
    if reason:
        raise UnsupportedModelError(f"{subject}: --model {model} cannot be exported or built "
                                    f"with FINN: {reason}. Nothing was written.")


def check_run_buildable(run: Run) -> None:
    """:func:`check_buildable` for a trained run (``xnorflow export/build/deploy``), and the
    options it was trained with that FINN cannot compute (a ternary BMLP)."""
    subject = f"the run {run.folder} ({run.describe()})"
    check_buildable(getattr(run.config, "model", None), subject)
    reason = run.config.not_xnor()
    if reason:
        raise UnsupportedModelError(f"{subject} cannot be exported or built with FINN: "
                                    f"{reason}. Nothing was written.")


def _recorded_fingerprint(run: Run) -> str | None:
    """The fingerprint of the data the run was trained on: in its record, or in the checkpoint
    beside model.pt that the run finished with. None for runs recorded before either had one."""
    if "data_fingerprint" in run.record:
        return run.record["data_fingerprint"]
    try:
        saved = load_record(run.folder / CHECKPOINT, content="checkpoint")
    except RunRecordError:  # a lone model.pt: export needs nothing else, so go on unchecked
        return None
    if saved["algo"] != run.algo or saved["config"] != run.record["config"]:
        return None  # the checkpoint of another run
    return saved.get("data_fingerprint")


def check_run_data(run: Run, dataset: Dataset, data_dir: str | None) -> None:
    """Refuse data that is not what the run was trained on: other image sizes would fail deep
    in torch, and other images would give a meaningless accuracy."""
    config = run.config
    given = f"{config.dataset} at {data_dir}" if data_dir else config.dataset
    trained = (f"{config.dataset} at {config.data_dir}" if config.data_dir
               else f"{config.dataset} (built in)")
    expected = run.image_shape
    found = dataset.image_shape if len(expected) > 1 else (dataset.in_features,)
    if tuple(found) != tuple(expected):
        raise DatasetError(f"{data_dir or config.dataset}: images of shape "
                           f"{tuple(dataset.image_shape)} (channels, rows, cols), but the run "
                           f"{run.folder} was trained on {tuple(expected)} ({trained}). Point "
                           f"--data-dir at the data the run was trained on.")
    recorded = _recorded_fingerprint(run)
    if recorded is not None and recorded != fingerprint(dataset):
        raise DatasetError(f"{given}: not the data the run {run.folder} was trained on "
                           f"({trained}, binarized {config.binarization}); its accuracy there "
                           f"would mean nothing. Point --data-dir at the data the run was "
                           f"trained on.")


def reference_for(run: Run, model, count: int, data_dir: str | None = None,
                  seed: int = SAMPLE_SEED) -> Reference:
    """``count`` test images of the run's data (all of them if it has fewer), a seeded
    stratified sample (:func:`~.sampling.stratified_order`), with their PyTorch logits."""
    config = run.config
    if data_dir and config.dataset == "digits":  # would be ignored: digits is built in
        raise UsageError(f"--data-dir {data_dir}: the run {run.folder} was trained on digits, "
                         f"which is built in and read from no folder; drop --data-dir.")
    dataset = load_dataset(config.dataset, data_dir or config.data_dir, config.binarization)
    check_run_data(run, dataset, data_dir or config.data_dir)
    test = dataset.test
    indices = stratified_order(test.labels, seed)[:count]
    images = model_inputs(model, test.images[indices])
    return Reference(images, test.labels[indices], torch_logits(model, images), len(test),
                     indices, seed)


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
    report = {**result.as_dict(), "sample": reference.sample_record()}
    write_text(out.with_suffix(".verify.json"), json.dumps(report, indent=2))
    return result
