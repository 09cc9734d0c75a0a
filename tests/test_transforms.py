"""xnorflow's graph transformations on small hand-built graphs, qonnx-style: execute the graph,
transform it, execute it again and compare exactly; then check what the transformation changed
(node types, data types) against what FINN's stock passes leave behind."""

import warnings

# Importing FINN's HW custom ops takes seconds; do it once at collection, not in the first test.
import finn.custom_op.fpgadataflow.hls  # noqa: F401
import finn.custom_op.fpgadataflow.rtl  # noqa: F401
import numpy as np
import pytest
from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model
from xnor_graphs import (
    HW_DOMAIN,
    MH,
    MW,
    popcount,
    run_graph,
    xnor_inputs,
    xnor_mvau_graph,
    xnor_thresholds,
    xnor_weights,
)

from xnorflow.export.qonnx_export import MarkInputType, UnsupportedModelError
from xnorflow.hw.finn.analysis import class_selection_problem, xnor_accumulator_problems
from xnorflow.hw.finn.transforms import (
    MakeHWLayersPythonExecutable,
    SelectClassOnChip,
    WidenXnorAccumulators,
    popcount_datatype,
)

# ---------------------------------------------------------------------------------------------
# MarkInputType


def _bipolar_input_graph(scale: float = 1.0) -> ModelWrapper:
    """x (1, 8) -> BipolarQuant(x, scale) -> MatMul(+-1 weights) -> y (1, 4)."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("BipolarQuant", ["x", "scale"], ["xq"],
                              domain="qonnx.custom_op.general"),
             helper.make_node("MatMul", ["xq", "W"], ["y"])]
    graph = helper.make_graph(
        nodes, "bipolar_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        value_info=[helper.make_tensor_value_info("xq", TensorProto.FLOAT, [1, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("scale", np.array(scale, dtype=np.float32))
    model.set_initializer("W", rng.choice([-1.0, 1.0], size=(8, 4)).astype(np.float32))
    return model


def _bipolar_inputs(n: int = 16, width: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.choice([-1.0, 1.0], size=(1, width)).astype(np.float32) for _ in range(n)]


def test_mark_input_bipolar_drops_quantizer_and_keeps_outputs():
    model = _bipolar_input_graph()
    weights = model.get_initializer("W")
    inputs = _bipolar_inputs()
    before = [execute_onnx(model, {"x": x})["y"] for x in inputs]
    assert model.get_tensor_datatype("x") == DataType["FLOAT32"]

    marked = model.transform(MarkInputType())

    after = [execute_onnx(marked, {"x": x})["y"] for x in inputs]
    for x, b, a in zip(inputs, before, after):
        assert np.array_equal(b, a)
        assert np.array_equal(a, x @ weights)  # on +-1 inputs BipolarQuant was the identity
    assert [n.op_type for n in marked.graph.node] == ["MatMul"]
    assert marked.graph.node[0].input[0] == "x"  # MatMul now reads the graph input directly
    assert marked.get_tensor_datatype("x") == DataType["BIPOLAR"]
    assert [n.op_type for n in model.graph.node] == ["BipolarQuant", "MatMul"]  # copy untouched


def test_mark_input_bipolar_rejects_input_without_quantizer():
    model = _bipolar_input_graph()
    # Bypass the quantizer: the graph input now feeds the MatMul directly.
    model.graph.node[1].input[0] = "x"
    model.graph.node.remove(model.graph.node[0])
    with pytest.raises(UnsupportedModelError, match="feeds MatMul, not only an input quantizer"):
        model.transform(MarkInputType())


def test_mark_input_bipolar_refuses_a_quantizer_that_is_not_the_identity():
    """With a scale other than 1 the quantizer maps +-1 to +-scale: dropping it would change
    the outputs, so the graph is refused."""
    with pytest.raises(UnsupportedModelError, match="has scale 2.0, not the constant 1"):
        _bipolar_input_graph(scale=2.0).transform(MarkInputType())


# ---------------------------------------------------------------------------------------------
# WidenXnorAccumulators

def _run_recording_type_warnings(model, inputs) -> tuple[list[np.ndarray], set[str]]:
    """Outputs, and the tensors qonnx's executor found outside their datatype annotation (it
    warns and goes on with the unclipped value, so the outputs alone cannot show it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = run_graph(model, inputs)
    return outputs, {str(w.message).split()[4] for w in caught
                     if "can't be represented with the set datatype" in str(w.message)}


