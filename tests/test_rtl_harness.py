"""The Verilator harnesses of the RTL backend on tiny hand-made designs (no FINN, no training):
the stress run's input is a legal AXI4-Stream master (TVALID and TDATA held until the
handshake), and every stream of the design is checked for the same rule (a layer that drops
TVALID or changes TDATA while its output is stalled is named in summary.json)."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from xnorflow.hw.rtl.design import Design
from xnorflow.hw.rtl.harness import design_harness, layers_harness
from xnorflow.hw.rtl.layers import Instance
from xnorflow.hw.rtl.stitch import LAYERS_TB, TB, TOP, streams, write
from xnorflow.hw.rtl.verilate import compile_program, run_program

# an 8-bit register slice with the ports of a generated wrapper; the faulty variants break
# AXI4-Stream while their output is stalled (`phase` toggles every cycle)
STAGE = """module {name} (
    input  wire ap_clk,
    input  wire ap_rst_n,
    input  wire [7:0] in0_V_TDATA,
    input  wire in0_V_TVALID,
    output wire in0_V_TREADY,
    output wire [7:0] out0_V_TDATA,
    output wire out0_V_TVALID,
    input  wire out0_V_TREADY
);
    reg [7:0] data;
    reg full, phase;
    wire fire = out0_V_TVALID && out0_V_TREADY;
    assign in0_V_TREADY = !full || fire;
    assign out0_V_TVALID = {tvalid};
    assign out0_V_TDATA = {tdata};
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            full <= 1'b0;
            phase <= 1'b0;
        end else begin
            phase <= !phase;
            if (in0_V_TREADY) begin
                full <= in0_V_TVALID;
                data <= in0_V_TDATA;
            end
        end
    end
endmodule
"""
KINDS = {"good": ("full", "data"),
         "drops_tvalid": ("full && phase", "data"),
         "changes_tdata": ("full", "phase ? ~data : data")}
GOOD = ["good", "good", "good"]
FAULTY = ["good", "drops_tvalid", "good", "changes_tdata", "good"]   # taps 2 and 4 break it


def _design(folder: Path, kinds: list[str]) -> Design:
    """A chain of stages as the RTL backend stitches one (no FIFOs)."""
    hdl = folder / "hdl"
    hdl.mkdir(parents=True)
    instances = []
    for i, kind in enumerate(kinds):
        name = f"stage{i}_{kind}"
        tvalid, tdata = KINDS[kind]
        path = hdl / f"{name}.sv"
        path.write_text(STAGE.format(name=name, tvalid=tvalid, tdata=tdata))
        instances.append(Instance(name, "Stage", name, 8, 8, f"t{i}", f"t{i + 1}", 1,
                                  files=[path]))
    testbenches = write(instances, hdl)
    return Design(folder, instances, streams(instances),
                  [*(f for i in instances for f in i.files), testbenches[TOP]], testbenches,
                  folder / "rtl_graph.onnx")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The good and the faulty chain with the design harness, and the faulty one with the
    layers harness: (design, program), compiled side by side."""
    root = tmp_path_factory.mktemp("harness")
    designs = {label: _design(root / label, kinds)
               for label, kinds in (("good", GOOD), ("faulty", FAULTY))}
    jobs = {"good": ("good", TB, design_harness), "faulty": ("faulty", TB, design_harness),
            "faulty_layers": ("faulty", LAYERS_TB, layers_harness)}

    def build(job):
        label, top, harness = job
        design = designs[label]
        return design, compile_program(design, top, harness(design.instances), top,
                                       cache=root / "sim")

    with ThreadPoolExecutor(len(jobs)) as pool:
        return dict(zip(jobs, pool.map(build, jobs.values())))


def _run(design: Design, program, folder: Path, words: int, gap: int, stall: int,
         seed: int = 1, timeout: int = 1000) -> tuple[int, dict, np.ndarray]:
    """The design harness on ``words`` random bytes: (exit code, summary, input words)."""
    folder.mkdir(parents=True)
    data = np.random.default_rng(seed).integers(0, 256, words, dtype=np.uint8)
    data.tofile(folder / "input.bin")
    done = subprocess.run([str(program.path), str(folder / "input.bin"), str(folder), str(words),
                           str(gap), str(stall), str(seed), str(timeout)],
                          capture_output=True, text=True, cwd=design.hdl, timeout=60)
    return done.returncode, json.loads((folder / "summary.json").read_text()), data


def _tap(folder: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.fromfile(folder / f"tap{i}.bin", dtype=np.uint8),
            np.fromfile(folder / f"tap{i}.cycles", dtype=np.uint64))


