"""The real process over stdio: stdout carries only MCP messages; it serves without Tilt."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(id_: int, method: str, params: dict[str, object]) -> bytes:
    return (
        json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}) + "\n"
    ).encode()


INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "test", "version": "1"},
}


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "TILT_TOKEN": "not-a-real-token-1234", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )


def read_reply(
    proc: subprocess.Popen[bytes], want_id: int, timeout: float = 20
) -> dict[str, object]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "the bridge closed stdout"
        msg = json.loads(line)  # every stdout line must be a JSON-RPC message
        assert msg["jsonrpc"] == "2.0"
        if msg.get("id") == want_id:
            return dict(msg)
    raise AssertionError("no reply in time")


def test_stdio_without_tilt_answers_and_says_why() -> None:
    with start("--port", str(free_port()), "--log-format", "json") as proc:
        assert proc.stdin is not None
        proc.stdin.write(rpc(1, "initialize", INIT))
        proc.stdin.flush()
        init = read_reply(proc, 1)
        assert init["result"]["serverInfo"]["name"] == "tilt-mcp-bridge"  # type: ignore[index]
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        proc.stdin.write(rpc(2, "tools/call", {"name": "get_status", "arguments": {}}))
        proc.stdin.flush()
        status = read_reply(proc, 2)["result"]["structuredContent"]  # type: ignore[index]
        assert status["tiltfile"] == "not loaded"
        assert status["connection"]["state"] in ("connecting", "disconnected")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        assert proc.stdout.read() == b""
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    assert "not-a-real-token-1234" not in err
    for line in err.splitlines():
        if line.startswith("{"):
            assert json.loads(line)["event"]


def test_sigterm_stops_the_bridge_promptly() -> None:
    with start("--port", str(free_port())) as proc:
        assert proc.stdin is not None
        proc.stdin.write(rpc(1, "initialize", INIT))
        proc.stdin.flush()
        read_reply(proc, 1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 4.0  # the hard-exit timer is 1 s; loose for a busy CI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "http", "--http-host", "0.0.0.0"], "requires"),
        (["--port", "70000"], "1-65535"),
    ],
)
def test_bad_configuration_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", *args], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert message in proc.stderr.decode() or "http-token" in proc.stderr.decode()


def test_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bridge", "--version"], capture_output=True, timeout=30, check=True
    )
    assert out.stdout.decode().startswith("tilt-mcp-bridge 0.")
    helptext = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"], capture_output=True, timeout=30, check=True
    ).stdout.decode()
    for option in ("--host", "--port", "--transport", "--read-only", "--demo", "--log-budget-mb"):
        assert option in helptext


def test_a_bad_env_number_is_a_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "status"],
        capture_output=True,
        timeout=30,
        check=False,
        env={**os.environ, "TILT_PORT": "abc"},
    )
    assert proc.returncode == 2
    assert "TILT_PORT='abc' is not an integer" in proc.stderr.decode()


def test_sigterm_during_start_up_is_not_ignored() -> None:
    """As PID 1 a process has no default SIGTERM action: the bridge must handle it even
    while it is still importing, before the server's own handlers exist."""
    with start("--port", str(free_port())) as proc:
        time.sleep(0.3)  # land the signal inside the imports, as docker stop might
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 6.0  # loose for a busy CI; an ignored SIGTERM never ends


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deny-tools", "triger"], "unknown tool 'triger'; did you mean trigger?"),
        (["--read-only", "--allow-tools", "trigger"], "a write tool, but --read-only"),
    ],
)
def test_tool_filter_mistakes_exit_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "--port", str(free_port()), *args],
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert message in err
    assert "Traceback" not in err
