"""finn-rtllib's modules as the RTL backend uses them: FINN's own ``generate_hdl`` writes a node's
wrapper, and the library files it names are copied beside it with the few fixes the open-source
tools need. Each fix names the file and the text it replaces and must match exactly once, so a
finn-plus release that changes the file stops the build with a clear message instead of
compiling something else.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import XnorflowError


class ShimOutdated(XnorflowError):
    """A finn-rtllib file no longer has the text a fix expects."""


@dataclass(frozen=True)
class Fix:
    file: str          # finn-rtllib file name
    why: str
    pattern: str       # regular expression (re.S)
    replacement: str
    once: bool = True  # the pattern matches exactly once (else: at least once)


# yosys's SystemVerilog front end (slang) refuses compiler directives inside a module; they
# only set the implicit net type, which these files never rely on.
DIRECTIVES = re.compile(r"^[ \t]*`default_nettype[^\n]*\n", re.M)

FIXES = (
    Fix("fifo.sv", "Verilator cannot evaluate a constant function that returns a struct: the "
        "two address widths are computed by two integer functions",
        r"\ttypedef struct \{\n\t\tint unsigned  lo;\n\t\tint unsigned  hi;\n\t\} abits_t;\n"
        r"\tfunction abits_t INIT_ABITS\(\);\n(?P<body>.*?)\tendfunction : INIT_ABITS\n"
        r"\tlocalparam abits_t       ABITS      = INIT_ABITS\(\);\n",
        "\tfunction int unsigned INIT_ABITS_LO();\n"
        "\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);\n"
        "\t\tif(lo > MIN_ABITS && $clog2(DEPTH_REQ - 2**(lo-1)) < lo - 1)  lo--;\n"
        "\t\treturn  lo;\n"
        "\tendfunction : INIT_ABITS_LO\n"
        "\tfunction int unsigned INIT_ABITS_HI();\n"
        "\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);\n"
        "\t\tif(lo > MIN_ABITS) begin\n"
        "\t\t\tautomatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(lo-1));\n"
        "\t\t\tif(hi_abits < lo - 1)  return  hi_abits < 1? 1 : hi_abits;\n"
        "\t\tend\n"
        "\t\treturn  0;\n"
        "\tendfunction : INIT_ABITS_HI\n"
        "\tlocalparam int unsigned  ABITS_LO = INIT_ABITS_LO();\n"
        "\tlocalparam int unsigned  ABITS_HI = INIT_ABITS_HI();\n"),
    Fix("fifo.sv", "the struct's fields become the two parameters", r"ABITS\.lo", "ABITS_LO",
        once=False),
    Fix("fifo.sv", "the struct's fields become the two parameters", r"ABITS\.hi", "ABITS_HI",
        once=False),
    # FIFO sizing searches each FIFO's depth with one simulator: the gauge takes a capacity at
    # run time (the harness's xnorflow_fifo_capacity, harness/fifo_capacity.cpp; unbounded when
    # none is given), ready only while it holds fewer words
    Fix("fifo_gauge.sv", "a run-time capacity for the FIFO-sizing search",
        r"\tint unsigned  MaxCount = 0;\n",
        "\tint unsigned  MaxCount = 0;\n"
        "\timport \"DPI-C\" function int unsigned xnorflow_fifo_capacity(input string path);\n"
        "\tint unsigned  Cap = 32'hFFFFFFFF;\n"
        "\tinitial  Cap = xnorflow_fifo_capacity($sformatf(\"%m\"));\n"),
    Fix("fifo_gauge.sv", "a run-time capacity for the FIFO-sizing search",
        r"\t\t\tif\(ivld\) begin\n", "\t\t\tif(ivld && irdy) begin\n"),
    Fix("fifo_gauge.sv", "a run-time capacity for the FIFO-sizing search",
        r"\tassign\tirdy = 1;\n", "\tassign\tirdy = Count < Cap;\n"),
)


# FINN's generated wrappers (e.g. the sliding-window generator's) size their ports with
# parameters the module body declares afterwards; Vivado and Verilator accept that, slang
# does not. Without a ``#(...)`` header a body parameter is a header parameter, so moving them
# there changes nothing else.
PLAIN_HEADER = re.compile(r"^module\s+\w+\s*(?=\()", re.M)
BODY_PARAMETER = re.compile(r"^parameter\s+(\w+)\s*=\s*([^;]+);[^\n]*\n", re.M)


def hoist_parameters(text: str) -> str:
    """``text`` with a header-less module's column-0 ``parameter`` lines as its ``#(...)``."""
    header = PLAIN_HEADER.search(text)
    parameters = BODY_PARAMETER.findall(text)
    if header is None or not parameters or len(PLAIN_HEADER.findall(text)) != 1:
        return text
    listing = ",\n".join(f"\tparameter {name} = {value.strip()}" for name, value in parameters)
    text = BODY_PARAMETER.sub("", text)
    header = PLAIN_HEADER.search(text)
    return f"{text[:header.end()]}#(\n{listing}\n) {text[header.end():]}"


def patched(name: str, text: str) -> str:
    """``text`` of the finn-rtllib file ``name`` with its fixes (and without directives)."""
    text = hoist_parameters(DIRECTIVES.sub("", text))
    for fix in (f for f in FIXES if f.file == name):
        count = len(re.findall(fix.pattern, text, flags=re.S))
        if count == 0 or (fix.once and count > 1):
            raise ShimOutdated(f"finn-rtllib's {name} no longer has the text xnorflow fixes "
                               f"({fix.why}); this finn-plus is not supported by the RTL "
                               f"backend yet (xnorflow.hw.rtl.rtllib.FIXES).")
        text = re.sub(fix.pattern, fix.replacement, text, flags=re.S)
    return text


def copy_patched(source: Path, folder: Path) -> Path:
    target = folder / source.name
    text = patched(source.name, source.read_text())
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def finn_rtl_files(node, model, folder: Path, fpga_part: str, clock_ns: float) -> list[Path]:
    """The HDL of a FINN ``_rtl`` node in ``folder``: its library files (fixed), then the
    wrapper FINN's ``generate_hdl`` writes (named after the node)."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    with tempfile.TemporaryDirectory() as tmp:
        inst.set_nodeattr("code_gen_dir_ipgen", tmp)
        inst.generate_hdl(model, fpga_part, clock_ns)
        files = [Path(p) for p in inst.get_rtl_file_list(abspath=True)]
        wrappers = [p for p in files if p.parent == Path(tmp)]
        library = [copy_patched(p, folder) for p in files if p.parent != Path(tmp)]
        copied = [copy_patched(p, folder) for p in wrappers]
    inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
    return library + copied


def own_files() -> list[Path]:
    """xnorflow's own modules."""
    return sorted((Path(__file__).parent / "hdl").glob("*.sv"))


def unique(files: list[Path]) -> list[Path]:
    """Each file once, in first-seen order (library files are shared by instances)."""
    return list(dict.fromkeys(files))
