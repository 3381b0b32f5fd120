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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus
from fastmcp import FastMCP
from fastmcp.resources import FunctionResource

from bridge.core.state import Change, ConnectionInfo
from bridge.errors import BridgeError
from bridge.log import get_logger
from bridge.mcp import channel
from bridge.mcp.context import BridgeContext
from bridge.mcp.resources import (
    JSON,
    read_uri,
    resource_uri,
    status_uri,
)
from bridge.mcp.subscriptions import SubscriptionHub
from bridge.mcp.uris import BridgeUri, UriRefused, parse
from bridge.store import Store

log = get_logger("bridge.notify")

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
    """One pump for the bridge. Around one store it follows that store; around the
    registry it follows **every instance's store** (one follower task each, started and
    stopped as instances come and go) and the registry itself:

    * an instance's change wakes the URIs qualified with its port
      (``tilt://instances/{port}/…``), and the un-qualified ones when it is the bridge
      default (:meth:`BridgeContext.bridge_default`);
    * ``resources/list`` holds one ``tilt://instances/{port}/status`` per instance, so
      instances coming and going send ``list_changed``; a new default re-reads every
      un-qualified URI (sent only where the content changed).

    Batches are published one at a time (a lock): the bookkeeping is shared."""

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
        self._conns: dict[int | None, ConnectionInfo] = {}
        self._default_port = self._bridge_default_port()
        self._published_versions: dict[int | None, int] = {}
        self._published = anyio.Event()
        self._failures_logged: set[tuple[str, str]] = set()
        self._lock = anyio.Lock()

    @property
    def published_version(self) -> int:
        """The last version published of the one store (around the registry: of the
        bridge default's)."""
        key = None if self.ctx.instances is None else self._default_port
        return self._published_versions.get(key, 0)

    def _bridge_default_port(self) -> int | None:
        return None if self.ctx.instances is None else self.ctx.bridge_default().port

    # ------------------------------------------------------------------ concrete resources

    def sync_concrete_resources(self) -> bool:
        """One ``tilt://resources/{name}`` entry per resource of the default instance, and
        one ``tilt://instances/{port}/status`` per instance. True if the set changed."""
        uris = {resource_uri(name) for name in self.ctx.store.state.resources}
        if self.ctx.instances is not None:
            uris |= {status_uri(port) for port in self.ctx.instances.ports}
        added, removed = uris - self._concrete, self._concrete - uris
        for uri in sorted(removed):
            self.mcp.local_provider.remove_resource(uri)
        for uri in sorted(added):
            self.mcp.add_resource(self._concrete_resource(uri))
        self._concrete = uris
        return bool(added or removed)

    def _concrete_resource(self, uri: str) -> FunctionResource:
        ctx = self.ctx
        target = parse(uri)

        async def read() -> str:
            return read_uri(ctx, uri)  # the real reader: ``self.read`` is only for diffing

        if target.kind == "status":
            name, description = f"status of {target.port}", f"the Tilt on port {target.port}"
        else:
            name = f"resource {target.name}"
            description = f"Tilt resource {target.name}: status, builds, buttons, endpoints"
        return FunctionResource.from_function(
            read, uri=uri, name=name, description=description, mime_type=JSON
        )

    # ------------------------------------------------------------------ loop

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        instances = self.ctx.instances
        if instances is None:
            await self._follow(self.ctx.store, None, task_status=task_status)
            return
        async with anyio.create_task_group() as tg:
            self.sync_concrete_resources()
            followers: dict[int, tuple[Store, anyio.CancelScope]] = {}
            started = False
            async for _ in instances.changes():
                for port in list(followers):
                    store, scope = followers[port]
                    instance = instances.get(port)
                    if instance is None or instance.store is not store:
                        scope.cancel()
                        del followers[port]
                        self._conns.pop(port, None)
                for port in instances.ports:
                    instance = instances.get(port)
                    if port not in followers and instance is not None:
                        scope = anyio.CancelScope()
                        followers[port] = (instance.store, scope)
                        await tg.start(self._follow_in, instance.store, port, scope)
                await self._guarded(self._registry_changed())
                if not started:
                    started = True
                    task_status.started()

    async def _follow_in(
        self,
        store: Store,
        port: int,
        scope: anyio.CancelScope,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with scope:
            await self._follow(store, port, task_status=task_status)

    async def _follow(
        self, store: Store, port: int | None, *, task_status: TaskStatus[None]
    ) -> None:
        """Publish ``store``'s changes (the instance on ``port``; None: the one store)."""
        version = store.version
        self._conns[port] = store.state.connection
        if port is None:
            self.sync_concrete_resources()
        task_status.started()
        while True:
            deadline = self._next_log_flush()
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await store.wait_changed(version)
            change = store.changes_since(version)
            version = change.version
            await self._guarded(self.publish(change, port, store))
            self._published_versions[port] = version
            self._published.set()
            self._published = anyio.Event()

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            async with self._lock:
                await work
        except Exception as exc:  # one bad batch must not stop the pump (nor the server)
            self.stats.failed_batches += 1
            self._log_failure("mcp.notify.batch_failed", exc)

    async def caught_up(self, version: int, port: int | None = None) -> None:
        """Wait until every change up to ``version`` has been published (of the instance
        on ``port``; None: the one store, or the bridge default's)."""
        while True:
            key = port if port is not None or self.ctx.instances is None else self._default_port
            if self._published_versions.get(key, 0) >= version:
                return
            await self._published.wait()

    def _next_log_flush(self) -> float:
        if not self._log_pending:
            return math.inf
        return min(self._log_sent_at.get(u, 0.0) for u in self._log_pending) + self.log_interval_s

    async def publish(
        self, change: Change, port: int | None = None, store: Store | None = None
    ) -> None:
        """Send what ``change`` (of the instance on ``port``) warrants. Once per batch."""
        self.stats.batches += 1
        store = store or self.ctx.store
        conn_before = self._conns.get(port, store.state.connection)
        conn_after = store.state.connection
        default = self._bridge_default_port()
        moved = default != self._default_port
        self._default_port = default
        is_default = port is None or port == default
        membership = bool(change.added or change.removed or change.reset)
        if ((membership and is_default) or moved) and self.sync_concrete_resources():
            self.stats.list_changed += await self.hub.notify_list_changed()
        subscribed = self.hub.subscribed_uris()
        self._forget(subscribed)
        candidates = set(self._affected(change, subscribed, port, is_default))
        if moved:
            candidates |= {u for u in subscribed if _port_of(u) is None}
        await self._send(candidates, subscribed)
        if self.channel and is_default:
            for event in channel.channel_events(change, conn_before, conn_after):
                self.stats.channel_events += await channel.push(self.hub, event)
        self._conns[port] = conn_after

    async def _registry_changed(self) -> None:
        """Instances came or went, or a Tiltfile path (so maybe the default) changed."""
        default = self._bridge_default_port()
        moved = default != self._default_port
        self._default_port = default
        if self.sync_concrete_resources():
            self.stats.list_changed += await self.hub.notify_list_changed()
        subscribed = self.hub.subscribed_uris()
        self._forget(subscribed)
        candidates = {u for u in subscribed if _kind(u) == "instances"}
        if moved:
            candidates |= {u for u in subscribed if _port_of(u) is None}
        await self._send(candidates, subscribed)

    async def _send(self, candidates: set[str], subscribed: frozenset[str] | set[str]) -> None:
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
                # and not pending: it is tried again when its resource next changes (a
                # pending URI that always fails to read would wake the pump at once, forever)
                self._log_pending.discard(uri)
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

    def _affected(
        self, change: Change, subscribed: Iterable[str], port: int | None, is_default: bool
    ) -> Iterable[str]:
        status_like = bool(
            change.resources or change.session or change.connection or change.reset or change.logs
        )
        for uri in subscribed:
            target = _target(uri)
            if target is None:
                continue
            if target.kind == "instances":
                if change.resources or change.session or change.connection or change.reset:
                    yield uri
                continue
            if not (is_default if target.port is None else target.port == port):
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


def _port_of(uri: str) -> int | None:
    target = _target(uri)
    return target.port if target is not None else None


def _kind(uri: str) -> str | None:
    target = _target(uri)
    return target.kind if target is not None else None


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
