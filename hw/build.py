"""QONNX model -> FINN streaming dataflow design with FINN's own ``build_dataflow``.

The build is FINN's standard step list with the XNOR-specific replacements of
:mod:`xnorflow.hw.steps`. Steps that need Vivado/Vitis HLS are part of the plan; without the
tools the build runs every step before them, keeps the results, and stops with
:class:`VendorToolsMissing`, which names the remaining steps and how to run them.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .finn_env import prepare_finn, vivado_available

UNTIL_CHOICES = ("estimates", "hw-codegen", "bitfile")
CODEGEN_DIR = "codegen"  # inside the build folder: FINN's per-layer HLS/RTL sources


class BuildError(RuntimeError):
    """A FINN build step failed; the message carries the step's error from the build log."""


class VendorToolsMissing(BuildError):
    """The requested output needs Vivado/Vitis HLS, which are not installed here."""


@dataclass
class BuildOptions:
    board: str = "Pynq-Z1"
    clock_mhz: float = 100.0
    target_fps: int | None = None       # FINN's SetFolding picks PE/SIMD to reach it
    folding_config: str | None = None   # or a per-layer PE/SIMD JSON (FINN's format)
    mvau_wwidth_max: int = 36           # FINN's cap on PE*SIMD*weight bits per MVAU stream
    until: str = "hw-codegen"

    def validate(self) -> None:
        """Fail on bad options before any work starts."""
        fpga_part(self.board)
        if self.until not in UNTIL_CHOICES:
            raise BuildError(f"unknown --until {self.until!r}; choose one of {UNTIL_CHOICES}")
        if self.target_fps is None and self.folding_config is None:
            raise BuildError("set --target-fps (FINN chooses the folding) or --folding-config "
                             "(per-layer PE/SIMD JSON)")
        if self.folding_config and not Path(self.folding_config).is_file():
            raise BuildError(f"{self.folding_config}: folding config file not found")


def fpga_part(board: str) -> str:
    from finn.util.basic import pynq_part_map

    if board not in pynq_part_map:
        raise BuildError(f"unknown board {board!r}; FINN knows {', '.join(sorted(pynq_part_map))}")
    return pynq_part_map[board]


def vendor_steps() -> list[str]:
    """FINN's standard steps that run Vivado/Vitis HLS (everything after the estimates)."""
    from finn.builder.build_dataflow_config import default_build_dataflow_steps as default

    return default[default.index("step_generate_estimate_reports") + 1:]


def build_steps(until: str) -> list:
    """FINN's step list for ``until`` with xnorflow's replacements and insertions."""
    from finn.builder import build_dataflow_config as config

    from .steps import REPLACED_STEPS, STEPS_AFTER

    names = {"estimates": config.estimate_only_dataflow_steps,
             "hw-codegen": config.hw_codegen_dataflow_steps,
             "bitfile": config.default_build_dataflow_steps}[until]
    steps: list = []
    for name in names:
        steps.append(REPLACED_STEPS.get(name, name))
        steps.extend(STEPS_AFTER.get(name, []))
    return steps


def make_config(out_dir: Path, options: BuildOptions, until: str):
    from finn.builder.build_dataflow_config import (DataflowBuildConfig, DataflowOutputType,
                                                    LogLevel, ShellFlowType)

    outputs = [DataflowOutputType.ESTIMATE_REPORTS]
    if until == "bitfile":
        outputs += [DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE,
                    DataflowOutputType.PYNQ_DRIVER, DataflowOutputType.DEPLOYMENT_PACKAGE]
    return DataflowBuildConfig(
        output_dir=str(out_dir),
        synth_clk_period_ns=1000.0 / options.clock_mhz,
        target_fps=options.target_fps,
        folding_config_file=Path(options.folding_config).resolve() if options.folding_config
        else None,
        mvau_wwidth_max=options.mvau_wwidth_max,
        board=options.board,
        fpga_part=fpga_part(options.board),
        shell_flow_type=ShellFlowType.VIVADO_ZYNQ,
        generate_outputs=outputs,
        steps=build_steps(until),
        save_intermediate_models=True,
        console_log_level=LogLevel.ERROR,
    )


def _build_log_errors(out_dir: Path) -> str:
    log = out_dir / "build_dataflow.log"
    if not log.exists():
        return "(no build log)"
    lines = log.read_text(errors="replace").splitlines()
    errors = [l for l in lines if re.search(r"ERROR|Error|assert", l)]
    return "\n".join((errors or lines)[-12:])


def run_build(qonnx_path: str | Path, out_dir: str | Path, options: BuildOptions) -> Path:
    """Run FINN's builder on ``qonnx_path`` into ``out_dir``; return ``out_dir``.

    Raises :class:`VendorToolsMissing` (after building everything up to the HLS sources) when
    ``options.until == "bitfile"`` and Vivado/Vitis HLS are not installed.
    """
    options.validate()
    out_dir = Path(out_dir).resolve()
    qonnx_path = Path(qonnx_path).resolve()
    if not qonnx_path.is_file():
        raise BuildError(f"{qonnx_path}: QONNX model not found; run `xnorflow export` first")
    for stale in (CODEGEN_DIR, "intermediate_models", "report"):  # outputs of an earlier build
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    prepare_finn(out_dir / CODEGEN_DIR)
    from finn.builder.build_dataflow import build_dataflow_cfg

    until = options.until
    blocked = until == "bitfile" and not vivado_available()
    if blocked:
        until = "hw-codegen"
    config = make_config(out_dir, options, until)
    streams = sys.stdout, sys.stderr
    try:
        code = build_dataflow_cfg(str(qonnx_path), config)
    finally:  # the builder redirects stdout/stderr into its log and leaves them so
        sys.stdout, sys.stderr = streams
    if code != 0:
        raise BuildError(f"FINN build failed (see {out_dir / 'build_dataflow.log'}):\n"
                         f"{_build_log_errors(out_dir)}")
    if blocked:
        raise VendorToolsMissing(
            f"built everything up to HLS code generation in {out_dir}; the bitfile needs Vivado "
            f"and Vitis HLS (XILINX_VIVADO, vivado, vitis_hls), which are not installed here. "
            f"Remaining FINN steps: {', '.join(vendor_steps())}. Run the same `xnorflow build "
            f"... --until bitfile` inside the FINN Docker image with the Xilinx tools mounted.")
    return out_dir
