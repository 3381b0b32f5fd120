"""The watcher on a fake clock: exact backoff timings, csrf refetch, restarts, never dying.

Runs on trio's MockClock (autojump): virtual time advances only when every task
sleeps, so the timings asserted below are exact and the tests take milliseconds.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

import anyio
import pytest
from structlog.testing import capture_logs
from trio.testing import MockClock

from bridge.core.backoff import BackoffPolicy, delays
from bridge.errors import TiltAuthError, TiltUnreachable
from bridge.store import Store
from bridge.tilt.stream import StreamClosed
from bridge.watcher import Watcher

from .conftest import recording

NO_JITTER = BackoffPolicy(initial=0.5, factor=2.0, maximum=4.0, jitter=0.0, after_live=0.1)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@dataclass
class Script:
    """A scripted Tilt: each attempt pops the next step."""

    steps: list[object]
    attempts: list[tuple[float, str]] = field(default_factory=list)
    csrfs: list[str] = field(default_factory=list)
    reloads: int = 0
    done: anyio.Event = field(default_factory=anyio.Event)

    async def fetch_csrf(self) -> str:
        self.attempts.append((anyio.current_time(), "csrf"))
        step = self.steps[0] if self.steps else None
        if isinstance(step, Exception) and not isinstance(step, _WsError):
            self.steps.pop(0)
            raise step
        csrf = f"csrf-{len(self.attempts)}"
        self.csrfs.append(csrf)
        return csrf

    async def open(self, csrf: str) -> AsyncIterator[str]:
        if not self.steps:
            self.done.set()
            await anyio.sleep_forever()
        step = self.steps.pop(0)
        if isinstance(step, _WsError):
            raise step.exc
        assert isinstance(step, list)
        for item in step:
            if isinstance(item, Exception):
                raise item
            yield item
        if not self.steps:  # the last scripted connection stays open
            self.done.set()
            await anyio.sleep_forever()

    def reload_token(self) -> None:
        self.reloads += 1


@dataclass
class _WsError(Exception):
    exc: Exception


FRAMES = recording("02-trigger-manual")[0].frames


async def run_until_done(
    script: Script, store: Store, policy: BackoffPolicy = NO_JITTER
) -> Watcher:
    watcher = Watcher(
        store, script, url="ws://tilt/ws/view", policy=policy, clock=anyio.current_time
    )
    async with anyio.create_task_group() as tg:
        await tg.start(watcher.run)
        await script.done.wait()
        tg.cancel_scope.cancel()
    return watcher


def test_backoff_is_geometric_capped_and_jittered_down() -> None:
    policy = BackoffPolicy(initial=0.5, factor=2, maximum=4, jitter=0.25)
    got = [round(d, 6) for d, _ in zip(delays(policy, random.Random(1)), range(7), strict=False)]
    nominal = [0.5, 1, 2, 4, 4, 4, 4]
    for d, n in zip(got, nominal, strict=True):
        assert n * 0.75 <= d <= n
    with pytest.raises(ValueError, match="invalid backoff"):
        BackoffPolicy(initial=0)


@pytest.mark.anyio
async def test_tilt_absent_at_start_backs_off_exactly_then_connects() -> None:
    down = TiltUnreachable("tilt is not reachable at http://tilt; is 'tilt up' running?")
    script = Script(steps=[down, down, down, down, down, [FRAMES[0]]])
    store = Store()
    with capture_logs() as logs:
        await run_until_done(script, store)
    times = [t for t, _ in script.attempts]
    # attempts at 0, then +0.5, +1, +2, +4, +4 (capped)
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert store.state.connection.state == "connected"
    assert len(store.state.resources) == 16
    # the same failure is logged once, not five times
    same = [e for e in logs if e["event"] == "tilt.stream.unreachable"]
    assert [e["log_level"] for e in same] == ["warning", "debug", "debug", "debug", "debug"]


@pytest.mark.anyio
async def test_a_live_connection_that_drops_is_retried_fast_with_a_fresh_csrf() -> None:
    drop = StreamClosed("connection to ws://tilt/ws/view closed (code 1006)", 1006)
    script = Script(steps=[[FRAMES[0], FRAMES[1], drop], [FRAMES[0]]])
    store = Store()
    await run_until_done(script, store)
    (t1, _), (t2, _) = script.attempts[:2]
    assert t2 - t1 == pytest.approx(0.1)
    assert script.csrfs[0] != script.csrfs[1]
    assert store.state.connection.connections == 2


@pytest.mark.anyio
async def test_stale_csrf_403_on_the_websocket_refetches_at_once() -> None:
    stale = _WsError(TiltAuthError("ws refused (403): the csrf token is stale"))
    script = Script(steps=[stale, [FRAMES[0]]])
    store = Store()
    await run_until_done(script, store)
    (t1, _), (t2, _) = script.attempts[:2]
    assert t2 == t1  # no delay
    assert script.reloads == 0
    assert store.state.connection.state == "connected"


@pytest.mark.anyio
async def test_wrong_token_backs_off_to_the_cap_without_a_retry_storm() -> None:
    bad = TiltAuthError("Tilt rejected the token (403)")
    script = Script(steps=[bad] * 8 + [[FRAMES[0]]])
    store = Store()
    seen: list[str] = []

    watcher = Watcher(
        store, script, url="ws://tilt/ws/view", policy=NO_JITTER, clock=anyio.current_time
    )
    async with anyio.create_task_group() as tg:
        await tg.start(watcher.run)
        with anyio.fail_after(100):
            while store.state.connection.state != "auth_failed":
                await store.wait_changed(store.version)
        seen.append(store.state.connection.state)
        await script.done.wait()
        tg.cancel_scope.cancel()
    assert seen == ["auth_failed"]
    times = [t for t, _ in script.attempts]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps[:8] == [0.5, 1, 2, 4, 4, 4, 4, 4]
    assert script.reloads == 8  # the token file is re-read after each 403


@pytest.mark.anyio
async def test_malformed_frames_are_skipped_with_one_log_line_each_and_state_stays() -> None:
    script = Script(
        steps=[[FRAMES[0], "{not json", "[]", json.dumps({"uiResources": 3}), FRAMES[1]]]
    )
    store = Store()
    with capture_logs() as logs:
        await run_until_done(script, store)
    skipped = [e for e in logs if e["event"] == "tilt.frame.skipped"]
    assert len(skipped) == 3
    assert store.state.connection.bad_frames == 3
    assert len(store.state.resources) == 16


@pytest.mark.anyio
async def test_an_unexpected_exception_does_not_kill_the_watcher() -> None:
    script = Script(steps=[[FRAMES[0], RuntimeError("boom")], [FRAMES[0]]])
    store = Store()
    with capture_logs() as logs:
        await run_until_done(script, store)
    assert any(e["event"] == "tilt.stream.unexpected_error" for e in logs)
    assert store.state.connection.state == "connected"
    assert store.state.connection.connections == 2


@pytest.mark.anyio
async def test_tilt_restart_resets_state_to_the_new_process() -> None:
    conns = recording("09-tilt-restart")
    drop = StreamClosed("closed (code 1006)", 1006)
    script = Script(steps=[[conns[0].frames[0], drop], list(conns[1].frames)])
    store = Store()
    await run_until_done(script, store)
    assert store.state.tilt_start_time == "2026-11-26T21:01:31.600620Z"
    assert store.state.connection.connections == 2


@pytest.mark.anyio
async def test_a_good_connection_clears_the_last_error() -> None:
    script = Script(steps=[TiltUnreachable("tilt is not reachable at ws://tilt"), [FRAMES[0]]])
    store = Store()
    await run_until_done(script, store)
    assert store.state.connection.state == "connected"
    assert store.state.connection.last_error is None


class BrokenStore(Store):
    """Our own store, failing on its first frame (a reducer bug, say)."""

    failures = 1

    def apply_frame(self, view: object) -> object:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise RuntimeError("reducer bug")
        return super().apply_frame(view)  # type: ignore[arg-type]


@dataclass
class Closing(Script):
    """A script whose frame generators note when they are closed."""

    closed: list[float] = field(default_factory=list)

    async def open(self, csrf: str) -> AsyncIterator[str]:
        try:
            async with aclosing(super().open(csrf)) as inner:  # type: ignore[type-var]
                async for item in inner:
                    yield item
        finally:
            self.closed.append(anyio.current_time())


@pytest.mark.anyio
async def test_the_frame_generator_is_closed_when_a_frame_cannot_be_handled() -> None:
    script = Closing(steps=[[FRAMES[0], FRAMES[1]], [FRAMES[0]]])
    store = BrokenStore()
    await run_until_done(script, store)
    # closed at once, before the retry (not whenever the garbage collector gets to it)
    assert script.closed[0] <= script.attempts[1][0]
    assert store.state.connection.connected


@pytest.mark.anyio
async def test_the_same_unexpected_error_is_logged_once() -> None:
    store = BrokenStore()
    store.failures = 3
    script = Script(steps=[[FRAMES[0]], [FRAMES[0]], [FRAMES[0]], [FRAMES[0]]])
    with capture_logs() as logs:
        await run_until_done(script, store)
    loud = [
        e
        for e in logs
        if e["event"] == "tilt.stream.unexpected_error" and e["log_level"] != "debug"
    ]
    assert len(loud) == 1
    assert store.state.connection.connected


@pytest.mark.anyio
async def test_a_trigger_tilt_never_shows_stops_reading_triggered_after_5s() -> None:
    script = Script(steps=[[FRAMES[0]]])
    store = Store(clock=anyio.current_time)
    watcher = Watcher(store, script, url="ws://tilt/ws/view", policy=NO_JITTER)
    async with anyio.create_task_group() as tg:
        await tg.start(watcher.run)
        await script.done.wait()
        store.mark_triggered("manual")
        marked_at = anyio.current_time()
        assert store.state.resources["manual"].triggered
        while store.state.resources["manual"].triggered:
            await store.wait_changed(store.version)
        assert anyio.current_time() - marked_at == pytest.approx(5.0)
        tg.cancel_scope.cancel()
