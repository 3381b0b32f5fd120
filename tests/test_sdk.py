"""The private fastmcp/mcp seams in bridge/mcp/_sdk.py, each driven for real.

Run after every dependency upgrade (``.ci/upgrade-deps`` does): a failure here names the seam
that broke, before the subscription tests fail in a more roundabout way. Each test goes
through an in-memory fastmcp ``Client`` and the SDK, in both protocol eras where the seam
exists in both; nothing of fastmcp/mcp is mocked.
"""

from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import mcp_types as t
import pytest
from fastmcp import Client, Context, FastMCP
from mcp.client.subscriptions import ResourceUpdated, listen
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bridge.mcp import _sdk

from .mcpkit import DEADLINE_S, INIT, Inbox, subscribe

pytestmark = pytest.mark.anyio

ERAS = pytest.mark.parametrize(
    ("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")]
)
URI = "tilt://seam"


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp is asyncio-only in practice."""
    return "asyncio"


# -- the start-up check -------------------------------------------------------------------


def test_check_seams_passes_on_the_installed_fastmcp_and_mcp() -> None:
    """If this fails after an upgrade, the message says what to update in _sdk.py."""
    _sdk.check_seams()
    _sdk.check_seams(FastMCP("seams"))


def test_a_broken_seam_is_named_with_the_installed_and_the_verified_versions() -> None:
    class NotFastMCP:
        pass

    with pytest.raises(_sdk.SeamBroken) as caught:
        _sdk.check_seams(NotFastMCP())  # type: ignore[arg-type]
    message = str(caught.value)
    assert "FastMCP._mcp_server is no longer the SDK's low-level Server" in message
    assert f"fastmcp {importlib.metadata.version('fastmcp')}" in message
    assert f"mcp {importlib.metadata.version('mcp')}" in message
    assert "Pin fastmcp==4.2.3 mcp==2.3.0" in message
    with pytest.raises(_sdk.SeamBroken, match=r"FastMCP\._mcp_server"):
        _sdk.add_request_handler(NotFastMCP(), "x", t.RequestParams, _never)  # type: ignore[arg-type]


async def _never(ctx: ServerRequestContext[Any, Any], params: t.RequestParams) -> t.EmptyResult:
    raise AssertionError("not called")


# -- FastMCP._mcp_server: serving spec methods fastmcp lacks ------------------------------


@ERAS
async def test_request_handlers_added_on_the_lowlevel_server_are_served_and_advertised(
    mode: str, version: str
) -> None:
    mcp = FastMCP("seams")
    assert not _sdk.has_request_handler(mcp, "resources/subscribe")
    resources = _sdk.capabilities(mcp, version).resources
    assert not (resources and resources.subscribe)
    subscribed: list[str] = []

    async def on_subscribe(
        ctx: ServerRequestContext[Any, Any], params: t.SubscribeRequestParams
    ) -> t.EmptyResult:
        subscribed.append(params.uri)
        return t.EmptyResult()

    async def on_unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: t.UnsubscribeRequestParams
    ) -> t.EmptyResult:
        return t.EmptyResult()

    bus = InMemorySubscriptionBus()
    _sdk.add_request_handler(mcp, "resources/subscribe", t.SubscribeRequestParams, on_subscribe)
    _sdk.add_request_handler(
        mcp, "resources/unsubscribe", t.UnsubscribeRequestParams, on_unsubscribe
    )
    _sdk.add_request_handler(
        mcp, "subscriptions/listen", t.SubscriptionsListenRequestParams, ListenHandler(bus)
    )
    assert _sdk.has_request_handler(mcp, "resources/subscribe")
    # the SDK derives the capability from the handlers: nothing else to patch
    resources = _sdk.capabilities(mcp, version).resources
    assert resources is not None
    assert resources.subscribe is True

    async with Client(mcp, mode=mode) as client:
        assert client.protocol_version == version
        caps = client.server_capabilities
        assert caps is not None
        assert caps.resources is not None
        assert caps.resources.subscribe is True
        with anyio.fail_after(DEADLINE_S):
            if mode == "legacy":
                await subscribe(client, URI)
                assert subscribed == [URI]
            else:
                async with listen(client.session, resource_subscriptions=[URI]) as stream:
                    await bus.publish(ResourceUpdated(uri=URI))
                    assert await anext(stream) == ResourceUpdated(uri=URI)


# -- Server.middleware (provisional): seeing every message --------------------------------


@ERAS
async def test_the_outermost_middleware_sees_every_request_even_refused_ones(
    mode: str, version: str
) -> None:
    mcp = FastMCP("seams")
    seen: list[str] = []

    async def track(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        seen.append(ctx.method)
        return await call_next(ctx)

    _sdk.add_outermost_middleware(mcp, track)
    async with Client(mcp, mode=mode) as client:
        await client.list_tools()
        await client.list_resources()
        # fastmcp serves no resources/subscribe: the middleware still sees the request
        with pytest.raises(Exception, match="Method not found"):
            await subscribe(client, URI)
    assert {"tools/list", "resources/list", "resources/subscribe"} <= set(seen)
    if mode == "legacy":
        assert seen[0] == "initialize"


# -- ServerSession._connection: the per-client Connection ---------------------------------


async def test_the_connection_is_one_stable_object_per_handshake_client_that_can_notify() -> None:
    """What the hub keys subscribers by: the same ``Connection`` for every request of one
    client, a different one per client, with a standalone channel that reaches the client
    and an exit stack that runs when the client goes away."""
    mcp = FastMCP("seams")
    methods: dict[Connection, list[str]] = {}  # Connection hashes by identity
    closed: list[Connection] = []
    all_closed = anyio.Event()

    def on_close(connection: Connection) -> None:
        closed.append(connection)
        if len(closed) == 2:
            all_closed.set()

    async def track(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        connection = _sdk.connection_of(ctx)
        if connection not in methods:
            connection.exit_stack.callback(on_close, connection)
        methods.setdefault(connection, []).append(ctx.method)
        return await call_next(ctx)

    _sdk.add_outermost_middleware(mcp, track)
    inbox = Inbox()
    async with (
        Client(mcp, mode="legacy", message_handler=inbox, client_info=_info("one")) as one,
        Client(mcp, mode="legacy", client_info=_info("two")) as two,
    ):
        await one.ping()
        await one.list_tools()
        await two.ping()
        assert len(methods) == 2  # one Connection per client, whatever the request
        by_name = {_name(c): m for c, m in methods.items()}
        assert by_name["one"][0] == "initialize"
        assert {"ping", "tools/list"} <= set(by_name["one"])
        assert "tools/list" not in by_name["two"]
        first = next(c for c in methods if _name(c) == "one")
        assert first.protocol_version == "2025-11-25"
        assert first.has_standalone_channel
        assert first.initialized.is_set()
        with anyio.fail_after(DEADLINE_S):
            await first.outbound.notify("notifications/resources/updated", {"uri": URI})
            await inbox.wait_for(lambda i: i.updated() == [URI])
    with anyio.fail_after(DEADLINE_S):
        await all_closed.wait()
    assert set(closed) == set(methods)


def _name(connection: Connection) -> str:
    params = connection.client_params
    return params.client_info.name if params is not None else "?"


async def test_a_2026_request_comes_on_a_modern_connection() -> None:
    """The hub tells the eras apart by the connection's protocol version: a 2026-07-28
    connection lives for one request, so it is never kept as a subscriber."""
    mcp = FastMCP("seams")
    versions: list[str] = []

    async def track(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        versions.append(_sdk.connection_of(ctx).protocol_version)
        return await call_next(ctx)

    _sdk.add_outermost_middleware(mcp, track)
    async with Client(mcp) as client:
        assert client.protocol_version == "2026-07-28"
        await client.list_tools()
    assert versions
    assert all(v in MODERN_PROTOCOL_VERSIONS for v in versions)


def _info(name: str) -> t.Implementation:
    return t.Implementation(name=name, version="0")


# -- the session-state store: fastmcp's, without key_value ------------------------------


@ERAS
async def test_session_state_through_the_light_store_is_what_fastmcps_store_gives(
    mode: str, version: str
) -> None:
    """The same calls on a server with fastmcp's own store and on one with ours: the
    same answers (in 2026-07-28 there is no session, so nothing carries over)."""

    async def run(light: bool) -> tuple[list[object], Any]:
        server: FastMCP[Any] = FastMCP("seam")
        store = _sdk.install_light_state_store(server) if light else None

        @server.tool
        async def remember(ctx: Context, value: str) -> str:
            before = await ctx.get_state("k")
            await ctx.set_state("k", value)
            return f"{before}->{await ctx.get_state('k')}"

        async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
            got: list[object] = [
                (await client.call_tool("remember", {"value": v})).data for v in "ab"
            ]
            got.append([t.name for t in await client.list_tools()])
        if store is not None:
            assert vars(server)["_FastMCP__state_store"] is store  # fastmcp used ours
        return got, store

    theirs, _ = await run(light=False)
    ours, store = await run(light=True)
    assert store is not None
    assert ours == theirs
    assert theirs[0] == "None->a"
    assert theirs[1] == ("a->b" if version == "2025-11-25" else "None->b")


async def test_the_light_store_round_trips_as_json_expires_and_stays_bounded() -> None:
    from fastmcp.server.server import StateValue

    now = [0.0]
    store = _sdk.LightStateStore(max_entries=3, clock=lambda: now[0])
    value = StateValue(value={"rules": [1]})
    await store.put(key="a", value=value, ttl=10)
    value.value["rules"].append(2)  # the caller's object is not the stored one
    got = await store.get(key="a")
    assert got is not None
    assert got.value == {"rules": [1]}
    got.value["rules"].append(3)  # nor is what a reader gets back
    again = await store.get(key="a")
    assert again is not None
    assert again.value == {"rules": [1]}
    now[0] = 10.0
    assert await store.get(key="a") is None  # expired at its ttl
    await store.put(key="t", value=StateValue(value=(1, 2)))
    got_t = await store.get(key="t")
    assert got_t is not None
    assert got_t.value == [1, 2]  # as the adapter's JSON round trip gives it
    with pytest.raises(ValueError, match="serialize"):
        await store.put(key="bad", value=StateValue(value=object()))
    await store.delete(key="t")
    await store.put(key="old", value=StateValue(value=1), ttl=1)
    await store.put(key="b", value=StateValue(value="b"))
    await store.put(key="c", value=StateValue(value="c"))
    now[0] = 20.0  # "old" expired: it goes before any live entry
    await store.put(key="d", value=StateValue(value="d"))
    assert [await store.get(key=k) is not None for k in "bcd"] == [True, True, True]
    await store.put(key="e", value=StateValue(value="e"))
    assert len(store) == 3
    assert await store.get(key="b") is None  # then the oldest
    assert await store.delete(key="e") is True
    assert await store.delete(key="e") is False


def test_serving_a_session_never_imports_key_value_or_beartype(tmp_path: Path) -> None:
    """The real process over stdio (``-X importtime``): tools/list and a tool call are
    answered without fastmcp's key_value store, or the beartype it pulls in, being
    imported. (An in-process check cannot tell: fastmcp's Client imports key_value.)"""
    lines = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_status", "arguments": {}},
        },
    ]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err_path = tmp_path / "stderr"
    err_file = err_path.open("wb")  # importtime writes a lot: a pipe would fill and block
    proc = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "bridge",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err_file,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    proc.stdin.flush()
    watchdog = threading.Timer(60, proc.kill)  # a hung bridge fails the test, not CI
    watchdog.start()
    answered: set[int] = set()
    while answered != {1, 2, 3}:
        line = proc.stdout.readline()
        assert line, "the bridge closed stdout"
        msg = json.loads(line)
        if "id" in msg:
            assert "result" in msg, msg
            answered.add(msg["id"])
    proc.communicate(timeout=30)
    watchdog.cancel()
    err_file.close()
    imported = {
        row.rpartition("|")[2].strip().split(".")[0]
        for row in err_path.read_text().splitlines()
        if row.startswith("import time:")
    }
    assert "fastmcp" in imported  # the check sees the imports
    assert not imported & {"key_value", "beartype"}
