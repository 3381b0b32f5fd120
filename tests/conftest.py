"""Shared fixtures. Recordings are the real Tilt traffic bundled in bridge/data/recordings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bridge.testing import load_recording


@dataclass
class Conn:
    """One websocket connection of a recording: its label and raw frame texts."""

    label: str
    frames: list[str] = field(default_factory=list)


def recording(name: str) -> list[Conn]:
    """A bundled recording (read by :func:`bridge.testing.load_recording`)."""
    return [
        Conn(label=c.label, frames=[f.raw for f in c.frames])
        for c in load_recording(name).connections
    ]


ALL = [
    "01-startup",
    "02-trigger-manual",
    "03-failing-build",
    "04-disable-enable",
    "05-uibutton-click",
    "06-tiltfile-edit",
    "07-reconnect",
    "08-log-truncation",
    "09-tilt-restart",
]


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp is asyncio-only in practice; MCP-level tests run on asyncio."""
    return "asyncio"


def iter_frames(name: str) -> Iterator[tuple[int, str]]:
    for i, conn in enumerate(recording(name)):
        for raw in conn.frames:
            yield i, raw
