"""Execute a QONNX/FINN graph on real images and compare it with the PyTorch model.

One comparison routine for every stage of the chain (QONNX, FINN-ONNX, streamlined, hardware
layers): the argmax must match on every image, and the logits must agree up to the float
rounding of the final batch-norm scale (``rtol``/``atol``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


@dataclass(frozen=True)
class StageComparison:
    stage: str
    images: int
    argmax_matches: int
    logits_match: int          # images whose logits agree within rtol/atol
    max_abs_diff: float
    accuracy: float | None     # of the graph's argmax against the labels, if given

    @property
    def identical(self) -> bool:
        return self.argmax_matches == self.images and self.logits_match == self.images

    def as_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}

    def summary(self) -> str:
        acc = "" if self.accuracy is None else f", accuracy {self.accuracy:.2%}"
        return (f"{self.stage}: argmax {self.argmax_matches}/{self.images} identical, logits "
                f"{self.logits_match}/{self.images} within tolerance (max |diff| "
                f"{self.max_abs_diff:.2e}){acc}")


def torch_logits(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)])


def execute_graph(wrapper, images: np.ndarray, desc: str = "executing", progress: bool = True,
                  ) -> np.ndarray:
    """Run ``wrapper`` (a qonnx ModelWrapper) image by image with qonnx/FINN's executor.

    FINN graphs are built for batch 1, so the images go through one at a time. ``images`` are
    bipolar (+-1); a graph whose input FINN has turned BINARY (the XNOR form of a bipolar input)
    gets them as 0/1, the encoding the accelerator's input stream uses.
    """
    from qonnx.core.datatype import DataType
    from qonnx.core.onnx_exec import execute_onnx

    in_name, out_name = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    in_shape = tuple(wrapper.get_tensor_shape(in_name))
    if wrapper.get_tensor_datatype(in_name) == DataType["BINARY"]:
        images = (images + 1) / 2
    outputs = []
    for image in tqdm(images, desc=desc, disable=not progress, leave=False, mininterval=1.0):
        result = execute_onnx(wrapper, {in_name: image.reshape(in_shape).astype(np.float32)})
        outputs.append(np.asarray(result[out_name]).reshape(-1))
    return np.stack(outputs)


def compare(stage: str, reference: np.ndarray, outputs: np.ndarray,
            labels: np.ndarray | None = None, rtol: float = 1e-5, atol: float = 1e-4,
            ) -> StageComparison:
    """Compare a stage's outputs with the PyTorch logits ``reference`` (both (N, classes))."""
    if outputs.shape != reference.shape:
        raise ValueError(f"{stage}: output shape {outputs.shape} differs from the PyTorch "
                         f"model's {reference.shape}")
    close = np.isclose(outputs, reference, rtol=rtol, atol=atol).all(axis=1)
    predicted = outputs.argmax(axis=1)
    return StageComparison(
        stage=stage, images=len(reference),
        argmax_matches=int((predicted == reference.argmax(axis=1)).sum()),
        logits_match=int(close.sum()),
        max_abs_diff=float(np.abs(outputs - reference).max()) if len(reference) else 0.0,
        accuracy=None if labels is None else float((predicted == labels).mean()))
