"""The state snapshot and the pure reducer that applies one decoded frame to it.

``apply_view(state, view) -> (state, change)`` has no I/O and no clock (the
caller passes ``now``). Rules (tilt-protocol.md §3):

* a complete view replaces resources, buttons and session (a missing array
  means empty);
* a delta replaces the objects it names, whole; a missing array means no change;
* a tombstone (``metadata.deletionTimestamp``) deletes;
* a changed ``tiltStartTime`` means Tilt restarted: everything is reset.

Builds are identified by what Tilt sends: the span id (``build:N``, numbered per Tilt
process) of ``currentBuild`` and ``buildHistory``. A span the previous snapshot did not
hold is a build that started; one newly in ``buildHistory`` is a build that finished,
whatever ``updateStatus`` did (a rebuild coalesced into one ``ok`` → ``ok`` frame is
still two entries in the change feed).

A trigger Tilt accepted (``POST /api/trigger`` answered 200) is shown at once: the
resource reads ``triggered`` (``queued``, ``pending``) until a frame shows the new build
(a span not held when the trigger was sent, ``queued`` or a build status) or its
deadline passes (:func:`expire_triggers`). Deadlines are on the bridge's clock only.

Logs live in :mod:`bridge.core.logbuffer` and are applied by :mod:`bridge.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Final

from bridge.tilt.view import Button, Resource, Session, View

TILTFILE: Final = "(Tiltfile)"


def _empty_resources() -> Mapping[str, Resource]:
    return MappingProxyType({})


def _empty_buttons() -> Mapping[str, Button]:
    return MappingProxyType({})


def _empty_triggers() -> Mapping[str, PendingTrigger]:
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
    # Tilt's clock minus ours, measured at connect from the HTTP Date header (1 s
    # resolution). `since=5m` counts back from Tilt's now, not ours: the two may differ.
    tilt_clock_offset_s: float = 0.0

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change of one resource, for ``get_changes`` and ``wait_for``."""

    version: int
    time: float
    resource: str
    kind: str  # update | runtime | disable | added | removed | build_started | build_finished
    old: str
    new: str  # for build_finished: ok | error
    error: str | None = None
    build: str | None = None  # Tilt's span id of the build (build_* kinds)
    tilt_time: str | None = None  # Tilt's own start/finish time of that build
    duration_s: float | None = None  # finishTime - startTime, both Tilt's clock


@dataclass(frozen=True, slots=True)
class PendingTrigger:
    """A trigger Tilt accepted whose build the stream does not show yet."""

    resource: Resource  # Tilt's latest copy (shown with ``triggered`` on top)
    known_builds: frozenset[str]  # build span ids held when the trigger was sent
    until: float  # the bridge's clock: stop showing it after this


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
    triggers: Mapping[str, PendingTrigger] = field(default_factory=_empty_triggers)

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


def build_spans(res: Resource | None) -> frozenset[str]:
    """The build span ids a resource shows (running and finished)."""
    if res is None:
        return frozenset()
    spans = {b.span_id for b in res.build_history if b.span_id}
    if res.current_build is not None and res.current_build.span_id:
        spans.add(res.current_build.span_id)
    return frozenset(spans)


def _duration_s(start: str | None, finish: str | None) -> float | None:
    if not start or not finish:
        return None
    try:
        delta = datetime.fromisoformat(finish) - datetime.fromisoformat(start)
    except ValueError:
        return None
    return round(delta.total_seconds(), 3)


def _build_transitions(
    version: int, now: float, old: Resource | None, new: Resource
) -> list[Transition]:
    """Builds started and finished between ``old`` and ``new``, oldest first, by span id."""
    old_finished = {b.span_id for b in old.build_history} if old is not None else set()
    old_all = build_spans(old)
    out: list[Transition] = []

    def started(span_id: str, tilt_time: str | None) -> Transition:
        return Transition(
            version,
            now,
            new.name,
            "build_started",
            "",
            "started",
            build=span_id,
            tilt_time=tilt_time,
        )

    for rec in reversed(new.build_history):  # Tilt lists newest first
        if not rec.span_id or rec.span_id in old_finished:
            continue
        if rec.span_id not in old_all:
            out.append(started(rec.span_id, rec.start_time))
        out.append(
            Transition(
                version,
                now,
                new.name,
                "build_finished",
                "started",
                "error" if rec.error else "ok",
                error=rec.error,
                build=rec.span_id,
                tilt_time=rec.finish_time,
                duration_s=_duration_s(rec.start_time, rec.finish_time),
            )
        )
    cur = new.current_build
    if cur is not None and cur.span_id and cur.span_id not in old_all:
        out.append(started(cur.span_id, cur.start_time))
    return out


