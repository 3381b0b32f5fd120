"""Which subscriptions the bridge accepts: only its own URI shapes (a name that does not
exist yet included: it may appear), percent-encoded names decoded once, at most 2 KB per URI
and a cap per session or listen stream. Refusals are MCP errors in our words; a refused URI
is stored nowhere, so 200 subscriptions of 1 MB each leave the process's memory as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as t
import pytest
from fastmcp import Client
from mcp.client.subscriptions import listen
from mcp.shared.exceptions import MCPError

from bridge.mcp.app import Assembled, assemble
from bridge.mcp.registry import SubscriptionStats
from bridge.mcp.uris import MAX_URI_CHARS, BridgeUri, UriRefused, parse
from bridge.settings import Settings
from bridge.store import Store

from .mcpkit import ACCEPT, INIT, subscribe
from .test_http_process import free_port

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("tilt://status", BridgeUri("status")),
        ("tilt://resources", BridgeUri("resources")),
        ("tilt://resources/web", BridgeUri("resource", "web")),
        ("tilt://resources/web/logs", BridgeUri("logs", "web")),
        ("tilt://resources/not-there-yet", BridgeUri("resource", "not-there-yet")),
        ("tilt://resources/my%20app", BridgeUri("resource", "my app")),
        ("tilt://resources/a%23b%3Fc/logs", BridgeUri("logs", "a#b?c")),
        ("tilt://resources/%E2%9C%93", BridgeUri("resource", "✓")),
        ("tilt://resources/x%2541", None),  # decoded once: "x%41", and Tilt has no "%"
        ("tilt://resources/logs", BridgeUri("resource", "logs")),
        ("tilt://resources/logs/logs", BridgeUri("logs", "logs")),
        ("tilt://resources/k8s:deploy@ns", BridgeUri("resource", "k8s:deploy@ns")),
    ],
)
def test_the_bridges_uri_shapes_decode_the_name_exactly_once(
    uri: str, parsed: BridgeUri | None
) -> None:
    if parsed is None:
        with pytest.raises(UriRefused, match="no Tilt resource can be called"):
            parse(uri)
    else:
        assert parse(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("tilt://resources/web%2Flogs", "no Tilt resource can be called"),
        ("tilt://resources/web%2flogs", "no Tilt resource can be called"),
        ("tilt://resources/a/b", "percent-encode the name"),
        ("tilt://resources/", "names no resource"),
        ("tilt://resources//logs", "names no resource"),
        ("tilt://resources/a b", "percent-encode the name"),
        ("tilt://resources/a#b", "percent-encode the name"),
        ("tilt://resources/a?b", "percent-encode the name"),
        ("tilt://resources/%zz", "percent-encode the name"),
        ("tilt://resources/%", "percent-encode the name"),
        ("tilt://resources/%ff", "not UTF-8"),
        ("tilt://status/", "unknown resource URI"),
        ("TILT://status", "unknown resource URI"),
        ("file:///etc/passwd", "unknown resource URI"),
        ("", "unknown resource URI"),
        ("tilt://resources/" + "x" * MAX_URI_CHARS, "over the 2048-character limit"),
    ],
)
def test_anything_else_is_refused_with_the_reason_and_the_shapes(uri: str, reason: str) -> None:
    with pytest.raises(UriRefused) as caught:
        parse(uri)
    message = str(caught.value)
    assert reason in message
    assert len(message) < 500  # the value is quoted cut to ~100 characters


@asynccontextmanager
async def bridge(mode: str = "legacy") -> AsyncIterator[tuple[Assembled, Client[Any]]]:
    app = await assemble(Settings(), Store(), None)
    async with Client(app.mcp, mode=mode) as client:
        yield app, client


async def test_a_subscription_outside_the_shapes_is_a_clean_error_and_stored_nowhere() -> None:
    async with bridge() as (app, client):
        await subscribe(client, "tilt://resources/not-there-yet")  # it may appear later
        await subscribe(client, "tilt://resources/my%20app/logs")
        for uri in ("tilt://resources/web%2Flogs", "tilt://nope", "x" * 1_000_000):
            with pytest.raises(MCPError) as caught:
                await subscribe(client, uri)
            assert caught.value.code == t.INVALID_PARAMS
            assert caught.value.message.startswith("cannot subscribe")
            assert len(caught.value.message) < 500
        assert app.hub.subscribed_uris() == {
            "tilt://resources/not-there-yet",
            "tilt://resources/my%20app/logs",
        }
        assert app.hub.stats() == SubscriptionStats(sessions=1, subscriptions=2, listeners=0)


async def test_a_listen_stream_is_checked_the_same_way_and_capped() -> None:
    async with bridge("auto") as (app, client):
        assert client.protocol_version == "2026-07-28"
        with pytest.raises(MCPError, match="cannot subscribe: unknown resource URI 'tilt://x'"):
            async with listen(client.session, resource_subscriptions=["tilt://status", "tilt://x"]):
                pass
        many = [f"tilt://resources/r{i}" for i in range(1001)]
        with pytest.raises(MCPError, match="names 1001 resources; the limit per stream is 1000"):
            async with listen(client.session, resource_subscriptions=many):
                pass
        assert app.hub.stats().listeners == 0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
async def test_two_hundred_one_megabyte_subscriptions_do_not_grow_the_process() -> None:
    """Over real Streamable HTTP, to the real process: RSS grew ~218 MiB before the cap."""
    port = free_port()
    with subprocess.Popen(  # noqa: ASYNC220 - started once; the test then awaits its answers
        [sys.executable, "-m", "bridge", "--demo", "--transport", "http", "--http-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BRIDGE_LOG_FORMAT": "json"},
    ) as proc:
        base = f"http://127.0.0.1:{port}/mcp"
        try:
            async with httpx2.AsyncClient(timeout=30) as http:
                with anyio.fail_after(30):
                    while True:  # the process has no other readiness signal than answering
                        try:
                            await http.get(f"http://127.0.0.1:{port}/healthz")
                            break
                        except httpx2.TransportError:
                            await anyio.sleep(0.1)
                r = await http.post(base, json=INIT, headers=ACCEPT)
                headers = {
                    **ACCEPT,
                    "mcp-session-id": r.headers["mcp-session-id"],
                    "mcp-protocol-version": "2025-11-25",
                }
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await http.post(base, json=initialized, headers=headers)

                async def subscribe_raw(i: int, uri: str) -> str:
                    body = {
                        "jsonrpc": "2.0",
                        "id": 100 + i,
                        "method": "resources/subscribe",
                        "params": {"uri": uri},
                    }
                    return (await http.post(base, json=body, headers=headers)).text

                for i in range(20):  # warm up the same path with small refused URIs
                    await subscribe_raw(i, f"tilt://nope/{i}")
                before = _rss_kib(proc.pid)
                for i in range(200):
                    answer = await subscribe_raw(
                        1000 + i, f"tilt://resources/{i}-" + "x" * (1024 * 1024)
                    )
                    assert "a resource URI may have at most 2048 characters" in answer
                    assert len(answer) < 2000
                after = _rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    growth_mib = (after - before) / 1024
    assert growth_mib < 40, f"RSS grew {growth_mib:.1f} MiB"
