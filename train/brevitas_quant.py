"""ProxConnect++ pairs as Brevitas quantizers, so 1-bit models stay plain Brevitas models.

Brevitas builds a quantizer from a declarative injector class; its ``tensor_quant`` module
returns ``(value, scale, zero_point, bit_width)``. We swap Brevitas' ``ClampedBinaryQuant`` for
:class:`ProxConnectBinaryQuant` in the two standard binary injectors and keep everything else,
so the QONNX exporter sees a 1-bit, zero-point-0 proxy and emits ``BipolarQuant``.

The scale is the constant 1.0 for weights and activations: values are exactly +-1, so the
integer XNOR-popcount arithmetic downstream is exact (Brevitas' weight default 0.1 is not).
"""

from __future__ import annotations

from functools import cache

import torch
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.scaling import ScalingImplType
from brevitas.core.utils import StatelessBuffer
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.scaled_int import Uint8ActPerTensorFloat
from torch import nn

from .pairs import QuantizerPair, pair_for
from .quantizers import binary_sign, quantize


class ProxConnectBinaryQuant(nn.Module):
    """Brevitas tensor quantizer for one PC++ pair.

    Training mode computes F(x) = P_mu(B(x)) at the current schedule ``progress`` and
    back-propagates B'(x); eval mode is the deployed network, sign(x), whatever mu is.
    """

    def __init__(self, scaling_impl: nn.Module, quantizer_pair: str):
        super().__init__()
        self.scaling_impl = scaling_impl
        self.pair: QuantizerPair = pair_for(quantizer_pair)
        self.progress = 0.0  # training progress in [0, 1]; set by set_schedule_progress
        self.bit_width = BitWidthConst(1)
        self.zero_point = StatelessBuffer(torch.tensor(0.0))

    def forward(self, x: torch.Tensor):
        scale = self.scaling_impl(x)
        y = quantize(self.pair, x, self.progress) if self.training else binary_sign(x)
        return y * scale, scale, self.zero_point(), self.bit_width()

    def extra_repr(self) -> str:
        return f"pair={self.pair.name}, progress={self.progress:.3f}"


class ProxConnectWeightQuant(SignedBinaryWeightPerTensorConst):
    """Binary weight quantizer, per-tensor constant scale 1.0; subclass per pair."""

    tensor_quant = ProxConnectBinaryQuant
    scaling_const = 1.0
    quantizer_pair = "bnn"


class ProxConnectActQuant(SignedBinaryActPerTensorConst):
    """Bipolar activation quantizer (scale 1 from min_val/max_val = -1/+1); subclass per pair."""

    tensor_quant = ProxConnectBinaryQuant
    quantizer_pair = "bnn"


class PixelQuant(Uint8ActPerTensorFloat):
    """8-bit unsigned input quantizer with scale 1: the identity on integer pixels 0..255, so
    the exported graph's input is the accelerator's UINT8 pixel stream itself. (Brevitas
    divides the constant by the 255 levels to get the scale.)"""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 255.0
    max_val = 255.0


def _injector_name(pair: str, kind: str) -> str:
    return pair.upper().replace("+", "Plus") + kind


@cache
def weight_quant_for(pair: str) -> type:
    pair_for(pair)  # fail early on an unknown name
    return type(_injector_name(pair, "WeightQuant"), (ProxConnectWeightQuant,),
                {"quantizer_pair": pair})


@cache
def act_quant_for(pair: str) -> type:
    pair_for(pair)
    return type(_injector_name(pair, "ActQuant"), (ProxConnectActQuant,), {"quantizer_pair": pair})


def set_schedule_progress(model: nn.Module, progress: float) -> None:
    """Advance the mu schedules of every PC++ quantizer in ``model`` to ``progress`` in [0, 1]."""
    for module in model.modules():
        if isinstance(module, ProxConnectBinaryQuant):
            module.progress = progress


def clip_latent_weights(model: nn.Module) -> None:
    """Keep the latent weights of PC++-quantized layers in [-1, 1] where the pair asks for it."""
    with torch.no_grad():
        for module in model.modules():
            proxy = getattr(module, "weight_quant", None)
            tensor_quant = getattr(proxy, "tensor_quant", None)
            if isinstance(tensor_quant, ProxConnectBinaryQuant) and tensor_quant.pair.clip_latent:
                module.weight.clamp_(-1.0, 1.0)
