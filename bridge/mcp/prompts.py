"""Log-tailing prompts, built from live data at the moment they are asked for."""

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.exceptions import PromptError
from pydantic import Field

from bridge.core import conditions, present
from bridge.core.inputs import MAX_NAME
from bridge.core.logbuffer import LogBuffer
from bridge.core.logquery import render_line
from bridge.core.state import TILTFILE, State
from bridge.errors import BridgeError
from bridge.mcp.context import BridgeContext

AROUND = 10  # log lines either side of an error


def _block(lines: list[str]) -> str:
    return "```\n" + "\n".join(lines) + "\n```" if lines else "(no log lines held)"


def _stale(state: State) -> str:
    note = conditions.stale_note(state.connection)
    return f"\n\nNote: {note}" if note else ""


def tail_logs_text(state: State, logs: LogBuffer, now: float, resource: str, lines: int) -> str:
    out = present.logs(state, logs, now, resource=resource, tail=lines)
    detail = present.describe(state, logs, resource, now)
    head = f"Here are the last {out.shown} log lines of Tilt resource `{resource}` "
    head += f"(state: {detail.state}"
    head += f"; {detail.why})" if detail.why else ")"
    tail = f"\n\n({out.truncated})" if out.truncated else ""
    return (
        head
        + ":\n\n"
        + _block(out.lines)
        + tail
        + "\n\nSummarise what the resource is doing and point out anything that looks wrong."
        + _stale(state)
    )


def debug_text(state: State, logs: LogBuffer, now: float, resource: str) -> str:
    detail = present.describe(state, logs, resource, now)
    parts = [
        f"Help me debug the Tilt resource `{resource}`.",
        f"State: {detail.state} (update: {detail.update_status}, runtime: {detail.runtime_status})"
        + (f"; {detail.why}" if detail.why else ""),
    ]
    last = detail.builds[0] if detail.builds else None
    if last is not None and last.error:
        parts.append(f"Last build failed after {last.duration_s}s: {last.error}")
    err = conditions.last_error_line(logs, resource)
    if err is not None:
        around = [
            render_line(x, with_resource=False, timestamps=True) for x in logs.around(err, AROUND)
        ]
        parts.append(f"Log lines around the last error:\n\n{_block(around)}")
    else:
        recent = present.logs(state, logs, now, resource=resource, tail=30)
        parts.append(f"No ERROR lines are held; the newest log lines:\n\n{_block(recent.lines)}")
    if detail.waiting_reason:
        parts.append(
            f"It is waiting ({detail.waiting_reason}) on: {', '.join(detail.waiting_on or [])}"
        )
    parts.append(_advice(detail))
    return "\n\n".join(parts) + _stale(state)


def _advice(detail: present.ResourceDetail) -> str:
    tips = ["What to try:"]
    if detail.disabled:
        tips.append("- The resource is disabled: `enable` it first.")
    if detail.update_status == "error":
        tips.append(
            "- Read the build error above, fix the code or the Tiltfile, then `trigger` the "
            "resource and `wait_for` it (condition `up_to_date`)."
        )
    if detail.runtime_status == "error":
        tips.append(
            "- The process or pod crashed: look at the runtime log lines "
            "(`get_logs` with source=runtime) for the cause, fix it, then `trigger`."
        )
    if detail.state in ("pending", "waiting"):
        tips.append("- It is not ready yet: `wait_for` it, or check what it waits on.")
    if len(tips) == 1:
        tips.append("- It looks healthy; compare with `get_logs` since the problem started.")
    return "\n".join(tips)


def triage_text(state: State, logs: LogBuffer, now: float, lines: int = 15) -> str:
    st = present.status(state, logs, now)
    failing = [p for p in st.problems if p.state == "error"]
    if st.tiltfile == "error":
        failing.insert(
            0,
            present.ProblemOut(
                name=TILTFILE, state="error", why=st.tiltfile_error or "Tiltfile error"
            ),
        )
    head = (
        f"Triage this Tilt session: {st.resources} resources; "
        + ", ".join(f"{n} {k}" for k, n in st.counts.items())
        + "."
    )
    if not failing:
        pending = list(st.problems)
        body = "Nothing is failing."
        if pending:
            body += " Not ready yet: " + "; ".join(f"{p.name} ({p.why})" for p in pending)
        return head + "\n\n" + body + _stale(state)
    sections = []
    for p in failing:
        recent = present.logs(state, logs, now, resource=p.name, tail=lines)
        sections.append(f"### {p.name}\n{p.why}\n\n{_block(recent.lines)}")
    return (
        head
        + f"\n\n{len(failing)} failing:\n\n"
        + "\n\n".join(sections)
        + "\n\nFor each, say the likely cause and the next step, most important first."
        + _stale(state)
    )


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    """Prompts read the bridge's default instance (``ctx.store``, looked up per call)."""

    @mcp.prompt
    async def tail_logs(
        resource: Annotated[str, Field(max_length=MAX_NAME, description="resource name")],
        lines: Annotated[int, Field(ge=1, le=2000)] = 100,
    ) -> str:
        """The newest log lines of a resource, with its state, ready to summarise."""
        try:
            return tail_logs_text(ctx.store.state, ctx.store.logs, ctx.clock(), resource, lines)
        except BridgeError as exc:
            raise PromptError(str(exc)) from exc

    @mcp.prompt
    async def debug_resource(
        resource: Annotated[str, Field(max_length=MAX_NAME, description="resource name")],
    ) -> str:
        """Status, last error, the log lines around it, and what to try."""
        try:
            return debug_text(ctx.store.state, ctx.store.logs, ctx.clock(), resource)
        except BridgeError as exc:
            raise PromptError(str(exc)) from exc

    @mcp.prompt
    async def triage() -> str:
        """Every failing resource with its error and its last log lines."""
        return triage_text(ctx.store.state, ctx.store.logs, ctx.clock())
