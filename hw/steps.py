"""xnorflow's builder steps: FINN build steps (``f(model, cfg) -> model``) that replace or
follow FINN's standard ones where a binary (XNOR) network needs it. Import after
:func:`xnorflow.hw.finn_env.prepare_finn`."""

from __future__ import annotations

import json
from pathlib import Path

from finn.builder.build_dataflow_config import DataflowBuildConfig
from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
    InferBinaryMatrixVectorActivation)
from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
from finn.transformation.qonnx.give_unique_node_names_recursive import (
    GiveUniqueNodeNamesRecursive)
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from .build import FoldingConfigError
from .transforms import SelectClassOnChip, WidenXnorAccumulators


def step_select_class_on_chip(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_tidy_up``: a network whose output normalization is one scalar affine
    (TensorNorm) or none ends in a top-1 TopK, which becomes a ``LabelSelect`` layer: the
    accelerator outputs the class index (see :class:`SelectClassOnChip`)."""
    return model.transform(SelectClassOnChip())


def step_round_and_clip_thresholds(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_streamline``: finn-plus' Streamline no longer makes thresholds integer and
    in-range; without this, a batch-norm with negative or out-of-range thresholds asserts in
    ``step_minimize_bit_width``."""
    return model.transform(RoundAndClipThresholds())


def step_convert_to_hw_xnor(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_convert_to_hw``: XNOR-popcount MatMul + MultiThreshold pairs become
    binary MVAUs, a top-1 TopK becomes ``LabelSelect``. The classifier's per-channel batch-norm
    (a float Mul/Add on the last popcount) stays in software in ``dataflow_parent.onnx``, where
    FINN's stock step would emit float ElementwiseMul/Add HLS layers that its estimates count
    as free."""
    model = model.transform(InferBinaryMatrixVectorActivation())
    model = model.transform(InferLabelSelectLayer())
    model = model.transform(GiveUniqueNodeNamesRecursive())
    for transformation in (InferDataLayouts(), InferDataTypes(), InferShapes()):
        model = model.transform(transformation)
    return model


def _minimize_bit_width_xnor_safe(model: ModelWrapper) -> ModelWrapper:
    """FINN's bit-width minimization with :class:`WidenXnorAccumulators` in the one place where
    it must run: after the accumulators are chosen, before thresholds are clipped to them."""
    for transformation in (MinimizeWeightBitWidth(), MinimizeAccumulatorWidth(),
                           WidenXnorAccumulators(), InferDataTypes(), RoundAndClipThresholds(),
                           InferDataTypes(), MinimizeWeightBitWidth(), InferDataTypes()):
        model = model.transform(transformation, apply_to_subgraphs=True)
    return model


def step_minimize_bit_width_initial_xnor_safe(model: ModelWrapper,
                                              cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_minimize_bit_width_initial`` (before partitioning)."""
    return _minimize_bit_width_xnor_safe(model)


def step_minimize_bit_width_xnor_safe(model: ModelWrapper,
                                      cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_minimize_bit_width`` (after folding)."""
    return _minimize_bit_width_xnor_safe(model)


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def step_check_folding(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_apply_folding_config``: every layer a folding JSON names exists, and every
    MVAU's PE divides its outputs (MH) and SIMD its inputs (MW), a LabelSelect's PE its
    classes. FINN would otherwise fail later with an assertion deep in a layer, or silently
    ignore a misspelt layer name."""
    problems = []
    names = [node.name for node in model.graph.node]
    if cfg.folding_config_file is not None:
        config = json.loads(Path(cfg.folding_config_file).read_text())
        unknown = [name for name in config if name != "Defaults" and name not in names]
        if unknown:
            problems.append(f"{cfg.folding_config_file} names {', '.join(unknown)}, which the "
                            f"design does not have; its layers are {', '.join(names)}")
    for node in model.graph.node:
        if node.op_type.startswith("MVAU"):
            checks = (("PE", "MH", "outputs"), ("SIMD", "MW", "inputs"))
        elif node.op_type.startswith("LabelSelect"):
            checks = (("PE", "Labels", "classes"),)
        else:
            continue
        op = getCustomOp(node)
        for attribute, size, what in checks:
            value, total = op.get_nodeattr(attribute), op.get_nodeattr(size)
            if value < 1 or total % value:
                problems.append(f"{node.name}: {attribute} = {value} does not divide its "
                                f"{total} {what} ({size}); choose one of {_divisors(total)}")
    if problems:
        raise FoldingConfigError("the folding does not fit the design:\n  "
                                 + "\n  ".join(problems))
    return model


REPLACED_STEPS = {
    "step_convert_to_hw": step_convert_to_hw_xnor,
    "step_minimize_bit_width_initial": step_minimize_bit_width_initial_xnor_safe,
    "step_minimize_bit_width": step_minimize_bit_width_xnor_safe,
}
STEPS_AFTER = {"step_tidy_up": [step_select_class_on_chip],
               "step_streamline": [step_round_and_clip_thresholds],
               "step_apply_folding_config": [step_check_folding]}
