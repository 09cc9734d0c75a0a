"""Graph transformations xnorflow adds to FINN's flow, one job each (qonnx ``Transformation``)."""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp, is_custom_op
from qonnx.transformation.base import Transformation

from ...errors import XnorflowError
from .analysis import scalar_tail, torch_layer, xnor_mvaus


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
        for node in xnor_mvaus(model):
            op = getCustomOp(node)
            acc = popcount_datatype(op.get_nodeattr("MW"))
            if op.get_nodeattr("noActivation"):
                if model.find_direct_successors(node) is None:  # graph output: whole bytes
                    acc = DataType[f"UINT{math.ceil(acc.bitwidth() / 8) * 8}"]
                op.set_nodeattr("outputDataType", acc.name)
                model.set_tensor_datatype(node.output[0], acc)
            op.set_nodeattr("accDataType", acc.name)
        return model, False


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

        tail, matmul, increasing, problem = scalar_tail(model)
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


# ------------------------------------------------------------------------ convolutions
class StreamliningError(XnorflowError, ValueError):
    """A graph xnorflow's streamlining cannot turn into FINN layers; the message names the
    layer and the fix."""


def _pad_of_conv(model: ModelWrapper, pad_node):
    """(pads of the two spatial axes as ONNX Conv ``pads``, constant value) of an NCHW ``Pad``
    that only pads rows and columns with a constant, else a reason why not."""
    import numpy as np

    modes = [a.s.decode() for a in pad_node.attribute if a.name == "mode"]
    if modes and modes[0] != "constant":
        return None, f"{pad_node.name} pads in mode {modes[0]!r}; only constant padding maps " \
                     f"to FINN's padding unit"
    pads = model.get_initializer(pad_node.input[1]) if len(pad_node.input) > 1 else None
    value = model.get_initializer(pad_node.input[2]) if len(pad_node.input) > 2 else 0.0
    if pads is None or value is None:
        return None, f"{pad_node.name} has pads or a pad value computed at run time"
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        return None, f"{pad_node.name} pads {pads}: not only the rows and columns of an NCHW map"
    return ([pads[2], pads[3], pads[6], pads[7]], float(np.asarray(value).reshape(-1)[0])), None


