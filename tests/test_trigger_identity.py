"""Which build a trigger caused, told by what Tilt sends (span ids, the build's init
reason), never by clocks; and a trigger reads as triggered from the POST's acceptance.

Recordings of a real Tilt (10-rebuild-coalesced, 11-trigger-queued) replayed into the
store; Tilt's clock is moved ten minutes either way to show no clock is compared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
import pytest
from fastmcp import Client

from bridge.control import Controller
from bridge.core.conditions import problem_text, summary_state
from bridge.core.state import ConnectionInfo
from bridge.store import Store
from bridge.testing import FakeTilt, Frame, Marker
from bridge.tilt.view import decode_view

from .mcpkit import DEADLINE_S, Inbox, subscribe
from .replay import events, replay, shifted, trigger_of
from .test_push import MANUAL, live

pytestmark = pytest.mark.anyio

LIVE = ConnectionInfo(state="connected", url="ws://tilt/ws/view")


class ReplayedTilt:
    """Tilt's write API for the controller: each POST /api/trigger releases the recorded
    frames that followed it, one at a time, each after every task has reacted."""

    def __init__(self, store: Store, items: Sequence[Frame | Marker], shift_s: float) -> None:
        self.store = store
        self.items = list(items)
        self.shift_s = shift_s
        self.posted = anyio.Event()
        self.finished = False

    async def trigger(self, resource: str) -> str:
        self.posted.set()
        return ""

    async def set_trigger_mode(self, resources: Sequence[str], mode: int) -> None:
        raise AssertionError("not used")

    async def set_tiltfile_args(self, args: Sequence[str]) -> None:
        raise AssertionError("not used")

    async def put_button_status(
        self, name: str, metadata_json: str, inputs: Sequence[Mapping[str, object]]
    ) -> Mapping[str, object]:
        raise AssertionError("not used")

    async def feed(self) -> None:
        await self.posted.wait()
        for item in self.items:
            if self.finished:
                return
            if isinstance(item, Frame):
                self.store.apply_frame(decode_view(shifted(item.raw, self.shift_s)))
                await anyio.wait_all_tasks_blocked()


def preroll(
    name: str, resource: str, nth: int, shift_s: float
) -> tuple[Store, list[Frame | Marker]]:
    """A store holding the recording up to the ``nth`` trigger of ``resource``; the rest."""
    items = events(name)
    store = Store()
    store.set_connection(LIVE)
    seen = 0
    for i, item in enumerate(items):
        if isinstance(item, Marker) and trigger_of(item) == resource:
            seen += 1
            if seen == nth:
                for _ in replay(store, items[:i], shift_s=shift_s):
                    pass
                return store, items[i + 1 :]
    raise AssertionError(f"no trigger {nth} of {resource} in {name}")


async def triggered_build(
    name: str, resource: str, nth: int, shift_s: float
) -> tuple[str, str | None]:
    store, rest = preroll(name, resource, nth, shift_s)
    tilt = ReplayedTilt(store, rest, shift_s)
    control = Controller(store, tilt)
    async with anyio.create_task_group() as tg:
        tg.start_soon(tilt.feed)
        with anyio.fail_after(DEADLINE_S):
            result = await control.trigger(resource, wait=True, timeout_s=DEADLINE_S)
        tilt.finished = True
    newest = store.state.resources[resource].build_history[0].span_id
    return result.outcome, newest


@pytest.mark.parametrize("shift_s", [0.0, -600.0, 600.0])
async def test_trigger_wait_finds_its_build_with_tilts_clock_off(shift_s: float) -> None:
    """`manual` sat queued for 4 s behind the initial builds; its build is build:13."""
    outcome, span = await triggered_build("11-trigger-queued", "manual", 1, shift_s)
    assert (outcome, span) == ("ok", "build:13")


@pytest.mark.parametrize("shift_s", [0.0, -600.0, 600.0])
async def test_trigger_wait_skips_the_build_running_when_it_was_sent(shift_s: float) -> None:
    """`ok` triggered while build:14 runs: the wait ends with build:15, not build:14."""
    outcome, span = await triggered_build("11-trigger-queued", "ok", 2, shift_s)
    assert (outcome, span) == ("ok", "build:15")


@pytest.mark.parametrize("shift_s", [-600.0, 600.0])
async def test_trigger_wait_reports_a_failing_rebuild_with_tilts_clock_off(
    shift_s: float,
) -> None:
    """`fail` error -> error in one frame: the new build's error is the answer."""
    outcome, span = await triggered_build("10-rebuild-coalesced", "fail", 2, shift_s)
    assert (outcome, span) == ("error", "build:17")


