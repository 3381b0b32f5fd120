"""Wait conditions, pure: which build counts as the one we triggered (by Tilt's span ids
and build reasons, never by clocks)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import anyio
import pytest

from bridge import waiting
from bridge.core.state import ConnectionInfo, State
from bridge.errors import ToolError
from bridge.store import Store
from bridge.tilt.view import BuildRecord, CurrentBuild, Resource
from bridge.waiting import Baseline, evaluate, wait_for

from .replay import apply_all

T = "2026-11-27T10:00:{:02d}.000000Z"


def res(
    history: list[tuple[int, str | None]], current: int | None = None, **kw: object
) -> Resource:
    builds = tuple(
        BuildRecord(
            span_id=f"build:{i}", start_time=T.format(s), finish_time=T.format(s), error=err
        )
        for i, (s, err) in enumerate(history)
    )
    cur = (
        CurrentBuild(span_id="build:x", start_time=T.format(current))
        if current is not None
        else None
    )
    fields: dict[str, object] = {"update_status": "ok", **kw}
    return Resource(name="web", build_history=builds, current_build=cur, **fields)  # type: ignore[arg-type]


def state_of(resource: Resource, start: str = "2026-11-27T09:00:00Z") -> State:
    return State(
        tilt_start_time=start,
        loaded=True,
        resources=MappingProxyType({resource.name: resource}),
    )


def test_a_trigger_does_not_take_the_build_running_when_it_was_sent() -> None:
    """Tilt's span ids and the build's init reason tell the triggered build; no clock."""
    before = res([(10, None)], current=20, update_status="in_progress")
    awaited = waiting.TriggeredBuild.before(state_of(before), "web")
    reasons = {
        "build:x": "Changed Files",
        "build:0": "Initial Build",
        "build:late": "Initial Build",
    }
    # the running build ends: not ours
    running_done = replace(res([(20, None), (10, None)]))
    running_done = replace(
        running_done,
        build_history=(
            replace(running_done.build_history[0], span_id="build:x"),
            *running_done.build_history[1:],
        ),
    )
    assert awaited.evaluate(state_of(running_done), "web", reasons.get) is None
    # a build our cache had not seen, started for another reason: not ours either
    late = replace(running_done, current_build=CurrentBuild("build:late", T.format(1)))
    assert awaited.evaluate(state_of(late), "web", reasons.get) is None
    # the triggered build, even with Tilt's clock an hour behind ours
    ours = BuildRecord("build:9", T.format(0), T.format(1))
    finished = replace(running_done, build_history=(ours, *running_done.build_history))
    reasons["build:9"] = "Web Trigger"
    done = awaited.evaluate(state_of(finished), "web", reasons.get)
    assert done is not None
    assert done.ok


def test_a_failed_triggered_build_reports_its_error() -> None:
    awaited = waiting.TriggeredBuild.before(state_of(res([(10, None)])), "web")
    failed = res([(12, "exit status 3"), (10, None)])
    failed = replace(failed, build_history=(replace(failed.build_history[0], span_id="build:7"),))
    out = awaited.evaluate(state_of(failed), "web", {"build:7": "Web Trigger"}.get)
    assert out is not None
    assert (out.ok, out.reason) == (False, "build failed: exit status 3")


def test_a_tilt_restart_ends_the_wait_for_a_triggered_build() -> None:
    """Span ids start again at build:1 in a new Tilt process: nothing there is ours."""
    awaited = waiting.TriggeredBuild.before(state_of(res([(10, None)])), "web")
    after = state_of(res([(11, None)]), start="2026-11-27T09:30:00Z")
    out = awaited.evaluate(after, "web", {"build:0": "Web Trigger"}.get)
    assert out is not None
    assert "restarted" in out.reason


def test_a_queued_build_keeps_the_wait_open() -> None:
    base = Baseline.of(res([(10, None)]))
    queued = replace(res([(12, None), (10, None)]), queued=True)
    assert evaluate(queued, "web", "build_finished", base) is None


def test_ready_fails_fast_on_an_error_with_nothing_building() -> None:
    broken = replace(res([(10, "boom")]), update_status="error")
    out = evaluate(broken, "web", "ready", Baseline.of(broken))
    assert out is not None
    assert not out.ok
    rebuilding = replace(broken, queued=True)
    assert evaluate(rebuilding, "web", "ready", Baseline.of(broken)) is None


def test_disabled_and_removed_resources_end_the_wait() -> None:
    gone = evaluate(None, "web", "ready", Baseline(None, False))
    assert gone is not None
    assert "no longer exists" in gone.reason
    off = evaluate(
        replace(res([]), disable_state="Disabled"), "web", "ready", Baseline(None, False)
    )
    assert off is not None
    assert "disabled" in off.reason


# --------------------------------------------------------------------------- wait_for on a store


def loaded_store() -> Store:
    store = apply_all(Store(), "02-trigger-manual")
    store.set_connection(ConnectionInfo(state="connected", url="ws://tilt/ws/view"))
    return store


@pytest.mark.anyio
async def test_wait_for_with_tilt_stopped_answers_not_connected_not_done() -> None:
    """The cache says `ok` is up to date, but Tilt is gone: never done from a stale cache."""
    store = loaded_store()
    store.set_connection(
        ConnectionInfo(state="disconnected", url="ws://tilt/ws/view", last_error="refused")
    )
    with pytest.raises(ToolError, match=r"not connected to Tilt: disconnected: refused"):
        await wait_for(store, ["ok"], "up_to_date", 0.2)


@pytest.mark.anyio
async def test_wait_for_waits_for_the_connection_within_its_timeout() -> None:
    store = loaded_store()
    live = store.state.connection
    store.set_connection(ConnectionInfo(state="connecting", url=live.url))
    async with anyio.create_task_group() as tg:

        async def reconnect() -> None:
            await anyio.wait_all_tasks_blocked()
            store.set_connection(live)

        tg.start_soon(reconnect)
        with anyio.fail_after(5):
            result = await wait_for(store, ["ok"], "up_to_date", 5)
    assert [o.ok for o in result.outcomes] == [True]


@pytest.mark.anyio
async def test_duplicate_names_are_merged_and_do_not_wait_the_timeout() -> None:
    store = loaded_store()
    with anyio.fail_after(2):
        result = await wait_for(store, ["ok", "ok"], "up_to_date", 30)
    assert [o.resource for o in result.outcomes] == ["ok"]
    assert not result.timed_out


@pytest.mark.anyio
async def test_a_huge_list_is_refused_with_a_short_error() -> None:
    store = loaded_store()
    with pytest.raises(ToolError) as err:
        await wait_for(store, [f"r{i}" for i in range(10_000)], "up_to_date", 1)
    assert len(str(err.value)) < 200
    with pytest.raises(ToolError) as err:
        await wait_for(store, ["x" * 100_000], "up_to_date", 1)
    assert len(str(err.value)) < 250
    # ["ok"] * 10000 is one resource
    with anyio.fail_after(2):
        result = await wait_for(store, ["ok"] * 10_000, "up_to_date", 1)
    assert len(result.outcomes) == 1


@pytest.mark.anyio
async def test_progress_only_ever_increases() -> None:
    store = loaded_store()
    reports: list[int] = []

    async def progress(done: int, total: int, message: str) -> None:
        reports.append(done)

    async with anyio.create_task_group() as tg:

        async def churn() -> None:
            # frames that change nothing the wait is about still move the store's version
            for _ in range(5):
                await anyio.wait_all_tasks_blocked()
                store.set_connection(store.state.connection)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()

        tg.start_soon(churn)
        await wait_for(store, ["manual-lazy"], "up_to_date", 5, progress=progress)
    assert reports == sorted(set(reports))
    assert reports == [0]
