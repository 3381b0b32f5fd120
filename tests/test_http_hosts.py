"""The HTTP Host check (DNS rebinding): a request that names another host gets a 421 with a
one-line reason before any MCP session exists, ``/healthz`` included. Real uvicorn, real
sockets; the bridge's own HTTP app with its guard."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx2
import pytest
import uvicorn

from bridge.errors import ConfigError
from bridge.mcp.app import Assembled, assemble
from bridge.mcp.http import Guard, build_http_app, parse_host
from bridge.settings import Settings
from bridge.store import Store

from .mcpkit import ACCEPT, INIT

pytestmark = pytest.mark.anyio


@dataclass
class Served:
    base: str
    port: int
    app: Assembled


@asynccontextmanager
async def http_bridge(settings: Settings) -> AsyncIterator[Served]:
    store = Store()
    app = await assemble(settings, store, None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_http_app(app.mcp, settings, store), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        try:
            yield Served(f"http://127.0.0.1:{port}", port, app)
        finally:
            server.should_exit = True
    sock.close()


ALLOWED = [
    "127.0.0.1:{port}",
    "127.0.0.1",
    "localhost:{port}",
    "LocalHost:9999",
    "localhost.:{port}",
    "[::1]:{port}",
    "[::1]",
    "bridge.internal",  # --allowed-host bridge.internal: any port
    "bridge.internal:1234",
    "box:9000",  # --allowed-host box:9000: that port only
]
REFUSED = [
    "evil.example",
    "evil.example:{port}",
    "localhost.evil.example:{port}",
    "127.0.0.1.nip.io:{port}",
    "box:9001",
    "box",
    "",
    "[::1",
    "::1",
    "127.0.0.1:80:80",
    "127.0.0.1:port",
    "evil.example@127.0.0.1",
    "x" * 5000,
]
SETTINGS = Settings(allowed_hosts=("bridge.internal", "box:9000"))


@pytest.mark.parametrize("host", ALLOWED)
async def test_loopback_names_the_bind_address_and_allowed_hosts_are_served(host: str) -> None:
    async with http_bridge(SETTINGS) as s, httpx2.AsyncClient() as c:
        headers = {**ACCEPT, "host": host.format(port=s.port)}
        r = await c.post(s.base + "/mcp", json=INIT, headers=headers)
        assert r.status_code == 200, r.text
        assert "mcp-session-id" in r.headers
        assert (await c.get(s.base + "/healthz", headers=headers)).status_code == 200


@pytest.mark.parametrize("host", REFUSED)
async def test_a_foreign_host_without_origin_gets_421_and_no_session(host: str) -> None:
    """DNS rebinding from a non-browser (or a same-origin request, which sends no Origin):
    refused before the MCP app, so no session is created; /healthz too."""
    async with http_bridge(SETTINGS) as s, httpx2.AsyncClient() as c:
        headers = {**ACCEPT, "host": host.format(port=s.port)}
        r = await c.post(s.base + "/mcp", json=INIT, headers=headers)
        assert r.status_code == 421
        assert "mcp-session-id" not in r.headers
        reason = r.json()["error"]
        assert "\n" not in reason
        assert "is not this server (DNS rebinding guard)" in reason
        assert "--allowed-host" in reason
        assert len(reason) < 400  # the bad value is quoted cut, not echoed whole
        health = await c.get(s.base + "/healthz", headers=headers)
        assert health.status_code == 421
        assert "tilt" not in health.json()
        assert s.app.hub.stats().sessions == 0


async def test_a_request_without_host_is_refused() -> None:
    async with http_bridge(Settings()) as s:
        stream = await anyio.connect_tcp("127.0.0.1", s.port)
        async with stream:
            await stream.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            raw = b""
            with anyio.fail_after(10):
                while b"}" not in raw:
                    raw += await stream.receive()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 421")
    assert json.loads(body)["error"].startswith("no Host header")


async def test_the_origin_refusal_says_why_on_one_line() -> None:
    async with http_bridge(Settings()) as s, httpx2.AsyncClient() as c:
        r = await c.post(s.base + "/mcp", json=INIT, headers={**ACCEPT, "origin": "http://evil"})
        assert r.status_code == 403
        assert r.json()["error"] == (
            "Origin 'http://evil' is not allowed (DNS rebinding guard); add it with "
            "--allowed-origin if this browser page may use the bridge"
        )


def test_the_bind_address_is_allowed_and_a_malformed_allowed_host_is_a_config_error() -> None:
    store = Store()

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached")

    guard = Guard(app, Settings(http_host="192.168.7.7", http_port=8765), store)
    assert guard.host_refused("192.168.7.7:8765", None) is None
    assert guard.host_refused("10.0.0.1:8765", ("10.0.0.1", 8765)) is None  # arrived on it
    refused = guard.host_refused("10.0.0.2:8765", ("10.0.0.1", 8765))
    assert refused is not None
    assert "connect to http://192.168.7.7:8765/mcp" in refused
    v6 = Guard(app, Settings(http_host="fe80::1"), store)
    assert v6.host_refused("[fe80::1]:8765", None) is None
    with pytest.raises(ConfigError, match=r"--allowed-host 'a b' is not a host name"):
        Guard(app, Settings(allowed_hosts=("a b",)), store)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("LOCALHOST:8765", ("localhost", 8765)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]", ("::1", None)),
        ("example.com.", ("example.com", None)),
        ("::1", None),
        ("[::1]x", None),
        ("a:", None),
        ("a:123456", None),
        ("a:１２", None),  # full-width digits are digits to str.isdigit
        ("", None),
    ],
)
def test_parse_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_host(value) == parsed
