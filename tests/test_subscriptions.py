"""Resource subscriptions: the registry (plain data) and delivery (deadlines, stalls) as units
on a fake clock, then the hub through real MCP clients: in-memory fastmcp clients in both
protocol eras, fastmcp's HTTP client and a raw JSON-RPC client over a real uvicorn (stateful
Streamable HTTP). Nothing of fastmcp/mcp is mocked; waits are on events, under deadlines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import pytest
from fastmcp import Client, FastMCP
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated, listen
from mcp.shared.exceptions import MCPError
from trio.testing import MockClock

from bridge.mcp import channel
from bridge.mcp.delivery import Delivery
from bridge.mcp.registry import LimitReached, Registry, SubscriptionStats
from bridge.mcp.subscriptions import SubscriptionHub, advertised_subscribe

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


# -- the registry: plain data ----------------------------------------------------------------


def test_registry_indexes_subscribers_by_exact_uri_and_forgets_a_closed_session() -> None:
    changes: list[SubscriptionStats] = []
    reg: Registry[str] = Registry()
    reg.on_change = lambda: changes.append(reg.stats())
    assert reg.open("s1")
    assert not reg.open("s1")  # once
    reg.open("s2")
    assert reg.subscribe("s1", A)
    assert not reg.subscribe("s1", A)  # twice is once
    reg.subscribe("s1", WEB_LOGS)
    reg.subscribe("s2", A)
    assert sorted(reg.subscribers(A)) == ["s1", "s2"]
    assert reg.subscribers("tilt://r/{name}") == []
    assert reg.subscribed_uris() == {A, WEB_LOGS}
    assert reg.stats() == SubscriptionStats(sessions=2, subscriptions=3, listeners=0)

    assert reg.unsubscribe("s2", A)
    assert not reg.unsubscribe("s2", A)
    assert reg.subscribers(A) == ["s1"]
    assert reg.close("s1")
    assert not reg.close("s1")
    assert reg.subscribed_uris() == frozenset()
    assert reg.subscribers(A) == []
    assert reg.sessions() == ["s2"]
    # every real change was announced, no-ops were not
    assert [c.subscriptions for c in changes] == [0, 0, 1, 2, 3, 2, 0]


def test_registry_limits_uris_per_session_and_per_listen_stream() -> None:
    reg: Registry[str] = Registry(max_per_session=2)
    reg.open("s")
    reg.subscribe("s", "tilt://x/1")
    reg.subscribe("s", "tilt://x/2")
    with pytest.raises(LimitReached, match=r"'tilt://x/3'.*2 resource subscriptions, the limit"):
        reg.subscribe("s", "tilt://x/3")
    assert not reg.subscribe("s", "tilt://x/2")  # already held: fine
    with pytest.raises(LimitReached, match="names 3 resources; the limit per stream is 2"):
        reg.add_listener(frozenset({"a", "b", "c"}), list_changed=False)
    with pytest.raises(ValueError, match="at least 1"):
        Registry(max_per_session=0)


def test_registry_counts_listen_streams_per_uri_until_removed() -> None:
    reg: Registry[str] = Registry()
    one = reg.add_listener(frozenset({A}), list_changed=True)
    two = reg.add_listener(frozenset({A, B}), list_changed=False)
    assert (reg.listening(A), reg.listening(B), reg.listening(WEB_LOGS)) == (2, 1, 0)
    assert reg.listening_for_list_changed() == 1
    assert reg.stats() == SubscriptionStats(sessions=0, subscriptions=3, listeners=2)
    reg.remove_listener(one)
    reg.remove_listener(one)  # harmless
    assert reg.listening_for_list_changed() == 0
    reg.remove_listener(two)
    assert reg.subscribed_uris() == frozenset()


# -- delivery: deadlines and stalls, on trio's MockClock (exact virtual time) -----------------


@dataclass(eq=False)
class FakePeer:
    """A client's standalone channel that we control: reads, stops reading, or breaks."""

    session_id: str
    stuck: bool = False
    broken: bool = False
    got: list[tuple[str, Mapping[str, object] | None]] = field(default_factory=list)
    after_send: Callable[[], None] = lambda: None

    @property
    def outbound(self) -> FakePeer:
        return self

    async def notify(self, method: str, params: Mapping[str, object] | None) -> None:
        if self.broken:
            raise anyio.BrokenResourceError
        if self.stuck:
            await anyio.Event().wait()  # a client whose stream is full: never returns
        self.got.append((method, params))
        self.after_send()


class TestDelivery:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, object]]:
        return ("trio", {"clock": MockClock(autojump_threshold=0)})

    @staticmethod
    def delivery(*peers: FakePeer) -> tuple[Delivery[FakePeer], set[FakePeer], list[FakePeer]]:
        open_, dropped = set(peers), []

        def drop(peer: FakePeer) -> None:
            dropped.append(peer)
            open_.discard(peer)

        return Delivery(timeout_s=2.0, is_open=open_.__contains__, drop=drop), open_, dropped

    async def test_a_client_that_stops_reading_costs_one_timeout_per_batch_and_goes_after_3(
        self,
    ) -> None:
        slow, fast = FakePeer("slow", stuck=True), FakePeer("fast")
        delivery, _, dropped = self.delivery(slow, fast)
        batch = [("n/a", {"uri": A}), ("n/b", {"uri": B})]
        for stalls in (1, 2, 3):
            start = anyio.current_time()
            assert await delivery.send({slow: batch, fast: batch}) == 2
            assert anyio.current_time() - start == 2.0  # one timeout, not one per item
            assert delivery.stalls(slow) == (stalls if stalls < 3 else 0)
            assert dropped == ([slow] if stalls == 3 else [])
        start = anyio.current_time()
        assert await delivery.send({slow: batch, fast: batch}) == 2
        assert anyio.current_time() == start  # the dropped client costs nothing any more
        assert dropped == [slow]
        assert len(fast.got) == 8

    async def test_a_batch_read_in_time_resets_the_stall_count(self) -> None:
        peer = FakePeer("flaky", stuck=True)
        delivery, _, dropped = self.delivery(peer)
        for _ in range(2):
            await delivery.send({peer: [("n/x", None)]})
        peer.stuck = False
        assert await delivery.send({peer: [("n/x", None)]}) == 1
        assert delivery.stalls(peer) == 0
        peer.stuck = True
        for _ in range(2):
            await delivery.send({peer: [("n/x", None)]})
        assert dropped == []

    async def test_a_broken_client_is_dropped_at_once_and_the_rest_of_its_batch_skipped(
        self,
    ) -> None:
        broken, ok = FakePeer("broken", broken=True), FakePeer("ok")
        delivery, open_, dropped = self.delivery(broken, ok)
        plan = {broken: [("n/a", None), ("n/b", None)], ok: [("n/a", None)]}
        assert await delivery.send(plan) == 1
        assert dropped == [broken]
        assert open_ == {ok}
        assert ok.got == [("n/a", None)]

    async def test_a_client_that_closes_mid_batch_gets_nothing_more(self) -> None:
        peer = FakePeer("closing")
        delivery, open_, dropped = self.delivery(peer)
        peer.after_send = open_.clear  # its connection closed while the batch was going out
        assert await delivery.send({peer: [("n/a", None), ("n/b", None)]}) == 1
        assert peer.got == [("n/a", None)]
        assert dropped == []


# -- capability -------------------------------------------------------------------------


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
            event = channel.ChannelEvent("web is red", {"resource": "web"})
            assert await channel.push(hub, event) == 1
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
