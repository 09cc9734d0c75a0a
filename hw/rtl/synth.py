"""Synthesis of the RTL design with yosys (``synth_xilinx``), counted as FINN counts resources.

How much runs is the user's choice (``--synth``):

- ``none``: no synthesis; the fit is judged on FINN's estimates;
- ``hierarchical`` (the default): each distinct module parameterization is synthesized once,
  out of context: a layer's own logic with its PE lanes as black boxes, each distinct PE lane
  (``xnorflow_mvau_lane``) once, each distinct FIFO or width converter once (equal ones share a
  run). A layer's count is its own logic plus PE times its lane; the design's count is the sum
  of its layers, as a hierarchical synthesis without optimization across layers gives it;
- ``flat``: each distinct layer flattened on its own (yosys may then optimize across the lanes
  of a layer, e.g. fold constant weights of a fully unrolled layer into the popcount): closer
  to what a flattening implementation tool gives, slower.

Every run is kept in xnorflow's cache under the digest of what makes it (the HDL, the ROM
files, the script, the yosys version), so a rebuild of an unchanged design, or a design that
shares layers with an earlier one, synthesizes nothing again.

These are pre-place-and-route counts of yosys' technology mapping, not Vivado's: yosys maps
shift-register FIFOs to flip-flops where Vivado infers SRLs. yosys runs as WebAssembly (yowasp):
it sees files through paths relative to its working directory, the design's ``hdl`` folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ...outputs import cache_root, write_text
from .design import Design, RtlBackendError
from .layers import Instance
from .tools import Yosys, end_all_tools, run_tool

LEVELS = ("none", "hierarchical", "flat")
DEFAULT_LEVEL = "hierarchical"
RESOURCES = ("LUT", "FF", "LUTRAM", "BRAM_18K", "URAM", "DSP")
# Xilinx cells -> FINN's resource names (a RAMB36 is two BRAM_18K); 7-series (E1) and
# UltraScale+ (E2, URAM288) primitives
CELLS = [(re.compile(r"LUT[1-6]$"), "LUT", 1), (re.compile(r"FD[CEPRS]E?$"), "FF", 1),
         (re.compile(r"(RAM(32|64|128|256)(M|X1[SD])\w*|SRL(16E|C32E))$"), "LUTRAM", 1),
         (re.compile(r"RAMB18E[12]$"), "BRAM_18K", 1), (re.compile(r"RAMB36E[12]$"), "BRAM_18K", 2),
         (re.compile(r"URAM288(_BASE)?$"), "URAM", 1), (re.compile(r"DSP48E[12]$"), "DSP", 1)]
FAMILY = {"xc7z": "xc7", "xc7a": "xc7", "xc7k": "xc7", "xc7v": "xc7", "xczu": "xcup",
          "xck26": "xcup", "xcvu": "xcup", "xcku": "xcup"}
LANE = "xnorflow_mvau_lane"
# the lane's parameters, as the MVAU passes them down (xnorflow_mvau.sv)
LANE_PARAMETERS = ("SIMD", "IBITS", "WBITS", "OBITS", "ABITS", "TBITS", "NTHRES", "XNOR",
                   "ISIGNED", "WSIGNED", "ACTVAL")
SCRIPT_VERSION = "5"          # part of every cache key: bump when the scripts change
YOSYS_DEFINE = "XNORFLOW_YOSYS"   # what the HDL maps differently for yosys than for Vivado
# the longest path between flip-flops and block RAMs, in cells (LUTs, carry chains, muxes);
# a 7-series LUT and its route take about LEVEL_NS at speed grade -1, so a clock period of
# P ns holds about P / LEVEL_NS - 1 levels (clock-to-out and setup take the rest); a rule of
# thumb until a place-and-route tool measures the path
LONGEST_PATH = re.compile(r"Longest topological path in (\S+) \(length=(\d+)\)")
LEVEL_NS = 1.0
ROM_FILE = re.compile(r'"([\w.-]+\.dat)"')


# xc7's memory mapping as synth_xilinx runs it (yosys 0.70), split so that the block RAMs'
# contents are dropped before their cells are mapped: a ROM's BRAM count does not depend on
# its contents, and every distinct content costs yosys a template elaboration of seconds (57
# for one 256 x 256 layer); LUT ROMs keep their contents (their LUT count depends on them)
XC7_MEMORY = ("memory_libmap -logic-cost-rom 0.015625 -lib +/xilinx/lutrams_xc5v.txt "
              "-lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_CASCADE -D HAS_MIXWIDTH_SDP "
              "-no-auto-huge; setparam -unset INIT t:$__XILINX_BLOCKRAM*; "
              "techmap -map +/xilinx/lutrams_xc5v_map.v; techmap -map +/xilinx/brams_xc6v_map.v")
GROUP = "xnorflow_synth_group"        # the module that holds a run's small layers side by side


@dataclass(frozen=True)
class Job:
    """One yosys run: a module synthesized out of context; its results are kept per member
    (the layers or lane it holds), each under its own key."""

    top: str                             # the module synthesized
    files: tuple[str, ...]               # relative to the hdl folder
    members: tuple[tuple[str, str], ...]   # (key, module in yosys' stat) per result
    parameters: tuple[tuple[str, int], ...] = ()   # top-level overrides (a lane's)
    blackbox: bool = False               # the lanes inside stay black boxes
    hierarchy: bool = False              # keep the modules apart (a group, a blackboxed layer)
    flatten: bool = False
    label: str = ""                      # what the progress line calls it
    group_text: str = ""                 # a group's top, written beside the HDL for the run

    @property
    def key(self) -> str:
        return _digest(*(key for key, _ in self.members))

    def script(self, family: str, stat: str, extra_files: tuple[str, ...] = ()) -> str:
        overrides = " ".join(f"-G {name}={value}" for name, value in self.parameters)
        keep = "--keep-hierarchy " if self.hierarchy else ""
        files = " ".join((*self.files, *extra_files))
        steps = [f"read_slang -j 1 -D {YOSYS_DEFINE} {keep}{overrides} {files} --top {self.top}"]
        if self.blackbox:
            steps.append(f"blackbox {LANE}*")
        synth = f"synth_xilinx -family {family} -noiopad {'-flatten ' if self.flatten else ''}" \
                f"-top {self.top}"
        if family == "xc7":
            steps += [f"{synth} -run :map_memory", XC7_MEMORY, f"{synth} -run map_ffram:"]
        else:
            steps.append(synth)
        steps.append(f"tee -q -o {stat} stat -json -top {self.top}")
        steps.append(f"tee -q -o {stat.replace('.stat.json', '.ltp.txt')} ltp t:FD* t:SRL* "
                     f"t:RAMB* t:DSP* t:URAM* %u %u %u %u %n")
        return "; ".join(steps)


@dataclass
class LayerSynthesis:
    name: str
    counts: dict[str, int]
    seconds: float          # yosys time spent on it in this build (0: every run reused)
    reused: bool            # all of its runs came from the cache
    logic_depth: int = 0    # its longest path between registers, in cells (yosys ltp)


@dataclass
class SynthesisResult:
    level: str
    family: str
    layers: list[LayerSynthesis] = field(default_factory=list)
    design: dict[str, int] = field(default_factory=dict)
    modules: int = 0        # distinct modules (layers, lanes) whose counts make the design's
    reused: int = 0         # of which came from the cache
    runs: int = 0           # yosys runs this build made
    seconds: float = 0.0    # wall time of the synthesis step
    logs: str = ""          # where the runs' logs are

    @property
    def ran(self) -> bool:
        return self.level != "none"

    def deepest(self) -> LayerSynthesis | None:
        return max(self.layers, key=lambda layer: layer.logic_depth, default=None)

    def depth_line(self, clock_mhz: float) -> str | None:
        """The longest path and whether the clock has room for it (a warning when not)."""
        deepest = self.deepest()
        if deepest is None or not deepest.logic_depth:
            return None
        fits = levels_at(clock_mhz)
        text = (f"longest path {deepest.logic_depth} logic levels, in {deepest.name} (yosys ltp "
                f"of the {self.family} mapping; {clock_mhz:g} MHz leaves room for about {fits} "
                f"at ~{LEVEL_NS:g} ns a level)")
        if deepest.logic_depth > fits:
            return (f"warning: {text}: likely too deep for the clock; --place-route measures "
                    f"it, a lower --clock-mhz or more folding shortens it")
        return text

    def as_dict(self) -> dict:
        return {"level": self.level, "family": self.family,
                "tool": "yosys synth_xilinx (pre-place-and-route)",
                "how": HOW[self.level], "design": self.design, "modules": self.modules,
                "reused": self.reused, "runs": self.runs, "seconds": self.seconds,
                "logs": self.logs,
                "layers": [{"layer": s.name, **s.counts, "seconds": s.seconds,
                            "reused": s.reused, "logic_depth": s.logic_depth}
                           for s in self.layers]}


HOW = {"none": "not run (--synth none)",
       "hierarchical": "each distinct layer, PE lane and FIFO once, out of context, block RAM "
                       "contents left out (they do not change a BRAM count); the design is the "
                       "sum of its layers (no optimization across layers)",
       "flat": "each distinct layer flattened on its own; the design is the sum of its layers"}


def levels_at(clock_mhz: float) -> int:
    return max(int(1e3 / clock_mhz / LEVEL_NS) - 1, 1)


def family_of(fpga_part: str) -> str:
    for prefix, family in FAMILY.items():
        if fpga_part.startswith(prefix):
            return family
    raise RtlBackendError(f"no yosys synth_xilinx family known for the part {fpga_part}")


# --------------------------------------------------------------------------- counting
def _primitive(cell: str) -> tuple[str, int] | None:
    for pattern, resource, weight in CELLS:
        if pattern.match(cell):
            return resource, weight
    return None


def counts_of(stat: dict, top: str) -> dict[str, int]:
    """FINN's resource names for ``top`` and everything below it in yosys' ``stat -json``
    (a submodule counted as often as it is instantiated; black boxes count nothing). ``top``
    may name a module kept apart in a group (``name$path``)."""
    modules = {name.lstrip("\\"): module for name, module in stat["modules"].items()}

    def total(name: str, seen: tuple[str, ...] = ()) -> Counter:
        counts: Counter = Counter()
        for cell, number in modules[name].get("num_cells_by_type", {}).items():
            cell = cell.lstrip("\\")
            if cell in modules and cell not in seen:
                for resource, value in total(cell, seen + (name,)).items():
                    counts[resource] += value * int(number)
            elif (found := _primitive(cell)) is not None:
                counts[found[0]] += found[1] * int(number)
        return counts

    name = top if top in modules else next(
        (m for m in modules if m.startswith(f"{top}$")), None)
    if name is None:
        raise RtlBackendError(f"yosys' statistics name no module {top}")
    counted = total(name)
    return {k: int(counted.get(k, 0)) for k in RESOURCES}


def _add(*parts: tuple[dict[str, int], int]) -> dict[str, int]:
    return {k: sum(counts.get(k, 0) * times for counts, times in parts) for k in RESOURCES}


# --------------------------------------------------------------------------- planning
def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _layer_files(design: Design, inst: Instance) -> list[Path]:
    """The HDL a layer needs: xnorflow's modules (the wrapper may use any), then its own."""
    own = [f for f in design.files if f.name.startswith("xnorflow_") and f.parent == design.hdl
           and f.stem not in ("xnorflow_top", "xnorflow_tb", "xnorflow_layers_tb")]
    return list(dict.fromkeys([*own, *inst.files]))


