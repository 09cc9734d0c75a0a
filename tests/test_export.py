"""QONNX export: 1-bit checks with clear errors, BIPOLAR input, identical outputs on MNIST."""

import pytest
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import Int8WeightPerTensorFloat
from torch import nn

from xnorflow.export.qonnx_export import (
    UnsupportedModelError,
    check_binary_model,
    export_qonnx_model,
    save_model,
)
from xnorflow.stages.export import export_stage
from xnorflow.train.brevitas_quant import act_quant_for, weight_quant_for
from xnorflow.train.models import build_model
from xnorflow.train.runs import RunRecordError, open_run

W1, A1 = weight_quant_for("bnn"), act_quant_for("bnn")


def binary_block(*middle):
    return nn.Sequential(QuantIdentity(act_quant=A1),
                         QuantLinear(8, 4, bias=False, weight_quant=W1),
                         nn.BatchNorm1d(4), *middle)


def test_float_layer_is_named():
    model = binary_block(QuantIdentity(act_quant=A1), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match=r"4 \(Linear\): float layer; replace it with"
                                                    r" the Brevitas QuantLinear"):
        check_binary_model(model)


def test_multi_bit_weights_are_named():
    model = binary_block(QuantIdentity(act_quant=A1),
                         QuantLinear(4, 2, bias=False, weight_quant=Int8WeightPerTensorFloat))
    with pytest.raises(UnsupportedModelError, match=r"4 \(QuantLinear\): weights are 8-bit"):
        check_binary_model(model)


def test_float_activation_and_unsupported_layer_are_named():
    model = binary_block(nn.ReLU(), QuantIdentity(act_quant=None))
    with pytest.raises(UnsupportedModelError) as err:
        check_binary_model(model)
    assert "3 (ReLU): unsupported layer" in str(err.value)
    assert "4 (QuantIdentity): activations are float" in str(err.value)


def test_float_model_is_refused():
    with pytest.raises(UnsupportedModelError, match="float layer"):
        check_binary_model(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    with pytest.raises(UnsupportedModelError, match="no 1-bit QuantLinear"):
        check_binary_model(nn.Sequential(nn.BatchNorm1d(4)))


def test_mlp_passes_and_exports_with_bipolar_input(tmp_path):
    from qonnx.core.datatype import DataType

    model = build_model("tfc", 64, 10, "bnn++").eval()
    check_binary_model(model)
    wrapper = export_qonnx_model(model)
    save_model(wrapper, tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # weights inline
    assert wrapper.get_tensor_datatype(wrapper.graph.input[0].name) == DataType["BIPOLAR"]
    assert wrapper.find_consumer(wrapper.graph.input[0].name).op_type == "Gemm"
    assert [n.op_type for n in wrapper.graph.node].count("BipolarQuant") == 7  # 4 W + 3 A


def test_open_run_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(RunRecordError, match="no trained model \\(model.pt\\); pass the --out"):
        open_run(tmp_path)


def test_qonnx_identical_to_pytorch_on_real_mnist(mnist_sfc_run, tmp_path):
    result = export_stage(mnist_sfc_run, tmp_path / "m.onnx", verify=300, progress=False)
    comparison = result.comparison
    assert comparison.images == 300 and comparison.identical, comparison.summary()
    assert comparison.accuracy > 0.9
    assert (tmp_path / "m.verify.json").exists()
