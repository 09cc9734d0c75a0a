"""The open ECP5 flow (issue #38): the UART host link simulated with the host driver, the ULX3S
as a build target (nextpnr-ecp5 place and route, Fmax against the clock, utilisation, the
critical path by layer, a bitstream, the cache), the deploy bundle driven through the
simulated board, and what is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xnorflow.cli import main


# ----------------------------------------------------------------------- the UART link alone
def _tiny_run(tmp_path: Path) -> Path:
    run = tmp_path / "mlp"
    assert main(["train", "--model", "mlp", "--hidden", "16", "--epochs", "2", "--out",
                 str(run), "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def ulx3s_build(tmp_path_factory):
    """A tiny MLP (64-16-10 on digits) built for the ULX3S: every stage of the open flow."""
    folder = tmp_path_factory.mktemp("ulx3s")
    run = _tiny_run(folder)
    out = folder / "build"
    code = main(["build", str(run), "--out", str(out), "--board", "ULX3S", "--backend", "rtl",
                 "--rtlsim", "30", "--verify", "30", "--synth", "none", "--no-progress"])
    return out, code


def test_the_ulx3s_build_places_routes_and_writes_a_bitstream(ulx3s_build):
    out, code = ulx3s_build
    rtl = json.loads((out / "report" / "rtl.json").read_text())
    placed = rtl["place_route"]
    assert placed["part"] == "LFE5U-85F-6BG381C" and placed["clock_mhz"] == 100
    assert placed["fmax_mhz"] > 0 and placed["met"] == (placed["fmax_mhz"] >= 100)
    assert code == (0 if placed["met"] else 4)
    assert placed["utilisation"]["LUT4"]["used"] > 0
    assert placed["utilisation"]["EBR"]["available"] == 208
    path = placed["critical_path"]
    assert path["ns"] > 0 and path["start"] and path["end"]
    bitstream = Path(rtl["board"]["bitstream"])
    assert bitstream.is_file() and bitstream.stat().st_size > 10_000
    # the simulated link: the host driver against the link and accelerator
    link = rtl["link"]
    assert link["frames"] == 30 and link["identical"] == 30 and link["overruns"] == 0
    # the fit judgement is the ECP5's own utilisation
    summary = json.loads((out / "build_summary.json").read_text())
    assert summary["fit_basis"] == "place and route"
    report = (out / "build_report.md").read_text()
    assert "nextpnr place and route on the board's ECP5" in report
    assert "post-route Fmax" in report
    pins = Path(rtl["board"]["pins"]).read_text()
    assert 'LOCATE COMP "uart_rx" SITE "M1"' in pins and 'SITE "G2"' in pins


def test_a_rebuild_reuses_the_netlist_and_the_place_and_route(ulx3s_build, tmp_path, capsys):
    out, _ = ulx3s_build
    run = json.loads((out / "build_summary.json").read_text())["run"]
    again = tmp_path / "again"
    main(["build", run, "--out", str(again), "--board", "ULX3S", "--backend", "rtl",
          "--rtlsim", "30", "--verify", "30", "--synth", "none"])
    said = capsys.readouterr().out     # progress lines (tqdm.write)
    assert "ECP5 netlist of xnorflow_ulx3s reused from the cache" in said
    first = json.loads((out / "report" / "rtl.json").read_text())["place_route"]
    second = json.loads((again / "report" / "rtl.json").read_text())["place_route"]
    assert second["reused"] and second["fmax_mhz"] == first["fmax_mhz"]
    assert Path(second["bitstream"]).read_bytes() == Path(first["bitstream"]).read_bytes()


def test_a_netlist_larger_than_the_chip_is_refused_before_nextpnr(ulx3s_build, tmp_path):
    """What the netlist needs, counted from yosys' JSON, agrees with nextpnr's count of the same
    netlist (block RAMs and multipliers exactly, LUT4s and FFs no more than nextpnr's); a
    netlist asking for more EBRs than the chip has is refused with the numbers, no nextpnr run."""
    from xnorflow.hw.rtl.design import RtlBackendError
    from xnorflow.hw.rtl.ecp5 import LFE5U_85F, netlist_needs, place_and_route

    out, _ = ulx3s_build
    placed = json.loads((out / "report" / "rtl.json").read_text())["place_route"]
    netlist = Path(placed["folder"]) / "netlist.json"
    needs = netlist_needs(netlist)
    used = {k: v["used"] for k, v in placed["utilisation"].items()}
    assert needs["EBR"] == used["EBR"] and needs["DSP"] == used["DSP"]
    assert 0 < needs["LUT4"] <= used["LUT4"] and 0 < needs["FF"] <= used["FF"]
    # the same netlist with 209 block RAMs: one more than the LFE5U-85F has
    big = json.loads(netlist.read_text())
    top = next(m for m in big["modules"].values() if int(m["attributes"].get("top", "0"), 2))
    top["cells"].update({f"rom{i}": {"type": "DP16KD", "connections": {}}
                         for i in range(209 - needs["EBR"])})
    (tmp_path / "big.json").write_text(json.dumps(big))
    with pytest.raises(RtlBackendError, match="needs 209 EBR of its 208. Fold it further"):
        place_and_route(tmp_path / "big.json", LFE5U_85F, 100.0, print)
    assert not list(tmp_path.glob("*.log"))


def test_the_bundle_of_an_ecp5_build_runs_through_the_simulated_board(ulx3s_build, tmp_path):
    out, _ = ulx3s_build
    bundle = tmp_path / "bundle"
    assert main(["deploy", str(out), "--out", str(bundle), "--images", "60"]) == 0
    names = {p.name for p in bundle.iterdir()}
    assert {"validate.py", "uart_host.py", "link.json", "inputs_packed.npy",
            "xnorflow_ulx3s.bit", "README.md"} <= names
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["simulated_link"] == "60/60 identical"
    # the bundle's validate.py on a port that is not there: a clear error, no traceback
    done = subprocess.run([sys.executable, str(bundle / "validate.py"), "--port",
                           str(tmp_path / "no-such-port")], capture_output=True, text=True)
    assert done.returncode == 1 and "cannot open the serial port" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_link_resynchronizes_after_garbage_with_a_break(ulx3s_build):
    """A host that sent half a frame (or anything) before: the driver's break resets the link
    and the accelerator, and every frame after it is right."""
    from xnorflow.hw.rtl.board import ULX3S, simulate_link, write_board_files
    from xnorflow.hw.rtl.design import Design
    from xnorflow.hw.rtl.simulate import expected_words
    from xnorflow.hw.rtl.uart_host import SimulatedPort, UartAccelerator

    out, _ = ulx3s_build
    design = Design.load(out / "rtl")
    rng = np.random.default_rng(3)
    images = rng.choice([-1.0, 1.0], size=(12, 64)).astype(np.float32)
    expected = expected_words(out, design, images)
    inputs = expected.words[0].reshape(12, -1)
    outputs = expected.words[-1].reshape(12, -1)
    files = write_board_files(design, ULX3S, 100.0, 115_200)
    assert simulate_link(files, inputs, outputs).passed   # compiles (or reuses) the program
    from xnorflow.hw.rtl.board import UART_TB
    from xnorflow.hw.rtl.harness import SOURCES, Harness
    from xnorflow.hw.rtl.verilate import compile_program

    header = (f'#include "V{UART_TB}.h"\nusing TB = V{UART_TB};\n#define CLKS_PER_BIT 8\n')
    program = compile_program(files.simulation, UART_TB,
                              Harness(SOURCES / "uart_link.cpp", ("uart_link.h", header)),
                              "uart")
    with SimulatedPort(program.path, files.simulation.hdl) as port:
        port.write(bytes(inputs[0][:3]))            # a partial frame: the link is mid-word
        port.read(1)                                # (nothing comes back)
        accelerator = UartAccelerator(port, inputs.shape[1], outputs.shape[1], "simulation")
        assert np.array_equal(accelerator.run(inputs), outputs)


def test_an_ecp5_board_needs_the_rtl_backend(tmp_path, capsys):
    run = _tiny_run(tmp_path)
    assert main(["build", str(run), "--board", "ULX3S"]) == 2
    err = capsys.readouterr().err
    assert "ECP5 board" in err and "--backend rtl" in err
    assert main(["build", str(run), "--board", "ULX3S", "--backend", "rtl", "--until",
                 "bitfile"]) == 2
    assert "--place-route" in capsys.readouterr().err
    assert main(["build", str(run), "--backend", "rtl", "--baud", "9600"]) == 2
    assert "--baud sets an ECP5 board's UART link" in capsys.readouterr().err
    assert not (run / "build-ULX3S").exists() and not (run / "build-Pynq-Z1").exists()


def test_nextpnr_report_names_the_layers_of_the_critical_path():
    from xnorflow.hw.rtl.ecp5 import LFE5U_85F, read_report

    step = {"delay": 0.5, "type": "clk-to-q",
            "from": {"cell": "MVAU_hls_1.impl.waddr_TRELLIS_FF_Q"},
            "to": {"cell": "MVAU_hls_1.impl.waddr_TRELLIS_FF_Q"}}
    route = {"delay": 4.5, "type": "routing", "from": {"cell": "a"},
             "to": {"cell": "StreamingFIFO_rtl_3.fifo.x"}}
    report = {"fmax": {"clk_in": {"achieved": 400.0, "constraint": 25.0},
                       "$glbnet$clk": {"achieved": 97.5, "constraint": 100.0}},
              "utilization": {"TRELLIS_COMB": {"used": 10, "available": 83640},
                              "DP16KD": {"used": 2, "available": 208}},
              "critical_paths": [{"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk",
                                  "path": [step, route]}]}
    result = read_report(report, LFE5U_85F, 100.0, ("MVAU_hls_1", "StreamingFIFO_rtl_3"),
                         None, {}, False, Path("."))
    assert result.fmax_mhz == 97.5 and result.clock_mhz == 100.0 and not result.met
    assert (result.critical_path.start, result.critical_path.end) == ("MVAU_hls_1",
                                                                      "StreamingFIFO_rtl_3")
    assert result.critical_path.routing_ns == 4.5 and result.critical_path.ns == 5.0
    assert result.utilisation["EBR"] == {"used": 2, "available": 208}
    assert "MISSES the 100 MHz clock" in result.line()


def test_an_accelerator_with_more_stream_bits_than_pins_is_refused_before_any_tool():
    """LFC's 784-bit input placed alone on the stand-in would need 798 pins of 365: said,
    with the way out, before yosys or nextpnr run."""
    from xnorflow.hw.rtl.backend import _place_and_route
    from xnorflow.hw.rtl.design import Design, RtlBackendError
    from xnorflow.hw.rtl.stitch import Stream

    design = Design(Path("."), [], [Stream(0, "x", 784, None, "MVAU_hls_0"),
                                    Stream(1, "y", 8, "MVAU_hls_0", None)], [], {}, Path("."))
    with pytest.raises(RtlBackendError, match="need 798 pins, the package has 365.*ULX3S"):
        _place_and_route(None, Path("."), design, None, 100.0, None, None, print)
