"""Cycle-accurate simulation of the RTL design with Verilator, checked word for word.

What is compared, and with what:

- every stream of the stitched design (every layer's output, in context) with the same tensor
  of FINN's Python execution of the folded graph, packed as the stream carries it;
- the design's output with PyTorch's (the class index, or the popcounts the host finishes);
- every layer alone, driven at full rate from its Python input: its output, and its own cycles
  per frame next to FINN's estimate (``get_exp_cycles``);
- the design at full rate: cycles per frame in steady state and the first frame's latency;
  then again with random gaps on the input and back-pressure on the output, whose words must
  not change.

FIFO depths are sized first, as FINN's ``InsertAndSetFIFODepths`` does with Vivado's simulator,
but searched down as well as up: the design is simulated with FINN's ``fifo_gauge`` (an
unbounded FIFO that records its largest occupancy) to find the rate every FIFO allows; the same
compiled simulator then caps each FIFO at a run-time capacity, and each FIFO's capacity is
searched down (bisection, largest FIFOs first) to the smallest that keeps that rate. The design
with those depths is compiled and simulated; a FIFO that ran full while the design fell short
of the rate is grown (by a quarter) and the check repeated, up to four times. The depths, the
occupancies and both rates are reported. A frame count below three is made up by repeating
images: a steady-state rate needs frames after the first.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...export.verify import StageComparison, compare, unrounded_execution
from ...outputs import write_text
from .design import Design, RtlBackendError, generate
from .harness import design_harness, layers_harness
from .stitch import LAYERS_TB, TB
from .verilate import TRACE, compile_program, run_program

PACKING = {"reverse_inner": True, "reverse_endian": True}
LAYER_FRAMES = 4           # frames each layer runs alone (cycles: the mean of the last three)
MIN_FRAMES = 3             # a steady state needs frames after the first
GAUGE_FRAMES = 12          # frames of the FIFO-sizing simulations (the rate: the last half)
RATE_TOLERANCE = 1.002     # a depth "keeps the rate" within this factor (a cycle in 500)
SIZING_ROUNDS = 4          # sized designs tried before the depths are taken as they are
MIN_DEPTH = 2              # finn-rtllib's shallowest FIFO


def _grown(depth: int) -> int:
    """The next depth for a sized FIFO that ran full: a quarter more (at least one)."""
    return depth + max(1, -(-depth // 4))


# --------------------------------------------------------------------------- expected words
@dataclass
class Expected:
    """FINN's Python execution of the folded graph on the images, as stream words."""

    words: list[np.ndarray]       # per stream: (images, words per frame, bytes per word) uint8
    output: np.ndarray            # the design's output tensor, one row per image
    output_dtype: str

    @property
    def frames(self) -> int:
        return len(self.words[0])

    def tiled(self, frames: int) -> Expected:
        """The images repeated (in order) to ``frames`` frames."""
        picks = np.arange(frames) % self.frames
        return Expected([w[picks] for w in self.words], self.output[picks], self.output_dtype)


