"""``xnorflow build --backend rtl``: after FINN's build, the accelerator as RTL without vendor
tools: generated (:mod:`.design`), simulated cycle-accurately and checked word for word with
its FIFOs sized by simulation (:mod:`.simulate`), synthesized with yosys (:mod:`.synth`), and
given a Vivado project script that takes this RTL to a bitstream (:mod:`.vivado`).

Everything is written under ``<build>/rtl`` and summarized in ``report/rtl.json``, which the
build report reads; the FIFO depths also go to ``report/fifo_sizing.json`` in FINN's format.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...outputs import write_text
from ..finn.layout import BuildLayout
from .simulate import RtlSimResult, simulate_rtl
from .synth import RESOURCES, Synthesis, synthesize_all
from .tools import Verilator, Yosys

RTL_JSON = "rtl.json"


def check_tools() -> None:
    """Both tools present, before the build starts (each names its install step)."""
    Verilator.find()
    Yosys.find()


@dataclass
class RtlResult:
    simulation: RtlSimResult
    synthesis: list[Synthesis]       # every layer, then the design (last)
    vivado_script: Path
    seconds: float

    @property
    def identical(self) -> bool:
        return self.simulation.identical

    def as_dict(self, estimates: dict) -> dict:
        """For report/rtl.json and the build summary: FINN's per-layer estimates beside."""
        design = self.synthesis[-1]
        return {
            "simulation": self.simulation.as_dict(),
            "synthesis": {
                "tool": "yosys synth_xilinx (pre-place-and-route)",
                "design": design.counts, "seconds": sum(s.seconds for s in self.synthesis),
                "layers": [{"layer": s.name, **s.counts,
                            "finn_estimate": estimates.get(s.name, {})}
                           for s in self.synthesis[:-1]]},
            "vivado_script": str(self.vivado_script), "seconds": self.seconds,
            "identical": self.identical}

    def lines(self) -> list[str]:
        counts = self.synthesis[-1].counts
        return self.simulation.lines() + [
            "yosys synthesis (pre-place-and-route): " + ", ".join(
                f"{k} {counts[k]:,}" for k in RESOURCES)
            + f"; Vivado project script: {self.vivado_script}"]


def run_rtl_backend(build_dir: str | Path, fpga_part: str, board: str | None,
                    clock_mhz: float, images: np.ndarray, reference: np.ndarray,
                    labels: np.ndarray | None, progress: bool = True) -> RtlResult:
    from .vivado import write_project_script

    start = time.perf_counter()
    layout = BuildLayout(build_dir)
    design, simulation = simulate_rtl(build_dir, fpga_part, clock_mhz, images, reference,
                                      labels, progress)
    if progress:
        from ...progress import note

        note(f"rtl: synthesizing {len(design.instances)} layers and the design with yosys ...")
    synthesis = synthesize_all(design, fpga_part)
    script = write_project_script(design, fpga_part, board, clock_mhz)
    result = RtlResult(simulation, synthesis, script, time.perf_counter() - start)
    estimates = json.loads(layout.estimate("layer_resources").read_text())
    write_text(layout.report_dir / RTL_JSON, json.dumps(result.as_dict(estimates), indent=2,
                                                        default=str))
    write_text(layout.report_dir / "fifo_sizing.json", json.dumps(
        {name: {"depth": depth} for name, depth in simulation.fifo_depths.items()}, indent=2))
    return result
