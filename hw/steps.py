"""xnorflow's builder steps: FINN build steps (``f(model, cfg) -> model``) that replace or
follow FINN's standard ones where a binary (XNOR) network needs it. Import after
:func:`xnorflow.hw.finn_env.prepare_finn`."""

from __future__ import annotations

from finn.builder.build_dataflow_config import DataflowBuildConfig
from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
    InferBinaryMatrixVectorActivation)
from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
from finn.transformation.qonnx.give_unique_node_names_recursive import (
    GiveUniqueNodeNamesRecursive)
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from .transforms import WidenXnorAccumulators


def step_round_and_clip_thresholds(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_streamline``: finn-plus' Streamline no longer makes thresholds integer and
    in-range; without this, a batch-norm with negative or out-of-range thresholds asserts in
    ``step_minimize_bit_width``."""
    return model.transform(RoundAndClipThresholds())


def step_convert_to_hw_xnor(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_convert_to_hw``: XNOR-popcount MatMul + MultiThreshold pairs become
    binary MVAUs. The classifier's per-channel batch-norm (a float Mul/Add on the last popcount)
    stays in software in ``dataflow_parent.onnx``, where FINN's stock step would emit float
    ElementwiseMul/Add HLS layers that its estimates count as free."""
    model = model.transform(InferBinaryMatrixVectorActivation())
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


REPLACED_STEPS = {
    "step_convert_to_hw": step_convert_to_hw_xnor,
    "step_minimize_bit_width_initial": step_minimize_bit_width_initial_xnor_safe,
    "step_minimize_bit_width": step_minimize_bit_width_xnor_safe,
}
STEPS_AFTER = {"step_streamline": [step_round_and_clip_thresholds]}
