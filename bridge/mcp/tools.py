"""Read-only MCP tools. All answer from the cache; none calls Tilt."""

from typing import Annotated, Any, Final

import anyio
from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from bridge import grep as bounded
from bridge.core import conditions, present
from bridge.core.inputs import MAX_ENUM, MAX_GREP, MAX_LABEL, MAX_NAME, MAX_SINCE
from bridge.mcp import schemas
from bridge.mcp.context import BridgeContext, model_errors
from bridge.mcp.instances import StatusWithInstance, status

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
SCANNERS: Final = 2
"""Log queries that scan (grep, filters) running at once in worker threads; more wait."""


def schema(model: type[present.Compact]) -> dict[str, Any]:
    """The answer's compact output schema (:func:`bridge.mcp.schemas.schema`, at
    :data:`~bridge.mcp.schemas.OUTPUT_DEPTH`)."""
    return schemas.schema(model, depth=schemas.OUTPUT_DEPTH)


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    """Every tool here takes the optional ``instance`` (``ctx.routed``); ``ctx.store`` is
    the store of the Tilt the call is about."""
    scanners = anyio.CapacityLimiter(SCANNERS)
    status_model = StatusWithInstance if ctx.instances is not None else present.StatusOut

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(status_model))
    @model_errors
    @ctx.routed
    async def get_status() -> present.StatusOut:
        """Start here: connection, Tiltfile, counts by state, failing/pending resources
        and why."""
        return status(ctx, ctx.target)

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceList))
    @model_errors
    @ctx.routed
    async def list_resources(
        label: Annotated[str | None, Field(max_length=MAX_LABEL)] = None,
        status: Annotated[
            str | None,
            Field(
                max_length=MAX_ENUM,
                description=", ".join(conditions.STATES),
            ),
        ] = None,
    ) -> present.ResourceList:
        """One row per resource: state, statuses, labels, why not ok."""
        store = ctx.store
        return present.resource_rows(
            store.state, store.logs, ctx.clock(), label=label, status_filter=status
        )

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceDetail))
    @model_errors
    @ctx.routed
    async def describe_resource(
        name: Annotated[str, Field(max_length=MAX_NAME)],
        builds: Annotated[int, Field(ge=1, le=50)] = 5,
    ) -> present.ResourceDetail:
        """One resource in full: conditions, builds, waits-on, trigger mode, endpoints,
        pid/pod, buttons."""
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
                description="omit: all",
            ),
        ] = None,
        tail: Annotated[int, Field(ge=1, le=10_000)] = 100,
        since: Annotated[
            str | None,
            Field(
                max_length=MAX_SINCE,
                description="a duration ('5m') or ISO time",
            ),
        ] = None,
        level: Annotated[
            str | None,
            Field(max_length=MAX_ENUM, description="min: debug, info, warn, error"),
        ] = None,
        source: Annotated[
            str | None,
            Field(
                max_length=MAX_ENUM,
                description="build, runtime or all",
            ),
        ] = None,
        grep: Annotated[
            str | None,
            Field(
                max_length=MAX_GREP,
                description="case-insensitive regex",
            ),
        ] = None,
        regex: Annotated[bool, Field(description="false: plain text")] = True,
        context: Annotated[int, Field(ge=0, le=50, description="lines around matches")] = 0,
        timestamps: bool = True,
        current_process: Annotated[bool, Field(description="since Tilt's last restart")] = False,
    ) -> present.LogsOut:
        """Held log lines (ANSI stripped), capped: see `truncated`. ─── marks a Tilt
        restart."""
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
