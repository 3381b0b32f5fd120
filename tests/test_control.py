"""Write tools through a real MCP client: tool → HTTP → fake Tilt → stream → cache → result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from bridge.control import Controller
from bridge.errors import TiltConflict
from bridge.mcp.app import assemble
from bridge.testing import FakeTilt
from bridge.tilt.client import BUTTON_PATH, TiltHTTP
from bridge.tilt.view import decode_view_object

from .harness import Stack, stack

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_for(tilt: FakeTilt, **kw: object) -> AsyncIterator[tuple[Client, Stack]]:  # type: ignore[type-arg]
    async with stack(tilt) as s:
        await s.connected()
        app = await assemble(s.settings, s.store, s.http)
        async with anyio.create_task_group() as tg:
            await tg.start(app.pump.run)
            async with Client(app.mcp) as c:
                yield c, s
            tg.cancel_scope.cancel()


async def tool(c: Client, name: str, /, **args: object) -> dict:  # type: ignore[type-arg]
    r = await c.call_tool(name, args)
    assert r.structured_content is not None
    return dict(r.structured_content)


async def test_write_tools_carry_honest_annotations() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        tools = {t.name: t.annotations for t in await c.list_tools()}
    expect = {
        "trigger": (False, False),
        "enable": (False, True),
        "disable": (True, True),
        "click_button": (True, False),
        "set_trigger_mode": (False, True),
        "set_tiltfile_args": (True, True),
    }
    for name, (destructive, idempotent) in expect.items():
        ann = tools[name]
        assert ann is not None
        assert ann.read_only_hint is False, name
        assert (ann.destructive_hint, ann.idempotent_hint) == (destructive, idempotent), name


async def test_trigger_with_wait_returns_the_builds_outcome() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        out = await tool(c, "trigger", resource="manual", wait=True, timeout_s=20)
        assert out["outcome"] == "ok"
        assert out["waited_s"] >= 0
        triggers = tilt.requests_to("/api/trigger")
        assert len(triggers) == 1
        assert triggers[0].status == 200


async def test_trigger_of_a_failing_build_returns_the_error_and_its_log_lines() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        out = await tool(c, "trigger", resource="fail", wait=True, timeout_s=20)
        assert out["outcome"] == "error"
        assert "exit status 3" in out["error"]
        assert any("Build Failed" in line for line in out["log"])


async def test_trigger_without_wait_returns_at_once() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        out = await tool(c, "trigger", resource="ok")
        assert out == {"resource": "ok", "outcome": "triggered"}


async def test_trigger_unknown_and_disabled_resources_are_explained() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        with pytest.raises(ToolError, match="did you mean 'manual'"):
            await tool(c, "trigger", resource="manul")
        await tool(c, "disable", resources=["manual"])
        with pytest.raises(ToolError, match="disabled; call enable"):
            await tool(c, "trigger", resource="manual")
        # Tilt's own answer for a disabled resource is 200 with a body: say so too
        body = await s.http.trigger("manual")
        assert "is currently disabled" in body


async def test_disable_then_enable_is_confirmed_from_the_stream() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        out = await tool(c, "disable", resources=["ticker"])
        assert out["results"] == [
            {"resource": "ticker", "state": "Disabled", "changed": True, "confirmed": True}
        ]
        assert s.store.state.resources["ticker"].runtime_status == "none"
        assert s.store.state.buttons["toggle-ticker-disable"].text == "Enable Resource"
        again = await tool(c, "disable", resources=["ticker"])
        assert again["results"][0]["changed"] is False  # idempotent
        out = await tool(c, "enable", resources=["ticker"])
        assert out["results"][0] == {
            "resource": "ticker",
            "state": "Enabled",
            "changed": True,
            "confirmed": True,
        }


async def test_enable_only_disables_everything_else() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        out = await tool(c, "enable", resources=["web"], only=True)
        states = {r["resource"]: r["state"] for r in out["results"]}
        assert states["web"] == "Enabled"
        assert states["ticker"] == "Disabled"
        assert s.store.state.resources["ok"].disabled


async def test_click_a_custom_button_with_validated_inputs() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        buttons = await tool(c, "list_buttons")
        names = {b["name"] for b in buttons["buttons"]}
        assert names == {"ok-hello", "global-hello"}
        out = await tool(c, "click_button", name="ok-hello", inputs={"WHO": "lab"})
        assert out["button"] == "ok-hello"
        await s.until(
            lambda st: any(
                "hello lab from button" in x.text for x in s.store.logs.newest_first(["ok"])
            )
        )
        with pytest.raises(ToolError, match="has no input 'WHOM'; its inputs: WHO"):
            await tool(c, "click_button", name="ok-hello", inputs={"WHOM": "x"})
        with pytest.raises(ToolError, match="did you mean 'ok-hello'"):
            await tool(c, "click_button", name="ok-helo")
        with pytest.raises(ToolError, match="has no input 'action'"):
            await tool(c, "click_button", name="toggle-ok-disable", inputs={"action": "on"})


class ConflictHook(TiltHTTP):
    """Our own HTTP client with a hook after each 409 (a seam of ours, not a mock)."""

    on_conflict: list[Callable[[], None]]

    async def put_button_status(self, *args: Any, **kw: Any) -> Mapping[str, object]:
        try:
            return await super().put_button_status(*args, **kw)
        except TiltConflict:
            for hook in self.on_conflict:
                hook()
            raise


async def test_a_409_is_retried_with_the_newest_object_from_the_stream() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        http = ConflictHook(s.settings.tilt_base_url, s.settings.token)
        try:
            # Tilt's copy moves on (someone else clicked) while ours is stale.
            meta = tilt.model.buttons["ok-hello"]["metadata"]
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 7)
            newest = decode_view_object({"uiButtons": [tilt.button("ok-hello")]})
            # ...and the stream brings the newest object right after our first 409.
            http.on_conflict = [lambda: s.store.apply_frame(newest)]
            btn = await Controller(s.store, http).click("ok-hello", {"WHO": "second"})
            statuses = [r.status for r in tilt.requests_to(BUTTON_PATH.format(name="ok-hello"))]
            assert statuses == [409, 200]
            assert btn.name == "ok-hello"
        finally:
            await http.aclose()


async def test_a_409_that_persists_is_reported_clearly() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        meta = tilt.model.buttons["ok-hello"]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 7)  # never broadcast
        with anyio.fail_after(10), pytest.raises(TiltConflict, match="brought no newer version"):
            await Controller(s.store, s.http).click("ok-hello", {"WHO": "x"})
        statuses = [r.status for r in tilt.requests_to(BUTTON_PATH.format(name="ok-hello"))]
        assert statuses == [409]  # no pointless retry with the same stale object


async def test_set_trigger_mode_by_readable_name() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        out = await tool(c, "set_trigger_mode", resource="ok", mode="manual")
        assert out == {"resource": "ok", "trigger_mode": "manual"}
        assert s.store.state.resources["ok"].trigger_mode == 1
        with pytest.raises(ToolError, match="mode must be one of auto, manual"):
            await tool(c, "set_trigger_mode", resource="ok", mode="sometimes")


async def test_set_tiltfile_args() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        out = await tool(c, "set_tiltfile_args", args=["--only", "web"])
        assert out["args"] == ["--only", "web"]
        assert tilt.requests_to("/api/set_tiltfile_args")[0].status == 200


async def test_a_wrong_token_gives_the_fix_not_the_token() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, s):
        s.http._token = None  # as if the token file vanished
        with pytest.raises(ToolError) as err:
            await tool(c, "trigger", resource="manual")
        assert "403" in str(err.value)
        assert "TILT_TOKEN" in str(err.value)
        assert tilt.token is not None
        assert tilt.token not in str(err.value)


async def test_tilt_down_is_a_clear_error() -> None:
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        await tilt.stop()
        with pytest.raises(ToolError, match="is 'tilt up' running"):
            await tool(c, "trigger", resource="manual")


async def test_control_arguments_are_capped_and_errors_quote_little() -> None:
    """A megabyte name or ten thousand names get a short error, not an echo."""
    async with FakeTilt() as tilt, client_for(tilt) as (c, _):
        for name, args in (
            ("trigger", {"resource": "x" * 1_000_000}),
            ("enable", {"resources": [f"r{i}" for i in range(10_000)]}),
            ("disable", {"resources": ["y" * 100_000]}),
            ("click_button", {"name": "ok-hello", "inputs": {"WHO": "z" * 100_000}}),
            ("set_tiltfile_args", {"args": ["a"] * 1000}),
        ):
            with pytest.raises(ToolError) as err:
                await c.call_tool(name, args)
            assert len(str(err.value)) < 300, name
