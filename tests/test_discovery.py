"""Discovery and the registry against a real ``$TILT_DEV_DIR/config`` on disk (written,
edited, cut short, removed during the test) and two or three fake Tilts."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from bridge.core.instances import context_name
from bridge.discovery import Discovery, config_path
from bridge.instances import Instances, budget_share
from bridge.settings import Settings, TokenSource
from bridge.testing import FakeTilt, load_recording

pytestmark = pytest.mark.anyio

TICK = 0.02
DEADLINE = 10.0
BUDGET = 3 * 1024 * 1024


def tilt_config(ports: Iterable[int]) -> str:
    """The file as Tilt v0.37.6 writes it (layout of tests/data/tilt-config)."""
    names = [context_name(p) for p in sorted(ports)]
    if not names:
        return 'apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: ""\n' + (
            "kind: Config\nusers: null\n"
        )
    clusters = "".join(
        f"- cluster:\n    certificate-authority-data: {'QUJD' * 600}\n"
        f"    server: https://127.0.0.1:{40000 + i}\n  name: {n}\n"
        for i, n in enumerate(names)
    )
    contexts = "".join(f"- context:\n    cluster: {n}\n    user: {n}\n  name: {n}\n" for n in names)
    users = "".join(f"- name: {n}\n  user:\n    token: REDACTED\n" for n in names)
    return (
        f"apiVersion: v1\nclusters:\n{clusters}contexts:\n{contexts}"
        f'current-context: ""\nkind: Config\nusers:\n{users}'
    )


def write_in_place(path: Path, text: str) -> None:
    """Like client-go: truncate and write the same inode."""
    with path.open("r+" if path.exists() else "w") as f:
        f.truncate(0)
        f.write(text)


async def until(
    registry: Instances, condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE
) -> None:
    """Wait for ``condition`` under a deadline, waking on any change of the registry or
    of one of its stores (a connection, a frame)."""

    async def wake(tg: anyio.abc.TaskGroup, wait: Callable[[int], Awaitable[int]], v: int) -> None:
        await wait(v)
        tg.cancel_scope.cancel()

    with anyio.fail_after(deadline_s):
        while not condition():
            async with anyio.create_task_group() as tg:
                tg.start_soon(wake, tg, registry.wait_changed, registry.version)
                for port in registry.ports:
                    store = registry.get(port).store  # type: ignore[union-attr]
                    tg.start_soon(wake, tg, store.wait_changed, store.version)
    assert condition(), what


@asynccontextmanager
async def running(discovery: Discovery) -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as tg:
        await tg.start(discovery.run)
        yield tg
        tg.cancel_scope.cancel()


def test_config_path_follows_tilt_dev_dir() -> None:
    assert config_path({"TILT_DEV_DIR": "/d"}) == Path("/d/config")
    assert config_path({"HOME": "/h"}) == Path("/h/.tilt-dev/config")


# --------------------------------------------------------------------------- discovery


async def test_discovery_follows_the_file_as_tilts_come_and_go(tmp_path: Path) -> None:
    path = tmp_path / "config"
    found = Discovery(path, interval_s=TICK)
    async with running(found):
        assert found.current.ports == frozenset()
        assert found.current.problem is not None
        assert "does not exist" in found.current.problem
        with anyio.fail_after(DEADLINE):
            write_in_place(path, tilt_config([10351, 10352]))
            assert (await found.wait_for({10351, 10352})).problem is None
            write_in_place(path, tilt_config([10350, 10351, 10352]))  # tilt-default
            await found.wait_for({10350, 10351, 10352})
            write_in_place(path, tilt_config([10352]))
            await found.wait_for({10352})
            write_in_place(path, tilt_config([]))  # the last Tilt exited cleanly
            assert (await found.wait_for(set())).problem is None
            path.unlink()
            write_in_place(path, tilt_config([10353]))  # a new file, a new inode
            await found.wait_for({10353})
            path.unlink()
            gone = await found.wait_for(set())
            assert gone.problem is not None
            assert "does not exist" in gone.problem


async def test_updates_yields_now_then_each_change_and_a_slow_reader_skips_ahead(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config"
    path.write_text(tilt_config([10351]))
    found = Discovery(path, interval_s=TICK)
    async with running(found):
        updates = found.updates()
        first = await anext(updates)
        assert first.ports == {10351}
        write_in_place(path, tilt_config([10352]))
        write_in_place(path, tilt_config([10353]))
        with anyio.fail_after(DEADLINE):
            await found.wait_for({10353})
            assert (await anext(updates)).ports == {10353}
            assert found.current.version == first.version + 1


async def test_a_read_cut_short_is_believed_only_when_the_file_stays_so(tmp_path: Path) -> None:
    """Tilt rewrites in place; a look between its truncate and its write sees half a
    file. Discovery waits one more look before it believes such a file."""
    path = tmp_path / "config"
    path.write_text(tilt_config([10351, 10352]))
    found = Discovery(path, interval_s=TICK)
    async with running(found):
        full = tilt_config([10351, 10352])
        cut = full[: full.index("  name: tilt-10352\ncurrent-context")]
        write_in_place(path, cut)
        with anyio.fail_after(DEADLINE):
            await found.wait_looks(found.looks + 1)
        assert found.current.ports == {10351, 10352}  # not yet believed
        with anyio.fail_after(DEADLINE):
            await found.wait_for({10351})  # still so at the next look: believed
        write_in_place(path, full)
        with anyio.fail_after(DEADLINE):
            await found.wait_for({10351, 10352})


async def test_an_unreadable_config_gives_no_ports_and_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"\xff\xfe\x00 not a kubeconfig\n")
    found = Discovery(path, interval_s=TICK)
    async with running(found):
        assert found.current.ports == frozenset()
        assert found.current.problem == "the file is not UTF-8 text"


async def test_discovery_logs_each_change_without_the_files_secrets(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(tilt_config([10351]))
    found = Discovery(path, interval_s=TICK)
    with capture_logs() as logs:
        async with running(found):
            write_in_place(path, tilt_config([10351, 10352]))
            with anyio.fail_after(DEADLINE):
                await found.wait_for({10351, 10352})
    changed = [e for e in logs if e["event"] == "tilt.discovery.changed"]
    assert changed[-1]["added"] == [10352]
    assert changed[-1]["removed"] == []
    assert "REDACTED" not in repr(logs)


# --------------------------------------------------------------------------- registry


def view_with_tiltfile(tiltfile: str) -> dict[str, object]:
    """The recorded first complete view (it has a UISession) with another Tiltfile."""
    view = copy.deepcopy(load_recording("09-tilt-restart").connections[0].complete_view())
    session = view["uiSession"]
    assert isinstance(session, dict)
    session["status"]["tiltfileKey"] = tiltfile
    return view


@asynccontextmanager
async def fake_tilts(*tiltfiles: str) -> AsyncIterator[list[FakeTilt]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(FakeTilt(initial=view_with_tiltfile(tf)))
            for tf in tiltfiles
        ]


def settings_for(tilt: FakeTilt) -> Settings:
    return Settings(
        host="127.0.0.1", token=TokenSource(env_value=tilt.token), log_budget_bytes=BUDGET
    )


def connected(registry: Instances, ports: Iterable[int]) -> bool:
    wanted = set(ports)
    if set(registry.ports) != wanted:
        return False
    for port in wanted:
        instance = registry.get(port)
        if instance is None or instance.store.state.connection.state != "connected":
            return False
    return True


async def test_the_registry_serves_every_listed_tilt_and_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    async with fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile", "/w/a/svc/Tiltfile") as (a, b, c):
        write_in_place(path, tilt_config([a.port, b.port]))
        found = Discovery(path, interval_s=TICK)
        registry = Instances(settings_for(a), linger_s=0)
        async with running(found) as tg:
            await tg.start(registry.run, found)
            await until(registry, lambda: connected(registry, [a.port, b.port]), "two connected")
            assert {c_.tiltfile for c_ in registry.candidates()} == {
                "/w/a/Tiltfile",
                "/w/b/Tiltfile",
            }
            choice = registry.default(["/w/b/src"])
            assert choice.port == b.port
            assert choice.reason == "the Tiltfile folder /w/b contains the workspace /w/b/src"
            assert registry.resolve("a") is registry.get(a.port)
            for port in (a.port, b.port):
                store = registry.get(port).store  # type: ignore[union-attr]
                assert store.logs.budget_bytes == BUDGET // 2

            write_in_place(path, tilt_config([a.port, b.port, c.port]))  # a third Tilt
            await until(registry, lambda: connected(registry, [a.port, b.port, c.port]), "three")
            assert registry.default(["/w/a/svc/x"]).port == c.port  # the deepest folder
            assert registry.default(["/w/a/x"]).port == a.port
            budgets = {registry.get(p).store.logs.budget_bytes for p in registry.ports}  # type: ignore[union-attr]
            assert budgets == {BUDGET // 3}

            write_in_place(path, tilt_config([b.port, c.port]))  # a exited cleanly
            await until(registry, lambda: registry.ports == sorted([b.port, c.port]), "a closed")
            assert registry.get(a.port) is None
            budgets = {registry.get(p).store.logs.budget_bytes for p in registry.ports}  # type: ignore[union-attr]
            assert budgets == {BUDGET // 2}

            path.unlink()
            await until(registry, lambda: registry.ports == [], "all closed")
            assert registry.default(["/w/b"]).reason.startswith("no Tilt is running")


async def test_an_explicit_port_is_served_and_wins_though_the_file_lists_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config"
    async with fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b):
        write_in_place(path, tilt_config([a.port]))
        found = Discovery(path, interval_s=TICK)
        registry = Instances(
            settings_for(a), explicit_port=b.port, explicit_source="TILT_PORT", linger_s=0
        )
        async with running(found) as tg:
            await tg.start(registry.run, found)
            await until(registry, lambda: connected(registry, [a.port, b.port]), "both")
            choice = registry.default(["/w/a"])
            assert choice.port == b.port
            assert choice.reason == f"TILT_PORT {b.port} was given"
            path.unlink()
            await until(registry, lambda: registry.ports == [b.port], "the explicit one stays")


async def test_a_tilt_that_comes_back_within_the_linger_keeps_its_instance(
    tmp_path: Path,
) -> None:
    """``tilt up`` restarted on the same port: same store, history and subscribers."""
    path = tmp_path / "config"
    async with fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b):
        write_in_place(path, tilt_config([a.port, b.port]))
        found = Discovery(path, interval_s=TICK)
        registry = Instances(settings_for(a), linger_s=60)
        async with running(found) as tg:
            await tg.start(registry.run, found)
            await until(registry, lambda: connected(registry, [a.port, b.port]), "both")
            before = registry.get(a.port)
            with anyio.fail_after(DEADLINE):
                write_in_place(path, tilt_config([b.port]))
                await found.wait_for({b.port})
                write_in_place(path, tilt_config([a.port, b.port]))
                await found.wait_for({a.port, b.port})
            assert registry.get(a.port) is before


async def test_the_registry_version_moves_when_instances_come_and_go(tmp_path: Path) -> None:
    path = tmp_path / "config"
    async with fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile") as (a, b):
        write_in_place(path, tilt_config([a.port]))
        found = Discovery(path, interval_s=TICK)
        registry = Instances(settings_for(a), linger_s=0)
        async with running(found) as tg:
            await tg.start(registry.run, found)
            seen = registry.version
            write_in_place(path, tilt_config([a.port, b.port]))
            with anyio.fail_after(DEADLINE):
                while b.port not in registry.ports:
                    seen = await registry.wait_changed(seen)
            assert registry.version >= seen


async def test_more_tilts_than_the_limit_are_listed_but_not_all_watched(tmp_path: Path) -> None:
    path = tmp_path / "config"
    async with fake_tilts("/w/a/Tiltfile", "/w/b/Tiltfile", "/w/c/Tiltfile") as tilts:
        ports = sorted(t.port for t in tilts)
        write_in_place(path, tilt_config(ports))
        found = Discovery(path, interval_s=TICK)
        registry = Instances(settings_for(tilts[0]), linger_s=0, max_watched=2)
        with capture_logs() as logs:
            async with running(found) as tg:
                await tg.start(registry.run, found)
                await until(registry, lambda: connected(registry, ports[:2]), "two of three")
                assert registry.found.ports == set(ports)
        assert any(e["event"] == "tilt.instances.over_limit" for e in logs)


def test_budget_share_splits_evenly_with_a_floor() -> None:
    assert budget_share(32 * 1024 * 1024, 0) == 32 * 1024 * 1024
    assert budget_share(32 * 1024 * 1024, 4) == 8 * 1024 * 1024
    assert budget_share(1024 * 1024, 64) == 64 * 1024
