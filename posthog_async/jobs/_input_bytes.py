"""The bytes of an erase list: opening it, hashing it, and telling its encoding.

Below :mod:`._input` (which turns these bytes into ids): a file, a named pipe or standard input
becomes a binary stream that is hashed and counted as it is read (the identity a resumed job
checks), and whose encoding is told from its byte-order mark, or refused when its bytes show
UTF-16 or UTF-32 without one. Standard input and named pipes are read by a helper thread, so a
stop request is noticed while no byte arrives, or while a pipe waits for its writer.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import os
import queue
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["InputError", "JobInterrupted", "HashingStream", "detect_encoding", "open_binary",
           "reads_once", "unreadable_reason"]

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class InputError(ValueError):
    """The input cannot be read as asked; nothing was sent."""


class JobInterrupted(Exception):
    """Stopped while loading the input: nothing was sent."""


class HashingStream(io.RawIOBase):
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


def open_binary(path: str, should_stop: Callable[[], bool] | None = None) -> IO[bytes]:
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


def detect_encoding(head: bytes, stream: HashingStream) -> tuple[str, int]:
    """The encoding that ``head`` (the first bytes) says, and the length of its byte-order
    mark. Without a mark it is UTF-8, and from then on ``stream`` refuses NUL bytes."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    stream.refuse_nul()
    return "utf-8", 0
