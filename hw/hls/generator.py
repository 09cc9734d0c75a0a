"""`xnorflow hls`: emit the local binary trainer of a BMLP as Vitis-HLS-style C++.

The generated folder holds the layer templates (``bmlp_kernels.h``, size-free), a stream class
for C simulation with g++ (``bmlp_stream.h``), and, generated for the given shape: the sizes and
the fixed local classifiers (``bmlp_config.h``), two top functions (``bmlp_train_step``,
``bmlp_infer`` in ``bmlp_top.cpp``), a testbench that replays batches from a binary file
(``tb_bmlp.cpp``), a Tcl script for ``vitis_hls`` (csim, csynth, IP export of each top) and a
README with the memory the design needs and whether it fits the supported devices.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import XnorflowError
from ...options import AT_LEAST_1, option, validate_fields
from ...outputs import write_bytes, write_text
from ...train.local_binary.model import BMLPShape, BMLPState
from ..devices import DEVICES, Device, boards_of

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


def _divisors(values, limit: int = 64) -> str:
    common = math.gcd(*values)
    return ", ".join(str(d) for d in range(1, min(common, limit) + 1) if common % d == 0)


def validate(shape: BMLPShape, options: HlsOptions) -> None:
    if shape.num_classes > MAX_CLASSES:
        raise HlsError(f"{shape.num_classes} classes: the HLS design carries labels as 8 bits "
                       f"(at most {MAX_CLASSES} classes)")
    bad_pe = [w for w in shape.widths if w % options.pe]
    if bad_pe:
        raise HlsError(f"--pe {options.pe} does not divide the layer width(s) {bad_pe}; choose a "
                       f"common divisor of {list(shape.widths)}: {_divisors(shape.widths)}")
    sizes = (shape.in_features, *shape.widths)
    bad_simd = [s for s in sizes if s % options.simd]
    if bad_simd:
        raise HlsError(f"--simd {options.simd} does not divide {bad_simd}; it must divide the "
                       f"input size and every width {list(sizes)}: {_divisors(sizes)}")


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


# ------------------------------------------------------------------------------ generation
def _classifier_table(state: BMLPState, layer: int) -> str:
    b = state.classifiers[layer]
    words = []
    for row in b:
        value = sum(1 << c for c, v in enumerate(row) if v > 0)
        words.append(f"0x{value:x}")
    lines = [", ".join(words[k:k + 12]) for k in range(0, len(words), 12)]
    return ",\n    ".join(lines)


def _config_header(state: BMLPState, options: HlsOptions) -> str:
    shape = state.shape
    out = ["// Generated by xnorflow hls: sizes and fixed local classifiers of one BMLP.",
           "#ifndef XNORFLOW_BMLP_CONFIG_H", "#define XNORFLOW_BMLP_CONFIG_H", "",
           "#include <ap_int.h>", "",
           f"#define BMLP_LAYERS {len(shape.widths)}",
           f"#define BMLP_IN_FEATURES {shape.in_features}",
           f"#define BMLP_IN_WORDS {math.ceil(shape.in_features / 64)}  // 64-bit input words",
           f"#define BMLP_CLASSES {shape.num_classes}",
           f"#define BMLP_WEIGHT_BITS {shape.weight_bits}",
           f"#define BMLP_BATCH {options.batch_max}",
           f"#define BMLP_PE {options.pe}",
           f"#define BMLP_SIMD {options.simd}", ""]
    for k, (fan_in, width) in enumerate(zip(shape.fan_ins, shape.widths)):
        out += [f"// layer {k}: {fan_in} -> {width}, groups of {shape.group_sizes[k]}, "
                f"margin floor({shape.margin_ratio} * {width}) = {shape.margins[k]}",
                f"#define L{k}_IN {fan_in}", f"#define L{k}_OUT {width}",
                f"#define L{k}_GROUP {shape.group_sizes[k]}",
                f"#define L{k}_MARGIN {shape.margins[k]}",
                f"// local classifier B_{k}: bit c of entry j is B[j][c] = +1",
                f"static const ap_uint<BMLP_CLASSES> L{k}_B[L{k}_OUT] = {{",
                f"    {_classifier_table(state, k)}}};", ""]
    out += ["#endif", ""]
    return "\n".join(out)


def _weight_params(layers: int, const: bool) -> str:
    qualifier = "const " if const else ""
    return ", ".join(f"{qualifier}ap_int<BMLP_WEIGHT_BITS> w{k}[L{k}_OUT][L{k}_IN]"
                     for k in range(layers))


def _top_header(layers: int) -> str:
    return f"""// Generated by xnorflow hls: the two top functions of the BMLP design.
