"""Place and route on a Lattice ECP5 with the open flow from PyPI: yosys ``synth_ecp5``, then
nextpnr-ecp5 and, for a board, ``ecppack`` (all WebAssembly, no system package).

What it gives: the post-route Fmax against the build's clock (nextpnr's static timing analysis
at the part's speed grade), the utilisation (LUT4, FF, EBR, DSP) and the critical path with its
start and end named by layer, and a bitstream when a board's pins are given. Both steps are
minutes long: the netlist is kept in xnorflow's cache by the digest of everything that makes it
(HDL, ROM contents, script, yosys' version), the place-and-route result by the digest of the
netlist, the pins, the part, the clock and nextpnr's version; a rebuild of an unchanged design
reuses both. nextpnr runs with a fixed seed, so a result is reproducible.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...outputs import cache_root
from .design import RtlBackendError
from .synth import ROM_FILE, YOSYS_DEFINE, _digest
from .tools import NextpnrEcp5, Yosys, run_tool

SCRIPT_VERSION = "1"        # part of the cache keys: bump when the scripts change
SEED = 1
# nextpnr's cell types, in FINN's resource words
UTILISATION = {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "EBR": "DP16KD",
               "DSP": "MULT18X18D"}


@dataclass(frozen=True)
class Ecp5Part:
    """An ECP5 device as nextpnr names it."""
    name: str            # Lattice's, e.g. LFE5U-85F-6BG381C
    size: str            # nextpnr's device option: 25k, 45k, 85k, um5g-85k, ...
    package: str
    speed: int

    def arguments(self) -> list[str]:
        return [f"--{self.size}", "--package", self.package, "--speed", str(self.speed)]


# the ULX3S's chip, and the stand-in for the RTL of a board without an open flow (the xc7z020
# of the PYNQ boards: see docs/rtl-backend.md)
LFE5U_85F = Ecp5Part("LFE5U-85F-6BG381C", "85k", "CABGA381", 6)


@dataclass
class CriticalPath:
    start: str           # layer (or top-level logic) where it starts
    end: str
    ns: float
    logic_ns: float
    routing_ns: float
    start_cell: str
    end_cell: str


@dataclass
class PlaceRouteResult:
    part: str
    clock_mhz: float                 # asked for
    fmax_mhz: float                  # achieved, post-route
    utilisation: dict[str, dict[str, int]]    # LUT4/FF/EBR/DSP -> used, available
    critical_path: CriticalPath | None
    bitstream: Path | None
    seconds: dict[str, float] = field(default_factory=dict)   # synth, pnr, pack (0: reused)
    reused: bool = False
    folder: Path | None = None       # netlist, report, logs

    @property
    def met(self) -> bool:
        return self.fmax_mhz >= self.clock_mhz

    def as_dict(self) -> dict:
        path = self.critical_path
        return {"tool": "nextpnr-ecp5 (post-place-and-route static timing)", "part": self.part,
                "seed": SEED, "clock_mhz": self.clock_mhz, "fmax_mhz": self.fmax_mhz,
                "met": self.met, "utilisation": self.utilisation,
                "critical_path": path.__dict__ if path else None,
                "bitstream": str(self.bitstream) if self.bitstream else None,
                "seconds": self.seconds, "reused": self.reused, "folder": str(self.folder)}

    def line(self) -> str:
        share = ", ".join(f"{k} {v['used']:,} ({100 * v['used'] / v['available']:.0f} %)"
                          for k, v in self.utilisation.items() if v["available"])
        verdict = ("meets" if self.met else "MISSES") + f" the {self.clock_mhz:g} MHz clock"
        path = self.critical_path
        where = (f"; critical path {path.ns:.1f} ns ({path.logic_ns:.1f} logic, "
                 f"{path.routing_ns:.1f} routing) from {path.start} to {path.end}") if path else ""
        took = ("reused from the cache" if self.reused else
                ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()))
        return (f"place and route on {self.part} (nextpnr-ecp5, seed {SEED}): Fmax "
                f"{self.fmax_mhz:.1f} MHz, {verdict}; {share}{where} ({took})")


# --------------------------------------------------------------------------- digests
def _sources(hdl: Path, files: list[Path]) -> list[bytes]:
    """The files and the ROM contents they read."""
    parts = []
    for path in files:
        text = path.read_bytes()
        parts += [path.name.encode(), text]
        for rom in ROM_FILE.findall(text.decode(errors="replace")):
            if (hdl / rom).is_file():
                parts.append((hdl / rom).read_bytes())
    return parts


# --------------------------------------------------------------------------- progress
class _Follow:
    """Says the lines of a tool's log that mark its progress, while it runs."""

    def __init__(self, log: Path, say: Callable[[str], None], pattern: re.Pattern,
                 prefix: str):
        self.log, self.say, self.pattern, self.prefix = log, say, pattern, prefix
        self.stop = threading.Event()
        self.start = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        position = 0
        while not self.stop.wait(2.0):
            if not self.log.is_file():
                continue
            with open(self.log, errors="replace") as log:
                log.seek(position)
                lines = log.readlines()
                position = log.tell()
            for line in lines:
                if self.pattern.search(line):
                    self.say(f"{self.prefix} {line.strip().removeprefix('Info: ').strip()} "
                             f"({time.perf_counter() - self.start:.0f} s)")


