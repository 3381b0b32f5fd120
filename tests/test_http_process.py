"""The real process in HTTP mode: health, a live client session, and a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import anyio
import httpx2
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_mode_serves_clients_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    with subprocess.Popen(  # noqa: ASYNC220 - started once; the test then awaits its answers
        [sys.executable, "-m", "bridge", "--demo", "--transport", "http", "--http-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "BRIDGE_LOG_FORMAT": "json"},
    ) as proc:
        base = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient() as http:
            with anyio.fail_after(30):
                while True:  # the process has no other readiness signal than answering
                    try:
                        health = await http.get(base + "/healthz")
                        if health.json()["tilt"] == "connected":
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.1)
        transport = StreamableHttpTransport(base + "/mcp", verify=False)
        async with Client(transport, mode="legacy") as client:
            status = (await client.call_tool("get_status", {})).structured_content
            assert status is not None
            assert status["resources"] == 15
            # SIGTERM while this session (and its GET stream) is open
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await anyio.to_thread.run_sync(lambda: proc.wait(timeout=10))
            elapsed = time.monotonic() - t0
        assert code == 0
        assert elapsed < 5
        assert proc.stdout is not None
        assert proc.stdout.read() == b""  # stdout stays silent in HTTP mode too
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
    assert '"event": "bridge.stopping"' in err


def test_a_busy_http_port_is_one_line_and_exit_2() -> None:
    """Another process holds the port: no "listening" log, no traceback, one line naming the
    port and the next step, exit 2 (a start-up error, like a bad flag)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge",
                "--demo",
                "--transport",
                "http",
                "--http-port",
                str(port),
            ],
            capture_output=True,
            env={**os.environ, "BRIDGE_LOG_FORMAT": "json"},
            timeout=60,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert proc.stdout == b""
    assert "Traceback" not in err
    assert "bridge.http.listening" not in err
    plain = [line for line in err.splitlines() if not line.startswith("{")]
    assert plain == [
        f"tilt-mcp-bridge: port {port} on 127.0.0.1 is in use; stop the other process or "
        "pick another --http-port"
    ]
