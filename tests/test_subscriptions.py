"""Resource subscriptions through real MCP clients: in-memory fastmcp clients in both protocol
eras, fastmcp's HTTP client and a raw JSON-RPC client over a real uvicorn (stateful Streamable
HTTP). Nothing of fastmcp/mcp is mocked; waits are on events, under deadlines."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest
from fastmcp import Client, FastMCP
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated, listen
from mcp.shared.exceptions import MCPError

from bridge.mcp.subscriptions import (
    SeamBroken,
    SubscriptionHub,
    SubscriptionStats,
    advertised_subscribe,
    check_seams,
)

from .mcpkit import DEADLINE_S, Inbox, RawHttpClient, http, serve_http, subscribe, unsubscribe

pytestmark = pytest.mark.anyio

A, B, WEB_LOGS = "tilt://a", "tilt://b", "tilt://r/web"


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp is asyncio-only in practice."""
    return "asyncio"


def make_server() -> tuple[FastMCP, SubscriptionHub]:
    mcp = FastMCP("subscriptions-test")

    @mcp.resource(A)
    def a() -> str:
        return "a"

    @mcp.resource(B)
    def b() -> str:
        return "b"

    @mcp.resource("tilt://r/{name}")
    def r(name: str) -> str:
        return name

    hub = SubscriptionHub()
    hub.install(mcp)
    return mcp, hub


def idle(stats: SubscriptionStats) -> bool:
    return stats == SubscriptionStats(sessions=0, subscriptions=0, listeners=0)


# -- seams and capability -------------------------------------------------------------------


def test_seams_hold_on_the_installed_fastmcp_and_mcp() -> None:
    """If this fails after an upgrade, bridge/mcp/subscriptions.py needs updating."""
    mcp, _ = make_server()
    check_seams()
    check_seams(mcp)


def test_check_seams_names_the_broken_seam() -> None:
    class NotFastMCP:
        pass

    with pytest.raises(SeamBroken, match=r"FastMCP\._mcp_server"):
        check_seams(NotFastMCP())  # type: ignore[arg-type]


