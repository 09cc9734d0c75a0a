"""xnorflow's builder steps: FINN build steps (``f(model, cfg) -> model``) that replace or
follow FINN's standard ones where a binary (XNOR) network needs it. Import after
:func:`xnorflow.hw.finn.env.prepare_finn`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import finn.transformation.streamline.absorb as absorb
from finn.builder.build_dataflow_config import DataflowBuildConfig
from finn.builder.build_dataflow_steps import (
    build_dataflow_step_lookup,
    register_build_dataflow_step,
)
from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
    InferBinaryMatrixVectorActivation,
)
from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
    InferQuantizedMatrixVectorActivation,
)
from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
from finn.transformation.qonnx.give_unique_node_names_recursive import GiveUniqueNodeNamesRecursive
from finn.transformation.streamline import Streamline
from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import RemoveUnusedTensors
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from ..devices import device_for_part
from ..divisors import divisors, listed
from .analysis import unmapped_layers
from .folding import (
    ECP5_LUT_ROM_DEPTH,
    MAX_INPUT_FOLD,
    apply_plan,
    fit,
    folding_units,
    for_target,
    min_simd,
    write_plan,
)
from .layout import BuildLayout
from .options import FoldingConfigError
from .transforms import (
    ConvertBipolarToXnor,
    LowerConvsWithBackground,
    SelectClassOnChip,
    StreamliningError,
    WidenXnorAccumulators,
)


def step_select_class_on_chip(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_tidy_up``: a network whose output normalization is one scalar affine
    (TensorNorm) or none ends in a top-1 TopK, which becomes a ``LabelSelect`` layer: the
    accelerator outputs the class index (see :class:`SelectClassOnChip`)."""
    return model.transform(SelectClassOnChip())


