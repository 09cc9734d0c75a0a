"""Small FINN graphs with one XNOR MVAU, built with onnx.helper as qonnx's and FINN's own tests
do: shared by the transformation tests and the C-simulation tests."""

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.basic import qonnx_make_model

HW_DOMAIN = "finn.custom_op.fpgadataflow"

MW, MH = 64, 8  # MW = 64: popcount 0..64 needs UINT7; FINN's stock pass picks INT7 (max 63)
NEVER_FIRES = MW + 1  # a threshold above the largest popcount


def xnor_weights() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 2, size=(MW, MH)).astype(np.float32)


def xnor_thresholds() -> np.ndarray:
    # neuron 0 fires only on a full match, neuron 1 never fires; the rest are random
    t = np.random.default_rng(3).integers(1, MW, size=(MH, 1)).astype(np.float32)
    t[0, 0], t[1, 0] = MW, NEVER_FIRES
    return t


def xnor_mvau_graph(weights, thresholds=None, successor=False, op_type="MVAU",
                     domain=HW_DOMAIN) -> ModelWrapper:
    """One FINN XNOR MVAU (binary inputs and weights, binaryXnorMode=1), with thresholds or
    noActivation; with ``successor`` its output feeds an Identity instead of being the graph
    output (FINN then keeps the accumulator type un-rounded)."""
    mw, mh = weights.shape
    no_act = int(thresholds is None)
    mvau_out = "acc" if successor else "y"
    odt = "INT32" if no_act else "BINARY"
    nodes = [helper.make_node(
        op_type, ["x", "W"] + ([] if no_act else ["T"]), [mvau_out], domain=domain,
        backend="fpgadataflow", name="MVAU_0", MW=mw, MH=mh, SIMD=8, PE=2,
        inputDataType="BINARY", weightDataType="BINARY", outputDataType=odt, ActVal=0,
        binaryXnorMode=1, noActivation=no_act, numInputVectors=[1])]
    value_info = []
    if successor:
        nodes.append(helper.make_node("Identity", [mvau_out], ["y"]))
        value_info.append(helper.make_tensor_value_info(mvau_out, TensorProto.FLOAT, [1, mh]))
    graph = helper.make_graph(
        nodes, "xnor_mvau", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])], value_info=value_info)
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("W", weights)
    model.set_tensor_datatype("x", DataType["BINARY"])
    model.set_tensor_datatype("W", DataType["BINARY"])
    if not no_act:
        model.set_initializer("T", thresholds)
    model.set_tensor_datatype(mvau_out, DataType[odt])
    return model


def xnor_inputs(weights) -> list[np.ndarray]:
    """Every full match (input bits == a weight column: popcount MW for that neuron), its
    complement (popcount 0) and random binary vectors."""
    rng = np.random.default_rng(4)
    full = [weights[:, j][None, :].copy() for j in range(weights.shape[1])]
    return (full + [1 - f for f in full]
            + [rng.integers(0, 2, size=(1, weights.shape[0])).astype(np.float32)
               for _ in range(8)])


def popcount(x, weights) -> np.ndarray:
    return (x.T == weights).sum(axis=0, keepdims=True).astype(np.float32)


def run_graph(model, inputs) -> list[np.ndarray]:
    return [execute_onnx(model, {"x": x})["y"] for x in inputs]
