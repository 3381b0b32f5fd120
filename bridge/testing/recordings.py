"""Recordings: real ``/ws/view`` traffic from a real Tilt, bundled gzipped in
``bridge/data/recordings``.

:func:`load_recording` reads one into frozen :class:`Recording` / :class:`Connection` /
:class:`Frame` / :class:`Marker` values; :func:`load_api_view` reads the recorded
``GET /api/view`` answer.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final, TypeAlias

__all__ = [
    "DEFAULT_INITIAL",
    "Connection",
    "Event",
    "Frame",
    "Marker",
    "Recording",
    "load_api_view",
    "load_recording",
    "recording_names",
]

DEFAULT_INITIAL: Final = "02-trigger-manual"
"""The recording whose first complete view is the default state: the demo project, loaded."""

_RECORDINGS_DIR: Final = "data/recordings"


@dataclass(frozen=True, slots=True)
class Frame:
    """One websocket text message exactly as Tilt sent it (``raw`` ends with ``\\n``)."""

    seq: int
    t: float
    raw: str

    def view(self) -> dict[str, object]:
        """The decoded View."""
        decoded: dict[str, object] = json.loads(self.raw)
        return decoded


@dataclass(frozen=True, slots=True)
class Marker:
    """A non-frame event of a recording: ``connected``, ``action``, ``server-closed``, ….

    ``data`` holds the marker's other fields, e.g. an action's ``what``, ``status``
    and ``body``, or ``server-closed``'s ``code``.
    """

    kind: str
    data: Mapping[str, object]


Event: TypeAlias = Frame | Marker


@dataclass(frozen=True, slots=True)
class Connection:
    """One websocket connection of a recording: its events in order, frames and markers."""

    label: str
    events: tuple[Event, ...]

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(e for e in self.events if isinstance(e, Frame))

    @property
    def markers(self) -> tuple[Marker, ...]:
        return tuple(e for e in self.events if isinstance(e, Marker))

    def complete_view(self) -> dict[str, object]:
        """The connection's first frame: the complete view (``isComplete: true``)."""
        return self.frames[0].view()


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded scenario (``NN-name``): one or more connections."""

    name: str
    connections: tuple[Connection, ...]


def _recording_file(filename: str) -> bytes:
    path = resources.files("bridge").joinpath(f"{_RECORDINGS_DIR}/{filename}")
    return gzip.decompress(path.read_bytes())


def recording_names() -> list[str]:
    """The bundled recordings, sorted: ``["01-startup", "02-trigger-manual", …]``."""
    folder = resources.files("bridge").joinpath(_RECORDINGS_DIR)
    suffix = ".jsonl.gz"
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))


@cache
def load_recording(name: str) -> Recording:
    """Read a bundled recording, e.g. ``load_recording("02-trigger-manual")``.

    A ``connected`` marker starts a new :class:`Connection` (and is its first event).
    Raises :class:`LookupError` for an unknown name, listing the known ones.
    """
    try:
        text = _recording_file(f"{name}.jsonl.gz").decode("utf-8")
    except FileNotFoundError:
        raise LookupError(
            f"no recording named {name!r}; known: {', '.join(recording_names())}"
        ) from None
    connections: list[tuple[str, list[Event]]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec: dict[str, object] = json.loads(line)
        event: Event
        if "marker" in rec:
            kind = str(rec.pop("marker"))
            event = Marker(kind=kind, data=MappingProxyType(rec))
            if kind == "connected":
                connections.append((str(rec.get("label", "")), []))
        else:
            seq, t, raw = rec["seq"], rec["t"], rec["raw"]
            assert isinstance(seq, int)
            assert isinstance(t, int | float)
            assert isinstance(raw, str)
            event = Frame(seq=seq, t=float(t), raw=raw)
        if not connections:
            connections.append(("", []))
        connections[-1][1].append(event)
    return Recording(
        name=name,
        connections=tuple(Connection(label=lbl, events=tuple(evs)) for lbl, evs in connections),
    )


def load_api_view() -> dict[str, object]:
    """The recorded ``GET /api/view`` answer (a complete view as JSON)."""
    decoded: dict[str, object] = json.loads(_recording_file("api-view.json.gz"))
    return decoded
