"""Waiting on resources without polling: conditions evaluated on each store change.

:func:`evaluate` is pure: given a resource now and the baseline taken when the
wait began, it says ``done``, ``failed`` or keep waiting. :func:`wait_for`
re-evaluates only when the store's version moves (``Store.wait_changed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import anyio

from bridge.core.state import State, build_spans
from bridge.errors import ToolError, UnknownResource
from bridge.store import Store
from bridge.tilt.view import Resource

CONDITIONS: Final = ("ready", "up_to_date", "build_finished")
MAX_NAMES: Final = 100
MAX_NAME_CHARS: Final = 253  # a Kubernetes object name, which a Tilt resource name is
QUOTE_CHARS: Final = 100


def quoted(value: str) -> str:
    """``value`` for an error message, at most ~100 characters."""
    return repr(value) if len(value) <= QUOTE_CHARS else repr(value[:QUOTE_CHARS]) + "…"


def checked_names(names: Sequence[str], what: str = "resources") -> list[str]:
    """``names`` with duplicates merged (order kept); too many or too long is an error."""
    unique = list(dict.fromkeys(names))
    if len(unique) > MAX_NAMES:
        raise ToolError(f"at most {MAX_NAMES} {what} at once; got {len(unique)}")
    for name in unique:
        if len(name) > MAX_NAME_CHARS:
            raise ToolError(
                f"no resource name is longer than {MAX_NAME_CHARS} characters; "
                f"got {len(name)}: {quoted(name)}"
            )
    return unique


class NotConnected(ToolError):
    """The wait could not start: the bridge has no live view of Tilt."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a resource looked like when the wait began."""

    last_build_start: str | None
    building: bool

    @classmethod
    def of(cls, res: Resource | None) -> Baseline:
        if res is None:
            return cls(None, False)
        start = res.build_history[0].start_time if res.build_history else None
        return cls(start, res.current_build is not None or res.update_status == "in_progress")


TRIGGER_REASONS: Final = frozenset({"Web Trigger", "CLI Trigger", "HUD Trigger", "Unknown Trigger"})
"""Tilt's ``BuildReason.String()`` for a build a trigger caused: a trigger flag always
wins over any other reason (pkg/model/build_reason.go), so the build's ``init`` log
line reads exactly one of these."""


@dataclass(frozen=True, slots=True)
class TriggeredBuild:
    """Which build a trigger caused, told by what Tilt sends after the POST, never by
    comparing clocks: a build span (``build:N``) the resource did not show when the
    trigger was sent, whose ``buildEvent: init`` line gives a trigger as its reason. A
    build already running then (even one our cache had not seen yet) began for another
    reason (file change, initial build) and is skipped; so are spans of another Tilt
    process (``tiltStartTime`` changed)."""

    known_builds: frozenset[str]
    tilt_start_time: str | None

    @classmethod
    def before(cls, state: State, name: str) -> TriggeredBuild:
        return cls(build_spans(state.resources.get(name)), state.tilt_start_time)

    def find(self, res: Resource, reason_of: Callable[[str], str | None]) -> str | None:
        """The span id of the triggered build, once the stream shows it."""
        spans = [b.span_id for b in reversed(res.build_history)]  # oldest first
        if res.current_build is not None:
            spans.append(res.current_build.span_id)
        for span in spans:
            if span and span not in self.known_builds and reason_of(span) in TRIGGER_REASONS:
                return span
        return None

    def unseen_reason(
        self,
        res: Resource,
        reason_of: Callable[[str], str | None],
        logged: Callable[[str], bool],
    ) -> str | None:
        """A new build that has finished although its ``init`` line never reached us: Tilt
        keeps 2 MB of log and drops the oldest lines, and a build that prints more than
        that between two frames loses its first line (its reason) before it is sent. It
        qualifies only if it is the one new build and Tilt has sent lines of it (so the
        reason was dropped, not still to come); one that shows another reason is not ours."""
        new = [b.span_id for b in res.build_history if b.span_id not in self.known_builds]
        if len(new) == 1 and new[0] and reason_of(new[0]) is None and logged(new[0]):
            return new[0]
        return None  # none, several (which one was ours cannot be told), or still to come

    def evaluate(
        self,
        state: State,
        name: str,
        reason_of: Callable[[str], str | None],
        logged: Callable[[str], bool] | None = None,
    ) -> Outcome | None:
        """``logged(span)``: Tilt has sent lines of that build (without it, a build whose
        reason never arrived is not guessed at)."""
        if state.tilt_start_time != self.tilt_start_time:
            return Outcome(name, False, "Tilt restarted before the triggered build finished")
        res = state.resources.get(name)
        if res is None:
            return Outcome(
                name, False, "the resource no longer exists (removed from the Tiltfile?)"
            )
        if res.disabled:
            return Outcome(name, False, "the resource was disabled before its build finished")
        span = self.find(res, reason_of)
        note = ""
        if span is None:
            if logged is None:
                return None
            span = self.unseen_reason(res, reason_of, logged)
            if span is None or _build_busy(res):
                return None
            note = (
                f" (build {span}: Tilt dropped its first log lines, the reason with them; "
                "no other build began since the trigger)"
            )
        record = next((b for b in res.build_history if b.span_id == span), None)
        if record is None:
            return None  # still running
        if record.error:
            return Outcome(name, False, "build failed: " + record.error + note)
        return Outcome(name, True, "build finished ok" + note)


@dataclass(frozen=True, slots=True)
class Outcome:
    resource: str
    ok: bool
    reason: str


