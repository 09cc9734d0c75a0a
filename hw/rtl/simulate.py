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

FIFO depths are sized first, as FINN's ``InsertAndSetFIFODepths`` does with Vivado's
simulator: the design is simulated with FINN's ``fifo_gauge`` (an unbounded FIFO that records
its largest occupancy), each FIFO gets that depth (2 if at most 2, 32 if at most 32, as FINN
rounds). The design with those depths is simulated again; a FIFO that ran full while the
design fell short of the gauged throughput is grown (to 32, then by a quarter) and the check
repeated, up to four times. The depths used and both throughputs are reported.
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
from .verilate import compile_program, run_program

PACKING = {"reverse_inner": True, "reverse_endian": True}
LAYER_FRAMES = 4           # frames each layer runs alone (cycles: the mean of the last three)
GAUGE_FRAMES = 8           # frames of the FIFO-sizing simulation
SIZING_ROUNDS = 4          # sized designs tried before the depths are taken as they are
STRESS_IMAGES = 100        # images of the gaps-and-back-pressure run
STRESS_GAP, STRESS_STALL = 30, 50   # percent of cycles without input / without output ready


def optimize_depth(occupancy: int) -> int:
    """FINN's rounding of a measured FIFO occupancy: 2 (the shallowest), 32 (one SRL), or the
    occupancy itself."""
    if occupancy <= 2:
        return 2
    if occupancy <= 32:
        return 32
    return occupancy


