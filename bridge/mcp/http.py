"""Streamable HTTP transport: stateful sessions at ``/mcp``, ``/healthz``, and the
security guard (bearer token, Origin check against DNS rebinding)."""

from __future__ import annotations

import contextlib
import hmac
import json
import signal
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog
import uvicorn
from fastmcp import FastMCP
from starlette.applications import Starlette

from bridge.core.state import TILTFILE
from bridge.lifecycle import Shutdown
from bridge.settings import Settings, is_loopback
from bridge.store import Store

log = structlog.get_logger("bridge.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"


class Guard:
    """ASGI middleware in front of everything.

    * ``Origin``: browsers send it; a request whose Origin is not loopback (or listed
      with ``--allowed-origin``) is refused with 403 — the MCP spec's defence against
      DNS rebinding. Requests without Origin (non-browser clients) pass.
    * bearer token: when ``--http-token`` is set, every request except ``/healthz``
      needs ``Authorization: Bearer <token>``, compared in constant time; else 401.
    """

    def __init__(self, app: ASGIApp, settings: Settings, store: Store) -> None:
        self.app = app
        self.token = settings.http_token.reveal().encode() if settings.http_token else None
        self.allowed_origins = {o.rstrip("/").lower() for o in settings.allowed_origins}
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and not self.origin_ok(origin):
            await _respond(send, 403, {"error": f"origin {origin!r} is not allowed"})
            return
        path = scope.get("path", "")
        if path == HEALTH_PATH:
            await self.health(send)
            return
        if self.token is not None and not self.authorized(headers.get("authorization", "")):
            await _respond(
                send,
                401,
                {"error": "missing or wrong bearer token"},
                extra=[(b"www-authenticate", b'Bearer realm="tilt-mcp-bridge"')],
            )
            return
        await self.app(scope, receive, send)

    def origin_ok(self, origin: str) -> bool:
        if origin.rstrip("/").lower() in self.allowed_origins:
            return True
        host = urlsplit(origin).hostname
        return host is not None and is_loopback(host)

    def authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or self.token is None:
            return False
        return hmac.compare_digest(value.strip().encode(), self.token)

    async def health(self, send: Send) -> None:
        conn = self.store.state.connection
        await _respond(
            send,
            200,
            {
                "status": "ok",
                "tilt": conn.state,
                "resources": sum(1 for n in self.store.state.resources if n != TILTFILE),
            },
        )


async def _respond(
    send: Send, status: int, body: object, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": payload})


def build_http_app(mcp: FastMCP, settings: Settings, store: Store) -> Starlette:
    """The Starlette app (stateful Streamable HTTP: legacy subscribers need the GET stream)."""
    app = mcp.http_app(path=MCP_PATH, stateless_http=False, json_response=False)
    app.add_middleware(Guard, settings=settings, store=store)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM/SIGINT belong to the entry point
    (``bridge.app``), which cancels; uvicorn would otherwise re-raise the signal after its
    shutdown and the process would die by it (exit 143) instead of exiting cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(
    mcp: FastMCP, settings: Settings, store: Store, shutdown: Shutdown | None = None
) -> None:
    app = build_http_app(mcp, settings, store)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    if shutdown is not None:
        # SIGTERM: uvicorn's own exit path. ``handle_exit`` (which sse-starlette extends)
        # also ends the open SSE streams, so uvicorn drains, runs the lifespan shutdown
        # and returns instead of cancelling streams after its timeout.
        shutdown.graceful = lambda: server.handle_exit(signal.SIGTERM, None)
    log.info(
        "bridge.http.listening",
        url=f"http://{settings.http_host}:{settings.http_port}{MCP_PATH}",
        bearer=settings.http_token is not None,
    )
    await server.serve()
