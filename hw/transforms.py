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
