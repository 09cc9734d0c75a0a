"""The RTL design on packed input bytes, as a deploy bundle holds them: ``validate.py --simulate
--rtl`` runs the bundle's ``inputs_packed.npy`` through the bundle's copy of the design
(compiled with Verilator once, kept in xnorflow's cache) and reads back the output stream's
bytes, which the driver's unpacking then reads as on a board."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .design import Design, RtlBackendError
from .harness import design_harness
from .stitch import TB
from .verilate import compile_program, run_program


def run_packed(rtl_folder: str | Path, packed: np.ndarray, out_words: int) -> np.ndarray:
    """``packed`` (images, input words, bytes per word) through the design in ``rtl_folder``;
    the output words (images, ``out_words``, bytes per output word)."""
    design = Design.load(rtl_folder)
    in_bytes = (design.streams[0].bits + 7) // 8
    out_bytes = (design.streams[-1].bits + 7) // 8
    if packed.shape[-1] != in_bytes:
        raise RtlBackendError(f"the packed inputs have {packed.shape[-1]} bytes per word; the "
                              f"design's input stream takes {in_bytes}")
    program = compile_program(design, TB, design_harness(design.instances), "design")
    images = len(packed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.ascontiguousarray(packed, dtype=np.uint8).tofile(folder / "input.bin")
        timeout = max(10_000, 20 * max(i.expected_cycles for i in design.instances))
        summary = run_program(program, [str(folder / "input.bin"), str(folder),
                                        str(images * out_words), "0", "0", "0", str(timeout)],
                              folder, design.folder / "hdl")
        if summary["stalled"]:
            raise RtlBackendError("the RTL simulation stopped making progress on the bundle's "
                                  "inputs")
        last = len(design.streams) - 1
        data = np.fromfile(folder / f"tap{last}.bin", dtype=np.uint8)
    return data.reshape(images, out_words, out_bytes)
