"""Fetch FINN's external dependencies (finn-hlslib, board files, ...) into ``$FINN_DEPS``
without Vivado, for the synthesis image (Dockerfile, target ``synthesis``).

``finn deps update`` first checks Vivado's XSI simulator bridge and stops when ``XILINX_VIVADO``
is unset, so it cannot run in an image build, where the host's Xilinx tools are not mounted yet.
This runs what it runs next and nothing else: finn-plus' own ``DependencyUpdater`` on finn-plus'
own dependency list, into the folder where finn-plus (and xnorflow's C simulation) look for
them. The XSI bridge is needed only for FINN's RTL simulation, which xnorflow does not run; in a
container with the tools mounted, ``finn deps update`` adds it.

    python -m xnorflow.hw.finn.deps [FOLDER]      (default: $FINN_DEPS, else xnorflow's cache)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ...errors import XnorflowError
from ...outputs import cache_root

HLSLIB = "finn-hlslib"


def dependency_definitions() -> Path:
    """finn-plus' list of external dependencies (git repositories at fixed commits)."""
    import finn.interface

    return Path(finn.interface.__file__).parent / "external_dependencies.yaml"


def planned_dependencies() -> dict[str, dict]:
    """Name -> definition (url, commit, ...) of every dependency finn-plus fetches."""
    import yaml

    definitions = yaml.safe_load(dependency_definitions().read_text())
    return {name: spec for group in definitions.values() if isinstance(group, dict)
            for name, spec in group.items()}


def fetch(target: str | Path) -> Path:
    """Fetch every dependency into ``target``; returns finn-hlslib's folder there."""
    from finn.interface.manage_deps import DependencyUpdater

    target = Path(target).expanduser().absolute()
    DependencyUpdater(target, dependency_definitions(), git_timeout_s=300,
                      non_interactive=True).update()
    hlslib = target / HLSLIB
    if not (hlslib / "bnn-library.h").is_file():
        raise XnorflowError(f"{hlslib}: finn-hlslib is incomplete after the update (no "
                            f"bnn-library.h); check the network and run again.")
    return hlslib


def default_target() -> Path:
    """Where the fetch goes without a folder or $FINN_DEPS, and where the C simulation looks."""
    return cache_root() / "finn_deps"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = argv[0] if argv else os.environ.get("FINN_DEPS") or default_target()
    try:
        print(f"finn-hlslib: {fetch(target)}")
    except XnorflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