class LowerConvsWithBackground(Transformation):
    """qonnx's ``LowerConvsToMatMul`` (Conv -> Im2Col + MatMul in NHWC) for convolutions whose
    input is padded by an explicit constant ``Pad`` (a :class:`BackgroundPaddedConv2d`: -1 for
    bipolar maps, 0 for pixels): the Pad is folded into the Conv's ``pads``, and the value into
    the Im2Col's ``pad_value`` after lowering (ONNX Conv can only pad with 0).
    Raises :class:`StreamliningError` for a Pad that is not a constant padding of rows and
    columns, or whose value is not an integer, naming the node."""

    def apply(self, model: ModelWrapper):
        from onnx import helper
        from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
        from qonnx.util.basic import get_by_name

        values = {}  # Conv output -> pad value
        for pad_node in list(model.get_nodes_by_op_type("Pad")):
            consumers = model.find_consumers(pad_node.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "Conv":
                continue
            conv = consumers[0]
            padding, problem = _pad_of_conv(model, pad_node)
            if problem:
                raise StreamliningError(f"{problem} (before {torch_layer(conv)}).")
            pads, value = padding
            conv_pads = get_by_name(conv.attribute, "pads")
            if conv_pads is not None and any(conv_pads.ints):
                raise StreamliningError(f"{torch_layer(conv)} pads its input itself and after "
                                        f"{pad_node.name}; pad once (BackgroundPaddedConv2d)")
            bipolar = model.get_tensor_datatype(pad_node.input[0]) == DataType["BIPOLAR"]
            background = -1.0 if bipolar else 0.0  # the only value FINN's hardware pads with
            if any(pads) and value != background:
                why = "FINN pads a bipolar map with -1 bits" if bipolar else \
                    "FINN's padding unit inserts 0 into a non-binary map"
                raise StreamliningError(
                    f"{pad_node.name} pads the input of {torch_layer(conv)} with {value:g}, but "
                    f"{why}: the accelerator would compute another network. Pad with "
                    f"{background:g} in training too: "
                    f"xnorflow.train.models.BackgroundPaddedConv2d(..., pad_value="
                    f"{background:g}).")
            if conv_pads is None:
                conv.attribute.append(helper.make_attribute("pads", pads))
            else:
                conv_pads.ints[:] = pads
            conv.input[0] = pad_node.input[0]
            model.graph.node.remove(pad_node)
            if any(pads):  # lowered through an Im2Col, which gets the value
                values[conv.output[0]] = int(value)
        for conv in model.get_nodes_by_op_type("Conv"):
            pads = get_by_name(conv.attribute, "pads")
            if (conv.output[0] not in values and pads is not None and any(pads.ints)
                    and model.get_tensor_datatype(conv.input[0]) == DataType["BIPOLAR"]):
                raise StreamliningError(
                    f"{torch_layer(conv)} pads its bipolar input with zeros, a value a 1-bit "
                    f"stream does not have (FINN would insert -1 bits, so the accelerator "
                    f"would compute another network). Pad with -1 in training too: use "
                    f"xnorflow.train.models.BackgroundPaddedConv2d(in, out, padding, "
                    f"pad_value=-1.0) instead of QuantConv2d(padding=...).")
        model = model.transform(LowerConvsToMatMul())
        for output, value in values.items():
            transpose = model.find_producer(output)
            matmul = model.find_producer(transpose.input[0])
            im2col = model.find_producer(matmul.input[0])
            getCustomOp(im2col).set_nodeattr("pad_value", value)
        return model, False


class ConvertBipolarToXnor(Transformation):
    """qonnx's ``ConvertBipolarMatMulToXnorPopcount`` for convolutional networks too.

    qonnx turns a MatMul with bipolar inputs and weights into an XNOR popcount and the bipolar
    sign activation that feeds it into a 0/1 one; a bipolar *graph input* it handles only when
    it feeds the MatMul directly, not through the Im2Col of a convolution. Here the graph input
    gets a temporary sign activation (the identity on +-1), qonnx converts as usual, and the
    activation, now ``-1 -> 0, +1 -> 1``, is dropped by declaring the input ``BINARY``: the
    accelerator takes bits, as for an MLP. Padding of a map that became binary keeps its
    meaning: the background -1 is the bit 0.
    """

    def apply(self, model: ModelWrapper):
        import numpy as np
        from onnx import TensorProto, helper
        from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount

        in_name = model.graph.input[0].name
        sign = None
        if model.get_tensor_datatype(in_name) == DataType["BIPOLAR"]:
            signed = model.make_new_valueinfo_name()
            model.graph.value_info.append(helper.make_tensor_value_info(
                signed, TensorProto.FLOAT, model.get_tensor_shape(in_name)))
            threshold = model.make_new_valueinfo_name()
            model.set_initializer(threshold, np.zeros((1, 1), dtype=np.float32))
            for consumer in model.find_consumers(in_name) or []:
                consumer.input[list(consumer.input).index(in_name)] = signed
            sign = helper.make_node("MultiThreshold", [in_name, threshold], [signed],
                                    domain="qonnx.custom_op.general", out_dtype="BIPOLAR",
                                    out_scale=2.0, out_bias=-1.0, name="InputSign")
            model.graph.node.insert(0, sign)
            model.set_tensor_datatype(signed, DataType["BIPOLAR"])
        model = model.transform(ConvertBipolarMatMulToXnorPopcount())
        for im2col in model.get_nodes_by_op_type("Im2Col"):
            layer = getCustomOp(im2col)
            value = layer.get_nodeattr("pad_value")
            if model.get_tensor_datatype(im2col.input[0]) == DataType["BINARY"] and value:
                if value != -1:
                    raise StreamliningError(
                        f"{im2col.name}: pads a binary map with {value}; FINN's padding unit "
                        f"inserts 0 bits, which are -1: pad binary activations with -1 "
                        f"(BackgroundPaddedConv2d)")
                layer.set_nodeattr("pad_value", 0)
        if sign is not None:  # BINARY if qonnx converted it, else the identity on +-1
            sign = model.get_node_from_name("InputSign")
            converted = getCustomOp(sign).get_nodeattr("out_dtype") == "BINARY"
            for consumer in model.find_consumers(sign.output[0]) or []:
                consumer.input[list(consumer.input).index(sign.output[0])] = in_name
            model.graph.node.remove(sign)
            if converted:
                model.set_tensor_datatype(in_name, DataType["BINARY"])
        return model, False