def _transitions(
    version: int,
    now: float,
    old: Resource | None,
    new: Resource | None,
    *,
    first: bool,
    restarted: bool,
) -> list[Transition]:
    """Status changes and builds. ``first``: the first view the bridge ever got (the builds
    so far are history, not news). ``restarted``: a new Tilt process, whose span ids
    start again at ``build:1``, so the old snapshot's spans say nothing about it."""
    if new is not None and not first:
        builds = _build_transitions(version, now, None if restarted else old, new)
    else:
        builds = []
    if old is None and new is not None:
        return [Transition(version, now, new.name, "added", "", new.update_status), *builds]
    if new is None and old is not None:
        return [Transition(version, now, old.name, "removed", old.update_status, "")]
    if old is None or new is None:
        return []
    out = builds
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

    triggers = _settle_triggers(state, base_resources, now, drop_all=restarted)
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
        transitions.extend(
            _transitions(
                version,
                now,
                old_res.get(name),
                base_resources.get(name),
                first=state.tilt_start_time is None and not state.loaded,
                restarted=restarted,
            )
        )
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
        triggers=MappingProxyType(triggers),
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


def _shows_new_build(res: Resource, known: frozenset[str]) -> bool:
    """Tilt's copy of a triggered resource shows the trigger's effect: the resource is in
    Tilt's trigger queue, a build is pending or running, or a build we did not hold."""
    return (
        res.queued
        or res.update_status in ("pending", "in_progress")
        or not build_spans(res) <= known
    )


def _overlay(res: Resource) -> Resource:
    """How a triggered resource reads until Tilt shows the build (what Tilt itself shows
    once it publishes its trigger queue: ``queued``, ``pending``)."""
    return replace(res, triggered=True, queued=True, update_status="pending")


def _settle_triggers(
    state: State, resources: dict[str, Resource], now: float, *, drop_all: bool
) -> dict[str, PendingTrigger]:
    """Keep (and re-apply to ``resources``) the pending triggers Tilt has not answered yet.
    Mutates ``resources``; returns the triggers still pending."""
    out: dict[str, PendingTrigger] = {}
    if drop_all:
        return out
    for name, pending in state.triggers.items():
        res = resources.get(name)
        if res is None or res.disabled or now >= pending.until:
            continue
        if _shows_new_build(res, pending.known_builds):
            continue
        out[name] = replace(pending, resource=res)
        resources[name] = _overlay(res)
    return out


def _with_resources(
    state: State,
    resources: dict[str, Resource],
    triggers: dict[str, PendingTrigger],
    now: float,
) -> tuple[State, Change]:
    version = state.version + 1
    changed = frozenset(
        n
        for n in resources.keys() | state.resources.keys()
        if resources.get(n) != state.resources.get(n)
    )
    transitions: list[Transition] = []
    for name in sorted(changed):
        transitions.extend(
            _transitions(
                version,
                now,
                state.resources.get(name),
                resources.get(name),
                first=False,
                restarted=False,
            )
        )
    new_state = replace(
        state,
        version=version,
        resources=MappingProxyType(resources),
        triggers=MappingProxyType(triggers),
    )
    return new_state, Change(version, resources=changed, transitions=tuple(transitions))


def mark_triggered(state: State, name: str, *, now: float, until: float) -> tuple[State, Change]:
    """Tilt accepted a trigger of ``name``: show it as triggered until the stream shows the
    build or ``until`` (the bridge's clock) passes."""
    res = state.resources.get(name)
    if res is None:
        return state, Change(state.version)
    current = state.triggers.get(name)
    tilt_copy = current.resource if current is not None else res
    pending = PendingTrigger(tilt_copy, build_spans(tilt_copy), until)
    resources = dict(state.resources)
    resources[name] = _overlay(tilt_copy)
    triggers = dict(state.triggers)
    triggers[name] = pending
    return _with_resources(state, resources, triggers, now)


def expire_triggers(state: State, now: float) -> tuple[State, Change] | None:
    """Drop triggers whose deadline passed (the bridge's clock); ``None`` if none did."""
    expired = [n for n, p in state.triggers.items() if now >= p.until]
    if not expired:
        return None
    resources = dict(state.resources)
    triggers = dict(state.triggers)
    for name in expired:
        resources[name] = triggers.pop(name).resource
    return _with_resources(state, resources, triggers, now)


def next_trigger_deadline(state: State) -> float | None:
    return min((p.until for p in state.triggers.values()), default=None)


def set_connection(state: State, info: ConnectionInfo) -> tuple[State, Change]:
    version = state.version + 1
    return replace(state, version=version, connection=info), Change(version, connection=True)
