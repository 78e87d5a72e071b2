"""Start the fake PostHog in a child process on 127.0.0.1, so client and server do not share a core."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

API_KEY = "phx_benchmark_key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fake_server(persons: int, *, latency: float = 0.0,
                rate_limits: dict[str, str] | None = None,
                extra: tuple[str, ...] = ()) -> Iterator[str]:
    """The fake PostHog with ``persons`` seeded, unthrottled except for ``rate_limits``
    (``{"person_deletes": "60/10"}``), answering every request after ``latency`` seconds;
    ``extra``: more of its command-line knobs (``("--projects", "1,2,3")``)."""
    port = free_port()
    args = [sys.executable, "-m", "posthog_async.testing", "--port", str(port),
            "--persons", str(persons), "--api-key", API_KEY, "--no-rate-limits",
            "--latency", str(latency)]
    for bucket, spec in (rate_limits or {}).items():
        args += ["--rate-limit", f"{bucket}={spec}"]
    args += extra
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                req = urllib.request.Request(url + "/api/users/@me/",
                                             headers={"Authorization": f"Bearer {API_KEY}"})
                urllib.request.urlopen(req, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("fake server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def first_person_uuid(url: str) -> str:
    import json

    req = urllib.request.Request(url + "/api/projects/1/persons/?limit=1",
                                 headers={"Authorization": f"Bearer {API_KEY}"})
    return str(json.loads(urllib.request.urlopen(req).read())["results"][0]["uuid"])
