"""QONNX model -> FINN streaming dataflow design with FINN's own ``build_dataflow``.

The build is FINN's standard step list with the XNOR-specific replacements of
:mod:`xnorflow.hw.finn.steps`. Steps that need Vivado/Vitis HLS are part of the plan; without the
tools the build runs every step before them, keeps the results, and stops with
:class:`VendorToolsMissing`, which names the remaining steps and how to run them.

FINN's builder catches every exception of a step, Ctrl-C included, prints internal errors as a
traceback and returns -1. Each step therefore runs inside :class:`_StepGuard`, which keeps the
original error (or the interrupt) so that it reaches the user as a clear message (or as Ctrl-C).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import sys
from pathlib import Path

from ... import interrupts
from ...errors import XnorflowError
from .env import prepare_finn, unsupported_vivado, vivado_available
from .layout import BuildLayout
from .options import BuildError, BuildOptions, VendorToolsMissing


def vendor_steps() -> list[str]:
    """FINN's standard steps that run Vivado/Vitis HLS (everything after the estimates)."""
    from finn.builder.build_dataflow_config import default_build_dataflow_steps as default

    return default[default.index("step_generate_estimate_reports") + 1:]


def build_steps(until: str, options: BuildOptions | None = None) -> list:
    """FINN's step list for ``until`` with xnorflow's replacements and insertions."""
    from finn.builder import build_dataflow_config as config

    from .steps import BALANCED_STEP, REPLACED_STEPS, STEPS_AFTER

    replaced = dict(REPLACED_STEPS)
    if options is not None and options.searches_folding:
        replaced.update(BALANCED_STEP)

    names = {"estimates": config.estimate_only_dataflow_steps,
             "hw-codegen": config.hw_codegen_dataflow_steps,
             "bitfile": config.default_build_dataflow_steps}[until]
    steps: list = []
    for name in names:
        steps.append(replaced.get(name, name))
        steps.extend(STEPS_AFTER.get(name, []))
    return steps


class _StepGuard:
    """Runs FINN build steps so that their errors and Ctrl-C survive FINN's catch-all."""

    def __init__(self):
        self.error: tuple[str, BaseException] | None = None
        self.interrupted = False

    def wrap(self, step):
        from finn.builder.build_dataflow_steps import build_dataflow_step_lookup
        from finn.util.exception import FINNUserError

        function = build_dataflow_step_lookup[step] if isinstance(step, str) else step

        @functools.wraps(function)
        def guarded(model, cfg):
            try:
                interrupts.check()
                return function(model, cfg)
            except KeyboardInterrupt:
                self.interrupted = True
                raise
            except Exception as err:
                self.error = (function.__name__, err)
                raise FINNUserError(f"{function.__name__}: {err}") from None  # no traceback

        return guarded

    def raise_kept(self, log: Path) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        if self.error is None:
            raise BuildError(f"FINN build failed (see {log}):\n{_build_log_errors(log)}")
        step, err = self.error
        if isinstance(err, XnorflowError):
            raise err
        message = str(err).strip() or type(err).__name__
        raise BuildError(f"FINN step {step} failed: {type(err).__name__}: {message}\nFull "
                         f"log: {log}")


def make_config(out_dir: Path, options: BuildOptions, until: str, guard: _StepGuard):
    from finn.builder.build_dataflow_config import (
        DataflowOutputType,
        LogLevel,
        ShellFlowType,
    )

    from .steps import XnorBuildConfig

    outputs = [DataflowOutputType.ESTIMATE_REPORTS]
    if until == "bitfile":
        outputs += [DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE,
                    DataflowOutputType.PYNQ_DRIVER, DataflowOutputType.DEPLOYMENT_PACKAGE]
    return XnorBuildConfig(
        output_dir=str(out_dir),
        folding_budget=options.budget,
        folding_target_fps=options.target_fps if options.searches_folding else None,
        synth_clk_period_ns=1000.0 / options.clock_mhz,
        target_fps=None if options.searches_folding else options.target_fps,
        folding_config_file=Path(options.folding_config).resolve() if options.folding_config
        else None,
        mvau_wwidth_max=options.mvau_wwidth_max,
        board=None if options.is_ecp5 else options.board,
        fpga_part=options.finn_part,
        folding_part=options.fpga_part,
        shell_flow_type=ShellFlowType.VIVADO_ZYNQ,
        generate_outputs=outputs,
        steps=[guard.wrap(step) for step in build_steps(until, options)],
        save_intermediate_models=True,
        console_log_level=LogLevel.NONE,
    )


def _build_log_errors(log: Path) -> str:
    if not log.exists():
        return "(no build log)"
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if re.search(r"ERROR|Error|assert", line)]
    return "\n".join((errors or lines)[-12:])


def run_build(qonnx_path: str | Path, out_dir: str | Path, options: BuildOptions,
              quiet: bool = False) -> Path:
    """Run FINN's builder on ``qonnx_path`` into ``out_dir`` (a folder the caller has claimed
    for the build); return ``out_dir``. ``quiet``: without FINN's "Running step" lines (its
    build log keeps them).

    Raises :class:`VendorToolsMissing` (after building everything up to the HLS sources) when
    ``options.until == "bitfile"`` and Vivado/Vitis HLS are not installed.
    """
    options.validate()
    out_dir = Path(out_dir).resolve()
    qonnx_path = Path(qonnx_path).resolve()
    if not qonnx_path.is_file():
        raise BuildError(f"{qonnx_path}: QONNX model not found; run `xnorflow export` first")
    prepare_finn(BuildLayout(out_dir).codegen)
    from finn.builder.build_dataflow import build_dataflow_cfg

    until = options.until
    blocked = until == "bitfile" and not vivado_available()
    unsupported = unsupported_vivado() if until == "bitfile" and not blocked else None
    if unsupported:
        raise BuildError(unsupported)
    if blocked:
        until = "hw-codegen"
    guard = _StepGuard()
    config = make_config(out_dir, options, until, guard)
    streams = sys.stdout, sys.stderr
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            code = build_dataflow_cfg(str(qonnx_path), config)
    except Exception:  # FINN re-raises instead of returning -1 when it runs under pytest
        code = -1
    finally:  # the builder redirects stdout/stderr into its log and leaves them so
        sys.stdout, sys.stderr = streams
    if code != 0:
        guard.raise_kept(BuildLayout(out_dir).log)
    if blocked:
        raise VendorToolsMissing(
            f"built everything up to HLS code generation in {out_dir}; the bitfile needs Vivado "
            f"and Vitis HLS (XILINX_VIVADO, vivado, vitis_hls), which are not installed here. "
            f"Remaining FINN steps: {', '.join(vendor_steps())}. Run the same `xnorflow build "
            f"... --until bitfile` in xnorflow's synthesis image with the Xilinx tools mounted "
            f"(README: \"Bitstreams: the synthesis image\").")
    return out_dir
