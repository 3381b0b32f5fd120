"""Tilt's HTTP answers, pure: status codes and bodies exactly as Tilt writes them.

Go's ``http.Error`` texts, the Kubernetes ``Status`` objects of Tilt's apiserver
proxy, the request checks (``Origin``, token, JSON decoding) and the frame encoding.
The server (:mod:`bridge.testing.server`) decides which to send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from bridge.testing.wire import HTTPRequest, HTTPResponse

__all__ = [
    "BUILD_REASONS",
    "MICRO_RE",
    "WS_FORBIDDEN_BODY",
    "csrf_of",
    "dumps",
    "go_error",
    "json_body",
    "json_response",
    "k8s_status",
    "origin_ok",
    "text_response",
    "token_of",
]

WS_FORBIDDEN_BODY: Final = (
    "Forbidden\nError upgrading websocket: websocket: request origin not allowed by "
    "Upgrader.CheckOrigin\n"
)
"""What Tilt answers (403) to a websocket handshake with a wrong csrf, as recorded."""

BUILD_REASONS: Final[Mapping[int, str]] = {16: "Web Trigger", 32: "CLI Trigger"}
"""``POST /api/trigger``'s ``build_reason`` → the build's first log line."""

MICRO_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
"""A Kubernetes MicroTime as the apiserver accepts it (six fractional digits)."""

_TEXT: Final = "text/plain; charset=utf-8"


def text_response(text: str, status: int = 200, *, content_type: str = _TEXT) -> HTTPResponse:
    return HTTPResponse(status, text.encode(), content_type)


def json_response(body: str, status: int) -> HTTPResponse:
    return HTTPResponse(status, body.encode(), "application/json")


def go_error(message: str, status: int) -> HTTPResponse:
    """Go's ``http.Error``: the message plus a newline, text/plain."""
    return text_response(message + "\n", status)


def k8s_status(code: int, reason: str, message: str, name: str | None = None) -> str:
    """A failed ``Status`` as Tilt's apiserver writes it (a UIButton's when ``name``)."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if name is not None:
        status["details"] = {"name": name, "group": "tilt.dev", "kind": "uibuttons"}
    status["code"] = code
    return json.dumps(status, separators=(",", ":")) + "\n"


def dumps(obj: object) -> str:
    """JSON as Tilt's encoder writes it: compact, UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def origin_ok(headers: Mapping[str, str]) -> bool:
    """No ``Origin``, or one whose host equals ``Host`` exactly (Tilt's check)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == headers.get("host", "")


def token_of(request: HTTPRequest) -> str | None:
    """The session token a request carries: ``X-Tilt-Token`` or the ``Tilt-Token`` cookie."""
    return request.headers.get("x-tilt-token") or request.cookie("Tilt-Token")


def csrf_of(request: HTTPRequest) -> str:
    """A websocket handshake's ``csrf`` query parameter (``""`` if absent)."""
    return parse_qs(request.query).get("csrf", [""])[0]


def json_body(request: HTTPRequest, fields: set[str] | None = None) -> tuple[object, str]:
    """Decode the body like Go's json decoder (DisallowUnknownFields when ``fields``)."""
    try:
        payload = json.loads(request.body)
    except ValueError as exc:
        return None, f"error parsing JSON payload: {exc}"
    if fields is not None:
        if not isinstance(payload, dict):
            return None, "error parsing JSON payload: expected a JSON object"
        unknown = sorted(set(payload) - fields)
        if unknown:
            return None, f'error parsing JSON payload: json: unknown field "{unknown[0]}"'
    return payload, ""