def test_a_correct_chain_under_gaps_and_back_pressure_has_no_violation(built, tmp_path):
    design, program = built["good"]
    rc, summary, data = _run(design, program, tmp_path / "run", 3000, gap=30, stall=50)
    assert rc == 0 and not summary["stalled"]
    assert summary["axis_violations"] == 0 and summary["violations"] == []
    assert summary["axis_violations_by_tap"] == [0] * len(design.streams)
    assert summary["words"] == [3000] * len(design.streams) and summary["sent"] == 3000
    for i in range(len(design.streams)):   # a register slice passes every word on, in order
        words, cycles = _tap(tmp_path / "run", i)
        assert np.array_equal(words, data), i
        assert (np.diff(cycles.astype(np.int64)) > 0).all()
    # the input handshakes were spaced by gaps and by back-pressure, not at full rate
    assert summary["cycles"] > 3000 * 1.5


def test_the_harness_input_holds_its_word_until_the_handshake(built, tmp_path):
    """Mostly gaps, and back-pressure from the output: the input (tap 0) never drops TVALID
    nor changes TDATA, and every input word is taken once, in order."""
    design, program = built["good"]
    rc, summary, data = _run(design, program, tmp_path / "run", 500, gap=90, stall=50, seed=7)
    assert rc == 0 and summary["axis_violations_by_tap"][0] == 0
    assert summary["axis_violations"] == 0
    words, _ = _tap(tmp_path / "run", 0)
    assert np.array_equal(words, data)
    assert summary["words"][-1] == 500


def test_layers_that_break_axi_stream_are_named_and_the_run_still_ends(built, tmp_path):
    design, program = built["faulty"]
    rc, summary, data = _run(design, program, tmp_path / "run", 2000, gap=30, stall=50)
    assert rc == 0 and not summary["stalled"]   # a violation does not change the exit code
    assert summary["words"][-1] == 2000
    by_tap = summary["axis_violations_by_tap"]
    assert by_tap[2] > 0 and by_tap[4] > 0
    assert by_tap[0] == by_tap[1] == by_tap[3] == by_tap[5] == 0
    assert summary["axis_violations"] == sum(by_tap)
    first = summary["violations"]
    assert 0 < len(first) <= 16
    kinds = {2: "tvalid dropped", 4: "tdata changed"}
    assert all(v["kind"] == kinds[v["tap"]] for v in first), first
    assert [v["cycle"] for v in first] == sorted(v["cycle"] for v in first)
    # the stage that drops TVALID still hands every word on, once: its output is intact
    words, _ = _tap(tmp_path / "run", 2)
    assert np.array_equal(words, data)


def test_a_deadlock_is_exit_3_and_a_held_word_is_no_violation(built, tmp_path):
    design, program = built["good"]
    rc, summary, _ = _run(design, program, tmp_path / "run", 100, gap=0, stall=100,
                          timeout=200)
    assert rc == 3 and summary["stalled"]
    assert summary["words"][-1] == 0 and summary["axis_violations"] == 0


def test_the_layers_harness_checks_outputs_under_optional_back_pressure(built, tmp_path):
    design, program = built["faulty_layers"]
    rng = np.random.default_rng(3)
    inputs = []
    for run in ("ready", "stalled"):
        (tmp_path / run).mkdir()
        for i in range(len(design.instances)):
            inputs.append(rng.integers(0, 256, 400, dtype=np.uint8))
            inputs[-1].tofile(tmp_path / run / f"l{i}_in.bin")
    layers = len(design.instances)
    counts = ["400"] * layers
    # as simulate.py runs it (output always ready): nothing to violate
    ready = run_program(program, [str(tmp_path / "ready"), "1000", *counts], tmp_path / "ready",
                        design.hdl)
    assert ready["axis_violations"] == 0 and ready["axis_violations_by_layer"] == [0] * layers
    assert ready["words"] == [400] * layers
    # with back-pressure (trailing arguments: stall percent, seed)
    stalled = run_program(program, [str(tmp_path / "stalled"), "1000", *counts, "50", "2"],
                          tmp_path / "stalled", design.hdl)
    assert not stalled["stalled"] and stalled["words"] == [400] * layers
    assert stalled["cycles"] > ready["cycles"]
    by_layer = stalled["axis_violations_by_layer"]
    assert by_layer[1] > 0 and by_layer[3] > 0 and by_layer[0] == by_layer[2] == by_layer[4] == 0
    kinds = {1: "tvalid dropped", 3: "tdata changed"}
    assert all(v["kind"] == kinds[v["layer"]] for v in stalled["violations"])
    for i in (0, 1, 2):   # the good stages and the one that drops TVALID lose no word
        out = np.fromfile(tmp_path / "stalled" / f"l{i}_out.bin", dtype=np.uint8)
        assert np.array_equal(out, inputs[layers + i]), i
