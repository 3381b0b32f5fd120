"""Claude Code's experimental channel push (``--channel-push``).

The server declares ``capabilities.experimental["claude/channel"]`` at ``initialize`` and sends
``notifications/claude/channel`` ``{content, meta}``; Claude Code shows the content to the model
(when its session was started with ``--dangerously-load-development-channels``; otherwise it
drops them). Claude Code declares nothing itself, so clients are not filtered: others ignore
an unknown notification. Handshake era only: a 2026-07-28 connection has no standalone channel.

This module decides which store changes are worth interrupting an agent for (pure) and what
the notification looks like; the hub delivers it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from bridge.core.state import TILTFILE, Change, ConnectionInfo
from bridge.mcp.subscriptions import SubscriptionHub

CAPABILITY: Final = "claude/channel"
METHOD: Final = "notifications/claude/channel"


def capability() -> dict[str, dict[str, object]]:
    """The experimental capability a channel server declares at ``initialize``."""
    return {CAPABILITY: {}}


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    content: str
    meta: dict[str, str] = field(default_factory=dict)


async def push(hub: SubscriptionHub, event: ChannelEvent) -> int:
    """Send ``event`` to every handshake-era connection; returns how many were sent."""
    return await hub.send_custom(METHOD, {"content": event.content, "meta": dict(event.meta)})


def channel_events(
    change: Change, conn_before: ConnectionInfo, conn_after: ConnectionInfo
) -> list[ChannelEvent]:
    """Concise events worth interrupting an agent for. Pure."""
    out: list[ChannelEvent] = []
    for t in change.transitions:
        if t.kind == "update" and t.new == "error":
            what = (
                "Tiltfile failed to load"
                if t.resource == TILTFILE
                else f"{t.resource}: build failed"
            )
            detail = f": {t.error.splitlines()[0][:200]}" if t.error else ""
            out.append(
                ChannelEvent(what + detail, {"resource": t.resource, "event": "build_failed"})
            )
        elif t.kind == "update" and t.old == "error" and t.new == "ok":
            what = (
                "Tiltfile loaded again"
                if t.resource == TILTFILE
                else f"{t.resource}: build recovered"
            )
            out.append(ChannelEvent(what, {"resource": t.resource, "event": "build_recovered"}))
        elif t.kind == "runtime" and t.new == "error":
            out.append(
                ChannelEvent(
                    f"{t.resource}: runtime crashed", {"resource": t.resource, "event": "crashed"}
                )
            )
        elif t.kind == "runtime" and t.new == "ok" and t.old in ("error", "pending"):
            out.append(
                ChannelEvent(f"{t.resource}: ready", {"resource": t.resource, "event": "ready"})
            )
    if conn_before.state != conn_after.state:
        if conn_after.state in ("disconnected", "auth_failed") and conn_before.state == "connected":
            why = f": {conn_after.last_error}" if conn_after.last_error else ""
            out.append(ChannelEvent(f"Tilt disconnected{why}", {"event": "tilt_disconnected"}))
        elif conn_after.state == "connected" and conn_before.connections > 0:
            out.append(ChannelEvent("Tilt reconnected", {"event": "tilt_reconnected"}))
    return out