#ifndef XNORFLOW_BMLP_TOP_H
#define XNORFLOW_BMLP_TOP_H

#include <ap_int.h>

#include "bmlp_config.h"
#include "bmlp_stream.h"

// One training step on a batch of n <= BMLP_BATCH samples: x_in carries BMLP_IN_WORDS 64-bit
// words per sample (bit i % 64 of word i / 64 is +1 for input i), y_in the labels. The hidden
// weights w<k> (neuron-major) are updated in place. thresholds: the epoch's 16-bit
// reinforcement thresholds per layer; seed and step key the reinforcement draws. Out: the
// network's predictions (before the update) and, per layer, the number of wrong samples and
// of marked (sample, neuron) pairs.
void bmlp_train_step(hls::stream<ap_uint<64> > &x_in, hls::stream<ap_uint<8> > &y_in,
                     ap_uint<16> n, {_weight_params(layers, False)},
                     const ap_uint<17> thresholds[BMLP_LAYERS], ap_uint<64> seed,
                     ap_uint<64> step, hls::stream<ap_uint<8> > &prediction_out,
                     hls::stream<ap_uint<32> > &stats_out);

// Inference on n samples: argmax of the last local readout (first maximum on ties).
void bmlp_infer(hls::stream<ap_uint<64> > &x_in, ap_uint<16> n,
                {_weight_params(layers, True)},
                hls::stream<ap_uint<8> > &prediction_out);

#endif
"""


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


def _top_source(layers: int) -> str:
    buffers = "\n".join(
        f"    static ap_uint<BMLP_SIMD> a{k}[BMLP_BATCH][L{k}_OUT / BMLP_SIMD];"
        for k in range(layers))
    train_calls = []
    for k in range(layers):
        src = "x" if k == 0 else f"a{k - 1}"
        train_calls += [
            f"    wrong = bmlp::train_layer<{_layer_args(k)}>(",
            f"        {src}, count, w{k}, L{k}_B, y, thresholds[{k}],",
            f"        bmlp::stream_key(seed, step, {k}), a{k}, prediction, marked);",
            "    stats_out.write(wrong);",
            "    stats_out.write(marked);"]
    infer_signs = "\n".join(
        f"    static ap_uint<BMLP_SIMD> s{k}[L{k}_OUT][L{k}_IN / BMLP_SIMD];\n"
        f"#pragma HLS ARRAY_PARTITION variable = s{k} cyclic factor = BMLP_PE dim = 1\n"
        f"    bmlp::weight_signs<L{k}_IN, L{k}_OUT, BMLP_PE, BMLP_SIMD, BMLP_WEIGHT_BITS>(w{k}, s{k});"
        for k in range(layers))
    infer_rows = "\n".join(
        f"        ap_uint<BMLP_SIMD> r{k + 1}[L{k}_OUT / BMLP_SIMD];\n"
        f"        ap_int<bmlp::bits_for(L{k}_OUT) + 1> o{k}[BMLP_CLASSES];\n"
        f"        bmlp::infer_layer<L{k}_IN, L{k}_OUT, BMLP_CLASSES, BMLP_PE, BMLP_SIMD, "
        f"BMLP_WEIGHT_BITS>(r{k}, s{k}, L{k}_B, r{k + 1}, o{k});"
        for k in range(layers))
    last = layers - 1
    return f"""// Generated by xnorflow hls: top functions of the BMLP design (see bmlp_top.h).
