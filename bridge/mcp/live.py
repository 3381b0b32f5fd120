"""Tools for agents that want changes: ``wait_for`` (no polling) and ``get_changes``."""

from typing import Annotated

from fastmcp import Context, FastMCP
from pydantic import Field

from bridge import waiting
from bridge.core import conditions, logquery, present
from bridge.core.inputs import quote
from bridge.core.logbuffer import format_time_us
from bridge.core.present import Compact
from bridge.core.present.views import newest_that_fit
from bridge.errors import ToolError
from bridge.mcp.context import BridgeContext, model_errors
from bridge.mcp.tools import READ_ONLY, schema

MAX_CHANGE_LINES = 200


class WaitItem(Compact):
    resource: str
    ok: bool
    reason: str
    log: list[str] | None = Field(None, description="recent error/warn lines when it failed")


class WaitOut(Compact):
    done: bool = Field(description="every resource met the condition")
    timed_out: bool
    waited_s: float
    results: list[WaitItem]
    still_waiting: list[str] | None = None
    stale: str | None = None


class TransitionOut(Compact):
    time: str = Field(description="when the bridge saw it (the bridge's clock)")
    resource: str
    kind: str = Field(
        description="update | runtime | disable | added | removed | build_started | build_finished"
    )
    old: str
    new: str = Field(description="the new status; for build_finished: ok or error")
    error: str | None = None
    build: str | None = Field(None, description="Tilt's build id (span), for build_* kinds")
    tilt_time: str | None = Field(None, description="Tilt's start/finish time of the build")
    duration_s: float | None = Field(None, description="the build's duration (Tilt's times)")


class ChangesOut(Compact):
    cursor: str = Field(description="pass back as `cursor` next time")
    transitions: list[TransitionOut]
    log: list[str] = Field(description="new WARN/ERROR log lines")
    note: str | None = None
    stale: str | None = None


MAX_CURSOR_CHARS = 64
MAX_CHANGE_LINE_CHARS = 2_000


def _parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        version, seq = cursor[: MAX_CURSOR_CHARS + 1].split(".", 1)
        return int(version), int(seq)
    except ValueError:
        raise ToolError(
            f"cursor {quote(cursor)} is not one this server gave out; call get_changes "
            "without a cursor to start over"
        ) from None


def register(mcp: FastMCP, bctx: BridgeContext) -> None:

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(WaitOut))
    @model_errors
    @bctx.routed
    async def wait_for(
        resources: Annotated[list[str], Field(min_length=1)],
        condition: Annotated[
            str,
            Field(description="ready, up_to_date (built, none pending) or build_finished"),
        ] = "ready",
        timeout_s: Annotated[float, Field(gt=0, le=1800)] = 120,
        ctx: Context | None = None,
    ) -> WaitOut:
        """Wait for resources to meet a condition; early, with error and log, if one fails,
        is disabled or missing. Rebuild+wait: trigger(wait=true)."""
        store = bctx.store
        if condition not in waiting.CONDITIONS:
            raise ToolError(
                f"condition must be one of {', '.join(waiting.CONDITIONS)}; "
                f"got {waiting.quoted(condition)}"
            )

        async def progress(done: int, total: int, message: str) -> None:
            if ctx is not None:
                await ctx.report_progress(done, total, message)

        result = await waiting.wait_for(store, resources, condition, timeout_s, progress=progress)
        if result.timed_out and not result.connected:
            raise ToolError(waiting.not_connected_text(store.state, timeout_s))
        items = []
        for o in result.outcomes:
            lines = None
            if not o.ok:
                lines = (
                    present.logs(
                        store.state,
                        store.logs,
                        bctx.clock(),
                        resource=o.resource,
                        tail=15,
                        level="warn",
                    ).lines
                    or present.logs(
                        store.state, store.logs, bctx.clock(), resource=o.resource, tail=10
                    ).lines
                )
            items.append(WaitItem(resource=o.resource, ok=o.ok, reason=o.reason, log=lines))
        return WaitOut(
            done=not result.timed_out and all(o.ok for o in result.outcomes),
            timed_out=result.timed_out,
            waited_s=result.waited_s,
            results=items,
            still_waiting=list(result.pending) or None,
            stale=conditions.stale_note(store.state.connection),
        )

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(ChangesOut))
    @model_errors
    @bctx.routed
    async def get_changes(
        cursor: Annotated[
            str | None, Field(max_length=MAX_CURSOR_CHARS, description="from the last call")
        ] = None,
    ) -> ChangesOut:
        """Transitions, builds, new WARN/ERROR lines since `cursor`; the next cursor. For
        clients without push."""
        store = bctx.store
        version = store.version
        seq = store.logs.last_seq()
        new_cursor = f"{version}.{seq}"
        if cursor is None:
            return ChangesOut(
                cursor=new_cursor,
                transitions=[],
                log=[],
                note="baseline taken; call again with this cursor to see what changed",
                stale=conditions.stale_note(store.state.connection),
            )
        since_version, since_seq = _parse_cursor(cursor)
        note = None
        transitions = [t for t in store.transitions if t.version > since_version]
        if store.dropped_transitions_upto > since_version:
            note = "some transitions since your cursor were dropped (the server keeps 1000)"
        lines = [x for x in store.logs.since_seq(since_seq) if x.level in ("WARN", "ERROR")]
        if len(lines) > MAX_CHANGE_LINES:
            note = (note + "; " if note else "") + (
                f"{len(lines) - MAX_CHANGE_LINES} older warn/error lines cut; use get_logs"
            )
            lines = lines[-MAX_CHANGE_LINES:]
        rendered = []
        for x in lines:
            text = logquery.render_line(x, with_resource=True, timestamps=True)
            if len(text) > MAX_CHANGE_LINE_CHARS:
                text = text[:MAX_CHANGE_LINE_CHARS] + f"… (line cut: {len(text)} chars)"
            rendered.append(text)
        out = [
            TransitionOut(
                time=format_time_us(int(t.time * 1_000_000)),
                resource=t.resource,
                kind=t.kind,
                old=t.old,
                new=t.new,
                error=conditions.one_line(t.error) if t.error else None,
                build=t.build,
                tilt_time=t.tilt_time,
                duration_s=t.duration_s,
            )
            for t in transitions
        ]
        # The answer stays under the cap get_logs has: half for transitions, the rest for
        # lines; the newest of each are kept, and the note says what was left out.
        dumped = [t.model_dump_json(exclude_none=True) for t in out]
        n_t = newest_that_fit(dumped, present.MAX_ANSWER_BYTES // 2, overhead=8)
        used = sum(len(d.encode()) + 8 for d in dumped[len(dumped) - n_t :])
        n_l = newest_that_fit(rendered, present.MAX_ANSWER_BYTES - used, overhead=8)
        cut_t, cut_l = len(out) - n_t, len(rendered) - n_l
        kept_lines = rendered[len(rendered) - n_l :]
        if cut_t or cut_l:
            note = (note + "; " if note else "") + (
                f"answer capped at {present.MAX_ANSWER_BYTES} bytes: {cut_t} older "
                f"transition(s) and {cut_l} older line(s) left out; ask again more often, "
                "or use get_logs / describe_resource for the detail"
            )
        return ChangesOut(
            cursor=new_cursor,
            transitions=out[len(out) - n_t :],
            log=kept_lines,
            note=note,
            stale=conditions.stale_note(store.state.connection),
        )
