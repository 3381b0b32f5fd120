"""Resource subscriptions in both MCP protocol eras, and the pushes that ride on them.

fastmcp 4 serves no subscription methods (it answers "Method not found" and advertises
``resources.subscribe: false``). This module adds them on the SDK's low-level server and is
the only place that knows how:

* **handshake era** (protocol ≤ 2025-11-25: ``initialize``, then ``resources/subscribe`` and
  ``resources/unsubscribe``). A subscriber is the SDK ``Connection`` the request came on; a
  notification goes out on that connection's standalone channel — the stdio pipe, or the
  Streamable HTTP GET/SSE stream (so HTTP must be served *stateful*: stateless HTTP has no
  standalone channel, and ``resources/subscribe`` is refused there with a clear error).
* **2026-07-28** (no handshake, no ``resources/subscribe``). A client opens
  ``subscriptions/listen`` naming its URIs; the response *is* the stream. The SDK's
  ``ListenHandler`` serves it from an ``InMemorySubscriptionBus`` that this hub publishes on.

The SDK derives ``resources.subscribe`` from the registered handlers, per era, so registering
the three methods is the whole capability story — nothing is patched.

Connections are seen through an SDK ``ServerMiddleware`` (every inbound message passes it);
each handshake-era connection is remembered once, with a callback on the connection's
``exit_stack`` that forgets it when it closes, so nothing grows without bound. A listen stream
is forgotten when its request ends. URIs match by exact string (a template's concrete URI,
``tilt://resources/web/logs``, is just a string here).

Private fastmcp/mcp attributes are touched in exactly two functions below (``_lowlevel`` and
``_connection_of``), each with the reason; ``check_seams`` proves they still work and is run
by ``SubscriptionHub.install``, so an upgrade that breaks them fails at start-up, loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import structlog
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import Server as LowLevelServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
)
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_REQUEST,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)
from mcp_types.version import (
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from bridge.errors import BridgeError

if TYPE_CHECKING:
    from fastmcp import FastMCP

log = structlog.get_logger("bridge.mcp.subscriptions")

UPDATED: Final = "notifications/resources/updated"
LIST_CHANGED: Final = "notifications/resources/list_changed"
CLAUDE_CHANNEL: Final = "claude/channel"
MAX_STALLS: Final = 3
"""Batches in a row a client may leave unread before the hub forgets it."""
"""Claude Code's experimental push: a client that declares ``experimental["claude/channel"]``
in ``initialize`` shows ``notifications/claude/channel`` ``{content, meta}`` to the model."""
CLAUDE_CHANNEL_METHOD: Final = "notifications/claude/channel"

SUBSCRIPTION_METHODS: Final = (
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
)


class SeamBroken(BridgeError, RuntimeError):
    """A fastmcp/mcp internal this module relies on is gone or changed (after an upgrade)."""


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """A snapshot of the hub's bookkeeping."""

    sessions: int
    """Open handshake-era connections (each can receive ``list_changed``)."""
    subscriptions: int
    """(subscriber, URI) pairs: handshake-era subscriptions plus URIs named by listen streams."""
    listeners: int
    """Open 2026-07-28 ``subscriptions/listen`` streams."""


@dataclass(frozen=True, slots=True)
class _Listener:
    uris: frozenset[str]
    list_changed: bool


