"""Batch-safe Python execution of the sliding-window layers (an ONNX custom-op domain).

qonnx's ``Im2Col`` executor assumes one image: for a batch its final reshape interleaves the
images' windows (checked: a batch of 6 gave 3 wrong classes). FINN's ``ConvolutionInputGenerator``
executes through it. :func:`xnorflow.export.verify.with_batch_size` moves these nodes into this
domain, where each image runs through the original executor on its own; everything else about
the node (attributes, types) stays as it was.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.convolutioninputgenerator import (
    ConvolutionInputGenerator as _ConvolutionInputGenerator,
)
from qonnx.custom_op.general.im2col import Im2Col as _Im2Col

DOMAIN = __name__
# op type -> the domain whose executor is run once per image
ONE_IMAGE_DOMAINS = {"Im2Col": "qonnx.custom_op.general",
                     "ConvolutionInputGenerator": "finn.custom_op.fpgadataflow"}


def _per_image(execute, node, context, graph) -> None:
    images = context[node.input[0]]
    out_shape = context[node.output[0]].shape
    rows = []
    for image in images:
        single = dict(context)
        single[node.input[0]] = image[None]
        single[node.output[0]] = np.zeros((1, *out_shape[1:]), dtype=np.float32)
        execute(single, graph)
        rows.append(single[node.output[0]])
    context[node.output[0]] = np.concatenate(rows).reshape(out_shape)


class Im2Col(_Im2Col):
    def execute_node(self, context, graph):
        _per_image(super().execute_node, self.onnx_node, context, graph)


class ConvolutionInputGenerator(_ConvolutionInputGenerator):
    def execute_node(self, context, graph):
        _per_image(super().execute_node, self.onnx_node, context, graph)


custom_op = {"Im2Col": Im2Col, "ConvolutionInputGenerator": ConvolutionInputGenerator}