def _python_tensors(build_dir: Path, images: np.ndarray, batch: int = 250) -> dict:
    """Every tensor of the folded graph (its own names) for ``images`` (+-1); the
    partition's input comes from the whole graph around it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from ...export.verify import graph_inputs, padded_batch, with_batch_size
    from ..finn.layout import BuildLayout
    from ..finn.transforms import MakeHWLayersPythonExecutable
    from ..finn.verify import inline_partition

    layout = BuildLayout(build_dir)
    parent, child = ModelWrapper(str(layout.parent)), ModelWrapper(str(layout.folded))
    (partition,) = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    batch = max(1, min(batch, len(images)))
    found: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as work, unrounded_execution():
        flat = with_batch_size(inline_partition(parent, child), batch, work)
        flat = flat.transform(MakeHWLayersPythonExecutable())
        inner = with_batch_size(child, batch, work).transform(MakeHWLayersPythonExecutable())
        inputs = graph_inputs(flat, images)
        in_name = flat.graph.input[0].name
        for start in range(0, len(images), batch):
            padded, rows = padded_batch(inputs, start, batch)
            ctx = execute_onnx(flat, {in_name: padded.reshape(flat.get_tensor_shape(in_name))},
                               return_full_exec_context=True)
            feed = ctx[partition.input[0]]
            inner_ctx = execute_onnx(inner, {inner.graph.input[0].name: feed},
                                     return_full_exec_context=True)
            for name, value in inner_ctx.items():
                value = np.asarray(value)
                if value.ndim and value.shape[0] == batch and inner.get_initializer(name) is None:
                    found.setdefault(name, []).append(value[:rows])
    return {k: np.concatenate(v) for k, v in found.items()}


PASS_THROUGH = ("StreamingFIFO", "StreamingDataWidthConverter")   # streams unchanged


def _origin(model, child, tensor: str) -> str:
    """The tensor of the folded graph (``child``) a stream of the RTL graph carries: back
    through FIFOs and width converters, to the compute node that wrote it, which is the
    child's node at the same place in the chain (FINN's insertions rename tensors)."""
    producer = model.find_producer(tensor)
    while producer is not None and producer.op_type.startswith(PASS_THROUGH):
        producer = model.find_producer(producer.input[0])
    if producer is None:
        return child.graph.input[0].name
    compute = [n for n in model.graph.node if not n.op_type.startswith(PASS_THROUGH)]
    return child.graph.node[compute.index(producer)].output[0]


def _hardware_order(model, tensor: str, values: np.ndarray, count: int) -> np.ndarray:
    """``values`` in the order the stream carries them: FINN's Python execution of a
    depthwise sliding-window generator gives the im2col order (rows, columns, window,
    channels); the RTL generator (and the max-pool it feeds) streams each SIMD channel group's
    whole window in turn (rows, columns, channel groups, window, SIMD), as FINN's own
    ConvolutionInputGenerator_rtl reorders for its C simulation."""
    from qonnx.custom_op.registry import getCustomOp

    producer = model.find_producer(tensor)
    while producer is not None and producer.op_type.startswith(PASS_THROUGH):
        producer = model.find_producer(producer.input[0])
    if producer is None or not producer.op_type.startswith("ConvolutionInputGenerator"):
        return values
    window = getCustomOp(producer)
    if not window.get_nodeattr("depthwise"):
        return values
    simd, channels = window.get_nodeattr("SIMD"), window.get_nodeattr("IFMChannels")
    (ofm_h, ofm_w), (k_h, k_w) = window.get_nodeattr("OFMDim"), window.get_nodeattr(
        "ConvKernelDim")
    shaped = values.reshape(count, ofm_h, ofm_w, k_h * k_w, channels // simd, simd)
    return shaped.transpose(0, 1, 2, 4, 3, 5).reshape(values.shape)


def expected_words(build_dir: Path, design: Design, images: np.ndarray) -> Expected:
    """The words every stream of ``design`` should carry for ``images`` (+-1), from FINN's
    Python execution of the build's folded graph."""
    from qonnx.core.modelwrapper import ModelWrapper

    from ..finn.layout import BuildLayout

    child = ModelWrapper(str(BuildLayout(build_dir).folded))
    return stream_words(design, child, _python_tensors(Path(build_dir), images), len(images))


def stream_words(design: Design, child, tensors: dict, count: int) -> Expected:
    """The words of every stream of ``design`` for ``count`` frames, from the tensors of the
    folded graph ``child`` (name -> array with the frames first), packed as the stream's
    writer folds it (FINN's packing: element 0 in the lowest bits)."""
    from finn.util.data_packing import finnpy_to_packed_bytearray
    from qonnx.custom_op.registry import getCustomOp

    model = design.model()
    words = []
    for i, stream in enumerate(design.streams):
        values = _hardware_order(model, stream.tensor,
                                 tensors[_origin(model, child, stream.tensor)], count)
        if stream.producer is None:
            layer = getCustomOp(model.get_node_from_name(stream.consumer))
            folded, dtype = layer.get_folded_input_shape(), layer.get_input_datatype()
        else:
            layer = getCustomOp(model.get_node_from_name(stream.producer))
            folded, dtype = layer.get_folded_output_shape(), layer.get_output_datatype()
        shaped = values.reshape(count, int(np.prod(folded[1:-1])), folded[-1])
        packed = finnpy_to_packed_bytearray(shaped, dtype, **PACKING)
        if packed.shape[-1] != (stream.bits + 7) // 8:
            raise RtlBackendError(f"stream {i} ({stream.tensor}): {packed.shape[-1]} bytes per "
                                  f"word from FINN's packing, {stream.bits} bits in the design")
        words.append(packed)
    out_tensor = _origin(model, child, design.streams[-1].tensor)
    return Expected(words, tensors[out_tensor].reshape(count, -1), dtype.name)


