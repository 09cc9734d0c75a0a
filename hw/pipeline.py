"""The build stage: trained run -> QONNX -> FINN dataflow design, verified stage by stage, with
a report that states the requested target, the reached frame rate and whether the design fits.

The build folder is xnorflow's own: new, empty, or an earlier build of xnorflow's that holds
nothing else (FINN's builder writes names xnorflow cannot list in advance, so anything foreign
there is refused rather than risked). A rebuild replaces what the earlier build wrote; Ctrl-C
removes what the interrupted build had written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..export.run_export import QONNX_FILE, Reference, export_model, reference_for
from ..export.verify import StageComparison
from ..outputs import OwnedFolder, check_folder, claim_folder
from ..train.runs import open_run
from .build import BuildOptions, VendorToolsMissing, run_build
from .chain import verify_build
from .report import fit_line, summarize, target_line, write_report

FOLDER_KIND = "build"
MISFIT_EXIT = 4


@dataclass
class BuildResult:
    out_dir: Path
    report: Path
    summary: dict
    comparisons: list[StageComparison]
    stopped: VendorToolsMissing | None   # the vendor-tools notice, if the build stopped there

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.comparisons)

    @property
    def misfit(self) -> list[str]:
        """What the design misses: its --target-fps, the device's resources, or both."""
        problems = []
        if self.summary["target_met"] is False:
            problems.append("target")
        if self.summary["fits_device"] is False:
            problems.append("resources")
        return problems

    def lines(self) -> list[str]:
        return ([c.summary() for c in self.comparisons]
                + [target_line(self.summary), fit_line(self.summary), f"report: {self.report}"])


def _build_into(folder: OwnedFolder, run, model, options: BuildOptions,
                reference: Reference | None, progress: bool) -> BuildResult:
    out_dir = folder.path.resolve()
    qonnx_check = export_model(model, run.in_features, out_dir / QONNX_FILE, reference, progress)
    stopped = None
    try:
        run_build(out_dir / QONNX_FILE, out_dir, options)
    except VendorToolsMissing as notice:
        stopped = notice
    comparisons = [qonnx_check] if qonnx_check else []
    if reference is not None:
        comparisons += verify_build(out_dir, reference.images, reference.logits,
                                    reference.labels, progress)
    summary = summarize(out_dir, options.clock_mhz, options.fpga_part, comparisons,
                        options.target_fps, options.board)
    report = write_report(out_dir, summary,
                          title=f"xnorflow build: {run.describe()} on {options.board}")
    return BuildResult(out_dir, report, summary, comparisons, stopped)


def build_stage(run_path: str | Path, out: str | Path | None, options: BuildOptions,
                verify: int = 200, data_dir: str | None = None,
                progress: bool = True) -> BuildResult:
    """`xnorflow build`: check options, run and output folder, then export, build and verify
    into ``out`` (default ``RUN/build-BOARD``)."""
    options.validate()
    run = open_run(run_path)
    out = Path(out) if out else run.folder / f"build-{options.board}"
    previous = check_folder(out, FOLDER_KIND, exclusive=True)
    model = run.model()
    reference = reference_for(run, model, verify, data_dir) if verify else None
    created = previous is None and not out.exists()
    folder = claim_folder(out, FOLDER_KIND, exclusive=True)
    folder.remove_own()  # the earlier build's outputs, all xnorflow's
    try:
        return _build_into(folder, run, model, options, reference, progress)
    except KeyboardInterrupt:
        folder.adopt_all("build")
        folder.remove_own()
        if created:
            folder.delete()
        raise
    finally:
        if folder.path.exists():
            folder.adopt_all("build")