def _grown(depth: int) -> int:
    """The next depth for a sized FIFO that ran full: 32 (one SRL still), else a quarter more."""
    return 32 if depth < 32 else depth + -(-depth // 4)


# --------------------------------------------------------------------------- expected words
@dataclass
class Expected:
    """FINN's Python execution of the folded graph on the images, as stream words."""

    words: list[np.ndarray]       # per stream: (images, words per frame, bytes per word) uint8
    output: np.ndarray            # the design's output tensor, one row per image
    output_dtype: str


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
    images: int
    comparison: StageComparison      # the design's output against PyTorch
    identical_to_python: int         # images whose output words equal Python's
    layers: list[LayerResult]
    cycles_per_frame: float          # the design at full rate, steady state
    latency_cycles: int              # first input word to the first frame's last output word
    estimated_cycles: int            # FINN's: the slowest layer's estimate
    stress: dict                     # the run with gaps and back-pressure
    fifo_depths: dict[str, int]      # sized from the gauged simulation
    gauged_cycles_per_frame: float
    compile_seconds: float
    simulate_seconds: float
    images_per_second: float

    @property
    def identical(self) -> bool:
        return (self.comparison.identical and self.identical_to_python == self.images
                and all(layer.alone_identical and layer.images_differing == 0
                        for layer in self.layers)
                and self.stress["identical"])

    def as_dict(self) -> dict:
        data = asdict(self)
        data["comparison"] = self.comparison.as_dict()
        data["identical"] = self.identical
        return data

    def lines(self) -> list[str]:
        lines = [f"RTL (Verilator): {self.comparison.summary()}; output words identical to "
                 f"FINN's Python execution for {self.identical_to_python}/{self.images} images"]
        for layer in self.layers:
            alone = "-" if layer.measured_cycles is None else f"{layer.measured_cycles:,.0f}"
            same = layer.alone_identical and not layer.images_differing
            lines.append(f"  {layer.name:34s} {'identical' if same else 'DIFFERS':9s} "
                         f"cycles/frame measured {alone:>8s}, FINN estimate "
                         f"{layer.expected_cycles:,}")
        lines.append(f"design: {self.cycles_per_frame:,.1f} cycles per frame in steady state "
                     f"(FINN estimate {self.estimated_cycles:,}), first frame after "
                     f"{self.latency_cycles:,} cycles; with {STRESS_GAP} % input gaps and "
                     f"{STRESS_STALL} % output back-pressure: "
                     f"{'identical' if self.stress['identical'] else 'DIFFERENT'} on "
                     f"{self.stress['images']} images")
        sized = ", ".join(f"{k} {v}" for k, v in self.fifo_depths.items())
        lines.append(f"FIFO depths from simulation: {sized}; {self.cycles_per_frame:,.1f} "
                     f"cycles per frame with them (gauged: {self.gauged_cycles_per_frame:,.1f})")
        lines.append(f"simulated {self.images_per_second:,.0f} images/s; Verilator compile "
                     f"{self.compile_seconds:.0f} s")
        return lines


def _steady_cycles(frame_ends: np.ndarray) -> float:
    """Cycles per frame from the cycles at which frames ended: the mean interval after the
    first frame (which includes filling the pipeline)."""
    if len(frame_ends) < 2:
        return float("nan")
    tail = frame_ends[1:] if len(frame_ends) > 2 else frame_ends
    return float((tail[-1] - tail[0]) / max(len(tail) - 1, 1))


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
                stall: int = 0, seed: int = 0) -> dict:
    """The stitched design on the first ``images`` images: per stream, the images with a
    differing word; the output words; the cycles at which frames ended."""
    words_per_frame = [w.shape[1] for w in expected.words]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected.words[0][:images].tofile(folder / "input.bin")
        out_words = images * words_per_frame[-1]
        timeout = max(10_000, 20 * max(i.expected_cycles for i in design.instances))
        start = time.perf_counter()
        summary = run_program(program, [str(folder / "input.bin"), str(folder), str(out_words),
                                        str(gap), str(stall), str(seed), str(timeout)],
                              folder, design.hdl)
        seconds = time.perf_counter() - start
        if summary["stalled"]:
            raise RtlBackendError(_stall_message(summary, design, [images * w for w in
                                                                   words_per_frame]))
        differing = []
        for i, want in enumerate(expected.words):
            width = want.shape[2]
            got = _read_words(folder / f"tap{i}.bin", images * want.shape[1], width)
            got = got.reshape(images, want.shape[1], width)
            differing.append(int((got != want[:images]).any(axis=(1, 2)).sum()))
        last = len(expected.words) - 1
        output = _read_words(folder / f"tap{last}.bin", out_words,
                             expected.words[last].shape[2])
        out_cycles = np.fromfile(folder / f"tap{last}.cycles", dtype=np.uint64).astype(np.int64)
        first_in = int(np.fromfile(folder / "tap0.cycles", dtype=np.uint64)[0])
        ends = out_cycles[words_per_frame[-1] - 1::words_per_frame[-1]]
    return {"differing": differing, "output": output.reshape(images, -1),
            "frame_ends": ends, "first_input": first_in, "maxcount": summary["maxcount"],
            "seconds": seconds, "cycles": summary["cycles"]}


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
                 progress: bool = True) -> tuple[Design, RtlSimResult]:
    """Generate, size, compile and simulate the RTL design of a build on ``images`` (+-1, the
    run's test images) against ``reference`` (PyTorch's logits); results in
    ``<build>/rtl/rtlsim.json``."""
    from ...progress import note

    build_dir = Path(build_dir)
    start = time.perf_counter()
    design = generate(build_dir, fpga_part, clock_mhz)
    expected = expected_words(build_dir, design, images)
    say = note if progress else (lambda line: None)
    say(f"rtl: {len(design.instances)} layers generated; compiling the layers alone ...")
    alone, compile_seconds = run_layers(design, expected, LAYER_FRAMES)
    # FIFO sizing: unbounded gauges at full rate, then the sized design
    say("rtl: sizing the FIFOs by simulation ...")
    gauge_program = compile_program(design, TB, design_harness(design.instances), "gauge",
                                    defines=("FINN_SIMULATION",))
    compile_seconds += gauge_program.seconds
    frames = min(GAUGE_FRAMES, len(images))
    gauged = run_design(design, expected, frames, gauge_program)
    fifos = [i.name for i in design.instances if i.has_count]
    depths = {name: optimize_depth(int(count)) for name, count in zip(fifos, gauged["maxcount"])}
    gauged_cycles = _steady_cycles(gauged["frame_ends"])
    for _ in range(SIZING_ROUNDS):
        design = generate(build_dir, fpga_part, clock_mhz, fifo_depths=depths)
        program = compile_program(design, TB, design_harness(design.instances), "design")
        compile_seconds += program.seconds
        check = run_design(design, expected, frames, program)
        # a FIFO sized to its gauged occupancy can still run full for a cycle at a frame's
        # edge; grow the ones that did until the sized design keeps the gauged rate
        full = [n for n, c in zip(fifos, check["maxcount"]) if int(c) >= depths[n]]
        if _steady_cycles(check["frame_ends"]) <= gauged_cycles or not full:
            break
        say(f"rtl: {len(full)} FIFO(s) ran full and cost throughput; growing them ...")
        depths = {n: _grown(d) if n in full else d for n, d in depths.items()}
    say(f"rtl: simulating {len(images)} images with sized FIFOs ...")
    run = run_design(design, expected, len(images), program)
    stress_images = min(STRESS_IMAGES, len(images))
    stressed = run_design(design, expected, stress_images, program, STRESS_GAP, STRESS_STALL,
                           seed=1)
    stress = {"images": stress_images, "gap_percent": STRESS_GAP,
              "stall_percent": STRESS_STALL,
              "identical": bool(np.array_equal(stressed["output"], run["output"][:stress_images])
                                and not any(stressed["differing"]))}
    outputs = _decoded_output(design, expected, run["output"])
    identical_python = int((outputs == expected.output).all(axis=1).sum())
    if outputs.shape[1] == 1:   # the class index, selected on chip
        comparison = compare("RTL simulation", reference, outputs.astype(np.int64), labels)
    else:   # popcounts: equal to Python's, whose class the build checked against PyTorch
        comparison = compare("RTL simulation", reference,
                             _host_logits(build_dir, outputs), labels)
    layers = [LayerResult(inst.name, inst.op_type, inst.expected_cycles, cycles, same,
                          run["differing"][k + 1])
              for k, (inst, (same, cycles)) in enumerate(zip(design.instances, alone))]
    simulate_seconds = time.perf_counter() - start - compile_seconds
    result = RtlSimResult(
        len(images), comparison, identical_python, layers,
        _steady_cycles(run["frame_ends"]),
        int(run["frame_ends"][0] - run["first_input"]) if len(run["frame_ends"]) else 0,
        max(i.expected_cycles for i in design.instances), stress, depths,
        gauged_cycles, compile_seconds, simulate_seconds,
        len(images) / max(run["seconds"], 1e-9))
    write_text(design.folder / "rtlsim.json", json.dumps(result.as_dict(), indent=2,
                                                         default=_plain))
    return design, result


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
