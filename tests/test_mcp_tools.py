"""MCP tools, resources, prompts and completion through a real in-memory fastmcp Client."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from bridge.core.state import ConnectionInfo
from bridge.mcp.context import BridgeContext
from bridge.mcp.server import apply_tool_filters, build_server
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.view import decode_view

from .conftest import recording

NOW = 1795726900.0  # shortly after the recordings


def loaded_store(name: str = "03-failing-build", *, connected: bool = True) -> Store:
    store = Store(clock=lambda: NOW)
    for conn in recording(name):
        store.new_connection()
        for raw in conn.frames:
            store.apply_frame(decode_view(raw))
    state = "connected" if connected else "disconnected"
    error = None if connected else "tilt is not reachable at ws://localhost:10350/ws/view"
    store.set_connection(
        ConnectionInfo(state=state, since=NOW - 30, url="ws://x", last_error=error)
    )
    return store


def server(store: Store, **settings: object) -> FastMCP:
    ctx = BridgeContext(store=store, settings=replace(Settings(), **settings), clock=lambda: NOW)
    return build_server(ctx)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(server(loaded_store())) as c:
        yield c


async def call(c: Client, tool: str, /, **args: object) -> dict:
    result = await c.call_tool(tool, args)
    assert result.structured_content is not None
    return dict(result.structured_content)


@pytest.mark.anyio
async def test_get_status_is_compact_and_names_every_problem(client: Client) -> None:
    out = await call(client, "get_status")
    assert out["tilt_version"] == "v0.37.6-dev"  # as Tilt prints it (runningTiltBuild.dev)
    assert out["connection"]["state"] == "connected"
    assert "stale" not in out
    assert out["resources"] == 15
    assert out["counts"] == {"error": 2, "idle": 2, "ok": 10, "pending": 1}
    problems = {p["name"]: p for p in out["problems"]}
    assert set(problems) == {"fail", "crasher", "never-ready"}
    assert "exit status 3" in problems["fail"]["why"]
    assert problems["crasher"]["why"] == "runtime error: crashing now"
    text = (await client.call_tool("get_status", {})).content[0].text
    # a 16-resource project fits in a few hundred tokens (~4 chars per token)
    assert len(text) < 1200
    assert "null" not in text


@pytest.mark.anyio
async def test_every_read_tool_declares_read_only_and_an_output_schema(client: Client) -> None:
    tools = {t.name: t for t in await client.list_tools()}
    for name in (
        "get_status",
        "list_resources",
        "describe_resource",
        "get_logs",
        "wait_for",
        "get_changes",
        "list_buttons",
    ):
        assert tools[name].annotations is not None
        assert tools[name].annotations.read_only_hint is True, name
        assert tools[name].output_schema is not None, name


@pytest.mark.anyio
async def test_list_resources_filters_by_label_and_status(client: Client) -> None:
    out = await call(client, "list_resources", label="servers")
    assert [r["name"] for r in out["resources"]] == ["ticker", "web", "never-ready", "crasher"]
    out = await call(client, "list_resources", status="error")
    assert {r["name"] for r in out["resources"]} == {"fail", "crasher"}
    with pytest.raises(ToolError, match="did you mean 'servers'"):
        await call(client, "list_resources", label="server")
    with pytest.raises(ToolError, match="status must be one of"):
        await call(client, "list_resources", status="broken")


@pytest.mark.anyio
async def test_describe_resource_has_builds_buttons_and_conditions(client: Client) -> None:
    out = await call(client, "describe_resource", name="ok")
    assert out["conditions"]["Ready"].startswith("True")
    assert out["trigger_mode"] == "auto"
    names = {b["name"]: b for b in out["buttons"]}
    assert names["ok-hello"]["kind"] == "custom"
    assert names["ok-hello"]["inputs"] == [
        {"name": "WHO", "type": "text", "label": "Who", "default": "world"}
    ]
    assert names["toggle-ok-disable"]["kind"] == "disable-toggle"
    fail = await call(client, "describe_resource", name="fail")
    assert fail["builds"][0]["error"].endswith("exit status 3")
    assert fail["builds"][0]["duration_s"] >= 0


@pytest.mark.anyio
async def test_unknown_resource_errors_suggest_close_matches(client: Client) -> None:
    with pytest.raises(ToolError, match=r"no resource named 'fial'; did you mean 'fail'\?"):
        await call(client, "describe_resource", name="fial")
    with pytest.raises(ToolError, match="did you mean 'ticker'"):
        await call(client, "get_logs", resource="tickr")


@pytest.mark.anyio
async def test_get_logs_tail_grep_context_level_and_source(client: Client) -> None:
    out = await call(client, "get_logs", resource="fail", tail=3, timestamps=False)
    assert out["lines"][-1].startswith("ERROR Build Failed:")
    assert out["shown"] == 3
    assert "raise tail" in out["truncated"]
    errors = await call(client, "get_logs", level="error", timestamps=False)
    assert errors["lines"]
    # build event lines ("Initial Build") pass every level filter, as in Tilt
    build_events = ("Initial Build", "Web Trigger")
    assert all(" ERROR " in f" {x} " or x.endswith(build_events) for x in errors["lines"])
    assert any(" ERROR " in f" {x} " for x in errors["lines"])
    grep = await call(
        client, "get_logs", resource="ticker", grep="tick 1[0-2] ", context=1, timestamps=False
    )
    assert grep["lines"] == [
        f"tick {n} " + grep["lines"][i].split(" ", 2)[2] for i, n in enumerate(range(9, 14))
    ]
    build = await call(client, "get_logs", resource="web", source="build", timestamps=False)
    assert build["lines"][0] == "Initial Build"
    allres = await call(client, "get_logs", tail=5)
    assert allres["resource"] == "(all)"
    assert len(allres["lines"]) == 5


@pytest.mark.anyio
async def test_get_logs_bad_arguments_are_explained(client: Client) -> None:
    with pytest.raises(ToolError, match="not a valid regular expression"):
        await call(client, "get_logs", grep="(")
    with pytest.raises(ToolError, match="neither a duration"):
        await call(client, "get_logs", since="yesterday")
    with pytest.raises(ToolError, match="level must be one of"):
        await call(client, "get_logs", level="loud")
    out = await call(client, "get_logs", grep="(Tiltfile)", regex=False, timestamps=False)
    assert out["lines"]
    assert all("(Tiltfile)" in x for x in out["lines"])


@pytest.mark.anyio
async def test_get_logs_since_duration_and_byte_cap() -> None:
    store = loaded_store()
    async with Client(server(store)) as c:
        recent = await call(c, "get_logs", since="100s", tail=10000)
        everything = await call(c, "get_logs", tail=10000)
        assert 0 < recent["shown"] < everything["shown"]
    from bridge.core import present

    capped = present.logs(store.state, store.logs, NOW, tail=10000, max_bytes=2000)
    assert sum(len(x) + 1 for x in capped.lines) <= 2000
    assert capped.truncated is not None
    assert "dropped to stay under 2000 bytes" in capped.truncated


@pytest.mark.anyio
async def test_answers_say_they_may_be_stale_when_tilt_is_not_connected() -> None:
    async with Client(server(loaded_store(connected=False))) as c:
        out = await call(c, "get_status")
        assert "last known state" in out["stale"]
        assert "not reachable" in out["stale"]
        assert out["resources"] == 15
        logs = await call(c, "get_logs", resource="fail")
        assert "stale" in logs


@pytest.mark.anyio
async def test_resources_read_as_json_and_complete_names(client: Client) -> None:
    templates = {t.uri_template for t in await client.list_resource_templates()}
    assert templates == {"tilt://resources/{name}", "tilt://resources/{name}/logs"}
    static = {str(r.uri) for r in await client.list_resources()}
    assert static == {"tilt://status", "tilt://resources"}
    status = json.loads((await client.read_resource("tilt://status"))[0].text)
    assert status["resources"] == 15
    detail = json.loads((await client.read_resource("tilt://resources/fail"))[0].text)
    assert detail["state"] == "error"
    logs = json.loads((await client.read_resource("tilt://resources/fail/logs"))[0].text)
    assert logs["lines"]
    done = await client.complete(
        ref={"type": "ref/resource", "uri": "tilt://resources/{name}"},
        argument={"name": "name", "value": "de"},
    )
    assert done.values == ["dep-a", "dep-b", "dep-c"]
    with pytest.raises(Exception, match="did you mean 'fail'"):
        await client.read_resource("tilt://resources/fial")


@pytest.mark.anyio
async def test_prompts_are_built_from_live_data(client: Client) -> None:
    names = {p.name for p in await client.list_prompts()}
    assert names == {"tail_logs", "debug_resource", "triage"}
    tail = (await client.get_prompt("tail_logs", {"resource": "ticker", "lines": "5"})).messages[0]
    assert "tick" in tail.content.text
    debug = (await client.get_prompt("debug_resource", {"resource": "fail"})).messages[0]
    text = debug.content.text
    assert "Build Failed" in text
    assert "What to try" in text
    assert "trigger" in text
    triage = (await client.get_prompt("triage", {})).messages[0].content.text
    assert "### fail" in triage
    assert "### crasher" in triage
    assert "crashing now" in triage


@pytest.mark.anyio
async def test_get_changes_reports_transitions_and_new_error_lines() -> None:
    conn = recording("03-failing-build")[0]
    store = Store(clock=lambda: NOW)
    store.apply_frame(decode_view(conn.frames[0]))
    async with Client(server(store)) as c:
        first = await call(c, "get_changes")
        assert first["transitions"] == []
        assert "baseline" in first["note"]
        for raw in conn.frames[1:]:
            store.apply_frame(decode_view(raw))
        later = await call(c, "get_changes", cursor=first["cursor"])
        assert any("Build Failed" in line for line in later["log"])
        again = await call(c, "get_changes", cursor=later["cursor"])
        assert again["transitions"] == []
        assert again["log"] == []
        with pytest.raises(ToolError, match="not one this server gave out"):
            await call(c, "get_changes", cursor="garbage")


@pytest.mark.anyio
async def test_read_only_registers_no_write_tool_and_filters_apply() -> None:
    store = loaded_store()
    writes = {
        "trigger",
        "enable",
        "disable",
        "click_button",
        "set_trigger_mode",
        "set_tiltfile_args",
    }
    ro = server(store, read_only=True)
    async with Client(ro) as c:
        names = {t.name for t in await c.list_tools()}
    assert not names & writes
    assert "get_status" in names
    settings = replace(Settings(), deny_tools=frozenset({"get_changes"}))
    ctx = BridgeContext(store=store, settings=settings, clock=lambda: NOW)
    mcp = build_server(ctx)
    await apply_tool_filters(mcp, ctx)
    async with Client(mcp) as c:
        assert "get_changes" not in {t.name for t in await c.list_tools()}
    bad = replace(Settings(), allow_tools=frozenset({"get_statuz"}))
    ctx = BridgeContext(store=store, settings=bad, clock=lambda: NOW)
    with pytest.raises(Exception, match="did you mean get_status"):
        await apply_tool_filters(build_server(ctx), ctx)


def test_status_table_for_the_cli() -> None:
    from bridge.app import format_table

    table = format_table(loaded_store(), time.time())
    assert table.splitlines()[0].startswith("Tilt v0.37.6-dev: 15 resources")
    assert any(line.startswith("fail ") and "build failed" in line for line in table.splitlines())
