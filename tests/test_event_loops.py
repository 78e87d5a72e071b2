"""One client, any event loop (issue 18.5, 17.10): a client made at module level serves
successive loops (``asyncio.run`` twice, anyio, a loop closed by hand, a forked worker), each
with a fresh pool, the old one closed without a warning; two loops at the same time get a
clear ``RuntimeError`` at once, never a hang.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest

from posthog_async import PostHogError
from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

#: A user's script: the client at module level, used by one loop after another.
SUCCESSIVE_LOOPS = """
import asyncio, gc, os, sys
import anyio
from posthog_async import AsyncPostHog, RateLimits

limiter = None
if len(sys.argv) > 2:
    from posthog_async import RedisRateLimiter
    limiter = RedisRateLimiter(sys.argv[2], limits=RateLimits(users=[(1000, 1.0)]), namespace="loops")
ph = AsyncPostHog(host=sys.argv[1], project_id=1, rate_limiter=limiter)

async def use():
    me = await ph.users.retrieve()
    return me.email

print("run 1", asyncio.run(use()))
print("run 2", asyncio.run(use()))
print("anyio", anyio.run(use))
loop = asyncio.new_event_loop()  # by hand, closed without shutdown_asyncgens
print("manual", loop.run_until_complete(use()))
loop.close()
print("run 3", asyncio.run(use()))
pid = os.fork()
if pid == 0:  # a worker forked after first use
    try:
        print("child", asyncio.run(use()), flush=True)
    finally:
        os._exit(0)
os.waitpid(pid, 0)
print("run 4", asyncio.run(use()))
if limiter is not None:
    print("fallbacks", limiter.fallbacks)
del ph, limiter
gc.collect()
"""


async def run_script(code: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": API_KEY, "PYTHONWARNINGS": "error::ResourceWarning"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error::ResourceWarning", "-c", code, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_successive_loops_each_get_a_fresh_pool_without_warnings(server: FakePostHog) -> None:
    code, out, err = await run_script(SUCCESSIVE_LOOPS, server.url)
    assert code == 0, err
    for step in ("run 1", "run 2", "anyio", "manual", "run 3", "child", "run 4"):
        assert f"{step} owner@example.com" in out, (out, err)
    for noise in ("Unclosed", "ResourceWarning", "Traceback", "Exception ignored", "closed"):
        assert noise not in err, err


async def test_successive_loops_with_the_shared_limiter(server: FakePostHog) -> None:
    from ._valkey import any_redis

    pytest.importorskip("redis")
    with any_redis() as url:
        code, out, err = await run_script(SUCCESSIVE_LOOPS, server.url, url)
    assert code == 0, err
    assert "run 4 owner@example.com" in out and "fallbacks 0" in out, (out, err)
    for noise in ("Unclosed", "ResourceWarning", "Traceback", "unreachable", "Event loop is closed"):
        assert noise not in err, err


async def test_two_loops_at_the_same_time_is_a_clear_error_at_once(server: FakePostHog) -> None:
    server.faults = Faults(latency=1.0)
    ph = server.client(rate_limits=None)
    outcome: list[object] = []

    def other_thread() -> None:
        async def use() -> None:
            outcome.append(await ph.users.retrieve())

        asyncio.run(use())  # its pool is closed as this loop ends

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.sleep(0.3)  # the other thread's call is in flight on its loop
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="another event loop") as info:
        await asyncio.wait_for(ph.users.retrieve(), 3)
    refused_in = time.monotonic() - started
    await asyncio.to_thread(thread.join, 5)
    assert refused_in < 0.1 and "one client per thread" in str(info.value)
    assert outcome and getattr(outcome[0], "email", None) == "owner@example.com"
    server.faults = Faults()
    assert (await ph.users.retrieve()).email  # that loop is over: this one may use it now
    await ph.aclose()


async def test_a_client_closed_by_one_loop_says_why_on_the_next(server: FakePostHog) -> None:
    code = (
        "import asyncio, sys\n"
        "from posthog_async import AsyncPostHog, PostHogError\n"
        "ph = AsyncPostHog(host=sys.argv[1], project_id=1)\n"
        "async def lifespan():\n"
        "    async with ph:\n"
        "        await ph.users.retrieve()\n"
        "asyncio.run(lifespan())\n"
        "try:\n"
        "    asyncio.run(ph.users.retrieve())\n"
        "except PostHogError as exc:\n"
        "    print(exc)\n"
    )
    status, out, err = await run_script(code, server.url)
    assert status == 0, err
    assert "is closed" in out and "needs no aclose()" in out
    assert isinstance(PostHogError("x"), Exception)
