"""The one device table: the PYNQ boards FINN's Zynq flow builds for, their FPGA parts, and the
programmable-logic capacity of each part (AMD data sheets DS190 for Zynq-7000, DS891 for Zynq
UltraScale+ MPSoC, DS987 for the K26 SOM); and the ECP5 boards the RTL backend builds for with
the open flow (Lattice DS1044: an LFE5U-85F has 84k LUT4s, 208 EBRs of 18 Kb, 156 18x18
multipliers). FINN build reports and the HLS trainer's memory
estimates both read it. The board -> part map equals finn-plus' ``pynq_part_map`` (tested), kept
here so that the command line can list boards without importing FINN."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import XnorflowError


@dataclass(frozen=True)
class Device:
    part: str
    family: str          # short name, e.g. xc7z020
    lut: int
    bram18: int          # 18 Kb block RAMs (a 36 Kb block counts twice)
    dsp: int
    uram: int            # 288 Kb UltraRAM blocks

    def capacity(self) -> dict[str, int]:
        """In the key names of FINN's resource estimates."""
        return {"LUT": self.lut, "BRAM_18K": self.bram18, "DSP": self.dsp, "URAM": self.uram}


DEVICES = {d.part: d for d in (
    Device("xc7z020clg400-1", "xc7z020", 53_200, 280, 220, 0),
    Device("xczu3eg-sbva484-1-e", "xczu3eg", 70_560, 432, 360, 0),
    Device("xczu3eg-sbva484-1-i", "xczu3eg", 70_560, 432, 360, 0),
    Device("xczu3eg-sfvc784-2-e", "xczu3eg", 70_560, 432, 360, 0),
    Device("xczu9eg-ffvb1156-2-e", "xczu9eg", 274_080, 1_824, 2_520, 0),
    Device("xczu7ev-ffvc1156-2-e", "xczu7ev", 230_400, 624, 1_728, 96),
    Device("xczu28dr-ffvg1517-2-e", "xczu28dr", 425_280, 2_160, 4_272, 80),
    Device("xczu48dr-ffvg1517-2-e", "xczu48dr", 425_280, 2_160, 4_272, 80),
    Device("xck26-sfvc784-2LV-c", "xck26", 117_120, 288, 1_248, 64),
    # LUT: 4-input LUTs (FINN's LUT estimates count 6-input ones); BRAM_18K: EBRs
    Device("LFE5U-85F-6BG381C", "LFE5U-85F", 83_640, 208, 156, 0),
)}

BOARDS = {
    "Pynq-Z1": "xc7z020clg400-1",
    "Pynq-Z2": "xc7z020clg400-1",
    "Ultra96": "xczu3eg-sbva484-1-e",
    "Ultra96-V2": "xczu3eg-sbva484-1-i",
    "AUP-ZU3_8GB": "xczu3eg-sfvc784-2-e",
    "ZCU102": "xczu9eg-ffvb1156-2-e",
    "ZCU104": "xczu7ev-ffvc1156-2-e",
    "ZCU111": "xczu28dr-ffvg1517-2-e",
    "RFSoC2x2": "xczu28dr-ffvg1517-2-e",
    "RFSoC4x2": "xczu48dr-ffvg1517-2-e",
    "KV260_SOM": "xck26-sfvc784-2LV-c",
}


# boards without a processor, built by `build --backend rtl` only (open place and route, a
# UART host link); FINN's own steps (HLS layers, estimates) run for FINN_STAND_IN
ECP5_BOARDS = {
    "ULX3S": "LFE5U-85F-6BG381C",
}
FINN_STAND_IN = "xc7z020clg400-1"
ALL_BOARDS = {**BOARDS, **ECP5_BOARDS}


class UnknownDevice(XnorflowError):
    """A board or part xnorflow has no capacity figures for."""


def device_for_board(board: str) -> Device:
    if board not in ALL_BOARDS:
        raise UnknownDevice(f"unknown board {board!r}; FINN's Zynq flow builds for "
                            f"{', '.join(BOARDS)}, the RTL backend also for "
                            f"{', '.join(ECP5_BOARDS)}")
    return DEVICES[ALL_BOARDS[board]]


def device_for_part(part: str) -> Device:
    if part not in DEVICES:
        raise UnknownDevice(f"unknown FPGA part {part!r}; xnorflow knows "
                            f"{', '.join(DEVICES)}")
    return DEVICES[part]


def boards_of(part: str) -> list[str]:
    return [board for board, p in ALL_BOARDS.items() if p == part]