class SubscriptionHub:
    """Tracks who subscribed to which resource URI, across both MCP protocol eras, and
    delivers notifications.

    One hub per FastMCP server: ``hub.install(mcp)`` before serving. Every ``notify_*`` is
    safe to call from any task on the server's event loop; none raises because a client
    went away (that client is dropped and logged at debug).
    """

    def __init__(
        self,
        *,
        max_subscriptions_per_session: int = 1000,
        max_listeners: int = 1024,
        send_timeout_s: float = 2.0,
    ) -> None:
        if max_subscriptions_per_session < 1:
            raise ValueError("max_subscriptions_per_session must be at least 1")
        self._max_per_session = max_subscriptions_per_session
        self._send_timeout_s = send_timeout_s
        # handshake era: connection -> its URIs, and the reverse index URI -> connections
        self._sessions: dict[Connection, set[str]] = {}
        self._subscribers: dict[str, set[Connection]] = {}
        # 2026-07-28: one entry per open listen stream, keyed by a token
        self._listeners: dict[object, _Listener] = {}
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus, max_subscriptions=max_listeners)
        self._installed_on: set[int] = set()
        self._stalls: dict[Connection, int] = {}  # batches in a row a client did not read
        self._changed: anyio.Event | None = None  # made on first wait: needs a running loop
        self.on_subscribe: Callable[[frozenset[str]], None] | None = None
        """Called with the URIs a client just subscribed to (both eras), so the caller can
        remember what they look like now and notify only on a real change."""

    # -- wiring ---------------------------------------------------------------------------

    def install(self, server: FastMCP[Any]) -> None:
        """Serve ``resources/subscribe``/``unsubscribe`` and ``subscriptions/listen`` on
        ``server`` and watch its connections. Idempotent per server.

        Raises ``SeamBroken`` if the installed fastmcp/mcp no longer has what this needs.
        """
        check_seams(server)
        lowlevel = _lowlevel(server)
        if id(lowlevel) in self._installed_on:
            return
        self._installed_on.add(id(lowlevel))
        # Public SDK API on the low-level server (fastmcp itself registers its handlers so).
        lowlevel.add_request_handler(
            "resources/subscribe", SubscribeRequestParams, self._on_subscribe
        )
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self._on_unsubscribe
        )
        lowlevel.add_request_handler(
            "subscriptions/listen", SubscriptionsListenRequestParams, self._on_listen
        )
        # Outermost, so it sees every message before fastmcp's own middleware can refuse it.
        lowlevel.middleware.insert(0, self._track)
        for version in (LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION):
            if not advertised_subscribe(server, version):
                raise SeamBroken(
                    f"resources.subscribe is still not advertised at protocol {version} after "
                    "registering the subscription handlers; the SDK no longer derives the "
                    "capability from them. Update bridge/mcp/subscriptions.py."
                )

    def close(self) -> None:
        """End every open listen stream gracefully (clients see the stream's final result)."""
        self._listen.close()

    # -- queries --------------------------------------------------------------------------

    def subscribed_uris(self) -> frozenset[str]:
        """Every URI somebody, in either era, is subscribed to right now."""
        uris = set(self._subscribers)
        for listener in self._listeners.values():
            uris |= listener.uris
        return frozenset(uris)

    def stats(self) -> SubscriptionStats:
        return SubscriptionStats(
            sessions=len(self._sessions),
            subscriptions=sum(len(u) for u in self._sessions.values())
            + sum(len(lst.uris) for lst in self._listeners.values()),
            listeners=len(self._listeners),
        )

    async def wait_until(self, predicate: Callable[[SubscriptionStats], bool]) -> SubscriptionStats:
        """Wait until ``predicate(self.stats())`` holds and return those stats. No deadline of
        its own: wrap it in ``anyio.fail_after``. (Tests and health checks use it instead of
        polling.)"""
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def _touch(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # -- delivery -------------------------------------------------------------------------

    async def notify_updated(self, uris: Iterable[str]) -> int:
        """Send ``notifications/resources/updated {uri}`` to every subscriber of each URI,
        in both eras. Returns how many notifications were sent."""
        wanted = list(dict.fromkeys(uris))
        plan: dict[Connection, list[tuple[str, Mapping[str, object] | None]]] = {}
        for uri in wanted:
            for connection in self._subscribers.get(uri, ()):
                plan.setdefault(connection, []).append((UPDATED, {"uri": uri}))
        sent = await self._deliver(plan)
        for uri in wanted:
            listening = sum(1 for lst in self._listeners.values() if uri in lst.uris)
            if listening:
                await self._bus.publish(ResourceUpdated(uri=uri))
                sent += listening
        return sent

    async def notify_list_changed(self) -> int:
        """Send ``notifications/resources/list_changed`` to every handshake-era connection
        and every listen stream that asked for list changes. Returns how many were sent."""
        plan: dict[Connection, list[tuple[str, Mapping[str, object] | None]]] = {
            connection: [(LIST_CHANGED, None)]
            for connection in self._sessions
            if connection.initialized.is_set()
        }
        sent = await self._deliver(plan)
        listening = sum(1 for lst in self._listeners.values() if lst.list_changed)
        if listening:
            await self._bus.publish(ResourcesListChanged())
            sent += listening
        return sent

    async def send_custom(
        self,
        method: str,
        params: Mapping[str, object],
        *,
        experimental: str | None = None,
    ) -> int:
        """Send a custom notification to every initialized handshake-era connection — only to
        those whose ``initialize`` declared ``capabilities.experimental[experimental]`` when
        that is given. (2026-07-28 connections have no standalone channel to carry it.)"""
        plan: dict[Connection, list[tuple[str, Mapping[str, object] | None]]] = {
            connection: [(method, params)]
            for connection in self._sessions
            if connection.initialized.is_set()
            and (experimental is None or _declares_experimental(connection, experimental))
        }
        return await self._deliver(plan)

    async def notify_channel(self, content: str, meta: Mapping[str, str]) -> int:
        """Claude Code's channel push (``notifications/claude/channel`` ``{content, meta}``)
        to every handshake-era connection.

        In Claude Code's channel contract it is the *server* that declares
        ``capabilities.experimental["claude/channel"]`` (see :func:`channel_capability`);
        Claude Code declares nothing, so clients are not filtered. Other clients ignore an
        unknown notification, and the push is opt-in (``--channel-push``)."""
        return await self.send_custom(
            CLAUDE_CHANNEL_METHOD, {"content": content, "meta": dict(meta)}
        )

    async def _deliver(
        self, plan: Mapping[Connection, list[tuple[str, Mapping[str, object] | None]]]
    ) -> int:
        """Send each connection its notifications, in order; connections concurrently. A client
        that stops reading costs one ``send_timeout_s`` per batch (the rest of its batch is
        skipped) and is dropped after ``MAX_STALLS`` stalled batches in a row, so it cannot
        hold up the pump, and through it everyone else, for long."""
        sent = 0

        async def one(
            connection: Connection, items: list[tuple[str, Mapping[str, object] | None]]
        ) -> None:
            nonlocal sent
            for method, params in items:
                if connection not in self._sessions:
                    return
                with anyio.move_on_after(self._send_timeout_s) as scope:
                    try:
                        # `outbound` is the connection's standalone channel (public SDK API).
                        await connection.outbound.notify(method, params)
                    except Exception as exc:  # the client side is gone or broken: drop it
                        log.debug(
                            "mcp.subscriptions.client_dropped",
                            method=method,
                            error=repr(exc),
                            session_id=connection.session_id,
                        )
                        self._forget(connection)
                        return
                if scope.cancelled_caught:  # a client that stopped reading
                    stalls = self._stalls.get(connection, 0) + 1
                    self._stalls[connection] = stalls
                    log.warning(
                        "mcp.subscriptions.send_timed_out",
                        method=method,
                        timeout_s=self._send_timeout_s,
                        stalls=stalls,
                        session_id=connection.session_id,
                    )
                    if stalls >= MAX_STALLS:
                        self._forget(connection)
                    return
                self._stalls.pop(connection, None)
                sent += 1

        if len(plan) == 1:
            [(connection, items)] = plan.items()
            await one(connection, items)
            return sent
        async with anyio.create_task_group() as tg:
            for connection, items in plan.items():
                tg.start_soon(one, connection, items)
        return sent

    # -- bookkeeping ----------------------------------------------------------------------

    def _remember(self, connection: Connection) -> set[str] | None:
        """The URI set of a handshake-era connection, registering it on first sight; ``None``
        for a connection that cannot carry server notifications."""
        uris = self._sessions.get(connection)
        if uris is not None:
            return uris
        if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None  # a 2026 connection lives for one request; listen streams cover it
        if not connection.has_standalone_channel:
            return None  # stateless HTTP
        uris = self._sessions[connection] = set()
        connection.exit_stack.callback(self._forget, connection)
        self._touch()
        log.debug(
            "mcp.subscriptions.session_opened",
            session_id=connection.session_id,
            sessions=len(self._sessions),
        )
        return uris

    def _drop_subscriber(self, uri: str, connection: Connection) -> None:
        subscribers = self._subscribers.get(uri)
        if subscribers is not None:
            subscribers.discard(connection)
            if not subscribers:
                del self._subscribers[uri]

    def _forget(self, connection: Connection) -> None:
        self._stalls.pop(connection, None)
        uris = self._sessions.pop(connection, None)
        if uris is None:
            return
        for uri in uris:
            self._drop_subscriber(uri, connection)
        self._touch()
        log.debug(
            "mcp.subscriptions.session_closed",
            session_id=connection.session_id,
            sessions=len(self._sessions),
        )

    # -- SDK handlers ---------------------------------------------------------------------

    async def _track(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        self._remember(_connection_of(ctx.session))
        return await call_next(ctx)

    async def _on_subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        connection = _connection_of(ctx.session)
        uris = self._remember(connection)
        if uris is None:
            raise MCPError(
                INVALID_REQUEST,
                "resources/subscribe needs a connection that can carry server notifications "
                "(stdio, or Streamable HTTP served stateful); this one cannot. Re-read the "
                "resource when you need it, or reconnect over a stateful transport.",
            )
        uri = params.uri
        if uri not in uris and len(uris) >= self._max_per_session:
            raise MCPError(
                INVALID_REQUEST,
                f"cannot subscribe to {uri!r}: this session already has {len(uris)} resource "
                "subscriptions, the limit; unsubscribe from some first.",
            )
        uris.add(uri)
        self._subscribers.setdefault(uri, set()).add(connection)
        self._touch()
        self._subscribed(frozenset({uri}))
        log.debug("mcp.subscriptions.subscribed", uri=uri, session_id=connection.session_id)
        return EmptyResult()

    def _subscribed(self, uris: frozenset[str]) -> None:
        if self.on_subscribe is None or not uris:
            return
        try:
            self.on_subscribe(uris)
        except Exception:  # a hook must not fail the client's request
            log.exception("mcp.subscriptions.hook_failed", uris=sorted(uris))

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        connection = _connection_of(ctx.session)
        uri = params.uri
        uris = self._sessions.get(connection)
        if uris is not None and uri in uris:
            uris.discard(uri)
            self._drop_subscriber(uri, connection)
            self._touch()
        return EmptyResult()

    async def _on_listen(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        wanted = params.notifications
        uris = frozenset(wanted.resource_subscriptions or ())
        if len(uris) > self._max_per_session:
            raise MCPError(
                INVALID_REQUEST,
                f"subscriptions/listen names {len(uris)} resources; the limit per stream is "
                f"{self._max_per_session}. Listen to fewer URIs (or open a second stream).",
            )
        token = object()
        self._listeners[token] = _Listener(uris, bool(wanted.resources_list_changed))
        self._touch()
        self._subscribed(uris)
        try:
            return await self._listen(ctx, params)
        finally:
            del self._listeners[token]
            self._touch()


def channel_capability() -> dict[str, dict[str, Any]]:
    """The experimental capability a channel server declares at ``initialize``."""
    return {CLAUDE_CHANNEL: {}}


def _declares_experimental(connection: Connection, key: str) -> bool:
    capabilities = connection.client_capabilities
    return capabilities is not None and key in (capabilities.experimental or {})


# -- the private seams, all of them -------------------------------------------------------


def _lowlevel(server: FastMCP[Any]) -> LowLevelServer[Any]:
    # PRIVATE: FastMCP exposes no public handle on its SDK low-level server, and
    # `FastMCP.add_extension` refuses spec methods. fastmcp itself registers every handler
    # through `_mcp_server.add_request_handler`, so this is the seam it maintains.
    return server._mcp_server


def _connection_of(session: ServerSession) -> Connection:
    # PRIVATE: `ServerSession` is a per-request proxy; the per-client `Connection` (the only
    # stable identity of a handshake-era client, with its standalone channel and its
    # `exit_stack` for teardown) is reachable only through its `_connection`.
    return session._connection


def check_seams(server: FastMCP[Any] | None = None) -> None:
    """Fail loudly, naming the culprit, when an upgrade broke an internal this module uses.

    Without a server it checks the SDK side only; with one it also checks fastmcp's
    low-level server and, once the hub is installed, that ``resources.subscribe`` is
    advertised in both eras.
    """
    problems: list[str] = []
    for attr in (
        "outbound",
        "exit_stack",
        "client_capabilities",
        "protocol_version",
        "initialized",
    ):
        if attr not in Connection.__annotations__:
            problems.append(f"mcp.server.connection.Connection has no attribute {attr!r}")
    if Connection.__hash__ is not object.__hash__:
        problems.append("mcp Connection no longer hashes by identity (it is used as a dict key)")
    probe = Connection.for_loop(_NoOutbound(), protocol_version_hint=LATEST_HANDSHAKE_VERSION)
    try:
        session = ServerSession(_NoOutbound(), probe)  # type: ignore[arg-type]
        if _connection_of(session) is not probe:
            problems.append("ServerSession._connection is no longer the request's Connection")
    except (AttributeError, TypeError) as exc:
        problems.append(f"ServerSession(request_outbound, connection) changed: {exc!r}")
    if server is not None:
        lowlevel = getattr(server, "_mcp_server", None)
        if not isinstance(lowlevel, LowLevelServer):
            problems.append("FastMCP._mcp_server is no longer the SDK's low-level Server")
        else:
            if not isinstance(getattr(lowlevel, "middleware", None), list):
                problems.append("the SDK low-level Server has no `middleware` list")
            if any(lowlevel.get_request_handler(m) is not None for m in SUBSCRIPTION_METHODS) and (
                lowlevel.get_request_handler("resources/subscribe") is None
                or lowlevel.get_request_handler("subscriptions/listen") is None
            ):
                problems.append("only part of the subscription methods are registered")
    if problems:
        raise SeamBroken(
            "tilt-mcp-bridge cannot serve resource subscriptions with the installed fastmcp/mcp: "
            + "; ".join(problems)
            + ". Pin fastmcp/mcp to the versions in pyproject.toml, or update "
            "bridge/mcp/subscriptions.py."
        )


def advertised_subscribe(server: FastMCP[Any], protocol_version: str) -> bool:
    """Whether ``server`` advertises ``resources.subscribe`` to a client of that era."""
    capabilities = _lowlevel(server).get_capabilities(protocol_version=protocol_version)
    return bool(capabilities.resources and capabilities.resources.subscribe)


class _NoOutbound:
    """An outbound for the seam probe; never used to send."""

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: object = None
    ) -> None:
        raise AssertionError("probe only")

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: object = None
    ) -> dict[str, Any]:
        raise AssertionError("probe only")
