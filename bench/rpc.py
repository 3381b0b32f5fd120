"""A minimal MCP client over a subprocess's stdio: raw JSON-RPC lines, nothing hidden.

The start-up and memory benchmarks need what ``fastmcp.Client`` does not expose: the
server's pid and the exact moment its first byte of answer arrives. This peer spawns
the process itself (so it owns the pid), writes one JSON object per line, and stamps
every message it reads with ``time.perf_counter_ns()``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

JSON = dict[str, Any]
PROTOCOL = "2025-06-18"
MAX_LINE = 64 * 1024 * 1024


@dataclass(slots=True)
class Received:
    at_ns: int
    message: JSON


@dataclass(slots=True)
class _Waiter:
    event: anyio.Event = field(default_factory=anyio.Event)
    reply: Received | None = None


async def open_log(path: Path | None) -> IO[bytes]:
    """A child's stderr file (os.devnull without a path), opened off the event loop."""
    opener: partial[IO[bytes]] = partial(open, path or os.devnull, "ab")
    return await anyio.to_thread.run_sync(opener)


class StdioPeer:
    """One spawned MCP server and the JSON-RPC conversation with it."""

    def __init__(self, process: anyio.abc.Process, spawned_ns: int) -> None:
        self.process = process
        self.spawned_ns = spawned_ns
        self.notifications: list[Received] = []
        self.on_notification: Callable[[Received], None] | None = None
        self._next_id = 0
        self._waiters: dict[int, _Waiter] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    @asynccontextmanager
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stderr: Path | None = None,
    ) -> AsyncIterator[StdioPeer]:
        """Start ``argv`` with ``env`` (default: ours); on exit close its stdin, wait
        up to 5 s, then kill it."""
        err = await open_log(stderr)
        with err:
            t0 = time.perf_counter_ns()
            process = await anyio.open_process(list(argv), env=env, cwd=cwd, stderr=err)
            peer = cls(process, t0)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(peer._read)
                    try:
                        yield peer
                    finally:
                        tg.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await peer._stop()

    async def _stop(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with anyio.move_on_after(5):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stream = BufferedByteReceiveStream(self.process.stdout)
        while True:
            try:
                line = await stream.receive_until(b"\n", MAX_LINE)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return
            at = time.perf_counter_ns()
            msg: JSON = json.loads(line)
            got = Received(at, msg)
            if "id" in msg and ("result" in msg or "error" in msg):
                waiter = self._waiters.pop(msg["id"], None)
                if waiter is not None:
                    waiter.reply = got
                    waiter.event.set()
            elif "method" in msg and "id" not in msg:
                self.notifications.append(got)
                if self.on_notification is not None:
                    self.on_notification(got)

    async def send(self, message: JSON) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def request(
        self, method: str, params: JSON | None = None, *, within_s: float = 60
    ) -> Received:
        """Send a request and wait for its response (an ``error`` response raises)."""
        self._next_id += 1
        rid = self._next_id
        waiter = self._waiters[rid] = _Waiter()
        msg: JSON = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        with anyio.fail_after(within_s):
            await waiter.event.wait()
        assert waiter.reply is not None
        if "error" in waiter.reply.message:
            raise RuntimeError(f"{method} failed: {waiter.reply.message['error']}")
        return waiter.reply

    async def initialize(self, *, within_s: float = 60, notify: bool = True) -> Received:
        """The handshake; ``notify=False`` leaves out ``notifications/initialized`` (the
        caller sends it with :meth:`initialized`)."""
        reply = await self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "tilt-mcp-bridge-bench", "version": "0"},
            },
            within_s=within_s,
        )
        if notify:
            await self.initialized()
        return reply

    async def initialized(self) -> None:
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call_tool(self, name: str, arguments: JSON | None = None) -> JSON:
        """A tool's structured result."""
        reply = await self.request("tools/call", {"name": name, "arguments": arguments or {}})
        result: JSON = reply.message["result"]
        if result.get("isError"):
            raise RuntimeError(f"tool {name} failed: {result.get('content')}")
        structured: JSON = result.get("structuredContent") or {}
        return structured
