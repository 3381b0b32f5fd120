"""Facts derived from one resource: its one-word state, why it is not ok, how stale an
answer is. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime

from bridge.core.logbuffer import LogBuffer, LogLine, format_time_us, strip_ansi
from bridge.core.state import ConnectionInfo, State
from bridge.errors import UnknownResource
from bridge.tilt.view import Button, Resource

MAX_ERROR_CHARS = 240
STATES = ("ok", "error", "building", "pending", "waiting", "idle", "disabled")


def summary_state(res: Resource) -> str:
    """One word per resource: ok, error, building, pending, waiting, idle or disabled."""
    if res.disabled:
        return "disabled"
    if res.update_status == "error" or res.runtime_status == "error":
        return "error"
    if res.update_status == "in_progress" or res.current_build is not None:
        return "building"
    if res.update_status == "pending" or res.queued:
        return "pending"
    if res.waiting is not None:
        return "waiting"
    if res.runtime_status == "pending":
        return "pending"
    if res.update_status in ("ok", "not_applicable") and res.runtime_status in (
        "ok",
        "not_applicable",
        "unknown",
        "none",
    ):
        if res.update_status == "not_applicable" and res.runtime_status in ("unknown", "none"):
            return "idle"
        return "ok"
    return "idle"


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(strip_ansi(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_error_line(logs: LogBuffer, resource: str) -> LogLine | None:
    for line in logs.newest_first([resource]):
        if line.level == "ERROR" or (line.anchor and line.level == "WARN"):
            return line
    return None


def problem_text(res: Resource, logs: LogBuffer) -> str | None:
    """Why a resource is not ok, in one line (None when it is fine)."""
    state = summary_state(res)
    if state == "error":
        if res.update_status == "error" and res.build_history and res.build_history[0].error:
            return "build failed: " + one_line(res.build_history[0].error)
        line = last_error_line(logs, res.name)
        if line is None:
            newest = next(logs.newest_first([res.name]), None)
            line = newest
        what = "runtime error" if res.runtime_status == "error" else "update error"
        return what + (": " + one_line(line.text) if line is not None else "")
    if state == "pending":
        if res.triggered:
            return "triggered; Tilt accepted it and has not started the build yet"
        if res.queued:
            return "queued for a build"
        if res.runtime_status == "pending":
            # Tilt's UI says "Pending" and nothing more: a UIResource does not say whether a
            # readiness probe exists (``ticker`` has none and is pending while it starts)
            return "runtime pending (not ready yet)"
        return "build pending" + (" (files changed)" if res.has_pending_changes else "")
    if state == "waiting" and res.waiting is not None:
        on = ", ".join(res.waiting.on)
        return f"waiting: {res.waiting.reason}" + (f" on {on}" if on else "")
    if state == "building":
        return "building"
    return None


def duration_s(start: str | None, finish: str | None) -> float | None:
    if not start or not finish:
        return None
    try:
        return round(
            (datetime.fromisoformat(finish) - datetime.fromisoformat(start)).total_seconds(), 3
        )
    except ValueError:
        return None


def resolve(state: State, name: str) -> Resource:
    res = state.resources.get(name)
    if res is None:
        raise UnknownResource("resource", name, state.resources.keys())
    return res


def button_kind(btn: Button) -> str:
    if btn.button_type == "DisableToggle":
        return "disable-toggle"
    if btn.button_type == "StopBuild":
        return "stop-build"
    return "custom"


def stale_note(conn: ConnectionInfo) -> str | None:
    """Why an answer may be stale. It names the moment the state began rather than an age,
    so the text stays the same while nothing changes (subscribers get no empty updates)."""
    if conn.connected:
        return None
    age = ""
    if conn.since:
        age = f" since {format_time_us(int(conn.since * 1_000_000))[:19]}Z"
    why = f" (last error: {conn.last_error})" if conn.last_error else ""
    return (
        f"Tilt is {conn.state.replace('_', ' ')}{age}{why}. "
        "This answer comes from the last known state and may be stale."
    )
