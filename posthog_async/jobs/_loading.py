"""Loading a deletion job's input into its journal, or checking it against the journal on resume.

A first run reads every input once, in one journal transaction. A resumed run must be given the
same inputs: each is recognised by its size and SHA-256, and a plain-text or JSON Lines file that
only grew (lines appended after a newline) loads just its new lines, numbered where they are in
the file. An input read from standard input cannot be read again, so such a job resumes from
its journal alone, and only such a job does.

A journal that cannot be written while loading (a full disk, ``ulimit -f``) is reported by its
real cause, :class:`JournalWriteError`, not by the error SQLite raises while cleaning up after it
("cannot rollback - no transaction is active").
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from urllib.parse import urlsplit
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._validation import InvalidIdError, clean_id
from ._input import InputReader, InputSpec, identify, prefix_sha256
from ._input_formats import Rejected, shown
from ._input_bytes import InputError, JobInterrupted, reads_once
from ._journal import Journal
from ._lock import JournalWriteError, utc_now

__all__ = ["IterableInput", "prepare", "check_unchanged", "check_host"]

Notice = Callable[[str], object]
#: Inputs that cannot be read twice: a resumed job relies on its journal for them.
_UNREPEATABLE = ("-", "<iterable>")


@dataclass(frozen=True)
class IterableInput:
    """An input given as an iterable of ids instead of a file."""

    kind: Literal["distinct_ids", "ids"]
    values: Iterable[str]


def _hashed(values: Iterable[str]) -> tuple[Iterator[tuple[int, object]], Any]:
    sha = hashlib.sha256()

    def entries() -> Iterator[tuple[int, object]]:
        for line, value in enumerate(values, start=1):
            sha.update(f"{value}\n".encode("utf-8", "surrogatepass"))
            yield line, value

    return entries(), sha


def prepare(journal: Journal, sources: list[InputSpec | IterableInput], options: dict[str, Any],
            *, chunk_size: int, notice: Notice, stop: threading.Event,
            projects: Sequence[int]) -> None:
    """First run: load every input (once per project in ``projects``). Resume: same options,
    and the same (or grown) input, whose new lines go to every project.

    Raises :class:`JournalWriteError` when the journal cannot be written (nothing was sent)."""
    try:
        _prepare(journal, sources, options, chunk_size=chunk_size, notice=notice, stop=stop,
                 projects=projects)
    except sqlite3.Error as exc:
        raise JournalWriteError(_write_failure(journal, exc)) from exc


def _write_failure(journal: Journal, exc: BaseException) -> str:
    """Why the journal could not be written, in words: the first error of the chain (the one
    SQLite raised while rolling back only hides it)."""
    first: BaseException = exc
    seen = exc.__context__
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            first = seen
        seen = seen.__context__
    text = str(first)
    folder = journal.path.resolve().parent
    advice = "make room (or give --journal a folder with room)"
    if "full" in text:  # SQLITE_FULL: "database or disk is full"
        try:
            free = f"{shutil.disk_usage(folder).free:,} bytes free"
        except OSError:  # pragma: no cover - the folder vanished
            free = "no space"
        cause = f"disk full ({free} in {folder})"
    elif "I/O" in text and (limit := _file_size_limit()) is not None:  # EFBIG: SQLITE_IOERR
        cause = (f"{text}: this process may write files of at most {limit:,} bytes (the file "
                 "size limit, ulimit -f)")
        advice = "raise the limit"
    else:
        cause = text
    return (f"the journal could not be written: {cause}. Nothing was sent; {advice} and run "
            f"the job again (journal: {journal.path})")


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _prepare(journal: Journal, sources: list[InputSpec | IterableInput], options: dict[str, Any],
             *, chunk_size: int, notice: Notice, stop: threading.Event,
             projects: Sequence[int]) -> None:
    where = journal.path
    if not journal.loaded:
        if not sources:
            raise InputError(f"journal {where} holds no loaded job: give the input")
        journal.set_meta("options", options)
        journal.set_meta("created_at", utc_now())
        _load(journal, [(src, 0) for src in sources], [], chunk_size, notice, stop, projects)
        return
    recorded = journal.get_meta("options")
    if recorded != options:
        raise InputError(f"journal {where} was started with other options: "
                         f"{_differences(recorded or {}, options)}. Resume with the journal's "
                         "options, or start a new job with another --journal")
    known: list[dict[str, Any]] = journal.get_meta("inputs") or []
    if not sources:
        files = [k["path"] for k in known if k["path"] not in _UNREPEATABLE]
        if files:
            raise InputError(f"journal {where} was started with {', '.join(files)}: give the "
                             "same input to resume, so it is checked to be the one loaded")
        notice("resuming from the journal alone: its input was read from standard input")
        return
    if len(known) != len(sources) or any(k["kind"] != s.kind for k, s in zip(known, sources)):
        raise InputError(f"journal {where} was started with other inputs "
                         f"({', '.join(k['path'] for k in known)}); resume with the same ones")
    tails = [(src, _compare(src, old, notice, stop)) for src, old in zip(sources, known)]
    if any(skip is not None for _, skip in tails):
        _load(journal, tails, known, chunk_size, notice, stop, projects)


def _differences(recorded: dict[str, Any], options: dict[str, Any]) -> str:
    """What differs between the journal's options and this run's, in the command line's words
    (the library's parameter in brackets): "--delete-events: the journal's run had it, this one
    does not"."""
    said = []
    for name in dict.fromkeys([*recorded, *options]):
        then, now = recorded.get(name), options.get(name)
        if then == now:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "resolve":  # on by default: its flag is the one that turns it off
            flag, then, now = "--no-resolve", not then, not now
        if isinstance(then, bool) or isinstance(now, bool):
            said.append(f"{flag} ({name}): " + ("the journal's run had it, this one does not"
                                                 if then else "this run has it, the journal's "
                                                 "did not"))
        else:
            said.append(f"{flag} ({name}): {then} in the journal, {now} in this run")
    return "; ".join(said)


def check_host(journal: Journal, host: str, *, loaded: bool) -> None:
    """Record the PostHog host (the API's base URL) a job runs against; refuse a resume or a
    verification against another one. Its persons are another host's: "not found" there would
    be a false proof, and the deletions would be sent where nobody asked. A journal of an older
    version, which recorded no host, takes this run's. The host is no secret (credentials in
    it are refused before any run), and userinfo is dropped all the same."""
    parts = urlsplit(host.rstrip("/"))
    this = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}{parts.path}"
    recorded = journal.get_meta("host") if loaded else None
    if recorded is None:
        journal.set_meta("host", this)
    elif recorded != this:
        raise InputError(f"journal {journal.path} was started against {recorded}, not {this}: "
                         f"its persons are there. Resume with --host {recorded} (or set "
                         "POSTHOG_HOST), or start a new job with --journal NEW")


