"""Verilator: compile a test bench and its harness into a simulator program, and run it.

A program is kept in xnorflow's cache under a digest of everything that makes it (the HDL files'
contents, the harness, the defines, Verilator's version), so a rebuild of an unchanged design
(or a test that builds the same one) reuses it. Compiler output goes to a log beside the
program; a failure names that log, which stays there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...outputs import cache_root
from .design import Design, RtlBackendError
from .harness import SOURCES, Harness
from .tools import VERILATOR_MAKEFLAGS, Verilator, run_tool

TRACE = "XNORFLOW_TRACE"   # the define that makes a simulator write a waveform
CAPACITY = SOURCES / "fifo_capacity.cpp"   # the FIFO gauges' run-time capacities (DPI)
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
    ``cache`` (default: xnorflow's cache, ``rtl-sim``)."""
    verilator = Verilator.find()
    files = [*design.files, design.testbenches[top]]
    key = _digest(files, harness.key() + CAPACITY.read_text(), defines, verilator.version())
    work = (cache or cache_root() / "rtl-sim") / f"{name}-{key}"
    program = work / "obj_dir" / f"V{top}"
    complete = work / "complete"     # written after a whole compile: a killed one is redone
    if complete.is_file():
        return Program(program, 0.0)
    work.mkdir(parents=True, exist_ok=True)
    with _locked(work):              # another build compiling the same program: wait for it
        if complete.is_file():
            return Program(program, 0.0)
        seconds = _compile(verilator, design, top, harness, name, defines, jobs, files, work,
                           program)
        complete.write_text("")
    return Program(program, seconds)


@contextmanager
def _locked(folder: Path):
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _compile(verilator: Verilator, design: Design, top: str, harness: Harness, name: str,
             defines: tuple[str, ...], jobs: int, files: list[Path], work: Path,
             program: Path) -> float:
    header, text = harness.header
    (work / header).write_text(text)
    trace = TRACE in defines   # a waveform: Verilator's VCD tracing and the harness's dump
    command = [str(verilator.program), *VERILATOR_FLAGS, "-j", str(jobs), "--top-module", top,
               *(f"-D{d}" for d in defines), "-Mdir", str(work / "obj_dir"),
               *(["--trace-vcd"] if trace else []),
               "-CFLAGS", f"-I{work} -I{SOURCES}" + (f" -D{TRACE}" if trace else ""),
               *(str(f) for f in files),
               str(harness.main), str(CAPACITY), "-MAKEFLAGS", VERILATOR_MAKEFLAGS]
    log = work / "verilator.log"
    start = time.perf_counter()
    done = run_tool(command, cwd=design.hdl, log=log, env=verilator.environment())
    if done.returncode != 0 or not program.is_file():
        raise RtlBackendError(f"Verilator could not compile the {name} simulation (exit "
                              f"{done.returncode}); its log: {log}. The build and its report "
                              f"are kept.")
    return time.perf_counter() - start


def run_program(program: Program, arguments: list[str], folder: Path, hdl: Path,
                timeout_s: float | None = None, capacities: dict[str, int] | None = None,
                waveform: tuple[Path, int] | None = None) -> dict:
    """Run a simulator (in ``hdl``, where its ROM files are) writing into ``folder``; its
    summary.json. Exit 3 is a deadlock the harness detected (the summary says how far each
    stream got). ``capacities``: FIFO instance -> run-time depth, for a simulator whose FIFOs
    are gauges (harness/fifo_capacity.cpp)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if capacities is not None:
        env["XNORFLOW_FIFO_CAPACITY"] = ",".join(f"{name}={depth}"
                                                 for name, depth in capacities.items())
    if waveform is not None:   # a tracing simulator: where, and for how many cycles
        env["XNORFLOW_TRACE_FILE"], env["XNORFLOW_TRACE_CYCLES"] = str(waveform[0]), \
            str(waveform[1])
    done = run_tool([str(program.path), *arguments], cwd=hdl, timeout=timeout_s, env=env)
    summary = folder / "summary.json"
    if done.returncode not in (0, 3) or not summary.is_file():
        raise RtlBackendError(f"the RTL simulation {program.path.name} failed (exit "
                              f"{done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")
    return json.loads(summary.read_text())
