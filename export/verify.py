"""Execute a QONNX/FINN graph on real images and compare it with the PyTorch model.

One comparison routine for every stage of the chain (QONNX, FINN-ONNX, streamlined, hardware
layers): the argmax must match on every image, and the logits must agree up to the float
rounding of the final batch-norm scale (``rtol``/``atol``). A stage that selects the class
itself (a graph ending in TopK / LabelSelect, one index per image) must output PyTorch's argmax.
Tie rule, everywhere: among equal maxima, the lowest class index (PyTorch's and NumPy's argmax,
ONNX TopK, finn-hlslib's LabelSelect).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..progress import progress_bar


@dataclass(frozen=True)
class StageComparison:
    stage: str
    images: int
    argmax_matches: int        # images whose class (argmax, or the index output) is PyTorch's
    logits_match: int | None   # images whose logits agree within rtol/atol (None: class output)
    max_abs_diff: float | None
    accuracy: float | None     # of the graph's class against the labels, if given
    ties: int = 0              # images whose PyTorch logits have several equal maxima

    @property
    def output(self) -> str:
        return "class" if self.logits_match is None else "logits"

    @property
    def identical(self) -> bool:
        return self.argmax_matches == self.images and self.logits_match in (None, self.images)

    def as_dict(self) -> dict:
        return {**asdict(self), "output": self.output, "identical": self.identical}

    def summary(self) -> str:
        acc = "" if self.accuracy is None else f", accuracy {self.accuracy:.2%}"
        ties = f"; {self.ties} with tied maxima" if self.ties else ""
        if self.logits_match is None:
            return (f"{self.stage}: class {self.argmax_matches}/{self.images} identical to "
                    f"PyTorch's argmax{ties}{acc}")
        return (f"{self.stage}: argmax {self.argmax_matches}/{self.images} identical, logits "
                f"{self.logits_match}/{self.images} within tolerance (max |diff| "
                f"{self.max_abs_diff:.2e}){ties}{acc}")


def torch_logits(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)])


def with_batch_size(wrapper, batch: int, work_dir: str | Path):
    """Copy of a batch-1 QONNX/FINN graph that takes ``batch`` images at once.

    Rewrites the leading dimension of every non-constant tensor, of the target shape of every
    ``Reshape`` (a CNN's flatten before its first fully connected layer), the
    ``numInputVectors`` of FINN's HW layers, and (recursively, saved in ``work_dir``) the graph
    of a dataflow partition. Sliding-window layers, whose executors take one image, move to
    :mod:`xnorflow.export.batched_ops` (an RTL window generator too: its cppsim execution is
    the same Python). The executors then run each node once per batch instead of once per image;
    the results are the same numbers (tested against image-by-image execution).
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import get_by_name

    from . import batched_ops

    copy = ModelWrapper(wrapper.model.__deepcopy__())
    constants = {t.name for t in copy.graph.initializer}
    for info in [*copy.graph.input, *copy.graph.output, *copy.graph.value_info]:
        dims = info.type.tensor_type.shape.dim
        if info.name not in constants and len(dims) and dims[0].dim_value == 1:
            dims[0].dim_value = batch
    for node in copy.graph.node:
        if node.op_type == "Reshape":
            target = copy.get_initializer(node.input[1])
            if target is not None and len(target) and target[0] == 1:
                batched = copy.make_new_valueinfo_name()  # the constant may be shared
                copy.set_initializer(batched, np.array([batch, *target[1:]], dtype=np.int64))
                node.input[1] = batched
        generic = node.op_type.removesuffix("_rtl")
        if batch > 1 and batched_ops.ONE_IMAGE_DOMAINS.get(generic) == \
                node.domain.removesuffix(".rtl"):
            node.op_type, node.domain = generic, batched_ops.DOMAIN
        vectors = get_by_name(node.attribute, "numInputVectors")
        if vectors is not None:
            vectors.ints[:] = [batch] + list(vectors.ints[1:])
        if node.op_type == "StreamingDataflowPartition":
            partition = getCustomOp(node)
            child = with_batch_size(ModelWrapper(partition.get_nodeattr("model")), batch, work_dir)
            child_path = Path(work_dir) / f"{node.name}_batch{batch}.onnx"
            child.save(str(child_path))
            partition.set_nodeattr("model", str(child_path))
    return copy


def graph_inputs(wrapper, images: np.ndarray) -> np.ndarray:
    """Bipolar (+-1) images as the graph takes them: as they are, or as 0/1 where FINN has made
    the input BINARY (the XNOR form of a bipolar input, the encoding of the accelerator's input
    stream)."""
    from qonnx.core.datatype import DataType

    if wrapper.get_tensor_datatype(wrapper.graph.input[0].name) == DataType["BINARY"]:
        images = (images + 1) / 2
    return images.astype(np.float32)


@contextmanager
def unrounded_execution():
    """Execute graphs as they are: qonnx's executor otherwise rounds every integer-typed tensor
    after each node ("sanitizing"), which would hide a stage that computes non-integers where
    it promises integers, and checks the rounding error with Python's ``max`` over every
    element (three quarters of a CNN's execution time)."""
    before = os.environ.get("SANITIZE_QUANT_TENSORS")
    os.environ["SANITIZE_QUANT_TENSORS"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SANITIZE_QUANT_TENSORS", None)
        else:
            os.environ["SANITIZE_QUANT_TENSORS"] = before


def padded_batch(images: np.ndarray, start: int, size: int) -> tuple[np.ndarray, int]:
    """Images ``start .. start + size`` as one full batch, and how many of its rows are real: a
    short last batch is padded by repeating its last image, so a graph made for ``size``
    images (:func:`with_batch_size`, or compiled C++) runs every batch unchanged."""
    chunk = images[start:start + size]
    return np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), 0)]), len(chunk)