def _content(design: Design, inst: Instance, files: list[Path]) -> list[bytes]:
    """What a layer's result depends on: its files (the wrapper with the layer's name taken
    out, so that equal layers share a run) and the ROM files they read."""
    parts = []
    for path in files:
        text = path.read_bytes()
        if path in inst.files:
            text = text.replace(inst.name.encode(), b"LAYER")
        parts.append(text)
        for rom in ROM_FILE.findall(text.decode(errors="replace")):
            rom_path = design.hdl / rom.replace("LAYER", inst.name)
            if rom_path.is_file():
                parts.append(rom_path.read_bytes())
    return parts


def layer_keys(design: Design, level: str, family: str, version: str) -> dict[str, str]:
    """Each layer's key: equal keys, equal results (equal FIFOs or converters share one)."""
    return {inst.name: _digest(SCRIPT_VERSION, level, family, version,
                               *_content(design, inst, _layer_files(design, inst)))
            for inst in design.instances}


def lane_of(inst: Instance, family: str, version: str, design: Design) -> tuple[str, tuple]:
    """The key and parameters of an MVAU's PE lane."""
    parameters = tuple((name, int(inst.params[name])) for name in LANE_PARAMETERS)
    mvau = (design.hdl / "xnorflow_mvau.sv").read_bytes()
    return _digest(SCRIPT_VERSION, "lane", family, version, repr(parameters), mvau), parameters


