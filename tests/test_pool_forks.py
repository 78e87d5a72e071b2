"""A process forked while its parent's loop runs (``os.fork`` or ``multiprocessing`` with the
``fork`` start method) may use the parent's module-level client: it opens a pool of its own,
and the parent's pool goes on untouched.

The child inherits the parent's loop object, whose epoll instance it *shares* with the parent
(epoll registrations belong to the open file description, not to the process). Closing the
inherited connections through their asyncio transports would unregister the parent's sockets
from that epoll, and the parent's next answer on a kept-alive connection would never be
seen: the parent would wait a whole timeout. The child closes only its copies of the sockets.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from posthog_async.testing import FakePostHog

from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

#: The parent keeps a connection alive on its running loop, forks, the child uses the client,
#: then the parent calls again: it must answer at once, not after the 3 s timeout.
FORKED_WHILE_RUNNING = """
import asyncio, asyncio.events, multiprocessing, os, sys, time
from posthog_async import AsyncPostHog

ph = AsyncPostHog(host=sys.argv[1], project_id=1, timeout=3, max_retries=0, rate_limits=None)

def child():
    asyncio.events._set_running_loop(None)  # Python < 3.12 leaves the parent's loop "running"
    print("child", asyncio.run(ph.users.retrieve()).email, flush=True)

async def main(how):
    await ph.users.retrieve()  # the parent's pool holds a kept-alive connection
    if how == "os.fork":
        pid = os.fork()
        if pid == 0:
            try:
                child()
            finally:
                os._exit(0)
        await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
    else:
        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        await asyncio.get_running_loop().run_in_executor(None, process.join)
        assert process.exitcode == 0, process.exitcode
    started = time.monotonic()
    await ph.users.retrieve()
    print(f"parent {time.monotonic() - started:.3f}", flush=True)
    await ph.aclose()

asyncio.run(main(sys.argv[2]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
async def test_a_forked_child_using_the_client_leaves_the_parents_pool_alone(
        server: FakePostHog, how: str) -> None:
    env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": API_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error::ResourceWarning", "-c", FORKED_WHILE_RUNNING, server.url,
        how, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (text.decode() for text in await asyncio.wait_for(proc.communicate(), 30))
    assert proc.returncode == 0, err
    assert "child owner@example.com" in out, (out, err)
    took = float(out.split("parent ")[1].split()[0])
    assert took < 1.0, (took, err)  # not the 3 s timeout of a connection nobody watches
    for noise in ("Unclosed", "ResourceWarning", "Traceback", "Exception ignored"):
        assert noise not in err, err


#: ``aclose()`` from a new loop, for a pool whose loop was closed by hand (no
#: ``shutdown_asyncgens``) or is left open and idle: it closes what it can and returns, and the
#: rate limiter is closed too.
CLOSED_FROM_ANOTHER_LOOP = """
import asyncio, gc, sys
from posthog_async import AsyncPostHog, LocalRateLimiter

class Limiter(LocalRateLimiter):
    closed = 0
    async def aclose(self):
        Limiter.closed += 1

def client():
    return AsyncPostHog(host=sys.argv[1], project_id=1, rate_limiter=Limiter())

for case in ("closed by hand", "left idle"):
    ph = client()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ph.users.retrieve())
    if case == "closed by hand":
        loop.close()
    asyncio.run(asyncio.wait_for(ph.aclose(), 3))
    asyncio.run(asyncio.wait_for(ph.aclose(), 3))  # twice: still nothing raised
    if case == "left idle":
        loop.run_until_complete(asyncio.sleep(0.05))  # the loop may still run: no callback fails
        loop.close()
    del ph, loop
    gc.collect()
    print("closed", case, Limiter.closed, flush=True)
"""


async def test_aclose_from_another_loop_closes_what_it_can(server: FakePostHog) -> None:
    env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": API_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error::ResourceWarning", "-c", CLOSED_FROM_ANOTHER_LOOP,
        server.url, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (text.decode() for text in await asyncio.wait_for(proc.communicate(), 30))
    assert proc.returncode == 0, err
    assert "closed closed by hand 2" in out and "closed left idle 4" in out, (out, err)
    for noise in ("Unclosed", "unclosed", "ResourceWarning", "Traceback", "Exception",
                  "never awaited", "Task was destroyed", "RuntimeError"):
        assert noise not in err, err
