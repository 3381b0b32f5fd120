"""What tools, resources, prompts and the ``status`` command show: pure presenters.

Every function here reads a :class:`~bridge.state.State` (and the log buffer)
and returns pydantic models: compact by default, detail on request. No I/O, no
clock (``now`` is passed in), so the same answers serve MCP tools, resources,
prompts and the CLI, and are unit-tested directly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from bridge.errors import ToolError, UnknownResource
from bridge.logbuffer import GLOBAL, LogBuffer, LogLine, LogQuery, format_time_us, strip_ansi
from bridge.state import TILTFILE, ConnectionInfo, State
from bridge.tilt.view import TRIGGER_MODES, Button, Resource

MAX_ERROR_CHARS = 240
LEVELS = ("DEBUG", "VERBOSE", "INFO", "WARN", "ERROR")
SOURCES = ("build", "runtime", "other")
STATES = ("ok", "error", "building", "pending", "waiting", "idle", "disabled")


# --------------------------------------------------------------------------- derived facts


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
        if res.queued:
            return "queued for a build"
        if res.runtime_status == "pending":
            return "running, not ready yet (readiness probe pending)"
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


# --------------------------------------------------------------------------- models


class Compact(BaseModel):
    """Base of every answer model. Answers are sent with ``exclude_none``: every omitted
    ``null`` is a token saved (tools: :func:`bridge.mcp.context.model_errors`)."""


class ConnectionOut(Compact):
    state: str = Field(description="connected | connecting | disconnected | auth_failed")
    since: str | None = None
    url: str
    last_error: str | None = None


class ProblemOut(Compact):
    name: str
    state: str
    why: str


class StatusOut(Compact):
    tilt_version: str | None = None
    connection: ConnectionOut
    stale: str | None = Field(
        None, description="Set when Tilt is not connected: answers come from the last known state"
    )
    tiltfile: str = Field(description="ok | error | loading | not loaded")
    tiltfile_error: str | None = None
    resources: int
    counts: dict[str, int] = Field(description="resources per state")
    problems: list[ProblemOut] = Field(description="every resource in error, pending or waiting")


class ResourceRow(Compact):
    name: str
    state: str
    update: str
    runtime: str
    labels: list[str] | None = None
    why: str | None = None


class ResourceList(Compact):
    resources: list[ResourceRow]
    total: int
    stale: str | None = None


class BuildOut(Compact):
    start: str | None = None
    duration_s: float | None = None
    error: str | None = None
    warnings: list[str] | None = None
    crash_rebuild: bool | None = None


class ButtonInputOut(Compact):
    name: str
    type: str
    label: str | None = None
    default: str | bool | None = None
    choices: list[str] | None = None


class ButtonOut(Compact):
    name: str
    text: str
    location: str = Field(description="resource name, or 'global'")
    kind: str = Field(description="custom | disable-toggle | stop-build")
    inputs: list[ButtonInputOut] | None = None
    requires_confirmation: bool | None = None
    disabled: bool | None = None


class ResourceDetail(Compact):
    name: str
    state: str
    why: str | None = None
    update_status: str
    runtime_status: str
    conditions: dict[str, str] = Field(description="type -> status (reason)")
    trigger_mode: str
    disabled: bool
    labels: list[str]
    kinds: list[str] = Field(description="spec types: local, image, k8s, docker-compose")
    current_build: BuildOut | None = None
    pending_since: str | None = None
    queued: bool
    has_pending_changes: bool
    last_deploy: str | None = None
    builds: list[BuildOut] = Field(description="newest first")
    waiting_on: list[str] | None = None
    waiting_reason: str | None = None
    endpoints: list[str]
    pid: int | None = None
    pod: dict[str, str | int | bool] | None = None
    compose_health: str | None = None
    buttons: list[ButtonOut]
    stale: str | None = None


class LogsOut(Compact):
    resource: str = Field(description="resource name, or '(all)' interleaved")
    lines: list[str]
    shown: int
    truncated: str | None = Field(
        None, description="Set when lines were cut; says how to ask for more"
    )
    stale: str | None = None


# --------------------------------------------------------------------------- presenters


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


def _iso(ts: float) -> str | None:
    return format_time_us(int(ts * 1_000_000)) if ts else None


def connection_out(conn: ConnectionInfo) -> ConnectionOut:
    return ConnectionOut(
        state=conn.state, since=_iso(conn.since), url=conn.url, last_error=conn.last_error
    )


def status(state: State, logs: LogBuffer, now: float) -> StatusOut:
    resources = [r for r in state.ordered() if r.name != TILTFILE]
    counts = Counter(summary_state(r) for r in resources)
    problems = []
    for res in resources:
        why = problem_text(res, logs)
        if why is not None and summary_state(res) in ("error", "pending", "waiting"):
            problems.append(ProblemOut(name=res.name, state=summary_state(res), why=why))
    tf = state.tiltfile
    tiltfile_error = None
    if tf is None:
        tiltfile = "not loaded"
    elif tf.update_status == "error":
        tiltfile = "error"
        tiltfile_error = (
            one_line(tf.build_history[0].error, 400)
            if tf.build_history and tf.build_history[0].error
            else None
        )
    elif tf.update_status in ("in_progress", "pending"):
        tiltfile = "loading"
    else:
        tiltfile = "ok"
    if state.session and state.session.fatal_error:
        tiltfile_error = one_line(state.session.fatal_error, 400)
    return StatusOut(
        tilt_version=state.session.version if state.session else None,
        connection=connection_out(state.connection),
        stale=stale_note(state.connection),
        tiltfile=tiltfile,
        tiltfile_error=tiltfile_error,
        resources=len(resources),
        counts=dict(sorted(counts.items())),
        problems=problems,
    )


def resource_rows(
    state: State,
    logs: LogBuffer,
    now: float,
    *,
    label: str | None = None,
    status_filter: str | None = None,
    with_labels: bool = True,
) -> ResourceList:
    if status_filter is not None and status_filter not in STATES:
        raise ToolError(f"status must be one of {', '.join(STATES)}; got {status_filter!r}")
    rows = []
    all_labels = {lab for r in state.resources.values() for lab in r.labels}
    if label is not None and label not in all_labels:
        raise UnknownResource("label", label, all_labels)
    for res in state.ordered():
        if label is not None and label not in res.labels:
            continue
        st = summary_state(res)
        if status_filter is not None and st != status_filter:
            continue
        rows.append(
            ResourceRow(
                name=res.name,
                state=st,
                update=res.update_status,
                runtime=res.runtime_status,
                labels=list(res.labels) if with_labels and res.labels else None,
                why=problem_text(res, logs) if st != "ok" else None,
            )
        )
    return ResourceList(
        resources=rows, total=len(state.resources), stale=stale_note(state.connection)
    )


def button_kind(btn: Button) -> str:
    if btn.button_type == "DisableToggle":
        return "disable-toggle"
    if btn.button_type == "StopBuild":
        return "stop-build"
    return "custom"


def button_out(btn: Button) -> ButtonOut:
    inputs = [
        ButtonInputOut(
            name=i.name,
            type=i.kind,
            label=i.label or None,
            default=i.default,
            choices=list(i.choices) or None,
        )
        for i in btn.inputs
        if i.kind != "hidden"
    ]
    return ButtonOut(
        name=btn.name,
        text=btn.text,
        location=btn.component_id if btn.component_type == "Resource" else "global",
        kind=button_kind(btn),
        inputs=inputs or None,
        requires_confirmation=btn.requires_confirmation or None,
        disabled=btn.disabled or None,
    )


def describe(
    state: State, logs: LogBuffer, name: str, now: float, *, builds: int = 5
) -> ResourceDetail:
    res = resolve(state, name)
    conditions = {c.type: c.status + (f" ({c.reason})" if c.reason else "") for c in res.conditions}
    history = [
        BuildOut(
            start=b.start_time,
            duration_s=duration_s(b.start_time, b.finish_time),
            error=one_line(b.error, 600) if b.error else None,
            warnings=[one_line(w) for w in b.warnings] or None,
            crash_rebuild=b.is_crash_rebuild or None,
        )
        for b in res.build_history[:builds]
    ]
    pod = None
    if res.k8s is not None:
        pod = {
            k: v
            for k, v in (
                ("name", res.k8s.pod_name),
                ("status", res.k8s.pod_status),
                ("restarts", res.k8s.pod_restarts),
                ("ready", res.k8s.all_containers_ready),
            )
            if v is not None
        }
    return ResourceDetail(
        name=res.name,
        state=summary_state(res),
        why=problem_text(res, logs),
        update_status=res.update_status,
        runtime_status=res.runtime_status,
        conditions=conditions,
        trigger_mode=TRIGGER_MODES.get(res.trigger_mode, str(res.trigger_mode)),
        disabled=res.disabled,
        labels=list(res.labels),
        kinds=sorted({s.type for s in res.specs}),
        current_build=BuildOut(start=res.current_build.start_time) if res.current_build else None,
        pending_since=res.pending_build_since,
        queued=res.queued,
        has_pending_changes=res.has_pending_changes,
        last_deploy=res.last_deploy_time,
        builds=history,
        waiting_on=list(res.waiting.on) if res.waiting else None,
        waiting_reason=res.waiting.reason if res.waiting else None,
        endpoints=[e.url + (f" ({e.name})" if e.name else "") for e in res.endpoints],
        pid=res.local_pid,
        pod=pod,
        compose_health=res.compose_health,
        buttons=[button_out(b) for b in state.buttons_for(res.name)],
        stale=stale_note(state.connection),
    )


# --------------------------------------------------------------------------- logs


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


def _levels(level: str | None) -> Collection[str] | None:
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


def logs(
    state: State,
    buffer: LogBuffer,
    now: float,
    *,
    resource: str | None = None,
    tail: int = 100,
    since: str | None = None,
    level: str | None = None,
    source: str | None = None,
    grep: str | None = None,
    regex: bool = True,
    context: int = 0,
    timestamps: bool = True,
    max_bytes: int = 40_000,
) -> LogsOut:
    if tail < 1 or tail > 10_000:
        raise ToolError(f"tail must be between 1 and 10000; got {tail}")
    if context < 0 or context > 50:
        raise ToolError(f"context must be between 0 and 50; got {context}")
    resources: Sequence[str] | None = None
    if resource is not None and resource not in ("", "(all)", "*"):
        if resource in ("(global)", GLOBAL):
            resources = [GLOBAL]
        else:
            resolve_log_resource(state, buffer, resource)
            resources = [resource]
    if source is not None and source not in SOURCES:
        raise ToolError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    q = LogQuery(
        resources=resources,
        tail=tail,
        since_us=parse_since(since, now),
        levels=_levels(level),
        sources=None if source is None else {source},
        pattern=compile_grep(grep, regex=regex),
        context=context,
    )
    result = buffer.query(q)
    with_resource = resources is None
    rendered = [
        render_line(x, with_resource=with_resource, timestamps=timestamps) for x in result.lines
    ]
    # byte cap: keep the newest lines that fit
    total = 0
    keep_from = len(rendered)
    for i in range(len(rendered) - 1, -1, -1):
        total += len(rendered[i].encode()) + 1
        if total > max_bytes:
            break
        keep_from = i
    cut = keep_from
    notes = []
    if cut:
        notes.append(
            f"{cut} older line(s) dropped to stay under {max_bytes} bytes; ask with a smaller "
            "tail, a grep, a level filter, or since=… to see them"
        )
    if result.more_before:
        oldest = result.lines[0].time_us if result.lines else 0
        notes.append(
            f"older matching lines exist before {format_time_us(oldest)}; raise tail "
            f"(now {tail}) or narrow with since/grep/level"
        )
    lines = rendered[cut:]
    return LogsOut(
        resource=resource if resources is not None and resource else "(all)",
        lines=lines,
        shown=len(lines),
        truncated="; ".join(notes) or None,
        stale=stale_note(state.connection),
    )


def resolve_log_resource(state: State, buffer: LogBuffer, name: str) -> None:
    if name in state.resources or buffer.line_count(name):
        return
    raise UnknownResource("resource", name, set(state.resources) | set(buffer.resources()) - {""})
