"""The bridge end to end with two and three fake Tilts and a real ``$TILT_DEV_DIR/config``
(written, edited, removed during the session): discovery → registry → MCP server, over
the in-memory client, with and without MCP roots."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import mcp_types as t
import pytest
import structlog
from fastmcp import Client
from fastmcp.exceptions import ToolError

from bridge import log as bridge_log
from bridge.app import run_status
from bridge.core.logbuffer import LogBuffer
from bridge.discovery import Discovery
from bridge.instances import Instances
from bridge.mcp.app import Assembled, assemble
from bridge.settings import Settings
from bridge.testing import FakeTilt
from bridge.testing.model import delta, micro_time, runtime_span, segment
from tests.mcpkit import Inbox, subscribe
from tests.test_discovery import (
    TICK,
    connected,
    fake_tilts,
    settings_for,
    tilt_config,
    until,
    write_in_place,
)
from tests.test_logbuffer import frame, seg, texts

pytestmark = pytest.mark.anyio
DEADLINE = 10.0


@dataclass
class Bridge:
    app: Assembled
    registry: Instances
    found: Discovery
    config: Path

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        await until(self.registry, condition, what)

    async def connected(self, *tilts: FakeTilt) -> None:
        ports = [x.port for x in tilts]
        await self.until(
            lambda: (
                connected(self.registry, ports)
                and all(c.tiltfile for c in self.registry.candidates())
            ),
            f"{ports} connected with their Tiltfiles known",
        )


@asynccontextmanager
async def bridge(
    tmp_path: Path,
    listed: list[FakeTilt],
    *,
    cwd: str,
    explicit: FakeTilt | None = None,
    source: str = "--port",
) -> AsyncIterator[Bridge]:
    """The app's wiring (bridge.app.serve) minus the transport: a real config file,
    Discovery, the registry, the assembled MCP server and its pump."""
    path = tmp_path / "config"
    write_in_place(path, tilt_config([x.port for x in listed]))
    settings = replace(
        settings_for(listed[0]),
        tilt_config=path,
        port=explicit.port if explicit else 10350,
        port_source=source if explicit else None,
    )
    found = Discovery(path, interval_s=TICK)
    registry = Instances(
        settings,
        explicit_port=settings.explicit_port,
        explicit_source=source,
        linger_s=0,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(found.run)
        await tg.start(registry.run, found)  # before the server, as bridge.app.serve does
        app = await assemble(settings, None, None, instances=registry, cwd=lambda: cwd)
        await tg.start(app.pump.run)
        b = Bridge(app, registry, found, path)
        await b.connected(*listed, *([explicit] if explicit else []))
        yield b
        tg.cancel_scope.cancel()


async def call(client: Client[Any], tool: str, **args: object) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


class Roots:
    """A client's roots that can change during the session (``set_roots`` only applies
    to the next session)."""

    def __init__(self, *uris: str) -> None:
        self.uris = list(uris)

    def __call__(self, context: object) -> list[str]:
        return self.uris


async def roots_changed(client: Client[Any], roots: Roots, uris: list[str]) -> None:
    roots.uris = uris
    with warnings.catch_warnings():  # roots are deprecated in 2026-07-28, still handshake-era
        warnings.simplefilter("ignore")
        await client.send_roots_list_changed()


# --------------------------------------------------------------------------- selection


async def test_without_roots_the_tilt_around_the_working_directory_answers(
    tmp_path: Path,
) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/b/src") as br,
        Client(br.app.mcp) as client,  # 2026-07-28: no roots
    ):
        status = await call(client, "get_status")
        assert status["instance"] == {
            "port": b.port,
            "tiltfile": "/w/b/Tiltfile",
            "why": "the Tiltfile folder /w/b contains the workspace /w/b/src",
            "others": 1,
        }
        listed = await call(client, "list_instances")
        assert [(r["port"], r["tiltfile"], r["default"]) for r in listed["instances"]] == sorted(
            [(a.port, "/w/a/Tiltfile", False), (b.port, "/w/b/Tiltfile", True)]
        )
        row = listed["instances"][0]
        assert row["connected"] is True
        assert row["connection"] == "connected"
        assert row["resources"] == 15
        assert sum(row["counts"].values()) == 15
        assert row["version"]
        assert listed["default"] == b.port
        assert "problem" not in listed
        assert "REDACTED" not in repr(listed)  # the config file's secrets stay in it


async def test_the_config_file_is_followed_during_the_session(tmp_path: Path) -> None:
    """A third Tilt appears (the deepest folder wins), one exits, the file goes away."""
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile", "/w/a/svc/Tiltfile") as (a, b, c),
        bridge(tmp_path, [a, b], cwd="/w/a/svc/x") as br,
        Client(br.app.mcp) as client,
    ):
        assert (await call(client, "get_status"))["instance"]["port"] == a.port
        write_in_place(br.config, tilt_config([a.port, b.port, c.port]))
        await br.connected(a, b, c)
        status = await call(client, "get_status")
        assert status["instance"]["port"] == c.port
        assert status["instance"]["others"] == 2
        assert len((await call(client, "list_instances"))["instances"]) == 3

        write_in_place(br.config, tilt_config([b.port]))  # a and c exited cleanly
        await br.until(lambda: br.registry.ports == [b.port], "only b left")
        status = await call(client, "get_status")
        assert status["instance"] == {
            "port": b.port,
            "tiltfile": "/w/b/Tiltfile",
            "why": "only one Tilt is running",
        }

        br.config.unlink()
        await br.until(lambda: br.registry.ports == [], "none left")
        listed = await call(client, "list_instances")
        assert listed["instances"] == []
        assert "does not exist" in listed["problem"]
        with pytest.raises(ToolError, match="no Tilt is connected on port 10350"):
            await call(client, "get_status")


async def test_roots_offered_by_the_client_choose_until_they_change(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/b") as br,
        Client(br.app.mcp, mode="legacy", roots=(roots := Roots("file:///w/a/src"))) as client,
    ):
        status = await call(client, "get_status")
        assert status["instance"]["port"] == a.port
        assert status["instance"]["why"] == (
            "the Tiltfile folder /w/a contains the workspace /w/a/src"
        )
        # one client's roots are the bridge's: un-qualified resources follow them too
        read = await client.read_resource("tilt://status")
        assert f'"port":{a.port}' in read[0].text  # type: ignore[union-attr]

        await roots_changed(client, roots, ["file:///elsewhere", "file:///w/b/x"])
        with anyio.fail_after(DEADLINE):
            while (await call(client, "get_status"))["instance"]["port"] != b.port:
                pass  # each call is a request: the notification is handled in order
        assert (await call(client, "get_status"))["instance"]["why"] == (
            "the Tiltfile folder /w/b contains the workspace /w/b/x"
        )


async def test_roots_outside_every_tiltfile_folder_leave_no_default_and_say_why(
    tmp_path: Path,
) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/a") as br,
        Client(br.app.mcp, mode="legacy", roots=["file:///home/me/other"]) as client,
    ):
        with pytest.raises(ToolError, match="pass instance=<port or folder name>"):
            await call(client, "get_status")
        assert (await call(client, "get_status", instance="b"))["instance"]["port"] == b.port
        listed = await call(client, "list_instances")
        assert "default" not in listed
        assert "MCP roots /home/me/other" in listed["why"]


async def test_an_explicit_port_wins_as_before(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a], cwd="/w/a", explicit=b, source="TILT_PORT") as br,
        Client(br.app.mcp, mode="legacy", roots=["file:///w/a"]) as client,
    ):
        status = await call(client, "get_status")
        assert status["instance"]["port"] == b.port
        assert status["instance"]["why"] == f"TILT_PORT {b.port} was given"
        # the answer is b's: its connection URL names b's port
        assert f":{b.port}/" in status["connection"]["url"]
        br.config.unlink()  # the explicit one stays whatever the file says
        await br.until(lambda: br.registry.ports == [b.port], "b stays")
        assert (await call(client, "get_status"))["instance"]["port"] == b.port


# --------------------------------------------------------------------------- instance=


async def test_every_tool_takes_instance_by_port_or_folder_name(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/a") as br,
        Client(br.app.mcp) as client,
    ):
        b.trigger("ok", reason="only on b")
        await br.until(
            lambda: (
                br.registry.get(b.port).store.state.resources["ok"].current_build  # type: ignore[union-attr]
                is not None
                or bool(br.registry.get(b.port).store.state.resources["ok"].build_history)
            ),  # type: ignore[union-attr]
            "b builds ok",
        )
        for value in (str(b.port), "b", "/w/b", f"tilt-{b.port}"):
            status = await call(client, "get_status", instance=value)
            assert status["instance"]["port"] == b.port, value
            assert status["instance"]["why"] == f"instance={value!r} was passed"
        rows = await call(client, "list_resources", instance="b")
        assert len(rows["resources"]) == 16  # with (Tiltfile)
        detail = await call(client, "describe_resource", name="ok", instance=str(b.port))
        assert detail["name"] == "ok"
        tools = {x.name: x for x in await client.list_tools()}
        for name in ("get_status", "list_resources", "describe_resource", "get_logs"):
            prop = tools[name].input_schema["properties"]["instance"]
            assert prop == {"type": "string"}, name  # listed compact; 256 is still the cap


async def test_a_bad_instance_names_close_matches_and_quotes_little(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/api/Tiltfile", "/w/web/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/api") as br,
        Client(br.app.mcp) as client,
    ):
        with pytest.raises(ToolError) as typo:
            await call(client, "get_status", instance="apii")
        text = str(typo.value)
        assert "no instance named 'apii'; did you mean 'api'?" in text
        assert f"running: {min(a.port, b.port)} (" in text
        with pytest.raises(ToolError) as port:
            await call(client, "get_logs", instance="1")
        assert "no instance named '1'" in str(port.value)
        with pytest.raises(ToolError) as long:
            await call(client, "list_resources", instance="x" * 100_000)
        assert len(str(long.value)) < 600
        assert "x" * 101 not in str(long.value)


# --------------------------------------------------------------------------- resources


async def test_qualified_resources_read_complete_and_push_per_instance(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/a") as br,
        Client(br.app.mcp, mode="legacy", message_handler=(inbox := Inbox())) as client,
    ):
        status = await client.read_resource(f"tilt://instances/{b.port}/status")
        assert f'"port":{b.port}' in status[0].text  # type: ignore[union-attr]
        detail = await client.read_resource(f"tilt://instances/{b.port}/resources/web")
        assert '"name":"web"' in detail[0].text  # type: ignore[union-attr]
        listed = await client.read_resource("tilt://instances")
        assert f'"default":{a.port}' in listed[0].text  # type: ignore[union-attr]
        with pytest.raises(Exception, match="no instance named '1'"):
            await client.read_resource("tilt://instances/1/status")
        with pytest.raises(Exception, match="did you mean 'web'"):
            await client.read_resource(f"tilt://instances/{b.port}/resources/wbe")

        ref = t.ResourceTemplateReference(uri="tilt://instances/{port}/resources/{name}")
        done = await client.complete(ref, {"name": "port", "value": "b"})
        assert done.values == [str(b.port)]
        done = await client.complete(
            ref, {"name": "name", "value": "tic"}, context_arguments={"port": str(b.port)}
        )
        assert done.values == ["ticker"]
        uris = {str(r.uri) for r in await client.list_resources()}
        assert {f"tilt://instances/{a.port}/status", f"tilt://instances/{b.port}/status"} <= uris

        qualified = f"tilt://instances/{b.port}/resources/ticker/logs"
        default = "tilt://resources/ticker/logs"
        other = f"tilt://instances/{a.port}/resources/ticker/logs"
        for uri in (qualified, default, other):
            await subscribe(client, uri)
        span = runtime_span(b.model, "ticker")
        assert span is not None
        line = segment(span, micro_time(datetime.now(UTC)), "b only\n")
        await b.send(delta(segments=[line], spans={span: "ticker"}))
        with anyio.fail_after(DEADLINE):
            await inbox.wait_for(lambda i: qualified in i.updated())
            b_store = br.registry.get(b.port).store  # type: ignore[union-attr]
            await br.app.pump.caught_up(b_store.version, b.port)
        assert default not in inbox.updated()  # a is the default: b's lines are not its
        assert other not in inbox.updated()


async def test_list_changed_when_an_instance_appears_and_goes(tmp_path: Path) -> None:
    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a], cwd="/w/a") as br,
        Client(br.app.mcp, mode="legacy", message_handler=(inbox := Inbox())) as client,
    ):
        await subscribe(client, "tilt://instances")
        before = inbox.list_changed()
        write_in_place(br.config, tilt_config([a.port, b.port]))
        await br.connected(a, b)
        with anyio.fail_after(DEADLINE):
            await inbox.wait_for(lambda i: i.list_changed() > before)
        uris = {str(r.uri) for r in await client.list_resources()}
        assert f"tilt://instances/{b.port}/status" in uris
        with anyio.fail_after(DEADLINE):
            await inbox.wait_for(lambda i: "tilt://instances" in i.updated())
        seen = inbox.list_changed()
        write_in_place(br.config, tilt_config([a.port]))
        await br.until(lambda: br.registry.ports == [a.port], "b gone")
        with anyio.fail_after(DEADLINE):
            await inbox.wait_for(lambda i: i.list_changed() > seen)
        uris = {str(r.uri) for r in await client.list_resources()}
        assert f"tilt://instances/{b.port}/status" not in uris


# --------------------------------------------------------------------------- memory, CLI


def test_set_budget_evicts_at_once_down_to_the_new_share() -> None:
    """A third Tilt halves the others' shares: their logs shrink now, not at their next
    log frame (a quiet Tilt may send none for hours)."""
    logs = LogBuffer(1024 * 1024)
    lines = [seg("build:1", f"line {i:05d} {'x' * 200}\n", i % 60) for i in range(3000)]
    logs.apply(frame(lines, 0))
    assert logs.stats().bytes > 256 * 1024
    logs.set_budget(256 * 1024)
    assert logs.stats().bytes <= 256 * 1024
    assert logs.stats().evicted_lines > 0
    assert texts(logs, "api")[-1].startswith("line 02999")  # the newest kept
    with pytest.raises(ValueError, match="at least 64 KiB"):
        logs.set_budget(1024)


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``run_status`` configures logging for the process (level warning): put it back,
    or later tests' ``capture_logs`` would miss debug events."""
    saved = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate)
        for n in bridge_log.LIBRARIES
    }
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    yield
    structlog.configure(**saved_structlog)
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
    root.handlers[:] = root_handlers
    root.setLevel(root_level)