def plan(design: Design, level: str, family: str, version: str
         ) -> tuple[dict[str, list[tuple[str, int]]], list[Job]]:
    """Per layer, the keys whose results make its count, each with how often it counts; and
    the runs that make the results not in the cache: one per MVAU (its lanes black boxes), one
    per distinct lane, and one for all other layers side by side (flat: one per layer)."""
    keys = layer_keys(design, level, family, version)
    counted: dict[str, list[tuple[str, int]]] = {}
    jobs: list[Job] = []
    planned: set[str] = set()   # keys a job makes, or the cache holds
    small: list[Instance] = []
    for inst in design.instances:
        key = keys[inst.name]
        counted[inst.name] = [(key, 1)]
        files = tuple(str(f.relative_to(design.hdl)) for f in _layer_files(design, inst))
        lanes = inst.op_type == "MVAU_hls" and level == "hierarchical"
        if lanes:
            lane_key, parameters = lane_of(inst, family, version, design)
            counted[inst.name].append((lane_key, int(inst.params["PE"])))
            if lane_key not in planned and _cached(lane_key) is None:
                jobs.append(Job(LANE, ("xnorflow_mvau.sv",), ((lane_key, LANE),), parameters,
                                label=f"PE lane of {inst.name} (SIMD {inst.params['SIMD']})"))
            planned.add(lane_key)
        if key in planned or _cached(key) is not None:
            continue
        planned.add(key)
        if lanes or level == "flat":
            jobs.append(Job(inst.name, files, ((key, inst.name),), blackbox=lanes,
                            hierarchy=lanes, flatten=level == "flat", label=inst.name))
        else:
            small.append(inst)
    if small:
        jobs.append(_group(design, small, keys))
    return counted, jobs


