"""Shared fixtures. Recordings are the real Tilt traffic bundled in bridge/data/recordings."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pytest


@dataclass
class Conn:
    """One websocket connection of a recording: its frames (raw text) and markers."""

    label: str
    frames: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # frames and markers in order


def recording(name: str) -> list[Conn]:
    path = resources.files("bridge") / "data" / "recordings" / f"{name}.jsonl.gz"
    conns: list[Conn] = []
    with gzip.open(str(path), "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("marker") == "connected":
                conns.append(Conn(label=rec.get("label", "")))
                continue
            if not conns:
                conns.append(Conn(label=""))
            conns[-1].events.append(rec)
            if "raw" in rec:
                conns[-1].frames.append(rec["raw"])
    return conns


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