#include "bmlp_top.h"

#include "bmlp_kernels.h"

// Unpacks one sample's 64-bit input words into SIMD-bit chunks.
static void read_sample(hls::stream<ap_uint<64> > &x_in,
                        ap_uint<BMLP_SIMD> row[BMLP_IN_FEATURES / BMLP_SIMD]) {{
    ap_uint<64> words[BMLP_IN_WORDS];
    for (int k = 0; k < BMLP_IN_WORDS; k++) words[k] = x_in.read();
    for (int ib = 0; ib < BMLP_IN_FEATURES / BMLP_SIMD; ib++) {{
#pragma HLS PIPELINE II = 1
        ap_uint<BMLP_SIMD> chunk = 0;
        for (int q = 0; q < BMLP_SIMD; q++) {{
            const int i = ib * BMLP_SIMD + q;
            chunk[q] = words[i / 64][i % 64];
        }}
        row[ib] = chunk;
    }}
}}

void bmlp_train_step(hls::stream<ap_uint<64> > &x_in, hls::stream<ap_uint<8> > &y_in,
                     ap_uint<16> n, {_weight_params(layers, False)},
                     const ap_uint<17> thresholds[BMLP_LAYERS], ap_uint<64> seed,
                     ap_uint<64> step, hls::stream<ap_uint<8> > &prediction_out,
                     hls::stream<ap_uint<32> > &stats_out) {{
{_interface_pragmas(layers, True)}
    static ap_uint<BMLP_SIMD> x[BMLP_BATCH][BMLP_IN_FEATURES / BMLP_SIMD];
{buffers}
    ap_uint<8> y[BMLP_BATCH];
    ap_uint<8> prediction[BMLP_BATCH];
    const int count = n > BMLP_BATCH ? BMLP_BATCH : int(n);
    for (int s = 0; s < count; s++) {{
        read_sample(x_in, x[s]);
        y[s] = y_in.read();
    }}
    int wrong = 0, marked = 0;
{chr(10).join(train_calls)}
    // prediction[] now holds the last layer's argmax, computed before its update
    for (int s = 0; s < count; s++) prediction_out.write(prediction[s]);
}}

void bmlp_infer(hls::stream<ap_uint<64> > &x_in, ap_uint<16> n,
                {_weight_params(layers, True)},
                hls::stream<ap_uint<8> > &prediction_out) {{
{_interface_pragmas(layers, False)}
{infer_signs}
    for (int s = 0; s < int(n); s++) {{
        ap_uint<BMLP_SIMD> r0[BMLP_IN_FEATURES / BMLP_SIMD];
        read_sample(x_in, r0);
{infer_rows}
        int best = 0;
        for (int c = 1; c < BMLP_CLASSES; c++) {{
            if (o{last}[c] > o{last}[best]) best = c;
        }}
        prediction_out.write(best);
    }}
}}
"""


def _testbench(layers: int) -> str:
    weights = "\n".join(f"static ap_int<BMLP_WEIGHT_BITS> w{k}[L{k}_OUT][L{k}_IN];"
                        for k in range(layers))
    load = "\n".join(
        f"    for (int j = 0; j < L{k}_OUT; j++)\n"
        f"        for (int i = 0; i < L{k}_IN; i++) w{k}[j][i] = read_value<int32_t>(in);"
        for k in range(layers))
    dump = "\n".join(
        f"        for (int j = 0; j < L{k}_OUT; j++)\n"
        f"            for (int i = 0; i < L{k}_IN; i++) write_value(out, int32_t(w{k}[j][i]));"
        for k in range(layers))
    names = ", ".join(f"w{k}" for k in range(layers))
    return f"""// Generated by xnorflow hls: C-simulation testbench of the BMLP design.
