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


def inline_partition(parent, child):
    """``parent`` with its StreamingDataflowPartition replaced by the nodes of ``child``: one
    graph whose execution exposes every layer's output (executing the partition node hides
    them) and gives the same result."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    flat = ModelWrapper(parent.model.__deepcopy__())
    child = ModelWrapper(child.model.__deepcopy__())
    (partition,) = flat.get_nodes_by_op_type("StreamingDataflowPartition")
    child.rename_tensor(child.graph.input[0].name, partition.input[0])
    child.rename_tensor(child.graph.output[0].name, partition.output[0])
    taken = {name for node in flat.graph.node for name in (*node.input, *node.output)}
    interface = {partition.input[0], partition.output[0]}
    for name in {t for node in child.graph.node for t in (*node.input, *node.output)}:
        if name in taken and name not in interface:
            child.rename_tensor(name, f"dataflow_{name}")
    position = list(flat.graph.node).index(partition)
    flat.graph.node.remove(partition)
    for offset, node in enumerate(child.graph.node):
        flat.graph.node.insert(position + offset, node)
    flat.graph.initializer.extend(child.graph.initializer)
    known = {v.name for v in flat.graph.value_info} | {t.name for t in flat.graph.input} | \
        {t.name for t in flat.graph.output}
    flat.graph.value_info.extend(v for v in child.graph.value_info if v.name not in known)
    for node in child.graph.node:
        for name in (*node.input, *node.output):
            dtype = child.get_tensor_datatype(name)
            if dtype != DataType["FLOAT32"]:
                flat.set_tensor_datatype(name, dtype)
    return flat
