"""FINN's C simulation of the generated layers with g++ (no Vitis): the accumulator problem of
finn-plus' stock bit-width minimization shown in C++, the whole design simulated layer by layer
against FINN's Python execution and PyTorch, the compile cache, clear errors."""

from pathlib import Path

import numpy as np
import pytest
from qonnx.core.onnx_exec import execute_onnx
from xnor_graphs import HW_DOMAIN, xnor_inputs, xnor_mvau_graph, xnor_weights

from xnorflow.cli import main
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.hw.sim.cppsim import CppSimError, Toolchain, compile_layers, find_hlslib
from xnorflow.stages.build import build_stage

FULL_MATCH_THRESHOLD = 40  # fires on a full match (popcount MW = 64) only in exact arithmetic


@pytest.fixture(scope="module")
def toolchain(finn_hlslib):
    return Toolchain.find(finn_hlslib)


@pytest.fixture
def finn_config(tmp_path):
    """What finn-plus' step_minimize_bit_width reads from the build configuration:
    ``minimize_bit_width`` (FINN's default, True) and ``verify_steps`` (none: no FOLDED_HLS_CPPSIM,
    the test runs its own C simulation). Importing FINN's build steps needs prepare_finn."""
    from xnorflow.hw.finn.env import prepare_finn

    prepare_finn(tmp_path / "codegen")
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    return DataflowBuildConfig(output_dir=str(tmp_path / "finn"), generate_outputs=[],
                               minimize_bit_width=True, verify_steps=None)


def finn_stock_minimization(model, cfg):
    """finn-plus' own step_minimize_bit_width, looked up by name as its builder does: it ends
    with a MinimizeWeightBitWidth that shrinks the threshold type -- which is also the
    accumulator type of the generated C++ -- to the accumulator's."""
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    return build_dataflow_step_lookup["step_minimize_bit_width"](model, cfg)


def xnorflow_minimization(model, cfg):
    from xnorflow.hw.finn.steps import step_minimize_bit_width_xnor_safe

    return step_minimize_bit_width_xnor_safe(model, cfg)


def as_hls(model):
    """A copy with the MVAU specialized to FINN's HLS layer (what code generation emits)."""
    from qonnx.core.modelwrapper import ModelWrapper

    copy = ModelWrapper(model.model.__deepcopy__())
    for node in copy.graph.node:
        if node.op_type == "MVAU":
            node.op_type, node.domain = "MVAU_hls", f"{HW_DOMAIN}.hls"
    return copy


def outputs(model, inputs):
    return np.concatenate([execute_onnx(model, {"x": x})["y"] for x in inputs])


@pytest.mark.parametrize("minimize, differs", [(finn_stock_minimization, True),
                                               (xnorflow_minimization, False)],
                         ids=["finn-stock", "xnorflow"])
def test_stock_accumulator_wraps_in_cpp_and_xnorflows_does_not(toolchain, finn_config, minimize,
                                                               differs):
    """A threshold between MW/2 and MW fires on a full match (popcount 64) in exact arithmetic.
    finn-plus' stock sizing gives the XNOR accumulator and thresholds INT7 (-64..63): in the
    generated C++ the full match wraps to -64 and the neuron stays silent, while Python
    execution of the same graph says it fires. xnorflow's sizing (UINT7) makes the C++ agree."""
    from xnorflow.hw.finn.transforms import MakeHWLayersPythonExecutable

    weights = xnor_weights()
    thresholds = np.full((weights.shape[1], 1), FULL_MATCH_THRESHOLD, np.float32)
    # as in the builder: step_minimize_bit_width runs on the specialized (HLS) layers
    graph = minimize(as_hls(xnor_mvau_graph(weights, thresholds)), finn_config)
    inputs = xnor_inputs(weights)
    python = outputs(graph.transform(MakeHWLayersPythonExecutable()), inputs)
    simulated, report = compile_layers(graph, toolchain)
    assert report.compiled == ["MVAU_0"]
    cpp = outputs(simulated, inputs)
    full_matches = range(weights.shape[1])  # xnor_inputs starts with one full match per neuron
    assert all(python[j, j] == 1 for j in full_matches)
    accumulator = graph.get_nodes_by_op_type("MVAU_hls")[0].attribute
    assert [a.s for a in accumulator if a.name == "accDataType"] == \
        [b"INT7" if differs else b"UINT7"]
    assert graph.get_tensor_datatype("T").name == ("INT7" if differs else "UINT7")
    if differs:
        assert [cpp[j, j] for j in full_matches] == [0] * len(full_matches)
        assert not np.array_equal(cpp, python)
    else:
        assert np.array_equal(cpp, python)


