"""What ``get_logs`` and the log resources accept, parsed into a :class:`LogQuery`:
``since``, levels, sources, ``grep``; and how one line is rendered. Pure: ``now`` is passed in."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from bridge.core.logbuffer import LogBuffer, LogLine, format_time_us, strip_ansi
from bridge.core.state import State
from bridge.errors import ToolError, UnknownResource

LEVELS = ("DEBUG", "VERBOSE", "INFO", "WARN", "ERROR")
SOURCES = ("build", "runtime", "other")


def parse_since(value: str | None, now: float) -> int:
    """``since``: a duration (``90s``, ``5m``, ``2h``, ``1d``) or an RFC 3339 time → µs."""
    if not value:
        return 0
    value = value.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", value)
    if m:
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
        return int((now - float(m.group(1)) * scale) * 1_000_000)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ToolError(
            f"since={value!r} is neither a duration (e.g. '90s', '5m', '2h') nor an "
            "ISO 8601 time (e.g. '2026-11-27T10:00:00Z')"
        ) from None
    if dt.tzinfo is None:
        raise ToolError(f"since={value!r} has no timezone; add 'Z' for UTC")
    return int(dt.timestamp() * 1_000_000)


def compile_grep(pattern: str | None, *, regex: bool) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern if regex else re.escape(pattern), re.IGNORECASE)
    except re.error as exc:
        raise ToolError(
            f"grep={pattern!r} is not a valid regular expression ({exc}); "
            "pass regex=false to search for the plain text"
        ) from None


def levels_from(level: str | None) -> Collection[str] | None:
    """``level``: the minimum level (``warn`` = WARN and ERROR)."""
    if not level:
        return None
    lv = level.strip().upper()
    lv = {"WARNING": "WARN", "ERR": "ERROR"}.get(lv, lv)
    if lv not in LEVELS:
        raise ToolError(
            f"level must be one of {', '.join(x.lower() for x in LEVELS)}; got {level!r}"
        )
    if lv == "DEBUG":
        return None
    return set(LEVELS[LEVELS.index(lv) :])


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
    if name in state.resources or buffer.line_count(name):
        return
    raise UnknownResource("resource", name, set(state.resources) | set(buffer.resources()) - {""})
