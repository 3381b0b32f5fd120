"""Every Tilt the bridge serves: one :class:`bridge.instance.Instance` per web port.

The registry follows :class:`bridge.discovery.Discovery` and connects **eagerly** to
every listed Tilt (up to :data:`MAX_WATCHED`), because:

* choosing the default needs each Tilt's Tiltfile path, which only its stream (its
  ``UISession``) tells, and ``list_instances`` shows every Tilt's counts by state;
* push works per instance, and the first call on another instance answers at once,
  from a warm cache, instead of waiting for a connection and a multi-MB first view;
* an idle websocket costs nothing; what costs is log memory, and that is shared (below).

A Tilt killed with ``kill -9`` leaves its context behind: its watcher keeps retrying
with backoff and the instance reports ``connecting``/``disconnected``. A context that
disappears (a clean exit) closes its instance after :data:`LINGER_S`, so a
``tilt up`` restarted on the same port keeps its history and its subscribers.

**Log memory**: the bridge's one ``--log-budget-mb`` is split evenly, each instance
holding ``total // n`` (at least 64 KiB), re-split whenever ``n`` changes. A new
instance starts with its share; existing ones get the smaller share through
``LogBuffer.set_budget``, which evicts at once.

With no explicit port and nothing listed, the registry watches Tilt's default port
10350 (``fallback_port``): a bridge started before its Tilt behaves as it always did
(``connecting``, then the live view), and the fallback closes like any unlisted
instance once the config lists other Tilts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from bridge.core.instances import Candidate, Choice, match_instance, select
from bridge.discovery import Discovery, Found
from bridge.instance import Instance, open_instance
from bridge.log import get_logger
from bridge.settings import Settings

log = get_logger("bridge.instances")

MAX_WATCHED: Final = 16
"""Tilts connected at once; with the default 32 MiB each still holds 2 MiB of logs,
Tilt's own log store size."""

LINGER_S: Final = 10.0
"""How long an instance outlives its context (a Tilt restarting on the same port)."""

MIN_SHARE: Final = 64 * 1024

Opener = Callable[[Settings], AbstractAsyncContextManager[Instance]]


