"""Streamable HTTP transport: stateful sessions at ``/mcp``, ``/healthz``, and the
security guard (Host and Origin checks against DNS rebinding, bearer token).

The guard is ours rather than fastmcp 4's ``HostOriginGuardMiddleware`` (off by default,
``http_app(host_origin_protection=...)``): that one sits inside the app, so it never sees
``/healthz`` (answered here, in front of everything), answers a bare "Misdirected Request"
without saying which Host or what to do, and has its own Origin rules (same-origin fallback,
glob patterns) next to ours. So fastmcp's is turned off explicitly (a ``FASTMCP_*`` setting
cannot add a second guard with other rules) and this one checks Host, then Origin, for
every path.

The listening socket is bound before anything says "listening": a busy port is a
:class:`~bridge.errors.ConfigError` (one line on stderr, exit 2), never uvicorn's
``sys.exit`` with a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastmcp import FastMCP
from starlette.applications import Starlette

from bridge.core.state import TILTFILE
from bridge.errors import BridgeError, ConfigError
from bridge.lifecycle import Shutdown
from bridge.log import get_logger
from bridge.mcp.uris import quote_value
from bridge.settings import Settings, is_loopback
from bridge.store import Store

log = get_logger("bridge.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
QUOTE_CHARS = 100


class Guard:
    """ASGI middleware in front of everything.

    * ``Host``: must name this server: ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port),
      the bind address (``--http-host``) or the address the connection arrived on, or a
      value listed with ``--allowed-host`` (a bare name: any port; ``name:port``: that
      port). Anything else, or no Host, is refused with 421 before any session exists,
      ``/healthz`` included: a DNS-rebound page (or a non-browser client) that reaches the
      port under a foreign name gets nothing.
    * ``Origin``: browsers send it; a request whose Origin is not loopback (or listed
      with ``--allowed-origin``) is refused with 403 — the MCP spec's defence against
      DNS rebinding. Requests without Origin (non-browser clients) pass.
    * bearer token: when ``--http-token`` is set, every request except ``/healthz``
      needs ``Authorization: Bearer <token>``, compared in constant time; else 401.
    """

    def __init__(
        self, app: ASGIApp, settings: Settings, store: Store | Callable[[], Store]
    ) -> None:
        self.app = app
        self.token = settings.http_token.reveal().encode() if settings.http_token else None
        self.allowed_origins = {o.rstrip("/").lower() for o in settings.allowed_origins}
        # /healthz reads the bridge default's store at each request (it may change)
        self._store = store
        self.allowed_hosts: set[tuple[str, int | None]] = {(n, None) for n in LOOPBACK_NAMES}
        bind = parse_host(settings.http_host, allow_bare_ipv6=True)
        if bind is not None:
            self.allowed_hosts.add((bind[0], None))
        for value in settings.allowed_hosts:
            parsed = parse_host(value)
            if parsed is None:
                raise ConfigError(
                    f"--allowed-host {value[:QUOTE_CHARS]!r} is not a host name or "
                    "host:port (an IPv6 address goes in brackets: [fe80::1]:8765)"
                )
            self.allowed_hosts.add(parsed)
        self.example = f"{_bracket(settings.http_host)}:{settings.http_port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self.host_refused(headers.get("host"), scope.get("server"))
        if refused is not None:
            await _respond(send, 421, {"error": refused})
            return
        origin = headers.get("origin")
        if origin is not None and not self.origin_ok(origin):
            await _respond(
                send,
                403,
                {
                    "error": f"Origin {quote_value(origin)} is not allowed (DNS rebinding guard); "
                    "add it with --allowed-origin if this browser page may use the bridge"
                },
            )
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

    def host_refused(self, header: str | None, server: object) -> str | None:
        """Why a request with this ``Host`` header is refused; None if it is allowed."""
        if header is None:
            return f"no Host header; connect to http://{self.example}{MCP_PATH}"
        parsed = parse_host(header)
        if parsed is not None:
            name, port = parsed
            if (name, None) in self.allowed_hosts or (name, port) in self.allowed_hosts:
                return None
            if name == _server_name(server):
                return None  # the address this connection arrived on
        return (
            f"Host {quote_value(header)} is not this server (DNS rebinding guard); connect to "
            f"http://{self.example}{MCP_PATH}, or allow that name with --allowed-host"
        )

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
        store = self._store if isinstance(self._store, Store) else self._store()
        conn = store.state.connection
        await _respond(
            send,
            200,
            {
                "status": "ok",
                "tilt": conn.state,
                "resources": sum(1 for n in store.state.resources if n != TILTFILE),
            },
        )


def parse_host(value: str, *, allow_bare_ipv6: bool = False) -> tuple[str, int | None] | None:
    """``host[:port]`` or ``[v6][:port]`` → (lower-case name without brackets or trailing dot,
    port or None); None when malformed (a bare IPv6 address only with ``allow_bare_ipv6``)."""
    value = value.strip().lower()
    port_text: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    elif ":" in value:
        if not allow_bare_ipv6:
            return None
        name = value
    else:
        name = value
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > 253 or any(c in name for c in "/\\@?#% \t"):
        return None
    if port_text is None:
        return name, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    return name, int(port_text)


def _server_name(server: object) -> str | None:
    """The local address of the connection (ASGI ``scope["server"]``), as ``parse_host``
    names it."""
    if not isinstance(server, (tuple, list)) or not server or not isinstance(server[0], str):
        return None
    parsed = parse_host(server[0], allow_bare_ipv6=True)
    return parsed[0] if parsed is not None else None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


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


def build_http_app(
    mcp: FastMCP, settings: Settings, store: Store | Callable[[], Store]
) -> Starlette:
    """The Starlette app (stateful Streamable HTTP: legacy subscribers need the GET stream)."""
    app = mcp.http_app(
        path=MCP_PATH,
        stateless_http=False,
        json_response=False,
        host_origin_protection=False,  # the Guard below checks Host and Origin (see above)
    )
    app.add_middleware(Guard, settings=settings, store=store)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM/SIGINT belong to the entry point
    (``bridge.app``), which cancels; uvicorn would otherwise re-raise the signal after its
    shutdown and the process would die by it (exit 143) instead of exiting cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host:port`` (every address ``host`` resolves to, as uvicorn
    would bind); ``ConfigError`` naming the port and the next step when it cannot."""
    where = f"port {port} on {host}"
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {where}: {exc.strerror}; check --http-host") from None
    sockets: list[socket.socket] = []
    seen: set[object] = set()
    try:
        for family, kind, proto, _, address in infos:
            if address in seen:
                continue
            seen.add(address)
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # the same free port on every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(2048)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{where} is in use; stop the other process or pick another --http-port"
            ) from None
        raise ConfigError(
            f"cannot listen on {where}: {exc.strerror or exc}; pick another --http-host "
            "or --http-port"
        ) from None
    return sockets


async def serve_http(
    mcp: FastMCP,
    settings: Settings,
    store: Store | Callable[[], Store],
    shutdown: Shutdown | None = None,
) -> None:
    app = build_http_app(mcp, settings, store)
    sockets = bind(settings.http_host, settings.http_port)
    port = sockets[0].getsockname()[1]
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
        url=f"http://{_bracket(settings.http_host)}:{port}{MCP_PATH}",
        bearer=settings.http_token is not None,
    )
    try:
        await server.serve(sockets)
    except SystemExit:  # uvicorn's way to say its start-up failed (it logged why)
        raise BridgeError(
            f"the HTTP server on {_bracket(settings.http_host)}:{port} could not start; "
            "see the log line above"
        ) from None
    finally:
        for sock in sockets:
            sock.close()
