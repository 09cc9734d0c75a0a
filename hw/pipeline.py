"""`xnorflow build`: trained run -> QONNX -> FINN dataflow design, verified stage by stage."""

from __future__ import annotations

from pathlib import Path

from ..export.run_export import TrainedRun, export_run
from ..export.verify import StageComparison
from .build import BuildOptions, VendorToolsMissing, fpga_part, run_build
from .chain import verify_build
from .report import summarize, write_report

QONNX_FILE = "model.qonnx.onnx"


def build_run(run: TrainedRun, out_dir: str | Path, options: BuildOptions,
              verify_images: int = 200, data_dir: str | None = None, progress: bool = True,
              ) -> tuple[Path, list[StageComparison], VendorToolsMissing | None]:
    """Export, build and verify; returns the report path, the chain comparisons, and the
    vendor-tools notice if the build stopped before the steps that need Vivado."""
    out_dir = Path(out_dir).resolve()
    options.validate()  # bad options fail before any work
    part = fpga_part(options.board)
    reference = run.reference(verify_images, data_dir) if verify_images else None
    qonnx_check = export_run(run, out_dir / QONNX_FILE, reference, progress)
    stopped = None
    try:
        run_build(out_dir / QONNX_FILE, out_dir, options)
    except VendorToolsMissing as notice:
        stopped = notice
    comparisons = [qonnx_check] if qonnx_check else []
    if reference is not None:
        comparisons += verify_build(out_dir, reference.images, reference.logits,
                                    reference.labels, progress)
    report = write_report(out_dir, summarize(out_dir, options.clock_mhz, part, comparisons),
                          title=f"xnorflow build: {run.description} on {options.board}")
    return report, comparisons, stopped
