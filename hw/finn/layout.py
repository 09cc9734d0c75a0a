"""Where a build folder keeps what: one object instead of paths spelled out by every reader
(verification, C simulation, deploy, report). FINN's builder fixes most of these names
(``intermediate_models/``, ``report/``, ``build_dataflow.log``); xnorflow adds the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QONNX_FILE = "model.qonnx.onnx"                    # the exported network the build starts from
FOLDED_STEP = "step_minimize_bit_width_xnor_safe"  # the folded, bit-width-minimized partition
PARENT_FILE = "dataflow_parent.onnx"               # FINN's graph around the dataflow partition
FINAL_STEPS = ("step_hw_codegen", "step_generate_estimate_reports")  # the last saved graph


@dataclass(frozen=True)
class BuildLayout:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def qonnx(self) -> Path:
        return self.root / QONNX_FILE

    @property
    def models(self) -> Path:
        """FINN's graph after every step (``save_intermediate_models``)."""
        return self.root / "intermediate_models"

    def model(self, step: str) -> Path:
        return self.models / f"{step}.onnx"

    @property
    def folded(self) -> Path:
        return self.model(FOLDED_STEP)

    @property
    def parent(self) -> Path:
        return self.models / PARENT_FILE

    def final_model(self) -> Path | None:
        """The graph of the last step the build reached, or None if it reached none of them."""
        return next((self.model(s) for s in FINAL_STEPS if self.model(s).is_file()), None)

    @property
    def report_dir(self) -> Path:
        """FINN's estimate JSONs, xnorflow's folding search and plots."""
        return self.root / "report"

    def estimate(self, name: str) -> Path:
        """``report/estimate_<name>.json`` (layer_cycles, layer_resources, network_performance)."""
        return self.report_dir / f"estimate_{name}.json"

    @property
    def log(self) -> Path:
        return self.root / "build_dataflow.log"

    @property
    def codegen(self) -> Path:
        """FINN's per-layer HLS/RTL sources."""
        return self.root / "codegen"

    @property
    def cppsim(self) -> Path:
        """The C simulation's outputs."""
        return self.root / "cppsim"

    @property
    def bitfile_dir(self) -> Path:
        return self.root / "bitfile"

    @property
    def summary(self) -> Path:
        """The typed summary the report, deploy and explore read (``build_summary.json``)."""
        return self.root / "build_summary.json"