def check_unchanged(journal: Journal, sources: list[InputSpec | IterableInput],
                    stop: threading.Event) -> None:
    """For a verification: the inputs given are the ones the journal loaded, with nothing
    appended (new lines would be ids the job never deleted). Loads nothing."""
    known: list[dict[str, Any]] = journal.get_meta("inputs") or []
    if len(known) != len(sources) or any(k["kind"] != s.kind for k, s in zip(known, sources)):
        raise InputError(f"journal {journal.path} was started with other inputs "
                         f"({', '.join(k['path'] for k in known)}); give the same ones")
    for src, old in zip(sources, known):
        if _compare(src, old, lambda _: None, stop) is not None:
            raise InputError(f"{getattr(src, 'path', '<iterable>')} has lines the job has not "
                             "loaded yet: resume the deletion job first (--resume), then verify")


def _compare(src: InputSpec | IterableInput, old: dict[str, Any], notice: Notice,
             stop: threading.Event) -> int | None:
    """``None`` when ``src`` is what the journal loaded, else the byte offset of new lines."""
    if isinstance(src, IterableInput):
        entries, sha = _hashed(src.values)
        for _ in entries:
            pass
        if sha.hexdigest() != old["sha256"]:
            raise InputError("the ids given differ from those the journal was started with")
        return None
    if src.is_stdin:
        raise InputError("a job read from standard input resumes from its journal alone: "
                         "run --resume --journal PATH without the '-' input")
    now = identify(src.path, stop.is_set)
    if (now.size, now.sha256) == (old["size"], old["sha256"]):
        if src.path != old["path"]:
            notice(f"{src.path} has the same content as {old['path']}, which the journal was "
                   "started with")
        return None
    once = reads_once(src.path)  # a pipe: read once already, by identify
    grew = (now.size > old["size"] and old["ends_with_newline"] and src.format != "csv"
            and not once and prefix_sha256(src.path, old["size"]) == old["sha256"])
    if not grew:
        if once:
            raise InputError(f"{src.path} is not a regular file and held other content than "
                             "the input this journal was started with; resume with the same "
                             "content, or give the grown input as a regular file")
        raise InputError(
            f"{src.path} is not the input this journal was started with (size "
            f"{old['size']:,} -> {now.size:,} bytes, content differs); resume with the "
            "original file, or start a new job with --journal NEW")
    return int(old["size"])


