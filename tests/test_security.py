"""HTTP transport security and the promise that Tilt's token never leaks."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
import uvicorn
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from bridge.mcp.app import assemble
from bridge.mcp.http import build_http_app
from bridge.settings import Secret, Settings
from bridge.store import Store
from bridge.testing import FakeTilt

from .mcpkit import ACCEPT, INIT

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def http_bridge(settings: Settings) -> AsyncIterator[str]:
    """The bridge's real HTTP app (guard included) on 127.0.0.1:<free port>."""
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
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


async def test_healthz_answers_without_auth_and_reports_tilt() -> None:
    settings = Settings(http_token=Secret("s3cret-bearer"))
    async with http_bridge(settings) as base, httpx2.AsyncClient() as c:
        r = await c.get(base + "/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "tilt": "starting", "resources": 0}


async def test_bearer_token_is_required_when_set() -> None:
    settings = Settings(http_token=Secret("s3cret-bearer"))
    async with http_bridge(settings) as base, httpx2.AsyncClient() as c:
        r = await c.post(base + "/mcp", json=INIT, headers=ACCEPT)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.post(
            base + "/mcp", json=INIT, headers={**ACCEPT, "authorization": "Bearer nope"}
        )
        assert r.status_code == 401
        r = await c.post(
            base + "/mcp", json=INIT, headers={**ACCEPT, "authorization": "Bearer s3cret-bearer"}
        )
        assert r.status_code == 200
        assert "s3cret-bearer" not in r.text
    transport = StreamableHttpTransport(
        base + "/mcp", headers={"authorization": "Bearer s3cret-bearer"}
    )
    async with http_bridge(settings) as base:
        transport = StreamableHttpTransport(
            base + "/mcp", headers={"authorization": "Bearer s3cret-bearer"}
        )
        async with Client(transport) as client:
            r = await client.call_tool("get_status", {})
            assert r.structured_content is not None


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://evil.example", 403),
        ("http://localhost.evil.example:8765", 403),
        ("http://127.0.0.1:3000", 200),
        ("http://localhost:6274", 200),
        ("https://allowed.example", 200),
    ],
)
async def test_origin_is_checked_against_dns_rebinding(origin: str, status: int) -> None:
    settings = Settings(allowed_origins=("https://allowed.example",))
    async with http_bridge(settings) as base, httpx2.AsyncClient() as c:
        r = await c.post(base + "/mcp", json=INIT, headers={**ACCEPT, "origin": origin})
        assert r.status_code == status


def test_non_loopback_bind_requires_a_token() -> None:
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError, match="http-token"):
        Settings(transport="http", http_host="0.0.0.0").validate()
    Settings(transport="http", http_host="0.0.0.0", http_token=Secret("x")).validate()
    Settings(transport="http", http_host="::1").validate()


SECRET = "9f0c5b7e-tilt-token-do-not-leak-4c2a"


async def test_a_full_session_never_shows_tilts_token(tmp_path: Path) -> None:
    """Every output of a whole session (results, errors, resources, prompts, stderr logs at
    debug) is searched for the token and the csrf."""
    stderr = tmp_path / "stderr.log"
    async with FakeTilt(token=SECRET) as tilt:
        transport = StdioTransport(
            sys.executable,
            [
                "-m",
                "bridge",
                "--host",
                "127.0.0.1",
                "--port",
                str(tilt.port),
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            env={"TILT_TOKEN": SECRET, "PATH": "/usr/bin:/bin"},
            log_file=stderr,
        )
        seen: list[str] = []
        async with Client(transport) as client:
            with anyio.fail_after(20):
                while True:
                    r = await client.call_tool("get_status", {})
                    if (
                        r.structured_content
                        and r.structured_content["connection"]["state"] == "connected"
                    ):
                        break
                    await anyio.sleep(0.05)  # the subprocess has no other signal to wait on
            calls: list[tuple[str, dict[str, object]]] = [
                ("get_status", {}),
                ("list_resources", {}),
                ("describe_resource", {"name": "fail"}),
                ("describe_resource", {"name": "nope"}),
                ("get_logs", {"tail": 500}),
                ("get_logs", {"grep": "("}),
                ("get_changes", {}),
                ("list_buttons", {"include_builtin": True}),
                ("trigger", {"resource": "fail", "wait": True, "timeout_s": 20}),
                ("disable", {"resources": ["ticker"]}),
                ("enable", {"resources": ["ticker"]}),
                ("click_button", {"name": "ok-hello", "inputs": {"WHO": "x"}}),
                ("click_button", {"name": "ok-hello", "inputs": {"bad": "x"}}),
                ("set_trigger_mode", {"resource": "ok", "mode": "manual"}),
                ("wait_for", {"resources": ["web"], "timeout_s": 2}),
                (
                    "wait_for",
                    {"resources": ["lazy"], "condition": "build_finished", "timeout_s": 0.2},
                ),
            ]
            for name, args in calls:
                result = await client.call_tool(name, args, raise_on_error=False)
                seen += [getattr(c, "text", "") for c in result.content]
                seen.append(str(result.structured_content))
            for res in await client.list_resources():
                seen += [getattr(c, "text", "") for c in await client.read_resource(str(res.uri))]
            seen += [
                getattr(c, "text", "")
                for c in await client.read_resource("tilt://resources/fail/logs")
            ]
            for prompt, args in (
                ("triage", {}),
                ("debug_resource", {"resource": "fail"}),
                ("tail_logs", {"resource": "web"}),
            ):
                seen += [m.content.text for m in (await client.get_prompt(prompt, args)).messages]  # type: ignore[union-attr]
            csrf = tilt.csrf
            await tilt.restart()  # forces a reconnect, a new csrf, log lines about it
            with anyio.fail_after(20):
                await tilt.wait_connected(1)
            seen.append(str((await client.call_tool("get_status", {})).structured_content))
    blob = "\n".join(seen) + stderr.read_text()
    assert "tilt.stream.connected" in blob  # the debug log really was captured
    assert SECRET not in blob
    assert csrf not in blob
    assert tilt.csrf not in blob
