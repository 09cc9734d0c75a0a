"""Graph transformations xnorflow adds to FINN's flow, one job each (qonnx ``Transformation``)."""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp, is_custom_op
from qonnx.transformation.base import Transformation


def _xnor_mvaus(model: ModelWrapper):
    for node in model.graph.node:
        if node.op_type.startswith("MVAU") and getCustomOp(node).get_nodeattr("binaryXnorMode"):
            yield node


def popcount_datatype(mw: int) -> DataType:
    """Unsigned type that holds an XNOR popcount over ``mw`` inputs, i.e. 0..mw."""
    return DataType[f"UINT{math.ceil(math.log2(mw + 1))}"]


class WidenXnorAccumulators(Transformation):
    """Give every XNOR MVAU an accumulator that holds its popcount range [0, MW].

    finn-plus 1.6.1's ``MVAU.minimize_accumulator_width`` computes the range of a bipolar-weight
    dot product with 0/1 inputs (e.g. INT7 for MW = 64), but an XNOR unit accumulates the
    popcount 0..MW (64 needs UINT7). With the narrow type a full match wraps around in the HLS
    accumulator (only the generated C++ shows that), and ``RoundAndClipThresholds`` clips a
    never-firing threshold (> MW) down to the type's maximum, so that neuron fires on a full
    match (Python execution shows that). Run after ``MinimizeAccumulatorWidth`` and before
    ``RoundAndClipThresholds``; it sets the MVAU's own output type, and ``InferDataTypes``
    carries it to the tensors downstream.
    """

    def apply(self, model: ModelWrapper):
        for node in _xnor_mvaus(model):
            op = getCustomOp(node)
            acc = popcount_datatype(op.get_nodeattr("MW"))
            if op.get_nodeattr("noActivation"):
                if model.find_direct_successors(node) is None:  # graph output: whole bytes
                    acc = DataType[f"UINT{math.ceil(acc.bitwidth() / 8) * 8}"]
                op.set_nodeattr("outputDataType", acc.name)
                model.set_tensor_datatype(node.output[0], acc)
            op.set_nodeattr("accDataType", acc.name)
        return model, False


def xnor_accumulator_problems(model: ModelWrapper) -> list[str]:
    """XNOR MVAUs whose accumulator type, or the type HLS compares thresholds in (threshold
    tensor, or the output type without activation), cannot hold the popcount 0..MW."""
    problems = []
    for node in _xnor_mvaus(model):
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


class MakeHWLayersPythonExecutable(Transformation):
    """Map specialized ``*_hls``/``*_rtl`` nodes back to their generic HW layer.

    Specialized nodes execute only in cppsim/rtlsim (finn-hlslib, Vitis, Vivado). The generic
    layer carries the same attributes (folding, data types, thresholds) and has a Python
    execution, so the folded, bit-width-minimized graph can still be checked here.
    Use on a copy: the result is for execution, not for code generation.
    """

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if not node.domain.endswith((".hls", ".rtl")):
                continue
            generic_op = node.op_type.rsplit("_", 1)[0]
            generic_domain = node.domain.rsplit(".", 1)[0]
            if not is_custom_op(generic_domain, generic_op):
                raise ValueError(f"{node.name}: {node.op_type} has no generic, Python-executable "
                                 f"layer ({generic_op})")
            node.op_type, node.domain = generic_op, generic_domain
        return model, False


# Elementwise ops with a scalar constant that a graph's tail may apply to the classifier output.
_SCALAR_OPS = ("Mul", "Div", "Add", "Sub")


def _scalar_tail(model: ModelWrapper):
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
    return _scalar_tail(model)[3]


class SelectClassOnChip(Transformation):
    """End the graph in a top-1 ``TopK`` (FINN's ``LabelSelect`` in hardware): the graph then
    outputs the class index instead of the logits.

    Valid when the logits are a strictly monotone scalar function of the classifier MatMul
    (TensorNorm, or no output normalization): such a function keeps which class is largest and
    which classes tie. The scalar tail is removed (an increasing tail changes nothing; for a
    decreasing one the bipolar classifier weights are negated, so the largest output is still
    the class), and ``TopK`` follows the MatMul directly, so streamlining leaves an integer
    popcount for ``LabelSelect``. Tie rule, the same in PyTorch's argmax, ONNX TopK and
    finn-hlslib's ``LabelSelect_Batch``: among equal maxima, the lowest class index.
    Any other graph (a per-channel batch-norm head) is left unchanged: it keeps its logits.
    """

    def apply(self, model: ModelWrapper):
        from qonnx.transformation.infer_datatypes import InferDataTypes
        from qonnx.transformation.infer_shapes import InferShapes
        from qonnx.transformation.insert_topk import InsertTopK

        tail, matmul, increasing, problem = _scalar_tail(model)
        if problem is not None:
            return model, False
        if not increasing:
            weights = model.get_initializer(matmul.input[1])
            model.set_initializer(matmul.input[1], -weights)
        for node in tail:
            model.graph.node.remove(node)
        logits = matmul.output[0]
        for info in [v for v in model.graph.value_info if v.name == logits]:
            model.graph.value_info.remove(info)
        model.graph.output[0].name = logits
        model = model.transform(InsertTopK(k=1))
        model = model.transform(InferShapes())
        return model.transform(InferDataTypes()), False
