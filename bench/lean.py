"""Issue 13's pair, in one run: start-up and idle RSS of ``python -m bridge`` against the
bare FastMCP server (``bench.bare_server``).

Start-ups alternate bridge / bare (so a load spike hits both alike), each after one
untimed start that caches the bytecode; the figures are medians of spawn → ``initialize``
answered (wall) and of the CPU time the process had used by then. Idle RSS is
:mod:`bench.memory`'s: the bridge connected to a fake Tilt holding its first view, the
bare server after one call. ``python -m bench.lean [--repeat N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import anyio

from bench.common import PYTHON, REPO, child_env, median, ms
from bench.memory import _floor_rss, _idle_rss
from bench.rpc import StdioPeer
from bench.startup import closed_port, cpu_ns


async def _start(argv: list[str], tmp: str) -> tuple[int, int]:
    env = child_env({"BRIDGE_LOG_FORMAT": "json"})
    async with StdioPeer.spawn(argv, env=env, cwd=REPO, stderr=Path(tmp) / "err") as peer:
        reply = await peer.initialize(within_s=30, notify=False)
        cpu = cpu_ns(peer.pid)  # before notifications/initialized lets the bridge connect
        await peer.initialized()
        return reply.at_ns - peer.spawned_ns, cpu


async def starts(repeat: int) -> dict[str, tuple[list[int], list[int]]]:
    argvs = {
        "bridge": [PYTHON, "-m", "bridge", "--host", "127.0.0.1", "--port", str(closed_port())],
        "bare": [PYTHON, "-m", "bench.bare_server"],
    }
    out: dict[str, tuple[list[int], list[int]]] = {k: ([], []) for k in argvs}
    with tempfile.TemporaryDirectory() as tmp:
        for argv in argvs.values():
            await _start(argv, tmp)  # warm-up: bytecode cached
        for _ in range(repeat):
            for name, argv in argvs.items():
                wall, cpu = await _start(argv, tmp)
                out[name][0].append(wall)
                out[name][1].append(cpu)
    return out


async def first_requests() -> dict[str, int]:
    """ns to answer the first ``tools/list`` after the handshake (1.5 s after it, so
    start-up work is over): fastmcp reads its per-session visibility rules there, and
    its own session store imports key_value + beartype on that first read; the bridge
    installs a light store (``bridge.mcp._sdk.LightStateStore``)."""
    out: dict[str, int] = {}
    argvs = {
        "bridge": [PYTHON, "-m", "bridge", "--host", "127.0.0.1", "--port", str(closed_port())],
        "bare": [PYTHON, "-m", "bench.bare_server"],
    }
    env = child_env({"BRIDGE_LOG_FORMAT": "json"})
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in argvs.items():
            async with StdioPeer.spawn(argv, env=env, cwd=REPO, stderr=Path(tmp) / "e") as peer:
                await peer.initialize(within_s=30)
                await anyio.sleep(1.5)
                t0 = time.perf_counter_ns()
                await peer.request("tools/list", {})
                out[name] = time.perf_counter_ns() - t0
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.lean", description=__doc__)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    got = anyio.run(starts, args.repeat, backend="asyncio")
    (bw, bc), (fw, fc) = got["bridge"], got["bare"]
    print(f"start-up, median of {args.repeat} (spawn → initialize answered):")
    print(f"  bridge {ms(median(bw))}, CPU {ms(median(bc))}")
    print(f"  bare   {ms(median(fw))}, CPU {ms(median(fc))}")
    print(
        f"  bridge / bare: wall {median(bw) / median(fw) - 1:+.1%}, "
        f"CPU {median(bc) / median(fc) - 1:+.1%}"
    )
    first = anyio.run(first_requests, backend="asyncio")
    print(f"first tools/list: bridge {ms(first['bridge'])}, bare {ms(first['bare'])}")
    bridge_rss, bridge_b = anyio.run(_idle_rss, backend="asyncio")
    bare_rss, bare_b, _ = anyio.run(_floor_rss, backend="asyncio")
    print(f"{bridge_rss.benchmark}: {bridge_rss.figure}")
    print(f"{bare_rss.benchmark.strip()}: {bare_rss.figure}")
    print(f"  bridge / bare: {bridge_b / bare_b - 1:+.1%}")


if __name__ == "__main__":
    main()