//
// Replays what xnorflow's Python trainer did, from a little-endian binary file:
//   int32 magic 'BMLP', int32 steps, int32 infer_samples, uint64 seed, int32 initial hidden weights, layer by layer, neuron-major
//   per step: int32 n, uint64 step, int32 thresholds[BMLP_LAYERS],
//             uint64 words[n][BMLP_IN_WORDS], uint8 labels[n]
//   uint64 words[infer_samples][BMLP_IN_WORDS]
// and writes, per step, the predictions (uint8[n]), per layer the wrong-sample and marked-pair
// counts (int32) and all hidden weights (int32, neuron-major), then the inference predictions. Usage: csim_bmlp INPUT OUTPUT
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "bmlp_top.h"

{weights}

template <typename T>
static T read_value(FILE *in) {{
    T value;
    if (std::fread(&value, sizeof(T), 1, in) != 1) {{
        std::fprintf(stderr, "tb_bmlp: input file ends early\\n");
        std::exit(2);
    }}
    return value;
}}

template <typename T>
static void write_value(FILE *out, T value) {{
    std::fwrite(&value, sizeof(T), 1, out);
}}

static void read_batch(FILE *in, int n, hls::stream<ap_uint<64> > &x) {{
    for (int s = 0; s < n; s++)
        for (int k = 0; k < BMLP_IN_WORDS; k++) x.write(ap_uint<64>(read_value<uint64_t>(in)));
}}

int main(int argc, char **argv) {{
    if (argc != 3) {{
        std::fprintf(stderr, "usage: %s INPUT OUTPUT\\n", argv[0]);
        return 2;
    }}
    FILE *in = std::fopen(argv[1], "rb");
    FILE *out = std::fopen(argv[2], "wb");
    if (!in || !out) {{
        std::fprintf(stderr, "tb_bmlp: cannot open %s or %s\\n", argv[1], argv[2]);
        return 2;
    }}
    if (read_value<int32_t>(in) != 0x504C4D42) {{
        std::fprintf(stderr, "tb_bmlp: %s is not a BMLP testbench input\\n", argv[1]);
        return 2;
    }}
    const int steps = read_value<int32_t>(in);
    const int infer_samples = read_value<int32_t>(in);
    const uint64_t seed = read_value<uint64_t>(in);
{load}
    double train_seconds = 0.0;
    long trained_samples = 0;
    for (int t = 0; t < steps; t++) {{
        const int n = read_value<int32_t>(in);
        const uint64_t step = read_value<uint64_t>(in);
        ap_uint<17> thresholds[BMLP_LAYERS];
        for (int k = 0; k < BMLP_LAYERS; k++) thresholds[k] = read_value<int32_t>(in);
        hls::stream<ap_uint<64> > x;
        hls::stream<ap_uint<8> > y, predictions;
        hls::stream<ap_uint<32> > stats;
        read_batch(in, n, x);
        for (int s = 0; s < n; s++) y.write(read_value<uint8_t>(in));
        const auto start = std::chrono::steady_clock::now();
        bmlp_train_step(x, y, n, {names}, thresholds, seed, step, predictions, stats);
        train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        trained_samples += n;
        for (int s = 0; s < n; s++) write_value(out, uint8_t(predictions.read()));
        for (int k = 0; k < 2 * BMLP_LAYERS; k++) write_value(out, int32_t(stats.read()));
{dump}
    }}
    hls::stream<ap_uint<64> > x;
    hls::stream<ap_uint<8> > predictions;
    read_batch(in, infer_samples, x);
    const auto start = std::chrono::steady_clock::now();
    bmlp_infer(x, infer_samples, {names}, predictions);
    const double infer_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int s = 0; s < infer_samples; s++) write_value(out, uint8_t(predictions.read()));
    std::fclose(in);
    std::fclose(out);
    std::printf("train_steps %d train_samples %ld train_seconds %.6f infer_samples %d "
                "infer_seconds %.6f\\n", steps, trained_samples, train_seconds, infer_samples,
                infer_seconds);
    return 0;
}}
"""


def _tcl(part: str, clock_ns: float) -> str:
    return f"""# Generated by xnorflow hls: C simulation, synthesis and IP export with Vitis HLS.
