"""Read-only MCP tools. All answer from the cache; none calls Tilt."""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio
from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from bridge import grep as bounded
from bridge.core import conditions, present
from bridge.core.inputs import MAX_ENUM, MAX_GREP, MAX_LABEL, MAX_NAME, MAX_SINCE
from bridge.mcp.context import BridgeContext, model_errors
from bridge.mcp.instances import StatusWithInstance, status

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
SCANNERS: Final = 2
"""Log queries that scan (grep, filters) running at once in worker threads; more wait."""


def schema(model: type[present.Compact]) -> dict[str, Any]:
    """The answer's schema, declared explicitly: tools return the model dumped without
    ``null`` fields (see ``model_errors``), so optional fields are simply absent."""
    return model.model_json_schema(mode="validation")


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    """Every tool here takes the optional ``instance`` (``ctx.routed``); ``ctx.store`` is
    the store of the Tilt the call is about."""
    scanners = anyio.CapacityLimiter(SCANNERS)
    status_model = StatusWithInstance if ctx.instances is not None else present.StatusOut

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(status_model))
    @model_errors
    @ctx.routed
    async def get_status() -> present.StatusOut:
        """Tilt at a glance: version, connection, Tiltfile state, resource counts by state,
        and every failing or pending resource with its error in one line; with several
        Tilts, which one answered and why. Start here."""
        return status(ctx, ctx.target)

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceList))
    @model_errors
    @ctx.routed
    async def list_resources(
        label: Annotated[
            str | None, Field(max_length=MAX_LABEL, description="only resources with this label")
        ] = None,
        status: Annotated[
            str | None,
            Field(
                max_length=MAX_ENUM,
                description="only this state: " + ", ".join(conditions.STATES),
            ),
        ] = None,
    ) -> present.ResourceList:
        """One compact row per resource: name, state, update/runtime status, labels, and
        why it is not ok. Filter by label or state."""
        store = ctx.store
        return present.resource_rows(
            store.state, store.logs, ctx.clock(), label=label, status_filter=status
        )

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceDetail))
    @model_errors
    @ctx.routed
    async def describe_resource(
        name: Annotated[str, Field(max_length=MAX_NAME, description="resource name, e.g. 'web'")],
        builds: Annotated[int, Field(ge=1, le=50, description="how many past builds")] = 5,
    ) -> present.ResourceDetail:
        """Everything about one resource: conditions, update/runtime status, current build,
        recent builds with errors and durations, what it waits on, trigger mode, disable
        state, endpoints, pid/pod, and its buttons."""
        store = ctx.store
        return present.describe(store.state, store.logs, name, ctx.clock(), builds=builds)

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.LogsOut))
    @model_errors
    @ctx.routed
    async def get_logs(
        resource: Annotated[
            str | None,
            Field(
                max_length=MAX_NAME,
                description="resource name; omit for all resources interleaved",
            ),
        ] = None,
        tail: Annotated[int, Field(ge=1, le=10_000, description="newest N lines")] = 100,
        since: Annotated[
            str | None,
            Field(
                max_length=MAX_SINCE,
                description="only newer lines: a duration ('90s', '5m', '2h') or ISO time",
            ),
        ] = None,
        level: Annotated[
            str | None,
            Field(max_length=MAX_ENUM, description="minimum level: debug, info, warn, error"),
        ] = None,
        source: Annotated[
            str | None,
            Field(
                max_length=MAX_ENUM,
                description="build (image and update builds), runtime (everything else, "
                "as Tilt's own `tilt logs --source`), or all",
            ),
        ] = None,
        grep: Annotated[
            str | None,
            Field(
                max_length=MAX_GREP,
                description="regex (case-insensitive) applied before the tail; matching "
                f"is time-bounded ({bounded.BUDGET_S:g} s a call)",
            ),
        ] = None,
        regex: Annotated[bool, Field(description="false: grep is plain text")] = True,
        context: Annotated[
            int, Field(ge=0, le=50, description="lines of context around each grep match")
        ] = 0,
        timestamps: Annotated[bool, Field(description="prefix lines with HH:MM:SS.mmm")] = True,
        current_process: Annotated[
            bool, Field(description="only lines from the current Tilt process (since its restart)")
        ] = False,
    ) -> present.LogsOut:
        """Log lines from the bridge's buffer (ANSI codes stripped). grep filters before the
        tail. Output is capped; when cut, `truncated` says how to get the rest. A line
        starting with ─── marks a Tilt restart."""
        store = ctx.store
        plan = present.log_plan(
            store.state,
            store.logs,
            ctx.clock(),
            resource=resource,
            tail=tail,
            since=since,
            level=level,
            source=source,
            pattern=bounded.compile_grep(grep, use_regex=regex),
            context=context,
            timestamps=timestamps,
            current_process=current_process,
        )
        restarts = store.logs.process_starts()
        if not plan.query.scans:  # at most `tail` lines read: cheap, stay on the loop
            result = store.logs.query(plan.query)
        else:
            # A grep or a filter may read every held line: run it on a snapshot in a
            # worker thread (the bounded matcher releases the GIL) so other calls and
            # pushes keep flowing.
            snapshot = store.logs.snapshot(plan.query)
            result = await anyio.to_thread.run_sync(snapshot.run, limiter=scanners)
        return present.render_logs(store.state, plan, result, restarts)
