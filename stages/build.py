"""The build stage: trained run -> QONNX -> FINN dataflow design, verified stage by stage, with
a report that states the requested target, the reached frame rate and whether the design fits.

The build folder is xnorflow's own: new, empty, or an earlier build of xnorflow's that holds
nothing else (FINN's builder writes names xnorflow cannot list in advance, so anything foreign
there is refused rather than risked). A rebuild replaces what the earlier build wrote once it
is complete: if it fails or is interrupted, the earlier build is put back whole (a failed
attempt's log is kept beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
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
    notes: list[str] = field(default_factory=list)   # e.g. fewer test images than asked

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
        if self.rtl is not None and self.rtl.timing_met is False:
            problems.append("clock")
        return problems

    def warnings(self) -> list[str]:
        """What the command says on stderr: a missed target or board, a stop before Vivado."""
        lines = []
        if self.misfit:
            what = {"target": "misses its --target-fps", "resources": "does not fit the board",
                    "clock": "misses its clock after place and route"}
            lines.append(f"warning: the design {' and '.join(what[m] for m in self.misfit)}; "
                         f"lower --target-fps or --clock-mhz, choose a larger --board, or pass "
                         f"--allow-misfit to accept it")
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
        return (self.notes + [c.summary() for c in self.comparisons]
                + ([self.cppsim.summary()] if self.cppsim else [])
                + (self.rtl.lines() if self.rtl else [])
                + [output_line(self.summary), target_line(self.summary), fit_line(self.summary),
                   f"report: {self.report}"])


def _build_into(folder: OwnedFolder, run, model, options: BuildOptions,
                reference: Reference | None, verify: int, cppsim: int,
                toolchain: Toolchain | None, progress: bool, rtl_options=None) -> BuildResult:
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
    if rtl_options is not None and not failed:
        from ..hw.rtl.backend import run_rtl_backend
        from ..hw.rtl.design import RtlBackendError

        images = reference.first(rtl_options.rtlsim)
        try:
            rtl = run_rtl_backend(out_dir, options.fpga_part, options.board, options.clock_mhz,
                                  images.images, images.logits, images.labels, progress,
                                  rtl_options)
        except RtlBackendError as err:  # the build is done: keep it and its report
            failed = err
    summary = summarize(out_dir, options.clock_mhz, options.fpga_part, comparisons,
                        options.target_fps, options.board,
                        simulated.as_dict() if simulated else None,
                        run=str(run.folder.resolve()),  # deploy takes its images from the run
                        rtl=rtl.as_dict() if rtl else None,
                        sample=reference.describe_sample() if reference is not None else None)
    report = write_report(out_dir, summary,
                          title=f"xnorflow build: {run.describe()} on {options.board}")
    if failed:
        raise type(failed)(f"{failed}\nThe build and its report ({report}) are kept.")
    return BuildResult(out_dir, report, summary, comparisons, stopped, simulated, rtl)


@holds_folders
def build_stage(run_path: str | Path, out: str | Path | None, options: BuildOptions,
                verify: int = 200, data_dir: str | None = None, progress: bool = True,
                cppsim: int = 0, finn_hlslib: str | None = None,
                rtl_options=None) -> BuildResult:
    """`xnorflow build`: check options, run, output folder and (with ``cppsim``) the C
    simulation's tools (with ``rtlsim``, Verilator and yosys), then export, build and verify
    into ``out`` (default ``RUN/build-BOARD``): FINN's Python execution of every stage on
    ``verify`` test images, the C simulation of every generated layer on ``cppsim``, the RTL
    design (``--backend rtl``, ``rtl_options``: an
    :class:`~xnorflow.hw.rtl.options.RtlOptions`) simulated and synthesized. The images are a
    seeded sample of the test set that holds every class; each check takes the first N of it."""
    options.validate()
    if options.is_ecp5 and rtl_options is None:
        raise UsageError(f"{options.board} is an ECP5 board: FINN's flow (HLS, Vivado) does not "
                         f"build for it; add --backend rtl (Verilator, yosys and nextpnr-ecp5 "
                         f"build it, with its bitstream)")
    run = open_run(run_path)
    check_run_buildable(run)  # a network FINN cannot build: refused before any folder is made
    out = Path(out) if out else run.folder / f"build-{options.board}"
    previous = check_folder(out, FOLDER_KIND, exclusive=True)
    toolchain = Toolchain.find(finn_hlslib) if cppsim else None
    rtlsim = rtl_options.rtlsim if rtl_options is not None else 0
    if rtl_options is not None:
        from ..hw.rtl.backend import check_tools

        check_tools(rtl_options, options.fpga_part, options.board)   # before the build starts
    model = run.model()
    images = max(verify, cppsim, rtlsim)
    reference = reference_for(run, model, images, data_dir) if images else None
    notes = [] if reference is None or len(reference.images) >= images else [
        f"note: {images:,} test images asked for; the test set has {len(reference.images):,}, "
        f"so every check runs on all {len(reference.images):,}"]
    created = previous is None and not out.exists()
    folder = claim_folder(out, FOLDER_KIND, exclusive=True)
    # replaces the earlier build (all xnorflow's) only once the new one is complete
    with folder.rewriting(FOLDER_KIND, created, failure_logs=(BuildLayout(out).log.name,)):
        result = _build_into(folder, run, model, options, reference, verify, cppsim,
                             toolchain, progress, rtl_options)
    result.notes = notes + result.notes
    return result
