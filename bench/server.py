"""A stdio MCP server over a synthetic store, for round-trip and memory benchmarks.

``python -m bench.server [--resources N] [--lines N] [--budget-mb MB]`` builds a store
with :func:`bench.fixtures.held_store` (before answering ``initialize``), then serves
the bridge's real tools over stdio. It adds two tools of its own: ``bench_probe``
(this process's pid and ``/proc/self/status`` memory figures) and ``bench_noop`` (a
round trip's floor).
"""

from __future__ import annotations

import argparse
import gc
import os
from functools import partial

import anyio

from bench.common import MIB, proc_status
from bench.fixtures import LINES, RESOURCES, held_store
from bridge.mcp.context import BridgeContext
from bridge.mcp.server import build_server
from bridge.settings import Settings


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.server")
    p.add_argument("--resources", type=int, default=RESOURCES)
    p.add_argument("--lines", type=int, default=LINES)
    p.add_argument("--budget-mb", type=float, default=512)
    args = p.parse_args()
    budget = int(args.budget_mb * MIB)
    store = held_store(args.resources, args.lines, budget_bytes=budget)
    gc.collect()
    ctx = BridgeContext(store=store, settings=Settings(log_budget_bytes=budget))
    mcp = build_server(ctx)

    @mcp.tool
    def bench_probe() -> dict[str, int]:
        """The server process's pid and memory (bytes), for the benchmarks."""
        return {"pid": os.getpid(), "lines": store.logs.stats().lines, **proc_status()}

    @mcp.tool
    def bench_noop() -> str:
        """Does nothing: the floor of a tool call's round trip."""
        return "ok"

    anyio.run(
        partial(mcp.run_stdio_async, show_banner=False, log_level="warning"), backend="asyncio"
    )


if __name__ == "__main__":
    main()
