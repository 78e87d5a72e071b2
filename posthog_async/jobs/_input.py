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

import csv
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import msgspec

from ._input_bytes import HashingStream, InputError, detect_encoding, open_binary

# InputError is defined in _input_bytes; named here too because _journal imports it from here.
__all__ = ["InputSpec", "InputIdentity", "InputError", "InputReader", "Rejected", "identify",
           "prefix_sha256"]

Format = Literal["lines", "csv", "jsonl"]
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


@dataclass(frozen=True)
class Rejected:
    """A value the reader itself refused (bad JSON, a missing column...)."""

    value: str
    reason: str


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
            buffered = io.BufferedReader(stream, buffer_size=1 << 16)
            encoding, bom = detect_encoding(buffered.peek(4)[:4], stream)
            skip = max(bom, self.skip_bytes)
            if skip:
                buffered.read(skip)
            text = io.TextIOWrapper(buffered, encoding=encoding, errors="strict", newline=None)
            yield from _entries(self.spec, text, self.first_line)
            self.size, self.sha256 = stream.size, stream.sha.hexdigest()
            self.lines = stream.newlines
            self.ends_with_newline = stream.last == b"\n"
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()


def _entries(spec: InputSpec, text: io.TextIOWrapper,
             first_line: int = 1) -> Iterator[tuple[int, object]]:
    line = first_line - 1
    try:
        if spec.format == "csv":
            yield from _csv_entries(spec, text)
            return
        for line, content in enumerate(text, start=first_line):
            value = content.rstrip("\n")
            if spec.format == "jsonl":
                yield line, _json_value(value, spec.column or "")
            elif "," in value and value.strip():
                yield line, Rejected(value, "contains a comma: for a CSV export use --csv --column NAME")
            else:
                yield line, value
    except UnicodeDecodeError as exc:
        hint = (" (UTF-16 without a byte-order mark, or a legacy encoding such as Latin-1 or "
                "Windows-1252?)" if text.encoding == "utf-8" else "")
        raise InputError(f"{spec.describe()}, after line {line}: not valid {text.encoding} "
                         f"({exc.reason}){hint}; convert the file to UTF-8") from None


def _json_value(content: str, field: str) -> object:
    if not content.strip():
        return ""
    try:
        row = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return Rejected(content, "not valid JSON")
    if not isinstance(row, dict):
        return Rejected(content, "not a JSON object")
    if field not in row:
        return Rejected(content, f"has no {field!r} field")
    value = row[field]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric distinct ids are common in exports
    if not isinstance(value, str):
        return Rejected(content, f"field {field!r} is not a string")
    return value


def _csv_rows(spec: InputSpec, text: io.TextIOWrapper) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)``; a row that is not valid CSV stops the load with its line.

    Strict CSV: a quote never closed would make the rest of the file one cell, and text after
    a closing quote (``"a"b``) would be glued to the cell (``ab``), an id nobody asked for."""
    reader = csv.reader(text, strict=True)
    started = 1  # the line the row being read starts on
    try:
        for row in reader:
            yield reader.line_num, row
            started = reader.line_num + 1
    except csv.Error as exc:
        where = spec.describe()
        if "end of data" in str(exc):
            raise InputError(f"{where}, line {started}: a quote opens a cell that is never "
                             "closed (the rest of the file would be that one cell); close the "
                             "quote") from None
        if "expected after" in str(exc):
            raise InputError(f"{where}, line {reader.line_num}: text after the closing quote of "
                             'a cell (like "a"b); quote the whole cell') from None
        raise InputError(f"{where}, line {reader.line_num}: not valid CSV ({exc})") from None


def _csv_entries(spec: InputSpec, text: io.TextIOWrapper) -> Iterator[tuple[int, object]]:
    rows = _csv_rows(spec, text)
    header = next(rows, None)
    if header is None:
        return
    names = [name.strip() for name in header[1]]
    if spec.column not in names:
        raise InputError(f"{spec.describe()}: no column {spec.column!r}; the header has "
                         f"{', '.join(repr(n) for n in names[:20])}")
    if names.count(spec.column) > 1:
        raise InputError(f"{spec.describe()}: the header names column {spec.column!r} "
                         f"{names.count(spec.column)} times; which one holds the ids is unclear")
    index = names.index(spec.column)
    for line, row in rows:
        if not row or not any(cell.strip() for cell in row):
            yield line, ""
        elif index >= len(row):
            yield line, Rejected(",".join(row), f"row has no {spec.column!r} column")
        else:
            yield line, row[index]
