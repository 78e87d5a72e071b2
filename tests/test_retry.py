from __future__ import annotations

from email.utils import formatdate

import pytest

from posthog_async import APIConnectionError, RetryPolicy
from posthog_async._exceptions import make_status_error
from posthog_async._retry import parse_retry_after


def err(status: int, retry_after: float | None = None):  # type: ignore[no-untyped-def]
    return make_status_error(status_code=status, method="GET", path="/x/", raw_body=b"",
                             headers={}, retry_after=retry_after)


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12.0
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now=now) == pytest.approx(30)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405])
def test_never_retry_client_errors(status: int) -> None:
    assert RetryPolicy().decide(err(status), attempt=1, idempotent=True) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_transient(status: int) -> None:
    assert RetryPolicy().decide(err(status), attempt=1, idempotent=False) is not None


@pytest.mark.parametrize("status", [500, 502, 504])
def test_maybe_processed_only_when_idempotent(status: int) -> None:
    """A gateway's 502/504 may hide work the app did: a bulk_delete is not re-sent blindly
    (re-sending would find nobody for the persons it deleted)."""
    policy = RetryPolicy()
    assert policy.decide(err(status), attempt=1, idempotent=True) is not None
    assert policy.decide(err(status), attempt=1, idempotent=False) is None


def test_connection_errors_retried_until_budget() -> None:
    policy = RetryPolicy(max_retries=2)
    e = APIConnectionError("x", method="GET", path="/")
    assert policy.decide(e, attempt=2, idempotent=True) is not None
    assert policy.decide(e, attempt=3, idempotent=True) is None


def test_non_idempotent_retried_only_when_never_sent() -> None:
    policy = RetryPolicy()
    dropped = APIConnectionError("x", method="POST", path="/")
    refused = APIConnectionError("x", method="POST", path="/", maybe_processed=False)
    assert policy.decide(dropped, attempt=1, idempotent=False) is None
    assert policy.decide(refused, attempt=1, idempotent=False) is not None


def test_retry_after_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=60, rng=lambda: 0.0)
    assert policy.decide(err(429, 7), attempt=1, idempotent=True) == 7
    assert policy.decide(err(429, 600), attempt=1, idempotent=True) is None  # surfaced to caller


def test_backoff_grows_with_jitter_and_ceiling() -> None:
    policy = RetryPolicy(initial=1, factor=2, max_backoff=5, rng=lambda: 1.0)
    assert [policy.backoff(a) for a in (1, 2, 3, 4)] == [1, 2, 4, 5]
    low = RetryPolicy(initial=1, factor=2, max_backoff=5, rng=lambda: 0.0)
    assert low.backoff(3) == 2
