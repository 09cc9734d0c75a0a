"""Synthesis of the RTL design with yosys (``synth_xilinx`` for the board's 7-series family):
each layer on its own, and the whole design, counted as FINN counts resources.

These are pre-place-and-route counts of yosys' technology mapping, not Vivado's: yosys maps
shift-register FIFOs to flip-flops where Vivado infers SRLs, and does not optimize across the
design as Vivado's implementation does. They are next to FINN's estimates, not a replacement for
a Vivado run.

yosys runs as WebAssembly (yowasp): it sees the files through paths relative to its working
directory, so it runs in the design's ``hdl`` folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .design import Design, RtlBackendError
from .stitch import TOP
from .tools import Yosys

RESOURCES = ("LUT", "FF", "LUTRAM", "BRAM_18K", "DSP")
# Xilinx 7-series cells -> FINN's resource names (a RAMB36 is two BRAM_18K)
CELLS = [(re.compile(r"LUT[1-6]$"), "LUT", 1), (re.compile(r"FD[CEPRS]E?$"), "FF", 1),
         (re.compile(r"(RAM(32|64|128|256)(M|X1[SD])\w*|SRL(16E|C32E))$"), "LUTRAM", 1),
         (re.compile(r"RAMB18E1$"), "BRAM_18K", 1), (re.compile(r"RAMB36E1$"), "BRAM_18K", 2),
         (re.compile(r"DSP48E1$"), "DSP", 1)]
FAMILY = {"xc7z": "xc7", "xc7a": "xc7", "xc7k": "xc7", "xc7v": "xc7", "xczu": "xcup",
          "xcvu": "xcup", "xcku": "xcup"}


@dataclass
class Synthesis:
    name: str                      # a layer, or the design's top
    counts: dict[str, int]
    seconds: float
    log: Path


def family_of(fpga_part: str) -> str:
    for prefix, family in FAMILY.items():
        if fpga_part.startswith(prefix):
            return family
    raise RtlBackendError(f"no yosys synth_xilinx family known for the part {fpga_part}")


def counts_of(stat: dict, top: str) -> dict[str, int]:
    """FINN's resource names from yosys' ``stat -json`` of ``top``."""
    module = stat["modules"].get(top) or stat["modules"].get(f"\\{top}") or \
        next(iter(stat["modules"].values()))
    counts = dict.fromkeys(RESOURCES, 0)
    for cell, number in module.get("num_cells_by_type", {}).items():
        for pattern, resource, weight in CELLS:
            if pattern.match(cell):
                counts[resource] += weight * int(number)
                break
    return counts


def _files_of(design: Design, top: str) -> list[str]:
    """The files a layer (or the top) needs, relative to the hdl folder (yosys' view)."""
    if top == TOP:
        files = design.files
    else:
        inst = next(i for i in design.instances if i.name == top)
        own = [f for f in design.files if f.name.startswith("xnorflow_")
               and f.name != f"{TOP}.sv"]
        files = [*own, *inst.files]
    return [str(f.relative_to(design.hdl)) for f in files]


def synthesize(design: Design, top: str, fpga_part: str) -> Synthesis:
    """One module (a layer's wrapper or the design's top), flattened, with synth_xilinx."""
    yosys = Yosys.find()
    folder = design.folder / "synth"
    folder.mkdir(exist_ok=True)
    stat, log = folder / f"{top}.stat.json", folder / f"{top}.yosys.log"
    files = " ".join(_files_of(design, top))
    script = (f"read_slang -j 1 {files} --top {top}; "
              f"synth_xilinx -family {family_of(fpga_part)} -flatten -top {top}; "
              f"tee -q -o {Path('..') / 'synth' / stat.name} stat -json")
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run([str(yosys.program), "-q", "-p", script], cwd=design.hdl,
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not stat.is_file():
        raise RtlBackendError(f"yosys could not synthesize {top} (exit {done.returncode}); its "
                              f"log: {log}. The build and its report are kept.")
    return Synthesis(top, counts_of(json.loads(stat.read_text()), top),
                     time.perf_counter() - start, log)


def synthesize_all(design: Design, fpga_part: str, workers: int = 2) -> list[Synthesis]:
    """Every layer, then the whole design (the last entry)."""
    names = [i.name for i in design.instances]
    with ThreadPoolExecutor(workers) as pool:
        layers = list(pool.map(lambda name: synthesize(design, name, fpga_part), names))
    return [*layers, synthesize(design, TOP, fpga_part)]
