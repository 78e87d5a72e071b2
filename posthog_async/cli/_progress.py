"""A dependency-free progress line for stderr: bar, rate, ETA, and messages that interrupt it.

On a terminal it redraws one line; elsewhere (CI logs, pipes) it prints a line every 10%.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressLine", "format_duration"]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressLine:
    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 28) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_decile = -1
        self._started = time.monotonic()
        self._drawn = False

    def update(self, done: int, total: int | None, *, failed: int = 0,
               note: str | None = None) -> None:
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        if total:
            fraction = min(1.0, done / total)
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            eta = (total - done) / rate if rate > 0 else None
            text = (f"{self.label} [{bar}] {fraction:4.0%} {done:,}/{total:,} ids "
                    f"| {rate:,.0f} ids/s | ETA {format_duration(eta)}")
        else:
            fraction = 0.0
            text = f"{self.label} {done:,} ids | {rate:,.0f} ids/s"
        if failed:
            text += f" | {failed} failed chunks"
        if note:
            text += f" | {note}"
        if self.tty:
            self.stream.write("\r" + text.ljust(100))
            self.stream.flush()
            self._drawn = True
        else:
            decile = int(fraction * 10)
            if decile != self._last_decile or note:
                self._last_decile = decile
                self.stream.write(text + "\n")
                self.stream.flush()

    def interrupt(self, message: str) -> None:
        """Print ``message`` on a line of its own (the bar is redrawn by the next update)."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
