"""Brevitas model -> clean QONNX graph whose quantizers are all ``BipolarQuant``.

Before exporting, :func:`check_binary_model` walks the model and refuses anything FINN's
XNOR-popcount flow cannot build, naming the layer and the fix. After exporting, the graph is
checked again (every quantizer node must be ``BipolarQuant``) so that a custom quantizer that
slipped through as a multi-bit ``Quant`` is caught here, not deep inside FINN.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
from qonnx.transformation.base import Transformation
from torch import nn

from ..errors import XnorflowError
from ..outputs import write_bytes

# Layers that carry no arithmetic FINN has to map, or that streamlining absorbs.
PASS_THROUGH = (nn.BatchNorm1d, nn.BatchNorm2d, TensorNorm, nn.Dropout, nn.Flatten,
                nn.Identity, nn.MaxPool2d)
CONTAINERS = (nn.Sequential, nn.ModuleList)


class UnsupportedModelError(XnorflowError, ValueError):
    """The model cannot become an XNOR-popcount dataflow design; the message names the layer."""


def _bit_width(proxy) -> float | None:
    if proxy is None or not proxy.is_quant_enabled:
        return None
    return float(proxy.bit_width())


def _is_pixel_input(module: nn.Module, bits: float | None, first: bool) -> bool:
    """The one multi-bit quantizer a W1A1 network may have: an unsigned 8-bit, zero-point-0
    quantizer of the input pixels (FINN's CNV first layer)."""
    if not first or bits != 8:
        return False
    proxy = module.act_quant
    return not proxy.is_signed and float(proxy.zero_point()) == 0.0


def check_binary_model(model: nn.Module) -> None:
    """Raise :class:`UnsupportedModelError` unless every layer is a 1-bit Brevitas layer or a
    layer FINN absorbs (batch-norm, dropout, flatten, max-pool); the input quantizer may be
    8-bit unsigned (pixels into an 8-bit first layer)."""
    problems = []
    has_binary_layer = False
    first_quantizer = True
    for name, module in model.named_modules():
        if name == "" or isinstance(module, CONTAINERS) or _is_brevitas_internal(name, model):
            continue
        kind = type(module).__name__
        if isinstance(module, (QuantLinear, QuantConv2d)):
            bits = _bit_width(module.weight_quant)
            if bits is None:
                problems.append(f"{name} ({kind}): weights are not quantized (float); use a 1-bit "
                                f"weight quantizer, e.g. weight_quant=weight_quant_for('bnn')")
            elif bits != 1:
                problems.append(f"{name} ({kind}): weights are {bits:g}-bit; the XNOR-popcount "
                                f"flow needs 1-bit (bipolar) weights")
            else:
                has_binary_layer = True
        elif isinstance(module, QuantIdentity):
            bits = _bit_width(module.act_quant)
            pixel_input = _is_pixel_input(module, bits, first_quantizer)
            first_quantizer = False
            if bits != 1 and not pixel_input:
                problems.append(f"{name} ({kind}): activations are "
                                f"{'float' if bits is None else f'{bits:g}-bit'}; use a bipolar "
                                f"activation quantizer, e.g. act_quant=act_quant_for('bnn')")
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            problems.append(f"{name} ({kind}): float layer; replace it with the Brevitas "
                            f"{'QuantLinear' if isinstance(module, nn.Linear) else 'QuantConv2d'} "
                            f"with 1-bit weights")
        elif not isinstance(module, PASS_THROUGH) and not list(module.children()):
            problems.append(f"{name} ({kind}): unsupported layer; a W1A1 FINN design takes "
                            f"QuantLinear/QuantConv2d, BatchNorm, TensorNorm, bipolar "
                            f"QuantIdentity (8-bit unsigned at the input), Dropout, Flatten, "
                            f"MaxPool2d")
    if problems:
        raise UnsupportedModelError("model is not a 1-bit (W1A1) network FINN can build:\n  "
                                    + "\n  ".join(problems))
    if not has_binary_layer:
        raise UnsupportedModelError("model has no 1-bit QuantLinear/QuantConv2d layer: it is a "
                                    "float model, not a binary neural network")


def _is_brevitas_internal(name: str, model: nn.Module) -> bool:
    """Sub-modules of Brevitas layers (quant proxies, scaling impls) are checked via the layer."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = model.get_submodule(".".join(parts[:i]))
        if isinstance(parent, (QuantLinear, QuantConv2d, QuantIdentity)):
            return True
    return False


class MarkInputType(Transformation):
    """Drop the input quantizer and declare the graph input's type instead: ``BIPOLAR`` for a
    scale-1 ``BipolarQuant``, ``UINT<b>`` for an unsigned, zero-point-0, scale-1 b-bit ``Quant``.

    Valid because xnorflow feeds exactly those values (binarized data, or integer pixels), on
    which such a quantizer is the identity; FINN then sees a first layer with a typed input
    instead of an extra thresholding layer, and the accelerator takes the values themselves.
    Raises :class:`UnsupportedModelError` for a graph where dropping the quantizer would change
    the outputs: the input feeds anything else too, the quantizer is not the identity on those
    values, or its output is a graph output.
    """

    def apply(self, model):
        import numpy as np
        from qonnx.core.datatype import DataType

        in_name = model.graph.input[0].name
        consumers = model.find_consumers(in_name) or []
        first = consumers[0] if consumers else None
        if len(consumers) != 1 or first.op_type not in ("BipolarQuant", "Quant"):
            found = ", ".join(n.op_type for n in consumers) or "nothing"
            raise UnsupportedModelError(
                f"the graph input feeds {found}, not only an input quantizer: the first layer "
                f"must quantize its input (QuantIdentity with a bipolar act_quant, or "
                f"PixelQuant for 8-bit pixels)")

        def constant(index: int):
            value = model.get_initializer(first.input[index])
            return None if value is None else np.asarray(value)

        scale = constant(1)
        if scale is None or not np.all(scale == 1.0):
            raise UnsupportedModelError(
                f"the input quantizer {first.name} has scale {scale}, not the constant 1: its "
                f"output is not the input values themselves. xnorflow's input quantizers use "
                f"scale 1.0 (ProxConnectActQuant, PixelQuant).")
        if first.op_type == "BipolarQuant":
            dtype = DataType["BIPOLAR"]
        else:
            zero_point, bits = constant(2), constant(3)
            attributes = {a.name: a.i for a in first.attribute}
            if (zero_point is None or bits is None or np.any(zero_point != 0)
                    or attributes.get("signed", 1) or attributes.get("narrow", 0)
                    or float(bits.reshape(-1)[0]) not in (2.0, 4.0, 8.0)):
                raise UnsupportedModelError(
                    f"the input quantizer {first.name} is not an unsigned, zero-point-0 "
                    f"2/4/8-bit quantizer (zero point {zero_point}, bits {bits}, attributes "
                    f"{attributes}); use PixelQuant for 8-bit pixels")
            dtype = DataType[f"UINT{int(bits.reshape(-1)[0])}"]
        if first.output[0] in [o.name for o in model.graph.output]:
            raise UnsupportedModelError("the input quantizer is the whole graph; there is no "
                                        "layer to build")
        for consumer in model.find_consumers(first.output[0]):
            for i, name in enumerate(consumer.input):
                if name == first.output[0]:
                    consumer.input[i] = in_name
        model.graph.node.remove(first)
        model.set_tensor_datatype(in_name, dtype)
        return model, False


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx prints its progress and warns about torchvision, which xnorflow does not use;
    keep the console for xnorflow's own results."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def export_qonnx_model(model: nn.Module):
    """Check, export with Brevitas' QONNX exporter, clean up with qonnx, type the input
    (:class:`MarkInputType`). The graph takes one image of ``model.input_shape``.

    Brevitas under torch 2.13 writes the weights to a ``.data`` file beside the graph; the
    export goes to a temporary folder and the cleaned graph comes back self-contained.

    Returns the cleaned :class:`qonnx.core.modelwrapper.ModelWrapper`; save it with
    :func:`save_model`.
    """
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    check_binary_model(model)
    model = model.eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), _quiet_exporter():
        raw = Path(tmp) / "brevitas_export.onnx"  # plus brevitas_export.onnx.data (weights)
        export_qonnx(model, torch.zeros(1, *model.input_shape), str(raw))
        wrapper = cleanup_model(ModelWrapper(str(raw)))  # loads the weights into the graph
    wrapper = cleanup_model(wrapper.transform(MarkInputType()))
    quant_ops = {n.op_type for n in wrapper.graph.node if "Quant" in n.op_type}
    if quant_ops - {"BipolarQuant"}:
        raise UnsupportedModelError(f"exported graph has quantizers {sorted(quant_ops)}; every "
                                    f"quantizer of a W1A1 model after the input must export "
                                    f"as BipolarQuant")
    return wrapper


def save_model(wrapper, path: str | Path) -> None:
    """Write an ONNX graph atomically (a crash leaves no half-written file)."""
    write_bytes(path, wrapper.model.SerializeToString())
