"""What a FINN build is asked for: the build options, the folding JSON check and the build's
errors. A leaf module: it imports no FINN, so the CLI, the steps and the stages read it without
starting FINN."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError, XnorflowError
from ...options import AT_LEAST_1, POSITIVE, Range, option, validate_fields
from ..devices import ALL_BOARDS, ECP5_BOARDS, FINN_STAND_IN, device_for_board

UNTIL_CHOICES = ("estimates", "hw-codegen", "bitfile")
FOLDING_ATTRIBUTES = ("PE", "SIMD")  # what must be a positive integer dividing the layer
FOLDING_SEARCHES = ("balanced", "finn")


class BuildError(XnorflowError):
    """A FINN build step failed; the message carries the step's error and the build log."""


class FoldingConfigError(BuildError):
    """A folding JSON that FINN could not apply; the message names the entry and the fix."""


class VendorToolsMissing(BuildError):
    """The requested output needs Vivado/Vitis HLS, which are not installed here."""

    exit_code = 3


# The board, clock and budget of a design, declared once for every command that folds one
# (build, explore); each class calls these for a field of its own.
def board_option(help: str = "the board: a PYNQ board of FINN's Zynq flow, or an ECP5 board "
                              "(ULX3S: --backend rtl only, open place and route, UART link)"):
    return option("Pynq-Z1", help, choices=tuple(ALL_BOARDS))


def clock_option():
    return option(100.0, "target clock in MHz (FPGA fabric clocks: 1 to 1000)",
                  range=Range(1, 1000))


def budget_option(help: str = "share of each device resource (LUT, BRAM, URAM, DSP) the "
                              "folding search may use"):
    return option(0.8, help, range=Range(0, 1, low_open=True))


@dataclass
class BuildOptions:
    board: str = board_option()
    clock_mhz: float = clock_option()
    target_fps: int | None = option(None, "frames/s the folding should reach (default: the "
                                    "fastest design within --budget)", range=POSITIVE)
    folding_config: str | None = option(None, "per-layer PE/SIMD JSON (FINN's format) instead "
                                        "of a folding search", metavar="JSON")
    budget: float = budget_option()
    folding_search: str = option("balanced", "balanced: xnorflow's search over FINN's estimates "
                                 "(every layer just fast enough, cheapest in resources); finn: "
                                 "FINN's SetFolding (needs --target-fps)",
                                 choices=FOLDING_SEARCHES)
    mvau_wwidth_max: int = option(36, "cap on PE*SIMD weight bits per layer in FINN's "
                                  "SetFolding (--folding-search finn)", range=AT_LEAST_1)
    until: str = option("hw-codegen", "last output to produce", choices=UNTIL_CHOICES)

    def __post_init__(self):
        validate_fields(self)

    def validate(self) -> None:
        """Fail on bad options before any work starts (the folding JSON included)."""
        if self.target_fps is not None and self.folding_config is not None:
            raise UsageError("give at most one of --target-fps (the search reaches it) and "
                             "--folding-config (per-layer PE/SIMD JSON); with neither, the "
                             "search picks the fastest design within --budget")
        if self.folding_config is not None and self.folding_search == "finn":
            raise UsageError("--folding-search chooses how a folding is searched; a "
                             "--folding-config JSON is used as it is: drop one of the two")
        if self.folding_search == "finn" and self.target_fps is None:
            raise UsageError("--folding-search finn runs FINN's SetFolding, which needs a "
                             "--target-fps")
        if self.is_ecp5 and self.until == "bitfile":
            raise UsageError(f"--until bitfile runs Vivado, which builds for Xilinx parts; "
                             f"{self.board} is an ECP5 board: build it with --backend rtl "
                             f"--place-route (the open flow writes its bitstream)")
        if self.folding_config:
            read_folding_config(self.folding_config)

    @property
    def fpga_part(self) -> str:
        return device_for_board(self.board).part

    @property
    def finn_part(self) -> str:
        """The part FINN's own steps build for: an ECP5 board's layers are FINN's for a
        Zynq-7000 (their estimates are 7-series figures); the RTL backend takes it from there."""
        return FINN_STAND_IN if self.is_ecp5 else self.fpga_part

    @property
    def is_ecp5(self) -> bool:
        return self.board in ECP5_BOARDS

    @property
    def searches_folding(self) -> bool:
        """Whether xnorflow's balanced search chooses the folding (else FINN or a JSON)."""
        return self.folding_config is None and self.folding_search == "balanced"


def read_folding_config(path: str | Path) -> dict:
    """Parse and check the structure of a FINN folding JSON: an object of layer name -> object
    of attribute -> value (plus FINN's optional "Defaults"); PE and SIMD positive integers."""
    path = Path(path)
    if path.is_dir():
        raise FoldingConfigError(f"{path} is a folder; --folding-config takes a JSON file of "
                                 f"layer name -> PE/SIMD (FINN's format).")
    if not path.is_file():
        raise FoldingConfigError(f"{path}: folding config file not found.")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise FoldingConfigError(f"{path}: not valid JSON ({err}). A folding config looks like "
                                 f'{{"MVAU_hls_0": {{"PE": 16, "SIMD": 49}}, ...}}.') from None
    if not isinstance(config, dict):
        raise FoldingConfigError(f"{path}: the top level must be an object of layer name -> "
                                 f"attributes, not a {type(config).__name__}.")
    for layer, attributes in config.items():
        if not isinstance(attributes, dict):
            raise FoldingConfigError(f"{path}: entry {layer!r} must be an object of attribute "
                                     f"-> value, e.g. {{\"PE\": 4, \"SIMD\": 8}}.")
        if layer == "Defaults":
            for name, spec in attributes.items():
                if not isinstance(spec, list) or len(spec) % 2:
                    raise FoldingConfigError(f"{path}: Defaults.{name} must be [value, "
                                             f"[op types] or \"all\", ...] pairs (FINN's "
                                             f"format).")
            continue
        for name in FOLDING_ATTRIBUTES:
            value = attributes.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise FoldingConfigError(f"{path}: {layer}.{name} = {value!r}; {name} must be "
                                         f"a positive integer.")
    return config