def _group(design: Design, layers: list[Instance], keys: dict[str, str]) -> Job:
    """One run for ``layers`` side by side, each kept a module of its own (--keep-hierarchy
    names it ``<layer>$<path>``), every port a port of the group so that nothing is removed."""
    from .stitch import layers_testbench

    text = layers_testbench(layers).replace("module xnorflow_layers_tb", f"module {GROUP}") \
        .replace("endmodule : xnorflow_layers_tb", f"endmodule : {GROUP}")
    files = list(dict.fromkeys(f for inst in layers for f in _layer_files(design, inst)))
    relative = tuple(str(f.relative_to(design.hdl)) for f in files)
    names = ", ".join(inst.name for inst in layers)
    return Job(GROUP, relative, tuple((keys[inst.name], inst.name) for inst in layers),
               hierarchy=True, label=f"{len(layers)} FIFOs, converters and other layers "
                                     f"({names[:60]}{'...' if len(names) > 60 else ''})",
               group_text=text)


# --------------------------------------------------------------------------- running
def cache_folder() -> Path:
    return cache_root() / "rtl-synth"


def _cached(key: str) -> dict[str, int] | None:
    path = cache_folder() / key / "counts.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_job(job: Job, design: Design, family: str) -> float:
    """Synthesize ``job`` and keep each member's counts in the cache; the seconds it took."""
    yosys = Yosys.find()
    work = design.folder / "synth"
    work.mkdir(exist_ok=True)
    stem = job.key
    stat, log = work / f"{stem}.stat.json", work / f"{stem}.yosys.log"
    group_file = None
    if job.group_text:   # yosys (WASI) reads only below its working folder: beside the HDL
        group_file = design.hdl / f"{GROUP}_{stem}.sv"
        group_file.write_text(job.group_text)
    start = time.perf_counter()
    try:
        script = job.script(family, str(Path("..") / "synth" / stat.name),
                            (group_file.name,) if group_file else ())
        done = run_tool([str(yosys.program), "-q", "-p", script], cwd=design.hdl, log=log)
    finally:
        if group_file is not None:
            group_file.unlink(missing_ok=True)
    if done.returncode != 0 or not stat.is_file():
        raise RtlBackendError(f"yosys could not synthesize {job.label} (exit {done.returncode});"
                              f" its log: {log}. The build and its report are kept.")
    found = json.loads(stat.read_text())
    ltp = work / f"{stem}.ltp.txt"
    depths = [(m.group(1).lstrip("\\"), int(m.group(2)))
              for m in LONGEST_PATH.finditer(ltp.read_text() if ltp.is_file() else "")]
    for key, module in job.members:
        kept = cache_folder() / key
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, kept / "yosys.log")
        own = [d for name, d in depths if len(job.members) == 1 or _inside(name, module, depths)]
        write_text(kept / "counts.json", json.dumps({**counts_of(found, module),
                                                     "logic_depth": max(own, default=0)}))
    return time.perf_counter() - start