# --------------------------------------------------------------------------- results
@dataclass
class LayerResult:
    name: str
    op_type: str
    expected_cycles: int             # FINN's estimate per frame
    measured_cycles: float | None    # alone, at full rate, per frame (steady state)
    alone_identical: bool            # its output alone equals Python's
    images_differing: int = 0        # in the design, images with a differing word


@dataclass
class RtlSimResult:
    images: int                      # distinct test images simulated
    frames: int                      # frames of the main run (images repeated up to MIN_FRAMES)
    comparison: StageComparison      # the design's output against PyTorch
    identical_to_python: int         # images whose output words equal Python's
    layers: list[LayerResult]
    cycles_per_frame: float          # the design at full rate, steady state
    latency_cycles: int              # first input word to the first frame's last output word
    estimated_cycles: int            # FINN's: the slowest layer's estimate
    stress: dict                     # the run with gaps and back-pressure
    fifo_depths: dict[str, int]      # sized by simulation
    fifo_occupancy: dict[str, int]   # the largest occupancy of each FIFO, unbounded, full rate
    gauged_cycles_per_frame: float   # the rate with unbounded FIFOs: what sizing keeps
    sizing_runs: int                 # simulations of the depth search
    compile_seconds: float
    simulate_seconds: float
    images_per_second: float
    waveform: str | None = None      # a VCD file, when asked for or kept for a failure

    @property
    def identical(self) -> bool:
        return (self.comparison.identical and self.identical_to_python == self.images
                and all(layer.alone_identical and layer.images_differing == 0
                        for layer in self.layers)
                and self.stress["identical"] and not self.stress.get("violations"))

    @property
    def bottlenecks(self) -> list[str]:
        """Every layer whose FINN estimate is the slowest (ties are ties)."""
        return [layer.name for layer in self.layers
                if layer.expected_cycles == self.estimated_cycles]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["comparison"] = self.comparison.as_dict()
        data["identical"] = self.identical
        data["bottlenecks"] = self.bottlenecks
        return data

    def lines(self) -> list[str]:
        lines = [f"RTL (Verilator): {self.comparison.summary()}; output words identical to "
                 f"FINN's Python execution for {self.identical_to_python}/{self.images} images"]
        for layer in self.layers:
            alone = "-" if layer.measured_cycles is None else f"{layer.measured_cycles:,.0f}"
            same = layer.alone_identical and not layer.images_differing
            lines.append(f"  {layer.name:34s} {'identical' if same else 'DIFFERS':9s} "
                         f"cycles/frame measured {alone:>8s}, "
                         + estimate_text(layer.expected_cycles))
        slowest = self.bottlenecks
        tied = f", {len(slowest)} layers tied" if len(slowest) > 1 else f", {slowest[0]}" \
            if slowest else ""
        repeated = (f" ({self.frames} frames: the images repeated)"
                    if self.frames > self.images else "")
        lines.append(f"design: {self.cycles_per_frame:,.1f} cycles per frame in steady state"
                     f"{repeated} (FINN estimate {self.estimated_cycles:,}{tied}), first frame "
                     f"after {self.latency_cycles:,} cycles; with {self.stress['gap_percent']} % "
                     f"input gaps and {self.stress['stall_percent']} % output back-pressure: "
                     f"{'identical' if self.stress['identical'] else 'DIFFERENT'} on "
                     f"{self.stress['images']} images, AXI4-Stream rules "
                     f"{'kept' if not self.stress.get('violations') else 'BROKEN'}")
        sized = ", ".join(f"{k} {v}" for k, v in self.fifo_depths.items())
        lines.append(f"FIFO depths from simulation (smallest that keep the rate, "
                     f"{self.sizing_runs} runs): {sized}; {self.cycles_per_frame:,.1f} cycles per "
                     f"frame with them (unbounded: {self.gauged_cycles_per_frame:,.1f})")
        lines.append(f"simulated {self.images_per_second:,.0f} images/s; Verilator compile "
                     f"{self.compile_seconds:.0f} s" + (f"; waveform: {self.waveform}"
                                                        if self.waveform else ""))
        return lines


