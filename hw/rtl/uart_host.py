"""The host side of an ECP5 board's UART link: frames of the accelerator's input bytes out,
its output words back. One driver for the board (a pyserial port) and for the Verilator
simulation of the link (:class:`SimulatedPort`, the same three calls), so the code that runs
against the board is the code the build checked.

The bytes are the accelerator's stream words as FINN packs them (element 0 in the lowest bits),
least significant byte first, exactly what the PYNQ driver's DMA sends. A break resets the link
and the accelerator first, so that nothing sent before can shift the frames.

On a board::

    from xnorflow.hw.rtl.uart_host import UartAccelerator
    accelerator = UartAccelerator.open("/dev/ttyUSB0", link)   # link: <build>/rtl/board.json
    outputs = accelerator.run(frames)                          # (n, in_bytes) uint8 -> (n, out)
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

try:
    from ...errors import XnorflowError
except ImportError:      # the copy in a deploy bundle, beside validate.py: no xnorflow there
    XnorflowError = Exception

FRAMES_PER_WRITE = 32        # frames sent before their outputs are read back
IDLE_BIT_TIMES = 20_000      # the simulated port's read timeout, in bit times


class LinkError(XnorflowError):
    """The board (or its simulation) did not answer as the link expects."""


class UartAccelerator:
    """The accelerator behind the link: ``run`` sends frames and returns the output words."""

    def __init__(self, port, in_frame_bytes: int, out_frame_bytes: int, where: str = "board"):
        self.port = port
        self.in_frame_bytes = in_frame_bytes
        self.out_frame_bytes = out_frame_bytes
        self.where = where

    @classmethod
    def open(cls, device: str, link: dict | str | Path, timeout_s: float = 2.0):
        """The board on the serial ``device``, with the link settings the build wrote."""
        import serial

        if not isinstance(link, dict):
            link = json.loads(Path(link).read_text())
        try:
            port = serial.Serial(device, link["baud"], timeout=timeout_s)
        except serial.SerialException as err:
            raise LinkError(f"cannot open the serial port {device}: {err}. The ULX3S's link is "
                            f"its USB port US1 (FT231X); on Linux /dev/ttyUSB0, and the user "
                            f"needs to be in the dialout group.") from None
        return cls(port, link["in_frame_bytes"], link["out_frame_bytes"], f"board on {device}")

    def reset(self) -> None:
        self.port.send_break(0.01)
        self.port.reset_input_buffer()

    def run(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: (n, in_frame_bytes) uint8; the output words, (n, out_frame_bytes)."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8).reshape(len(frames), -1)
        if frames.shape[1] != self.in_frame_bytes:
            raise LinkError(f"a frame of this accelerator is {self.in_frame_bytes} bytes, not "
                            f"{frames.shape[1]}")
        self.reset()
        outputs = []
        for start in range(0, len(frames), FRAMES_PER_WRITE):
            chunk = frames[start:start + FRAMES_PER_WRITE]
            self.port.write(chunk.tobytes())
            want = len(chunk) * self.out_frame_bytes
            got = self.port.read(want)
            if len(got) != want:
                raise LinkError(
                    f"the {self.where} answered {len(got)} of the {want} bytes of frames "
                    f"{start}-{start + len(chunk) - 1}: is the bitstream of this build loaded, "
                    f"and the port the board's serial port at the build's baud rate?")
            outputs.append(np.frombuffer(got, dtype=np.uint8))
        return np.concatenate(outputs).reshape(len(frames), self.out_frame_bytes)


class SimulatedPort:
    """The serial port of the simulated board (harness/uart_link.cpp): ``write``, ``read``,
    ``send_break`` and ``reset_input_buffer`` as pyserial has them."""

    def __init__(self, program: Path, cwd: Path):
        self.process = subprocess.Popen([str(program)], cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)

    def _send(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def _answer(self, size: int) -> bytes:
        data = self.process.stdout.read(size)
        if len(data) != size:
            raise LinkError(f"the simulated link ended (exit {self.process.poll()})")
        return data

    def write(self, data: bytes) -> int:
        self._send(b"W" + struct.pack("<I", len(data)) + bytes(data))
        return len(data)

    def read(self, size: int) -> bytes:
        self._send(b"R" + struct.pack("<II", size, IDLE_BIT_TIMES))
        (count,) = struct.unpack("<I", self._answer(4))
        return self._answer(count)

    def send_break(self, duration: float = 0.25) -> None:
        self._send(b"B")

    def reset_input_buffer(self) -> None:
        """Nothing to drop: the simulated line keeps no bytes between reads."""

    def status(self) -> tuple[int, int]:
        """(bytes the link dropped, cycles simulated)."""
        self._send(b"S")
        return struct.unpack("<IQ", self._answer(12))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and self.process.poll() is None:
            self.process.kill()
        self.close()
