"""``xnorflow build --backend rtl``: after FINN's build, the accelerator as RTL without vendor
tools: generated (:mod:`.design`), simulated cycle-accurately and checked word for word with
its FIFOs sized by simulation (:mod:`.simulate`), synthesized with yosys (:mod:`.synth`), and
given a Vivado project script that takes this RTL to a bitstream (:mod:`.vivado`).

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
from ..finn.layout import BuildLayout
from .options import RtlOptions
from .simulate import RtlSimResult, simulate_rtl
from .synth import RESOURCES, SynthesisResult, synthesize
from .tools import Verilator, Yosys

RTL_JSON = "rtl.json"
# the Vivado script builds a Zynq-7000 block design (processing_system7, 7-series cells)
SUPPORTED_PARTS = ("xc7z",)


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


@dataclass
class RtlResult:
    simulation: RtlSimResult
    synthesis: SynthesisResult
    vivado_script: Path
    seconds: float
    finn_estimates: dict            # FINN's per-layer resource estimates, by layer

    @property
    def identical(self) -> bool:
        return self.simulation.identical

    def as_dict(self) -> dict:
        """report/rtl.json and the build summary."""
        synthesis = self.synthesis.as_dict()
        for layer in synthesis["layers"]:
            layer["finn_estimate"] = self.finn_estimates.get(layer["layer"], {})
        return {"simulation": self.simulation.as_dict(), "synthesis": synthesis,
                "vivado_script": str(self.vivado_script), "seconds": self.seconds,
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
        else:
            lines.append("yosys synthesis: not run (--synth none); the fit uses FINN's estimates")
        return lines + [f"Vivado project script: {self.vivado_script}"]


def run_rtl_backend(build_dir: str | Path, fpga_part: str, board: str | None,
                    clock_mhz: float, images: np.ndarray, reference: np.ndarray,
                    labels: np.ndarray | None, progress: bool = True,
                    options: RtlOptions | None = None) -> RtlResult:
    from ...progress import note
    from .vivado import write_project_script

    options = options or RtlOptions()
    start = time.perf_counter()
    layout = BuildLayout(build_dir)
    design, simulation = simulate_rtl(build_dir, fpga_part, clock_mhz, images, reference,
                                      labels, progress, options)
    synthesis = synthesize(design, fpga_part, options.synth,
                           say=note if progress else (lambda line: None))
    script = write_project_script(design, fpga_part, board, clock_mhz)
    estimates = json.loads(layout.estimate("layer_resources").read_text())
    result = RtlResult(simulation, synthesis, script, time.perf_counter() - start, estimates)
    write_text(layout.report_dir / RTL_JSON, json.dumps(result.as_dict(), indent=2,
                                                        default=str))
    write_text(layout.report_dir / "fifo_sizing.json", json.dumps(
        {name: {"depth": depth, "occupancy": simulation.fifo_occupancy.get(name)}
         for name, depth in simulation.fifo_depths.items()}, indent=2))
    return result
