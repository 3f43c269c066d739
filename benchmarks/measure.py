"""What every benchmark measures the same way: the process's peak resident memory."""

from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB; NaN where /proc is unavailable."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
