"""``xnorflow build --backend rtl``: after FINN's build, the accelerator as RTL without vendor
tools: generated (:mod:`.design`), simulated cycle-accurately and checked word for word with
its FIFOs sized by simulation (:mod:`.simulate`), synthesized with yosys (:mod:`.synth`), and
given a Vivado project script that takes this RTL to a bitstream (:mod:`.vivado`). With
``--place-route ecp5`` (the default for an ECP5 board) it is also placed and routed with
nextpnr (:mod:`.ecp5`): on an ECP5 board behind its UART link (:mod:`.board`), checked through
the simulated link with the host driver and written as a bitstream; for a PYNQ board on an
LFE5U-85F as an open stand-in.

Everything is written under ``<build>/rtl`` and summarized in ``report/rtl.json``; the build
report takes the :class:`RtlResult` itself. The FIFO depths also go to
``report/fifo_sizing.json`` in FINN's format.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UsageError
from ...outputs import write_text
from ..devices import ECP5_BOARDS, FINN_STAND_IN
from ..finn.layout import BuildLayout
from .board import BOARDS, LinkCheck
from .design import RtlBackendError
from .ecp5 import LFE5U_85F, PlaceRouteResult
from .options import RtlOptions
from .simulate import RtlSimResult, simulate_rtl
from .synth import RESOURCES, SynthesisResult, synthesize
from .tools import NextpnrEcp5, Verilator, Yosys

RTL_JSON = "rtl.json"
# the Vivado script builds a Zynq-7000 block design (processing_system7, 7-series cells); an
# ECP5 board gets the open flow instead
SUPPORTED_PARTS = ("xc7z", "LFE5U")
LINK_FRAMES = 50        # test images sent through the simulated UART link of an ECP5 board
STAND_IN_PINS = 365     # user I/O of the stand-in LFE5U-85F in its CABGA381 package


def check_tools(options: RtlOptions, fpga_part: str, board: str) -> None:
    """The board and the tools, before the build starts (each names its remedy)."""
    if not fpga_part.startswith(SUPPORTED_PARTS):
        raise UsageError(f"--backend rtl serves Zynq-7000 boards (Pynq-Z1, Pynq-Z2): its Vivado "
                         f"script builds a processing_system7 block design and its synthesis "
                         f"maps to 7-series cells; {board} ({fpga_part}) is a Zynq UltraScale+. "
                         f"Build it without --backend rtl (FINN's HLS flow serves it).")
    Verilator.find()
    if options.synth != "none":
        Yosys.find()
    if options.place_route_on(board in ECP5_BOARDS) == "ecp5":
        Yosys.find()
        NextpnrEcp5.find()


@dataclass
class RtlResult:
    simulation: RtlSimResult
    synthesis: SynthesisResult
    vivado_script: Path | None      # None for an ECP5 board (no Vivado flow)
    seconds: float
    finn_estimates: dict            # FINN's per-layer resource estimates, by layer
    place_route: PlaceRouteResult | None = None
    link: LinkCheck | None = None   # an ECP5 board's simulated UART link
    board_files: dict | None = None   # an ECP5 board's top, pins, bitstream, link settings
    clock_mhz: float = 100.0

    @property
    def identical(self) -> bool:
        return self.simulation.identical and (self.link is None or self.link.passed)

    @property
    def timing_met(self) -> bool | None:
        """Whether the post-route Fmax reaches the clock (None: not placed and routed)."""
        return None if self.place_route is None else self.place_route.met

    def as_dict(self) -> dict:
        """report/rtl.json and the build summary."""
        synthesis = self.synthesis.as_dict()
        for layer in synthesis["layers"]:
            layer["finn_estimate"] = self.finn_estimates.get(layer["layer"], {})
        return {"simulation": self.simulation.as_dict(), "synthesis": synthesis,
                "vivado_script": str(self.vivado_script) if self.vivado_script else None,
                "place_route": self.place_route.as_dict() if self.place_route else None,
                "link": self.link.__dict__ if self.link else None,
                "board": self.board_files, "seconds": self.seconds,
                "identical": self.identical}

    def lines(self) -> list[str]:
        lines = self.simulation.lines()
        synthesis = self.synthesis
        if synthesis.ran:
            counts = synthesis.design
            lines.append(f"yosys synthesis ({synthesis.level}, pre-place-and-route): "
                         + ", ".join(f"{k} {counts[k]:,}" for k in RESOURCES)
                         + f"; {synthesis.modules} distinct modules, {synthesis.reused} from "
                           f"the cache, {synthesis.runs} yosys runs, {synthesis.seconds:.0f} s")
            depth = synthesis.depth_line(self.clock_mhz)
            if depth and self.place_route is None:   # measured instead when placed and routed
                lines.append(depth)
        else:
            lines.append("yosys synthesis: not run (--synth none); the fit uses FINN's estimates")
        if self.place_route is not None:
            lines.append(self.place_route.line())
        if self.link is not None:
            lines.append(self.link.line(self.board_files["board"], self.board_files["baud"]))
        if self.board_files is not None and self.board_files.get("bitstream"):
            lines.append(f"bitstream for the {self.board_files['board']}: "
                         f"{self.board_files['bitstream']} (load it with openFPGALoader -b "
                         f"{self.board_files['board'].lower()} FILE; the link settings: "
                         f"{self.board_files['settings']})")
        if self.vivado_script is not None:
            lines.append(f"Vivado project script: {self.vivado_script}")
        return lines


def run_rtl_backend(build_dir: str | Path, fpga_part: str, board: str | None,
                    clock_mhz: float, images: np.ndarray, reference: np.ndarray,
                    labels: np.ndarray | None, progress: bool = True,
                    options: RtlOptions | None = None) -> RtlResult:
    from ...progress import note
    from .vivado import write_project_script

    options = options or RtlOptions()
    start = time.perf_counter()
    say = note if progress else (lambda line: None)
    layout = BuildLayout(build_dir)
    ecp5_board = BOARDS.get(board)
    finn_part = FINN_STAND_IN if ecp5_board else fpga_part   # what FINN's layers were made for
    design, simulation = simulate_rtl(build_dir, finn_part, clock_mhz, images, reference,
                                      labels, progress, options)
    synthesis = synthesize(design, finn_part, options.synth, say=say)
    script = None if ecp5_board else write_project_script(design, fpga_part, board, clock_mhz)
    estimates = json.loads(layout.estimate("layer_resources").read_text())
    result = RtlResult(simulation, synthesis, script, time.perf_counter() - start, estimates,
                       clock_mhz=clock_mhz)
    if options.place_route_on(ecp5_board is not None) == "ecp5" and simulation.identical:
        _place_and_route(result, build_dir, design, ecp5_board, clock_mhz, images, options, say)
        result.seconds = time.perf_counter() - start
    write_text(layout.report_dir / RTL_JSON, json.dumps(result.as_dict(), indent=2,
                                                        default=str))
    write_text(layout.report_dir / "fifo_sizing.json", json.dumps(
        {name: {"depth": depth, "occupancy": simulation.fifo_occupancy.get(name)}
         for name, depth in simulation.fifo_depths.items()}, indent=2))
    return result


def _place_and_route(result: RtlResult, build_dir: Path, design, board, clock_mhz: float,
                     images: np.ndarray, options: RtlOptions, say) -> None:
    """nextpnr-ecp5: an ECP5 board's top (after its UART link passed the simulation) to its
    bitstream, or the accelerator alone on the stand-in LFE5U-85F."""
    from .board import simulate_link, write_board_files
    from .ecp5 import place_and_route, synthesize_netlist
    from .simulate import expected_words
    from .stitch import TOP

    layers = tuple(inst.name for inst in design.instances)
    if board is None:
        # the accelerator alone: its stream ports become pins (2 handshakes each, clock, reset)
        pins = design.streams[0].bits + design.streams[-1].bits + 6
        if pins > STAND_IN_PINS:
            raise RtlBackendError(
                f"--place-route ecp5 places the accelerator alone on the {LFE5U_85F.name}, "
                f"every stream bit a pin: its {design.streams[0].bits}-bit input and "
                f"{design.streams[-1].bits}-bit output need {pins} pins, the package has "
                f"{STAND_IN_PINS}. Build it for an ECP5 board instead (--board ULX3S: the "
                f"streams behind its UART link), or without --place-route.")
        netlist, seconds = synthesize_netlist(design.hdl, design.files, TOP, say)
        result.place_route = place_and_route(netlist, LFE5U_85F, clock_mhz, say, layers=layers)
        result.place_route.seconds["synthesis"] = seconds
        return
    files = write_board_files(design, board, clock_mhz, options.baud)
    sample = images[:LINK_FRAMES]
    expected = expected_words(Path(build_dir), design, sample)
    say(f"rtl: {board.name}: the host driver sends {len(sample)} images through the simulated "
        f"UART link ...")
    result.link = simulate_link(files, expected.words[0].reshape(len(sample), -1),
                                expected.words[-1].reshape(len(sample), -1))
    settings = design.folder / f"{board.name.lower()}.json"
    link = {"board": board.name, "baud": files.baud, "clock_mhz": files.clock_mhz,
            "clks_per_bit": files.clks_per_bit,
            "in_frame_bytes": int(expected.words[0][0].size),
            "out_frame_bytes": int(expected.words[-1][0].size),
            "serial": board.serial}
    write_text(settings, json.dumps(link, indent=2))
    result.board_files = {**link, "top": str(files.top), "pins": str(files.pins),
                          "settings": str(settings), "bitstream": None}
    if not result.link.passed:
        return
    netlist, seconds = synthesize_netlist(design.hdl, files.files, files.top, say,
                                          primitives=(files.pll,))
    bitstream = design.folder / f"{files.top}.bit"
    result.place_route = place_and_route(netlist, board.part, files.clock_mhz, say,
                                         pins=files.pins, bitstream=bitstream, layers=layers)
    result.place_route.seconds["synthesis"] = seconds
    result.board_files["bitstream"] = str(bitstream)
