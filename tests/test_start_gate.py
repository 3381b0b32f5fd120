"""Start-up. The first connection to Tilt waits for the client's handshake (stdio), so the
``initialize`` answer does not wait behind the HTTP client's import and requests.

The gate itself on anyio's clock, then the real process over stdio against the fake
Tilt: no request reaches Tilt before the client says it has the answer, and one does
right after ``notifications/initialized``, after any other first request, or after the
cap when the client says nothing. The collector is off while start-up makes its
long-lived objects and back on (with them frozen) once it is over."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge.lifecycle import StartGate, settle_heap
from bridge.testing import FakeTilt

from .mcpkit import INIT

pytestmark = pytest.mark.anyio

CSRF = "/api/websocket_token"


# -- the gate ---------------------------------------------------------------------------


async def test_cap_zero_is_open_from_the_start() -> None:
    gate = StartGate(0)
    assert gate.is_open
    with anyio.fail_after(1):
        await gate.wait()


async def test_open_releases_every_waiter() -> None:
    gate = StartGate(60)
    passed: list[int] = []

    async def waiter(i: int) -> None:
        await gate.wait()
        passed.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(waiter, i)
        await anyio.sleep(0.05)
        assert passed == []
        gate.open()
    assert sorted(passed) == [0, 1, 2]
    assert gate.is_open


async def test_the_cap_counts_from_arm_not_from_creation() -> None:
    gate = StartGate(0.2)
    with anyio.move_on_after(0.4) as scope:
        await gate.wait()  # never armed: no deadline
    assert scope.cancelled_caught
    assert not gate.is_open
    gate.arm()
    start = anyio.current_time()
    with anyio.fail_after(2):
        await gate.wait()
    assert anyio.current_time() - start >= 0.19
    assert gate.is_open


# -- the process ------------------------------------------------------------------------


class Peer:
    def __init__(self, proc: Process) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.out = BufferedByteReceiveStream(proc.stdout)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.stdin.send((json.dumps(msg) + "\n").encode())

    async def reply(self, want_id: int) -> dict[str, Any]:
        with anyio.fail_after(30):
            while True:
                msg: dict[str, Any] = json.loads(await self.out.receive_until(b"\n", 1 << 24))
                if msg.get("id") == want_id:
                    return msg


LONG_CAP_S = 60.0
"""A cap nothing reaches: only the handshake can open the gate."""
WITHIN_S = 20.0
"""Generous bound for what must happen promptly (a loaded 2-core machine)."""


@asynccontextmanager
async def bridge_over_stdio(
    tilt: FakeTilt, stderr: Path | None = None, cap_s: float = LONG_CAP_S
) -> AsyncIterator[Peer]:
    env = {
        **os.environ,
        "TILT_TOKEN": tilt.token or "",
        "BRIDGE_LOG_FORMAT": "json",
        "BRIDGE_HANDSHAKE_WAIT": str(cap_s),
    }
    argv = [sys.executable, "-m", "bridge", "--host", "127.0.0.1", "--port", str(tilt.port)]
    err = stderr.open("wb") if stderr is not None else None
    async with await anyio.open_process(argv, env=env, stderr=err) as proc:
        peer = Peer(proc)
        try:
            await peer.send(INIT)
            assert "result" in await peer.reply(1)
            yield peer
        finally:
            await peer.stdin.aclose()
            with anyio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
            if err is not None:
                err.close()


async def until_tilt_is_asked(tilt: FakeTilt, within_s: float) -> None:
    with anyio.fail_after(within_s):
        while not tilt.requests_to(CSRF):  # noqa: ASYNC110 - the fake records, it does not signal
            await anyio.sleep(0.02)


async def test_no_request_to_tilt_until_the_client_is_initialized(tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    async with FakeTilt() as tilt, bridge_over_stdio(tilt, err) as peer:
        await anyio.sleep(1.0)
        assert tilt.requests_to(CSRF) == []
        await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await until_tilt_is_asked(tilt, WITHIN_S)
        await tilt.wait_connected()
    events = [json.loads(line)["event"] for line in err.read_text().splitlines()]
    # the collector came back on (start-up over) once the handshake was done
    assert "bridge.settled" in events


async def test_any_other_first_request_opens_the_gate() -> None:
    async with FakeTilt() as tilt, bridge_over_stdio(tilt) as peer:
        await peer.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        assert "result" in await peer.reply(2)
        await until_tilt_is_asked(tilt, WITHIN_S)


async def test_a_silent_client_still_gets_its_tilt_watched_after_the_cap() -> None:
    async with FakeTilt() as tilt, bridge_over_stdio(tilt, cap_s=1.0):
        await until_tilt_is_asked(tilt, 1.0 + WITHIN_S)
        await tilt.wait_connected()


# -- the collector: off during start-up, back on once it is over ------------------------


async def test_the_open_hook_runs_once_before_any_waiter_moves_on() -> None:
    gate = StartGate(60)
    order: list[str] = []
    gate.on_open = lambda: order.append("hook")

    async def waiter() -> None:
        await gate.wait()
        order.append("waiter")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.05)
        gate.open()
        gate.open()
    assert order == ["hook", "waiter"]


def test_settle_heap_collects_freezes_and_turns_the_collector_on() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        collected, frozen = settle_heap()
        assert gc.isenabled()
        assert frozen == gc.get_freeze_count() > 0
        assert collected >= 0
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()


def test_main_leaves_the_collector_on_whatever_the_command_did() -> None:
    """In a fresh interpreter (``main`` configures logging process-wide)."""
    code = (
        "import gc\n"
        "from bridge.cli import main\n"
        "rc = main(['status', '--port', '1', '--host', '127.0.0.1'])\n"  # nothing listens
        "print(rc, gc.isenabled())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["1", "True"]