def step_streamline_xnor(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_streamline``: FINN's streamlining with two changes for binary CNNs.
    Convolutions padded with a background value (-1 on bipolar maps) are lowered with that
    value (:class:`LowerConvsWithBackground`; ONNX Conv pads only 0), and the XNOR conversion
    also reaches a bipolar graph input that feeds a convolution (:class:`ConvertBipolarToXnor`).
    """
    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    if model.get_nodes_by_op_type("Conv"):
        model = model.transform(LowerConvsWithBackground())
        model = model.transform(MakeMaxPoolNHWC())
        model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
        model = model.transform(MakeMaxPoolNHWC())
        model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(ConvertBipolarToXnor())
    model = model.transform(Streamline())
    model = model.transform(absorb.AbsorbScalarMulAddIntoTopK())
    model = model.transform(InferDataLayouts())
    return model.transform(RemoveUnusedTensors())


def step_round_and_clip_thresholds(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_streamline``: finn-plus' Streamline no longer makes thresholds integer and
    in-range; without this, a batch-norm with negative or out-of-range thresholds asserts in
    ``step_minimize_bit_width``."""
    return model.transform(RoundAndClipThresholds())


def step_convert_to_hw_xnor(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """Replaces ``step_convert_to_hw``: XNOR-popcount MatMul + MultiThreshold pairs become
    binary MVAUs (an 8-bit first layer a quantized MVAU), Im2Col sliding-window generators
    (with padding units), max-pooling pool layers, a top-1 TopK ``LabelSelect``. The
    classifier's per-channel batch-norm (a float Mul/Add on the last popcount) stays in
    software in ``dataflow_parent.onnx``, where FINN's stock step would emit float
    ElementwiseMul/Add HLS layers that its estimates count as free."""
    model = model.transform(InferBinaryMatrixVectorActivation())
    model = model.transform(InferQuantizedMatrixVectorActivation())
    model = model.transform(InferLabelSelectLayer())
    model = model.transform(InferPool())
    model = model.transform(InferConvInpGen())
    model = model.transform(RemoveCNVtoFCFlatten())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(GiveUniqueNodeNamesRecursive())
    for transformation in (InferDataLayouts(), InferDataTypes(), InferShapes()):
        model = model.transform(transformation)
    return model


def step_check_hardware_layers(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_convert_to_hw``: every node became a FINN hardware layer, except a per-class
    affine after the last one (computed on the host). FINN would otherwise stop at
    partitioning with a list of node names; this names the PyTorch layers and the fix."""
    problems = unmapped_layers(model)
    if problems:
        raise StreamliningError(
            "these layers did not become FINN hardware layers (fix the first; the others often "
            "follow from it):\n  " + "\n  ".join(problems))
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


def step_within_hls_limits(model: ModelWrapper, cfg: DataflowBuildConfig) -> ModelWrapper:
    """After ``step_target_fps_parallelization``: FINN's ``SetFolding`` may leave a wide layer
    (e.g. VGG-Small's 8192-input classifier) at a SIMD below MW / 1024, which its own HLS code
    generation then refuses; raise such a SIMD to :func:`min_simd` (faster, never slower)."""
    if cfg.target_fps is None:
        return model
    for node in model.graph.node:
        if node.op_type.startswith("MVAU"):
            op = getCustomOp(node)
            floor = min_simd(op.get_nodeattr("MW"))
            if op.get_nodeattr("SIMD") < floor:
                op.set_nodeattr("SIMD", floor)
    return model


def step_fold_balanced(model: ModelWrapper, cfg: XnorBuildConfig) -> ModelWrapper:
    """Replaces ``step_target_fps_parallelization`` when xnorflow chooses the folding (see
    :mod:`xnorflow.hw.finn.folding`): the fastest design within ``cfg.folding_budget`` of the
    device, or with ``cfg.folding_target_fps`` the cheapest design that reaches it. Writes
    ``report/folding_search.json`` (what was chosen and why) and
    ``report/auto_folding_config.json`` (reusable with --folding-config)."""
    part = cfg._resolve_fpga_part()
    capacity = device_for_part(cfg.folding_part or part).capacity()
    # an ECP5 keeps weight ROMs deeper than a LUT4 (16 words) in EBRs: as LUT ROMs, SFC on
    # digits (32-word ROMs, 512 bits wide) did not finish routing on an LFE5U-85F in 15 minutes;
    # in EBRs the same folding routed in 6 minutes at 112 MHz (BENCHMARKS.md, timing closure)
    ecp5 = (cfg.folding_part or "").startswith("LFE5U")
    units = folding_units(model, part, ECP5_LUT_ROM_DEPTH if ecp5 else None)
    clock_mhz = 1000.0 / cfg.synth_clk_period_ns
    if cfg.folding_target_fps is None:
        plan = fit(units, capacity, cfg.folding_budget)
    else:
        bound = int(clock_mhz * 1e6 / cfg.folding_target_fps)
        plan = for_target(units, capacity, cfg.folding_budget, max(bound, 1))
    apply_plan(model, plan)
    write_plan(plan, BuildLayout(cfg.output_dir).report_dir, clock_mhz)
    return model


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
                                f"{total} {what} ({size}); choose one of {listed(divisors(total))}")
            elif attribute == "SIMD" and value < min_simd(total):
                problems.append(f"{node.name}: SIMD = {value} leaves more than "
                                f"{MAX_INPUT_FOLD} input folds ({total} inputs), which "
                                f"finn-hlslib's MVAU cannot synthesize; choose one of "
                                f"{listed(divisors(total, min_simd(total)))}")
    if problems:
        raise FoldingConfigError("the folding does not fit the design:\n  "
                                 + "\n  ".join(problems))
    return model


@dataclass
class XnorBuildConfig(DataflowBuildConfig):
    """FINN's build configuration with what xnorflow's own steps read (a step gets only its
    config). ``target_fps`` stays None when xnorflow's search folds, so that no FINN step
    applies its own folding to the target."""

    folding_budget: float = 0.8
    folding_target_fps: int | None = None
    folding_part: str | None = None      # whose capacity the folding fills (default fpga_part)


REPLACED_STEPS = {
    "step_streamline": step_streamline_xnor,
    "step_convert_to_hw": step_convert_to_hw_xnor,
    "step_minimize_bit_width_initial": step_minimize_bit_width_initial_xnor_safe,
    "step_minimize_bit_width": step_minimize_bit_width_xnor_safe,
}
STEPS_AFTER = {"step_tidy_up": [step_select_class_on_chip],
               "step_streamline": [step_round_and_clip_thresholds],
               "step_convert_to_hw": [step_check_hardware_layers],
               "step_target_fps_parallelization": [step_within_hls_limits],
               "step_apply_folding_config": [step_check_folding]}
BALANCED_STEP = {"step_target_fps_parallelization": step_fold_balanced}

# Registered by name with FINN's builder, so a step list (and a saved build config) can name them.
for _step in {*REPLACED_STEPS.values(), *sum(STEPS_AFTER.values(), []), step_fold_balanced}:
    if _step.__name__ not in build_dataflow_step_lookup:
        register_build_dataflow_step()(_step)