NEXTPNR_PHASES = re.compile(r"Info: (Running main analytical placer|HeAP Placer Time|"
                            r"Running detail placement|Routing\.\.|Router2 time|"
                            r"Running router2|Max frequency for clock)")


# --------------------------------------------------------------------------- the flow
def synthesize_netlist(hdl: Path, files: list[Path], top: str,
                       say: Callable[[str], None],
                       primitives: tuple[Path, ...] = ()) -> tuple[Path, float]:
    """``synth_ecp5`` of ``top`` (flattened, block RAMs with their contents): the JSON netlist
    in the cache, and the seconds it took (0 when reused). ``primitives``: Verilog files that
    instantiate ECP5 primitives (a PLL), read by yosys' own front end, which knows them."""
    yosys = Yosys.find()

    def relative(paths) -> str:
        return " ".join(str(f.relative_to(hdl)) for f in paths)

    script = (f"{f'read_verilog {relative(primitives)}; ' if primitives else ''}"
              f"read_slang -j 1 -D {YOSYS_DEFINE} "
              f"{relative(f for f in files if f not in primitives)} "
              f"--top {top}; synth_ecp5 -top {top} -json {{out}}")
    files = [*files, *(p for p in primitives if p not in files)]
    key = _digest(SCRIPT_VERSION, "synth", yosys.version(), script, *_sources(hdl, files))
    work = cache_root() / "ecp5" / f"synth-{top}-{key}"
    netlist = work / "netlist.json"
    if (work / "complete").is_file():
        say(f"rtl: ECP5 netlist of {top} reused from the cache")
        return netlist, 0.0
    work.mkdir(parents=True, exist_ok=True)
    say(f"rtl: synthesizing {top} for the ECP5 (yosys synth_ecp5, a few minutes) ...")
    start = time.perf_counter()
    # yowasp tools see the files below their working folder: the netlist is written into hdl/
    # and moved to the cache
    scratch = hdl / f".{top}.ecp5.json"
    log = work / "synth.log"
    done = run_tool([str(yosys.program), "-p", script.format(out=scratch.name)], cwd=hdl,
                    log=log)
    if done.returncode != 0 or not scratch.is_file():
        scratch.unlink(missing_ok=True)
        raise RtlBackendError(f"yosys could not synthesize {top} for the ECP5 (exit "
                              f"{done.returncode}); its log: {log}. The build and its report "
                              f"are kept.")
    shutil.move(scratch, netlist)
    (work / "complete").write_text("")
    seconds = time.perf_counter() - start
    say(f"rtl: ECP5 netlist in {seconds:.0f} s")
    return netlist, seconds


def netlist_needs(netlist: Path) -> dict[str, int]:
    """What ``synth_ecp5``'s netlist asks of the chip, in the words of UTILISATION: EBRs and
    multipliers exactly; LUT4s and FFs as a lower bound (a carry cell or a distributed RAM cell
    takes two LUT4s; nextpnr adds feed-through LUTs when it packs)."""
    modules = json.loads(netlist.read_text())["modules"]
    top = next(m for m in modules.values() if int(m.get("attributes", {}).get("top", "0"), 2))
    count: dict[str, int] = {}
    for cell in top["cells"].values():
        count[cell["type"]] = count.get(cell["type"], 0) + 1
    return {"LUT4": count.get("LUT4", 0) + 2 * count.get("CCU2C", 0)
            + 2 * count.get("TRELLIS_DPR16X4", 0),
            "FF": count.get("TRELLIS_FF", 0), "EBR": count.get("DP16KD", 0),
            "DSP": count.get("MULT18X18D", 0)}


def check_fits(needs: dict[str, int], part: Ecp5Part, what: str) -> None:
    """Refuse, before nextpnr spends minutes finding out, a netlist larger than ``part``."""
    from ..devices import DEVICES

    device = DEVICES[part.name]
    has = {"LUT4": device.lut, "FF": device.lut, "EBR": device.bram18, "DSP": device.dsp}
    over = [f"{needs[k]:,} {k} of its {has[k]:,}" for k in has if needs[k] > has[k]]
    if over:
        raise RtlBackendError(
            f"{what} does not fit the {part.name}: the netlist needs {', '.join(over)}. Fold "
            f"it further (a lower --target-fps makes narrower, deeper weight memories: fewer "
            f"EBRs), or build without --place-route. The build and its report are kept.")


