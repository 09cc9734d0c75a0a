"""Each node of FINN's folded dataflow graph as an RTL instance: which module, with which
parameters and ROM contents, and why not where the backend cannot generate it.

- ``MVAU_hls`` (binary XNOR-popcount or a quantized first layer, thresholds fused) and
  ``LabelSelect_hls`` (K = 1) become xnorflow's own modules (``hdl/``): FINN's RTL MVU is
  DSP-based and has no XNOR mode or fused thresholds, and FINN has no RTL LabelSelect.
- The ``_rtl`` nodes FINN's own transformations insert or specialize (``StreamingFIFO_rtl``,
  ``ConvolutionInputGenerator_rtl``, ``FMPadding_rtl``) keep FINN's code: their
  ``generate_hdl`` writes the wrapper of a finn-rtllib module (:mod:`.rtllib` copies those,
  with the fixes the open tools need). Width converters are xnorflow's (``xnorflow_dwc``):
  finn-rtllib's crashes Verilator 5.48 for some width pairs.

Every instance has the same ports (``ap_clk``, ``ap_rst_n``, ``in0_V_*``, ``out0_V_*``: AXI
streams of whole bytes, element 0 in the least significant bits, as FINN packs them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


class NotGeneratable(Exception):
    """A node the RTL backend cannot generate; the message says why."""


@dataclass
class Instance:
    """One layer of the stitched design."""

    name: str                     # the node's name, also the instance and wrapper module name
    op_type: str
    module: str                   # the module the wrapper instantiates
    in_bits: int                  # padded AXI widths of the streams
    out_bits: int
    input: str                    # tensor names in FINN's graph
    output: str
    expected_cycles: int          # FINN's estimate (get_exp_cycles)
    files: list[Path] = field(default_factory=list)   # HDL of this instance (wrapper last)
    has_count: bool = False       # a FIFO: count/maxcount ports (occupancy, for sizing)
    tied: str = ""                # connections of further inputs, tied off
    params: dict = field(default_factory=dict)   # the module's parameters (xnorflow's modules)


# --------------------------------------------------------------------------- the registry
Params = tuple[dict, list[tuple[str, str]]]     # integer parameters, string parameters


@dataclass(frozen=True)
class Generator:
    """How one op kind of FINN's graph becomes RTL: xnorflow's module with the parameters
    ``make`` computes, or (``module`` None) FINN's own ``generate_hdl`` of the node."""

    op_type: str
    module: str | None
    make: Callable | None = None          # (node, custom op, model, folder) -> Params
    check: Callable | None = None         # (node, model) -> a reason it cannot be, or None
    has_count: bool = False
    tied: str = ""


GENERATORS: dict[str, Generator] = {}


def register(op_type: str, module: str | None = None, check: Callable | None = None,
             has_count: bool = False, tied: str = ""):
    """Register the function below as the generator of ``op_type`` (FINN's node kind)."""
    def add(make: Callable | None) -> Callable | None:
        GENERATORS[op_type] = Generator(op_type, module, make, check, has_count, tied)
        return make
    return add


def _finn_generated(op_type: str, has_count: bool = False, tied: str = "") -> None:
    """A node kind whose RTL is FINN's (a finn-rtllib module and FINN's wrapper)."""
    register(op_type, None, has_count=has_count, tied=tied)(None)


def signed_bits(low: int, high: int) -> int:
    """Bits of a two's complement number that holds every integer in [low, high]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= low and high <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def _datatype(inst, name: str):
    from qonnx.core.datatype import DataType

    return DataType[inst.get_nodeattr(name)]


def _element(datatype) -> tuple[int, bool]:
    """(bits, signed) of an element as the stream carries it; bipolar values as 2-bit
    two's complement -1/+1 where they are multiplied (XNOR layers carry them as 0/1)."""
    if datatype.name == "BIPOLAR":
        return 2, True
    return datatype.bitwidth(), datatype.signed()


