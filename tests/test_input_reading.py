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
