#!/usr/bin/env python3
"""Run this bundle's test images through the accelerator on an ECP5 board over its serial port
and compare the class it returns with PyTorch's; report accuracy and images per second.

    python validate.py --port /dev/ttyUSB0 [--images N]

Needs Python 3 with numpy and pyserial (pip install numpy pyserial), and the bundle's bitstream
loaded into the board (README.md says how). uart_host.py beside this file is the driver; the
build and `xnorflow deploy` ran the same driver against the Verilator simulation of the link.
Written by `xnorflow deploy`.
"""

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIRED = ("manifest.json", "link.json", "inputs_packed.npy", "expected_classes.npy",
            "labels.npy", "uart_host.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True,
                        help="the board's serial port (ULX3S: /dev/ttyUSB0 on Linux, COMn on "
                             "Windows, /dev/cu.usbserial-* on macOS)")
    parser.add_argument("--images", type=int, default=None, help="first N images (default: all)")
    args = parser.parse_args()
    missing = [name for name in REQUIRED if not (HERE / name).is_file()]
    if missing:
        print(f"error: {HERE} is missing {', '.join(missing)}; copy the whole bundle again or "
              f"recreate it with `xnorflow deploy`.", file=sys.stderr)
        return 1
    try:
        import numpy as np
        import serial  # noqa: F401  (pyserial: the driver opens the port with it)
    except ImportError as err:
        print(f"error: {err.name} is missing: pip install numpy pyserial", file=sys.stderr)
        return 1
    sys.path.insert(0, str(HERE))
    from uart_host import LinkError, UartAccelerator

    manifest = json.loads((HERE / "manifest.json").read_text())
    link = json.loads((HERE / "link.json").read_text())
    packed = np.load(HERE / "inputs_packed.npy")
    expected = np.load(HERE / "expected_classes.npy")
    labels = np.load(HERE / "labels.npy")
    n = len(packed) if args.images is None else max(1, min(args.images, len(packed)))
    try:
        accelerator = UartAccelerator.open(args.port, link)
        start = time.perf_counter()
        classes = accelerator.run(packed[:n])[:, 0].astype(np.int64)
        seconds = time.perf_counter() - start
    except LinkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    same = int((classes == expected[:n]).sum())
    accuracy = float((classes == labels[:n]).mean())
    print(f"{manifest['board']}: {same}/{n} classes identical to PyTorch; accuracy "
          f"{accuracy:.2%} on {n} test images; {n / seconds:,.0f} images/s through the "
          f"{link['baud']:,} baud link (the accelerator itself: "
          f"{manifest['accelerator_fps']:,.0f} FPS at {link['clock_mhz']:g} MHz)")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
