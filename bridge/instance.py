"""One Tilt the bridge watches: its store, its HTTP API client and its watcher.

The app opens one :class:`Instance` per Tilt and starts its watcher in the app's task
group; the MCP layer reads the instance's store and writes through its HTTP client. A
bridge that serves several Tilts holds several instances (they share nothing but the
settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from bridge.lifecycle import StartGate
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.watcher import Watcher


@dataclass(frozen=True, slots=True)
class Instance:
    url: str
    store: Store
    http: TiltHTTP
    watcher: Watcher


@asynccontextmanager
async def open_instance(
    settings: Settings,
    *,
    after_big_frame: Callable[[], None] | None = None,
    gate: StartGate | None = None,
) -> AsyncIterator[Instance]:
    """An instance for the Tilt ``settings`` point at; its HTTP client is closed on exit.
    Start ``instance.watcher.run`` with ``await tg.start(...)`` to connect (once ``gate``
    is open)."""
    store = Store(log_budget_bytes=settings.log_budget_bytes)
    http = TiltHTTP(settings.tilt_base_url, settings.token)
    try:
        source = TiltSource(http, settings.tilt_ws_url, max_frame_bytes=settings.max_frame_bytes)
        watcher = Watcher(
            store, source, url=settings.tilt_ws_url, after_big_frame=after_big_frame, gate=gate
        )
        yield Instance(settings.tilt_ws_url, store, http, watcher)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            await http.aclose()