def _mvau(model):
    return getCustomOp(model.get_nodes_by_op_type("MVAU")[0])


@pytest.mark.parametrize("mw, expected", [(1, "BINARY"), (63, "UINT6"), (64, "UINT7"),
                                          (127, "UINT7"), (128, "UINT8"), (784, "UINT10")])
def test_popcount_datatype_is_the_narrowest_unsigned_type_holding_0_to_mw(mw, expected):
    dtype = popcount_datatype(mw)
    assert dtype.name == expected
    assert dtype.allowed(0) and dtype.allowed(mw) and not dtype.signed()
    if dtype.bitwidth() > 1:  # and one bit less would not do
        assert not DataType[f"UINT{dtype.bitwidth() - 1}"].allowed(mw)


def test_widen_thresholded_xnor_mvau_fixes_stock_accumulator_and_keeps_outputs():
    weights, thresholds = xnor_weights(), xnor_thresholds()
    stock = xnor_mvau_graph(weights, thresholds).transform(MinimizeAccumulatorWidth())
    assert _mvau(stock).get_nodeattr("accDataType") == "INT7"
    assert xnor_accumulator_problems(stock) == [
        "MVAU_0: accumulator type INT7 cannot hold popcount 0..64"]

    widened = stock.transform(WidenXnorAccumulators())

    assert xnor_accumulator_problems(widened) == []
    assert _mvau(widened).get_nodeattr("accDataType") == "UINT7"
    # with an activation the output type is the activation's, not the accumulator's
    assert _mvau(widened).get_nodeattr("outputDataType") == "BINARY"
    assert widened.get_tensor_datatype("y") == DataType["BINARY"]
    inputs = xnor_inputs(weights)
    before, after = run_graph(stock, inputs), run_graph(widened, inputs)
    for x, b, a in zip(inputs, before, after):
        assert np.array_equal(b, a)
        assert np.array_equal(a, (popcount(x, weights) >= thresholds.T).astype(np.float32))
    assert after[0][0, 0] == 1 and after[1][0, 1] == 0  # full match: fires / never fires


def test_widen_keeps_never_firing_threshold_from_being_clipped_into_the_popcount_range():
    """Why the widening matters even in Python: RoundAndClipThresholds clips thresholds to the
    accumulator range, so with the stock INT7 a never-firing threshold (65) becomes 64 and the
    neuron fires on a full match; with UINT7 the threshold and all outputs stay as they were."""
    weights, thresholds = xnor_weights(), xnor_thresholds()
    model = xnor_mvau_graph(weights, thresholds)
    inputs = xnor_inputs(weights)
    reference = run_graph(model, inputs)
    full_match_never = inputs[1]  # neuron 1 (threshold 65) gets popcount 64 here

    stock = model.transform(MinimizeAccumulatorWidth()).transform(RoundAndClipThresholds())
    assert stock.get_initializer("T")[1, 0] == MW
    assert execute_onnx(stock, {"x": full_match_never})["y"][0, 1] == 1  # the stock bug

    safe = (model.transform(MinimizeAccumulatorWidth()).transform(WidenXnorAccumulators())
            .transform(RoundAndClipThresholds()))
    assert np.array_equal(safe.get_initializer("T"), thresholds)
    assert xnor_accumulator_problems(safe) == []
    for ref, out in zip(reference, run_graph(safe, inputs)):
        assert np.array_equal(ref, out)


