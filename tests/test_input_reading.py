"""Reading an erase list strictly (issue 17, items 16 and 21): UTF-16 without a byte-order mark
is refused even when its first bytes hold no NUL, wherever its first NUL falls; a CSV file with a
quote never closed, or text after a closing quote, is refused with the line and the real cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from posthog_async.jobs import InputError, InputReader, InputSpec, Rejected
from posthog_async.jobs._input import identify


def read(path: Path, fmt: str = "lines", column: str | None = None) -> list[object]:
    return [value for _, value in InputReader(InputSpec("distinct_ids", str(path), fmt, column))]  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding,guess", [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"),
                                            ("utf-32-le", "UTF-32 LE"), ("utf-32-be", "UTF-32 BE")])
def test_wide_text_without_a_mark_is_refused_with_its_line(tmp_path: Path, encoding: str,
                                                           guess: str) -> None:
    source = tmp_path / "erase.txt"
    # "䅁䅁" is 41 41 41 41 in UTF-16: no NUL in the bytes the old check looked at
    source.write_bytes("\u4141\u4141\nuser-1\nuser-2\n".encode(encoding))
    with pytest.raises(InputError, match=guess) as info:
        read(source)
    assert "line " in str(info.value) and "byte-order mark" in str(info.value)
    with pytest.raises(InputError, match=guess):
        identify(str(source))


def test_a_nul_far_into_a_utf8_file_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "erase.txt"
    lines = [f"user-{i}" for i in range(20_000)]  # ~200 KB: past the first blocks read
    source.write_bytes(("\n".join(lines) + "\n").encode() + "user-x\n".encode("utf-16-le"))
    with pytest.raises(InputError, match="line 20001"):
        read(source)


def test_text_with_a_mark_may_hold_nuls(tmp_path: Path) -> None:
    source = tmp_path / "erase.txt"
    source.write_bytes("user-1\nuser-2\n".encode("utf-16"))  # with its byte-order mark
    assert read(source) == ["user-1", "user-2"]


def test_bytes_that_are_not_utf8_say_which_encodings_to_suspect(tmp_path: Path) -> None:
    source = tmp_path / "erase.txt"
    source.write_bytes("中文\n".encode("utf-16-le")[:4] + b"\n")  # 2D 4E 87 65: no NUL, not UTF-8
    with pytest.raises(InputError, match="UTF-16 without a byte-order mark"):
        read(source)


@pytest.mark.parametrize("text,line,cause", [
    ('id\nuser-1\n"user-2\nuser-3\n', 3, "never closed"),
    ('id\nuser-1\n"user-2"x\nuser-3\n', 3, "after the closing quote"),
    ('id,name\nuser-1,"a\nb"\n"user-2\n', 4, "never closed"),
])
def test_csv_errors_name_the_real_cause(tmp_path: Path, text: str, line: int, cause: str) -> None:
    source = tmp_path / "erase.csv"
    source.write_text(text)
    with pytest.raises(InputError, match=cause) as info:
        read(source, "csv", "id")
    assert f"line {line}:" in str(info.value) and "control" not in str(info.value)


def test_a_quoted_cell_spanning_lines_is_rejected_alone_naming_its_lines(tmp_path: Path) -> None:
    """Read as one value and rejected alone, named by the line its record starts on (it was
    named by the line it ends on, with a reason that spoke of CSV for JSON Lines too)."""
    source = tmp_path / "erase.csv"
    source.write_text('id\n"user-1\nuser-2"\nuser-3\n')
    found = list(InputReader(InputSpec("distinct_ids", str(source), "csv", "id")))
    assert found[1] == (4, "user-3")
    line, rejected = found[0]
    assert line == 2 and isinstance(rejected, Rejected) and rejected.value == "user-1\nuser-2"
    assert "spans lines 2-3" in rejected.reason
    jsonl = tmp_path / "erase.jsonl"
    jsonl.write_text('{"id": "user-1\\nuser-2"}\n')
    [(_, rejected)] = list(InputReader(InputSpec("distinct_ids", str(jsonl), "jsonl", "id")))
    assert isinstance(rejected, Rejected) and "CSV" not in rejected.reason
    assert "line break" in rejected.reason and "JSON string" in rejected.reason


def test_a_stray_nul_in_one_id_is_left_for_that_id_alone(tmp_path: Path) -> None:
    source = tmp_path / "erase.txt"
    source.write_bytes(b"user-1\na\x00b\nuser-2\n")
    assert read(source) == ["user-1", "a\x00b", "user-2"]  # the cleaner rejects "a\x00b" alone


def test_a_stopped_read_of_a_named_pipe_leaves_no_thread_behind(tmp_path: Path) -> None:
    """Library use (a long-lived process): the helper thread blocked opening a pipe that no
    writer opened is released when the read is abandoned."""
    import os
    import threading
    import time

    from posthog_async.jobs import JobInterrupted

    fifo = tmp_path / "erase.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    reader = InputReader(InputSpec("distinct_ids", str(fifo)),
                         should_stop=lambda: time.monotonic() - started > 0.3)
    with pytest.raises(JobInterrupted, match=r"erase\.fifo"):
        list(reader)
    deadline = time.monotonic() + 5
    while any(t.name == "posthog-async-input" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the thread opening the pipe is still blocked"
        time.sleep(0.01)


# -- probe 17, D and F: values read wrongly, lines named wrongly ------------------------------

def test_a_json_lines_record_naming_its_field_twice_is_rejected(tmp_path: Path) -> None:
    """The last of two ``id`` fields was taken silently; also when one is spelled with escapes."""
    source = tmp_path / "erase.jsonl"
    source.write_text('{"id": "user-705", "id": "user-706"}\n'
                      '{"id": "user-1", "\\u0069d": "user-2"}\n'
                      '{"id": "user-3", "note": "\\"id\\""}\n{"id": "id"}\n')
    first, second, third, fourth = read(source, "jsonl", "id")
    for rejected in (first, second):
        assert isinstance(rejected, Rejected) and "'id' 2 times" in rejected.reason
    assert (third, fourth) == ("user-3", "id")


@pytest.mark.parametrize("number,taken", [("12", "12"), ("-7", "-7"), ("0", "0"),
                                          ("123456789012345678901234567890",
                                           "123456789012345678901234567890"),
                                          ("-0", None), ("1.0", None), ("1e3", None),
                                          ("007", None)])
def test_json_numbers_are_ids_only_as_plain_whole_numbers(tmp_path: Path, number: str,
                                                           taken: str | None) -> None:
    """``-0`` became ``0`` (another id than the one written); ``1.0`` and ``1e3`` name no one
    text: only a whole number written plainly is taken, as its digits."""
    source = tmp_path / "erase.jsonl"
    source.write_text(f'{{"id": {number}}}\n')
    [value] = read(source, "jsonl", "id")
    if taken is not None:
        assert value == taken
    else:
        assert isinstance(value, Rejected)
        assert "not valid JSON" in value.reason or "plain whole number" in value.reason


def test_an_overlong_line_is_rejected_without_being_held_whole(tmp_path: Path) -> None:
    """A 300 MB line peaked at 760 MB: now a line is read at most 64 KiB at a time (ids are at
    most 400 characters), rejected with its length, and the lines after it are read as usual."""
    import tracemalloc

    source = tmp_path / "erase.txt"
    with source.open("w") as out:
        out.write("user-1\n" + "x" * 8_000_000 + "\nuser-2\n")
    tracemalloc.start()
    try:
        found = list(InputReader(InputSpec("distinct_ids", str(source))))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak
    assert found[0] == (1, "user-1") and found[2] == (3, "user-2")
    line, rejected = found[1]
    assert line == 2 and isinstance(rejected, Rejected) and len(rejected.value) <= 200
    assert "8,000,001 characters" in rejected.reason


def test_a_csv_row_wider_or_narrower_than_its_header_refuses_the_file(tmp_path: Path) -> None:
    """``Smith, user-40,user-42`` under ``name,id`` read ``user-40`` and dropped ``user-42``."""
    source = tmp_path / "erase.csv"
    source.write_text("name,id\nAlice,user-41\nSmith, user-40,user-42\n")
    with pytest.raises(InputError, match=r"line 3: the row has 3 cells and the header 2"):
        read(source, "csv", "id")
    source.write_text("name,id,email\nAlice,user-41,a@b\nuser-40,b@c\n")
    with pytest.raises(InputError, match=r"line 3: the row has 2 cells and the header 3"):
        read(source, "csv", "id")


def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path: Path) -> None:
    """A Latin-1 file's error said "after line 0" although the bad byte is on line 1; one far
    into the file is named by its own line, not by the last line read."""
    source = tmp_path / "erase.txt"
    source.write_bytes("José\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"erase.txt, line 1: not valid utf-8"):
        read(source)
    source.write_bytes(b"".join(f"user-{i}\n".encode() for i in range(1, 30_001))
                       + "Müller\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 30001: not valid utf-8"):
        read(source)
