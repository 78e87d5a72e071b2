"""The three formats of an erase list, read strictly from decoded text: one id a line, a
column of a CSV export, a field of JSON Lines.

Between :mod:`._input_bytes` (bytes, encodings) and :mod:`._input` (an input's identity, the
reader). Each entry is ``(line number, value)``, or ``(line number, Rejected)`` for a value that
cannot be an id, named with the line where its record starts. A CSV row with more or fewer
cells than the header refuses the file: which cell holds the id is unknown. What one line may
cost is bounded: a line longer than any record holding an id could be (:data:`MAX_LINE`) is
rejected while it is read (its text is never held whole), or, in a CSV file, whose quoting it
may throw off, refuses the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ._input_bytes import InputError

__all__ = ["Rejected", "MAX_LINE", "entries", "shown"]

Format = Literal["lines", "csv", "jsonl"]

#: The longest line read, in characters, by format. An id is at most 400 characters; a JSON
#: Lines or CSV record also holds other fields (a person's properties, which PostHog keeps
#: under 1 MB), so a line far beyond these is not an erase list's record.
MAX_LINE: dict[str, int] = {"lines": 1 << 16, "jsonl": 1 << 22, "csv": 1 << 22}
#: How much of a rejected value the journal and the report keep.
_SHOWN = 200
#: A JSON number written as a whole number, as an id is: ``12``, ``-7`` (not ``-0``, ``1.0``,
#: ``1e3``: written so, the number names no one text).
_WHOLE_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Rejected:
    """A value the reader itself refused (bad JSON, a missing column...)."""

    value: str
    reason: str


def shown(value: str) -> str:
    """``value`` as a report shows it: unchanged, unless it holds control or invisible
    characters (a NUL, a bell, a line break...), which are written as ``\\xNN``, ``\\uNNNN``
    escapes (backslashes doubled), so a CSV report stays text a reader can trust."""
    if value.isprintable():
        return value
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _rest_of_line(readline: Callable[[int], str], head: str, limit: int) -> Rejected:
    """Read the rest of a line longer than ``limit`` (already read: ``head``, ``limit``
    characters), keeping none of it; its rejection."""
    length, content = len(head), head
    while content and not content.endswith("\n"):
        content = readline(limit)
        length += len(content)
    return Rejected(head[:_SHOWN], f"a line of {length:,} characters: longer than the "
                    f"{limit:,} this format reads, and an id is at most 400 characters (not an "
                    "erase list's line?)")


def entries(fmt: Format, column: str, text: io.TextIOWrapper, where: str,
            first_line: int = 1) -> Iterator[tuple[int, object]]:
    """The entries of ``text`` (see the module docstring); ``where`` names the input in
    errors; ``first_line`` is the number of its first line."""
    if fmt == "csv":
        yield from _csv_entries(column, text, where)
        return
    limit, jsonl = MAX_LINE[fmt], fmt == "jsonl"
    quoted = msgspec.json.encode(column).decode()  # the field's name as a JSON key
    # Another spelling of the key (escaped) can hide in any escape that could write one of
    # its characters: for a plain name only \uXXXX can.
    escape = "\\" if any(c in column for c in '"\\/') or not column.isprintable() else "\\u"
    readline = text.readline  # a line at a time, at most ``limit`` characters of it
    line = first_line - 1
    while content := readline(limit):
        line += 1
        if len(content) == limit and not content.endswith("\n"):
            yield line, _rest_of_line(readline, content, limit)
        elif jsonl:
            yield line, _json_value(content.rstrip("\n"), column, quoted, escape)
        elif "," in content and content.strip():
            yield line, Rejected(content.rstrip("\n"),
                                 "contains a comma: for a CSV export use --csv --column NAME")
        else:
            yield line, content.rstrip("\n")


# -- JSON Lines -----------------------------------------------------------------------------

def _json_value(content: str, field: str, quoted: str, escape: str) -> object:
    """The id in the ``field`` of one JSON Lines record: a string, or a whole number written
    as one (its digits are the id). Anything else is rejected with why: a field given twice
    (which one is the id?), a number not written as a whole number, ``true``, ``null``..."""
    try:
        row = msgspec.json.decode(content)
    except msgspec.DecodeError:
        if not content.strip():
            return ""
        row = None  # not JSON, or JSON msgspec does not take: the strict reading says which
    if type(row) is dict and type(value := row.get(field)) is str \
            and content.count(quoted) == 1:
        # The field's name appears once, and no key is written with escapes: no other key is
        # the field. Without a backslash the string holds no line break either.
        if "\\" not in content:
            return value
        if escape not in content:
            return _one_line(content, field, value)
    return _strictly(content, field)


def _strictly(content: str, field: str) -> object:
    """The slow, exact reading of a record the fast one could not settle: every key of the
    object kept in order (a repeated field is seen), numbers as written."""
    try:
        pairs = json.loads(content, object_pairs_hook=_Pairs, parse_int=_Number,
                           parse_float=_Number, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return Rejected(content, "not valid JSON")
    if not isinstance(pairs, _Pairs):
        return Rejected(content, "not a JSON object")
    values = [value for key, value in pairs if key == field]
    if not values:
        return Rejected(content, f"has no {field!r} field")
    if len(values) > 1:
        return Rejected(content, f"has the field {field!r} {len(values)} times: which one "
                        "holds the id is unclear")
    value = values[0]
    if isinstance(value, _Number):
        if _WHOLE_NUMBER.fullmatch(value) and value != "-0":
            return str(value)  # numeric distinct ids are common in exports: the digits
        return Rejected(content, f"field {field!r} is the number {value}: a number is taken "
                        "as an id only written as a plain whole number (like 12); write the id "
                        "as a JSON string")
    if isinstance(value, str):
        return _one_line(content, field, value)
    kind = ("true/false" if isinstance(value, bool) else "null" if value is None else
            "an object" if isinstance(value, _Pairs) else "a list")
    return Rejected(content, f"field {field!r} is {kind}, not a string")


def _one_line(content: str, field: str, value: str) -> object:
    if "\n" in value or "\r" in value:
        return Rejected(content, f"field {field!r} holds a line break (\\n in the JSON string): "
                        "it may hold more than one id; give one id a record")
    return value


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object's ``(key, value)`` pairs, in order, repeats kept."""


