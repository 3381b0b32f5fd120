"""Stores loaded with synthetic state: "100 resources and 200 000 log lines held"."""

from __future__ import annotations

import time
from typing import Final

from bench import synth
from bench.common import MIB
from bridge.core.state import ConnectionInfo
from bridge.store import Store
from bridge.tilt.view import decode_view

RESOURCES: Final = 100
LINES: Final = 200_000
HELD_BUDGET: Final = 512 * MIB
"""Large enough that no line of the 200 000 is evicted (eviction is measured apart)."""


def held_store(
    n_resources: int = RESOURCES,
    n_lines: int = LINES,
    *,
    budget_bytes: int = HELD_BUDGET,
    connected: bool = True,
) -> Store:
    """A store fed one synthetic complete view and ``n_lines`` segments, as the watcher would."""
    store = Store(log_budget_bytes=budget_bytes)
    store.new_connection()
    store.apply_frame(decode_view(synth.complete_view(n_resources)))
    for raw in synth.delta_frames(n_lines, n_resources):
        store.apply_frame(decode_view(raw))
    if connected:
        store.set_connection(
            ConnectionInfo(
                state="connected",
                since=time.time(),
                url="ws://127.0.0.1:10350/ws/view",
                connections=1,
            )
        )
    return store
