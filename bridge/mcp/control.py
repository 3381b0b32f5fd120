"""Write tools: trigger, enable/disable, buttons, trigger mode, Tiltfile args.

Not registered at all under ``--read-only``. Annotations say what each truly does.
"""

from typing import Annotated, Final

from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from bridge.control import ToggleResult
from bridge.core import conditions, logquery, present
from bridge.core.inputs import MAX_NAME
from bridge.core.present import Compact
from bridge.errors import ToolError
from bridge.mcp.context import BridgeContext, model_errors
from bridge.mcp.tools import READ_ONLY, schema
from bridge.waiting import not_connected_text

WRITE_TOOLS: Final = frozenset(
    {"trigger", "enable", "disable", "click_button", "set_trigger_mode", "set_tiltfile_args"}
)


class TriggerOut(Compact):
    resource: str
    outcome: str = Field(description="triggered (not waited) | ok | error | timeout")
    error: str | None = None
    log: list[str] | None = Field(None, description="log lines of the build (on error)")
    waited_s: float | None = None


class ToggleOut(Compact):
    resource: str
    state: str
    changed: bool
    confirmed: bool = Field(description="the new state was seen on Tilt's stream")


class ToggleList(Compact):
    results: list[ToggleOut]


class ButtonList(Compact):
    buttons: list[present.ButtonOut]


class ClickOut(Compact):
    button: str
    clicked_at: str | None = None


class ModeOut(Compact):
    resource: str
    trigger_mode: str


class ArgsOut(Compact):
    args: list[str]
    note: str


def _writes(*, destructive: bool, idempotent: bool, open_world: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


def _toggles(results: list[ToggleResult]) -> ToggleList:
    return ToggleList(
        results=[
            ToggleOut(resource=r.resource, state=r.state, changed=r.changed, confirmed=r.confirmed)
            for r in results
        ]
    )


def register_read(mcp: FastMCP, ctx: BridgeContext) -> None:
    @mcp.tool(annotations=READ_ONLY, output_schema=schema(ButtonList))
    @model_errors
    @ctx.routed
    async def list_buttons(
        resource: Annotated[
            str | None, Field(max_length=MAX_NAME, description="a resource, or 'global'")
        ] = None,
        include_builtin: Annotated[bool, Field(description="also Tilt's own")] = False,
    ) -> ButtonList:
        """UIButtons for click_button, with their inputs."""
        state = ctx.store.state
        if resource not in (None, "global"):
            conditions.resolve(state, resource)
        out = []
        for btn in sorted(state.buttons.values(), key=lambda b: (b.component_id, b.name)):
            shown = present.button_out(btn)
            if resource is not None and shown.location != resource:
                continue
            if not include_builtin and shown.kind != "custom":
                continue
            out.append(shown)
        return ButtonList(buttons=out)


def register_write(mcp: FastMCP, ctx: BridgeContext) -> None:
    if ctx.http is None:
        return

    @mcp.tool(
        annotations=_writes(destructive=False, idempotent=False, open_world=False),
        output_schema=schema(TriggerOut),
    )
    @model_errors
    @ctx.routed
    async def trigger(
        resource: str,
        wait: bool = False,
        timeout_s: Annotated[float, Field(gt=0, le=1800)] = 300,
    ) -> TriggerOut:
        """Rebuild a resource now. wait=true: until that build ends; ok, or the error and
        its log."""
        control = ctx.controller()
        result = await control.trigger(resource, wait=wait, timeout_s=timeout_s)
        if result.wait is not None and result.wait.timed_out and not result.wait.connected:
            raise ToolError(
                "Tilt accepted the trigger, then: " + not_connected_text(ctx.store.state, timeout_s)
            )
        lines = None
        if result.outcome in ("error", "timeout"):
            lines = [
                logquery.render_line(x, with_resource=False, timestamps=True)
                for x in control.build_lines(resource)
            ]
        return TriggerOut(
            resource=resource,
            outcome=result.outcome,
            error=result.error
            if result.outcome != "timeout"
            else f"the build did not finish within {timeout_s}s; check get_logs",
            log=lines,
            waited_s=result.wait.waited_s if result.wait else None,
        )

    @mcp.tool(
        annotations=_writes(destructive=False, idempotent=True, open_world=False),
        output_schema=schema(ToggleList),
    )
    @model_errors
    @ctx.routed
    async def enable(
        resources: Annotated[list[str], Field(min_length=1)],
        only: Annotated[bool, Field(description="also disable all others")] = False,
    ) -> ToggleList:
        """Enable resources (confirmed from the stream)."""
        control = ctx.controller()
        if only:
            return _toggles(await control.enable_only(resources))
        return _toggles(await control.set_enabled(resources, True))

    @mcp.tool(
        annotations=_writes(destructive=True, idempotent=True, open_world=False),
        output_schema=schema(ToggleList),
    )
    @model_errors
    @ctx.routed
    async def disable(
        resources: Annotated[list[str], Field(min_length=1)],
    ) -> ToggleList:
        """Disable resources: Tilt stops their processes/pods."""
        control = ctx.controller()
        return _toggles(await control.set_enabled(resources, False))

    @mcp.tool(
        annotations=_writes(destructive=True, idempotent=False, open_world=True),
        output_schema=schema(ClickOut),
    )
    @model_errors
    @ctx.routed
    async def click_button(
        name: Annotated[str, Field(description="from list_buttons")],
        inputs: dict[str, str | bool] | None = None,
    ) -> ClickOut:
        """Press a UIButton (runs what the Tiltfile attached)."""
        control = ctx.controller()
        btn = await control.click(name, inputs)
        return ClickOut(button=name, clicked_at=btn.last_clicked_at)

    @mcp.tool(
        annotations=_writes(destructive=False, idempotent=True, open_world=False),
        output_schema=schema(ModeOut),
    )
    @model_errors
    @ctx.routed
    async def set_trigger_mode(
        resource: str,
        mode: Annotated[
            str,
            Field(description="auto | manual | auto_no_init | manual_no_init"),
        ],
    ) -> ModeOut:
        """auto: file changes rebuild the resource; manual: only trigger does."""
        control = ctx.controller()
        await control.set_trigger_mode(resource, mode)
        return ModeOut(resource=resource, trigger_mode=mode)

    @mcp.tool(
        annotations=_writes(destructive=True, idempotent=True, open_world=False),
        output_schema=schema(ArgsOut),
    )
    @model_errors
    @ctx.routed
    async def set_tiltfile_args(
        args: Annotated[list[str], Field(description="as after -- in `tilt up -- …`")],
    ) -> ArgsOut:
        """Set the Tiltfile's args; Tilt reloads it."""
        control = ctx.controller()
        await control.set_tiltfile_args(args)
        return ArgsOut(args=list(args), note="Tilt reloads the Tiltfile; watch get_status")
