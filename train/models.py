"""FINN-family 1-bit MLPs (TFC / SFC / LFC) built from ordinary Brevitas layers.

The topology follows Brevitas' ``bnn_pynq`` FC models and the FINN paper: a bipolar input
quantizer, three hidden ``QuantLinear -> BatchNorm1d -> bipolar QuantIdentity`` blocks and a
``QuantLinear`` classifier followed by its output normalization, the *head*:

- ``tensor-norm`` (default): Brevitas' ``TensorNorm``, one scalar affine for all classes, as
  in ``bnn_pynq``. It does not change which class is largest, so the build replaces it by a
  top-1 ``LabelSelect`` and the accelerator outputs the class.
- ``batch-norm``: a per-channel ``BatchNorm1d`` (one affine per class); it changes the ranking,
  so it stays on the host and the accelerator outputs the classifier's popcounts.
- ``none``: the classifier's integer dot products are the logits (the local binary trainer).

Weights and activations use the ProxConnect++ pair chosen by name (see
:mod:`xnorflow.train.brevitas_quant`), so the model stays a plain Brevitas model that exports
to QONNX with ``BipolarQuant`` nodes.
"""

from __future__ import annotations

from torch import nn
from brevitas.nn import QuantIdentity, QuantLinear

from .brevitas_quant import act_quant_for, weight_quant_for
from .configs import HEADS, HIDDEN_LAYERS, MLP_WIDTHS


def head_layer(head: str, num_classes: int) -> list[nn.Module]:
    """The output normalization after the classifier (see the module docstring)."""
    if head == "tensor-norm":
        from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
        return [TensorNorm()]
    if head == "batch-norm":
        return [nn.BatchNorm1d(num_classes)]
    if head == "none":
        return []
    raise ValueError(f"unknown head {head!r}; choose one of {HEADS + ('none',)}")


class BinaryMLP(nn.Module):
    """W1A1 multilayer perceptron: bipolar input, ``len(hidden)`` binary hidden layers.

    Dropout sits after each activation (0.2 in bnn_pynq); it is the identity at inference,
    so it does not appear in the exported graph. ``batch_norm=False`` drops the hidden
    BatchNorm layers: the sign activations then threshold the integer popcount at 0 (the local
    binary trainer's networks, with ``head="none"``). ``float_activations=True`` replaces the
    hidden bipolar activations by ReLU (binary weights, float activations: VISPA's W1A32
    setting; FINN's XNOR flow refuses such a model).
    """

    def __init__(self, in_features: int, num_classes: int, hidden: list[int],
                 quantizer: str = "bnn", dropout: float = 0.0, act_quantizer: str | None = None,
                 batch_norm: bool = True, float_activations: bool = False,
                 head: str = "tensor-norm"):
        super().__init__()
        weight_quant = weight_quant_for(quantizer)
        act_quant = act_quant_for(act_quantizer or quantizer)
        layers: list[nn.Module] = [QuantIdentity(act_quant=act_quant, return_quant_tensor=False)]
        width = in_features
        for out in hidden:
            layers.append(QuantLinear(width, out, bias=False, weight_quant=weight_quant))
            if batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.ReLU() if float_activations else
                          QuantIdentity(act_quant=act_quant, return_quant_tensor=False))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = out
        layers.append(QuantLinear(width, num_classes, bias=False, weight_quant=weight_quant))
        layers.extend(head_layer(head, num_classes))
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x.flatten(1))


def build_model(name: str, in_features: int, num_classes: int, quantizer: str = "bnn",
                dropout: float = 0.0, act_quantizer: str | None = None,
                head: str = "tensor-norm") -> BinaryMLP:
    """``tfc``/``sfc``/``lfc`` (64/256/1024 neurons x 3 hidden layers). ``quantizer`` is the
    PC++ pair of the weights, ``act_quantizer`` that of the activations (default: the same)."""
    if name not in MLP_WIDTHS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MLP_WIDTHS)}")
    return BinaryMLP(in_features, num_classes, [MLP_WIDTHS[name]] * HIDDEN_LAYERS, quantizer,
                     dropout, act_quantizer, head=head)
