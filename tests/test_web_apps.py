"""The web-app examples under real servers: the FastAPI app under uvicorn, with the offline
PostHog behind it, takes real HTTP requests, and shuts down without an unclosed session."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from posthog_async.testing import FakePostHog

from .conftest import API_KEY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: uvicorn serving the example until SIGINT; then, with the interpreter still alive, say whether
#: the lifespan closed the client and collect it (an unclosed session would warn here).
RUNNER = """
import gc, sys, uvicorn, fastapi_web_app as example
uvicorn.run(example.app, host="127.0.0.1", port=int(sys.argv[1]))
print("client closed:", example.app.state.posthog.closed, file=sys.stderr)
example.app.state.posthog = None
gc.collect()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_fastapi_app_under_uvicorn() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as posthog:
        posthog.seed_persons(100)
        port = free_port()
        env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": API_KEY, "POSTHOG_HOST": posthog.url,
               "POSTHOG_PROJECT_ID": "1", "PYTHONWARNINGS": "error::ResourceWarning"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error::ResourceWarning", "-c", RUNNER, str(port), cwd=EXAMPLES,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(f"{base}/persons/user-1") as resp:
                            first = (resp.status, await resp.json())
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError("uvicorn did not start")
                async with http.get(f"{base}/persons/nobody") as resp:
                    missing = resp.status
                async with http.post(f"{base}/persons/user-2/plan/pro") as resp:
                    accepted = resp.status
                async with http.delete(f"{base}/persons/user-9") as resp:
                    erased = await resp.json()
                # Twelve at once: the persons bucket (240/min) cannot serve them within the
                # handlers' max_wait, so some are shed at once with 503 and Retry-After.
                started = time.monotonic()
                results = await asyncio.gather(*(http.get(f"{base}/persons/user-{i}")
                                                 for i in range(10, 22)))
                burst_took = time.monotonic() - started
                statuses = [r.status for r in results]
                retry_after = [r.headers.get("Retry-After") for r in results if r.status == 503]
                for r in results:
                    r.release()
                # A background erasure on the same client does not slow the reads.
                async with http.post(f"{base}/erasures",
                                     json=[f"user-{i}" for i in range(30, 60)]) as resp:
                    job_accepted = resp.status
                await asyncio.sleep(1.5)  # the shed requests' Retry-After, about
                started = time.monotonic()
                async with http.get(f"{base}/persons/user-22") as resp:
                    during_job = resp.status
                read_took = time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown: the lifespan ends
            _, err = await proc.communicate()
        assert first[0] == 200 and first[1]["distinct_ids"] == ["user-1"]
        assert missing == 404 and accepted == 202
        assert erased == {"outcomes": {"deleted": 1}, "ok": True}
        assert set(statuses) == {200, 503} and burst_took < 2.5, (statuses, burst_took)
        assert all(value is not None and int(value) >= 1 for value in retry_after)
        assert job_accepted == 202 and during_job == 200 and read_took < 1.0
        await posthog.wait_for_writes()
        assert posthog.project().by_distinct_id["user-2"].properties["plan"] == "pro"
        assert "user-30" not in posthog.project().by_distinct_id  # the background erasure ran
        log = err.decode()
        assert proc.returncode == 0, log
        assert "Unclosed" not in log and "Traceback" not in log, log
        assert "Application shutdown complete" in log and "client closed: True" in log
