"""`xnorflow export`: a trained run -> QONNX, verified against PyTorch on real test images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..export.run_export import (
    QONNX_FILE,
    STAGE,
    check_run_buildable,
    export_model,
    reference_for,
)
from ..export.verify import StageComparison
from ..outputs import claim_file, holds_folders
from ..train.runs import open_run


@dataclass
class ExportResult:
    qonnx: Path
    comparison: StageComparison | None

    def lines(self) -> list[str]:
        return [f"wrote {self.qonnx}"] + ([self.comparison.summary()] if self.comparison else [])

    @property
    def identical(self) -> bool:
        return self.comparison is None or self.comparison.identical


@holds_folders
def export_stage(run_path: str | Path, out: str | Path | None = None, verify: int = 1000,
                 data_dir: str | None = None, progress: bool = True) -> ExportResult:
    """Open the run, refuse a network FINN cannot build, load and check the reference images
    (the run's data, its image size), check the output paths, then export and verify. Nothing
    is written or recorded before every check has passed. Without ``verify`` an earlier
    export's verify.json is removed: it would describe another graph."""
    run = open_run(run_path)
    check_run_buildable(run)
    out = Path(out) if out else run.folder / QONNX_FILE
    model = run.model()
    reference = reference_for(run, model, verify, data_dir) if verify else None
    report = out.with_suffix(".verify.json")
    claim_file(out, STAGE, inputs=run.inputs())
    stale = report.exists()
    if verify or stale:
        claim_file(report, STAGE, inputs=run.inputs())  # refused if not export's own
    result = ExportResult(out, export_model(model, out, reference, progress))
    if not verify and stale:
        report.unlink()
    return result