def test_a_build_our_cache_had_not_seen_at_the_post_is_not_taken_for_ours() -> None:
    """The cache lags Tilt by a frame or two: `ok`'s Initial Build (build:2) was running
    but not yet in the cache when the trigger went out. Its init reason says so."""
    from bridge.waiting import TriggeredBuild

    items = events("11-trigger-queued")
    store = Store()
    store.set_connection(LIVE)
    awaited: TriggeredBuild | None = None
    ended_with = None
    for frame in replay(store, items):
        if frame.seq == 3:
            awaited = TriggeredBuild.before(store.state, "ok")
        if awaited is not None and ended_with is None:
            outcome = awaited.evaluate(store.state, "ok", store.build_reason)
            if outcome is not None:
                ended_with = store.state.resources["ok"].build_history[0].span_id
    assert ended_with == "build:14"  # the first build a trigger caused, not build:2


def test_a_trigger_reads_as_triggered_from_the_posts_acceptance() -> None:
    """Tilt publishes `queued` a frame or more after the POST; the bridge shows it at once,
    then Tilt's own state takes over."""
    store = Store()
    readings: list[tuple[int, str, bool]] = []
    marked = False

    def on_trigger(name: str) -> None:
        nonlocal marked
        if name == "manual":
            store.mark_triggered(name)
            res = store.state.resources[name]
            readings.append((-1, summary_state(res), res.triggered))
            assert "triggered" in (problem_text(res, store.logs) or "")
            marked = True

    for frame in replay(store, events("11-trigger-queued"), on_trigger=on_trigger):
        if marked:
            res = store.state.resources["manual"]
            readings.append((frame.seq, summary_state(res), res.triggered))
            if frame.seq >= 15:
                break
    assert readings[0] == (-1, "pending", True)
    # Tilt's queued frame (seq 15) ends our overlay: Tilt says the same, itself
    assert readings[-1] == (15, "pending", False)
    assert all(state == "pending" for _, state, _ in readings)


def test_a_trigger_the_stream_never_shows_stops_reading_triggered_at_its_deadline() -> None:
    now = [1000.0]
    store = Store(clock=lambda: now[0])
    for _ in replay(store, events("02-trigger-manual")[:3]):
        pass
    before = store.state.resources["manual"]
    store.mark_triggered("manual", shown_s=5)
    assert store.state.resources["manual"].triggered
    assert store.trigger_deadline_in() == 5
    now[0] += 5
    store.expire_triggers()
    assert store.state.resources["manual"] == before
    assert store.trigger_deadline_in() is None


async def test_subscribers_hear_about_a_trigger_before_tilt_shows_it() -> None:
    """The store's change feed carries the triggered state; the push layer follows."""
    async with FakeTilt() as tilt, live(tilt) as lv:
        inbox = Inbox()
        async with Client(lv.app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, MANUAL)  # primes the pump with the current content
            already = len(inbox.updated())
            lv.stack.store.mark_triggered("manual")  # what the controller does after a 200
            with anyio.fail_after(DEADLINE_S):
                await inbox.wait_for(lambda i: i.updated().count(MANUAL) > already)
            read = await client.read_resource(MANUAL)
            assert "triggered" in str(read)


def test_a_finished_build_whose_lost_reason_is_ours_when_it_is_the_only_new_one() -> None:
    """Tilt keeps 2 MB of log: a build that prints more between two frames loses its
    ``init`` line (its reason) before it is sent. When it is the one new build, it is
    the trigger's, and the outcome says how it was told; two new builds, or one that
    shows another reason, are not guessed at."""
    from bridge.core.state import State
    from bridge.tilt.view import BuildRecord, CurrentBuild, Resource
    from bridge.waiting import TriggeredBuild

    before = TriggeredBuild(frozenset({"build:2"}), "t0")
    old = BuildRecord("build:2", "t1", "t2")
    ours = BuildRecord("build:7", "t3", "t4")
    reasons = {"build:2": "Initial Build"}

    def state(*history: BuildRecord, current: str | None = None) -> State:
        res = Resource(
            "spammer",
            build_history=history,
            current_build=CurrentBuild(current, "t5") if current else None,
        )
        return State(tilt_start_time="t0", resources={"spammer": res})

    def logged(span: str) -> bool:  # Tilt sent lines of these builds
        return span in {"build:2", "build:7", "build:8"}

    outcome = before.evaluate(state(ours, old), "spammer", reasons.get, logged)
    assert outcome is not None
    assert outcome.ok
    assert "build:7: Tilt dropped its first log lines" in outcome.reason
    # no line of it yet: its reason may still come, so not yet
    assert before.evaluate(state(ours, old), "spammer", reasons.get, lambda s: False) is None
    # still building: not yet
    busy = state(ours, old, current="build:8")
    assert before.evaluate(busy, "spammer", reasons.get, logged) is None
    # two new builds without a reason: which was ours cannot be told
    two = state(BuildRecord("build:8", "t5", "t6"), ours)
    assert before.evaluate(two, "spammer", reasons.get, logged) is None
    # a new build that shows another reason is not ours
    other = {**reasons, "build:7": "Change: a.txt"}
    assert before.evaluate(state(ours, old), "spammer", other.get, logged) is None