def _inside(name: str, member: str, depths: list[tuple[str, int]]) -> bool:
    """Whether the module ``name`` of a group run (--keep-hierarchy names each
    ``<type>$<instance path>``) is the layer ``member`` or below it (a run of one module:
    everything in it is)."""
    paths = [n.split("$", 1)[1] for n, _ in depths if n.startswith(f"{member}$")]
    path = name.split("$", 1)[1] if "$" in name else name
    return any(path == p or path.startswith(f"{p}.") for p in paths)


def synthesize(design: Design, fpga_part: str, level: str = DEFAULT_LEVEL, workers: int = 2,
               say=lambda line: None) -> SynthesisResult:
    """Every layer's counts and the design's at ``level`` (``none``: nothing runs)."""
    family = family_of(fpga_part)
    if level == "none":
        return SynthesisResult(level, family)
    start = time.perf_counter()
    version = Yosys.find().version()
    counted, jobs = plan(design, level, family, version)
    keys = {key for runs in counted.values() for key, _ in runs}
    cached = keys - {key for job in jobs for key, _ in job.members}
    # the long runs first: the MVAUs, then their lanes, then the group
    jobs.sort(key=lambda job: (job.top == GROUP, job.top == LANE))
    say(f"rtl: yosys ({level}): {len(keys)} distinct modules for {len(design.instances)} "
        f"layers, {len(cached)} from the cache; {len(jobs)} runs ...")
    seconds: dict[str, float] = {}
    pool = ThreadPoolExecutor(workers)
    futures = {}
    try:
        futures = {pool.submit(run_job, job, design, family): job for job in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            job = futures[future]
            took = future.result()
            for key, _ in job.members:
                seconds[key] = took
            say(f"rtl: yosys {done}/{len(jobs)}: {job.label} in {took:.0f} s "
                f"({time.perf_counter() - start:.0f} s elapsed)")
    except BaseException:   # Ctrl-C or a failed run: no yosys goes on without us
        for future in futures:
            future.cancel()
        end_all_tools()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    results = {key: _cached(key) for key in keys}
    layers = [LayerSynthesis(inst.name,
                             _add(*((results[key], times) for key, times in counted[inst.name])),
                             max((seconds.get(key, 0.0) for key, _ in counted[inst.name]),
                                 default=0.0),
                             all(key in cached for key, _ in counted[inst.name]),
                             max(results[key].get("logic_depth", 0)
                                 for key, _ in counted[inst.name]))
              for inst in design.instances]
    return SynthesisResult(level, family, layers, _add(*((layer.counts, 1) for layer in layers)),
                           len(keys), len(cached), len(jobs), time.perf_counter() - start,
                           f"{cache_folder()} (a folder per module: yosys.log, counts.json)")