def estimate_text(cycles: int) -> str:
    """FINN's estimate of a layer, or that it has none (FIFOs and width converters)."""
    return f"FINN estimate {cycles:,}" if cycles else "no FINN estimate"


def _steady_cycles(frame_ends: np.ndarray) -> float:
    """Cycles per frame from the cycles at which frames ended: the mean interval after the
    first frame (which includes filling the pipeline)."""
    if len(frame_ends) < 2:
        return float("nan")
    tail = frame_ends[1:] if len(frame_ends) > 2 else frame_ends
    return float((tail[-1] - tail[0]) / max(len(tail) - 1, 1))


def _tail_rate(frame_ends: np.ndarray) -> float:
    """Cycles per frame over the last half of the frames: the rate once the FIFOs have filled
    as far as they do (what FIFO sizing compares)."""
    half = len(frame_ends) // 2
    if len(frame_ends) - half < 2:
        return _steady_cycles(frame_ends)
    return float((frame_ends[-1] - frame_ends[half]) / (len(frame_ends) - 1 - half))


def keeps_rate(cycles: float, target: float) -> bool:
    return cycles <= target * RATE_TOLERANCE


def _read_words(path: Path, count: int, width: int) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    return data[:count * width].reshape(-1, width)


def _stall_message(summary: dict, design: Design, expected_words: list[int]) -> str:
    for i, stream in enumerate(design.streams[1:], start=1):
        if summary["words"][i] < expected_words[i]:
            return (f"the RTL simulation stopped making progress: {stream.producer} wrote "
                    f"{summary['words'][i]} of {expected_words[i]} words (its input stream "
                    f"carried {summary['words'][i - 1]} of {expected_words[i - 1]}); no stream "
                    f"moved for the timeout. The layer that stalled is {stream.producer}.")
    return "the RTL simulation stopped making progress before all words were out"


# --------------------------------------------------------------------------- runs
def run_layers(design: Design, expected: Expected, frames: int) -> tuple[list, float]:
    """Every layer alone on ``frames`` frames: (identical, cycles per frame) per layer."""
    program = compile_program(design, LAYERS_TB, layers_harness(design.instances), "layers")
    picks = np.arange(frames) % len(expected.words[0])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        counts = []
        for i in range(len(design.instances)):
            expected.words[i][picks].tofile(folder / f"l{i}_in.bin")
            counts.append(frames * expected.words[i + 1].shape[1])
        timeout = max(10_000, 20 * max(i.expected_cycles for i in design.instances))
        run_program(program, [str(folder), str(timeout), *map(str, counts)], folder,
                    design.hdl)
        results = []
        for i in range(len(design.instances)):
            per_frame = expected.words[i + 1].shape[1]
            width = expected.words[i + 1].shape[2]
            got = _read_words(folder / f"l{i}_out.bin", counts[i], width)
            want = expected.words[i + 1][picks].reshape(-1, width)
            cycles = np.fromfile(folder / f"l{i}_out.cycles", dtype=np.uint64)
            ends = cycles[per_frame - 1::per_frame][:frames]
            results.append((got.shape == want.shape and np.array_equal(got, want),
                            _steady_cycles(ends.astype(np.int64)) if len(ends) == frames
                            else None))
    return results, program.seconds


