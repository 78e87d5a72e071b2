"""8. A web app sharing its client with a background job: FastAPI under uvicorn, one
``AsyncPostHog`` from the lifespan (``_web_app.py``), the fake PostHog with PostHog's default
limits and 20 ms latency, each in its own process.

Web traffic arrives open-loop at a fixed rate (it does not slow down when the app does), mixed
over three routes in three buckets: ``/me`` (``users``, unpaced), ``/subscriptions``
(``general``, 480/min) and ``/person/{id}`` (``persons``, 240/min: a batch lookup then a
retrieve). Wall-clock latency of every web request, p50 and p99 per route, and the rate served:

- **no job**;
- **job**: a ``bulk_delete_all`` of 1000-id chunks runs meanwhile, paced at PostHog's
  ``person_deletes`` 480/min (concurrency 8, the client's default, as is its cap of 8);
- **spent window**: the same job after the hourly window of ``person_deletes`` is spent (both
  sides count ``480/60 s`` and ``WINDOW/3600 s``; the job made its ``WINDOW`` calls before the
  measurement starts, and every chunk left waits about an hour).

The goal: the web calls' p99 unchanged within a few milliseconds when the job runs or its
bucket is spent. ``--app-pythonpath`` runs the app on another checkout (an older version,
to compare); the version it ran is printed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from _common import machine_line, smoke_parser, versions
from _server import API_KEY, fake_server, free_port

HERE = Path(__file__).resolve().parent
LATENCY = 0.020
#: Offered load, requests per second per route (the persons route makes two persons calls:
#: 2 x 1.5 = 3 of the 4 a second PostHog allows).
RATES = {"/me": 20.0, "/subscriptions": 4.0, "/person": 1.5}
PRODUCTION = {"persons": "240/60", "general": "480/60,4800/3600"}
SCENARIOS = ("no job", "job", "spent window")


@contextmanager
def web_app(fake_url: str, delete_windows: str, pythonpath: str | None) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "POSTHOG_HOST": fake_url, "POSTHOG_PERSONAL_API_KEY": API_KEY,
           "POSTHOG_PROJECT_ID": "1", "BENCH_DELETE_WINDOWS": delete_windows}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "_web_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=HERE, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # a graceful shutdown that hangs is a finding too
            proc.kill()
            _, err = proc.communicate()
            print("  (the app did not shut down within 15 s: killed)")
        if proc.returncode not in (0, -15) or b"Traceback" in err:
            print(err.decode()[-1500:])


async def ready(http: aiohttp.ClientSession, base: str) -> str:
    for _ in range(300):
        try:
            async with http.get(f"{base}/version") as resp:
                return str((await resp.json())["file"])
        except aiohttp.ClientError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the web app did not start")


async def offer_load(http: aiohttp.ClientSession, base: str, seconds: float,
                     timeout: float) -> tuple[dict[str, list[float]], int, float]:
    """Open-loop arrivals at ``RATES`` for ``seconds``: latencies per route, failures, wall."""
    latencies: dict[str, list[float]] = {route: [] for route in RATES}
    failures = 0

    async def one(route: str, i: int) -> None:
        nonlocal failures
        path = f"{route}/user-{i % 400 + 1}" if route == "/person" else route
        started = time.perf_counter()
        try:
            async with http.get(base + path, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError):
            failures += 1
            return
        latencies[route].append(time.perf_counter() - started)

    async def arrivals(route: str, rate: float) -> list[asyncio.Task[None]]:
        tasks, start = [], time.perf_counter()
        for i in range(int(seconds * rate)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(route, i)))
        return tasks

    started = time.perf_counter()
    batches = await asyncio.gather(*(arrivals(route, rate) for route, rate in RATES.items()))
    await asyncio.gather(*(task for batch in batches for task in batch))
    return latencies, failures, time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scenario(name: str, seconds: float, window: int, pythonpath: str | None,
                   timeout: float) -> tuple[str, str]:
    deletes = f"480/60,{window}/3600" if name == "spent window" else "480/60,4800/3600"
    limits = {**PRODUCTION, "person_deletes": deletes}
    with fake_server(500, latency=LATENCY, rate_limits=limits) as fake, \
            web_app(fake, deletes, pythonpath) as base:
        async with aiohttp.ClientSession() as http:
            where = await ready(http, base)
            for route in ("/me", "/subscriptions", "/person/user-1"):  # warm up
                async with http.get(base + route) as resp:
                    await resp.read()
            if name != "no job":
                async with http.post(f"{base}/job/{10_000_000}") as resp:
                    resp.raise_for_status()
                if name == "spent window":  # let the job spend the hourly window first
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        async with http.get(f"{base}/job") as resp:
                            if (await resp.json())["chunks_done"] >= window * 1000:
                                break
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(0.5)  # the chunks after it are waiting now
                else:
                    await asyncio.sleep(1.0)
            latencies, failures, wall = await offer_load(http, base, seconds, timeout)
    served = sum(len(v) for v in latencies.values())
    parts = []
    for route, values in latencies.items():
        parts.append(f"{route} p50 {quantile(values, 0.5) * 1000:.0f} ms, "
                     f"p99 {quantile(values, 0.99) * 1000:.0f} ms")
    every = [v for values in latencies.values() for v in values]
    result = (f"{served / wall:.1f} req/s served, {failures} failed or timed out; all routes "
              f"p50 {quantile(every, 0.5) * 1000:.0f} ms, p99 {quantile(every, 0.99) * 1000:.0f} ms"
              f" ({'; '.join(parts)})")
    offered = ", ".join(f"{route} {rate:g}/s" for route, rate in RATES.items())
    conditions = (f"{name}; FastAPI under uvicorn, one client (cap 8, default limits), fake "
                  f"PostHog at {LATENCY * 1000:.0f} ms in its own process, person_deletes "
                  f"{deletes}; offered {offered} for {seconds:g} s, open loop; "
                  f"{versions('fastapi', 'uvicorn')}"
                  + ("" if pythonpath is None else f"; app on {where}"))
    print(f"  {name:13} {result}")
    return f"web app: {conditions}", result


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per scenario")
    parser.add_argument("--window", type=int, default=24,
                        help="the spent hourly window, in person_deletes calls (default 24)")
    parser.add_argument("--timeout", type=float, default=10.0, help="web client timeout (s)")
    parser.add_argument("--app-pythonpath", default=None,
                        help="run the app with this directory first on PYTHONPATH (an older checkout)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.window = 1.0, 2
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return [("web app: FastAPI under uvicorn", "skipped: fastapi/uvicorn not installed")]
    print(machine_line())
    return [asyncio.run(scenario(name, args.seconds, args.window, args.app_pythonpath,
                                 args.timeout))
            for name in SCENARIOS]


if __name__ == "__main__":
    main()
