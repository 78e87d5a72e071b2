"""Reading an erase list: its identity, its encoding, and its ids, in one of three formats.

A job must never send garbage nor silently skip ids, so input is read strictly:

- the encoding is UTF-8, with or without a byte-order mark, or UTF-16/UTF-32 *with* one;
  anything else (bytes that are not UTF-8, a NUL byte anywhere in a file read as UTF-8: the
  mark of UTF-16 or UTF-32 without a byte-order mark) is refused with the line where it went
  wrong, before anything is deleted;
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

import codecs
import csv
import errno
import hashlib
import io
import os
import queue
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

__all__ = [
    "InputSpec", "InputIdentity", "InputError", "InputReader", "JobInterrupted", "Rejected",
    "identify", "prefix_sha256", "reads_once", "unreadable_reason",
]

Format = Literal["lines", "csv", "jsonl"]
Kind = Literal["distinct_ids", "ids"]
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class InputError(ValueError):
    """The input cannot be read as asked; nothing was sent."""


class JobInterrupted(Exception):
    """Stopped while loading the input: nothing was sent."""


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


class _Hashing(io.RawIOBase):
    """A binary stream that hashes and counts what is read through it, and finds wide text.

    NUL bytes in the pattern of UTF-16 or UTF-32 (see :func:`_wide_text_at`) mean a file saved
    without a byte-order mark, wherever they begin (the first bytes may hold none: "䅁" is
    ``41 41`` in UTF-16). The first place is remembered (its line, and a guess at the
    encoding); once :meth:`refuse_nul` is called (the encoding is known to be UTF-8), it and any
    later one raise :class:`InputError`. A stray NUL inside one id is that id's problem: it is
    rejected alone, later. The check is one ``memchr`` per block read.
    """

    def __init__(self, raw: IO[bytes], limit: int | None = None, name: str = "the input") -> None:
        self._raw, self._left, self.name = raw, limit, name
        self.sha = hashlib.sha256()
        self.size = self.newlines = 0
        self.last = b""
        self._refuse_nul = False
        self.nul: tuple[int, str] | None = None  # (line, encoding guess) of the first NUL

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer) if self._left is None else min(len(buffer), self._left)
        data = self._raw.read(want)
        n = len(data)
        buffer[:n] = data
        if n:
            if self.nul is None and b"\x00" in data and (at := _wide_text_at(data)) is not None:
                self.nul = (self.newlines + data.count(b"\n", 0, at) + 1,
                            _guess_wide_encoding(data, start=self.size))
                if self._refuse_nul:
                    self.refuse_nul()
            self.sha.update(data)
            self.size += n
            self.newlines += data.count(b"\n")
            self.last = data[-1:]
            if self._left is not None:
                self._left -= n
        return n

    def refuse_nul(self) -> None:
        """From now on a NUL byte is an error; one seen already raises now."""
        self._refuse_nul = True
        if self.nul is not None:
            line, guess = self.nul
            raise InputError(
                f"{self.name}, line {line}: NUL bytes, which text in UTF-8 never holds; the "
                f"file looks like {guess} saved without a byte-order mark. Save it as UTF-8 "
                f"(for example: iconv -f {guess.replace(' ', '')} -t UTF-8 IN > OUT), or as "
                "UTF-16 with a byte-order mark")


#: Wide text from a NUL on: at least this share of the next bytes are NULs (UTF-16 of ASCII
#: text has one byte in two, UTF-32 three in four; a stray NUL in an id has none around it).
_WIDE_WINDOW, _WIDE_SHARE = 64, 4


def _wide_text_at(data: bytes) -> int | None:
    """The offset of the first NUL in ``data`` that starts wide text, else ``None``."""
    at = data.find(b"\x00")
    while at != -1:
        window = data[at:at + _WIDE_WINDOW]
        if window.count(0) >= max(2, len(window) // _WIDE_SHARE):
            return at
        at = data.find(b"\x00", at + _WIDE_WINDOW)
    return None


def _guess_wide_encoding(sample: bytes, *, start: int = 0) -> str:
    """UTF-16 LE/BE or UTF-32 LE/BE, from where the NULs of ``sample`` (which starts at byte
    ``start`` of the file) fall (for the hint)."""
    # Text that is mostly ASCII: UTF-32 has three NULs in four bytes, UTF-16 one in two.
    sample = b"\x01" * (start % 4) + sample  # aligned as in the file
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if sample[0::4].count(0) + sample[1::4].count(0) + sample[2::4].count(0) > len(sample) * 0.6:
        return "UTF-32 BE"
    if sample[1::4].count(0) + sample[2::4].count(0) + sample[3::4].count(0) > len(sample) * 0.6:
        return "UTF-32 LE"
    return "UTF-16 LE" if odd >= even else "UTF-16 BE"


class _Pump(io.RawIOBase):
    """An input read by a daemon thread (standard input, a named pipe): a read that blocks, or
    a named pipe that waits for a writer before it even opens, cannot hide a stop request.

    ``path`` ``None`` is standard input; otherwise the thread opens ``path`` itself.
    """

    def __init__(self, path: str | None, should_stop: Callable[[], bool]) -> None:
        self._chunks: queue.Queue[bytes | OSError] = queue.Queue(maxsize=16)
        self._should_stop = should_stop
        self._path = path
        self._pending = b""
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name="posthog-async-input", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """A named pipe whose writer never came: open it for writing, once, so that the
        thread's own open returns (and then reads an end of file), instead of staying blocked
        for the life of the process."""
        if self._path is not None and self._thread.is_alive() and not self.closed:
            try:
                os.close(os.open(self._path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader waiting (it opened already), or not a pipe
                pass
        super().close()

    def _pump(self) -> None:
        # File descriptors, not sys.stdin.buffer: a daemon thread blocked inside the buffer
        # holds its lock, and the interpreter aborts when it cannot take it at exit.
        fd: int | None = None
        try:
            if self._path is not None:
                fd = os.open(self._path, os.O_RDONLY)  # a named pipe blocks here for a writer
                source = fd
            else:
                source = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError) as exc:
            if self._path is not None:
                self._chunks.put(exc if isinstance(exc, OSError) else OSError(str(exc)))
                return
            buffer = sys.stdin.buffer
            read = getattr(buffer, "read1", buffer.read)
        else:
            def read(size: int) -> bytes:
                return os.read(source, size)
        try:
            while True:
                data = read(1 << 16)
                self._chunks.put(data)
                if not data:
                    return
        except OSError as exc:
            self._chunks.put(exc)
        finally:
            if fd is not None:
                os.close(fd)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._eof:
                return 0
            try:
                data = self._chunks.get(timeout=0.1)
            except queue.Empty:
                if self._should_stop():
                    where = "standard input" if self._path is None else self._path
                    raise JobInterrupted(f"stopped while reading {where}: nothing was sent"
                                         ) from None
                continue
            if isinstance(data, OSError):
                raise InputError(f"cannot read {self._path or 'standard input'}: "
                                 f"{data.strerror or data}")
            if not data:
                self._eof = True
                return 0
            self._pending = data
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def reads_once(path: str) -> bool:
    """True for standard input and for inputs that are not regular files (named pipes,
    ``<(command)``, devices): what they hold cannot be read a second time."""
    if path == "-":
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _open_binary(path: str, should_stop: Callable[[], bool] | None = None) -> IO[bytes]:
    if path == "-":
        if should_stop is not None:
            return _Pump(None, should_stop)  # type: ignore[return-value]
        return sys.stdin.buffer
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{path} is a directory, not an input file")
    if should_stop is not None and reads_once(path):
        return _Pump(path, should_stop)  # type: ignore[return-value]
    try:
        return target.open("rb")
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {unreadable_reason(path, exc)}") from None


def unreadable_reason(path: str, exc: OSError) -> str:
    """Why ``path`` cannot be read, naming the real cause (a symlink loop is not "not found")."""
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links (the link points, through others, back to itself)"
    if isinstance(exc, FileNotFoundError) and os.path.islink(path):
        return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return str(exc.strerror or exc)


def _encoding(head: bytes, stream: _Hashing) -> tuple[str, int]:
    """The encoding that ``head`` (the first bytes) says, and the length of its byte-order
    mark. Without a mark it is UTF-8, and from then on ``stream`` refuses NUL bytes."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    stream.refuse_nul()
    return "utf-8", 0


def identify(path: str, should_stop: Callable[[], bool] | None = None) -> InputIdentity:
    """Size, hash and encoding of a file, reading it once (no ids kept)."""
    with _open_binary(path, should_stop) as raw:
        stream = _Hashing(raw, name=path)
        head = stream.read(1 << 16) or b""  # a sample large enough to guess an encoding from
        encoding, _ = _encoding(head[:4], stream)
        while stream.read(1 << 20):
            pass
    return InputIdentity(path, stream.size, stream.sha.hexdigest(), encoding, stream.last == b"\n")


def prefix_sha256(path: str, size: int) -> str:
    """The SHA-256 of the first ``size`` bytes (to recognise a file that only grew)."""
    with _open_binary(path) as raw:
        stream = _Hashing(raw, limit=size, name=path)
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
        raw = _open_binary(self.spec.path, self.should_stop)
        try:
            stream = _Hashing(raw, name=self.spec.describe())
            buffered = io.BufferedReader(stream, buffer_size=1 << 16)
            encoding, bom = _encoding(buffered.peek(4)[:4], stream)
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
