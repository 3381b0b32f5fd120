"""Live push end to end: fake Tilt → watcher → store → pump → real MCP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import anyio
import mcp_types as t
import pytest
from fastmcp import Client
from mcp.client.subscriptions import ResourceUpdated, listen

from bridge.core.state import Change, ConnectionInfo, Transition
from bridge.mcp.app import Assembled, assemble
from bridge.mcp.channel import channel_events
from bridge.testing import FakeTilt

from .harness import Stack, stack
from .mcpkit import DEADLINE_S, Inbox, RawHttpClient, http, serve_http, subscribe

pytestmark = pytest.mark.anyio

MANUAL = "tilt://resources/manual"
FAIL = "tilt://resources/fail"


@dataclass
class Live:
    stack: Stack
    app: Assembled

    @property
    def tilt(self) -> FakeTilt:
        return self.stack.tilt


@asynccontextmanager
async def live(tilt: FakeTilt, **settings: object) -> AsyncIterator[Live]:
    async with stack(tilt) as s:
        await s.connected()
        app = await assemble(replace(s.settings, **settings), s.store, s.http)  # type: ignore[arg-type]
        async with anyio.create_task_group() as tg:
            await tg.start(app.pump.run)
            yield Live(s, app)
            tg.cancel_scope.cancel()
        app.hub.close()


def ticker_log(text: str) -> dict[str, object]:
    """A delta with one log line for ``ticker``."""
    return {
        "logList": {
            "spans": {"localserve:1": {"manifestName": "ticker"}},
            "segments": [
                {"spanId": "localserve:1", "time": "2026-11-26T22:00:00.000001Z", "text": text}
            ],
        }
    }


def built(state_resources: object, name: str, since: str | None) -> bool:
    res = state_resources.get(name)  # type: ignore[attr-defined]
    return (
        res is not None
        and bool(res.build_history)
        and res.build_history[0].start_time != since
        and res.current_build is None
        and res.update_status in ("ok", "error")
    )


async def test_a_legacy_subscriber_hears_about_its_resource_and_nothing_else() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv:
        inbox = Inbox()
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, MANUAL)
            await subscribe(client, FAIL)
            before = lv.stack.store.state.resources["manual"].build_history[0].start_time
            await lv.stack.http.trigger("manual")
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(lambda st: built(st.resources, "manual", before))
                await inbox.wait_for(lambda i: MANUAL in i.updated())
            # let the pump publish everything, then check no stray notification
            with anyio.fail_after(DEADLINE_S):
                await lv.app.pump.caught_up(lv.stack.store.version)
            await client.ping()
            assert FAIL not in inbox.updated()
            frames = lv.stack.store.state.connection.frames
            assert len(inbox.updated()) <= frames  # at most one per URI per frame


async def test_a_2026_listener_gets_updates_for_its_uris() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv, Client(lv.app.mcp) as client:
        assert client.protocol_version == "2026-07-28"
        async with listen(client.session, resource_subscriptions=[MANUAL]) as stream:
            await lv.stack.http.trigger("manual")
            with anyio.fail_after(DEADLINE_S):
                assert await anext(stream) == ResourceUpdated(uri=MANUAL)


async def test_list_changed_when_a_tiltfile_edit_adds_and_removes_a_resource() -> None:
    async with FakeTilt(initial="06-tiltfile-edit") as tilt, live(tilt) as lv:
        inbox = Inbox()
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            listed = {str(r.uri) for r in await client.list_resources()}
            assert "tilt://resources/added" not in listed
            assert "tilt://resources/web" in listed
            await tilt.replay("06-tiltfile-edit", until_action="remove")
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(lambda st: "added" in st.resources)
                await inbox.wait_for(lambda i: i.list_changed() >= 1)
            listed = {str(r.uri) for r in await client.list_resources()}
            assert "tilt://resources/added" in listed
            await tilt.replay("06-tiltfile-edit")
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(lambda st: "added" not in st.resources)
                await inbox.wait_for(lambda i: i.list_changed() >= 2)
            listed = {str(r.uri) for r in await client.list_resources()}
            assert "tilt://resources/added" not in listed


async def test_log_uris_are_rate_limited_and_the_last_change_is_flushed() -> None:
    async with FakeTilt() as tilt, live(tilt, log_notify_interval_s=0.5) as lv:
        inbox = Inbox()
        uri = "tilt://resources/ticker/logs"
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, uri)
            for i in range(20):
                await tilt.send(ticker_log(f"burst {i}\n"))
            start = anyio.current_time()
            with anyio.fail_after(DEADLINE_S):
                await inbox.wait_for(lambda i: i.updated().count(uri) >= 2)
            # one at once, the rest folded into one late flush (>= the interval later)
            assert inbox.updated().count(uri) == 2
            assert anyio.current_time() - start >= 0.3
            logs = await client.call_tool(
                "get_logs", {"resource": "ticker", "tail": 1, "timestamps": False}
            )
            assert logs.structured_content is not None
            assert logs.structured_content["lines"] == ["burst 19"]


async def test_fifty_http_sessions_are_all_notified() -> None:
    n = 50
    async with FakeTilt() as tilt, live(tilt) as lv, serve_http(lv.app.mcp) as server:
        inboxes = [Inbox() for _ in range(n)]
        ready = anyio.Event()
        release = anyio.Event()
        subscribed = 0

        async def session(inbox: Inbox) -> None:
            nonlocal subscribed
            async with Client(http(server.url), mode="legacy", message_handler=inbox) as client:
                await subscribe(client, MANUAL)
                subscribed += 1
                if subscribed == n:
                    ready.set()
                await release.wait()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for inbox in inboxes:
                    tg.start_soon(session, inbox)
                await ready.wait()
                await server.wait_get_streams(n)
                await lv.stack.http.trigger("manual")
                for inbox in inboxes:
                    await inbox.wait_for(lambda i: MANUAL in i.updated())
                release.set()
        with anyio.fail_after(DEADLINE_S):
            await lv.app.hub.wait_until(lambda s: s.sessions == 0)


async def test_wait_for_resolves_on_the_recorded_manual_trigger() -> None:
    async with FakeTilt(initial="02-trigger-manual", frame_delay_s=0.01) as tilt, live(tilt) as lv:
        async with Client(lv.app.mcp) as client, anyio.create_task_group() as tg:
            result: dict[str, object] = {}

            async def waiter() -> None:
                r = await client.call_tool(
                    "wait_for",
                    {"resources": ["manual"], "condition": "build_finished", "timeout_s": 20},
                )
                result.update(r.structured_content or {})

            tg.start_soon(waiter)
            await tilt.replay("02-trigger-manual", until_action="lazy")
        assert result["done"] is True
        assert result["results"] == [
            {"resource": "manual", "ok": True, "reason": "build finished ok"}
        ]


async def test_wait_for_fails_fast_on_a_failing_build_with_its_log_lines() -> None:
    async with (
        FakeTilt(initial="03-failing-build") as tilt,
        live(tilt) as lv,
        Client(lv.app.mcp) as client,
    ):
        t0 = anyio.current_time()
        r = await client.call_tool(
            "wait_for", {"resources": ["fail", "ok"], "condition": "ready", "timeout_s": 60}
        )
        assert anyio.current_time() - t0 < 5
        out = r.structured_content
        assert out is not None
        assert out["done"] is False
        assert out["timed_out"] is False
        fail = next(x for x in out["results"] if x["resource"] == "fail")
        assert fail["ok"] is False
        assert "exit status 3" in fail["reason"]
        assert any("Build Failed" in line for line in fail["log"])


async def test_wait_for_unknown_resource_is_an_error_with_matches() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv, Client(lv.app.mcp) as client:
        with pytest.raises(Exception, match="did you mean 'manual'"):
            await client.call_tool("wait_for", {"resources": ["manuel"]})


async def test_wait_for_reports_progress_and_times_out_cleanly() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv, Client(lv.app.mcp) as client:
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total, message))

        r = await client.call_tool(
            "wait_for",
            {"resources": ["lazy"], "condition": "build_finished", "timeout_s": 0.3},
            progress_handler=on_progress,
        )
        out = r.structured_content
        assert out is not None
        assert out["timed_out"] is True
        assert out["still_waiting"] == ["lazy"]
        assert progress
        assert progress[0][2] == "waiting for lazy"


def test_channel_events_are_concise_and_pure() -> None:
    change = Change(
        version=2,
        transitions=(
            Transition(2, 0.0, "api", "update", "in_progress", "error", "exit status 1\nmore"),
            Transition(2, 0.0, "web", "runtime", "ok", "error"),
            Transition(2, 0.0, "db", "update", "error", "ok"),
            Transition(2, 0.0, "(Tiltfile)", "update", "ok", "error", "Tiltfile:3: syntax"),
        ),
    )
    before = ConnectionInfo(state="connected", connections=1)
    after = ConnectionInfo(state="disconnected", connections=1, last_error="1006")
    events = [e.content for e in channel_events(change, before, after)]
    assert events == [
        "api: build failed: exit status 1",
        "web: runtime crashed",
        "db: build recovered",
        "Tiltfile failed to load: Tiltfile:3: syntax",
        "Tilt disconnected: 1006",
    ]
    again = channel_events(Change(3), after, replace(before, connections=2))
    assert [e.content for e in again] == ["Tilt reconnected"]


async def test_subscribing_does_not_trigger_a_spurious_update() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv:
        inbox = Inbox()
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, FAIL)
            # a frame that touches only another resource's logs
            await tilt.send(ticker_log("tick\n"))
            await lv.stack.until(
                lambda st: any(
                    x.text == "tick" for x in lv.stack.store.logs.newest_first(["ticker"])
                )
            )
            with anyio.fail_after(DEADLINE_S):
                await lv.app.pump.caught_up(lv.stack.store.version)
            await client.ping()
            assert inbox.updated() == []
            assert all(not isinstance(m, t.ResourceUpdatedNotification) for m in inbox.messages)


async def test_a_client_that_never_reads_does_not_hold_up_the_others() -> None:
    """A subscriber whose GET stream is never read: the pump keeps up, the others still get
    their updates, and updates are coalesced (never more than one per URI per batch)."""
    async with FakeTilt() as tilt, live(tilt) as lv, serve_http(lv.app.mcp) as server:
        inbox = Inbox()
        async with (
            RawHttpClient.connect(server.url, experimental=None) as slow,
            Client(lv.app.mcp, mode="legacy", message_handler=inbox) as fast,
        ):
            await slow.call(2, "resources/subscribe", {"uri": "tilt://resources/ticker/logs"})
            await slow.call(3, "resources/subscribe", {"uri": "tilt://status"})
            await subscribe(fast, "tilt://resources/ticker/logs")
            await server.wait_get_streams(1)
            for i in range(300):
                await tilt.send(ticker_log(f"flood {i}\n"))
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(
                    lambda st: any(
                        x.text == "flood 299" for x in lv.stack.store.logs.newest_first(["ticker"])
                    )
                )
                await lv.app.pump.caught_up(lv.stack.store.version)
                await inbox.wait_for(lambda i: len(i.updated()) >= 1)
            stats = lv.app.pump.stats
            assert stats.batches <= 300 + 5
            assert stats.updated <= 2 * stats.batches  # at most one per subscribed URI per batch
            assert lv.app.hub.stats().sessions == 2


async def test_retries_while_tilt_is_down_do_not_spam_subscribers() -> None:
    async with FakeTilt() as tilt, live(tilt) as lv:
        inbox = Inbox()
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, "tilt://status")
            await tilt.stop()
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(lambda st: st.connection.attempts >= 3)
                await lv.app.pump.caught_up(lv.stack.store.version)
            await client.ping()
            # the drop (1006), then "not reachable": each a real change of the answer
            settled = inbox.updated().count("tilt://status")
            assert 1 <= settled <= 2
            with anyio.fail_after(DEADLINE_S):
                await lv.stack.until(lambda st: st.connection.attempts >= 8)
                await lv.app.pump.caught_up(lv.stack.store.version)
            await client.ping()
            # five more failed retries changed nothing a reader sees: no more updates
            assert inbox.updated().count("tilt://status") == settled
