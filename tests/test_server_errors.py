"""What a server says when it fails, as the client keeps it (issue 17, items 6 and 20).

An error page that echoes the ``Authorization`` header (some proxies and firewalls do) must
leave no trace of the key in the exception: message, detail, body or headers; it is redacted
where the transport builds the error, so no consumer (the CLI, a journal, a report, a log) can
leak it. A redirect is never followed: it raises :class:`RedirectError`, naming only the
target's host, and stops a bulk job at once."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from posthog_async import AsyncPostHog, BadRequestError, InternalServerError, RedirectError
from posthog_async._chunk_step import is_fatal
from posthog_async._exceptions import make_status_error
from posthog_async.testing import FakePostHog
from posthog_async.testing._request import respond

from .conftest import API_KEY

OTHER_KEY = "phx_a_key_this_client_never_had_0123"


def _texts(error: Any) -> str:
    return " ".join(map(str, (error, error.message, error.detail, error.body, error.headers,
                              error.args, repr(error))))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
@pytest.mark.parametrize("body", [
    b'{"detail": "bad header: Bearer %s"}', b'{"error": {"headers": {"Authorization": "Bearer %s"}}}',
    b"<html>Authorization: Bearer %s</html>", b'{"non_field_errors": ["%s"]}',
])
def test_the_key_is_redacted_from_every_part_of_the_error(status: int, body: bytes) -> None:
    raw = body.replace(b"%s", API_KEY.encode())
    error = make_status_error(status_code=status, method="POST", path="/api/x/", raw_body=raw,
                              headers={"X-Echo": f"Bearer {API_KEY}"}, secrets=[API_KEY])
    assert API_KEY not in _texts(error) and "<redacted>" in _texts(error)


def test_a_key_that_is_not_ours_but_looks_like_one_is_redacted_too() -> None:
    raw = f'{{"detail": "seen {OTHER_KEY} and {API_KEY}"}}'.encode()
    error = make_status_error(status_code=400, method="GET", path="/x/", raw_body=raw, headers={})
    assert OTHER_KEY not in str(error) and API_KEY not in str(error)


async def test_an_echoing_proxy_leaves_no_key_in_the_raised_error(server: FakePostHog,
                                                                    ph: AsyncPostHog) -> None:
    """Through the real transport: the key comes from the request that was sent."""
    def echo(request: web.Request) -> web.StreamResponse | None:
        sent = request.headers["Authorization"]
        status = 400 if request.method == "GET" else 500
        return respond(status, {"detail": f"rejected {sent}"}, {"X-Seen": sent})

    server.add_hook(echo)
    with pytest.raises(BadRequestError) as bad:
        await ph.persons.retrieve("0190b7a4-0000-4000-8000-000000000000")
    with pytest.raises(InternalServerError) as failed:
        await ph.persons.bulk_delete(distinct_ids=["user-1"])
    for error in (bad.value, failed.value):
        assert API_KEY not in _texts(error) and "rejected <redacted>" in str(error)


# -- redirects ------------------------------------------------------------------------------------

def test_a_redirect_names_only_its_target_host() -> None:
    error = make_status_error(status_code=302, method="POST", path="/api/projects/1/persons/bulk_delete/",
                              raw_body=b"302: Found", headers={
                                  "Location": "https://user:pw@sso.example.net/login?token=abc"})
    assert isinstance(error, RedirectError) and is_fatal(error)
    assert error.location == "https://sso.example.net"
    assert "https://sso.example.net" in str(error) and "302: 302" not in str(error)
    assert "token" not in str(error) and "pw" not in str(error) and "/login" not in str(error)
    relative = make_status_error(status_code=301, method="GET", path="/api/x/", raw_body=b"",
                                 headers={"location": "/login/"})
    assert relative.location is None and "the same host" in str(relative)
    bare = make_status_error(status_code=307, method="GET", path="/api/x/", raw_body=b"", headers={})
    assert isinstance(bare, RedirectError) and "without a Location" in str(bare)


@pytest.fixture
async def trap() -> Any:
    """A server where a redirect points: it must never be asked anything."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="caught")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


async def test_a_redirect_stops_bulk_helpers_at_once_and_is_never_followed(
        server: FakePostHog, ph: AsyncPostHog, trap: tuple[str, list[str]]) -> None:
    target, hits = trap
    server.seed_persons(50)
    calls: list[str] = []

    def redirect(request: web.Request) -> web.StreamResponse | None:
        calls.append(request.path)
        return web.Response(status=302, text="302: Found", headers={"Location": f"{target}/login"})

    server.add_hook(redirect)
    report = await ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(1, 51)],
                                              chunk_size=2, concurrency=1)
    assert report.stopped_early and target in (report.stop_reason or "")
    assert len(calls) <= 2 and not hits
    with pytest.raises(RedirectError):
        await ph.persons.batch_by_distinct_ids_all([f"user-{i}" for i in range(1, 51)])
    assert not hits and len(server.project().persons) == 50
