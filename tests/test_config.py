from __future__ import annotations

import pickle

import pytest

from posthog_async import AsyncPostHog, ConfigurationError
from posthog_async._config import Secret

from .conftest import API_KEY


def test_missing_key_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="POSTHOG_PERSONAL_API_KEY"):
        AsyncPostHog()


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", API_KEY)
    monkeypatch.setenv("POSTHOG_HOST", "https://eu.posthog.com/")
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "42")
    ph = AsyncPostHog()  # created outside a running loop: nothing opens yet
    assert ph.host == "https://eu.posthog.com"
    assert ph.project_id == "42"


def test_defaults_to_us_cloud() -> None:
    ph = AsyncPostHog(API_KEY)
    assert ph.host == "https://us.posthog.com"
    assert ph.project_id is None


@pytest.mark.parametrize("host", ["us.posthog.com", "ftp://x", "https://x/?a=1", "   "])
def test_bad_host_is_a_clear_error(host: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncPostHog(API_KEY, host=host)


@pytest.mark.parametrize("field", ["timeout", "max_concurrency", "max_connections"])
def test_non_positive_limits_rejected(field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        AsyncPostHog(API_KEY, **{field: 0})


def test_key_never_in_repr() -> None:
    ph = AsyncPostHog(API_KEY, project_id=1)
    config = ph._transport.config
    for text in (repr(ph), str(ph), repr(config), repr(ph.persons), repr(config.api_key)):
        assert API_KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(API_KEY))


async def test_project_id_required_for_project_calls() -> None:
    async with AsyncPostHog(API_KEY) as ph:
        with pytest.raises(ConfigurationError, match="project"):
            await ph.persons.retrieve("0190b7a4-0000-4000-8000-000000000000")


def test_same_origin_check() -> None:
    config = AsyncPostHog(API_KEY, host="https://ph.example.com/prefix")._transport.config
    config.check_same_origin("https://ph.example.com/prefix/api/projects/1/persons/?offset=100")
    from posthog_async import UnsafeURLError

    for url in (
        "https://evil.example.com/prefix/api/x/",
        "http://ph.example.com/prefix/api/x/",
        "https://ph.example.com:8443/prefix/api/x/",
        "https://ph.example.com/other/api/x/",
    ):
        with pytest.raises(UnsafeURLError):
            config.check_same_origin(url)


@pytest.mark.parametrize("bad", ["abc", "12a", "+5", "1_000", "٣", "1/2", " ", "-1"])
def test_project_ids_are_checked_before_any_request(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostHog routes a project id through int() and answers anything else 404 "Project not
    found." (posthog/api/routing.py): a typo must not pass for a missing project."""
    ph = AsyncPostHog(API_KEY)
    if bad.strip():
        with pytest.raises(ValueError, match="must be a number"):
            ph.project(bad)
        with pytest.raises(ConfigurationError, match="project_id must be a number"):
            AsyncPostHog(API_KEY, project_id=bad)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", bad)
    if bad.strip():
        with pytest.raises(ConfigurationError, match="POSTHOG_PROJECT_ID"):
            AsyncPostHog(API_KEY)
    assert ph.project(" 42 ").scope.id == "42" and ph.project("@current").scope.id == "@current"


# -- issue 17, item 13: credentials in the host, a key with a line break -------------------------

@pytest.mark.parametrize("host", ["http://user:hunter2@127.0.0.1:9", "https://:hunter2@eu.posthog.com",
                                  "https://hunter2@eu.posthog.com/"])
def test_credentials_in_the_host_are_refused_without_being_shown(
        host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp refused them on every request ("Cannot combine AUTHORIZATION header with ...
    credentials encoded in URL"), so every chunk failed in turn."""
    with pytest.raises(ConfigurationError, match="credentials") as info:
        AsyncPostHog(API_KEY, host=host)
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv("POSTHOG_HOST", host)
    with pytest.raises(ConfigurationError, match="credentials"):
        AsyncPostHog(API_KEY)


@pytest.mark.parametrize("key,kind", [
    (API_KEY + "\nX", "line break"), (API_KEY[:8] + "\r" + API_KEY[8:], "line break"),
    (API_KEY + "\x00", "control character"), ("phx_two words_0123456789", "space"),
    (API_KEY + "\u00e9", "non-ASCII"), (API_KEY + "\u200b", "control character"),
])
def test_a_key_with_a_line_break_or_control_character_is_refused(key: str, kind: str) -> None:
    with pytest.raises(ConfigurationError, match=kind) as info:
        AsyncPostHog(key)
    assert API_KEY[4:] not in str(info.value)


def test_whitespace_around_the_key_is_still_trimmed() -> None:
    ph = AsyncPostHog(f"  {API_KEY}\n")
    assert ph._transport.config.api_key.reveal() == API_KEY


@pytest.mark.parametrize("env", [{"POSTHOG_HOST": "http://user:hunter2@127.0.0.1:9"},
                                 {"POSTHOG_PERSONAL_API_KEY": API_KEY + "\nX"}])
def test_the_cli_refuses_them_with_exit_2(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Before: exit 1 after a failed request ("listing persons failed: ValueError: ...")."""
    from posthog_async.cli import main

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", API_KEY)
    monkeypatch.setenv("POSTHOG_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["persons", "list", "--max", "1"]) == 2
    err = capsys.readouterr().err
    assert "failed" not in err and "hunter2" not in err and API_KEY not in err, err


def test_the_missing_key_message_keeps_the_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    """Item 18: redaction ate the ``phx_`` of "(keys start with 'phx_')"."""
    from posthog_async.cli import main

    assert main(["persons", "list"]) == 2
    assert "(keys start with 'phx_')" in capsys.readouterr().err
