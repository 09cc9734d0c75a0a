"""Memory readings for the benchmarks (Linux /proc)."""

from __future__ import annotations


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS, so the
    peak read after training belongs to training, not to loading the data set."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
