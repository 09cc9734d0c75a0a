"""What ``build --backend rtl`` is asked for: images, synthesis, the stress run, waveforms. A leaf
module (no FINN, no tools), so the command line reads it without starting anything."""

from __future__ import annotations

from dataclasses import dataclass

from ...options import AT_LEAST_0, AT_LEAST_1, Range, option, validate_fields

SYNTH_LEVELS = ("none", "hierarchical", "flat")
PLACE_ROUTE = ("auto", "none", "ecp5")
PERCENT_BELOW_100 = Range(0, 100, high_open=True)


@dataclass
class RtlOptions:
    rtlsim: int = option(200, "test images the RTL simulation runs (a seeded sample holding "
                              "every class); fewer than 3 are repeated (in order) to 3 "
                              "frames for the steady-state cycle count",
                         range=AT_LEAST_1, metavar="N")
    synth: str = option("hierarchical", "yosys synthesis: none; hierarchical (each distinct "
                        "layer, PE lane and FIFO once, out of context, kept in the cache; the "
                        "design is the sum of its layers); flat (each layer flattened: yosys "
                        "optimizes across its lanes; slower)", choices=SYNTH_LEVELS)
    stress_gap: int = option(30, "percent of cycles without an input word in the stress run "
                             "(the input keeps TVALID until its handshake, as AXI4-Stream asks)",
                             range=PERCENT_BELOW_100, metavar="PERCENT")
    stress_stall: int = option(50, "percent of cycles with the output not ready (back-pressure) "
                               "in the stress run", range=PERCENT_BELOW_100, metavar="PERCENT")
    stress_images: int = option(100, "images of the stress run (at most --rtlsim)",
                                range=AT_LEAST_1, metavar="N")
    place_route: str = option("auto", "place and route with the open flow (nextpnr-ecp5, "
                              "minutes): post-route Fmax against --clock-mhz, utilisation, the "
                              "critical path by layer; a design that misses the clock exits 4 "
                              "unless --allow-misfit. ecp5: on the board's ECP5, or for a PYNQ "
                              "board on an LFE5U-85F as an open stand-in (the xc7z020 has no "
                              "open flow here); auto: ecp5 for an ECP5 board (its bitstream), "
                              "none otherwise", choices=PLACE_ROUTE)
    baud: int = option(115_200, "an ECP5 board's UART link to the host, in bits per second "
                       "(the ULX3S's FT231X takes up to 3,000,000)",
                       range=Range(1_200, 3_000_000), metavar="BPS")
    trace: int = option(0, "write a waveform (VCD, for GTKWave or Surfer) of the first K frames "
                        "of the design (0: none; a mismatch or stall writes one by itself)",
                        range=AT_LEAST_0, metavar="K")

    def __post_init__(self):
        validate_fields(self)


    def place_route_on(self, ecp5_board: bool) -> str:
        """The flow that runs: auto resolved for the board."""
        if self.place_route == "auto":
            return "ecp5" if ecp5_board else "none"
        return self.place_route


RTL_ONLY = ("synth", "stress_gap", "stress_stall", "stress_images", "trace", "place_route",
            "baud")   # + rtlsim