def place_and_route(netlist: Path, part: Ecp5Part, clock_mhz: float,
                    say: Callable[[str], None], pins: Path | None = None,
                    bitstream: Path | None = None,
                    layers: tuple[str, ...] = ()) -> PlaceRouteResult:
    """nextpnr-ecp5 on ``netlist`` for ``part`` at ``clock_mhz``; with ``pins`` (an LPF file)
    the ports are placed and ``bitstream`` is written by ecppack. ``layers``: the instance names
    that name the critical path's ends."""
    tools = NextpnrEcp5.find()
    check_fits(netlist_needs(netlist), part, "the design")
    arguments = [*part.arguments(), "--freq", f"{clock_mhz:g}", "--seed", str(SEED)]
    key = _digest(SCRIPT_VERSION, "pnr", tools.version(), " ".join(arguments),
                  netlist.read_bytes(), pins.read_bytes() if pins else b"no pins")
    work = cache_root() / "ecp5" / f"pnr-{key}"
    report, config = work / "report.json", work / "top.config"
    seconds: dict[str, float] = {}
    reused = (work / "complete").is_file()
    if not reused:
        work.mkdir(parents=True, exist_ok=True)
        for name, path in (("netlist.json", netlist), ("pins.lpf", pins)):
            if path is not None:
                shutil.copyfile(path, work / name)
        say(f"rtl: place and route on {part.name} at {clock_mhz:g} MHz (nextpnr-ecp5, "
            f"minutes) ...")
        log = work / "nextpnr.log"
        start = time.perf_counter()
        with _Follow(log, say, NEXTPNR_PHASES, "rtl: nextpnr:"):
            done = run_tool([str(tools.nextpnr), *arguments, "--json", "netlist.json",
                             "--textcfg", "top.config", "--report", "report.json",
                             *(["--lpf", "pins.lpf"] if pins else ["--lpf-allow-unconstrained"])],
                            cwd=work, log=log)
        seconds["place and route"] = time.perf_counter() - start
        # nextpnr exits 1 when timing fails, but still writes its report and the configuration
        if not report.is_file() or not config.is_file():
            raise RtlBackendError(f"nextpnr-ecp5 did not place and route the design (exit "
                                  f"{done.returncode}); its log: {log}. "
                                  f"{_nextpnr_error(log)}The build and its report are kept.")
        (work / "complete").write_text("")
    if bitstream is not None:
        start = time.perf_counter()
        scratch = work / "top.bit"
        if not scratch.is_file():
            done = run_tool([str(tools.ecppack), "--compress", "top.config", "top.bit"],
                            cwd=work, log=work / "ecppack.log")
            if done.returncode != 0 or not scratch.is_file():
                raise RtlBackendError(f"ecppack could not write the bitstream (exit "
                                      f"{done.returncode}); its log: {work / 'ecppack.log'}")
            seconds["bitstream"] = time.perf_counter() - start
        bitstream.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scratch, bitstream)
    return read_report(json.loads(report.read_text()), part, clock_mhz, layers, bitstream,
                       seconds, reused, work)


def _nextpnr_error(log: Path) -> str:
    errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
              if line.startswith("ERROR")] if log.is_file() else []
    return f"It says: {errors[0]} " if errors else ""


# --------------------------------------------------------------------------- the report
def layer_of(cell: str, layers: tuple[str, ...]) -> str:
    """The layer a flattened cell belongs to (the first level of its hierarchical name that is
    a layer: a board's top holds the accelerator a few levels down), else the logic around."""
    for level in cell.lstrip("\\").split("."):
        if level in layers:
            return level
    return "the logic around the layers (link, top)"


def read_report(report: dict, part: Ecp5Part, clock_mhz: float, layers: tuple[str, ...],
                bitstream: Path | None, seconds: dict[str, float], reused: bool,
                folder: Path) -> PlaceRouteResult:
    """nextpnr's JSON report: the slowest clock's achieved Fmax, the utilisation of the cell
    types FINN's words name, and the critical path of that clock."""
    fmax = report.get("fmax") or {}
    if not fmax:
        raise RtlBackendError(f"nextpnr's report ({folder / 'report.json'}) has no clock: the "
                              f"design's clock net was not found")
    # the clock furthest from its constraint (a board has its oscillator's too)
    clock = min(fmax, key=lambda name: fmax[name]["achieved"] / fmax[name]["constraint"])
    used = report.get("utilization", {})
    utilisation = {word: {"used": int(used.get(cell, {}).get("used", 0)),
                          "available": int(used.get(cell, {}).get("available", 0))}
                   for word, cell in UTILISATION.items()}
    path = None
    for critical in report.get("critical_paths", []):
        if (critical.get("from") == f"posedge {clock}" and
                critical.get("to") == f"posedge {clock}" and critical["path"]):
            steps = critical["path"]
            routing = sum(s["delay"] for s in steps if s["type"] == "routing")
            total = sum(s["delay"] for s in steps)
            start, end = steps[0]["from"]["cell"], steps[-1]["to"]["cell"]
            path = CriticalPath(layer_of(start, layers), layer_of(end, layers), total,
                                total - routing, routing, start, end)
    return PlaceRouteResult(part.name, float(fmax[clock]["constraint"]),
                            float(fmax[clock]["achieved"]), utilisation,
                            path, bitstream, seconds, reused, folder)
