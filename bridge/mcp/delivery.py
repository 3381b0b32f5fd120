"""Sending notifications to handshake-era clients: deadlines and stall tracking.

One batch is a plan: each peer and the notifications it should get, in order. Peers are served
concurrently, each in order. A peer that stops reading (its standalone channel is full) costs
one ``timeout_s`` per batch, the rest of its batch is skipped, and after ``max_stalls`` stalled
batches in a row it is dropped; a peer whose channel raises is dropped at once. So one client
cannot hold up the pump, and through it everyone else, for long.

Peers are anything with an ``outbound.notify(method, params)`` and a ``session_id``: the SDK
``Connection`` in the server, a stand-in in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Final, Generic, Protocol, TypeVar

import anyio

from bridge.log import get_logger

log = get_logger("bridge.mcp.delivery")

MAX_STALLS: Final = 3
"""Batches in a row a client may leave unread before it is dropped."""

Notification = tuple[str, Mapping[str, object] | None]
"""``(method, params)``."""


class Notifier(Protocol):
    async def notify(self, method: str, params: Mapping[str, object] | None) -> None: ...


class Peer(Hashable, Protocol):
    @property
    def outbound(self) -> Notifier: ...

    @property
    def session_id(self) -> str | None: ...


P = TypeVar("P", bound=Peer)


class Delivery(Generic[P]):
    """Sends plans; ``is_open(peer)`` says whether a peer still wants anything, ``drop(peer)``
    is called once for a peer that is broken or stalled ``max_stalls`` times."""

    def __init__(
        self,
        *,
        timeout_s: float,
        is_open: Callable[[P], bool],
        drop: Callable[[P], None],
        max_stalls: int = MAX_STALLS,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_stalls = max_stalls
        self._is_open = is_open
        self._drop = drop
        self._stalls: dict[P, int] = {}  # stalled batches in a row, per peer

    def stalls(self, peer: P) -> int:
        return self._stalls.get(peer, 0)

    def forget(self, peer: P) -> None:
        """Drop the stall count of a peer that went away."""
        self._stalls.pop(peer, None)

    async def send(self, plan: Mapping[P, Sequence[Notification]]) -> int:
        """Deliver ``plan``; returns how many notifications were sent."""
        sent = 0

        async def one(peer: P, items: Sequence[Notification]) -> None:
            nonlocal sent
            for method, params in items:
                if not self._is_open(peer):
                    return
                with anyio.move_on_after(self.timeout_s) as scope:
                    try:
                        await peer.outbound.notify(method, params)
                    except Exception as exc:  # the client side is gone or broken: drop it
                        log.debug(
                            "mcp.subscriptions.client_dropped",
                            method=method,
                            error=repr(exc),
                            session_id=peer.session_id,
                        )
                        self._give_up(peer)
                        return
                if scope.cancelled_caught:  # a client that stopped reading
                    stalls = self._stalls[peer] = self.stalls(peer) + 1
                    log.warning(
                        "mcp.subscriptions.send_timed_out",
                        method=method,
                        timeout_s=self.timeout_s,
                        stalls=stalls,
                        session_id=peer.session_id,
                    )
                    if stalls >= self.max_stalls:
                        self._give_up(peer)
                    return
                self._stalls.pop(peer, None)
                sent += 1

        if len(plan) == 1:
            [(peer, items)] = plan.items()
            await one(peer, items)
            return sent
        async with anyio.create_task_group() as tg:
            for peer, items in plan.items():
                tg.start_soon(one, peer, items)
        return sent

    def _give_up(self, peer: P) -> None:
        self.forget(peer)
        self._drop(peer)
