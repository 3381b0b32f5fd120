"""Several real Tilts: two ``tilt up`` on two ports in two folders, one ``TILT_DEV_DIR``.
The registry finds both through Tilt's own config file and the selection picks the one
whose folder contains the working directory. Skips unless ``TILT_BIN`` points at the
unpacked binary (``../shared/tilt/unpack.sh DEST``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from bridge.core.instances import parse_config
from bridge.discovery import Discovery
from bridge.instances import Instances
from bridge.settings import Settings, TokenSource
from tests.test_discovery import connected, until

TILT_BIN = os.environ.get("TILT_BIN")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not TILT_BIN, reason="set TILT_BIN to a tilt binary to run real-Tilt tests"),
]

TILT_UP = ("up", "--host", "127.0.0.1", "--legacy=false", "--stream=false", "--web-mode=prod")
TILTFILE = "local_resource('hello-{name}', cmd='echo hello from {name}')\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tilt_up(folder: Path, dev_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tilt up`` in ``folder``; ended with SIGTERM (so Tilt removes its context), then
    SIGKILL by pid if it lingers. Only ``cmd`` resources: no serve_cmd children."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILT_")}
    env["TILT_DEV_DIR"] = str(dev_dir)
    assert TILT_BIN is not None
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [TILT_BIN, *TILT_UP, "--port", str(port)],
            cwd=folder,  # a symlinked folder stays unresolved here: PWD is not set
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def test_two_real_tilts_the_one_around_the_working_directory_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = tmp_path / "tilt-dev"
    a, b_real = tmp_path / "a", tmp_path / "real-b"
    (a / "sub").mkdir(parents=True)
    b_real.mkdir()
    (a / "Tiltfile").write_text(TILTFILE.format(name="a"))
    (b_real / "Tiltfile").write_text(TILTFILE.format(name="b"))
    b = tmp_path / "b"
    b.symlink_to(b_real)  # Tilt reports its Tiltfile symlink-resolved
    port_a, port_b = free_port(), free_port()
    settings = Settings(host="127.0.0.1", token=TokenSource(path=dev / "token"))

    with (
        tilt_up(a, dev, port_a, tmp_path / "a.log") as proc_a,
        tilt_up(b, dev, port_b, tmp_path / "b.log"),
    ):
        found = Discovery(dev / "config", interval_s=0.1)
        registry = Instances(settings, linger_s=0)
        async with anyio.create_task_group() as tg:
            await tg.start(found.run)
            await tg.start(registry.run, found)
            both = [port_a, port_b]

            def ready() -> bool:
                return connected(registry, both) and all(c.tiltfile for c in registry.candidates())

            await until(registry, ready, "both real Tilts connected, Tiltfiles known", 90)
            config = parse_config((dev / "config").read_bytes())
            assert config.ports == {port_a, port_b}
            tiltfiles = {c.port: c.tiltfile for c in registry.candidates()}
            assert tiltfiles == {port_a: str(a / "Tiltfile"), port_b: str(b_real / "Tiltfile")}

            monkeypatch.chdir(a / "sub")  # the bridge started inside folder a
            choice = registry.default([str(Path.cwd().resolve())])
            assert choice.port == port_a
            assert choice.reason == f"the Tiltfile folder {a} contains the workspace {a}/sub"
            assert registry.default([str(b.resolve())]).port == port_b
            assert registry.resolve("real-b") is registry.get(port_b)

            stop(proc_a)  # a clean exit removes Tilt's context; the registry follows
            await until(registry, lambda: registry.ports == [port_b], "a closed", 30)
            assert registry.default([str(a / "sub")]).reason == "only one Tilt is running"
            tg.cancel_scope.cancel()


async def test_the_bridge_started_inside_one_folder_serves_it_and_lists_both(
    tmp_path: Path,
) -> None:
    """The app's wiring against two real Tilts: the bridge's working directory is inside
    folder b, so get_status answers from b, and list_instances shows both."""
    from dataclasses import replace

    from fastmcp import Client

    from bridge.app import registry_for
    from bridge.mcp.app import assemble

    dev = tmp_path / "tilt-dev"
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name in ((a, "a"), (b, "b")):
        (folder / "src").mkdir(parents=True)
        (folder / "Tiltfile").write_text(TILTFILE.format(name=name))
    port_a, port_b = free_port(), free_port()
    live = replace(
        Settings(host="127.0.0.1", token=TokenSource(path=dev / "token")),
        tilt_config=dev / "config",
    )
    with tilt_up(a, dev, port_a, tmp_path / "a.log"), tilt_up(b, dev, port_b, tmp_path / "b.log"):
        found = Discovery(dev / "config", interval_s=0.1)
        registry = registry_for(live, [])
        app = await assemble(
            live, None, None, instances=registry, cwd=lambda: str((b / "src").resolve())
        )
        async with anyio.create_task_group() as tg:
            await tg.start(found.run)
            await tg.start(registry.run, found)

            def ready() -> bool:
                return connected(registry, [port_a, port_b]) and all(
                    c.tiltfile for c in registry.candidates()
                )

            await until(registry, ready, "both real Tilts connected, Tiltfiles known", 90)
            async with Client(app.mcp) as client:
                status = (await client.call_tool("get_status", {})).structured_content
                assert status is not None
                assert status["instance"]["port"] == port_b
                assert status["instance"]["tiltfile"] == str((b / "Tiltfile").resolve())
                listed = (await client.call_tool("list_instances", {})).structured_content
                assert listed is not None
                rows = {r["port"]: r for r in listed["instances"]}
                assert set(rows) == {port_a, port_b}
                assert rows[port_b]["default"]
                assert not rows[port_a]["default"]
                assert all(r["connected"] for r in rows.values())
                assert all(r["version"] for r in rows.values())
                detail = (
                    await client.call_tool(
                        "describe_resource", {"name": "hello-a", "instance": "a"}
                    )
                ).structured_content
                assert detail is not None
                assert detail["name"] == "hello-a"
            tg.cancel_scope.cancel()