def test_fastmcp_alone_does_not_advertise_subscribe_and_the_hub_does_in_both_eras() -> None:
    bare = FastMCP("bare")
    assert not advertised_subscribe(bare, "2025-11-25")
    assert not advertised_subscribe(bare, "2026-07-28")
    mcp, hub = make_server()
    hub.install(mcp)  # idempotent
    assert advertised_subscribe(mcp, "2025-11-25")
    assert advertised_subscribe(mcp, "2026-07-28")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_clients_see_resources_subscribe_true(mode: str) -> None:
    mcp, _ = make_server()
    async with Client(mcp, mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        caps = client.server_capabilities
        assert caps is not None
        assert caps.resources is not None
        assert caps.resources.subscribe is True


# -- handshake era, in memory ---------------------------------------------------------------


async def test_legacy_subscriber_gets_exactly_its_uris_until_it_unsubscribes() -> None:
    mcp, hub = make_server()
    inbox = Inbox()
    async with Client(mcp, mode="legacy", message_handler=inbox) as client:
        await subscribe(client, A)
        await subscribe(client, A)  # twice is once
        assert hub.subscribed_uris() == {A}
        assert hub.stats() == SubscriptionStats(sessions=1, subscriptions=1, listeners=0)

        with anyio.fail_after(DEADLINE_S):
            assert await hub.notify_updated([A, B]) == 1
            await inbox.wait_for(lambda i: len(i.updated()) >= 1)
            assert await hub.notify_list_changed() == 1
            await inbox.wait_for(lambda i: i.list_changed() == 1)
        assert inbox.updated() == [A]  # the hub sent exactly one notification, for A

        await unsubscribe(client, A)
        assert hub.subscribed_uris() == frozenset()
        with anyio.fail_after(DEADLINE_S):
            assert await hub.notify_updated([A]) == 0
            assert await hub.notify_list_changed() == 1
            await inbox.wait_for(lambda i: i.list_changed() == 2)
        assert inbox.updated() == [A]
    assert idle(hub.stats())


async def test_template_uris_match_by_exact_string() -> None:
    mcp, hub = make_server()
    inbox = Inbox()
    async with Client(mcp, mode="legacy", message_handler=inbox) as client:
        await subscribe(client, WEB_LOGS)
        with anyio.fail_after(DEADLINE_S):
            sent = await hub.notify_updated(["tilt://r/api", "tilt://r/{name}", WEB_LOGS])
            assert sent == 1
            await inbox.wait_for(lambda i: len(i.updated()) == 1)
        assert inbox.updated() == [WEB_LOGS]


async def test_per_session_limit_is_an_error_the_client_sees() -> None:
    mcp = FastMCP("limited")
    hub = SubscriptionHub(max_subscriptions_per_session=2)
    hub.install(mcp)
    async with Client(mcp, mode="legacy") as client:
        await subscribe(client, "tilt://x/1")
        await subscribe(client, "tilt://x/2")
        with pytest.raises(MCPError, match="limit"):
            await subscribe(client, "tilt://x/3")
        await subscribe(client, "tilt://x/2")  # already held: fine
    assert idle(hub.stats())


async def test_disconnected_sessions_are_forgotten() -> None:
    mcp, hub = make_server()
    async with AsyncExitStack() as stack:
        for _ in range(5):
            client = await stack.enter_async_context(Client(mcp, mode="legacy"))
            await subscribe(client, A)
            await subscribe(client, WEB_LOGS)
        assert hub.stats() == SubscriptionStats(sessions=5, subscriptions=10, listeners=0)
    assert idle(hub.stats())
    assert hub.subscribed_uris() == frozenset()
    assert await hub.notify_updated([A, WEB_LOGS]) == 0


# -- 2026-07-28, in memory --------------------------------------------------------------------


async def test_listen_stream_gets_updates_for_its_uris_only() -> None:
    mcp, hub = make_server()
    async with Client(mcp) as client:
        assert client.protocol_version == "2026-07-28"
        async with listen(
            client.session, resource_subscriptions=[WEB_LOGS], resources_list_changed=True
        ) as stream:
            assert hub.stats() == SubscriptionStats(sessions=0, subscriptions=1, listeners=1)
            assert hub.subscribed_uris() == {WEB_LOGS}
            with anyio.fail_after(DEADLINE_S):
                assert await hub.notify_updated([A, WEB_LOGS]) == 1
                assert await anext(stream) == ResourceUpdated(uri=WEB_LOGS)
                assert await hub.notify_list_changed() == 1
                # the stream is ordered: nothing for A came between
                assert await anext(stream) == ResourcesListChanged()
        with anyio.fail_after(DEADLINE_S):
            await hub.wait_until(idle)
    assert idle(hub.stats())


async def test_both_eras_at_once() -> None:
    mcp, hub = make_server()
    inbox = Inbox()
    async with (
        Client(mcp, mode="legacy", message_handler=inbox) as legacy,
        Client(mcp) as modern,
        listen(modern.session, resource_subscriptions=[A]) as stream,
    ):
        await subscribe(legacy, A)
        assert hub.stats() == SubscriptionStats(sessions=1, subscriptions=2, listeners=1)
        with anyio.fail_after(DEADLINE_S):
            assert await hub.notify_updated([A]) == 2
            assert await anext(stream) == ResourceUpdated(uri=A)
            await inbox.wait_for(lambda i: i.updated() == [A])


# -- claude/channel -------------------------------------------------------------------------


async def test_channel_push_reaches_clients_that_declare_nothing_as_claude_code_does() -> None:
    mcp, hub = make_server()
    async with (
        serve_http(mcp) as server,
        RawHttpClient.connect(server.url, experimental=None) as claude,
    ):
        with anyio.fail_after(DEADLINE_S):
            await server.wait_get_streams(1)
            assert await hub.notify_channel("web is red", {"resource": "web"}) == 1
            assert await hub.notify_list_changed() == 1  # sentinel on the same stream
            seen = await claude.read_until("notifications/resources/list_changed")
    assert [m["method"] for m in seen] == [
        "notifications/claude/channel",
        "notifications/resources/list_changed",
    ]
    assert seen[0]["params"] == {"content": "web is red", "meta": {"resource": "web"}}


async def test_the_bridge_declares_the_channel_capability_only_when_asked() -> None:
    from bridge.mcp.context import BridgeContext
    from bridge.mcp.server import build_server
    from bridge.settings import Settings
    from bridge.store import Store

    for enabled in (True, False):
        ctx = BridgeContext(store=Store(), settings=Settings(channel_push=enabled))
        async with Client(build_server(ctx), mode="legacy") as client:
            caps = client.server_capabilities
            assert caps is not None
            declared = (caps.experimental or {}).get("claude/channel")
            assert (declared is not None) is enabled


# -- real Streamable HTTP -------------------------------------------------------------------


async def test_http_legacy_subscriber_gets_updates_on_its_get_stream() -> None:
    mcp, hub = make_server()
    inbox = Inbox()
    async with serve_http(mcp) as server:
        async with Client(http(server.url), mode="legacy", message_handler=inbox) as client:
            await subscribe(client, A)
            with anyio.fail_after(DEADLINE_S):
                await server.wait_get_streams(1)
                assert await hub.notify_updated([B, A]) == 1
                assert await hub.notify_list_changed() == 1
                # the client dispatches each notification in its own task: wait for both
                await inbox.wait_for(lambda i: i.list_changed() == 1 and len(i.updated()) == 1)
            assert inbox.updated() == [A]
        with anyio.fail_after(DEADLINE_S):
            await hub.wait_until(idle)


async def test_http_listen_stream_in_the_2026_era() -> None:
    mcp, hub = make_server()
    async with serve_http(mcp) as server, Client(http(server.url)) as client:
        assert client.protocol_version == "2026-07-28"
        async with listen(client.session, resource_subscriptions=[WEB_LOGS]) as stream:
            with anyio.fail_after(DEADLINE_S):
                assert await hub.notify_updated([A, WEB_LOGS]) == 1
                assert await anext(stream) == ResourceUpdated(uri=WEB_LOGS)
        with anyio.fail_after(DEADLINE_S):
            await hub.wait_until(idle)


async def test_http_fifty_concurrent_sessions_are_all_notified_then_forgotten() -> None:
    n = 50
    mcp, hub = make_server()
    inboxes = [Inbox() for _ in range(n)]
    release = anyio.Event()

    async def session(i: int, inbox: Inbox, url: str) -> None:
        async with Client(http(url), mode="legacy", message_handler=inbox) as client:
            await subscribe(client, f"tilt://r/svc{i % 5}")
            await release.wait()

    async with serve_http(mcp) as server:
        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tg:
                for i, inbox in enumerate(inboxes):
                    tg.start_soon(session, i, inbox, server.url)
                await hub.wait_until(lambda s: s.subscriptions == n)
                assert hub.stats() == SubscriptionStats(sessions=n, subscriptions=n, listeners=0)
                await server.wait_get_streams(n)
                sent = await hub.notify_updated([f"tilt://r/svc{i}" for i in range(5)])
                assert sent == n
                for i, inbox in enumerate(inboxes):
                    await inbox.wait_for(lambda box: len(box.updated()) == 1)
                    assert inbox.updated() == [f"tilt://r/svc{i % 5}"]
                release.set()
            await hub.wait_until(idle)


async def test_stateless_http_refuses_legacy_subscribe_with_a_clear_error() -> None:
    mcp, hub = make_server()
    async with (
        serve_http(mcp, stateless=True) as server,
        Client(http(server.url), mode="legacy") as client,
    ):
        with pytest.raises(MCPError, match="stateful"):
            await subscribe(client, A)
    assert idle(hub.stats())
