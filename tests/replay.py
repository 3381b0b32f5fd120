"""Replay a bundled recording of a real Tilt straight into a :class:`Store` (no server).

``shift_s`` moves every timestamp Tilt wrote (build times, log times, tiltStartTime) by
that many seconds: a Tilt whose clock disagrees with ours."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from bridge.store import Store
from bridge.testing import Frame, Marker, load_recording
from bridge.tilt.view import decode_view

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def shifted(raw: str, shift_s: float) -> str:
    if not shift_s:
        return raw

    def move(m: re.Match[str]) -> str:
        text = m.group(0)
        frac = "." in text
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(seconds=shift_s)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if frac else "%Y-%m-%dT%H:%M:%SZ")

    return _ISO.sub(move, raw)


def events(name: str, connection: int = 0) -> list[Frame | Marker]:
    return list(load_recording(name).connections[connection].events)


def trigger_of(marker: Marker) -> str | None:
    """The resource a ``POST /api/trigger <name> …`` action marker names."""
    what = str(marker.data.get("what", ""))
    if marker.kind == "action" and what.startswith("POST /api/trigger "):
        return what.split()[2]
    return None


def replay(
    store: Store,
    items: list[Frame | Marker],
    *,
    shift_s: float = 0.0,
    on_trigger: Callable[[str], None] | None = None,
) -> Iterator[Frame]:
    """Apply the frames one at a time (yielding after each); at each trigger marker call
    ``on_trigger(resource)`` (what the controller does once Tilt accepted the POST)."""
    store.new_connection()
    for item in items:
        if isinstance(item, Marker):
            name = trigger_of(item)
            if name is not None and on_trigger is not None:
                on_trigger(name)
            continue
        store.apply_frame(decode_view(shifted(item.raw, shift_s)))
        yield item


def apply_all(store: Store, name: str, **kw: object) -> Store:
    for _ in replay(store, events(name), **kw):  # type: ignore[arg-type]
        pass
    return store
