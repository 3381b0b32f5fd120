"""Presenters: a :class:`~bridge.core.state.State` (and the log buffer) in, answer models
out. No I/O, no clock (``now`` is passed in), so the same answers serve MCP tools,
resources, prompts and the CLI, and are unit-tested directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bridge.core.conditions import (
    STATES,
    button_kind,
    duration_s,
    one_line,
    problem_text,
    resolve,
    stale_note,
    summary_state,
)
from bridge.core.logbuffer import GLOBAL, LogBuffer, LogQuery, format_time_us
from bridge.core.logquery import (
    SOURCES,
    compile_grep,
    levels_from,
    parse_since,
    render_line,
    resolve_log_resource,
)
from bridge.core.present.models import (
    BuildOut,
    ButtonInputOut,
    ButtonOut,
    ConnectionOut,
    LogsOut,
    ProblemOut,
    ResourceDetail,
    ResourceList,
    ResourceRow,
    StatusOut,
)
from bridge.core.state import TILTFILE, ConnectionInfo, State
from bridge.errors import ToolError, UnknownResource
from bridge.tilt.view import TRIGGER_MODES, Button


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
        levels=levels_from(level),
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