def _load(journal: Journal, todo: list[tuple[InputSpec | IterableInput, int | None]],
          known: list[dict[str, Any]], chunk_size: int, notice: Notice,
          stop: threading.Event, projects: Sequence[int]) -> None:
    """Load every input whose offset is not ``None`` (0: all of it; else the new tail)."""
    readers: list[Any] = []
    sources = []
    for index, (src, skip) in enumerate(todo):
        if skip is None:
            readers.append(None)
            continue
        if isinstance(src, IterableInput):
            entries, hasher = _hashed(src.values)
        else:
            first = known[index]["lines"] + 1 if skip else 1
            hasher = InputReader(src, skip_bytes=skip, first_line=first, should_stop=stop.is_set)
            entries = iter(hasher)
        readers.append(hasher)
        sources.append((src.kind, _until_stopped(entries, stop, uuids=src.kind == "ids",
                                                 empty=_empty_input(src) if not skip else None)))
    before = (journal.get_meta("load_stats") or {}).get("requested", 0)

    def describe() -> dict[str, Any]:
        inputs = []
        for index, ((src, _), hasher) in enumerate(zip(todo, readers)):
            if hasher is None:
                inputs.append(known[index])
            elif isinstance(src, IterableInput):
                inputs.append({"kind": src.kind, "path": "<iterable>", "format": "values",
                               "sha256": hasher.hexdigest()})
            else:
                inputs.append({"kind": src.kind, "path": src.path, "format": src.format,
                               "column": src.column, "size": hasher.size,
                               "sha256": hasher.sha256, "lines": hasher.lines,
                               "ends_with_newline": hasher.ends_with_newline})
        return {"inputs": inputs}

    stats = journal.load(sources, chunk_size, on_loaded=describe, projects=projects)
    if before:
        notice(f"loaded {stats.requested - before:,} lines appended to the input since the "
               "last run")


def _until_stopped(entries: Iterator[tuple[int, object]], stop: threading.Event, *,
                   uuids: bool, empty: Callable[[int], str] | None
                   ) -> Iterator[tuple[int, object]]:
    """``entries`` until a stop is requested. On the way: a value holding control characters
    that make it no id is rejected here, shown with escapes (the report is text: a NUL or an
    escape sequence written raw would corrupt it or a terminal showing it); and, with
    ``empty`` (an input read whole), an input without a single value (only blank lines, or a
    CSV column empty in every row) is refused with ``empty(lines)``: it is not the list meant."""
    found = False
    count = -1
    try:
        for count, (line, value) in enumerate(entries):
            if count % 1000 == 0 and stop.is_set():
                raise JobInterrupted("stopped while loading the input: nothing was sent")
            if isinstance(value, str) and not value.isprintable():
                value = _escaped(value, uuids=uuids)
            if not found and (not isinstance(value, str) or value.strip()):
                found = True
            yield line, value
        if empty is not None and not found:
            raise InputError(empty(count + 1))
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()  # the input file now, not whenever the garbage collector gets to it


def _escaped(value: str, *, uuids: bool) -> object:
    """``value``, or, if it is no id, its rejection with the value shown with escapes."""
    try:
        clean_id(value, uuid=uuids)
    except InvalidIdError as exc:
        return Rejected(shown(value), f"{exc} (shown here with \\x escapes)")
    return value


def _empty_input(src: InputSpec | IterableInput) -> Callable[[int], str] | None:
    """The refusal of ``src`` when it holds no value at all (``None``: ids given as an
    iterable, which the job as a whole checks)."""
    if isinstance(src, IterableInput):
        return None

    def refusal(entries: int) -> str:
        where = src.describe()
        if src.format == "csv":
            what = (f"its column {src.column!r} is empty in every row ({entries:,} rows)"
                    if entries else "it has no rows")
        elif entries:
            what = f"it holds only blank lines ({entries:,})"
        else:
            what = "it is empty"
        return (f"{where} holds no ids: {what}. Is it the right file? Nothing was sent; give "
                "each input with ids in it")

    return refusal
