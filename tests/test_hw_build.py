"""FINN flow: the chain PyTorch -> QONNX -> FINN-ONNX -> streamlined -> HW layers -> folded
dataflow is bit-exact on real MNIST; the class is selected on chip for a TensorNorm head and the
logits stay on the host for a batch-norm head; estimates, HLS sources and the report are
produced; the vendor-tool steps stop cleanly."""

import json
import re

import pytest

from xnorflow.errors import UsageError
from xnorflow.export.run_export import QONNX_FILE
from xnorflow.hw.finn.build import build_steps, run_build, vendor_steps
from xnorflow.hw.finn.options import BuildError, BuildOptions, FoldingConfigError
from xnorflow.stages.build import build_stage

N_IMAGES = 300
# The slow test's SFC (bnn++, 5 epochs, dropout 0.1) on the first 2,000 MNIST test images,
# seeds 0-7 (benchmarks/seed_variance.py, BENCHMARKS.md): 95.77 +- 0.19 % at 2 threads (CI),
# 95.81 +- 0.41 % at 1 thread, lowest 95.25 %. Seed 0, which the test trains, reaches 95.75 %
# at 2 threads and 95.25 % at 1. The floor is 4 std below the 2-thread mean.
SLOW_ACCURACY_FLOOR = 0.95


