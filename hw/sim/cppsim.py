"""FINN's C++ simulation ("cppsim") of the generated hardware layers, with g++ and without Vitis.

What runs is what Vivado would synthesize: FINN's own ``PrepareCppSim`` writes each layer's
finn-hlslib C++ (the same templates as its HLS sources) and ``SetExecMode("cppsim")`` makes the
layer execute as that compiled program. xnorflow compiles the programs itself
(:func:`compile_layers`) instead of FINN's ``CompileCppSim``, which hard-codes ``-O3
-fno-inline`` (4.5x slower programs, ``benchmarks/cppsim_flags.py``), one worker and Vitis'
simulation libraries; the sources and the way FINN runs them are unchanged, except that a call
FINN writes for one image (``LabelSelect``) gets the batch size as its repetition count.
Compiled layers are cached by content (the layer's attributes and weights, the batch size and
the tool chain), so a rebuild does not recompile layers that did not change.

The Vitis headers finn-hlslib includes come from ``hls_include/`` (the project's own small
``hls_stream.h``, ``hls_vector.h``, ``ap_axi_sdata.h``, ``ap_float.h``); ``ap_int``/``ap_fixed``
are the Apache-2.0 ap_types the hls4ml package ships. finn-hlslib itself is where finn-plus puts
it (``$FINN_DEPS/finn-hlslib``, filled by ``finn deps update``) or a folder the user names.

:func:`simulate_build` executes the folded dataflow design of a finished build with every layer
in cppsim and compares it, layer by layer, with FINN's Python execution of the same graph, and
its output with PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...errors import XnorflowError
from ...export import batched_ops
from ...export.verify import (
    StageComparison,
    compare,
    graph_inputs,
    padded_batch,
    unrounded_execution,
    with_batch_size,
)
from ...outputs import atomic_output, cache_root, write_npy, write_text
from ...progress import progress_bar
from ..finn.layout import FOLDED_STEP, BuildLayout
from ..finn.verify import inline_partition
from ..toolchain import CXX_STANDARD, ap_types_dir, compiler_version, find_compiler

INCLUDE_DIR = Path(__file__).parent / "hls_include"
CXXFLAGS = (CXX_STANDARD, "-O2", "-w")
HLSLIB_MARKER = "bnn-library.h"
OUTPUTS_FILE = "outputs.npy"   # in <build>/cppsim/: the simulated outputs (class or popcounts)
# Node attributes that name places, not behaviour: left out of a layer's content key.
PLACE_ATTRIBUTES = ("code_gen_dir_cppsim", "code_gen_dir_ipgen", "executable_path",
                    "ipgen_path", "ip_path", "ip_vlnv", "exec_mode", "rtlsim_so")


class CppSimError(XnorflowError):
    """C simulation cannot run (a tool or library is missing) or a layer does not compile."""


# Layers whose generated call handles one image (FINN writes ``numReps`` = 1: in hardware the
# free-running IP restarts for every image). The C simulation feeds a batch, so the call gets
# the batch size: the same template run for each image in a row.
ONE_IMAGE_CALLS = {
    "LabelSelect_hls": re.compile(r"(LabelSelect_Batch<[^;]*>\s*\(in0_V, out0_V, )1\);")}


# finn-hlslib calls that finn-plus generates for a later finn-hlslib than some copies have (the
# README of ../shared/deps names the gap): one small program per call, compiled once per tool
# chain. A layer whose probe does not compile runs in FINN's Python execution instead, and the
# result says so.
# Layer type -> (the finn-hlslib function finn-plus calls for it, a program making that call).
PROBES = {
    "Pool_hls": ("Pool_batch",
                 "#include \"pool.hpp\"\nint main() {\n"
                 "MaxPoolFunction<hls::vector<ap_uint<1>, 1>> pool;\n"
                 "hls::stream<hls::vector<ap_uint<1>, 1>> in0, out0;\n"
                 "Pool_batch<4, 4>(in0, out0, pool);\n}\n"),
}
RTL_REASON = "RTL layer: no C++ model; FINN's cppsim runs its Python execution"


def hlslib_gaps(toolchain: Toolchain, cache: Path | None = None) -> dict[str, str]:
    """Layer type -> why this finn-hlslib cannot compile the call finn-plus generates for it,
    for the types of :data:`PROBES` (probed once per tool chain; only a clear answer, the
    program compiles or fails at the probed call, is kept in the cache)."""
    root = (cache or cache_root()) / "cppsim"
    root.mkdir(parents=True, exist_ok=True)
    gaps = {}
    for op_type, (call, body) in PROBES.items():
        answer = root / f"probe-{op_type}-{toolchain.key}.json"
        if answer.is_file():
            verdict = json.loads(answer.read_text())
        else:
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                source = Path(tmp) / "probe.cpp"
                source.write_text(f'#include "bnn-library.h"\n{body}')
                done = subprocess.run(toolchain.command([str(source)], str(Path(tmp) / "probe"),
                                                        compile_only=True),
                                      capture_output=True, text=True)
            errors = [line.split("error:", 1)[1].strip()
                      for line in done.stderr.splitlines() if "error:" in line]
            verdict = {"compiles": done.returncode == 0,
                       "error": errors[0] if errors else "does not compile"}
            if verdict["compiles"] or any(call in error for error in errors):
                write_text(answer, json.dumps(verdict))  # else a passing problem: ask again
        if not verdict["compiles"]:
            gaps[op_type] = (f"this finn-hlslib cannot compile finn-plus' {op_type} call "
                             f"({verdict['error'][:120]}); FINN's Python execution instead")
    return gaps


def _repeat_per_image(node) -> None:
    """Give a one-image call in the layer's generated C++ the batch's repetition count."""
    from qonnx.custom_op.registry import getCustomOp

    pattern = ONE_IMAGE_CALLS.get(node.op_type)
    if pattern is None:
        return
    layer = getCustomOp(node)
    images = int(np.prod(layer.get_nodeattr("numInputVectors")))
    source = Path(layer.get_nodeattr("code_gen_dir_cppsim")) / f"execute_{node.op_type}.cpp"
    text, count = pattern.subn(rf"\g<1>{images});", source.read_text())
    if count != 1:
        raise CppSimError(f"{node.name}: the C++ FINN generated ({source}) no longer has the "
                          f"one-image call xnorflow expects; this finn-plus version is not "
                          f"supported by the C simulation of {node.op_type}")
    write_text(source, text)


def find_hlslib(explicit: str | Path | None = None) -> Path:
    """finn-hlslib: the folder given, else ``$FINN_DEPS/finn-hlslib`` (finn-plus' own place),
    else the one ``python -m xnorflow.hw.finn.deps`` fetches into xnorflow's cache."""
    from ..finn.deps import HLSLIB, default_target

    if explicit:
        candidates = [Path(explicit)]
    else:
        deps = os.environ.get("FINN_DEPS") or _finn_deps_setting()
        candidates = [Path(deps) / HLSLIB] if deps else []
        candidates.append(default_target() / HLSLIB)
    for folder in candidates:
        if (folder / HLSLIB_MARKER).is_file():
            return folder.resolve()
    where = " or ".join(str(c) for c in candidates)
    raise CppSimError(
        f"finn-hlslib not found at {where} (no {HLSLIB_MARKER} there). C simulation compiles "
        f"FINN's layers against it. Fetch finn-plus' pinned copy with `python -m "
        f"xnorflow.hw.finn.deps` (git, no Vivado needed; into $FINN_DEPS, else "
        f"{default_target()}), or pass --finn-hlslib DIR with a checkout of "
        f"https://github.com/Xilinx/finn-hlslib. (`finn deps update` stops before fetching "
        f"anything when Vivado is not installed.)")


def _finn_deps_setting() -> str | None:
    try:
        from finn.util.settings import get_settings

        return str(get_settings().finn_deps)
    except Exception:  # settings not initialized: no configured place
        return None


@dataclass(frozen=True)
class Toolchain:
    """The compiler and include folders every layer is compiled with, and their identity."""

    compiler: str
    includes: tuple[str, ...]
    key: str
    flags: tuple[str, ...] = CXXFLAGS

    @classmethod
    def find(cls, hlslib: str | Path | None = None) -> Toolchain:
        from finn.templates import get_templates_folder

        try:
            compiler = find_compiler()
        except XnorflowError as err:
            raise CppSimError(str(err)) from None
        library = find_hlslib(hlslib)
        npy_harness = Path(get_templates_folder()) / "npy2stream"
        includes = (str(npy_harness), str(library), str(INCLUDE_DIR), str(ap_types_dir()))
        version = [compiler_version(compiler)]
        digest = hashlib.sha256()
        for part in (compiler, *version, *CXXFLAGS, *includes):
            digest.update(part.encode() + b"\0")
        for folder in (INCLUDE_DIR, library, npy_harness):  # header contents, by size and time
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(Path(__file__).read_bytes())  # how sources are adapted (ONE_IMAGE_CALLS)
        return cls(compiler, includes, digest.hexdigest()[:16])

    def with_flags(self, flags: tuple[str, ...]) -> Toolchain:
        """The same compiler and headers with other flags (for comparisons); its own key."""
        key = hashlib.sha256((self.key + " ".join(flags)).encode()).hexdigest()[:16]
        return replace(self, flags=tuple(flags), key=key)

    def command(self, sources: list[str], output: str, compile_only: bool = False) -> list[str]:
        return [self.compiler, *self.flags, *(f"-I{d}" for d in self.includes), *sources,
                *(["-c"] if compile_only else []), "-o", output]


def layer_key(model, node, toolchain: Toolchain) -> str:
    """Content key of one layer: type, attributes (not paths), weights and types of its
    inputs, tool chain. Two layers with the same key compile to the same program."""
    digest = hashlib.sha256(toolchain.key.encode())
    digest.update(f"{node.domain}.{node.op_type}".encode())
    for attribute in sorted(node.attribute, key=lambda a: a.name):
        if attribute.name not in PLACE_ATTRIBUTES:
            digest.update(attribute.SerializeToString())
    for name in node.input:
        digest.update(str(model.get_tensor_datatype(name)).encode())
        value = model.get_initializer(name)
        if value is not None:
            digest.update(np.ascontiguousarray(value).tobytes() + str(value.shape).encode())
    return digest.hexdigest()[:24]


def _shared_object(toolchain: Toolchain, cache: Path) -> Path:
    """FINN's npy reader (cnpy.cpp), compiled once per tool chain and linked into every layer."""
    from finn.templates import get_templates_folder

    target = cache / f"cnpy-{toolchain.key}.o"
    if not target.is_file():
        source = Path(get_templates_folder()) / "npy2stream" / "cnpy.cpp"
        with atomic_output(target) as partial:
            _run(toolchain.command([str(source)], str(partial), compile_only=True), "cnpy.cpp")
    return target


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise CppSimError(f"g++ failed on {what}:\n{done.stderr[-3000:]}")


@dataclass
class CompileReport:
    compiled: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    seconds: float = 0.0
    python: dict[str, str] = field(default_factory=dict)  # layer -> why it is not C++ here


def compile_layers(model, toolchain: Toolchain, workers: int = 2, cache: Path | None = None,
                   lane: int = 0):
    """Give every HLS layer of ``model`` (a dataflow partition) a compiled cppsim program and
    set it to execute in cppsim. Programs live in ``cache``/cppsim/<content key>/ and are
    reused when the key matches. A program reads and writes its npy files in its own folder,
    so simulations that run at the same time need their own copies: ``lane`` k > 0 gets
    folders <content key>.k. Returns the model and what was compiled and reused."""
    from finn.transformation.fpgadataflow.prepare_cppsim import PrepareCppSim
    from finn.transformation.fpgadataflow.set_exec_mode import SetExecMode
    from finn.util.fpgadataflow import is_hls_node
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    start = time.perf_counter()
    model = ModelWrapper(model.model.__deepcopy__())  # the caller's graph stays as it was
    root = (cache or cache_root()) / "cppsim"
    root.mkdir(parents=True, exist_ok=True)
    report = CompileReport()
    pending = []
    gaps = hlslib_gaps(toolchain, cache)
    for node in model.graph.node:
        if not is_hls_node(node):
            if node.domain.startswith("finn.custom_op.fpgadataflow") or \
                    node.domain == batched_ops.DOMAIN:
                report.python[node.name] = RTL_REASON
            continue
        if node.op_type in gaps:  # the generic layer: FINN's Python execution
            report.python[node.name] = gaps[node.op_type]
            node.op_type, node.domain = node.op_type[:-4], node.domain[:-4]
            continue
        layer = getCustomOp(node)
        key = layer_key(model, node, toolchain)
        folder = root / (f"{key}.{lane}" if lane else key)
        folder.mkdir(exist_ok=True)
        layer.set_nodeattr("code_gen_dir_cppsim", str(folder))
        program = folder / "node_model"
        if program.is_file():
            report.cached.append(node.name)
            layer.set_nodeattr("executable_path", str(program))
        else:
            pending.append((node.name, folder))
    try:
        model = model.transform(PrepareCppSim())  # FINN's code generation, into those folders
    except Exception as err:  # FINN's own error types; one message for the user
        raise CppSimError(f"FINN could not generate C++ for the C simulation: {err}") from None
    for node in model.graph.node:
        _repeat_per_image(node)
    if pending:
        shared = _shared_object(toolchain, root)

        def build(item: tuple[str, Path]) -> str:
            name, folder = item
            sources = sorted(str(p) for p in folder.glob("*.cpp"))
            with atomic_output(folder / "node_model") as partial:
                _run(toolchain.command([*sources, str(shared)], str(partial)),
                     f"layer {name} ({folder})")
            return name

        with ThreadPoolExecutor(max(1, workers)) as pool:
            report.compiled = list(pool.map(build, pending))
        for node in model.graph.node:
            if node.name in report.compiled:
                layer = getCustomOp(node)
                layer.set_nodeattr("executable_path",
                                   str(Path(layer.get_nodeattr("code_gen_dir_cppsim"))
                                       / "node_model"))
    report.seconds = time.perf_counter() - start
    return model.transform(SetExecMode("cppsim")), report


def _rate(count: int, seconds: float) -> str:
    rate = count / max(seconds, 1e-9)
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"


@dataclass
class LayerMismatch:
    layer: str
    images: int
    differing: int      # images whose output of this layer differs between C++ and Python


@dataclass
class CppSimResult:
    comparison: StageComparison     # cppsim output against PyTorch
    equal_to_python: int            # images whose cppsim output equals FINN's Python execution
    layers: list[LayerMismatch]
    compile: CompileReport
    simulate_seconds: float

    @property
    def identical(self) -> bool:
        return (self.comparison.identical and self.equal_to_python == self.comparison.images
                and not any(layer.differing for layer in self.layers))

    def summary(self) -> str:
        n = self.comparison.images
        layers = ", ".join(f"{m.layer} {m.differing}" for m in self.layers)
        return (f"cppsim: argmax {self.comparison.argmax_matches}/{n} identical to PyTorch, "
                f"outputs {self.equal_to_python}/{n} equal to FINN's Python execution; images "
                f"with a differing layer output: {layers}; {len(self.compile.compiled)} layers "
                f"compiled, {len(self.compile.cached)} reused "
                f"({self.compile.seconds:.1f} s), {_rate(n, self.simulate_seconds)} "
                f"images/s{self.python_note()}")

    def python_note(self) -> str:
        """Which layers ran in FINN's Python execution instead of C++, grouped by reason."""
        reasons: dict[str, list[str]] = {}
        for layer, reason in self.compile.python.items():
            reasons.setdefault(reason, []).append(layer)
        return "".join(f"; in Python: {', '.join(layers)} ({reason})"
                       for reason, layers in reasons.items())

    def as_dict(self) -> dict:
        return {"comparison": self.comparison.as_dict(), "equal_to_python": self.equal_to_python,
                "layers": [m.__dict__ for m in self.layers],
                "compiled": self.compile.compiled, "cached": self.compile.cached,
                "python": self.compile.python, "compile_seconds": self.compile.seconds,
                "simulate_seconds": self.simulate_seconds, "identical": self.identical}


def simulate_build(build_dir: str | Path, images: np.ndarray, reference: np.ndarray,
                   labels: np.ndarray | None, toolchain: Toolchain, batch: int = 100,
                   workers: int = 2, progress: bool = True) -> CppSimResult:
    """Execute the folded dataflow design of the build in ``build_dir`` with every layer in
    cppsim on ``images`` (+-1), in batches of ``batch`` (each layer is compiled for that
    batch); compare every layer with FINN's Python execution and the output with the PyTorch
    logits ``reference``. Work files go to ``build_dir``/cppsim/."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from ..finn.transforms import MakeHWLayersPythonExecutable

    build_dir = Path(build_dir)
    layout = BuildLayout(build_dir)
    child_path, parent_path = layout.folded, layout.parent
    if not child_path.is_file() or not parent_path.is_file():
        raise CppSimError(f"{build_dir}: no folded dataflow design to simulate (the build did "
                          f"not reach {FOLDED_STEP})")
    batch = max(1, batch)  # not shrunk to the image count: the compiled layers stay reusable
    work = layout.cppsim
    work.mkdir(exist_ok=True)
    parent, child = ModelWrapper(str(parent_path)), ModelWrapper(str(child_path))
    flat = with_batch_size(inline_partition(parent, child), batch, work)
    starts = range(0, len(images), batch)
    lanes = max(1, min(workers, len(starts)))  # batches simulated at the same time
    report = CompileReport()
    simulated = []
    for lane in range(lanes):
        model, lane_report = compile_layers(flat, toolchain, workers, lane=lane)
        simulated.append(model)
        report.compiled += [n for n in lane_report.compiled if n not in report.compiled]
        report.cached = lane_report.cached if lane == 0 else \
            [n for n in report.cached if n in lane_report.cached]
        report.seconds += lane_report.seconds
        report.python = lane_report.python
    flat_python = flat.transform(MakeHWLayersPythonExecutable())
    layer_outputs = [(node.name, node.output[0]) for node in flat.graph.node
                     if node.op_type.endswith("_hls") and node.name not in report.python]
    in_name, out_name = flat.graph.input[0].name, flat.graph.output[0].name
    inputs = graph_inputs(flat, images)

    def run_batch(index: int) -> tuple[np.ndarray, int, np.ndarray]:
        """Output, images equal to Python, per-layer differing images of one batch."""
        padded, rows = padded_batch(inputs, starts[index], batch)
        feed = {in_name: padded.reshape(flat.get_tensor_shape(in_name))}
        try:
            cpp = execute_onnx(simulated[index % lanes], feed, return_full_exec_context=True)
        except Exception as err:  # a program that crashed or wrote no output
            raise CppSimError(f"the C simulation of images {starts[index]}.."
                              f"{starts[index] + rows - 1} failed: {err}") from None
        ref = execute_onnx(flat_python, feed, return_full_exec_context=True)

        def rows_of(context, tensor):
            return np.asarray(context[tensor]).reshape(batch, -1)[:rows]

        differing = np.array([int((rows_of(cpp, t) != rows_of(ref, t)).any(axis=1).sum())
                              for _, t in layer_outputs], np.int64)
        out = rows_of(cpp, out_name)
        return out, int((out == rows_of(ref, out_name)).all(axis=1).sum()), differing

    bar = progress_bar(total=len(starts), desc="cppsim", enabled=progress)

    def run_lane(lane: int) -> list:
        """Lane k runs batches k, k + lanes, ... one after the other (its own programs)."""
        results = []
        for index in range(lane, len(starts), lanes):
            results.append(run_batch(index))
            bar.update()
        return results

    start = time.perf_counter()
    with ThreadPoolExecutor(lanes) as pool, bar, unrounded_execution():
        per_lane = list(pool.map(run_lane, range(lanes)))
    seconds = time.perf_counter() - start
    ordered = [per_lane[i % lanes][i // lanes] for i in range(len(starts))]
    outputs = [out for out, _, _ in ordered]
    equal = sum(same for _, same, _ in ordered)
    differing = np.sum([diff for _, _, diff in ordered], axis=0)
    comparison = compare("cppsim", reference, np.concatenate(outputs), labels)
    layers = [LayerMismatch(name, len(images), int(d))
              for (name, _), d in zip(layer_outputs, differing)]
    result = CppSimResult(comparison, equal, layers, report, seconds)
    write_text(work / "cppsim.json", json.dumps(result.as_dict(), indent=2))
    # what the simulated accelerator sent back, one row per image
    write_npy(work / OUTPUTS_FILE, np.concatenate(outputs))
    return result