#   vitis_hls -f run_hls.tcl                  (csim needs tb_input.bin: see README.md)
set flags "-std=c++14 -DXNORFLOW_USE_VITIS_STREAM"
foreach top {{bmlp_train_step bmlp_infer}} {{
    open_project -reset proj_$top
    set_top $top
    add_files bmlp_top.cpp -cflags $flags
    add_files -tb tb_bmlp.cpp -cflags $flags
    add_files -tb tb_input.bin
    open_solution -reset solution1 -flow_target vivado
    set_part {part}
    create_clock -period {clock_ns} -name default
    if {{$top eq "bmlp_train_step"}} {{ csim_design -argv "tb_input.bin tb_output.bin" }}
    csynth_design
    export_design -format ip_catalog
    close_project
}}
exit
"""


def _readme(state: BMLPState, options: HlsOptions, estimate: MemoryEstimate, part: str) -> str:
    shape = state.shape
    layers = " -> ".join(map(str, (shape.in_features, *shape.widths)))
    fits = "\n".join(f"| {d.family} ({', '.join(boards_of(d.part))}) | {d.bram18} BRAM18"
                     f"{f', {d.uram} URAM' if d.uram else ''} | {estimate.fits[d.family]} |"
                     for d in HLS_DEVICES)
    return f"""# BMLP local binary trainer in HLS C++ (generated by `xnorflow hls`)

Network: {layers} (+ fixed local classifiers of {shape.num_classes} classes), hidden weights
{shape.weight_bits}-bit signed, saturating at +-{shape.weight_limit}; groups
{list(shape.group_sizes)}, margins {list(shape.margins)}; PE = {options.pe}, SIMD =
{options.simd}, batches of up to {options.batch_max} samples.

| file | what |
|---|---|
| `bmlp_config.h` | sizes and the fixed local classifiers of this network (generated) |
| `bmlp_kernels.h` | size-free layer templates: XNOR-popcount, readout, local error, update |
| `bmlp_top.cpp/.h` | top functions `bmlp_train_step` and `bmlp_infer` |
| `bmlp_stream.h` | `hls::stream` for g++ C simulation; Vitis HLS uses its own |
| `tb_bmlp.cpp` | testbench replaying batches from `tb_input.bin` |
| `run_hls.tcl` | `vitis_hls -f run_hls.tcl`: csim, csynth and IP export of both tops |

## Memory

Hidden weights: {shape.weight_bits} bits x {sum(f * w for f, w in zip(shape.fan_ins, shape.widths)):,}
weights = {estimate.weight_bits:,} bits ({estimate.weight_bits / 8 / 1024:,.0f} KiB). Training buffers
(sign plane, batch pre-activations, masks, input columns, activations): {estimate.buffer_bits:,}
bits. As partitioned by the pragmas this is about {estimate.bram18:,} BRAM18 blocks.

| device | on-chip memory | fits |
|---|---|---|
{fits}

The Tcl script targets `{part}`. The weights are `bram` ports of both top functions, so one
memory (e.g. a dual-port BRAM or URAM block in the block design) can serve training and
inference.

## C simulation with g++

    g++ -std=c++17 -O2 -I. -I<hls4ml>/templates/vivado/ap_types tb_bmlp.cpp bmlp_top.cpp -o csim_bmlp
    ./csim_bmlp tb_input.bin tb_output.bin

`xnorflow hls --csim-steps N` writes `tb_input.bin` from real training batches, compiles, runs
and compares every step with the Python trainer.
"""


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
