"""The PC++ pairs are ordinary Brevitas quantizers: layers train with them and export to QONNX."""

import numpy as np
import onnx
import pytest
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from xnorflow.train.brevitas_quant import (
    ProxConnectBinaryQuant,
    act_quant_for,
    set_schedule_progress,
    weight_quant_for,
)
from xnorflow.train.models import MLP_WIDTHS, build_model
from xnorflow.train.pairs import PAIRS


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pair_plugs_into_brevitas_layers(name):
    torch.manual_seed(0)
    linear = QuantLinear(6, 3, bias=False, weight_quant=weight_quant_for(name))
    conv = QuantConv2d(2, 4, 3, bias=False, weight_quant=weight_quant_for(name))
    act = QuantIdentity(act_quant=act_quant_for(name))
    for layer in (linear, conv):
        assert isinstance(layer.weight_quant.tensor_quant, ProxConnectBinaryQuant)
        layer.eval()
        qw = layer.quant_weight()
        assert float(qw.bit_width) == 1.0 and float(qw.scale) == 1.0
        assert torch.equal(qw.value, torch.where(layer.weight >= 0, 1.0, -1.0))
    act.eval()
    x = torch.tensor([[-0.7, 0.0, 2.0]])
    assert act(x).tolist() == [[-1.0, 1.0, 1.0]]
    # training mode: the pair's gradient reaches the latent weights
    linear.train()
    linear(torch.randn(4, 6)).sum().backward()
    assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("model_name", sorted(MLP_WIDTHS))
def test_mlp_sizes(model_name):
    model = build_model(model_name, 784, 10, "bnn")
    linears = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert [layer.out_features for layer in linears] == [MLP_WIDTHS[model_name]] * 3 + [10]


def test_schedule_progress_reaches_every_quantizer():
    model = build_model("tfc", 64, 10, "bnn++")
    set_schedule_progress(model, 0.6)
    quants = [m for m in model.modules() if isinstance(m, ProxConnectBinaryQuant)]
    assert len(quants) == 4 + 4  # 4 weight quantizers, input + 3 hidden activation quantizers
    assert all(q.progress == 0.6 for q in quants)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_pair_exports_as_bipolar_quant_and_executes_identically(name, tmp_path):
    torch.manual_seed(1)
    model = build_model("tfc", 64, 10, name)
    model.train()
    for _ in range(3):  # give batch-norm non-trivial statistics
        model(torch.randn(32, 64))
    model.eval()
    x = torch.where(torch.randn(16, 64) >= 0, 1.0, -1.0)
    path = tmp_path / f"{name}.onnx"
    export_qonnx(model, torch.zeros(1, 64), str(path))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("BipolarQuant") == 8  # 4 weights + 4 activations
    assert "Quant" not in ops  # no multi-bit quantizer slipped in
    wrapper = ModelWrapper(str(path))
    input_name, output_name = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    with torch.no_grad():
        expected = model(x).numpy()
    for i in range(len(x)):
        got = execute_onnx(wrapper, {input_name: x[i:i + 1].numpy()})[output_name]
        np.testing.assert_allclose(got, expected[i:i + 1], rtol=1e-5, atol=1e-5)
        assert got.argmax() == expected[i].argmax()


def test_activations_can_use_another_pair():
    model = build_model("tfc", 64, 10, "bc", act_quantizer="bnn")
    weight_pairs = {m.weight_quant.tensor_quant.pair.name for m in model.modules()
                    if isinstance(m, QuantLinear)}
    act_pairs = {m.act_quant.fused_activation_quant_proxy.tensor_quant.pair.name
                 for m in model.modules() if isinstance(m, QuantIdentity)}
    assert weight_pairs == {"bc"} and act_pairs == {"bnn"}