def run_design(design: Design, expected: Expected, images: int, program, gap: int = 0,
                stall: int = 0, seed: int = 0, capacities: dict[str, int] | None = None,
                waveform: tuple[Path, int] | None = None) -> dict:
    """The stitched design on the first ``images`` frames of ``expected``: per stream, the
    images with a differing word; the output words; the cycles at which frames ended.
    ``capacities``: FIFO name -> run-time capacity (a sizing simulator's gauges)."""
    words_per_frame = [w.shape[1] for w in expected.words]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected.words[0][:images].tofile(folder / "input.bin")
        out_words = images * words_per_frame[-1]
        timeout = max(10_000, 20 * max(i.expected_cycles for i in design.instances))
        start = time.perf_counter()
        summary = run_program(program, [str(folder / "input.bin"), str(folder), str(out_words),
                                        str(gap), str(stall), str(seed), str(timeout)],
                              folder, design.hdl, capacities=capacities, waveform=waveform)
        seconds = time.perf_counter() - start
        if summary["stalled"]:
            raise RtlBackendError(_stall_message(summary, design, [images * w for w in
                                                                   words_per_frame]))
        frames_differing = []
        for i, want in enumerate(expected.words):
            width = want.shape[2]
            got = _read_words(folder / f"tap{i}.bin", images * want.shape[1], width)
            got = got.reshape(images, want.shape[1], width)
            frames_differing.append((got != want[:images]).any(axis=(1, 2)))
        last = len(expected.words) - 1
        output = _read_words(folder / f"tap{last}.bin", out_words,
                             expected.words[last].shape[2])
        out_cycles = np.fromfile(folder / f"tap{last}.cycles", dtype=np.uint64).astype(np.int64)
        first_in = int(np.fromfile(folder / "tap0.cycles", dtype=np.uint64)[0])
        ends = out_cycles[words_per_frame[-1] - 1::words_per_frame[-1]]
    return {"differing_frames": frames_differing,
            "output": output.reshape(images, -1),
            "frame_ends": ends, "first_input": first_in, "maxcount": summary["maxcount"],
            "seconds": seconds, "cycles": summary["cycles"],
            "violations": summary.get("violations", []),
            "violation_count": int(summary.get("axis_violations", 0))}


