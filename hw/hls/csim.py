"""C simulation of the generated BMLP trainer with g++, compared step by step with Python.

The testbench input holds the initial hidden weights and the exact batches, step indices and
reinforcement thresholds of a Python training run; the C++ writes back, after every step, the
predictions, the per-layer error counts and all hidden weights. :func:`compare_with_python`
replays the same steps with the bit-packed trainer and reports the first difference, if any.
"""

from __future__ import annotations

import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...outputs import atomic_file, atomic_output
from ...train.local_binary.model import BMLPState
from ...train.local_binary.packed import PackedBMLP, pack_inputs
from ...train.local_binary.trainer import epoch_order, epoch_thresholds
from ..toolchain import CXX_STANDARD, ap_types_dir, find_compiler
from .generator import GeneratedDesign, HlsError

MAGIC = 0x504C4D42  # 'BMLP'


CSIM_FILES = ("csim_bmlp", "tb_input.bin", "tb_output.bin")  # what the C simulation writes


def compile_testbench(design: GeneratedDesign, optimize: str = "-O2") -> Path:
    """Compile the testbench; the executable appears only once it is complete."""
    exe = design.directory / CSIM_FILES[0]
    with atomic_output(exe) as partial:
        cmd = [find_compiler(), CXX_STANDARD, optimize, f"-I{design.directory}",
               f"-I{ap_types_dir()}", str(design.directory / "tb_bmlp.cpp"),
               str(design.directory / "bmlp_top.cpp"), "-o", str(partial)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise HlsError(f"g++ failed on the generated design in {design.directory}:\n"
                           f"{done.stderr[-4000:]}")
    return exe


@dataclass
class Batch:
    x: np.ndarray            # +-1 int8, (n, in_features)
    y: np.ndarray            # labels
    step: int
    thresholds: list[int]


def training_batches(x: np.ndarray, y: np.ndarray, steps: int, batch_size: int, seed: int,
                     p_r: float = 0.5, previous_acc: float = 0.0, fan_ins=()) -> list[Batch]:
    """The first ``steps`` batches of epoch 0 of a run with ``seed`` (the trainer's own order),
    with the epoch's reinforcement thresholds."""
    order = epoch_order(seed, 0, len(y))
    thresholds = epoch_thresholds(p_r, previous_acc, fan_ins)
    return [Batch(x[order[i * batch_size:(i + 1) * batch_size]].astype(np.int8),
                  y[order[i * batch_size:(i + 1) * batch_size]], i, thresholds)
            for i in range(min(steps, -(-len(y) // batch_size)))]


def write_input(path: Path, state: BMLPState, batches: list[Batch], seed: int,
                infer_x: np.ndarray) -> None:
    with atomic_file(path) as f:
        f.write(struct.pack("<iiiQ", MAGIC, len(batches), len(infer_x), seed))
        for w in state.weights:
            f.write(np.ascontiguousarray(w.T, dtype="<i4").tobytes())
        for b in batches:
            f.write(struct.pack("<iQ", len(b.y), b.step))
            f.write(np.asarray(b.thresholds, dtype="<i4").tobytes())
            f.write(pack_inputs(b.x).astype("<u8").tobytes())
            f.write(np.asarray(b.y, dtype=np.uint8).tobytes())
        f.write(pack_inputs(np.asarray(infer_x, np.int8)).astype("<u8").tobytes())


@dataclass
class StepOutput:
    predictions: np.ndarray
    stats: list[int]                       # per layer: wrong samples, marked pairs
    weights: list[np.ndarray]


@dataclass
class CsimOutput:
    steps: list[StepOutput]
    infer_predictions: np.ndarray
    train_seconds: float
    train_samples: int
    infer_seconds: float
    wall_seconds: float


def run_csim(exe: Path, design: GeneratedDesign, state: BMLPState, batches: list[Batch],
             seed: int, infer_x: np.ndarray) -> CsimOutput:
    directory = design.directory
    output = directory / "tb_output.bin"
    write_input(directory / "tb_input.bin", state, batches, seed, infer_x)
    start = time.perf_counter()
    with atomic_output(output) as partial:  # only a complete output replaces the last one
        done = subprocess.run([str(exe), str(directory / "tb_input.bin"), str(partial)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise HlsError(f"C simulation failed ({exe}): {done.stderr[-2000:]}")
    wall = time.perf_counter() - start
    timing = dict(zip(done.stdout.split()[::2], done.stdout.split()[1::2]))
    raw = output.read_bytes()
    pos, steps = 0, []
    layers = len(state.weights)
    for b in batches:
        n = len(b.y)
        predictions = np.frombuffer(raw, np.uint8, n, pos).astype(np.int64)
        pos += n
        stats = np.frombuffer(raw, "<i4", 2 * layers, pos).tolist()
        pos += 8 * layers
        weights = []
        for fan_in, width in zip(design.shape.fan_ins, design.shape.widths):
            w = np.frombuffer(raw, "<i4", fan_in * width, pos).reshape(width, fan_in).T
            weights.append(w.astype(np.int32))
            pos += 4 * fan_in * width
        steps.append(StepOutput(predictions, stats, weights))
    infer = np.frombuffer(raw, np.uint8, len(infer_x), pos).astype(np.int64)
    return CsimOutput(steps, infer, float(timing["train_seconds"]),
                      int(timing["train_samples"]), float(timing["infer_seconds"]), wall)


@dataclass
class CsimComparison:
    steps: int
    identical_steps: int
    infer_samples: int
    infer_identical: int
    first_difference: str | None = None
    csim_samples_per_s: float = 0.0
    python_samples_per_s: float = 0.0

    @property
    def identical(self) -> bool:
        return (self.identical_steps == self.steps and self.infer_identical == self.infer_samples)

    def summary(self) -> str:
        text = (f"C simulation vs Python trainer: {self.identical_steps}/{self.steps} training "
                f"steps identical (weights, predictions, error counts), inference "
                f"{self.infer_identical}/{self.infer_samples} predictions identical; C-sim "
                f"{self.csim_samples_per_s:,.0f} samples/s")
        if self.first_difference:
            text += f"; first difference: {self.first_difference}"
        return text


def compare_with_python(design: GeneratedDesign, state: BMLPState, batches: list[Batch],
                        seed: int, infer_x: np.ndarray) -> CsimComparison:
    """Compile and run the C simulation, replay the same steps in Python, compare."""
    exe = compile_testbench(design)
    csim = run_csim(exe, design, state, batches, seed, infer_x)
    engine = PackedBMLP(state.copy())
    identical, first = 0, None
    python_seconds = 0.0
    for k, (b, out) in enumerate(zip(batches, csim.steps)):
        start = time.perf_counter()
        result = engine.train_step(b.x, pack_inputs(b.x), b.y, b.thresholds, b.step, seed)
        python_seconds += time.perf_counter() - start
        weights = engine.to_state().weights
        stats = [v for pair in zip(result.wrong_samples, result.updated_neurons) for v in pair]
        problems = []
        if not np.array_equal(out.predictions, result.predictions):
            problems.append("predictions")
        if out.stats != stats:
            problems.append(f"error counts (C++ {out.stats}, Python {stats})")
        for layer, (a, w) in enumerate(zip(out.weights, weights)):
            if not np.array_equal(a, w):
                problems.append(f"layer {layer} weights ({int((a != w).sum())} differ)")
        if problems:
            first = first or f"step {k}: " + ", ".join(problems)
        else:
            identical += 1
    infer_python = PackedBMLP(engine.to_state()).predict(pack_inputs(np.asarray(infer_x,
                                                                                  np.int8)))
    infer_same = int((infer_python == csim.infer_predictions).sum())
    if infer_same != len(infer_x) and first is None:
        first = f"inference: {len(infer_x) - infer_same} predictions differ"
    samples = sum(len(b.y) for b in batches)
    return CsimComparison(len(batches), identical, len(infer_x), infer_same, first,
                          csim.train_samples / max(csim.train_seconds, 1e-9),
                          samples / max(python_seconds, 1e-9))
