"""PostHog's error bodies, as the fake server sends them."""

from __future__ import annotations

from typing import Any

__all__ = ["FakeAPIError", "validation_error", "not_found"]


class FakeAPIError(Exception):
    """Raised by a handler to answer with PostHog's error shape."""

    def __init__(self, status: int, type: str, code: str, detail: str, attr: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "code": code, "detail": detail, "attr": attr}
        self.headers = headers or {}


def validation_error(detail: str, attr: str | None = None, code: str = "invalid_input") -> FakeAPIError:
    return FakeAPIError(400, "validation_error", code, detail, attr)


def not_found(detail: str = "Not found.") -> FakeAPIError:
    return FakeAPIError(404, "invalid_request", "not_found", detail)
