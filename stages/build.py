"""The build stage: trained run -> QONNX -> FINN dataflow design, verified stage by stage, with
a report that states the requested target, the reached frame rate and whether the design fits.

The build folder is xnorflow's own: new, empty, or an earlier build of xnorflow's that holds
nothing else (FINN's builder writes names xnorflow cannot list in advance, so anything foreign
there is refused rather than risked). A rebuild replaces what the earlier build wrote once it
is complete: if it fails or is interrupted, the earlier build is put back whole (a failed
attempt's log is kept beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..export.run_export import Reference, check_run_buildable, export_model, reference_for
from ..export.verify import StageComparison
from ..hw.finn.build import run_build
from ..hw.finn.layout import BuildLayout
from ..hw.finn.options import BuildOptions, VendorToolsMissing
from ..hw.finn.report import (
    BuildSummary,
    fit_line,
    output_line,
    summarize,
    target_line,
    write_report,
)
from ..hw.finn.verify import verify_build
from ..hw.sim.cppsim import CppSimError, CppSimResult, Toolchain, simulate_build
from ..outputs import OwnedFolder, check_folder, claim_folder, holds_folders
from ..train.runs import open_run

FOLDER_KIND = "build"
MISFIT_EXIT = 4


@dataclass
class BuildResult:
    out_dir: Path
    report: Path
    summary: BuildSummary
    comparisons: list[StageComparison]
    stopped: VendorToolsMissing | None   # the vendor-tools notice, if the build stopped there
    cppsim: CppSimResult | None = None
    rtl: object | None = None            # xnorflow.hw.rtl.backend.RtlResult (--backend rtl)

    @property
    def identical(self) -> bool:
        return (all(c.identical for c in self.comparisons)
                and (self.cppsim is None or self.cppsim.identical)
                and (self.rtl is None or self.rtl.identical))

    @property
    def misfit(self) -> list[str]:
        """What the design misses: its --target-fps, the device's resources, or both."""
        problems = []
        if self.summary.target_met is False:
            problems.append("target")
        if self.summary.fits_device is False:
            problems.append("resources")
        return problems

    def warnings(self) -> list[str]:
        """What the command says on stderr: a missed target or board, a stop before Vivado."""
        lines = []
        if self.misfit:
            what = {"target": "misses its --target-fps", "resources": "does not fit the board"}
            lines.append(f"warning: the design {' and '.join(what[m] for m in self.misfit)}; "
                         f"lower --target-fps, choose a larger --board, or pass --allow-misfit "
                         f"to accept it")
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return lines

    def exit_code(self, allow_misfit: bool = False) -> int:
        """1 if a stage differs from PyTorch, 3 if the build stopped before Vivado, 4 if the
        design misses its target or board (unless allowed), else 0."""
        if not self.identical:
            return 1
        if self.stopped:
            return self.stopped.exit_code
        return MISFIT_EXIT if self.misfit and not allow_misfit else 0

    def lines(self) -> list[str]:
        return ([c.summary() for c in self.comparisons]
                + ([self.cppsim.summary()] if self.cppsim else [])
                + (self.rtl.lines() if self.rtl else [])
                + [output_line(self.summary), target_line(self.summary), fit_line(self.summary),
                   f"report: {self.report}"])


def _build_into(folder: OwnedFolder, run, model, options: BuildOptions,
                reference: Reference | None, verify: int, cppsim: int,
                toolchain: Toolchain | None, progress: bool, rtlsim: int = 0) -> BuildResult:
    out_dir = folder.path.resolve()
    checked = reference.first(verify) if verify else None
    layout = BuildLayout(out_dir)
    qonnx_check = export_model(model, layout.qonnx, checked, progress)
    stopped = None
    try:
        run_build(layout.qonnx, out_dir, options, quiet=not progress)
    except VendorToolsMissing as notice:
        stopped = notice
    comparisons = [qonnx_check] if qonnx_check else []
    if checked is not None:
        comparisons += verify_build(out_dir, checked.images, checked.logits, checked.labels,
                                    progress)
    simulated, failed = None, None
    if cppsim:
        images = reference.first(cppsim)
        try:
            simulated = simulate_build(out_dir, images.images, images.logits, images.labels,
                                       toolchain, progress=progress)
        except CppSimError as err:  # the build is done: keep it and its report
            failed = err
    rtl = None
    if rtlsim and not failed:
        from ..hw.rtl.backend import run_rtl_backend
        from ..hw.rtl.design import RtlBackendError

        images = reference.first(rtlsim)
        try:
            rtl = run_rtl_backend(out_dir, options.fpga_part, options.board, options.clock_mhz,
                                  images.images, images.logits, images.labels, progress)
        except RtlBackendError as err:  # the build is done: keep it and its report
            failed = err
    summary = summarize(out_dir, options.clock_mhz, options.fpga_part, comparisons,
                        options.target_fps, options.board,
                        simulated.as_dict() if simulated else None,
                        run=str(run.folder.resolve()),  # deploy takes its images from the run
                        rtl=rtl_summary(out_dir) if rtl else None)
    report = write_report(out_dir, summary,
                          title=f"xnorflow build: {run.describe()} on {options.board}")
    if failed:
        raise type(failed)(f"{failed}\nThe build and its report ({report}) are kept.")
    return BuildResult(out_dir, report, summary, comparisons, stopped, simulated, rtl)


def rtl_summary(out_dir: Path) -> dict:
    """What the report shows of the RTL backend (report/rtl.json)."""
    import json

    from ..hw.rtl.backend import RTL_JSON

    return json.loads((BuildLayout(out_dir).report_dir / RTL_JSON).read_text())


@holds_folders
def build_stage(run_path: str | Path, out: str | Path | None, options: BuildOptions,
                verify: int = 200, data_dir: str | None = None, progress: bool = True,
                cppsim: int = 0, finn_hlslib: str | None = None,
                rtlsim: int = 0) -> BuildResult:
    """`xnorflow build`: check options, run, output folder and (with ``cppsim``) the C
    simulation's tools (with ``rtlsim``, Verilator and yosys), then export, build and verify
    into ``out`` (default ``RUN/build-BOARD``): FINN's Python execution of every stage on the
    first ``verify`` test images, the C simulation of every generated layer on the first
    ``cppsim``, the RTL design (``--backend rtl``) simulated on the first ``rtlsim`` and
    synthesized."""
    options.validate()
    run = open_run(run_path)
    check_run_buildable(run)  # a network FINN cannot build: refused before any folder is made
    out = Path(out) if out else run.folder / f"build-{options.board}"
    previous = check_folder(out, FOLDER_KIND, exclusive=True)
    toolchain = Toolchain.find(finn_hlslib) if cppsim else None
    if rtlsim:
        from ..hw.rtl.backend import check_tools

        check_tools()   # a missing tool is named before the build starts
    model = run.model()
    images = max(verify, cppsim, rtlsim)
    reference = reference_for(run, model, images, data_dir) if images else None
    created = previous is None and not out.exists()
    folder = claim_folder(out, FOLDER_KIND, exclusive=True)
    # replaces the earlier build (all xnorflow's) only once the new one is complete
    with folder.rewriting(FOLDER_KIND, created, failure_logs=(BuildLayout(out).log.name,)):
        return _build_into(folder, run, model, options, reference, verify, cppsim, toolchain,
                           progress, rtlsim)
