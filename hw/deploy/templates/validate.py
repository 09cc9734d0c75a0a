#!/usr/bin/env python3
"""Run this bundle's test images through the accelerator and compare the class it returns with
PyTorch's, then report accuracy and frames per second.

    sudo -E python3 validate.py                on the PYNQ board (finn-plus-driver installed)
    python validate.py --simulate [--images N]  on the host where xnorflow is installed: the
                                                same packed bytes through the folded dataflow
                                                graph, read back as the driver reads them
                                                (--cppsim: the HLS layers C-simulated;
                                                --rtl: the RTL design, Verilator)

Written by `xnorflow deploy`; see README.md.
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIRED = ("settings.json", "manifest.json", "inputs_packed.npy", "expected_classes.npy",
            "labels.npy")
SIMULATION = "accelerator.onnx"
BITFILE, HWH = HERE / "bitfile" / "finn-accel.bit", HERE / "bitfile" / "finn-accel.hwh"


class BundleError(Exception):
    """What is wrong with the bundle or the board, and what to do."""


def load_bundle(simulate: bool):
    import numpy as np

    needed = REQUIRED + ((SIMULATION,) if simulate else ())
    missing = [name for name in needed if not (HERE / name).is_file()]
    if missing:
        raise BundleError(f"{HERE} is missing {', '.join(missing)}; the bundle is incomplete. "
                          f"Copy the whole folder again, or recreate it with `xnorflow deploy`.")
    settings = json.loads((HERE / "settings.json").read_text())
    manifest = json.loads((HERE / "manifest.json").read_text())
    packed = np.load(HERE / "inputs_packed.npy")
    expected = np.load(HERE / "expected_classes.npy")
    labels = np.load(HERE / "labels.npy")
    if not len(packed) == len(expected) == len(labels):
        raise BundleError(f"{HERE}: {len(packed)} packed images but {len(expected)} expected "
                          f"classes and {len(labels)} labels; recreate the bundle.")
    io_shapes = settings["driver_information"]["io_shape_dict"]
    layout = tuple(io_shapes["ishape_packed"][0][1:])  # bytes per image, as the DMA reads them
    if packed.dtype != np.uint8 or tuple(packed.shape[1:]) != layout:
        raise BundleError(f"the packed inputs are {packed.dtype} of shape {packed.shape}; the "
                          f"accelerator reads uint8 of shape (images, "
                          f"{', '.join(map(str, layout))}) ({io_shapes['idt'][0]} values, "
                          f"packed by the driver's pack_input). Recreate the bundle with "
                          f"`xnorflow deploy`.")
    return settings, manifest, packed, expected, labels


def check_bitfile(manifest: dict) -> None:
    """The bitfile is here and was made for the bundle's device."""
    if not BITFILE.is_file() or not HWH.is_file():
        raise BundleError(
            f"this bundle has no bitfile ({BITFILE.relative_to(HERE)} and "
            f"{HWH.relative_to(HERE)}): it was made from a build that stopped before Vivado. "
            f"Build with `xnorflow build RUN --until bitfile` in the synthesis image, run "
            f"`xnorflow deploy` again, and copy the new bundle. On a host, "
            f"`python validate.py --simulate` checks the bundle without a board.")
    hwh = HWH.read_text(errors="replace")
    found = re.search(r'<SYSTEMINFO[^>]*DEVICE="([^"]+)"', hwh)
    device = manifest["device"].lower()
    if found and found.group(1).lower().removeprefix("xc") not in device:
        raise BundleError(f"the bitfile was built for device {found.group(1)}, but this bundle "
                          f"is for {manifest['board']} ({manifest['fpga_part']}); build and "
                          f"deploy again for this board.")


