"""cProfile of the pure-Python hot paths: ``python -m bench.profile [NAME ...]``.

Names: ``frame`` (decode + apply of the 3.9 MB complete frame), ``ingest`` (50 000
synthetic segments, decode + apply), ``evict`` (the same into a full 8 MiB budget),
``queries`` (the three presenters with 200 000 lines held), ``tools`` (the same three
tools through fastmcp's in-memory client, to see the framework's share). Prints the
top functions by own time and by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import anyio

from bench import synth
from bench.common import MIB, big_complete_frame
from bench.fixtures import HELD_BUDGET, RESOURCES, held_store
from bridge.store import Store
from bridge.tilt.view import decode_view

TOP: Final = 18


def _frame() -> Callable[[], Any]:
    raw = big_complete_frame()

    def go() -> None:
        store = Store()
        store.new_connection()
        store.apply_frame(decode_view(raw))

    return go


def _ingest(budget: int = HELD_BUDGET, prefill: int = 0) -> Callable[[], Any]:
    raws = list(synth.delta_frames(50_000, RESOURCES, first=prefill))
    store = Store(log_budget_bytes=budget)
    store.new_connection()
    store.apply_frame(decode_view(synth.complete_view(RESOURCES)))
    for raw in synth.delta_frames(prefill, RESOURCES):
        store.apply_frame(decode_view(raw))

    def go() -> None:
        for raw in raws:
            store.apply_frame(decode_view(raw))

    return go


def _queries() -> Callable[[], Any]:
    from bench.queries import presenters

    store = held_store()
    fns = presenters(store.state, store.logs)

    def go() -> None:
        for _ in range(50):
            for fn in fns.values():
                fn().model_dump_json()

    return go


def _tools() -> Callable[[], Any]:
    from fastmcp import Client

    from bridge.mcp.context import BridgeContext
    from bridge.mcp.server import build_server
    from bridge.settings import Settings

    store = held_store()
    mcp = build_server(BridgeContext(store=store, settings=Settings()))

    async def calls() -> None:
        async with Client(mcp) as client:
            for _ in range(30):
                await client.call_tool("get_status", {})
                await client.call_tool("list_resources", {})
                await client.call_tool("get_logs", {"tail": 100})

    return lambda: anyio.run(calls, backend="asyncio")


PROFILES: Final[dict[str, Callable[[], Callable[[], Any]]]] = {
    "frame": _frame,
    "ingest": _ingest,
    "evict": lambda: _ingest(8 * MIB, 40_000),
    "queries": _queries,
    "tools": _tools,
}


def profile(name: str) -> str:
    fn = PROFILES[name]()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(fn)
    elapsed = time.perf_counter() - t0
    out = io.StringIO()
    out.write(f"=== {name}: {elapsed * 1000:.0f} ms under cProfile\n")
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    return out.getvalue()


if __name__ == "__main__":
    names = sys.argv[1:] or list(PROFILES)
    for n in names:
        print(profile(n))
