"""Presenters: a :class:`~bridge.core.state.State` (and the log buffer) in, answer models
out. No I/O, no clock (``now`` is passed in), so the same answers serve MCP tools,
resources, prompts and the CLI, and are unit-tested directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

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
from bridge.core.inputs import MAX_LABEL, MAX_NAME, check_enum, check_text
from bridge.core.logbuffer import (
    GLOBAL,
    LogBuffer,
    LogQuery,
    LogResult,
    Searcher,
    format_time_us,
)
from bridge.core.logquery import (
    levels_from,
    parse_since,
    render_line,
    resolve_log_resource,
    sources_from,
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

MAX_ANSWER_BYTES: Final = 40_000
"""The rendered log lines of one answer, at most (about 10 000 tokens)."""


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
    if status_filter is not None:
        check_enum("status", status_filter, STATES)
    rows = []
    all_labels = {lab for r in state.resources.values() for lab in r.labels}
    if label is not None:
        check_text("label", label, MAX_LABEL, "a label")
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
    check_text("name", name, MAX_NAME, "a resource name")
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


RESTART_MARKER = "─── Tilt restarted: the lines below come from the new Tilt process ───"


@dataclass(frozen=True, slots=True)
class LogPlan:
    """A validated ``get_logs`` request: the query, and how to render its answer."""

    query: LogQuery
    resource: str
    timestamps: bool
    max_bytes: int


def log_plan(
    state: State,
    buffer: LogBuffer,
    now: float,
    *,
    resource: str | None = None,
    tail: int = 100,
    since: str | None = None,
    level: str | None = None,
    source: str | None = None,
    pattern: Searcher | None = None,
    context: int = 0,
    timestamps: bool = True,
    current_process: bool = False,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> LogPlan:
    """Check every argument (ToolError naming the bad one) and build the query."""
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
    q = LogQuery(
        resources=resources,
        tail=tail,
        # a duration counts back from Tilt's now (its lines carry Tilt's times)
        since_us=parse_since(since, now + state.connection.tilt_clock_offset_s),
        levels=levels_from(level),
        sources=sources_from(source),
        pattern=pattern,
        context=context,
        min_seq=buffer.process_start() if current_process else 0,
    )
    label = resource if resources is not None and resource else "(all)"
    return LogPlan(q, label, timestamps, max_bytes)


def render_logs(
    state: State, plan: LogPlan, result: LogResult, restarts: Sequence[int] = ()
) -> LogsOut:
    """The answer: rendered lines (newest kept under ``max_bytes``), a marker where a new
    Tilt process starts, and a note saying how to see what was cut."""
    q, max_bytes = plan.query, plan.max_bytes
    with_resource = q.resources is None
    rendered = [
        render_line(x, with_resource=with_resource, timestamps=plan.timestamps)
        for x in result.lines
    ]
    # byte cap: keep the newest lines that fit
    keep_from = len(rendered) - newest_that_fit(rendered, max_bytes)
    notes = []
    if keep_from == len(rendered) and rendered:
        # The newest line alone is over the cap: show its start rather than nothing.
        keep_from -= 1
        rendered[-1] = _cut_line(rendered[-1], max_bytes)
        notes.append(
            f"the newest line is {len(result.lines[-1].text)} characters, over the "
            f"{max_bytes}-byte answer: its start is shown; grep for text inside it"
        )
    cut = keep_from
    if cut:
        notes.insert(
            0,
            f"{cut} older line(s) dropped to stay under {max_bytes} bytes; ask with a smaller "
            "tail, a grep, a level filter, or since=… to see them",
        )
    if result.more_before:
        oldest = result.lines[0].time_us if result.lines else 0
        notes.append(
            f"older matching lines exist before {format_time_us(oldest)}; raise tail "
            f"(now {q.tail}) or narrow with since/grep/level"
        )
    lines = rendered[cut:]
    kept = result.lines[cut:]
    if restarts and len(kept) > 1:
        marked: list[str] = [lines[0]]
        for prev, line, text in zip(kept, kept[1:], lines[1:], strict=False):
            if any(prev.seq < start <= line.seq for start in restarts):
                marked.append(RESTART_MARKER)
            marked.append(text)
        lines = marked
    return LogsOut(
        resource=plan.resource,
        lines=lines,
        shown=len(kept),
        truncated="; ".join(notes) or None,
        stale=stale_note(state.connection),
    )


def newest_that_fit(texts: Sequence[str], max_bytes: int, *, overhead: int = 1) -> int:
    """How many of the newest ``texts`` (the end of the list) fit in ``max_bytes``, each
    costing its UTF-8 length plus ``overhead`` (a separator, JSON quoting)."""
    total = 0
    for n, text in enumerate(reversed(texts)):
        total += len(text.encode()) + overhead
        if total > max_bytes:
            return n
    return len(texts)


def _cut_line(text: str, max_bytes: int) -> str:
    room = max(0, max_bytes - 200)
    head = text.encode()[:room].decode(errors="ignore")
    return f"{head} … [cut: {len(text)} chars, over the {max_bytes}-byte answer]"


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
    pattern: Searcher | None = None,
    context: int = 0,
    timestamps: bool = True,
    current_process: bool = False,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> LogsOut:
    """:func:`log_plan`, the query on the buffer itself, then :func:`render_logs`. For
    callers on the event loop with cheap queries; ``get_logs`` runs scanning queries on
    a snapshot in a worker thread instead."""
    plan = log_plan(
        state,
        buffer,
        now,
        resource=resource,
        tail=tail,
        since=since,
        level=level,
        source=source,
        pattern=pattern,
        context=context,
        timestamps=timestamps,
        current_process=current_process,
        max_bytes=max_bytes,
    )
    return render_logs(state, plan, buffer.query(plan.query), buffer.process_starts())