@pytest.mark.parametrize("successor, stock_type, widened_type, stock_roles", [
    (True, "INT7", "UINT7", ["accumulator", "output"]),
    # As a graph output FINN rounds INT7 up to whole bytes (INT8), which happens to hold 64.
    (False, "INT8", "UINT8", []),
])
def test_widen_no_activation_xnor_mvau_sets_accumulator_and_output_type(
        successor, stock_type, widened_type, stock_roles):
    weights = xnor_weights()
    stock = xnor_mvau_graph(weights, successor=successor).transform(MinimizeAccumulatorWidth())
    mvau_out = _mvau(stock).onnx_node.output[0]
    assert _mvau(stock).get_nodeattr("accDataType") == stock_type
    assert _mvau(stock).get_nodeattr("outputDataType") == stock_type
    assert [p.split()[1] for p in xnor_accumulator_problems(stock)] == stock_roles

    widened = stock.transform(WidenXnorAccumulators())

    assert xnor_accumulator_problems(widened) == []
    assert _mvau(widened).get_nodeattr("accDataType") == widened_type
    assert _mvau(widened).get_nodeattr("outputDataType") == widened_type
    assert widened.get_tensor_datatype(mvau_out) == DataType[widened_type]
    inputs = xnor_inputs(weights)
    before, out_of_type_before = _run_recording_type_warnings(stock, inputs)
    after, out_of_type_after = _run_recording_type_warnings(widened, inputs)
    # Tensors downstream of the MVAU keep their stale annotation until InferDataTypes, which
    # xnorflow's step runs right after WidenXnorAccumulators.
    propagated = widened.transform(InferDataTypes())
    _, out_of_type_propagated = _run_recording_type_warnings(propagated, inputs)
    for x, b, a in zip(inputs, before, after):
        assert np.array_equal(b, a)
        assert np.array_equal(a, popcount(x, weights))  # the raw popcount 0..MW
    # a full match (64) does not fit the stock INT7 tensors, and fits every widened one
    assert out_of_type_before == ({"acc", "y"} if stock_roles else set())
    assert out_of_type_after == ({"y"} if successor else set())
    assert out_of_type_propagated == set()
    assert propagated.get_tensor_datatype("y") == DataType[widened_type]
    assert all(after[j][0, j] == MW for j in range(MH))  # full matches reach MW


def test_widen_leaves_non_xnor_mvau_alone():
    weights = xnor_weights()
    model = xnor_mvau_graph(weights, xnor_thresholds())
    _mvau(model).set_nodeattr("binaryXnorMode", 0)
    _mvau(model).set_nodeattr("accDataType", "INT7")
    widened = model.transform(WidenXnorAccumulators())
    assert _mvau(widened).get_nodeattr("accDataType") == "INT7"


# ---------------------------------------------------------------------------------------------
# MakeHWLayersPythonExecutable


@pytest.mark.parametrize("backend", ["hls", "rtl"])
def test_specialized_mvau_executes_in_python_after_mapping_back(backend):
    # The transformation is backend-agnostic; the rtl variant checks the ".rtl" suffix path
    # (FINN itself would not pick MVAU_rtl for an XNOR layer).
    weights, thresholds = xnor_weights(), xnor_thresholds()
    specialized = xnor_mvau_graph(weights, thresholds, op_type=f"MVAU_{backend}",
                                   domain=f"{HW_DOMAIN}.{backend}")
    generic = xnor_mvau_graph(weights, thresholds)
    inputs = xnor_inputs(weights)
    # Specialized nodes only run in cppsim/rtlsim; with exec_mode unset they refuse.
    with pytest.raises(Exception, match="Invalid value for attribute exec_mode"):
        execute_onnx(specialized, {"x": inputs[0]})

    mapped = specialized.transform(MakeHWLayersPythonExecutable())

    assert mapped.graph.node[0] == generic.graph.node[0]  # same op, domain and attributes
    for g, m in zip(run_graph(generic, inputs), run_graph(mapped, inputs)):
        assert np.array_equal(g, m)
    assert specialized.graph.node[0].op_type == f"MVAU_{backend}"  # transform works on a copy


def test_a_specialized_layer_without_a_generic_form_is_named():
    """IODMA_hls has no Python-executable generic layer; renaming it would make an op that
    does not exist, so the transformation refuses it by name."""
    node = helper.make_node("IODMA_hls", ["x"], ["y"], domain=f"{HW_DOMAIN}.hls", name="IODMA_0")
    graph = helper.make_graph([node], "dma", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 8])], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    with pytest.raises(ValueError, match="IODMA_0: IODMA_hls has no generic"):
        model.transform(MakeHWLayersPythonExecutable())


