"""The one place that prepares finn-plus 1.6.1 for library use on a machine without Vivado.

finn-plus expects a settings object and a build folder, its builder module imports the XSI
simulator (which raises without ``XILINX_VIVADO``), and ``exit_buildflow`` asks Vivado for its
version. :func:`prepare_finn` handles all of that once, before anything imports
``finn.builder``; every xnorflow module that needs FINN calls it first.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_prepared_build_dir: Path | None = None
# Vivado/Vitis HLS versions finn-plus 1.6.1 supports (also in hw/finn/vivado/entrypoint.sh).
SUPPORTED_VIVADO = ("2022.2", "2024.2")


def vivado_available() -> bool:
    """Vivado and Vitis HLS both on PATH and ``XILINX_VIVADO`` set (the FINN Docker image)."""
    return bool(os.environ.get("XILINX_VIVADO")) and all(
        shutil.which(tool) for tool in ("vivado", "vitis_hls"))


def unsupported_vivado() -> str | None:
    """Why the Vivado that ``XILINX_VIVADO`` points at cannot run FINN's steps, or None."""
    path = os.environ.get("XILINX_VIVADO", "")
    found = re.search(r"\b(20\d\d\.[1-4])\b", path)
    if found is None or found.group(1) in SUPPORTED_VIVADO:
        return None  # not versioned in its path: let FINN find out
    return (f"XILINX_VIVADO={path} is Vivado {found.group(1)}; finn-plus 1.6.1 supports "
            f"{' and '.join(SUPPORTED_VIVADO)}. Source the settings64.sh of a supported "
            f"version (Vivado and Vitis HLS of the same version).")


def prepare_finn(build_dir: str | Path) -> None:
    """Point FINN at ``build_dir`` for its generated code; make the builder importable.

    Idempotent; a second call with another folder moves FINN's code-generation folder there.
    """
    global _prepared_build_dir
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    if _prepared_build_dir == build_dir:
        return
    os.environ["FINN_BUILD_DIR"] = str(build_dir)
    # A FINN_SETTINGS path that does not exist is fine: it only keeps FINN from looking for
    # ~/.finn; the settings are then rebuilt from the environment (also in worker processes).
    os.environ.setdefault("FINN_SETTINGS", str(build_dir / "finn_settings.yaml"))
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    if not vivado_available():
        import finn.xsi

        # build_dataflow_steps does `from finn.xsi import SimEngine` for a type hint only; the
        # lazy attribute raises OSError without XILINX_VIVADO.
        finn.xsi.SimEngine = None
        import finn.builder.build_dataflow as build_dataflow

        build_dataflow.get_vivado_root = lambda: "none"  # read by exit_buildflow()
    _prepared_build_dir = build_dir