def execute_graph(wrapper, images: np.ndarray, desc: str = "executing", progress: bool = True,
                  batch_size: int = 500, prepare=None) -> np.ndarray:
    """Run ``wrapper`` (a qonnx ModelWrapper) on ``images`` (+-1, see :func:`graph_inputs`)
    with qonnx/FINN's executor. The graph runs on batches of ``batch_size`` (see
    :func:`with_batch_size`); the last batch is padded with copies of its last image and the
    padding dropped from the result. ``prepare`` (graph -> graph), if given, is applied to the
    batched graph before it runs, e.g. to compile its layers for C simulation.
    """
    from qonnx.core.onnx_exec import execute_onnx

    in_name, out_name = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    images = graph_inputs(wrapper, images)
    batch_size = max(1, min(batch_size, len(images)))
    outputs = []
    with tempfile.TemporaryDirectory() as work_dir, unrounded_execution():
        batched = wrapper if batch_size == 1 else with_batch_size(wrapper, batch_size, work_dir)
        if prepare is not None:
            batched = prepare(batched)
        in_shape = (batch_size, *wrapper.get_tensor_shape(in_name)[1:])
        for start in progress_bar(range(0, len(images), batch_size), desc=desc,
                                  enabled=progress):
            padded, real = padded_batch(images, start, batch_size)
            result = execute_onnx(batched, {in_name: padded.reshape(in_shape)})[out_name]
            outputs.append(np.asarray(result).reshape(batch_size, -1)[:real])
    return np.concatenate(outputs)


def compare(stage: str, reference: np.ndarray, outputs: np.ndarray,
            labels: np.ndarray | None = None, rtol: float = 1e-5, atol: float = 1e-4,
            ) -> StageComparison:
    """Compare a stage's outputs (N, classes) logits or (N, 1) class indices with the PyTorch
    logits ``reference`` (N, classes)."""
    expected = reference.argmax(axis=1)  # the first maximum: the tie rule
    ties = int(((reference == reference.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    logits_match = max_abs_diff = None
    if outputs.shape == (len(reference), 1) and reference.shape[1] > 1:
        predicted = outputs[:, 0].astype(np.int64)  # the graph selected the class
    elif outputs.shape == reference.shape:
        predicted = outputs.argmax(axis=1)
        logits_match = int(np.isclose(outputs, reference, rtol=rtol, atol=atol).all(axis=1).sum())
        max_abs_diff = float(np.abs(outputs - reference).max()) if len(reference) else 0.0
    else:
        raise ValueError(f"{stage}: output shape {outputs.shape} differs from the PyTorch "
                         f"model's {reference.shape}")
    return StageComparison(
        stage=stage, images=len(reference), argmax_matches=int((predicted == expected).sum()),
        logits_match=logits_match, max_abs_diff=max_abs_diff,
        accuracy=None if labels is None else float((predicted == labels).mean()), ties=ties)