def _build_busy(res: Resource) -> bool:
    return (
        res.current_build is not None
        or res.queued
        or res.update_status in ("pending", "in_progress")
    )


def _cond_true(res: Resource, type_: str) -> bool | None:
    cond = res.condition(type_)
    if cond is None:
        return None
    return cond.status == "True"


def evaluate(res: Resource | None, name: str, condition: str, base: Baseline) -> Outcome | None:
    """``Outcome`` when the wait for ``name`` is over (either way), ``None`` to keep waiting."""
    if res is None:
        return Outcome(name, False, "the resource no longer exists (removed from the Tiltfile?)")
    if res.disabled:
        return Outcome(name, False, "the resource is disabled; call enable first")
    newest = res.build_history[0] if res.build_history else None
    new_build = newest is not None and newest.start_time != base.last_build_start
    last_error = res.build_history[0].error if res.build_history else None
    if condition == "build_finished":
        finished = (new_build or base.building) and not _build_busy(res)
        if not finished:
            return None
        if last_error:
            return Outcome(name, False, "build failed: " + last_error)
        return Outcome(name, True, "build finished ok")
    busy = _build_busy(res)
    if res.update_status == "error" and not busy:
        return Outcome(name, False, "build failed: " + (last_error or "update error"))
    if res.runtime_status == "error" and not busy:
        return Outcome(name, False, "runtime error (the process or pod crashed)")
    if condition == "up_to_date":
        up = _cond_true(res, "UpToDate")
        if up is None:
            up = res.update_status in ("ok", "not_applicable")
        return Outcome(name, True, "up to date") if up and not busy else None
    if condition == "ready":
        ready = _cond_true(res, "Ready")
        if ready is None:
            ready = res.runtime_status in ("ok", "not_applicable") and res.update_status in (
                "ok",
                "not_applicable",
            )
        return Outcome(name, True, "ready") if ready and not busy else None
    raise ToolError(f"condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")


@dataclass(frozen=True, slots=True)
class WaitResult:
    outcomes: tuple[Outcome, ...]
    pending: tuple[str, ...]  # still waiting when the timeout hit
    timed_out: bool
    waited_s: float
    connected: bool = True  # the view of Tilt was live when the wait ended


async def until_connected(store: Store, timeout_s: float) -> None:
    """Return once the bridge has a live, loaded view of Tilt; :class:`NotConnected` if it
    does not within ``timeout_s``."""
    with anyio.move_on_after(timeout_s):
        while not _live(store.state):
            await store.wait_changed(store.version)
        return
    raise NotConnected(not_connected_text(store.state, timeout_s))


def _live(state: State) -> bool:
    return state.connection.connected and state.loaded


def not_connected_text(state: State, waited_s: float) -> str:
    conn = state.connection
    why = f": {conn.last_error}" if conn.last_error else ""
    return (
        f"not connected to Tilt: {conn.state.replace('_', ' ')}{why} (waited {waited_s:g}s for "
        f"{conn.url or 'Tilt'}); is 'tilt up' running? Call get_status for details"
    )


async def wait_for(
    store: Store,
    names: Sequence[str],
    condition: str,
    timeout_s: float,
    *,
    progress: Callable[[int, int, str], Awaitable[None]] | None = None,
    triggered: TriggeredBuild | None = None,
) -> WaitResult:
    """Wait until every resource meets ``condition``, one fails, or the timeout passes.

    Conditions are evaluated only on a live view of Tilt: while the bridge is not
    connected the wait first waits for the connection (within ``timeout_s``), and a
    stale cache never ends it. ``triggered`` (one name, ``build_finished``): wait for
    the build that trigger caused. Progress is reported once at 0, then each time a
    resource is done (MCP progress must increase)."""
    if condition not in CONDITIONS:
        raise ToolError(
            f"condition must be one of {', '.join(CONDITIONS)}; got {quoted(condition)}"
        )
    if not names:
        raise ToolError("name at least one resource to wait for")
    wanted = checked_names(names)
    start = anyio.current_time()
    deadline = start + timeout_s
    await until_connected(store, timeout_s)
    state = store.state
    for name in wanted:
        if name not in state.resources:
            raise UnknownResource("resource", name[:MAX_NAME_CHARS], state.resources.keys())
    base = {n: Baseline.of(state.resources.get(n)) for n in wanted}
    done: dict[str, Outcome] = {}
    reported = -1
    timed_out = True
    with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
        while True:
            version = store.version
            current = store.state
            if _live(current):
                for name in wanted:
                    if name in done:
                        continue
                    if triggered is not None:
                        outcome = triggered.evaluate(
                            current, name, store.build_reason, store.logs.knows_span
                        )
                    else:
                        outcome = evaluate(current.resources.get(name), name, condition, base[name])
                    if outcome is not None:
                        done[name] = outcome
            failed = any(not o.ok for o in done.values())
            if len(done) == len(wanted) or failed:
                timed_out = False
                break
            if progress is not None and len(done) > reported:
                reported = len(done)
                waiting_on = [n for n in wanted if n not in done]
                await progress(reported, len(wanted), "waiting for " + ", ".join(waiting_on))
            await store.wait_changed(version)
    pending = tuple(n for n in wanted if n not in done)
    return WaitResult(
        outcomes=tuple(done[n] for n in wanted if n in done),
        pending=pending if timed_out or any(not o.ok for o in done.values()) else (),
        timed_out=timed_out,
        waited_s=round(anyio.current_time() - start, 3),
        connected=_live(store.state),
    )
