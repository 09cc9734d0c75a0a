"""A trained BMLP as an equivalent Brevitas model, so that `xnorflow export`/`build` take it
into QONNX and FINN like every other run.

Mapping (exact, tested on real test images): hidden layer l becomes
``QuantLinear(weights = sign(W_l)^T) -> bipolar QuantIdentity`` (Brevitas' binary sign maps
0 to +1, our tie rule), with no BatchNorm, so the activation thresholds the popcount at 0. The
last local classifier B_L becomes the output ``QuantLinear(weights = B_L^T)``, whose integer
outputs are the readout O_L. The other B_l only serve training and are dropped.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantLinear

from ..models import BinaryMLP
from .model import NOT_XNOR, BMLPError, BMLPState

QUANTIZER = "bnn"  # plain sign forward: the latent +-1 weights quantize to themselves


def to_brevitas(state: BMLPState) -> BinaryMLP:
    shape = state.shape
    if shape.convention != "bipolar":
        raise BMLPError(f"this BMLP cannot become a Brevitas model: "
                        f"{NOT_XNOR.format(convention=shape.convention)}.")
    model = BinaryMLP(shape.in_features, shape.num_classes, list(shape.widths), QUANTIZER,
                      batch_norm=False, head="none")
    linears = [m for m in model.modules() if isinstance(m, QuantLinear)]
    binary = state.binary_weights() + [state.classifiers[-1]]
    with torch.no_grad():
        for linear, weights in zip(linears, binary, strict=True):
            linear.weight.copy_(torch.from_numpy(weights.T.astype("float32")))
    return model.eval()
