"""Verilator: compile a test bench and its harness into a simulator program, and run it.

A program is kept under a digest of everything that makes it (the HDL files' contents, the
harness, the defines, Verilator's version), so a rebuild with unchanged layers reuses it.
Compiler output goes to a log beside the program; a failure names that log.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .design import Design, RtlBackendError
from .harness import SOURCES, Harness
from .tools import VERILATOR_MAKEFLAGS, Verilator

VERILATOR_FLAGS = ("--cc", "--exe", "--build", "-O3", "--no-timing", "--x-assign", "fast",
                   "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                   "-Wno-MULTIDRIVEN")


@dataclass(frozen=True)
class Program:
    path: Path
    seconds: float        # compile time (0 when reused)


def _digest(files: list[Path], harness: str, defines: tuple[str, ...], version: str) -> str:
    """Of everything that makes a simulator program."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(harness.encode() + "\0".join(defines).encode() + version.encode())
    return digest.hexdigest()[:16]


def compile_program(design: Design, top: str, harness: Harness, name: str,
                    defines: tuple[str, ...] = (), jobs: int = 2,
                    cache: Path | None = None) -> Program:
    """The simulator of the test bench ``top`` (its files: the design's plus the bench) with
    the C++ ``harness``; ``defines`` are Verilog macros (``FINN_SIMULATION``). Kept in
    ``cache`` (default: the design's ``sim`` folder)."""
    verilator = Verilator.find()
    files = [*design.files, design.testbenches[top]]
    key = _digest(files, harness.key(), defines, verilator.version())
    work = (cache or design.folder / "sim") / f"{name}-{key}"
    program = work / "obj_dir" / f"V{top}"
    if program.is_file():
        return Program(program, 0.0)
    work.mkdir(parents=True, exist_ok=True)
    header, text = harness.header
    (work / header).write_text(text)
    command = [str(verilator.program), *VERILATOR_FLAGS, "-j", str(jobs), "--top-module", top,
               *(f"-D{d}" for d in defines), "-Mdir", str(work / "obj_dir"),
               "-CFLAGS", f"-I{work} -I{SOURCES}", *(str(f) for f in files),
               str(harness.main), "-MAKEFLAGS", VERILATOR_MAKEFLAGS]
    log = work / "verilator.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=design.hdl,
                              env=verilator.environment())
    if done.returncode != 0 or not program.is_file():
        raise RtlBackendError(f"Verilator could not compile the {name} simulation (exit "
                              f"{done.returncode}); its log: {log}. The build and its report "
                              f"are kept.")
    return Program(program, time.perf_counter() - start)


def run_program(program: Program, arguments: list[str], folder: Path, hdl: Path,
                timeout_s: float | None = None) -> dict:
    """Run a simulator (in ``hdl``, where its ROM files are) writing into ``folder``; its
    summary.json. Exit 3 is a deadlock the harness detected (the summary says how far each
    stream got)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(program.path), *arguments], capture_output=True, text=True,
                          cwd=hdl, timeout=timeout_s)
    summary = folder / "summary.json"
    if done.returncode not in (0, 3) or not summary.is_file():
        raise RtlBackendError(f"the RTL simulation {program.path.name} failed (exit "
                              f"{done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")
    return json.loads(summary.read_text())
