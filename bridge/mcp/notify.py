"""The push pump: the store's change feed → MCP notifications.

For each batch of changes (one Tilt frame, or several merged if the pump fell
behind) it:

* sends ``notifications/resources/list_changed`` when Tilt resources appear or
  disappear (and keeps one concrete ``tilt://resources/{name}`` entry per Tilt
  resource in ``resources/list``, so the list really changes);
* sends at most one ``notifications/resources/updated`` per subscribed URI, and
  only when what that URI returns actually changed (content hash);
* rate-limits log URIs (``tilt://resources/{name}/logs``) to one update per
  ``log_interval_s``, flushing the last one late rather than dropping it;
* optionally emits concise Claude Code channel events (build failed/recovered,
  runtime crashed/ready, Tiltfile error, Tilt disconnected/reconnected; which ones and
  their shape: :mod:`bridge.mcp.channel`).

Who subscribed and delivery (both protocol eras) live in :mod:`bridge.mcp.subscriptions`;
this module only decides *what* to send.

The pump never dies of one bad batch: an exception in one batch (or in reading one URI) is
logged once per kind (its class and where it was raised, no traceback), that batch or URI is
skipped, and the pump goes on with the next. Cancellation is never caught.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskStatus
from fastmcp import FastMCP
from fastmcp.resources import FunctionResource

from bridge.core.state import Change
from bridge.errors import BridgeError
from bridge.mcp import channel
from bridge.mcp.context import BridgeContext
from bridge.mcp.resources import (
    JSON,
    read_uri,
    resource_uri,
)
from bridge.mcp.subscriptions import SubscriptionHub
from bridge.mcp.uris import BridgeUri, UriRefused, parse

log = structlog.get_logger("bridge.notify")

Reader = Callable[[BridgeContext, str], str]
"""What a URI returns now (``resources.read_uri``; a seam for tests)."""


@dataclass(slots=True)
class PumpStats:
    batches: int = 0
    updated: int = 0
    list_changed: int = 0
    channel_events: int = 0
    skipped_unchanged: int = 0
    failed_batches: int = 0
    failed_reads: int = 0


class Pump:
    def __init__(
        self,
        mcp: FastMCP,
        ctx: BridgeContext,
        hub: SubscriptionHub,
        *,
        log_interval_s: float = 1.0,
        channel: bool = False,
        read: Reader = read_uri,
    ) -> None:
        self.mcp = mcp
        self.read = read
        self.ctx = ctx
        self.hub = hub
        self.log_interval_s = log_interval_s
        self.channel = channel
        self.stats = PumpStats()
        self._hashes: dict[str, str] = {}
        self._log_sent_at: dict[str, float] = {}
        self._log_pending: set[str] = set()
        self._concrete: set[str] = set()
        self._conn = ctx.store.state.connection
        self.published_version = 0
        self._published = anyio.Event()
        self._failures_logged: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ concrete resources

    def sync_concrete_resources(self) -> bool:
        """One ``tilt://resources/{name}`` entry per Tilt resource. True if the set changed."""
        names = set(self.ctx.store.state.resources)
        added, removed = names - self._concrete, self._concrete - names
        for name in sorted(removed):
            self.mcp.local_provider.remove_resource(resource_uri(name))
        for name in sorted(added):
            self.mcp.add_resource(self._concrete_resource(name))
        self._concrete = names
        return bool(added or removed)

    def _concrete_resource(self, name: str) -> FunctionResource:
        uri = resource_uri(name)
        ctx = self.ctx

        async def read() -> str:
            return read_uri(ctx, uri)  # the real reader: ``self.read`` is only for diffing

        return FunctionResource.from_function(
            read,
            uri=uri,
            name=f"resource {name}",
            description=f"Tilt resource {name}: status, builds, buttons, endpoints",
            mime_type=JSON,
        )

    # ------------------------------------------------------------------ loop

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        store = self.ctx.store
        version = store.version
        self.sync_concrete_resources()
        task_status.started()
        while True:
            deadline = self._next_log_flush()
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await store.wait_changed(version)
            change = store.changes_since(version)
            version = change.version
            try:
                await self.publish(change)
            except Exception as exc:  # one bad batch must not stop the pump (nor the server)
                self.stats.failed_batches += 1
                self._log_failure("mcp.notify.batch_failed", exc)
            self.published_version = version
            self._published.set()
            self._published = anyio.Event()

    async def caught_up(self, version: int) -> None:
        """Wait until every change up to ``version`` has been published."""
        while self.published_version < version:
            await self._published.wait()

    def _next_log_flush(self) -> float:
        if not self._log_pending:
            return math.inf
        return min(self._log_sent_at.get(u, 0.0) for u in self._log_pending) + self.log_interval_s

    async def publish(self, change: Change) -> None:
        """Send what ``change`` warrants. Called once per batch."""
        self.stats.batches += 1
        store = self.ctx.store
        conn_after = store.state.connection
        membership = bool(change.added or change.removed or change.reset)
        if membership and self.sync_concrete_resources():
            self.stats.list_changed += await self.hub.notify_list_changed()
        subscribed = self.hub.subscribed_uris()
        self._forget(subscribed)
        candidates = set(self._affected(change, subscribed))
        now = anyio.current_time()
        due_logs = {
            u
            for u in self._log_pending
            if now >= self._log_sent_at.get(u, 0.0) + self.log_interval_s
        }
        to_send = []
        for uri in sorted(candidates | due_logs):
            if uri not in subscribed:
                continue
            if _is_logs(uri) and now < self._log_sent_at.get(uri, -math.inf) + self.log_interval_s:
                self._log_pending.add(uri)
                continue
            changed = self._changed(uri)
            if changed is None:  # reading it failed: skip it this batch, keep its old hash
                continue
            if changed:
                to_send.append(uri)
                if _is_logs(uri):
                    self._log_sent_at[uri] = now
                    self._log_pending.discard(uri)
            else:
                self.stats.skipped_unchanged += 1
                self._log_pending.discard(uri)
        if to_send:
            self.stats.updated += await self.hub.notify_updated(to_send)
        if self.channel:
            for event in channel.channel_events(change, self._conn, conn_after):
                self.stats.channel_events += await channel.push(self.hub, event)
        self._conn = conn_after

    def _affected(self, change: Change, subscribed: Iterable[str]) -> Iterable[str]:
        status_like = bool(
            change.resources or change.session or change.connection or change.reset or change.logs
        )
        for uri in subscribed:
            target = _target(uri)
            if target is None:
                continue
            if target.kind in ("status", "resources"):
                if status_like:
                    yield uri
                continue
            name = target.name
            if target.kind == "logs":
                if name in change.logs or change.reset:
                    yield uri
            elif (
                name in change.resources
                or name in change.logs
                or change.buttons
                or change.reset
                or change.connection
            ):
                yield uri

    def _changed(self, uri: str) -> bool | None:
        """Whether ``uri``'s content differs from the last one seen (and remember it); None
        if reading it failed unexpectedly (logged once per kind, the old hash is kept)."""
        try:
            content = self.read(self.ctx, uri)
        except BridgeError:  # e.g. a resource that is gone: its answer is "unavailable"
            content = "<unavailable>"
        except Exception as exc:
            self.stats.failed_reads += 1
            self._log_failure("mcp.notify.read_failed", exc)
            return None
        digest = hashlib.blake2b(content.encode(), digest_size=16).hexdigest()
        if self._hashes.get(uri) == digest:
            return False
        self._hashes[uri] = digest
        return True

    def _log_failure(self, event: str, exc: Exception) -> None:
        """Log ``exc`` at error the first time its kind (event, class, where raised) is
        seen, at debug after that (the watcher's rule for a failure that repeats)."""
        where = _raised_at(exc)
        kind = (event, f"{exc.__class__.__qualname__}@{where}")
        first = kind not in self._failures_logged and len(self._failures_logged) < 64
        if first:  # at most 64 kinds remembered: the bookkeeping stays bounded too
            self._failures_logged.add(kind)
        (log.error if first else log.debug)(
            event,
            error_type=exc.__class__.__qualname__,
            error=str(exc)[:200],
            raised_at=where,
            note="the pump goes on; logged at error once per kind",
        )

    def _forget(self, subscribed: set[str] | frozenset[str]) -> None:
        """Drop bookkeeping for URIs nobody subscribes to any more (bounded memory)."""
        for uri in [u for u in self._hashes if u not in subscribed]:
            del self._hashes[uri]
        for uri in [u for u in self._log_sent_at if u not in subscribed]:
            del self._log_sent_at[uri]
        self._log_pending &= subscribed

    def prime(self, uris: Iterable[str]) -> None:
        """Remember the current content of ``uris`` (the hub calls this when a client
        subscribes), so the next update goes out only if that content really changes."""
        for uri in uris:
            if uri not in self._hashes:
                self._changed(uri)


def _target(uri: str) -> BridgeUri | None:
    try:
        return parse(uri)
    except UriRefused:  # not one of ours (a hub may be built without the URI check)
        return None


def _is_logs(uri: str) -> bool:
    target = _target(uri)
    return target is not None and target.kind == "logs"


def _raised_at(exc: BaseException) -> str:
    """``module.py:line`` of the innermost frame that raised ``exc``."""
    tb = exc.__traceback__
    if tb is None:
        return "?"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