def test_build_simulates_every_layer_and_reuses_compiled_layers(digits_tfc_run, finn_hlslib,
                                                                tmp_path):
    first = build_stage(digits_tfc_run, tmp_path / "a", BuildOptions(target_fps=100_000),
                        verify=50, progress=False, cppsim=300, finn_hlslib=str(finn_hlslib))
    sim = first.cppsim
    assert sim.comparison.images == 300 and sim.identical, sim.summary()
    assert sim.equal_to_python == 300 and sim.comparison.argmax_matches == 300
    assert [m.layer for m in sim.layers] == ["MVAU_hls_0", "MVAU_hls_1", "MVAU_hls_2",
                                             "MVAU_hls_3", "LabelSelect_hls_0"]
    assert all(m.differing == 0 for m in sim.layers)
    assert "cppsim: argmax 300/300 identical" in sim.summary()
    report = first.report.read_text()
    assert "cppsim: argmax 300/300 identical" in report and "differing output" in report
    # the same network built again, elsewhere: nothing to compile
    again = build_stage(digits_tfc_run, tmp_path / "b", BuildOptions(target_fps=100_000),
                        verify=0, progress=False, cppsim=20, finn_hlslib=str(finn_hlslib))
    assert again.cppsim.compile.compiled == [] and len(again.cppsim.compile.cached) == 5
    assert again.cppsim.identical


def test_tied_classes_go_to_the_lowest_index_in_the_simulated_label_select(
        digits_tfc_run, finn_hlslib, tmp_path):
    """Classes 2 and 7 get the same classifier weights, so they tie whenever they are the
    largest: PyTorch's argmax, FINN's Python execution and finn-hlslib's LabelSelect_Batch in C++
    must all answer 2."""
    import shutil

    import numpy as np

    from xnorflow.train.runs import load_record, save_record

    run = Path(shutil.copytree(digits_tfc_run, tmp_path / "run"))
    record = load_record(run / "model.pt")
    classifier = [k for k, v in record["model"].items() if k.endswith("weight") and
                  v.ndim == 2][-1]
    record["model"][classifier][7] = record["model"][classifier][2]
    save_record(record, run / "model.pt")
    result = build_stage(run, tmp_path / "build", BuildOptions(target_fps=100_000), verify=200,
                         progress=False, cppsim=200, finn_hlslib=str(finn_hlslib))
    ties = result.comparisons[-1].ties
    assert all(c.identical and c.ties == ties for c in result.comparisons)
    assert result.cppsim.identical and result.cppsim.comparison.ties == ties
    cpp_classes = np.load(tmp_path / "build" / "cppsim" / "outputs.npy")
    # every image whose class is 2 is a 2-7 tie (7's logit always equals 2's): enough of them
    # to test the rule (PyTorch sees them as ties too), and 7 never wins
    assert ties >= (cpp_classes == 2).sum() >= 10 and not (cpp_classes == 7).any()


def test_missing_tools_are_named_before_the_build(digits_tfc_run, tmp_path, capsys,
                                                 monkeypatch):
    out = tmp_path / "build"
    assert main(["build", str(digits_tfc_run), "--target-fps", "1000", "--out", str(out),
                 "--cppsim", "10", "--finn-hlslib", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "finn-hlslib not found" in err and "`python -m xnorflow.hw.finn.deps`" in err
    assert not out.exists()
    monkeypatch.setenv("FINN_DEPS", str(tmp_path / "nowhere"))
    with pytest.raises(CppSimError, match=r"nowhere/finn-hlslib or .*\(no bnn-library.h"):
        find_hlslib()
    monkeypatch.setenv("CXX", "no-such-compiler-xnorflow")
    with pytest.raises(CppSimError, match="needs g\\+\\+"):
        Toolchain.find(tmp_path)


@pytest.mark.slow
def test_lfc_cppsim_on_the_whole_mnist_test_set(mnist_dir, finn_hlslib, tmp_path):
    """LFC W1A1 (784-1024-1024-1024-10) trained one epoch: all 10,000 test images through the
    C-simulated design, every layer identical to FINN's Python execution and the output to
    PyTorch (BENCHMARKS.md has the timing)."""
    from xnorflow.stages.train import train_run
    from xnorflow.train.configs import TrainConfig

    train_run(TrainConfig(model="lfc", dataset="mnist", data_dir=str(mnist_dir), epochs=1),
              tmp_path / "run", progress=False)
    result = build_stage(tmp_path / "run", tmp_path / "build", BuildOptions(target_fps=100_000),
                         verify=0, progress=False, cppsim=10_000, finn_hlslib=str(finn_hlslib))
    sim = result.cppsim
    assert sim.comparison.images == 10_000 and sim.identical, sim.summary()


def test_hlslib_probes_cache_only_a_clear_answer(toolchain, tmp_path, monkeypatch):
    """A probe that fails at the probed call is a gap of this finn-hlslib and is remembered; one
    that fails for another reason (a passing problem) is reported but asked again next time."""
    import xnorflow.hw.sim.cppsim as cppsim

    monkeypatch.setattr(cppsim, "PROBES", {
        "Works_hls": ("Works", "int Works() { return 0; }\nint main() { return Works(); }\n"),
        "Gap_hls": ("Missing_batch", "int main() { Missing_batch<4>(); }\n"),
        "Broken_hls": ("Other_batch", "int main() { this is not C++ }\n"),
    })
    gaps = cppsim.hlslib_gaps(toolchain, tmp_path)
    assert set(gaps) == {"Gap_hls", "Broken_hls"}
    assert "cannot compile finn-plus' Gap_hls call" in gaps["Gap_hls"]
    kept = sorted(p.name.split("-")[1] for p in (tmp_path / "cppsim").glob("probe-*.json"))
    assert kept == ["Gap_hls", "Works_hls"]
