"""The subscription hub: resource subscriptions in both MCP protocol eras, wired together.

fastmcp 4 serves no subscription methods (it answers "Method not found" and advertises
``resources.subscribe: false``; PrefectHQ/fastmcp #3641). The hub serves them on the SDK's
low-level server, reached through :mod:`bridge.mcp._sdk`:

* **handshake era** (protocol ≤ 2025-11-25: ``initialize``, then ``resources/subscribe`` and
  ``resources/unsubscribe``). A subscriber is the SDK ``Connection`` the request came on; a
  notification goes out on that connection's standalone channel — the stdio pipe, or the
  Streamable HTTP GET/SSE stream (so HTTP must be served *stateful*: stateless HTTP has no
  standalone channel, and ``resources/subscribe`` is refused there with a clear error).
* **2026-07-28** (no handshake, no ``resources/subscribe``). A client opens
  ``subscriptions/listen`` naming its URIs; the response *is* the stream. The SDK's
  ``ListenHandler`` serves it from an ``InMemorySubscriptionBus`` that the hub publishes on.

The SDK derives ``resources.subscribe`` from the registered handlers, per era, so registering
the three methods is the whole capability story — nothing is patched.

What may be subscribed: a URI of at most ``max_uri_chars`` (2 KB) that ``check_uri`` accepts
(the bridge passes :func:`bridge.mcp.uris.parse`: only its own URI shapes, a resource that does
not exist yet included), at most ``max_subscriptions_per_session`` per connection or listen
stream. A refusal is an MCP error in our words, quoting at most ~100 characters of the URI; a
refused URI is stored nowhere.

Connections are seen through an SDK middleware (every inbound message passes it); each
handshake-era connection is remembered once, with a callback on its ``exit_stack`` that
forgets it when it closes, so nothing grows without bound. A listen stream is forgotten when
its request ends.

The parts: :mod:`~bridge.mcp.registry` (who subscribed to what, plain data),
:mod:`~bridge.mcp.delivery` (deadlines and stall tracking), :mod:`~bridge.mcp._sdk` (the
private seams). This module is the MCP glue between them: request handlers, the connection
tracker, the listen bus, and the public face the pump and the app use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import anyio
from fastmcp import FastMCP
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
)
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
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
from bridge.log import get_logger
from bridge.mcp import _sdk
from bridge.mcp.delivery import Delivery, Notification
from bridge.mcp.registry import LimitReached, Registry, SubscriptionStats
from bridge.mcp.uris import MAX_URI_CHARS, quote_value

log = get_logger("bridge.mcp.subscriptions")

UPDATED: Final = "notifications/resources/updated"
LIST_CHANGED: Final = "notifications/resources/list_changed"
SUBSCRIPTION_METHODS: Final = (
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
)


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
        max_uri_chars: int = MAX_URI_CHARS,
        check_uri: Callable[[str], object] | None = None,
    ) -> None:
        self.max_uri_chars = max_uri_chars
        self.check_uri = check_uri
        """Called with each URI a client asks for (after the length check); raising a
        ``BridgeError`` refuses it with that message. None: any URI under the cap."""
        self._registry: Registry[Connection] = Registry(
            max_per_session=max_subscriptions_per_session, on_change=self._touch
        )
        self._delivery: Delivery[Connection] = Delivery(
            timeout_s=send_timeout_s, is_open=self._registry.is_open, drop=self._forget
        )
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus, max_subscriptions=max_listeners)
        self._installed_on: set[int] = set()
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
        _sdk.check_seams(server)
        if id(server) in self._installed_on:
            return
        served = [m for m in SUBSCRIPTION_METHODS if _sdk.has_request_handler(server, m)]
        if served:
            raise _sdk.SeamBroken(
                f"the server already serves {', '.join(served)} (another hub, or fastmcp "
                "serves subscriptions now: PrefectHQ/fastmcp #3641); install one hub on a "
                "server that serves none of them, or drop the hub if fastmcp does."
            )
        self._installed_on.add(id(server))
        _sdk.add_request_handler(
            server, "resources/subscribe", SubscribeRequestParams, self._on_subscribe
        )
        _sdk.add_request_handler(
            server, "resources/unsubscribe", UnsubscribeRequestParams, self._on_unsubscribe
        )
        _sdk.add_request_handler(
            server, "subscriptions/listen", SubscriptionsListenRequestParams, self._on_listen
        )
        _sdk.add_outermost_middleware(server, self._track)
        for version in (LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION):
            if not advertised_subscribe(server, version):
                raise _sdk.SeamBroken(
                    f"resources.subscribe is still not advertised at protocol {version} after "
                    "registering the subscription handlers; the SDK no longer derives the "
                    "capability from them. Update bridge/mcp/_sdk.py."
                )

    def close(self) -> None:
        """End every open listen stream gracefully (clients see the stream's final result)."""
        self._listen.close()

    # -- queries --------------------------------------------------------------------------

    def subscribed_uris(self) -> frozenset[str]:
        """Every URI somebody, in either era, is subscribed to right now."""
        return self._registry.subscribed_uris()

    def stats(self) -> SubscriptionStats:
        return self._registry.stats()

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
        plan: dict[Connection, list[Notification]] = {}
        for uri in wanted:
            for connection in self._registry.subscribers(uri):
                plan.setdefault(connection, []).append((UPDATED, {"uri": uri}))
        sent = await self._delivery.send(plan)
        for uri in wanted:
            listening = self._registry.listening(uri)
            if listening:
                await self._bus.publish(ResourceUpdated(uri=uri))
                sent += listening
        return sent

    async def notify_list_changed(self) -> int:
        """Send ``notifications/resources/list_changed`` to every handshake-era connection
        and every listen stream that asked for list changes. Returns how many were sent."""
        sent = await self._delivery.send(self._to_every_session(LIST_CHANGED, None))
        listening = self._registry.listening_for_list_changed()
        if listening:
            await self._bus.publish(ResourcesListChanged())
            sent += listening
        return sent

    async def send_custom(self, method: str, params: Mapping[str, object]) -> int:
        """Send a custom notification to every initialized handshake-era connection.
        (2026-07-28 connections have no standalone channel to carry it.)"""
        return await self._delivery.send(self._to_every_session(method, params))

    def _to_every_session(
        self, method: str, params: Mapping[str, object] | None
    ) -> dict[Connection, list[Notification]]:
        return {
            connection: [(method, params)]
            for connection in self._registry.sessions()
            if connection.initialized.is_set()
        }

    # -- connections ----------------------------------------------------------------------

    def _remember(self, connection: Connection) -> bool:
        """Register a handshake-era connection on first sight; False for a connection that
        cannot carry server notifications."""
        if self._registry.is_open(connection):
            return True
        if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return False  # a 2026 connection lives for one request; listen streams cover it
        if not connection.has_standalone_channel:
            return False  # stateless HTTP
        self._registry.open(connection)
        connection.exit_stack.callback(self._forget, connection)
        log.debug(
            "mcp.subscriptions.session_opened",
            session_id=connection.session_id,
            sessions=self._registry.stats().sessions,
        )
        return True

    def _forget(self, connection: Connection) -> None:
        self._delivery.forget(connection)
        if self._registry.close(connection):
            log.debug(
                "mcp.subscriptions.session_closed",
                session_id=connection.session_id,
                sessions=self._registry.stats().sessions,
            )

    def _subscribed(self, uris: frozenset[str]) -> None:
        if self.on_subscribe is None or not uris:
            return
        try:
            self.on_subscribe(uris)
        except Exception:  # a hook must not fail the client's request
            log.exception("mcp.subscriptions.hook_failed", uris=sorted(uris))

    # -- SDK handlers ---------------------------------------------------------------------

    async def _track(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        self._remember(_sdk.connection_of(ctx))
        return await call_next(ctx)

    async def _on_subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        connection = _sdk.connection_of(ctx)
        if not self._remember(connection):
            raise MCPError(
                INVALID_REQUEST,
                "resources/subscribe needs a connection that can carry server notifications "
                "(stdio, or Streamable HTTP served stateful); this one cannot. Re-read the "
                "resource when you need it, or reconnect over a stateful transport.",
            )
        self._check(params.uri)
        try:
            self._registry.subscribe(connection, params.uri)
        except LimitReached as exc:
            raise MCPError(INVALID_REQUEST, str(exc)) from exc
        self._subscribed(frozenset({params.uri}))
        log.debug(
            "mcp.subscriptions.subscribed",
            uri=params.uri,  # checked: at most max_uri_chars
            session_id=connection.session_id,
        )
        return EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        self._registry.unsubscribe(_sdk.connection_of(ctx), params.uri)
        return EmptyResult()

    async def _on_listen(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        wanted = params.notifications
        named = wanted.resource_subscriptions or ()
        if len(named) > self._registry.max_per_session:
            raise MCPError(
                INVALID_REQUEST,
                f"subscriptions/listen names {len(named)} resources; the limit per stream is "
                f"{self._registry.max_per_session}. Listen to fewer URIs.",
            )
        for uri in named:
            self._check(uri)
        uris = frozenset(named)
        try:
            token = self._registry.add_listener(
                uris, list_changed=bool(wanted.resources_list_changed)
            )
        except LimitReached as exc:
            raise MCPError(INVALID_REQUEST, str(exc)) from exc
        self._subscribed(uris)
        try:
            return await self._listen(ctx, params)
        finally:
            self._registry.remove_listener(token)

    def _check(self, uri: str) -> None:
        """Refuse a URI over the length cap or one ``check_uri`` rejects, in our words
        (an MCP ``INVALID_PARAMS`` error quoting at most ~100 characters of it)."""
        if len(uri) > self.max_uri_chars:
            raise MCPError(
                INVALID_PARAMS,
                f"cannot subscribe to {quote_value(uri)}: a resource URI may have at most "
                f"{self.max_uri_chars} characters.",
            )
        if self.check_uri is None:
            return
        try:
            self.check_uri(uri)
        except BridgeError as exc:
            raise MCPError(INVALID_PARAMS, f"cannot subscribe: {exc}") from None


def advertised_subscribe(server: FastMCP[Any], protocol_version: str) -> bool:
    """Whether ``server`` advertises ``resources.subscribe`` to a client of that era."""
    capabilities = _sdk.capabilities(server, protocol_version)
    return bool(capabilities.resources and capabilities.resources.subscribe)
