"""The state snapshot and the pure reducer that applies one decoded frame to it.

``apply_view(state, view) -> (state, change)`` has no I/O and no clock (the
caller passes ``now``). Rules (tilt-protocol.md §3):

* a complete view replaces resources, buttons and session (a missing array
  means empty);
* a delta replaces the objects it names, whole; a missing array means no change;
* a tombstone (``metadata.deletionTimestamp``) deletes;
* a changed ``tiltStartTime`` means Tilt restarted: everything is reset.

Logs live in :mod:`bridge.core.logbuffer` and are applied by :mod:`bridge.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from bridge.tilt.view import Button, Resource, Session, View

TILTFILE: Final = "(Tiltfile)"


def _empty_resources() -> Mapping[str, Resource]:
    return MappingProxyType({})


def _empty_buttons() -> Mapping[str, Button]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Where the watcher stands with Tilt."""

    state: str = "starting"  # starting | connecting | connected | disconnected | auth_failed
    since: float = 0.0  # unix time of the last state change
    url: str = ""
    last_error: str | None = None
    attempts: int = 0  # failed attempts since the last good connection
    connections: int = 0  # successful connections so far
    frames: int = 0  # frames applied on this connection
    bad_frames: int = 0  # frames skipped because they could not be decoded

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change of one resource, for ``get_changes`` and ``wait_for``."""

    version: int
    time: float
    resource: str
    kind: str  # update | runtime | disable | added | removed
    old: str
    new: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class State:
    """An immutable snapshot. Readers never lock and never see half an update."""

    version: int = 0
    tilt_start_time: str | None = None
    loaded: bool = False  # a complete view has been applied
    resources: Mapping[str, Resource] = field(default_factory=_empty_resources)
    buttons: Mapping[str, Button] = field(default_factory=_empty_buttons)
    session: Session | None = None
    connection: ConnectionInfo = field(default_factory=ConnectionInfo)

    def ordered(self) -> list[Resource]:
        """Resources in Tilt's own order (the ``(Tiltfile)`` first)."""
        return sorted(self.resources.values(), key=lambda r: (r.name != TILTFILE, r.order, r.name))

    def buttons_for(self, resource: str) -> list[Button]:
        return sorted(
            (
                b
                for b in self.buttons.values()
                if b.component_type == "Resource" and b.component_id == resource
            ),
            key=lambda b: b.name,
        )

    @property
    def tiltfile(self) -> Resource | None:
        return self.resources.get(TILTFILE)


@dataclass(frozen=True, slots=True)
class Change:
    """What one step changed. Merged with :meth:`merge` when a reader fell behind."""

    version: int
    resources: frozenset[str] = frozenset()  # added, updated or removed
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    buttons: frozenset[str] = frozenset()
    logs: frozenset[str] = frozenset()  # resources with new or changed log lines
    session: bool = False
    connection: bool = False
    reset: bool = False  # complete view or restart: assume everything changed
    transitions: tuple[Transition, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.resources
            or self.buttons
            or self.logs
            or self.session
            or self.connection
            or self.reset
        )

    def merge(self, later: Change) -> Change:
        return Change(
            version=max(self.version, later.version),
            resources=self.resources | later.resources,
            added=(self.added - later.removed) | later.added,
            removed=(self.removed - later.added) | later.removed,
            buttons=self.buttons | later.buttons,
            logs=self.logs | later.logs,
            session=self.session or later.session,
            connection=self.connection or later.connection,
            reset=self.reset or later.reset,
            transitions=self.transitions + later.transitions,
        )


def _transitions(
    version: int, now: float, old: Resource | None, new: Resource | None
) -> list[Transition]:
    if old is None and new is not None:
        return [Transition(version, now, new.name, "added", "", new.update_status)]
    if new is None and old is not None:
        return [Transition(version, now, old.name, "removed", old.update_status, "")]
    if old is None or new is None:
        return []
    out: list[Transition] = []
    if old.update_status != new.update_status:
        error = new.build_history[0].error if new.build_history else None
        out.append(
            Transition(
                version,
                now,
                new.name,
                "update",
                old.update_status,
                new.update_status,
                error if new.update_status == "error" else None,
            )
        )
    if old.runtime_status != new.runtime_status:
        out.append(
            Transition(version, now, new.name, "runtime", old.runtime_status, new.runtime_status)
        )
    if old.disable_state != new.disable_state:
        out.append(
            Transition(version, now, new.name, "disable", old.disable_state, new.disable_state)
        )
    return out


def apply_view(state: State, view: View, *, now: float = 0.0) -> tuple[State, Change]:
    """Apply one decoded frame. Pure: returns the new snapshot and what changed."""
    version = state.version + 1
    restarted = (
        state.tilt_start_time is not None
        and view.tilt_start_time is not None
        and view.tilt_start_time != state.tilt_start_time
    )
    replace_all = view.is_complete or restarted

    if replace_all:
        base_resources: dict[str, Resource] = {}
        base_buttons: dict[str, Button] = {}
    else:
        base_resources = dict(state.resources)
        base_buttons = dict(state.buttons)

    for res in view.resources or ():
        if res.deleted:
            base_resources.pop(res.name, None)
        else:
            base_resources[res.name] = res
    for btn in view.buttons or ():
        if btn.deleted:
            base_buttons.pop(btn.name, None)
        else:
            base_buttons[btn.name] = btn

    old_res = state.resources
    changed = {
        name
        for name in base_resources.keys() | old_res.keys()
        if base_resources.get(name) != old_res.get(name)
    }
    added = frozenset(n for n in changed if n not in old_res)
    removed = frozenset(n for n in changed if n not in base_resources)
    transitions: list[Transition] = []
    for name in sorted(changed):
        transitions.extend(_transitions(version, now, old_res.get(name), base_resources.get(name)))
    changed_buttons = frozenset(
        name
        for name in base_buttons.keys() | state.buttons.keys()
        if base_buttons.get(name) != state.buttons.get(name)
    )
    session = view.session if view.session is not None else (None if restarted else state.session)
    new_state = replace(
        state,
        version=version,
        tilt_start_time=view.tilt_start_time or state.tilt_start_time,
        loaded=state.loaded or view.is_complete,
        resources=MappingProxyType(base_resources),
        buttons=MappingProxyType(base_buttons),
        session=session,
    )
    change = Change(
        version=version,
        resources=frozenset(changed),
        added=added,
        removed=removed,
        buttons=changed_buttons,
        session=session != state.session,
        reset=restarted,
        transitions=tuple(transitions),
    )
    return new_state, change


def set_connection(state: State, info: ConnectionInfo) -> tuple[State, Change]:
    version = state.version + 1
    return replace(state, version=version, connection=info), Change(version, connection=True)
