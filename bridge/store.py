"""The state cache: the current snapshot, the log buffer and the change feed.

The watcher is the only writer (:meth:`Store.apply_frame`,
:meth:`Store.set_connection`); MCP tools, resources and prompts read
:attr:`Store.state` and :attr:`Store.logs`. Writes are synchronous, so a reader
on the event loop always sees one whole snapshot.

The change feed is a version number plus a bounded ring of :class:`Change`
records. A consumer remembers the last version it handled and asks for
:meth:`changes_since`; a consumer that fell further behind than the ring gets a
single ``reset`` change (coalescing, never unbounded). :meth:`wait_changed`
blocks without polling until the version moves.

The store also remembers, per build span of the current Tilt process, the reason Tilt
logged when the build began (the ``fields.buildEvent: "init"`` segment, e.g.
``Web Trigger``): that is how a triggered build is told apart from one that was already
running, with no clock involved.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Final

import anyio

from bridge.core.logbuffer import DEFAULT_BUDGET, LogBuffer
from bridge.core.state import (
    Change,
    ConnectionInfo,
    State,
    Transition,
    apply_view,
    expire_triggers,
    mark_triggered,
    next_trigger_deadline,
    set_connection,
)
from bridge.tilt.view import View

CHANGE_RING = 2048
TRANSITION_RING = 1000
BUILD_REASONS: Final = 4096  # init reasons kept (one per build span)
TRIGGER_SHOWN_S: Final = 5.0
"""How long a trigger Tilt accepted reads as ``triggered`` if the stream shows nothing."""


class Store:
    def __init__(
        self, *, log_budget_bytes: int = DEFAULT_BUDGET, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = State()
        self.logs = LogBuffer(log_budget_bytes)
        self._clock = clock
        self._changes: deque[Change] = deque(maxlen=CHANGE_RING)
        self.transitions: deque[Transition] = deque(maxlen=TRANSITION_RING)
        self.dropped_transitions_upto = 0  # newest version whose transitions left the ring
        self._event: anyio.Event | None = None
        self._new_connection = True
        self._build_reasons: OrderedDict[str, str] = OrderedDict()

    @property
    def state(self) -> State:
        return self._state

    @property
    def version(self) -> int:
        return self._state.version

    # ------------------------------------------------------------------ writes

    def new_connection(self) -> None:
        """The next frame is the first (complete) view of a new websocket connection."""
        self._new_connection = True
        self.logs.new_connection()

    def apply_frame(self, view: View) -> Change:
        old_start = self._state.tilt_start_time
        state, change = apply_view(self._state, view, now=self._clock())
        if view.tilt_start_time and old_start and view.tilt_start_time != old_start:
            self.logs.new_process()
            self._build_reasons.clear()  # span ids start again at build:1
        first = self._new_connection
        self._new_connection = False
        logs: frozenset[str] = frozenset()
        if view.log_list is not None:
            self._note_build_reasons(view)
            delta = self.logs.apply(view.log_list)
            logs = delta.resources
        conn = state.connection
        state = _with_frames(state, conn.frames + 1)
        change = Change(
            version=change.version,
            resources=change.resources,
            added=change.added,
            removed=change.removed,
            buttons=change.buttons,
            logs=logs,
            session=change.session,
            reset=change.reset or (first and view.is_complete),
            transitions=change.transitions,
        )
        self._publish(state, change)
        return change

    def _note_build_reasons(self, view: View) -> None:
        assert view.log_list is not None
        for seg in view.log_list.segments:
            if seg.build_event == "init" and seg.span_id and seg.span_id not in self._build_reasons:
                self._build_reasons[seg.span_id] = seg.text.strip()
                if len(self._build_reasons) > BUILD_REASONS:
                    self._build_reasons.popitem(last=False)

    def build_reason(self, span_id: str) -> str | None:
        """What Tilt logged as the reason of build ``span_id`` (``Web Trigger``, ``Initial
        Build``, …) in the current Tilt process; ``None`` if not seen yet."""
        return self._build_reasons.get(span_id)

    def mark_triggered(self, name: str, *, shown_s: float = TRIGGER_SHOWN_S) -> None:
        """Tilt accepted a trigger of ``name``: it reads as triggered until the stream shows
        the build, or for ``shown_s`` on the bridge's clock."""
        now = self._clock()
        state, change = mark_triggered(self._state, name, now=now, until=now + shown_s)
        if state is not self._state:
            self._publish(state, change)

    def expire_triggers(self) -> None:
        expired = expire_triggers(self._state, self._clock())
        if expired is not None:
            self._publish(*expired)

    def trigger_deadline_in(self) -> float | None:
        """Seconds until the next pending trigger expires (``None``: none pending)."""
        deadline = next_trigger_deadline(self._state)
        return None if deadline is None else max(0.0, deadline - self._clock())

    def set_connection(self, info: ConnectionInfo) -> Change:
        state, change = set_connection(self._state, info)
        self._publish(state, change)
        return change

    def note_bad_frame(self) -> None:
        info = self._state.connection
        self.set_connection(replace(info, bad_frames=info.bad_frames + 1))

    def _publish(self, state: State, change: Change) -> None:
        self._state = state
        self._changes.append(change)
        for transition in change.transitions:
            if len(self.transitions) == TRANSITION_RING:
                self.dropped_transitions_upto = self.transitions[0].version
            self.transitions.append(transition)
        event, self._event = self._event, None
        if event is not None:
            event.set()

    # ------------------------------------------------------------------ reads

    def changes_since(self, version: int) -> Change:
        """Everything that changed after ``version``, merged into one :class:`Change`."""
        current = self._state.version
        if version >= current:
            return Change(current)
        if not self._changes or self._changes[0].version > version + 1:
            return Change(current, reset=True, connection=True, session=True)
        merged = Change(version)
        for change in self._changes:
            if change.version > version:
                merged = merged.merge(change)
        return merged

    async def wait_changed(self, after: int) -> int:
        """Wait until the version is above ``after``; return the new version."""
        while self._state.version <= after:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        return self._state.version


def _with_frames(state: State, frames: int) -> State:
    return replace(state, connection=replace(state.connection, frames=frames))