def _hex_rows(rows: list[int], bits: int) -> str:
    digits = max(1, (bits + 3) // 4)
    return "".join(f"{row:0{digits}x}\n" for row in rows)


def _pack(values: np.ndarray, bits: int) -> int:
    """Integers, element 0 in the least significant bits, each ``bits`` wide (two's
    complement)."""
    word, mask = 0, (1 << bits) - 1
    for i, v in enumerate(values.astype(np.int64).tolist()):
        word |= (int(v) & mask) << (i * bits)
    return word


def mvau_rom_words(weights: np.ndarray, pe: int, simd: int, bits: int) -> list[int]:
    """The weight ROM of an MVAU: word nf*SF + sf holds, at element p*SIMD + s, the weight of
    input sf*SIMD + s of neuron nf*PE + p (``weights`` is MW x MH, FINN's layout)."""
    mw, mh = weights.shape
    sf_count, nf_count = mw // simd, mh // pe
    words = []
    for nf in range(nf_count):
        for sf in range(sf_count):
            block = weights[sf * simd:(sf + 1) * simd, nf * pe:(nf + 1) * pe]   # SIMD x PE
            words.append(_pack(block.T.reshape(-1), bits))
    return words


@register("MVAU_hls", "xnorflow_mvau")
def _mvau(node, inst, model, folder: Path) -> Params:
    if inst.get_nodeattr("TH") != 1:
        raise NotGeneratable(f"{node.name}: a tiled MVAU (TH = {inst.get_nodeattr('TH')})")
    mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
    pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
    xnor = bool(inst.get_nodeattr("binaryXnorMode"))
    idt, wdt, odt = (_datatype(inst, n) for n in ("inputDataType", "weightDataType",
                                                  "outputDataType"))
    weights = model.get_initializer(node.input[1])
    if xnor:
        if idt.bitwidth() != 1 or wdt.bitwidth() != 1:
            raise NotGeneratable(f"XNOR mode with {idt.name} inputs and {wdt.name} weights")
        ibits, isigned, wbits, wsigned = 1, False, 1, False
        low, high = 0, mw
    else:
        (ibits, isigned), (wbits, wsigned) = _element(idt), _element(wdt)
        products = [a * b for a in (idt.min(), idt.max()) for b in (wdt.min(), wdt.max())]
        low, high = int(mw * min(products + [0])), int(mw * max(products + [0]))
    no_activation = bool(inst.get_nodeattr("noActivation"))
    thresholds = None if no_activation else model.get_initializer(node.input[2])
    if thresholds is not None:
        thresholds = np.broadcast_to(thresholds, (mh, thresholds.shape[-1]))
        if not np.array_equal(thresholds, np.round(thresholds)):
            raise NotGeneratable("thresholds that are not integers")
        tbits = signed_bits(int(thresholds.min()), int(thresholds.max()))
    else:
        tbits = 1
    abits = max(signed_bits(low, high), 2)
    stem = folder / node.name
    rom = mvau_rom_words(weights, pe, simd, wbits)
    (stem.with_suffix(".weights.dat")).write_text(_hex_rows(rom, pe * simd * wbits))
    params = {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd,
              "VECTORS": int(np.prod(inst.get_nodeattr("numInputVectors"))),
              "IBITS": ibits, "WBITS": wbits, "OBITS": odt.bitwidth(), "ABITS": abits,
              "TBITS": tbits, "NTHRES": 0 if thresholds is None else thresholds.shape[1],
              "XNOR": int(xnor), "ISIGNED": int(isigned), "WSIGNED": int(wsigned),
              "ACTVAL": int(inst.get_nodeattr("ActVal"))}
    strings = [("WEIGHTS_FILE", stem.with_suffix(".weights.dat").name),
               ("RAM_STYLE", inst.get_nodeattr("ram_style"))]
    if thresholds is not None:
        nthres = thresholds.shape[1]
        words = [_pack(thresholds[nf * pe:(nf + 1) * pe].reshape(-1), tbits)
                 for nf in range(mh // pe)]
        (stem.with_suffix(".thresholds.dat")).write_text(_hex_rows(words, pe * nthres * tbits))
        strings.append(("THRESHOLDS_FILE", stem.with_suffix(".thresholds.dat").name))
    return params, strings


@register("LabelSelect_hls", "xnorflow_labelselect")
def _labelselect(node, inst, model, folder: Path) -> Params:
    if inst.get_nodeattr("K") != 1:
        raise NotGeneratable(f"LabelSelect with K = {inst.get_nodeattr('K')} (only the top-1 "
                             f"class is generated)")
    idt, odt = _datatype(inst, "inputDataType"), _datatype(inst, "outputDataType")
    return {"LABELS": inst.get_nodeattr("Labels"), "PE": inst.get_nodeattr("PE"),
            "IBITS": idt.bitwidth(), "ISIGNED": int(idt.signed()),
            "OBITS": odt.bitwidth()}, []


def _maxpool_source(node, model) -> str | None:
    """The max-pool reads a depthwise sliding window of SIMD = PE directly (FIFOs between)."""
    from qonnx.custom_op.registry import getCustomOp

    window = window_source(model, node)
    pe = getCustomOp(node).get_nodeattr("PE")
    if window is None or not getCustomOp(window).get_nodeattr("depthwise") or \
            getCustomOp(window).get_nodeattr("SIMD") != pe:
        return (f"the max-pool reads a depthwise sliding window of SIMD = PE = {pe} directly "
                f"(through FIFOs only)")
    return None


@register("Pool_hls", "xnorflow_maxpool", check=_maxpool_source)
def _maxpool(node, inst, model, folder: Path) -> Params:
    if inst.get_nodeattr("Function") != "MaxPool":
        raise NotGeneratable(f"{node.name}: pooling function {inst.get_nodeattr('Function')} "
                             f"(max-pooling only)")
    idt = _datatype(inst, "InputDataType")
    return {"PE": inst.get_nodeattr("PE"),
            "KK": int(np.prod(inst.get_nodeattr("KernelSize"))),
            "IBITS": idt.bitwidth(), "ISIGNED": int(idt.signed())}, []


# finn-rtllib's dwc_axi crashes Verilator 5.48 for some width pairs: xnorflow's converter
@register("StreamingDataWidthConverter_rtl", "xnorflow_dwc")
def _width_converter(node, inst, model, folder: Path) -> Params:
    bits = _datatype(inst, "dataType").bitwidth()
    return {"EBITS": bits, "IN": inst.get_nodeattr("inWidth") // bits,
            "OUT": inst.get_nodeattr("outWidth") // bits}, []


def wrapper(name: str, module: str, params: dict, strings: list[tuple[str, str]],
            in_bits: int, out_bits: int) -> str:
    """A module named after the node around ``module``, with FINN's port names."""
    assigned = [f".{k}({v})" for k, v in params.items()] + [f'.{k}("{v}")' for k, v in strings]
    return (f"// generated by xnorflow.hw.rtl.layers for the node {name}\n"
            f"module {name} (\n"
            f"\tinput  wire ap_clk,\n\tinput  wire ap_rst_n,\n"
            f"\toutput wire in0_V_TREADY,\n\tinput  wire in0_V_TVALID,\n"
            f"\tinput  wire [{in_bits - 1}:0] in0_V_TDATA,\n"
            f"\tinput  wire out0_V_TREADY,\n\toutput wire out0_V_TVALID,\n"
            f"\toutput wire [{out_bits - 1}:0] out0_V_TDATA\n);\n"
            f"\t{module} #(\n\t\t" + ",\n\t\t".join(assigned) + "\n\t) impl (\n"
            "\t\t.ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
            "\t\t.in0_V_TREADY(in0_V_TREADY), .in0_V_TVALID(in0_V_TVALID), "
            ".in0_V_TDATA(in0_V_TDATA),\n"
            "\t\t.out0_V_TREADY(out0_V_TREADY), .out0_V_TVALID(out0_V_TVALID), "
            ".out0_V_TDATA(out0_V_TDATA)\n\t);\nendmodule\n")


def check_supported(model) -> list[str]:
    """'node (op): reason' for every node the backend cannot generate (empty: all can be)."""
    problems = []
    for node in model.graph.node:
        generator = GENERATORS.get(node.op_type)
        reason = ("no RTL module for this layer kind" if generator is None
                  else generator.check(node, model) if generator.check else None)
        if reason:
            problems.append(f"{node.name} ({node.op_type}): {reason}")
    return problems


def window_source(model, node):
    """The sliding-window generator feeding ``node`` through FIFOs, or None."""
    producer = model.find_producer(node.input[0])
    while producer is not None and producer.op_type.startswith("StreamingFIFO"):
        producer = model.find_producer(producer.input[0])
    if producer is not None and producer.op_type.startswith("ConvolutionInputGenerator"):
        return producer
    return None


def instance(node, model, folder: Path, fpga_part: str, clock_ns: float) -> Instance:
    """Generate the HDL of ``node`` into ``folder``; its instance description."""
    from qonnx.custom_op.registry import getCustomOp

    from .rtllib import finn_rtl_files

    generator = GENERATORS.get(node.op_type)
    if generator is None:
        raise NotGeneratable(f"{node.name} ({node.op_type}): no RTL module for this layer kind")
    inst = getCustomOp(node)
    in_bits, out_bits = inst.get_instream_width_padded(), inst.get_outstream_width_padded()
    described = Instance(node.name, node.op_type, generator.module or node.name, in_bits,
                         out_bits, node.input[0], node.output[0], int(inst.get_exp_cycles()),
                         has_count=generator.has_count, tied=generator.tied)
    if generator.module is None:
        described.files = finn_rtl_files(node, model, folder, fpga_part, clock_ns)
        return described
    params, strings = generator.make(node, inst, model, folder)
    path = folder / f"{node.name}.v"
    path.write_text(wrapper(node.name, generator.module, params, strings, in_bits, out_bits))
    described.files, described.params = [path], params
    return described


_finn_generated("StreamingFIFO_rtl", has_count=True)
_finn_generated("ConvolutionInputGenerator_rtl")
# FMPadding's run-time configuration port, tied off
_finn_generated("FMPadding_rtl", tied=".s_axilite_AWVALID(1'b0), .s_axilite_AWADDR(5'd0), "
                                      ".s_axilite_WVALID(1'b0), .s_axilite_WDATA(32'd0), "
                                      ".s_axilite_WSTRB(4'd0), .s_axilite_BREADY(1'b0), "
                                      ".s_axilite_ARVALID(1'b0), .s_axilite_ARADDR(5'd0), "
                                      ".s_axilite_RREADY(1'b0)")