def _decoded_output(design: Design, expected: Expected, words: np.ndarray) -> np.ndarray:
    """The design's output words as the output tensor's values, one row per image."""
    from finn.util.data_packing import packed_bytearray_to_finnpy
    from qonnx.core.datatype import DataType

    per_frame, width = expected.words[-1].shape[1:]
    shaped = words.reshape(len(words), per_frame, width)
    values = packed_bytearray_to_finnpy(
        shaped, DataType[expected.output_dtype],
        (len(words), per_frame, expected.output.shape[1] // per_frame), **PACKING)
    return values.reshape(len(words), -1)


def simulate_rtl(build_dir: str | Path, fpga_part: str, clock_mhz: float, images: np.ndarray,
                 reference: np.ndarray, labels: np.ndarray | None = None,
                 progress: bool = True, options=None) -> tuple[Design, RtlSimResult]:
    """Generate, size, compile and simulate the RTL design of a build on ``images`` (+-1, the
    run's test images) against ``reference`` (PyTorch's logits); results in
    ``<build>/rtl/rtlsim.json``. ``options``: :class:`~.options.RtlOptions` (the stress run)."""
    from ...progress import note
    from .options import RtlOptions

    options = options or RtlOptions()
    build_dir = Path(build_dir)
    start = time.perf_counter()
    say = note if progress else (lambda line: None)
    design = generate(build_dir, fpga_part, clock_mhz)
    expected = expected_words(build_dir, design, images)
    say(f"rtl: {len(design.instances)} layers generated; compiling every layer alone "
        f"(Verilator) ...")
    alone, compile_seconds = run_layers(design, expected, LAYER_FRAMES)
    say(f"rtl: every layer alone: {_compiled(compile_seconds)}; sizing the FIFOs by simulation "
        f"(compiling the gauges) ...")
    sizing = size_fifos(design, expected.tiled(GAUGE_FRAMES))
    compile_seconds += sizing.compile_seconds
    say(f"rtl: gauges {_compiled(sizing.compile_seconds)}; {sizing.runs} sizing runs in "
        f"{time.perf_counter() - start:.0f} s so far")
    frames = max(len(images), MIN_FRAMES)
    run_expected = expected.tiled(frames)
    depths = sizing.depths
    for _ in range(SIZING_ROUNDS):
        design = generate(build_dir, fpga_part, clock_mhz, fifo_depths=depths)
        say("rtl: compiling the sized design (Verilator) ...")
        program = compile_program(design, TB, design_harness(design.instances), "design")
        compile_seconds += program.seconds
        say(f"rtl: sized design {_compiled(program.seconds)}")
        check = run_design(design, expected.tiled(GAUGE_FRAMES), GAUGE_FRAMES, program)
        # a FIFO at its searched depth can still run full for a cycle at a frame's edge in the
        # real FIFO; grow the ones that did until the sized design keeps the rate
        full = [n for n, c in zip(sizing.names, check["maxcount"]) if int(c) >= depths[n]]
        if keeps_rate(_tail_rate(check["frame_ends"]), sizing.cycles) or not full:
            break
        say(f"rtl: {len(full)} FIFO(s) ran full and cost throughput; growing them ...")
        depths = {n: _grown(d) if n in full else d for n, d in depths.items()}
    say(f"rtl: simulating {len(images)} images with sized FIFOs"
        + (f" ({frames} frames)" if frames > len(images) else "") + " ...")
    stress_images = min(options.stress_images, frames)
    stress_run = (options.stress_gap, options.stress_stall, 1)
    try:
        run = run_design(design, run_expected, frames, program)
        stressed = run_design(design, run_expected, stress_images, program, *stress_run)
    except RtlBackendError as stalled:   # a deadlock: its waveform, then the error
        wave = design.folder / "stall.vcd"
        say(f"rtl: the design stalled; writing its waveform to {wave} ...")
        _trace(design, run_expected, frames, wave, 10 ** 7, *stress_run)
        raise RtlBackendError(f"{stalled} Its waveform: {wave} (GTKWave or Surfer).") from None
    violations = run["violations"] + stressed["violations"]
    stress = {"images": stress_images, "gap_percent": options.stress_gap,
              "stall_percent": options.stress_stall,
              "violations": run["violation_count"] + stressed["violation_count"],
              "first_violations": [_violation_text(design, v) for v in violations[:4]],
              "identical": bool(np.array_equal(stressed["output"], run["output"][:stress_images])
                                and not any(d.any() for d in stressed["differing_frames"]))}
    outputs = _decoded_output(design, expected, run["output"][:len(images)])
    identical_python = int((outputs == expected.output).all(axis=1).sum())
    if outputs.shape[1] == 1:   # the class index, selected on chip
        comparison = compare("RTL simulation", reference, outputs.astype(np.int64), labels)
    else:   # popcounts: equal to Python's, whose class the build checked against PyTorch
        comparison = compare("RTL simulation", reference,
                             _host_logits(build_dir, outputs), labels)
    layers = [LayerResult(inst.name, inst.op_type, inst.expected_cycles, cycles, same,
                          int(np.count_nonzero(_differs(run, k + 1, len(images)))))
              for k, (inst, (same, cycles)) in enumerate(zip(design.instances, alone))]
    waveform = None
    first_bad = _first_differing(run, stressed)
    if first_bad is not None:   # the frame where it went wrong, kept as a waveform
        waveform = design.folder / "mismatch.vcd"
        say(f"rtl: frame {first_bad} differs; writing its waveform to {waveform} ...")
        ends = run["frame_ends"]
        _trace(design, run_expected, first_bad + 1, waveform,
               int(ends[min(first_bad, len(ends) - 1)]) + 64)
    elif stressed["violations"]:   # AXI4-Stream broken: the stress run up to the first
        waveform = design.folder / "axi_violation.vcd"
        say(f"rtl: {_violation_text(design, stressed['violations'][0])}; writing its waveform "
            f"to {waveform} ...")
        _trace(design, run_expected, stress_images, waveform,
               int(stressed["violations"][0]["cycle"]) + 64, *stress_run)
    elif options.trace:
        waveform = design.folder / "waveform.vcd"
        shown = min(options.trace, frames)
        say(f"rtl: writing the waveform of the first {shown} frame(s) to {waveform} ...")
        _trace(design, run_expected, shown, waveform, int(run["frame_ends"][shown - 1]) + 64)
    simulate_seconds = time.perf_counter() - start - compile_seconds
    result = RtlSimResult(
        len(images), frames, comparison, identical_python, layers,
        _steady_cycles(run["frame_ends"]),
        int(run["frame_ends"][0] - run["first_input"]) if len(run["frame_ends"]) else 0,
        max(i.expected_cycles for i in design.instances), stress, depths, sizing.occupancy,
        sizing.cycles, sizing.runs, compile_seconds, simulate_seconds,
        frames / max(run["seconds"], 1e-9), str(waveform) if waveform else None)
    write_text(design.folder / "rtlsim.json", json.dumps(result.as_dict(), indent=2,
                                                         default=_plain))
    return design, result


def _compiled(seconds: float) -> str:
    return f"compiled in {seconds:.0f} s" if seconds else "simulator reused from the cache"


def _trace(design: Design, expected: Expected, frames: int, path: Path, cycles: int,
           gap: int = 0, stall: int = 0, seed: int = 0) -> None:
    """The run of ``frames`` frames again with a tracing simulator: its first ``cycles``
    cycles as a VCD waveform at ``path``."""
    program = compile_program(design, TB, design_harness(design.instances), "trace",
                              defines=(TRACE,))
    try:
        run_design(design, expected, frames, program, gap, stall, seed,
                   waveform=(path.resolve(), cycles))
    except RtlBackendError:   # the stall again: the waveform is written all the same
        pass


def _first_differing(run: dict, stressed: dict) -> int | None:
    """The first frame whose words differ on any stream (the main run, then the stress run),
    or None."""
    frames = [int(np.argmax(d)) for d in run["differing_frames"] if np.any(d)]
    frames += [int(np.argmax(d)) for d in stressed["differing_frames"] if np.any(d)]
    if not np.array_equal(stressed["output"], run["output"][:len(stressed["output"])]):
        frames.append(0)
    if frames:
        return min(frames)
    return None


def _differs(run: dict, stream: int, images: int) -> np.ndarray:
    """Of the distinct images, which had a differing word on ``stream`` (any repetition)."""
    per_frame = np.asarray(run["differing_frames"][stream], dtype=bool)
    return np.array([per_frame[i::images].any() for i in range(images)])


def _violation_text(design: Design, violation: dict) -> str:
    stream = design.streams[violation["tap"]]
    who = stream.producer or "the harness's input"
    return (f"{who} ({violation['kind']} while TREADY was low, cycle {violation['cycle']:,}; "
            f"AXI4-Stream asks a master to hold TVALID and TDATA until the handshake)")


# --------------------------------------------------------------------------- FIFO sizing
@dataclass
class Sizing:
    names: list[str]             # the FIFOs, in the design's order
    depths: dict[str, int]       # the smallest that keep the rate
    occupancy: dict[str, int]    # unbounded, at full rate
    cycles: float                # the rate with unbounded FIFOs
    runs: int
    compile_seconds: float


def size_fifos(design: Design, expected: Expected) -> Sizing:
    """Each FIFO's smallest depth that keeps the rate the design reaches with unbounded FIFOs:
    one simulator of run-time capacities (FINN's gauges with a cap), each FIFO bisected down
    from its unbounded occupancy, largest first, the others at their current depths."""
    program = compile_program(design, TB, design_harness(design.instances), "gauge",
                              defines=("FINN_SIMULATION",))
    names = [i.name for i in design.instances if i.has_count]
    frames = expected.frames
    runs = 0

    def rate(capacities: dict[str, int] | None) -> tuple[float, list]:
        nonlocal runs
        runs += 1
        try:
            done = run_design(design, expected, frames, program, capacities=capacities)
        except RtlBackendError:    # a capacity so small that the design stalls
            return float("inf"), []
        return _tail_rate(done["frame_ends"]), done["maxcount"]

    target, occupancy = rate(None)
    # a gauge capped at exactly its largest occupancy blocks once it gets there: one more never
    occupied = {n: max(MIN_DEPTH, int(c) + 1) for n, c in zip(names, occupancy)}
    depths = dict(occupied)
    for name in sorted(names, key=lambda n: -occupied[n]):
        low, high = MIN_DEPTH, depths[name]       # high keeps the rate
        while low < high:
            middle = (low + high) // 2
            if keeps_rate(rate({**depths, name: middle})[0], target):
                high = middle
            else:
                low = middle + 1
        depths[name] = high
    return Sizing(names, depths, {n: int(c) for n, c in zip(names, occupancy)}, target, runs,
                  program.seconds)


def _host_logits(build_dir: Path, popcounts: np.ndarray) -> np.ndarray:
    """What the host makes of the accelerator's popcounts: the nodes of the graph after the
    dataflow partition (the per-class affine of a batch-norm head), executed on them."""
    from onnx import numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_node

    from ..finn.layout import BuildLayout

    parent = ModelWrapper(str(BuildLayout(build_dir).parent))
    nodes = list(parent.graph.node)
    (partition,) = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    context = {init.name: numpy_helper.to_array(init) for init in parent.graph.initializer}
    context[partition.output[0]] = popcounts.astype(np.float32)
    for node in nodes[nodes.index(partition) + 1:]:
        execute_node(node, context, parent.graph)
    return np.asarray(context[parent.graph.output[0].name]).reshape(len(popcounts), -1)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)
