"""Keep the set of running Tilts current by watching ``$TILT_DEV_DIR/config``.

Polling, not a file-change API: the standard library has no inotify/kqueue, and a
watcher package would be a new dependency for one small file. A ``stat`` per second
costs nothing, works on every OS and file system (network homes included), and
survives the file being deleted and re-created, where an inotify watch on the old
inode goes silent. Tilt rewrites the file in place (the inode stays, checked on
v0.37.6), so the signature is ``(inode, size, mtime_ns)``; the content is also
re-read every :data:`REREAD_EVERY` ticks for file systems whose coarse mtime can hide
a same-size rewrite within one tick.

A read that looks cut short (Tilt truncates, then writes) is not published; it is
accepted only if the file is still unchanged at the next look. The file also holds
Tilt's API-server bearer tokens: nothing here logs or returns its text.

    async with anyio.create_task_group() as tg:
        found = Discovery(config_path(env))
        await tg.start(found.run)          # the first read is done when this returns
        async for snapshot in found.updates():
            ...                            # snapshot.ports, snapshot.problem
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
from anyio.abc import TaskStatus

from bridge.core.instances import MAX_CONFIG_BYTES, TiltConfig, parse_config
from bridge.log import get_logger

log = get_logger("bridge.discovery")

POLL_INTERVAL_S: Final = 1.0
"""How often the config file is stat'ed: a ``tilt up`` takes seconds to be ready anyway."""

REREAD_EVERY: Final = 10
"""Ticks between unconditional re-reads (coarse-mtime file systems)."""


def config_path(env: Mapping[str, str]) -> Path:
    """``$TILT_DEV_DIR/config``, else ``~/.tilt-dev/config`` (as Tilt's ``dirs`` package)."""
    dev_dir = env.get("TILT_DEV_DIR")
    if dev_dir:
        return Path(dev_dir).expanduser() / "config"
    return Path(env.get("HOME", "~")).expanduser() / ".tilt-dev" / "config"


@dataclass(frozen=True, slots=True)
class Found:
    """One published state of discovery: the running Tilts' web ports, and why the set
    is empty or partial (``None``: the file read fine). ``version`` counts changes."""

    ports: frozenset[int] = frozenset()
    problem: str | None = None
    version: int = 0


_Signature = tuple[int, int, int] | None  # (inode, size, mtime_ns); None: no file


class Discovery:
    """Polls the config file and publishes :class:`Found` whenever the ports change.

    Readers call :attr:`current` (never blocks) or iterate :meth:`updates`; several
    readers may wait at once. Only :meth:`run` writes."""

    def __init__(self, path: Path, *, interval_s: float = POLL_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self._current = Found(problem="not read yet")
        self._event = anyio.Event()
        self._signature: _Signature = None
        self._pending: _Signature | object = _NOTHING  # a cut-short read's signature
        self.looks = 0  # completed looks at the file
        self._looked = anyio.Event()

    @property
    def current(self) -> Found:
        return self._current

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll forever. ``task_status.started()`` fires after the first read."""
        await self._look(force=True)
        task_status.started()
        tick = 0
        while True:
            await anyio.sleep(self.interval_s)
            tick += 1
            await self._look(force=tick % REREAD_EVERY == 0)

    async def updates(self) -> AsyncIterator[Found]:
        """The current state now, then each change (a slow reader skips to the newest)."""
        seen = -1
        while True:
            found = self._current
            if found.version != seen:
                seen = found.version
                yield found
                continue
            await self._event.wait()

    async def wait_for(self, ports: frozenset[int] | set[int]) -> Found:
        """Wait until exactly ``ports`` are published (callers bound this with a deadline)."""
        while self._current.ports != ports:
            await self._event.wait()
        return self._current

    async def wait_looks(self, count: int) -> None:
        """Wait until ``count`` looks at the file have completed (tests: "not yet")."""
        while self.looks < count:
            await self._looked.wait()

    # ------------------------------------------------------------------ internals

    async def _look(self, *, force: bool) -> None:
        try:
            await self._look_once(force=force)
        finally:
            self.looks += 1
            self._looked.set()
            self._looked = anyio.Event()

    async def _look_once(self, *, force: bool) -> None:
        signature = await _stat(self.path)
        if signature == self._signature and not force and self._pending is _NOTHING:
            return
        if signature is None:
            self._signature = None
            self._pending = _NOTHING
            self._publish(TiltConfig(problem=f"{self.path} does not exist (no Tilt has run here)"))
            return
        config = await self._read()
        after = await _stat(self.path)
        if config.truncated or after != signature:
            if self._pending == after:  # unchanged since the last look: believe it
                self._pending = _NOTHING
            else:
                self._pending = after
                log.debug("tilt.discovery.unsettled", path=str(self.path))
                return
        self._signature = after
        self._publish(config)

    async def _read(self) -> TiltConfig:
        try:
            async with await anyio.open_file(self.path, "rb") as f:
                data = await f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            return TiltConfig(problem=f"cannot read {self.path}: {exc.strerror or exc}")
        return parse_config(data)

    def _publish(self, config: TiltConfig) -> None:
        old = self._current
        if config.ports == old.ports and config.problem == old.problem and old.version:
            return
        self._current = Found(config.ports, config.problem, old.version + 1)
        added, removed = sorted(config.ports - old.ports), sorted(old.ports - config.ports)
        log.info(
            "tilt.discovery.changed",
            ports=sorted(config.ports),
            added=added,
            removed=removed,
            problem=config.problem,
        )
        self._event.set()
        self._event = anyio.Event()


_NOTHING: Final = object()


async def _stat(path: Path) -> _Signature:
    try:
        st = await anyio.Path(path).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
