"""Bit-exact chain: execute the builder's intermediate graphs and compare with PyTorch.

FINN's builder saves the graph after every step (``intermediate_models/<step>.onnx``). This
module executes the ones that mark a stage of the flow with FINN's/qonnx's Python executors:

- ``FINN-ONNX``: after ``step_qonnx_to_finn``
- ``streamlined``: after streamlining and threshold rounding (XNOR-popcount + MultiThreshold)
- ``hardware layers``: after conversion to binary MVAU layers
- ``folded dataflow``: the dataflow partition after specialization, folding and bit-width
  minimization, executed through ``dataflow_parent.onnx`` (the software classifier affine
  around it), with its ``*_hls`` layers mapped back to their Python-executable form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...export.verify import StageComparison, compare, execute_graph
from .layout import FOLDED_STEP, BuildLayout

STAGES = (
    ("FINN-ONNX", "step_qonnx_to_finn"),
    ("streamlined", "step_round_and_clip_thresholds"),
    ("hardware layers", "step_convert_to_hw_xnor"),
    ("folded dataflow", FOLDED_STEP),
)


def load_stage(layout: BuildLayout, step: str):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from .transforms import MakeHWLayersPythonExecutable

    path = layout.model(step)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; did the build run past {step}?")
    model = ModelWrapper(str(path))
    parent_path = layout.parent
    is_partition_child = (parent_path.exists() and not model.get_nodes_by_op_type(
        "StreamingDataflowPartition") and step == STAGES[-1][1])
    if not is_partition_child:
        return model
    executable = layout.models / f"{step}_python_exec.onnx"
    model.transform(MakeHWLayersPythonExecutable()).save(str(executable))
    parent = ModelWrapper(str(parent_path))
    partition = getCustomOp(parent.get_nodes_by_op_type("StreamingDataflowPartition")[0])
    partition.set_nodeattr("model", str(executable))
    return parent


def verify_build(build_dir: str | Path, images: np.ndarray, reference: np.ndarray,
                 labels: np.ndarray | None = None, progress: bool = True,
                 ) -> list[StageComparison]:
    """Compare every stage of a finished build with ``reference`` logits on ``images`` (+-1)."""
    layout = BuildLayout(build_dir)
    results = []
    for stage, step in STAGES:
        graph = load_stage(layout, step)
        outputs = execute_graph(graph, images, desc=f"verifying {stage}", progress=progress)
        results.append(compare(stage, reference, outputs, labels))
    return results
