"""entrypoint.sh without Docker: it validates the environment with clear errors on stderr,
writes nothing on stdout, and execs the real installed bridge.

Each case runs under dash (the POSIX /bin/sh here) and, where installed, under busybox's sh
with busybox's own sed/tr/stat/id/dirname first on PATH — the userland of the Alpine image.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[1] / "entrypoint.sh"
BRIDGE_BIN = Path(sys.executable).parent  # where `tilt-mcp-bridge` is installed
NOBODY = 65534


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A world-readable folder (pytest's tmp_path is 0700: no good for another uid)."""
    path = Path(tempfile.mkdtemp(prefix="entrypoint-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _busybox_path(scratch: Path) -> str | None:
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    applets = scratch / "busybox-bin"
    if not applets.exists():
        applets.mkdir()
        for name in ("sh", "sed", "tr", "stat", "id", "dirname", "cat"):
            (applets / name).symlink_to(busybox)
    return str(applets)


@pytest.fixture(params=["dash", "busybox"])
def shell(request: pytest.FixtureRequest, scratch: Path) -> tuple[list[str], str]:
    """(how to run the script, PATH): the real bridge's folder, then the shell's userland."""
    if request.param == "dash":
        dash = shutil.which("dash") or "/bin/sh"
        return [dash], f"{BRIDGE_BIN}:/usr/bin:/bin"
    applets = _busybox_path(scratch)
    if applets is None:
        pytest.skip("busybox is not installed (apt-get install busybox)")
    return [f"{applets}/sh"], f"{BRIDGE_BIN}:{applets}"


def run(
    shell: tuple[list[str], str],
    *args: str,
    env: dict[str, str] | None = None,
    user: int | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    argv, path = shell
    base = {"PATH": path, "HOME": "/nonexistent-home", "LANG": "C.UTF-8"}
    return subprocess.run(
        [*argv, str(ENTRYPOINT), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        user=user,
    )


def test_version_execs_the_installed_bridge(shell: tuple[list[str], str]) -> None:
    out = run(shell, "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("tilt-mcp-bridge ")


def test_help_needs_no_token(shell: tuple[list[str], str]) -> None:
    out = run(shell, "--help")
    assert out.returncode == 0
    assert "--transport" in out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TILT_PORT": "abc"}, "TILT_PORT must be a whole number from 1 to 65535, got 'abc'"),
        ({"TILT_PORT": "0"}, "TILT_PORT must be a whole number from 1 to 65535, got '0'"),
        ({"TILT_PORT": "70000"}, "TILT_PORT must be a whole number"),
        ({"TILT_PORT": "-1"}, "TILT_PORT must be a whole number"),
        ({"TILT_PORT": "99999999999999999999"}, "TILT_PORT must be a whole number"),
        ({"BRIDGE_HTTP_PORT": "http"}, "BRIDGE_HTTP_PORT must be a whole number from 0"),
        ({"BRIDGE_TRANSPORT": "sse"}, "BRIDGE_TRANSPORT must be one of: stdio http; got 'sse'"),
        ({"BRIDGE_LOG_LEVEL": "loud"}, "BRIDGE_LOG_LEVEL must be one of"),
        ({"BRIDGE_LOG_FORMAT": "xml"}, "BRIDGE_LOG_FORMAT must be one of"),
        ({"BRIDGE_LOG_BUDGET_MB": "lots"}, "BRIDGE_LOG_BUDGET_MB must be a number"),
        ({"BRIDGE_MAX_FRAME_MB": "1.2.3"}, "BRIDGE_MAX_FRAME_MB must be a number"),
        ({"BRIDGE_LOG_NOTIFY_INTERVAL": "."}, "BRIDGE_LOG_NOTIFY_INTERVAL must be a number"),
        ({"TILT_HOST": ""}, "TILT_HOST is set but empty"),
        ({"BRIDGE_HTTP_TOKEN": ""}, "BRIDGE_HTTP_TOKEN is set but empty"),
    ],
)
def test_bad_environment_exits_2_with_the_variable_named(
    shell: tuple[list[str], str], env: dict[str, str], message: str
) -> None:
    out = run(shell, env={"TILT_TOKEN": "t", **env})
    assert out.returncode == 2
    assert out.stdout == ""
    assert message in out.stderr
    assert out.stderr.startswith("tilt-mcp-bridge entrypoint: error: ")


def test_valid_environment_reaches_the_real_bridge(shell: tuple[list[str], str]) -> None:
    """Leading zeros and decimals pass; the bridge itself then runs (status: no Tilt there)."""
    port = free_port()
    out = run(
        shell,
        "status",
        env={
            "TILT_TOKEN": "t",
            "TILT_PORT": f"0{port}",
            "BRIDGE_LOG_BUDGET_MB": "0.5",
            "BRIDGE_TRANSPORT": "stdio",
        },
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""
    assert f"localhost:{port}" in out.stderr
    assert "entrypoint" not in out.stderr


def test_missing_token_warns_on_stderr_and_still_runs(
    shell: tuple[list[str], str], scratch: Path
) -> None:
    empty = scratch / "no-token-here"
    empty.mkdir(exist_ok=True)
    out = run(shell, "status", env={"TILT_DEV_DIR": str(empty), "TILT_PORT": str(free_port())})
    assert out.stdout == ""
    assert f"warning: no Tilt token: TILT_TOKEN is unset and {empty}/token" in out.stderr
    assert "Mount ~/.tilt-dev read-only" in out.stderr
    assert out.returncode == 1  # the bridge's own status failure: no Tilt there


def test_demo_needs_no_token(shell: tuple[list[str], str], scratch: Path) -> None:
    out = run(shell, "--demo", "status", env={"TILT_DEV_DIR": str(scratch / "nowhere")})
    assert "no Tilt token" not in out.stderr
    assert out.returncode == 0, out.stderr
    assert "RESOURCE" in out.stdout  # status prints its table; the entrypoint printed nothing


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_unreadable_token_names_the_fix(shell: tuple[list[str], str], scratch: Path) -> None:
    """A 0600 token owned by someone else (a mounted ~/.tilt-dev): exit 2 with the --user fix."""
    dev_dir = scratch / "root-tilt-dev"
    dev_dir.mkdir(exist_ok=True)
    dev_dir.chmod(0o755)
    token = dev_dir / "token"
    token.write_text("secret-token\n")
    token.chmod(0o600)
    out = run(shell, env={"TILT_DEV_DIR": str(dev_dir)}, user=NOBODY)
    assert out.returncode == 2
    assert out.stdout == ""
    assert f"cannot read Tilt's token {token} (owner 0:0, mode 600) as uid {NOBODY}" in out.stderr
    assert 'docker run --user "$(id -u):$(id -g)"' in out.stderr
    assert "secret-token" not in out.stderr


# -------------------------------------------------------------------------- healthcheck


def _healthcheck(shell: tuple[list[str], str], pid: int) -> subprocess.CompletedProcess[str]:
    return run(shell, "healthcheck", env={"BRIDGE_HEALTHCHECK_PID": str(pid)})


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the bridge exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_healthcheck_probes_the_http_bridge_it_finds_in_proc(shell: tuple[list[str], str]) -> None:
    """The check reads the bridge's own arguments from /proc/<pid>/cmdline."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--demo", "--transport", "http", "--http-port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        out = _healthcheck(shell, proc.pid)
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_healthcheck_fails_when_nothing_answers(
    shell: tuple[list[str], str], scratch: Path
) -> None:
    """A process whose arguments say HTTP on a port where nothing listens is unhealthy."""
    fake = scratch / "tilt-mcp-bridge"
    fake.write_text("import time\ntime.sleep(60)\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(fake), "--transport", "http", "--http-port", str(port)]
    )
    try:
        out = _healthcheck(shell, proc.pid)
        assert out.returncode == 1
        assert f"http://127.0.0.1:{port}/healthz" in out.stdout
    finally:
        proc.kill()
        proc.wait()


def test_healthcheck_passes_for_stdio(shell: tuple[list[str], str], scratch: Path) -> None:
    fake = scratch / "tilt-mcp-bridge"
    fake.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(fake), "--port", "10350"])
    try:
        out = _healthcheck(shell, proc.pid)
        assert out.returncode == 0
        assert "stdio transport" in out.stdout
    finally:
        proc.kill()
        proc.wait()
