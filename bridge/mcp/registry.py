"""Who subscribed to which resource URI, in both MCP protocol eras. Plain data, no I/O.

* **handshake era**: a *session* (one per client connection, any hashable key: the hub uses
  the SDK ``Connection``) holds a set of URIs from ``resources/subscribe``; a reverse index
  answers "who wants this URI" without a scan. Every session can receive ``list_changed``.
* **2026-07-28**: a *listener* is one open ``subscriptions/listen`` stream with the URIs it
  named and whether it wants ``list_changed``; it lives as long as its request.

URIs match by exact string (a template's concrete URI is just a string here). Every mutation
that changes what :meth:`Registry.stats` reports calls ``on_change``, so a caller can wake
waiters without polling.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bridge.errors import BridgeError, quoted

K = TypeVar("K", bound=Hashable)


class LimitReached(BridgeError, ValueError):
    """A session or a listen stream would hold more URIs than the limit."""

    def __init__(self, message: str, *, held: int, limit: int) -> None:
        super().__init__(message)
        self.held = held
        self.limit = limit


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """A snapshot of the bookkeeping."""

    sessions: int
    """Open handshake-era connections (each can receive ``list_changed``)."""
    subscriptions: int
    """(subscriber, URI) pairs: handshake-era subscriptions plus URIs named by listen streams."""
    listeners: int
    """Open 2026-07-28 ``subscriptions/listen`` streams."""


@dataclass(frozen=True, slots=True)
class Listener:
    uris: frozenset[str]
    list_changed: bool


class Registry(Generic[K]):
    def __init__(
        self, *, max_per_session: int = 1000, on_change: Callable[[], None] | None = None
    ) -> None:
        if max_per_session < 1:
            raise ValueError("max_subscriptions_per_session must be at least 1")
        self.max_per_session = max_per_session
        self.on_change = on_change
        self._sessions: dict[K, set[str]] = {}
        self._subscribers: dict[str, set[K]] = {}  # the reverse index
        self._listeners: dict[object, Listener] = {}

    # -- handshake era ----------------------------------------------------------------------

    def open(self, session: K) -> bool:
        """Register ``session``; False if it already was."""
        if session in self._sessions:
            return False
        self._sessions[session] = set()
        self._changed()
        return True

    def is_open(self, session: K) -> bool:
        return session in self._sessions

    def subscribe(self, session: K, uri: str) -> bool:
        """Add ``uri`` to an open session's subscriptions; False if it already held it.

        Raises ``LimitReached`` when the session holds ``max_per_session`` other URIs, and
        ``KeyError`` for a session that is not open."""
        uris = self._sessions[session]
        if uri in uris:
            return False
        if len(uris) >= self.max_per_session:
            raise LimitReached(
                f"cannot subscribe to {quoted(uri)}: this session already has {len(uris)} resource "
                "subscriptions, the limit; unsubscribe from some first.",
                held=len(uris),
                limit=self.max_per_session,
            )
        uris.add(uri)
        self._subscribers.setdefault(uri, set()).add(session)
        self._changed()
        return True

    def unsubscribe(self, session: K, uri: str) -> bool:
        uris = self._sessions.get(session)
        if uris is None or uri not in uris:
            return False
        uris.discard(uri)
        self._drop_subscriber(uri, session)
        self._changed()
        return True

    def close(self, session: K) -> bool:
        """Forget ``session`` and all its subscriptions; False if it was not open."""
        uris = self._sessions.pop(session, None)
        if uris is None:
            return False
        for uri in uris:
            self._drop_subscriber(uri, session)
        self._changed()
        return True

    def sessions(self) -> list[K]:
        return list(self._sessions)

    def subscribers(self, uri: str) -> list[K]:
        return list(self._subscribers.get(uri, ()))

    def _drop_subscriber(self, uri: str, session: K) -> None:
        subscribers = self._subscribers.get(uri)
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self._subscribers[uri]

    # -- 2026-07-28 -------------------------------------------------------------------------

    def add_listener(self, uris: frozenset[str], *, list_changed: bool) -> object:
        """Register a listen stream; returns the token to remove it with.

        Raises ``LimitReached`` when it names more than ``max_per_session`` URIs."""
        if len(uris) > self.max_per_session:
            raise LimitReached(
                f"subscriptions/listen names {len(uris)} resources; the limit per stream is "
                f"{self.max_per_session}. Listen to fewer URIs (or open a second stream).",
                held=len(uris),
                limit=self.max_per_session,
            )
        token = object()
        self._listeners[token] = Listener(uris, list_changed)
        self._changed()
        return token

    def remove_listener(self, token: object) -> None:
        if self._listeners.pop(token, None) is not None:
            self._changed()

    def listening(self, uri: str) -> int:
        """Open listen streams that named ``uri``."""
        return sum(1 for lst in self._listeners.values() if uri in lst.uris)

    def listening_for_list_changed(self) -> int:
        return sum(1 for lst in self._listeners.values() if lst.list_changed)

    # -- both -------------------------------------------------------------------------------

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

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