class _Number(str):
    """A JSON number as written (``-0``, ``1.0``, ``1e3`` stay what they are)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- CSV ------------------------------------------------------------------------------------

def _csv_rows(text: io.TextIOWrapper, where: str) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, cells)`` of each record; a record that is not valid CSV, or a
    line too long to be one, stops the load with its line.

    Strict CSV: a quote never closed would make the rest of the file one cell, and text after
    a closing quote (``"a"b``) would be glued to the cell (``ab``), an id nobody asked for."""
    limit = MAX_LINE["csv"]
    readline = text.readline

    def bounded() -> Iterator[str]:
        lines = 0
        while content := readline(limit):
            lines += 1
            if len(content) == limit and not content.endswith("\n"):
                raise InputError(f"{where}, line {lines}: "
                                 + _rest_of_line(readline, content, limit).reason)
            yield content

    reader = csv.reader(bounded(), strict=True)
    started = 1  # the line the record being read starts on
    try:
        for row in reader:
            yield started, reader.line_num, row
            started = reader.line_num + 1
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise InputError(f"{where}, line {started}: a quote opens a cell that is never "
                             "closed (the rest of the file would be that one cell); close the "
                             "quote") from None
        if "expected after" in str(exc):
            raise InputError(f"{where}, line {reader.line_num}: text after the closing quote of "
                             'a cell (like "a"b); quote the whole cell') from None
        raise InputError(f"{where}, line {reader.line_num}: not valid CSV ({exc})") from None


def _csv_entries(column: str, text: io.TextIOWrapper, where: str) -> Iterator[tuple[int, object]]:
    rows = _csv_rows(text, where)
    header = next(rows, None)
    if header is None:
        return
    names = [name.strip() for name in header[2]]
    if column not in names:
        raise InputError(f"{where}: no column {column!r}; the header has "
                         f"{', '.join(repr(n) for n in names[:20])}")
    if names.count(column) > 1:
        raise InputError(f"{where}: the header names column {column!r} "
                         f"{names.count(column)} times; which one holds the ids is unclear")
    index = names.index(column)
    for first, last, row in rows:
        if len(row) == len(names) and "\n" not in (value := row[index]) and "\r" not in value:
            yield first, value
        elif not any(cell.strip() for cell in row):
            yield first, ""
        elif len(row) != len(names):
            # Which cell holds the id is unknown: an unquoted comma shifted the cells after it
            # (Smith, John -> two cells), or one is missing. Refusing the file loses nothing.
            spans = f"-{last}" if last > first else ""
            raise InputError(
                f"{where}, line {first}{spans}: the row has {len(row)} cells and the header "
                f"{len(names)}, so which cell is {column!r} is unclear (an unquoted comma in a "
                "cell, or a missing cell, shifts the columns). Quote cells holding commas; "
                "nothing was sent")
        else:
            yield first, Rejected(value, f"the quoted cell spans lines {first}-{last}: it "
                                  "holds a line break, so it may hold more than one id")
