"""`xnorflow hls`: emit the local binary trainer of a BMLP as Vitis-HLS-style C++.

The generated folder holds the layer templates (``bmlp_kernels.h``, size-free), a stream class
for C simulation with g++ (``bmlp_stream.h``), and, generated for the given shape: the sizes and
the fixed local classifiers (``bmlp_config.h``), two top functions (``bmlp_train_step``,
``bmlp_infer`` in ``bmlp_top.cpp``), a testbench that replays batches from a binary file
(``tb_bmlp.cpp``), a Tcl script for ``vitis_hls`` (csim, csynth, IP export of each top) and a
README with the memory the design needs and whether it fits the supported devices.

Each generated text file comes from a template ``templates/<file>.in`` with marked slots
(``{{name}}``, see :func:`fill_template`), filled with text computed here; the per-layer code
(declarations, calls, loops over the layers) is produced by the small functions below.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import XnorflowError
from ...options import AT_LEAST_1, option, validate_fields
from ...outputs import write_bytes, write_text
from ...train.local_binary.model import BMLPShape, BMLPState
from ..devices import DEVICES, Device, boards_of
from ..divisors import common_divisors, listed

TEMPLATES = Path(__file__).parent / "templates"
STATIC_FILES = ("bmlp_kernels.h", "bmlp_stream.h")
GENERATED_FILES = ("bmlp_config.h", "bmlp_top.h", "bmlp_top.cpp", "tb_bmlp.cpp", "run_hls.tcl",
                   "README.md", "design.json")
MAX_CLASSES = 256          # labels and predictions travel as ap_uint<8>
BRAM18_BITS = 18 * 1024
URAM_BITS = 288 * 1024
# The devices a design is checked against, smallest first: Pynq-Z1/Z2 and ZCU104.
HLS_DEVICES = (DEVICES["xc7z020clg400-1"], DEVICES["xczu7ev-ffvc1156-2-e"])


class HlsError(XnorflowError, ValueError):
    """A shape or option the HLS generator cannot honour; the message says what to change."""


@dataclass(frozen=True)
class HlsOptions:
    pe: int = option(1, "neurons per cycle; divides every width", range=AT_LEAST_1)
    simd: int = option(1, "inputs per cycle; divides the input size and every width",
                       range=AT_LEAST_1)
    batch_max: int = option(100, "largest batch the design buffers (default: the run's batch "
                            "size)", range=AT_LEAST_1)
    part: str | None = option(None, "FPGA part for the Tcl script (default: the smallest "
                              "supported device that fits)", choices=tuple(DEVICES))

    def __post_init__(self):
        validate_fields(self)


def validate(shape: BMLPShape, options: HlsOptions) -> None:
    if shape.num_classes > MAX_CLASSES:
        raise HlsError(f"{shape.num_classes} classes: the HLS design carries labels as 8 bits "
                       f"(at most {MAX_CLASSES} classes)")
    bad_pe = [w for w in shape.widths if w % options.pe]
    if bad_pe:
        raise HlsError(f"--pe {options.pe} does not divide the layer width(s) {bad_pe}; choose a "
                       f"common divisor of {list(shape.widths)}: "
                       f"{listed(common_divisors(shape.widths, 64))}")
    sizes = (shape.in_features, *shape.widths)
    bad_simd = [s for s in sizes if s % options.simd]
    if bad_simd:
        raise HlsError(f"--simd {options.simd} does not divide {bad_simd}; it must divide the "
                       f"input size and every width {list(sizes)}: "
                       f"{listed(common_divisors(sizes, 64))}")


@dataclass(frozen=True)
class MemoryEstimate:
    weight_bits: int          # hidden weights: bits x weights, all layers
    buffer_bits: int          # signs, pre-activations, masks, input columns, activations
    bram18: int               # if everything sits in BRAM18 (partitioned as the pragmas say)
    fits: dict                # device family -> "BRAM" | "BRAM+URAM" | "no"

    @property
    def total_bits(self) -> int:
        return self.weight_bits + self.buffer_bits


BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def _bram18_for(depth: int, width: int, banks: int) -> int:
    """BRAM18 blocks for ``banks`` memories of ``depth`` words of ``width`` bits, each in the
    block aspect ratio (16K x 1 ... 512 x 36) that needs the fewest blocks."""
    if not depth or not width:
        return 0
    return banks * min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)


def estimate_memory(shape: BMLPShape, options: HlsOptions) -> MemoryEstimate:
    weight_bits = buffer_bits = bram = 0
    batch = options.batch_max
    for fan_in, width in zip(shape.fan_ins, shape.widths):
        pre_bits = math.ceil(math.log2(fan_in + 1)) + 1
        weights = fan_in * width
        weight_bits += weights * shape.weight_bits
        bram += _bram18_for(weights // (options.pe * options.simd), shape.weight_bits,
                            options.pe * options.simd)
        layer_buffers = (weights                          # sign plane
                         + batch * width * pre_bits       # pre-activations of the batch
                         + 2 * width * batch              # masks and targets
                         + fan_in * batch                 # input columns
                         + batch * width)                 # activations for the next layer
        buffer_bits += layer_buffers
        bram += _bram18_for(width * fan_in // (options.pe * options.simd), 1, options.pe)
        bram += _bram18_for(batch * width // options.pe, pre_bits, options.pe)
        bram += _bram18_for(width // options.pe, batch, 2 * options.pe)
        bram += _bram18_for(fan_in // options.simd, batch, options.simd)
        bram += _bram18_for(batch * width // options.simd, options.simd, 1)
    fits = {}
    for device in HLS_DEVICES:
        if bram <= device.bram18:
            fits[device.family] = "BRAM"
        elif device.uram and weight_bits + buffer_bits <= (device.bram18 * BRAM18_BITS
                                                           + device.uram * URAM_BITS):
            fits[device.family] = "BRAM+URAM"
        else:
            fits[device.family] = "no"
    return MemoryEstimate(weight_bits, buffer_bits, bram, fits)


def smallest_device(estimate: MemoryEstimate) -> Device | None:
    return next((d for d in HLS_DEVICES if estimate.fits[d.family] != "no"), None)


# ------------------------------------------------------------------------------ templates
SLOT = re.compile(r"\{\{([a-z][a-z0-9_]*)\}\}")


class TemplateError(ValueError):
    """A template and the code filling it disagree: a bug in xnorflow, not in the input."""


def fill_template(name: str, **slots) -> str:
    """The text of ``templates/<name>`` with every slot replaced by its value.

    Slot syntax, the one way for every template (C++, Tcl, Markdown): ``{{name}}``, a lower-case
    identifier in double braces, inline anywhere in a line; a slot may occur more than once. A
    slot that carries several lines (per-layer code) stands alone on its line and its value has
    no trailing newline. Values are inserted verbatim (``str()`` of the value), in one pass, so a
    value is never scanned for slots. Templates hold no other ``{{`` or ``}}``. Raises
    :class:`TemplateError` if the template has a slot no keyword fills, a keyword names a slot
    the template lacks, or a double brace is not a well-formed slot.
    """
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    found = set(SLOT.findall(text))
    unfilled, unknown = sorted(found - slots.keys()), sorted(slots.keys() - found)
    if unfilled or unknown:
        raise TemplateError(f"template {name}: slots without a value {unfilled}, values without "
                            f"a slot {unknown}")
    stray = re.search(r"\{\{|\}\}", SLOT.sub(lambda m: " " * len(m.group()), text))
    if stray:
        line = text.count("\n", 0, stray.start()) + 1
        raise TemplateError(f"template {name}, line {line}: '{stray.group()}' is not a slot "
                            f"({{{{lower_case_name}}}})")
    return SLOT.sub(lambda m: str(slots[m.group(1)]), text)


# ------------------------------------------------------------------------------ generation
def _classifier_table(state: BMLPState, layer: int) -> str:
    b = state.classifiers[layer]
    words = []
    for row in b:
        value = sum(1 << c for c, v in enumerate(row) if v > 0)
        words.append(f"0x{value:x}")
    lines = [", ".join(words[k:k + 12]) for k in range(0, len(words), 12)]
    return ",\n    ".join(lines)


def _config_layer(state: BMLPState, k: int) -> str:
    shape = state.shape
    fan_in, width = shape.fan_ins[k], shape.widths[k]
    return "\n".join([
        f"// layer {k}: {fan_in} -> {width}, groups of {shape.group_sizes[k]}, "
        f"margin floor({shape.margin_ratio} * {width}) = {shape.margins[k]}",
        f"#define L{k}_IN {fan_in}", f"#define L{k}_OUT {width}",
        f"#define L{k}_GROUP {shape.group_sizes[k]}",
        f"#define L{k}_MARGIN {shape.margins[k]}",
        f"// local classifier B_{k}: bit c of entry j is B[j][c] = +1",
        f"static const ap_uint<BMLP_CLASSES> L{k}_B[L{k}_OUT] = {{",
        f"    {_classifier_table(state, k)}}};"])


def _config_header(state: BMLPState, options: HlsOptions) -> str:
    shape = state.shape
    return fill_template(
        "bmlp_config.h.in", layer_count=len(shape.widths), in_features=shape.in_features,
        in_words=math.ceil(shape.in_features / 64), classes=shape.num_classes,
        weight_bits=shape.weight_bits, batch=options.batch_max, pe=options.pe,
        simd=options.simd,
        layer_blocks="\n\n".join(_config_layer(state, k) for k in range(len(shape.widths))))


def _weight_params(layers: int, const: bool) -> str:
    qualifier = "const " if const else ""
    return ", ".join(f"{qualifier}ap_int<BMLP_WEIGHT_BITS> w{k}[L{k}_OUT][L{k}_IN]"
                     for k in range(layers))


def _top_header(layers: int) -> str:
    return fill_template("bmlp_top.h.in", weight_params=_weight_params(layers, False),
                         const_weight_params=_weight_params(layers, True))


def _interface_pragmas(layers: int, train: bool) -> str:
    lines = ["#pragma HLS INTERFACE mode = axis port = x_in",
             "#pragma HLS INTERFACE mode = axis port = prediction_out",
             "#pragma HLS INTERFACE mode = s_axilite port = n",
             "#pragma HLS INTERFACE mode = s_axilite port = return"]
    if train:
        lines += ["#pragma HLS INTERFACE mode = axis port = y_in",
                  "#pragma HLS INTERFACE mode = axis port = stats_out",
                  "#pragma HLS INTERFACE mode = s_axilite port = seed",
                  "#pragma HLS INTERFACE mode = s_axilite port = step",
                  "#pragma HLS INTERFACE mode = s_axilite port = thresholds"]
    for k in range(layers):
        lines += [f"#pragma HLS INTERFACE mode = bram port = w{k}",
                  f"#pragma HLS ARRAY_PARTITION variable = w{k} cyclic factor = BMLP_PE dim = 1",
                  f"#pragma HLS ARRAY_PARTITION variable = w{k} cyclic factor = BMLP_SIMD dim = 2"]
    return "\n".join("    " + line for line in lines)


def _layer_args(k: int) -> str:
    return (f"L{k}_IN, L{k}_OUT, BMLP_CLASSES, L{k}_GROUP, L{k}_MARGIN, BMLP_PE, BMLP_SIMD, "
            f"BMLP_BATCH, BMLP_WEIGHT_BITS")


def _train_call(k: int) -> str:
    src = "x" if k == 0 else f"a{k - 1}"
    return (f"    wrong = bmlp::train_layer<{_layer_args(k)}>(\n"
            f"        {src}, count, w{k}, L{k}_B, y, thresholds[{k}],\n"
            f"        bmlp::stream_key(seed, step, {k}), a{k}, prediction, marked);\n"
            "    stats_out.write(wrong);\n"
            "    stats_out.write(marked);")


def _infer_signs(k: int) -> str:
    return (f"    static ap_uint<BMLP_SIMD> s{k}[L{k}_OUT][L{k}_IN / BMLP_SIMD];\n"
            f"#pragma HLS ARRAY_PARTITION variable = s{k} cyclic factor = BMLP_PE dim = 1\n"
            f"    bmlp::weight_signs<L{k}_IN, L{k}_OUT, BMLP_PE, BMLP_SIMD, "
            f"BMLP_WEIGHT_BITS>(w{k}, s{k});")


def _infer_layer(k: int) -> str:
    return (f"        ap_uint<BMLP_SIMD> r{k + 1}[L{k}_OUT / BMLP_SIMD];\n"
            f"        ap_int<bmlp::bits_for(L{k}_OUT) + 1> o{k}[BMLP_CLASSES];\n"
            f"        bmlp::infer_layer<L{k}_IN, L{k}_OUT, BMLP_CLASSES, BMLP_PE, BMLP_SIMD, "
            f"BMLP_WEIGHT_BITS>(r{k}, s{k}, L{k}_B, r{k + 1}, o{k});")


def _per_layer(code, layers: int) -> str:
    return "\n".join(code(k) for k in range(layers))


def _top_source(layers: int) -> str:
    return fill_template(
        "bmlp_top.cpp.in", weight_params=_weight_params(layers, False),
        const_weight_params=_weight_params(layers, True),
        train_pragmas=_interface_pragmas(layers, True),
        infer_pragmas=_interface_pragmas(layers, False),
        activation_buffers=_per_layer(
            lambda k: f"    static ap_uint<BMLP_SIMD> a{k}[BMLP_BATCH][L{k}_OUT / BMLP_SIMD];",
            layers),
        train_calls=_per_layer(_train_call, layers),
        infer_signs=_per_layer(_infer_signs, layers),
        infer_layers=_per_layer(_infer_layer, layers), last_layer=layers - 1)


def _testbench(layers: int) -> str:
    return fill_template(
        "tb_bmlp.cpp.in",
        weight_arrays=_per_layer(
            lambda k: f"static ap_int<BMLP_WEIGHT_BITS> w{k}[L{k}_OUT][L{k}_IN];", layers),
        load_weights=_per_layer(
            lambda k: f"    for (int j = 0; j < L{k}_OUT; j++)\n"
                      f"        for (int i = 0; i < L{k}_IN; i++) "
                      f"w{k}[j][i] = read_value<int32_t>(in);", layers),
        dump_weights=_per_layer(
            lambda k: f"        for (int j = 0; j < L{k}_OUT; j++)\n"
                      f"            for (int i = 0; i < L{k}_IN; i++) "
                      f"write_value(out, int32_t(w{k}[j][i]));", layers),
        weight_names=", ".join(f"w{k}" for k in range(layers)))


def _tcl(part: str, clock_ns: float) -> str:
    return fill_template("run_hls.tcl.in", part=part, clock_ns=clock_ns)


def _device_row(device: Device, estimate: MemoryEstimate) -> str:
    uram = f", {device.uram} URAM" if device.uram else ""
    return (f"| {device.family} ({', '.join(boards_of(device.part))}) | {device.bram18} BRAM18"
            f"{uram} | {estimate.fits[device.family]} |")


def _readme(state: BMLPState, options: HlsOptions, estimate: MemoryEstimate, part: str) -> str:
    shape = state.shape
    return fill_template(
        "README.md.in", network=" -> ".join(map(str, (shape.in_features, *shape.widths))),
        classes=shape.num_classes, weight_bits=shape.weight_bits,
        weight_limit=shape.weight_limit, group_sizes=list(shape.group_sizes),
        margins=list(shape.margins), pe=options.pe, simd=options.simd,
        batch=options.batch_max,
        weight_count=f"{sum(f * w for f, w in zip(shape.fan_ins, shape.widths)):,}",
        weight_bits_total=f"{estimate.weight_bits:,}",
        weight_kib=f"{estimate.weight_bits / 8 / 1024:,.0f}",
        buffer_bits=f"{estimate.buffer_bits:,}", bram18=f"{estimate.bram18:,}",
        device_rows="\n".join(_device_row(d, estimate) for d in HLS_DEVICES), part=part)


@dataclass
class GeneratedDesign:
    directory: Path
    shape: BMLPShape
    options: HlsOptions
    estimate: MemoryEstimate
    part: str


def plan(shape: BMLPShape, options: HlsOptions) -> tuple[MemoryEstimate, str]:
    """Check ``options`` against the shape and the memory it needs against the devices, from
    the shape alone (before any weight is allocated or file written): the memory estimate and
    the FPGA part to target."""
    validate(shape, options)
    estimate = estimate_memory(shape, options)
    if options.part:
        return estimate, options.part
    device = smallest_device(estimate)
    if device is None:
        largest = HLS_DEVICES[-1]
        capacity = largest.bram18 * BRAM18_BITS + largest.uram * URAM_BITS
        raise HlsError(
            f"the trainer of {shape.in_features}-{'-'.join(map(str, shape.widths))} needs "
            f"{estimate.total_bits / 1e6:.1f} Mbit of on-chip memory "
            f"({estimate.weight_bits / 1e6:.1f} Mbit of {shape.weight_bits}-bit hidden weights); "
            f"the largest supported device, {largest.family}, has {capacity / 1e6:.1f} Mbit. Use "
            f"narrower layers or fewer --weight-bits.")
    return estimate, device.part


def generate(state: BMLPState, out_dir: str | Path, options: HlsOptions,
             clock_ns: float = 10.0) -> GeneratedDesign:
    """Write the HLS design of ``state``'s network into ``out_dir`` (every file atomically).
    Refuses shapes whose memory fits none of :data:`HLS_DEVICES`."""
    shape = state.shape
    estimate, part = plan(state.shape, options)
    out = Path(out_dir)
    for name in STATIC_FILES:
        write_bytes(out / name, (TEMPLATES / name).read_bytes())
    layers = len(shape.widths)
    files = {"bmlp_config.h": _config_header(state, options),
             "bmlp_top.h": _top_header(layers),
             "bmlp_top.cpp": _top_source(layers),
             "tb_bmlp.cpp": _testbench(layers),
             "run_hls.tcl": _tcl(part, clock_ns),
             "README.md": _readme(state, options, estimate, part),
             "design.json": json.dumps({"shape": asdict(shape), "options": asdict(options),
                                        "part": part, "memory": asdict(estimate)}, indent=2)}
    for name, text in files.items():
        write_text(out / name, text)
    return GeneratedDesign(out, shape, options, estimate, part)
