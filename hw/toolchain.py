"""The C++ tool chain of both C simulations (FINN's layers in :mod:`xnorflow.hw.sim`, the
local binary trainer in :mod:`xnorflow.hw.hls`): one compiler lookup, one language standard and
the ap_types headers. Like FINN, the C simulation compiles as C++17; the Vitis HLS scripts keep
their own synthesis flags."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import XnorflowError

CXX_STANDARD = "-std=c++17"


class CompilerMissing(XnorflowError):
    """No C++ compiler: the C simulation needs one."""


class HeadersMissing(XnorflowError):
    """The ap_types headers the C simulation compiles against are not installed."""


def find_compiler() -> str:
    """The C++ compiler: $CXX, else g++ on the PATH."""
    compiler = os.environ.get("CXX", "g++")
    path = shutil.which(compiler)
    if path is None:
        raise CompilerMissing(f"C++ compiler {compiler!r} not found: the C simulation needs g++ "
                              f"(Debian/Ubuntu: apt install g++) or set CXX.")
    return path


def compiler_version(compiler: str) -> str:
    """The compiler's first version line (part of the cache key of compiled programs)."""
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return (done.stdout.splitlines() or [""])[0]


def ap_types_dir() -> Path:
    """The Apache-2.0 ap_types headers that the hls4ml package ships (not copied here)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise HeadersMissing("the C simulation compiles against the ap_types headers of the "
                             "hls4ml package, which is not installed: pip install hls4ml==1.3.0 "
                             "(install.sh does)")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise HeadersMissing(f"{path}/ap_int.h not found: this hls4ml version does not ship the "
                             f"ap_types headers; install hls4ml==1.3.0")
    return path