def budget_share(total_bytes: int, count: int) -> int:
    """Each instance's log budget when ``count`` instances share ``total_bytes``."""
    return max(MIN_SHARE, total_bytes // max(1, count))


@dataclass(eq=False)
class _Entry:
    port: int
    wanted: bool = True
    changed: anyio.Event = field(default_factory=anyio.Event)
    instance: Instance | None = None

    def want(self, wanted: bool) -> None:
        if wanted != self.wanted:
            self.wanted = wanted
            self.changed.set()
            self.changed = anyio.Event()


class Instances:
    """The registry. ``pinned`` ports (an explicit ``--port``, the demo's fakes) are
    served whether or not the config lists them; ``explicit_port`` also wins the
    default (``explicit_source`` names where it came from: ``--port``/``TILT_PORT``).

    Readers (the MCP layer) call :meth:`get`, :meth:`default`, :meth:`resolve`,
    :meth:`candidates`; :attr:`version` and :meth:`wait_changed` tell them when the set
    of instances or a Tiltfile path changed (``list_changed``, a new default)."""

    def __init__(
        self,
        settings: Settings,
        *,
        pinned: Collection[int] = (),
        explicit_port: int | None = None,
        explicit_source: str = "--port",
        opener: Opener | None = None,
        linger_s: float = LINGER_S,
        max_watched: int = MAX_WATCHED,
        fallback_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.total_budget_bytes = settings.log_budget_bytes
        self.explicit_port = explicit_port
        self.explicit_source = explicit_source
        self.pinned = frozenset(pinned) | ({explicit_port} if explicit_port is not None else set())
        self._opener: Opener = opener or open_instance
        self.linger_s = linger_s
        self.max_watched = max_watched
        self.fallback_port = fallback_port
        self._entries: dict[int, _Entry] = {}
        self._found = Found()
        self.version = 0
        self._event = anyio.Event()

    # ------------------------------------------------------------------ reads

    def get(self, port: int) -> Instance | None:
        entry = self._entries.get(port)
        return entry.instance if entry else None

    @property
    def ports(self) -> list[int]:
        """The ports with an open instance, ascending."""
        return sorted(p for p, e in self._entries.items() if e.instance is not None)

    @property
    def found(self) -> Found:
        """What discovery last published (its ``problem`` explains an empty set)."""
        return self._found

    def candidates(self) -> list[Candidate]:
        out = []
        for port in self.ports:
            instance = self._entries[port].instance
            assert instance is not None
            session = instance.store.state.session
            out.append(Candidate(port, session.tiltfile_key if session else None))
        return out

    def default(
        self, workspaces: Sequence[str] = (), workspace_source: str = "the working directory"
    ) -> Choice:
        """The default instance for a client whose workspace is ``workspaces`` (absolute,
        symlink-resolved: the MCP roots, else the working directory)."""
        fallback = self.fallback_port
        if (
            self.explicit_port is None
            and fallback is not None
            and not self._found.ports
            and self.ports == [fallback]
        ):
            where = self.settings.tilt_config or "Tilt's config file"
            return Choice(
                fallback,
                f"no Tilt is listed in {where}; watching Tilt's default port {fallback}",
            )
        return select(
            self.candidates(),
            explicit_port=self.explicit_port,
            explicit_source=self.explicit_source,
            workspaces=workspaces,
            workspace_source=workspace_source,
        )

    def resolve(self, value: str) -> Instance:
        """The instance an ``instance`` argument names (raises ``UnknownInstance`` /
        ``AmbiguousInstance``, written for the model)."""
        port = match_instance(value, self.candidates())
        instance = self.get(port)
        assert instance is not None  # candidates() lists open instances only
        return instance

    async def wait_changed(self, after: int) -> int:
        while self.version <= after:
            await self._event.wait()
        return self.version

    async def changes(self) -> AsyncIterator[int]:
        """The version now, then each new version (a slow reader skips ahead)."""
        seen = -1
        while True:
            if self.version != seen:
                seen = self.version
                yield seen
                continue
            await self._event.wait()

    # ------------------------------------------------------------------ run

    async def run(
        self,
        discovery: Discovery | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Follow ``discovery`` (``None``: serve the pinned ports only) forever.
        ``task_status.started()`` fires once the instances known at start are open and
        their watchers started (not necessarily connected)."""
        async with anyio.create_task_group() as tg:
            if discovery is None:
                await self._sync(tg, Found())
                task_status.started()
                return  # the task group keeps the pinned instances running
            started = False
            async for found in discovery.updates():
                if found.version == 0:
                    continue  # not read yet
                await self._sync(tg, found)
                if not started:
                    started = True
                    task_status.started()

    async def _sync(self, tg: TaskGroup, found: Found) -> None:
        self._found = found
        wanted = sorted(found.ports - self.pinned)[: max(0, self.max_watched - len(self.pinned))]
        targets = self.pinned | set(wanted)
        if not targets and self.fallback_port is not None:
            targets = frozenset({self.fallback_port})
        if len(found.ports | self.pinned) > len(targets):
            log.warning(
                "tilt.instances.over_limit",
                listed=len(found.ports | self.pinned),
                watched=len(targets),
                limit=self.max_watched,
            )
        for port, entry in self._entries.items():
            entry.want(port in targets)
        share = budget_share(self.total_budget_bytes, len(targets))
        self._rebudget(share)
        for port in sorted(targets - self._entries.keys()):
            entry = _Entry(port)
            self._entries[port] = entry
            await tg.start(self._serve, entry, share)
        self._bump()

    def _rebudget(self, share: int) -> None:
        for entry in self._entries.values():
            if entry.instance is not None and entry.wanted:
                entry.instance.store.logs.set_budget(share)

    async def _serve(self, entry: _Entry, share: int, *, task_status: TaskStatus[None]) -> None:
        """One instance's life: open, watch, follow its Tiltfile path, close when its
        context has been gone for ``linger_s``."""
        settings = dataclasses.replace(self.settings, port=entry.port, log_budget_bytes=share)
        try:
            async with self._opener(settings) as instance, anyio.create_task_group() as tg:
                await tg.start(instance.watcher.run)
                entry.instance = instance
                log.info("tilt.instances.opened", port=entry.port, budget_bytes=share)
                task_status.started()
                tg.start_soon(self._follow_tiltfile, instance)
                await self._until_unwanted(entry)
                # Closing: out of the table now, so a Tilt listed again while this one
                # shuts down (up to a few seconds, shielded) gets a fresh entry.
                if self._entries.get(entry.port) is entry:
                    del self._entries[entry.port]
                tg.cancel_scope.cancel()
        finally:
            if self._entries.get(entry.port) is entry:
                del self._entries[entry.port]
            if entry.instance is not None:
                log.info("tilt.instances.closed", port=entry.port)
                left = sum(e.wanted for e in self._entries.values())
                self._rebudget(budget_share(self.total_budget_bytes, left))
                self._bump()

    async def _until_unwanted(self, entry: _Entry) -> None:
        while True:
            while entry.wanted:
                await entry.changed.wait()
            with anyio.move_on_after(self.linger_s):
                while not entry.wanted:
                    await entry.changed.wait()
            if not entry.wanted:
                return

    async def _follow_tiltfile(self, instance: Instance) -> None:
        """Bump the registry when this Tilt's Tiltfile path changes: the default may."""
        store = instance.store
        key = _tiltfile_key(instance)
        version = store.version
        while True:
            version = await store.wait_changed(version)
            new = _tiltfile_key(instance)
            if new != key:
                key = new
                self._bump()

    def _bump(self) -> None:
        self.version += 1
        self._event.set()
        self._event = anyio.Event()


def _tiltfile_key(instance: Instance) -> str | None:
    session = instance.store.state.session
    return session.tiltfile_key if session else None
