"""Target 3: ``get_status`` / ``list_resources`` / ``get_logs(tail=100)`` ≤ 2 ms server-side.

With 100 resources and 200 000 log lines held (:func:`bench.fixtures.held_store`):

* server-side: the presenters in :mod:`bridge.core.present` called directly, and the
  same plus the JSON serialisation the tool result needs (``model_dump_json``);
* round trip over stdio to ``python -m bench.server`` (the bridge's own tools over
  the same synthetic store), with a no-op tool as the floor: once with raw JSON-RPC
  lines (:class:`bench.rpc.StdioPeer`: server + pipe only), once with a real
  ``fastmcp.Client`` over ``StdioTransport`` (adds the Python client's own work,
  notably validating ``structuredContent`` against each tool's output schema).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import anyio
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from pydantic import BaseModel

from bench.common import (
    PYTHON,
    REPO,
    Config,
    Row,
    Section,
    child_env,
    median,
    ms,
    percentile,
    sample_ns,
)
from bench.fixtures import LINES, RESOURCES, held_store
from bench.rpc import StdioPeer
from bridge.core import present
from bridge.core.logbuffer import LogBuffer
from bridge.core.state import State
from bridge.mcp.context import BridgeContext
from bridge.mcp.server import build_server
from bridge.settings import Settings
from bridge.store import Store

TARGET_MS: Final = 2.0
HELD: Final = f"{RESOURCES} res, {LINES // 1000}k lines"


def presenters(state: State, logs: LogBuffer) -> dict[str, Callable[[], BaseModel]]:
    return {
        "get_status": lambda: present.status(state, logs, time.time()),
        "list_resources": lambda: present.resource_rows(state, logs, time.time()),
        "get_logs(tail=100)": lambda: present.logs(state, logs, time.time(), tail=100),
    }


def run(cfg: Config) -> Section:
    section = Section("queries")
    store = held_store()
    assert store.logs.stats().lines == LINES
    repeat = cfg.repeat(200, 50)
    in_tool = anyio.run(_in_process_tools, store, repeat, backend="asyncio")
    for name, fn in presenters(store.state, store.logs).items():
        samples = sample_ns(fn, repeat=repeat, warmup=5)
        section.rows.append(
            Row(
                f"{name} server-side ({HELD})",
                f"{ms(median(samples))}; as a FastMCP tool call in-process {ms(in_tool[name])}",
                f"≤ {TARGET_MS:g} ms",
                median(samples) <= TARGET_MS * 1e6,
            )
        )
    del store
    section.rows += anyio.run(_raw_round_trips, cfg, backend="asyncio")
    section.rows += anyio.run(_round_trips, cfg, backend="asyncio")
    return section


CALLS: Final[dict[str, dict[str, object]]] = {
    "get_status": {},
    "list_resources": {},
    "get_logs(tail=100)": {"tail": 100},
}


async def _in_process_tools(store: Store, repeat: int) -> dict[str, float]:
    """Median ``FastMCP.call_tool`` time: the presenter plus fastmcp's serialisation of
    its result (structured content and the text copy), no transport."""
    mcp = build_server(BridgeContext(store=store, settings=Settings()))
    out: dict[str, float] = {}
    for name, args in CALLS.items():
        tool = name.partition("(")[0]

        async def call(tool: str = tool, args: dict[str, object] = args) -> None:
            await mcp.call_tool(tool, args)

        out[name] = median(await _sample_async(call, repeat))
    return out


async def _raw_round_trips(cfg: Config) -> list[Row]:
    rows: list[Row] = []
    repeat = cfg.repeat(100, 30)
    with tempfile.TemporaryDirectory() as tmp:
        async with StdioPeer.spawn(
            [PYTHON, "-m", "bench.server"], env=child_env(), cwd=REPO, stderr=Path(tmp) / "err"
        ) as peer:
            await peer.initialize(within_s=180)
            for name, args in {"bench_noop": {}, **CALLS}.items():
                tool = name.partition("(")[0]

                async def call(tool: str = tool, args: dict[str, object] = args) -> None:
                    await peer.call_tool(tool, args)

                samples = await _sample_async(call, repeat)
                label = "a no-op tool (the floor)" if tool == "bench_noop" else f"{name} ({HELD})"
                rows.append(
                    Row(
                        f"stdio round trip, raw JSON-RPC: {label}",
                        f"p50 {ms(median(samples))}, p99 {ms(percentile(samples, 99))}",
                    )
                )
    return rows


async def _round_trips(cfg: Config) -> list[Row]:
    rows: list[Row] = []
    repeat = cfg.repeat(100, 30)
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "server.log"
        transport = StdioTransport(PYTHON, ["-m", "bench.server"], cwd=str(REPO), log_file=log_file)
        try:
            async with Client(transport, init_timeout=180, timeout=60) as client:

                async def noop() -> None:
                    await client.call_tool("bench_noop", {})

                floor = await _sample_async(noop, repeat)
                rows.append(
                    Row(
                        "stdio round trip, fastmcp Client: a no-op tool (the floor)",
                        f"p50 {ms(median(floor))}, p99 {ms(percentile(floor, 99))}",
                    )
                )
                for name, args in CALLS.items():
                    tool = name.partition("(")[0]

                    async def call(tool: str = tool, args: dict[str, object] = args) -> None:
                        await client.call_tool(tool, args)

                    samples = await _sample_async(call, repeat)
                    rows.append(
                        Row(
                            f"stdio round trip, fastmcp Client: {name} ({HELD})",
                            f"p50 {ms(median(samples))}, p99 {ms(percentile(samples, 99))}",
                        )
                    )
        except Exception:
            print(log_file.read_text(encoding="utf-8", errors="replace")[-4000:])
            raise
        finally:
            await transport.close()  # type: ignore[no-untyped-call]
    return rows


async def _sample_async(fn: Callable[[], Any], repeat: int, warmup: int = 5) -> list[int]:
    for _ in range(warmup):
        await fn()
    out: list[int] = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        await fn()
        out.append(time.perf_counter_ns() - t0)
    return out


if __name__ == "__main__":
    for row in run(Config()).rows:
        print(row)