# ---------------------------------------------------------------------------------------------
# SelectClassOnChip

CLASSES = 6


def _classifier_graph(tail: list[tuple[str, object, bool]]) -> ModelWrapper:
    """x (1, 8) +-1 -> MatMul(+-1 weights, classes 1 and 4 equal, so they tie) -> the tail:
    (op, constant, constant is the first input) elementwise nodes -> y (1, CLASSES)."""
    rng = np.random.default_rng(3)
    weights = rng.choice([-1.0, 1.0], size=(8, CLASSES)).astype(np.float32)
    weights[:, 4] = weights[:, 1]
    nodes, tensor = [helper.make_node("MatMul", ["x", "W"], ["t0"])], "t0"
    for i, (op, _, first) in enumerate(tail):
        inputs = [f"c{i}", tensor] if first else [tensor, f"c{i}"]
        nodes.append(helper.make_node(op, inputs, [f"t{i + 1}"]))
        tensor = f"t{i + 1}"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("W", weights)
    model.set_tensor_datatype("W", DataType["BIPOLAR"])
    for i, (_, value, _) in enumerate(tail):
        model.set_initializer(f"c{i}", np.asarray(value, dtype=np.float32))
    return model.transform(InferShapes())


def _all_inputs() -> list[np.ndarray]:
    """All 256 bipolar vectors of 8: every tie the weights allow occurs."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    return [(2.0 * row - 1).astype(np.float32).reshape(1, 8) for row in bits]


TENSOR_NORM = [("Sub", [3.0], False), ("Div", [2.5], False), ("Mul", [0.7], False),
               ("Add", [0.1], False)]


@pytest.mark.parametrize("tail", [
    [],                                                   # no output normalization
    TENSOR_NORM,                                          # Brevitas' TensorNorm, as exported
    [("Mul", [-0.7], False), ("Add", [0.1], False)],      # a negative scale: decreasing
    [("Sub", [5.0], True), ("Mul", [2.0], False)],        # 5 - x: decreasing
], ids=["none", "tensor-norm", "negative-scale", "constant-minus-output"])
def test_select_class_outputs_the_first_maximum_of_the_logits(tail):
    model = _classifier_graph(tail)
    inputs = _all_inputs()
    logits = np.concatenate([execute_onnx(model, {"x": x})["y"] for x in inputs])
    ties = (logits == logits.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert ties.sum() > 10  # classes 1 and 4 tie whenever they are the largest
    assert class_selection_problem(model) is None
    selected = model.transform(SelectClassOnChip())
    assert [n.op_type for n in selected.graph.node] == ["MatMul", "TopK"]
    out = selected.graph.output[0].name
    classes = np.array([int(execute_onnx(selected, {"x": x})[out].reshape(-1)[0])
                        for x in inputs])
    np.testing.assert_array_equal(classes, logits.argmax(axis=1))  # ties: lowest index
    assert not (classes == 4).any()  # class 4 always ties with class 1, which wins


@pytest.mark.parametrize("tail, reason", [
    ([("Mul", np.linspace(0.5, 1.5, CLASSES).reshape(1, CLASSES), False),
      ("Add", np.zeros((1, CLASSES)), False)], "per-channel"),
    ([("Mul", [0.0], False)], "by 0.0"),
    ([("Div", [2.0], True)], "divides a constant"),
], ids=["batch-norm", "zero-scale", "reciprocal"])
def test_select_class_leaves_a_graph_whose_ranking_can_change_alone(tail, reason):
    model = _classifier_graph(tail)
    assert reason in class_selection_problem(model)
    before = [n.op_type for n in model.graph.node]
    after = model.transform(SelectClassOnChip())
    assert [n.op_type for n in after.graph.node] == before
    assert after.get_tensor_shape(after.graph.output[0].name) == [1, CLASSES]
