"""Wait conditions, pure: which build counts as the one we triggered (by Tilt's span ids
and build reasons, never by clocks)."""

from __future__ import annotations

from dataclasses import replace

from types import MappingProxyType

from bridge.core.state import State
from bridge.tilt.view import BuildRecord, CurrentBuild, Resource
from bridge.waiting import Baseline, TriggeredBuild, evaluate

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
    awaited = TriggeredBuild.before(state_of(before), "web")
    reasons = {
        "build:x": "Changed Files",
        "build:0": "Initial Build",
        "build:late": "Initial Build",
    }
    # the running build ends: not ours
    running_done = replace(res([(20, None), (10, None)]))
    running_done = replace(
        running_done,
        build_history=(replace(running_done.build_history[0], span_id="build:x"),)
        + running_done.build_history[1:],
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
    awaited = TriggeredBuild.before(state_of(res([(10, None)])), "web")
    failed = res([(12, "exit status 3"), (10, None)])
    failed = replace(failed, build_history=(replace(failed.build_history[0], span_id="build:7"),))
    out = awaited.evaluate(state_of(failed), "web", {"build:7": "Web Trigger"}.get)
    assert out is not None
    assert (out.ok, out.reason) == (False, "build failed: exit status 3")


def test_a_tilt_restart_ends_the_wait_for_a_triggered_build() -> None:
    """Span ids start again at build:1 in a new Tilt process: nothing there is ours."""
    awaited = TriggeredBuild.before(state_of(res([(10, None)])), "web")
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
