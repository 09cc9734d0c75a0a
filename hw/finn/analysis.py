"""FINN-style analysis passes over xnorflow's graphs: read a ``ModelWrapper``, change nothing,
return what they found (problems as sentences for the user, or the structure a transformation
acts on)."""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp


def xnor_mvaus(model: ModelWrapper):
    for node in model.graph.node:
        if node.op_type.startswith("MVAU") and getCustomOp(node).get_nodeattr("binaryXnorMode"):
            yield node


def xnor_accumulator_problems(model: ModelWrapper) -> list[str]:
    """XNOR MVAUs whose accumulator type, or the type HLS compares thresholds in (threshold
    tensor, or the output type without activation), cannot hold the popcount 0..MW."""
    problems = []
    for node in xnor_mvaus(model):
        op = getCustomOp(node)
        mw = op.get_nodeattr("MW")
        holders = {"accumulator": DataType[op.get_nodeattr("accDataType")]}
        if op.get_nodeattr("noActivation"):
            holders["output"] = DataType[op.get_nodeattr("outputDataType")]
        else:
            holders["threshold"] = model.get_tensor_datatype(node.input[2])
        for role, dtype in holders.items():
            if not (dtype.allowed(mw) and dtype.allowed(0)):
                problems.append(f"{node.name}: {role} type {dtype.name} cannot hold popcount "
                                f"0..{mw}")
    return problems


# Elementwise ops with a scalar constant that a graph's tail may apply to the classifier output.
_SCALAR_OPS = ("Mul", "Div", "Add", "Sub")


def scalar_tail(model: ModelWrapper):
    """Walk back from the graph output over elementwise ops with a one-element constant.

    Returns ``(tail, matmul, increasing, why)``: the tail's nodes, the MatMul that feeds them
    (None if the walk does not end at a MatMul with constant weights), whether the tail is a
    strictly increasing function of the MatMul output, and why the class cannot be selected
    on chip (None if it can)."""
    import numpy as np

    tail, increasing = [], True
    node = model.find_producer(model.graph.output[0].name)
    while node is not None and node.op_type in _SCALAR_OPS:
        constants = [model.get_initializer(name) for name in node.input]
        if sum(c is not None for c in constants) != 1:
            return tail, None, increasing, f"{node.name} ({node.op_type}) has no constant input"
        position = 0 if constants[0] is not None else 1
        value = np.asarray(constants[position])
        if value.size != 1:
            return tail, None, increasing, (
                f"{node.name} ({node.op_type}) applies one value per class (a per-channel "
                f"batch-norm), which can change which class is largest")
        value = float(value.reshape(-1)[0])
        if node.op_type in ("Mul", "Div") and (value == 0 or not math.isfinite(value)):
            return tail, None, increasing, f"{node.name} ({node.op_type}) by {value}"
        if node.op_type in ("Mul", "Div") and value < 0:
            increasing = not increasing
        if node.op_type == "Div" and position == 0:
            return tail, None, increasing, f"{node.name} divides a constant by the output"
        if node.op_type == "Sub" and position == 0:
            increasing = not increasing
        tail.append(node)
        node = model.find_producer(node.input[1 - position])
    if node is None or node.op_type != "MatMul" or model.get_initializer(node.input[1]) is None:
        found = "the graph input" if node is None else f"{node.name} ({node.op_type})"
        return tail, None, increasing, f"the output does not come from a classifier layer " \
                                       f"but from {found}"
    return tail, node, increasing, None


def class_selection_problem(model: ModelWrapper) -> str | None:
    """Why the class of this FINN-ONNX graph cannot be selected on chip, or None if it can."""
    return scalar_tail(model)[3]


def torch_layer(node) -> str:
    """``node``'s name, with the PyTorch module it was exported from when the exporter recorded
    it (e.g. ``MaxPoolNHWC_0 (PyTorch features.2)``)."""
    import ast

    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s for s in ast.literal_eval(prop.value) if s]
            if len(scopes) >= 2:
                return f"{node.name} (PyTorch {scopes[-2]})"
    return node.name


# Why a node may be left over after conversion to hardware layers, by op type.
UNMAPPED_HINTS = {
    "MaxPoolNHWC": "max-pooling of values that are not 1-bit: pool after the bipolar activation "
                   "(convolution -> batch-norm -> QuantIdentity -> MaxPool2d, as CNV), not "
                   "between a convolution and its activation",
    "MultiThreshold": "an activation FINN could not merge into the layer before it: something "
                      "(a max-pool, a float op) sits between that layer and its batch-norm + "
                      "activation",
    "Mul": "a float scale FINN could not absorb into thresholds: a batch-norm or scaling that is "
           "not directly followed by a bipolar activation (only the classifier may end in one)",
    "Transpose": "a layout change FINN's streaming order cannot absorb, usually left over next "
                 "to an unmapped layer listed before it",
    "MatMul": "a layer whose inputs or weights are not binary/integer",
}
UNMAPPED_HINTS.update({"MaxPool": UNMAPPED_HINTS["MaxPoolNHWC"], "Add": UNMAPPED_HINTS["Mul"],
                       "Sub": UNMAPPED_HINTS["Mul"], "Div": UNMAPPED_HINTS["Mul"],
                       "Reshape": UNMAPPED_HINTS["Transpose"], "Im2Col": UNMAPPED_HINTS["MatMul"],
                       "Conv": UNMAPPED_HINTS["MatMul"], "Gemm": UNMAPPED_HINTS["MatMul"]})
HOST_TAIL_OPS = ("Mul", "Add", "Sub", "Div")  # a per-class affine head, applied on the host
# Which unmapped node is most likely the cause of the others: a misplaced pool leaves its
# batch-norm (Mul/Add) and activation unmerged, and every unmapped node leaves transposes.
CAUSE_RANK = {"MaxPool": 0, "MaxPoolNHWC": 0, "MatMul": 1, "Conv": 1, "Gemm": 1, "Im2Col": 1,
              "MultiThreshold": 3, "Mul": 4, "Add": 4, "Sub": 4, "Div": 4, "Transpose": 5,
              "Reshape": 5}


def unmapped_layers(model: ModelWrapper) -> list[str]:
    """Nodes that did not become FINN hardware layers and are not the host-side affine after
    the last one, each with why and what to change; the likeliest cause first."""
    from finn.util.fpgadataflow import is_fpgadataflow_node

    problems = []
    for node in model.graph.node:
        if is_fpgadataflow_node(node):
            continue
        downstream = model.find_direct_successors(node) or []
        seen, feeds_hardware = set(), False
        while downstream:
            successor = downstream.pop()
            if successor.name in seen:
                continue
            seen.add(successor.name)
            if is_fpgadataflow_node(successor):
                feeds_hardware = True
                break
            downstream.extend(model.find_direct_successors(successor) or [])
        if not feeds_hardware and node.op_type in HOST_TAIL_OPS:
            continue
        hint = UNMAPPED_HINTS.get(node.op_type, f"FINN has no hardware layer for "
                                                f"{node.op_type}")
        problems.append((CAUSE_RANK.get(node.op_type, 2),
                         f"{torch_layer(node)}: {node.op_type}: {hint}"))
    return [text for _, text in sorted(problems, key=lambda problem: problem[0])]