def run_on_board(settings: dict, packed, batch: int):
    """Classes from the accelerator, and the seconds it took (data transfers included)."""
    import numpy as np

    try:
        from finn_plus_driver import FINNDMAOverlay
    except ImportError:
        raise BundleError("finn-plus-driver is not installed on this board: run "
                          "`sudo pip install finn-plus-driver==1.6.1` in the PYNQ environment "
                          "(README.md).") from None
    info = settings["driver_information"]
    batch = max(1, min(batch, len(packed)))
    accel = FINNDMAOverlay(str(BITFILE), platform=info["platform"],
                           io_shape_dict=info["io_shape_dict"], batch_size=batch,
                           fclk_mhz=info.get("fclk_mhz", 100.0),
                           runtime_weight_dir=str(HERE / "runtime_weights"),
                           runtime_weights=info.get("runtime_weights", False))
    classes = []
    start = time.perf_counter()
    for first in range(0, len(packed), batch):
        chunk = packed[first:first + batch]
        if len(chunk) != accel.batch_size:
            accel.batch_size = len(chunk)
        accel.copy_input_data_to_device(chunk)
        accel.execute_on_buffers()
        accel.copy_output_data_from_device(accel.obuf_packed[0])
        folded = accel.unpack_output(accel.obuf_packed[0])
        classes.append(accel.unfold_output(folded).reshape(len(chunk), -1)[:, 0])
    return np.concatenate(classes).astype(np.int64), time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", action="store_true",
                        help="run on the host through the folded dataflow graph (needs xnorflow)")
    parser.add_argument("--cppsim", action="store_true",
                        help="with --simulate: C-simulate the HLS layers (g++ and finn-hlslib, "
                             "as `xnorflow build --cppsim`) instead of FINN's Python execution")
    parser.add_argument("--rtl", action="store_true",
                        help="with --simulate: run the bundle's RTL design cycle-accurately "
                             "with Verilator (bundles of `xnorflow build --backend rtl`)")
    parser.add_argument("--finn-hlslib", metavar="DIR",
                        help="finn-hlslib for --cppsim (default: $FINN_DEPS/finn-hlslib)")
    parser.add_argument("--images", type=int, default=0,
                        help="only the bundle's first N images, a stratified sample too "
                             "(default: all in the bundle)")
    parser.add_argument("--batch", type=int, default=100, help="images per DMA transfer")
    args = parser.parse_args(argv)
    try:
        for flag in ("cppsim", "rtl"):
            if getattr(args, flag) and not args.simulate:
                raise BundleError(f"--{flag} is a way to --simulate; add --simulate")
        if args.cppsim and args.rtl:
            raise BundleError("--cppsim and --rtl are two ways to simulate; choose one")
        settings, manifest, packed, expected, labels = load_bundle(args.simulate)
        if args.images < 0:
            raise BundleError("--images must be at least 0")
        count = args.images or len(packed)
        if count > len(packed):
            test_set = manifest.get("test_set_images")  # bundles before it was recorded: None
            if test_set is not None and count > test_set:
                hint = f"the test set has {test_set} images" + (
                    f"; `xnorflow deploy --images {test_set}` packs all of them"
                    if len(packed) < test_set else ", all of them in the bundle")
            else:
                hint = f"recreate it with `xnorflow deploy --images {count}`"
            raise BundleError(f"--images {count}: the bundle holds {len(packed)} images; {hint}.")
        packed, expected, labels = packed[:count], expected[:count], labels[:count]
        if args.simulate:
            try:
                from xnorflow.errors import XnorflowError
                from xnorflow.hw.deploy.bundle import simulate_bundle
            except ImportError:
                raise BundleError("--simulate runs on a host where xnorflow is installed; on "
                                  "the board, run without --simulate.") from None
            start = time.perf_counter()
            try:
                classes = simulate_bundle(HERE, packed, settings, args.cppsim, args.finn_hlslib,
                                          rtl=args.rtl)
            except XnorflowError as err:
                raise BundleError(str(err)) from None
            seconds = time.perf_counter() - start
            where = ("C-simulated on the host" if args.cppsim else
                     "RTL-simulated on the host (Verilator)" if args.rtl else
                     "simulated on the host")
        else:
            check_bitfile(manifest)
            classes, seconds = run_on_board(settings, packed, args.batch)
            where = f"on {manifest['board']}"
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    identical = int((classes == expected).sum())
    accuracy = float((classes == labels).mean())
    print(f"{manifest['network']}, {where}: {identical}/{count} identical (class index from "
          f"the packed stream vs PyTorch argmax); accuracy {accuracy:.2%}; "
          f"{count / seconds:,.0f} images/s")
    return 0 if identical == count else 1


if __name__ == "__main__":
    sys.exit(main())
