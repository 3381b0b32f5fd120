"""What ``get_logs`` and the log resources accept, parsed into a :class:`LogQuery`:
``since``, levels, sources; and how one line is rendered. Pure: ``now`` is passed in.
``grep`` is compiled by :mod:`bridge.grep` (time-bounded matching)."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from bridge.core.inputs import MAX_ENUM, MAX_SINCE, check_enum, check_name, check_text, quote
from bridge.core.logbuffer import LogBuffer, LogLine, format_time_us, strip_ansi
from bridge.core.state import State
from bridge.errors import ToolError, UnknownResource

LEVELS = ("DEBUG", "VERBOSE", "INFO", "WARN", "ERROR")
SOURCES = ("build", "runtime", "all")
"""Tilt's own ``tilt logs --source`` values (``all`` = no filter)."""

_DURATION = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)?")
_SCALE = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None, now: float) -> int:
    """``since``: a duration (``90s``, ``5m``, ``2h``, ``1d``) or an RFC 3339 time → µs.
    A duration reaching before the epoch means everything (0)."""
    if not value:
        return 0
    check_text("since", value, MAX_SINCE, "a duration or a time")
    value = value.strip()
    m = _DURATION.fullmatch(value)
    if m:
        ago = float(m.group(1)) * _SCALE[m.group(2) or "s"]
        return max(0, int((now - ago) * 1_000_000)) if ago < now else 0
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ToolError(
            f"since={quote(value)} is neither a duration (e.g. '90s', '5m', '2h') nor an "
            "ISO 8601 time (e.g. '2026-11-27T10:00:00Z')"
        ) from None
    if dt.tzinfo is None:
        raise ToolError(f"since={quote(value)} has no timezone; add 'Z' for UTC")
    try:
        return max(0, int(dt.timestamp() * 1_000_000))
    except (OverflowError, ValueError, OSError):
        return 0


def levels_from(level: str | None) -> Collection[str] | None:
    """``level``: the minimum level (``warn`` = WARN and ERROR)."""
    if not level:
        return None
    check_text("level", level, MAX_ENUM, "a level")
    lv = level.strip().upper()
    lv = {"WARNING": "WARN", "ERR": "ERROR"}.get(lv, lv)
    if lv not in LEVELS:
        raise ToolError(
            f"level must be one of {', '.join(x.lower() for x in LEVELS)}; got {quote(level)}"
        )
    if lv == "DEBUG":
        return None
    return set(LEVELS[LEVELS.index(lv) :])


def sources_from(source: str | None) -> Collection[str] | None:
    """``source``: ``build``, ``runtime`` or ``all`` (None = all)."""
    if source is None or source == "all":
        return None
    check_text("source", source, MAX_ENUM, "a source")
    word = check_enum("source", source.strip().lower(), SOURCES)
    return None if word == "all" else {word}


def render_line(line: LogLine, *, with_resource: bool, timestamps: bool) -> str:
    parts = []
    if timestamps:
        parts.append(format_time_us(line.time_us)[11:23])
    if with_resource:
        parts.append(line.resource or "(global)")
    if line.level not in ("INFO", ""):
        parts.append(line.level)
    parts.append(strip_ansi(line.text))
    return " ".join(parts)


def resolve_log_resource(state: State, buffer: LogBuffer, name: str) -> None:
    check_name(name, "resource")
    if name in state.resources or buffer.line_count(name):
        return
    raise UnknownResource("resource", name, set(state.resources) | set(buffer.resources()) - {""})
