"""Issue 10: the worst ``get_status`` stall while a hostile ``get_logs(grep=…)`` runs.

200 000 log lines over 100 resources (:func:`bench.fixtures.held_store`), the bridge's own
server through the in-memory ``fastmcp.Client``. One task sends a hostile grep; another
calls ``get_status`` back to back until the grep has answered and records each call's
latency. The figure is the worst of those latencies: how long any other call waited
because of the grep. Before the bounded matcher, the grep ran on the event loop, so the
stall equalled the grep's whole run (``(.*.*)*=`` never ended).

``python -m bench.grep_stall`` prints the table on its own.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any, Final

import anyio
import anyio.lowlevel
from fastmcp import Client

from bench.common import Config, Row, Section
from bench.fixtures import LINES, RESOURCES, held_store
from bridge.mcp.context import BridgeContext
from bridge.mcp.server import build_server
from bridge.settings import Settings

TARGET_MS: Final = 100.0
PATTERNS: Final = {
    "(a+)+$": "(a+)+$",
    "(.*a){20}": "(.*a){20}",
    "(.*.*)*=": "(.*.*)*=",
    "1 MB plain text": "x" * 1_000_000,
}
GIVE_UP_S: Final = 60.0


async def _one(client: Client[Any], pattern: str, regex: bool) -> tuple[float, float, str]:
    """(worst get_status latency, grep duration, how the grep ended), in seconds."""
    worst = 0.0
    done = anyio.Event()
    outcome = "answered"

    async def grep() -> None:
        nonlocal outcome
        try:
            result = await client.call_tool(
                "get_logs", {"grep": pattern, "regex": regex, "tail": 1}, raise_on_error=False
            )
            if result.is_error:
                outcome = "error: " + result.content[0].text[:60]  # type: ignore[union-attr]
        finally:
            done.set()

    async def status() -> None:
        nonlocal worst
        while not done.is_set():
            t0 = time.perf_counter()
            await client.call_tool("get_status", {})
            worst = max(worst, time.perf_counter() - t0)
            await anyio.lowlevel.checkpoint()

    t0 = time.perf_counter()
    with anyio.move_on_after(GIVE_UP_S) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(status)
            tg.start_soon(grep)
    if scope.cancelled_caught:
        outcome = f"no answer within {GIVE_UP_S:.0f} s"
    return worst, time.perf_counter() - t0, outcome


async def _measure(skip: set[str]) -> list[tuple[str, float, float, str]]:
    store = held_store()
    ctx = BridgeContext(store=store, settings=replace(Settings()), clock=time.time)
    out = []
    async with Client(build_server(ctx)) as client:
        await client.call_tool("get_status", {})  # warm
        for label, pattern in PATTERNS.items():
            if label in skip:
                continue
            worst, took, how = await _one(client, pattern, regex=not label.endswith("text"))
            out.append((label, worst, took, how))
    return out


def run(config: Config, skip: set[str] | None = None) -> Section:
    section = Section("grep stall")
    for label, worst, took, how in anyio.run(_measure, skip or set()):
        section.rows.append(
            Row(
                f"worst get_status stall during grep {label!r} ({RESOURCES} res, "
                f"{LINES // 1000}k lines)",
                f"{worst * 1000:.1f} ms (grep {took:.2f} s, {how})",
                f"≤ {TARGET_MS:.0f} ms",
                worst * 1000 <= TARGET_MS,
            )
        )
    section.notes.append(
        "grep stall: get_status called back to back while one hostile get_logs(grep=…, "
        "tail=1) runs, in-memory fastmcp Client; the figure is the slowest get_status."
    )
    return section


if __name__ == "__main__":
    result = run(Config(), skip=set(sys.argv[1:]))
    for row in result.rows:
        print(f"{row.benchmark}: {row.figure} [{row.mark}]")
