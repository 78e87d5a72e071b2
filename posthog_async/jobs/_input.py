"""Reading an erase list: its identity, its encoding, and its ids, in one of three formats.

A job must never send garbage nor silently skip ids, so input is read strictly:

- the encoding is UTF-8, with or without a byte-order mark, or UTF-16/UTF-32 *with* one;
  anything else (bytes that are not UTF-8, NUL bytes in the pattern of UTF-16 or UTF-32
  without a byte-order mark, wherever they begin) is refused with the line where it went
  wrong, before anything is deleted (:mod:`._input_bytes`);
- formats are explicit: one id a line (``lines``), a column of a CSV export (``csv``), or a
  field of JSON Lines (``jsonl``); a value that cannot be an id is rejected with its line, and a
  CSV file that is not valid CSV (an unclosed quote, text after a closing quote) is refused;
- the file's identity (size and SHA-256, computed while reading) lets a resumed job check that
  it is reading the same list, or one with lines appended;
- standard input, and any input that is not a regular file (a named pipe, ``<(command)``), is
  read by a helper thread, so a stop (Ctrl-C, SIGTERM) is noticed even while no line arrives,
  or while a named pipe waits for its writer.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ._input_bytes import HashingStream, InputError, detect_encoding, open_binary
from ._input_formats import Format, Rejected, entries

# InputError is defined in _input_bytes and Rejected in _input_formats; named here too because
# _journal imports them from here.
__all__ = ["InputSpec", "InputIdentity", "InputError", "InputReader", "Rejected", "identify",
           "prefix_sha256"]

Kind = Literal["distinct_ids", "ids"]


@dataclass(frozen=True)
class InputSpec:
    """One input of a job: which kind of id, where, and how to find ids in it."""

    kind: Kind
    path: str  # "-" is standard input
    format: Format = "lines"
    column: str | None = None  # the CSV column or the JSON Lines field

    def __post_init__(self) -> None:
        if self.format in ("csv", "jsonl") and not self.column:
            raise InputError(f"--{self.format} needs the name of the column/field that holds the ids")
        if self.format == "lines" and self.column:
            raise InputError("a column/field name only goes with --csv or --jsonl")

    @property
    def is_stdin(self) -> bool:
        return self.path == "-"

    def describe(self) -> str:
        where = "standard input" if self.is_stdin else self.path
        return where if self.format == "lines" else f"{where} ({self.format} {self.column!r})"


@dataclass(frozen=True)
class InputIdentity:
    """What the journal remembers of an input, to recognise it on resume."""

    path: str
    size: int
    sha256: str
    encoding: str
    ends_with_newline: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def identify(path: str, should_stop: Callable[[], bool] | None = None) -> InputIdentity:
    """Size, hash and encoding of a file, reading it once (no ids kept)."""
    with open_binary(path, should_stop) as raw:
        stream = HashingStream(raw, name=path)
        head = stream.read(1 << 16) or b""  # a sample large enough to guess an encoding from
        encoding, _ = detect_encoding(head[:4], stream)
        while stream.read(1 << 20):
            pass
    return InputIdentity(path, stream.size, stream.sha.hexdigest(), encoding, stream.last == b"\n")


def prefix_sha256(path: str, size: int) -> str:
    """The SHA-256 of the first ``size`` bytes (to recognise a file that only grew)."""
    with open_binary(path) as raw:
        stream = HashingStream(raw, limit=size, name=path)
        while stream.read(1 << 20):
            pass
    return stream.sha.hexdigest()


class InputReader:
    """The entries of one input, as ``(line number, value)`` (a :class:`Rejected` for a refused
    one), read once; its size and hash are known once the iteration has reached the end.

    ``skip_bytes`` starts after an earlier, already loaded part of the file (appended lines),
    whose first line is ``first_line``. The file is opened when iteration starts and closed
    when it ends, however it ends. ``should_stop`` is polled while standard input is silent.
    """

    def __init__(self, spec: InputSpec, *, skip_bytes: int = 0, first_line: int = 1,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.spec, self.skip_bytes, self.first_line = spec, skip_bytes, first_line
        self.should_stop = should_stop
        self.size = self.lines = 0
        self.sha256 = ""
        self.ends_with_newline = False

    def __iter__(self) -> Iterator[tuple[int, object]]:
        raw = open_binary(self.spec.path, self.should_stop)
        try:
            stream = HashingStream(raw, name=self.spec.describe())
            buffered = _CountingReader(stream, buffer_size=1 << 16)
            encoding, bom = detect_encoding(buffered.peek(4)[:4], stream)
            skip = max(bom, self.skip_bytes)
            if skip:
                buffered.read(skip)
            text = io.TextIOWrapper(buffered, encoding=encoding, errors="strict", newline=None)
            try:
                yield from entries(self.spec.format, self.spec.column or "", text,
                                   self.spec.describe(), self.first_line)
            except UnicodeDecodeError as exc:
                raise _not_text(self.spec, exc, encoding,
                                self.first_line + buffered.lines_before(exc)) from None
            self.size, self.sha256 = stream.size, stream.sha.hexdigest()
            self.lines = stream.newlines
            self.ends_with_newline = stream.last == b"\n"
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()


class _CountingReader(io.BufferedReader):
    """A buffered reader that knows how many lines came before the block the text layer
    decodes now: text is decoded a block ahead of the lines read, so the line of a byte that is
    not valid text is found from the block it is in (one ``count`` per 64 KiB block)."""

    _before = 0
    _block = b""

    def read1(self, size: int = -1) -> bytes:
        self._before += self._block.count(b"\n")
        self._block = super().read1(size)
        return self._block

    def lines_before(self, error: UnicodeDecodeError) -> int:
        """The lines before the byte ``error`` names (the text layer's decoder hands it the
        block, after at most a few bytes of an unfinished character, which hold no newline)."""
        return self._before + bytes(error.object).count(b"\n", 0, error.start)


def _not_text(spec: InputSpec, exc: UnicodeDecodeError, encoding: str, line: int) -> InputError:
    hint = (" (UTF-16 without a byte-order mark, or a legacy encoding such as Latin-1 or "
            "Windows-1252?)" if encoding == "utf-8" else "")
    return InputError(f"{spec.describe()}, line {line}: not valid {encoding} ({exc.reason})"
                      f"{hint}; convert the file to UTF-8")