@pytest.fixture(scope="module")
def sfc_build(mnist_sfc_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("sfc-build") / "build"
    result = build_stage(mnist_sfc_run, out, BuildOptions(target_fps=100_000),
                         verify=N_IMAGES, progress=False)
    return out, result.report, result.comparisons, result.stopped


def test_every_stage_identical_to_pytorch_on_mnist(sfc_build):
    """TensorNorm head: logits identical up to TopK's insertion, then the class."""
    _, _, comparisons, stopped = sfc_build
    assert stopped is None
    assert [c.stage for c in comparisons] == ["QONNX", "FINN-ONNX", "streamlined",
                                              "hardware layers", "folded dataflow"]
    assert [c.output for c in comparisons] == ["logits"] * 2 + ["class"] * 3
    for c in comparisons:
        assert c.images == N_IMAGES and c.identical, c.summary()
        assert c.argmax_matches == N_IMAGES
        if c.output == "logits":
            assert c.logits_match == N_IMAGES and c.max_abs_diff < 1e-4
    assert len({c.ties for c in comparisons}) == 1  # the same PyTorch reference every time


def test_streamlined_graph_is_xnor_popcount_with_thresholds(sfc_build):
    from qonnx.core.modelwrapper import ModelWrapper

    out = sfc_build[0]
    ops = [n.op_type for n in ModelWrapper(
        str(out / "intermediate_models" / "step_round_and_clip_thresholds.onnx")).graph.node]
    assert ops.count("XnorPopcountMatMul") == 4 and ops.count("MultiThreshold") == 3
    assert ops[-1] == "TopK" and ops[-2] == "XnorPopcountMatMul"  # TensorNorm absorbed
    hw = ModelWrapper(str(out / "intermediate_models" / "step_hw_codegen.onnx"))
    assert [n.op_type for n in hw.graph.node] == ["MVAU_hls"] * 4 + ["LabelSelect_hls"]
    parent = ModelWrapper(str(out / "intermediate_models" / "dataflow_parent.onnx"))
    assert [n.op_type for n in parent.graph.node] == ["StreamingDataflowPartition"]


def test_xnor_accumulators_hold_the_popcount(sfc_build):
    """FINN's stock bit-width minimization picks too narrow types for XNOR layers; ours not."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes

    from xnorflow.hw.finn.analysis import xnor_accumulator_problems

    models = sfc_build[0] / "intermediate_models"
    final = ModelWrapper(str(models / "step_hw_codegen.onnx"))
    assert xnor_accumulator_problems(final) == []
    stock = ModelWrapper(str(models / "step_convert_to_hw_xnor.onnx"))
    for transformation in (MinimizeWeightBitWidth(), MinimizeAccumulatorWidth(), InferDataTypes(),
                           RoundAndClipThresholds(), InferDataTypes()):  # FINN's own sequence
        stock = stock.transform(transformation)
    problems = xnor_accumulator_problems(stock)
    assert any(re.search(r"type INT\d+ cannot hold popcount 0\.\.(256|784)", p)
               for p in problems), problems


def test_folding_reaches_target_and_report_is_written(sfc_build):
    out, report, _, _ = sfc_build
    summary = json.loads((out / "build_summary.json").read_text())
    assert summary["estimated_fps"] >= 100_000 and summary["target_fps"] == 100_000
    assert summary["target_met"] is True and summary["fits_device"] is True
    assert [layer["shape"] for layer in summary["layers"]] == [
        "784 x 256", "256 x 256", "256 x 256", "256 x 10", "10 classes -> top 1"]
    assert summary["output"] == "class"
    text = report.read_text()
    for needle in ("bottleneck", "target 100,000 FPS reached", "| MVAU_hls_0 |",
                   "| LabelSelect_hls_0 |", "output: the class index, selected on chip",
                   "Bit-exact chain", "resources fit Pynq-Z1 (xc7z020clg400-1)"):
        assert needle in text
    assert (out / "build_report.html").exists()
    assert (out / "cycles_per_layer.png").read_bytes()[:4] == b"\x89PNG"


def test_hls_sources_are_generated_for_every_layer(sfc_build):
    out = sfc_build[0]
    sources = sorted((out / "codegen").glob("code_gen_ipgen_MVAU_hls_*/top_MVAU_hls_*.cpp"))
    assert len(sources) == 4
    code = sources[0].read_text()
    assert "Matrix_Vector_Activate_Stream_Batch" in code and "XnorMul" in code


def test_folding_config_file_is_applied(sfc_build, tmp_path):
    out = sfc_build[0]
    folding = {"Defaults": {}, **{f"MVAU_hls_{i}": {"PE": pe, "SIMD": simd}
                                  for i, (pe, simd) in enumerate([(4, 16), (4, 16), (4, 16),
                                                                  (2, 8)])}}
    (tmp_path / "fold.json").write_text(json.dumps(folding))
    run_build(out / QONNX_FILE, tmp_path / "b",
              BuildOptions(folding_config=str(tmp_path / "fold.json"), until="estimates"))
    cycles = json.loads((tmp_path / "b" / "report" / "estimate_layer_cycles.json").read_text())
    assert cycles["MVAU_hls_0"] == (784 // 16) * (256 // 4)


def test_step_plan_and_bad_options(tmp_path):
    names = [s if isinstance(s, str) else s.__name__ for s in build_steps("bitfile")]
    assert names.index("step_round_and_clip_thresholds") == names.index("step_streamline_xnor") + 1
    assert names.index("step_check_folding") == names.index("step_apply_folding_config") + 1
    assert "step_convert_to_hw" not in names and "step_convert_to_hw_xnor" in names
    assert set(vendor_steps()) <= set(names)
    with pytest.raises(ValueError, match="--board 'Pynq-Z9' is not one of"):
        BuildOptions(board="Pynq-Z9")
    with pytest.raises(ValueError, match="--target-fps 0 must be > 0"):
        BuildOptions(target_fps=0)
    with pytest.raises(UsageError, match="give at most one of --target-fps .* --folding-config"):
        BuildOptions(target_fps=1, folding_config="x.json").validate()
    with pytest.raises(UsageError, match="--folding-search finn runs FINN's SetFolding, which "
                                         "needs a --target-fps"):
        BuildOptions(folding_search="finn").validate()
    for budget in (0, 1.5):
        with pytest.raises(ValueError, match=rf"--budget {budget:g} must be"):
            BuildOptions(budget=budget)
    with pytest.raises(BuildError, match="QONNX model not found"):
        run_build(tmp_path / "x.onnx", tmp_path / "b", BuildOptions(target_fps=1))


@pytest.mark.parametrize("text, message", [
    ('{"MVAU_hls_0": {"PE": 4}', "not valid JSON"),
    ('[1, 2]', "the top level must be an object"),
    ('{"MVAU_hls_0": 4}', "entry 'MVAU_hls_0' must be an object"),
    ('{"MVAU_hls_0": {"PE": 0}}', "MVAU_hls_0.PE = 0; PE must be a positive integer"),
    ('{"MVAU_hls_0": {"SIMD": "8"}}', "MVAU_hls_0.SIMD = '8'"),
])
def test_malformed_folding_json_is_refused_before_the_build(tmp_path, text, message):
    (tmp_path / "fold.json").write_text(text)
    with pytest.raises(FoldingConfigError, match=message):
        BuildOptions(folding_config=str(tmp_path / "fold.json")).validate()


def test_folding_that_does_not_fit_the_design_names_layer_and_choices(sfc_build, tmp_path):
    (tmp_path / "fold.json").write_text(json.dumps({"MVAU_hls_0": {"PE": 3, "SIMD": 16},
                                                    "MVAU_hls_7": {"PE": 1}}))
    with pytest.raises(FoldingConfigError) as err:
        run_build(sfc_build[0] / QONNX_FILE, tmp_path / "b",
                  BuildOptions(folding_config=str(tmp_path / "fold.json"), until="estimates"))
    message = str(err.value)
    assert "names MVAU_hls_7, which the design does not have" in message
    assert "MVAU_hls_0: PE = 3 does not divide its 256 outputs (MH); choose one of 1, 2, 4" in \
        message


@pytest.mark.slow
def test_trained_sfc_full_chain_on_2000_mnist_images(mnist_dir, tmp_path):
    """Longer end-to-end run: SFC trained 5 epochs, every stage identical on 2,000 images."""
    from xnorflow.train.configs import TrainConfig
    from xnorflow.train.trainer import Trainer

    # The batch-norm head: the configuration whose seed spread set the floor.
    config = TrainConfig(model="sfc", quantizer="bnn++", dataset="mnist",
                         data_dir=str(mnist_dir), epochs=5, dropout=0.1, head="batch-norm")
    Trainer(config, tmp_path / "run", show_progress=False, verbose=False).fit()
    result = build_stage(tmp_path / "run", tmp_path / "build", BuildOptions(target_fps=200_000),
                         verify=2000, progress=False)
    comparisons = result.comparisons
    assert all(c.identical for c in comparisons), [c.summary() for c in comparisons]
    assert comparisons[-1].accuracy > SLOW_ACCURACY_FLOOR


def test_batched_execution_equals_image_by_image(sfc_build, mnist_dir):
    """The verification runs graphs on batches; that must not change a single output bit."""
    import numpy as np

    from xnorflow.export.verify import execute_graph
    from xnorflow.hw.finn.layout import BuildLayout
    from xnorflow.hw.finn.verify import STAGES, load_stage
    from xnorflow.train.data import load_dataset

    images = load_dataset("mnist", mnist_dir).test.images[:37]
    for _, step in STAGES:
        graph = load_stage(BuildLayout(sfc_build[0]), step)
        one_by_one = execute_graph(graph, images, progress=False, batch_size=1)
        batched = execute_graph(graph, images, progress=False, batch_size=16)  # 16+16+5 padded
        assert np.array_equal(one_by_one, batched), step


def test_batch_norm_head_keeps_the_logits_and_the_affine_on_the_host(tmp_path):
    """A per-channel batch-norm changes which class is largest: no LabelSelect; the accelerator
    outputs the popcounts, dataflow_parent.onnx applies the affine, the logits are exact."""
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorflow.stages.train import train_run
    from xnorflow.train.configs import TrainConfig

    train_run(TrainConfig(model="tfc", epochs=1, head="batch-norm"), tmp_path / "run",
              progress=False)
    result = build_stage(tmp_path / "run", tmp_path / "build", BuildOptions(target_fps=100_000),
                         verify=100, progress=False)
    assert [c.output for c in result.comparisons] == ["logits"] * 5
    assert all(c.identical and c.logits_match == 100 for c in result.comparisons)
    assert result.summary.output == "popcounts"
    assert any(line.startswith("output: the classifier's popcounts") for line in result.lines())
    models = tmp_path / "build" / "intermediate_models"
    hw = ModelWrapper(str(models / "step_hw_codegen.onnx"))
    assert [n.op_type for n in hw.graph.node] == ["MVAU_hls"] * 4
    parent = ModelWrapper(str(models / "dataflow_parent.onnx"))
    assert {"Mul", "Add"} <= {n.op_type for n in parent.graph.node}
    from xnorflow.hw.deploy.bundle import DeployError
    from xnorflow.stages.deploy import deploy_stage
    with pytest.raises(DeployError, match="per-class batch-norm head.*--head tensor-norm"):
        deploy_stage(tmp_path / "build", tmp_path / "bundle", images=10)
    assert not (tmp_path / "bundle").exists()


def test_deployed_bundle_validates_1000_mnist_images_on_the_host(sfc_build, tmp_path):
    """The issue's check: deploy, then `validate.py --simulate --images 1000`."""
    import subprocess
    import sys

    from xnorflow.cli import main

    bundle = tmp_path / "bundle"
    assert main(["deploy", str(sfc_build[0]), "--out", str(bundle), "--images", "1000"]) == 0
    result = subprocess.run([sys.executable, str(bundle / "validate.py"), "--simulate",
                             "--images", "1000"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "1000/1000 identical (class index from the packed stream vs PyTorch argmax)" in \
        result.stdout