@pytest.mark.usefixtures("logging_restored")
def test_status_lists_every_demo_instance_and_marks_the_default() -> None:
    out = StringIO()
    assert run_status(Settings(demo=True, demo_instances=2), out) == 0
    text = out.getvalue()
    assert text.count("== port ") == 2
    assert text.count("[default: ") == 1
    assert "/home/dev/demo-2/Tiltfile" in text
    assert text.count("RESOURCE") == 2


@pytest.mark.usefixtures("logging_restored")
def test_status_with_one_demo_instance_prints_the_one_table_as_before() -> None:
    out = StringIO()
    assert run_status(Settings(demo=True), out) == 0
    assert "== port" not in out.getvalue()
    assert out.getvalue().startswith("Tilt ")


async def test_the_routing_helpers_other_modules_use_reach_the_named_instance(
    tmp_path: Path,
) -> None:
    """What bridge/mcp/live.py and control.py add per tool: ``@ctx.routed`` (the
    ``instance`` argument) and ``ctx.store`` / ``ctx.controller()`` read per call."""
    from fastmcp import FastMCP

    from bridge.core.present import Compact
    from bridge.mcp.context import model_errors

    class Out(Compact):
        port: int
        outcome: str

    async with (
        fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b),
        bridge(tmp_path, [a, b], cwd="/w/a") as br,
    ):
        ctx = br.app.ctx
        mcp = FastMCP("routing")

        @mcp.tool
        @model_errors
        @ctx.routed
        async def poke(resource: str) -> Out:
            result = await ctx.controller().trigger(resource, wait=False, timeout_s=5)
            return Out(port=ctx.target.port, outcome=result.outcome)

        async with Client(mcp) as client:
            out = await call(client, "poke", resource="ok", instance="b")
            assert out == {"port": b.port, "outcome": "triggered"}
            assert (await call(client, "poke", resource="ok"))["port"] == a.port  # cwd
        assert sum("/api/trigger" in r.path for r in b.requests) == 1
        assert sum("/api/trigger" in r.path for r in a.requests) == 1
