"""The push pump never dies of one bad batch: a failure in reading one URI skips that URI
(the others in the batch go out), a failure anywhere else in a batch skips that batch, and
either is logged at error once per kind; the next batch is delivered; cancellation still
stops the pump. Failures are injected through seams we own (the pump's reader, a hub
subclass); everything else is real: FakeTilt → watcher → store → pump → in-memory client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from fastmcp import Client
from structlog.testing import capture_logs

from bridge.mcp.context import BridgeContext
from bridge.mcp.notify import Pump, Reader
from bridge.mcp.resources import read_uri
from bridge.mcp.server import build_server
from bridge.mcp.subscriptions import SubscriptionHub
from bridge.mcp.uris import parse
from bridge.testing import FakeTilt

from .harness import Stack, stack
from .mcpkit import DEADLINE_S, Inbox, subscribe

pytestmark = pytest.mark.anyio

TICKER_LOGS = "tilt://resources/ticker/logs"
WEB_LOGS = "tilt://resources/web/logs"


def log_lines(*lines: tuple[str, str]) -> dict[str, object]:
    """A delta with one log line per ``(resource, text)``."""
    return {
        "logList": {
            "spans": {f"{name}:span": {"manifestName": name} for name, _ in lines},
            "segments": [
                {
                    "spanId": f"{name}:span",
                    "time": "2026-11-26T22:00:00.000001Z",
                    "text": text + "\n",
                }
                for name, text in lines
            ],
        }
    }


@dataclass
class Flaky:
    """A reader that raises for the URIs in ``broken`` and reads the rest for real."""

    broken: set[str] = field(default_factory=set)

    def __call__(self, ctx: BridgeContext, uri: str) -> str:
        if uri in self.broken:
            raise RuntimeError(f"cannot read {uri}")
        return read_uri(ctx, uri)


class FlakyHub(SubscriptionHub):
    """A hub whose next ``fail`` deliveries raise (a bug in delivery, say)."""

    fail = 0

    async def notify_updated(self, uris: Iterable[str]) -> int:
        if self.fail:
            self.fail -= 1
            raise KeyError("a bug in delivery")
        return await super().notify_updated(uris)


@dataclass
class Rig:
    stack: Stack
    pump: Pump
    hub: FlakyHub
    client: Client[BridgeContext]
    inbox: Inbox

    async def send_and_publish(self, *lines: tuple[str, str]) -> None:
        await self.stack.tilt.send(log_lines(*lines))
        with anyio.fail_after(DEADLINE_S):
            await self.stack.until(
                lambda _: all(
                    any(x.text == text for x in self.stack.store.logs.newest_first([name]))
                    for name, text in lines
                )
            )
            await self.pump.caught_up(self.stack.store.version)
        await self.client.ping()


@asynccontextmanager
async def rig(read: Reader, log_interval_s: float = 0.0) -> AsyncIterator[Rig]:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        ctx = BridgeContext(store=s.store, settings=s.settings, http=s.http)
        mcp = build_server(ctx)
        hub = FlakyHub(check_uri=parse)
        hub.install(mcp)
        pump = Pump(mcp, ctx, hub, log_interval_s=log_interval_s, read=read)
        hub.on_subscribe = pump.prime
        inbox = Inbox()
        async with anyio.create_task_group() as tg:
            await tg.start(pump.run)
            async with Client(mcp, mode="legacy", message_handler=inbox) as client:
                await subscribe(client, TICKER_LOGS)
                await subscribe(client, WEB_LOGS)
                yield Rig(s, pump, hub, client, inbox)
            tg.cancel_scope.cancel()
        hub.close()


async def test_a_uri_whose_read_fails_is_skipped_the_others_go_out_and_it_recovers() -> None:
    reader = Flaky()
    async with rig(reader) as r:
        reader.broken = {TICKER_LOGS}
        with capture_logs() as logs:
            await r.send_and_publish(("ticker", "one"), ("web", "one"))
            await r.send_and_publish(("ticker", "two"), ("web", "two"))
        assert r.inbox.updated() == [WEB_LOGS, WEB_LOGS]
        assert r.pump.stats.failed_reads == 2
        failed = [e for e in logs if e["event"] == "mcp.notify.read_failed"]
        assert [e["log_level"] for e in failed] == ["error", "debug"]  # once per kind
        assert failed[0]["error_type"] == "RuntimeError"
        assert failed[0]["raised_at"].startswith("test_pump_resilience.py:")

        reader.broken = set()
        await r.send_and_publish(("ticker", "three"))
        assert r.inbox.updated() == [WEB_LOGS, WEB_LOGS, TICKER_LOGS]


async def test_a_log_uri_that_keeps_failing_does_not_spin_the_pump() -> None:
    """A rate-limited log URI whose read fails when it comes due is tried again on its
    resource's next change, not at once in a loop (which burned a core: thousands of
    failed reads a second)."""
    reader = Flaky()
    async with rig(reader, log_interval_s=0.2) as r:
        await r.send_and_publish(("ticker", "one"))  # sent: the next is rate-limited
        reader.broken = {TICKER_LOGS}
        await r.send_and_publish(("ticker", "two"))  # pending until its interval ends
        i = 0
        with anyio.fail_after(DEADLINE_S):
            while r.pump.stats.failed_reads < 1:  # the late flush happens and fails
                i += 1
                await r.send_and_publish(("web", f"line {i}"))
        for j in range(3):  # meanwhile a spinning pump would fail hundreds of reads
            await r.send_and_publish(("web", f"after {j}"))
        assert r.pump.stats.failed_reads == 1


async def test_a_batch_that_raises_is_logged_once_and_the_next_batch_is_delivered() -> None:
    async with rig(read_uri) as r:
        r.hub.fail = 2
        with capture_logs() as logs:
            await r.send_and_publish(("web", "lost 1"))
            await r.send_and_publish(("web", "lost 2"))
        assert r.inbox.updated() == []
        assert r.pump.stats.failed_batches == 2
        failed = [e for e in logs if e["event"] == "mcp.notify.batch_failed"]
        assert [e["log_level"] for e in failed] == ["error", "debug"]
        assert failed[0]["error_type"] == "KeyError"
        assert "Traceback" not in str(failed[0])

        await r.send_and_publish(("web", "delivered"))
        assert r.inbox.updated() == [WEB_LOGS]


async def test_cancellation_still_stops_the_pump() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        ctx = BridgeContext(store=s.store, settings=s.settings, http=s.http)
        mcp = build_server(ctx)
        hub = SubscriptionHub()
        hub.install(mcp)
        pump = Pump(mcp, ctx, hub)
        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tg:
                await tg.start(pump.run)
                tg.cancel_scope.cancel()  # a pump that swallowed it would hang here
        assert tg.cancel_scope.cancelled_caught


async def test_a_percent_encoded_name_is_matched_decoded() -> None:
    """A subscriber of ``tilt://resources/my%20app/logs`` hears about lines of ``my app``
    (and a subscriber of another name does not). The reader here changes on every version,
    so only the pump's choice of URIs is under test."""

    def by_version(ctx: BridgeContext, uri: str) -> str:
        return f"{uri} {ctx.store.version}"

    async with rig(by_version) as r:
        await subscribe(r.client, "tilt://resources/my%20app/logs")
        await r.send_and_publish(("my app", "hello"))
        assert r.inbox.updated() == ["tilt://resources/my%20app/logs"]
