"""The change feed has builds: every build started and finished, keyed by Tilt's span id,
whatever updateStatus did (recordings of a real Tilt, replayed into the store)."""

from __future__ import annotations

from collections import Counter

import pytest

from bridge.core.state import Transition
from bridge.store import Store
from bridge.testing import Frame, recording_names

from .replay import apply_all, events, replay


def builds(store: Store, resource: str, kind: str) -> list[Transition]:
    return [t for t in store.transitions if t.resource == resource and t.kind == kind]


def test_a_failing_build_that_fails_again_is_two_entries() -> None:
    """Tilt sends `fail` error -> error with a new buildHistory[0] in one frame."""
    store = apply_all(Store(), "10-rebuild-coalesced")
    finished = builds(store, "fail", "build_finished")
    assert [t.build for t in finished] == ["build:3", "build:16", "build:17"]
    assert all(t.new == "error" and t.error and "exit status 3" in t.error for t in finished)
    assert all(t.duration_s is not None and t.duration_s >= 0 for t in finished)
    assert all(t.tilt_time for t in finished)
    # the status itself changed once (pending -> error), not per build
    updates = [
        (t.old, t.new) for t in store.transitions if t.resource == "fail" and t.kind == "update"
    ]
    assert updates[-1] == ("pending", "error")
    assert ("error", "error") not in updates


def test_a_rebuild_coalesced_into_one_frame_is_started_and_finished() -> None:
    """`labeled` goes pending (queued) -> ok with a new build and no in_progress frame."""
    store = Store()
    seen: list[tuple[str, list[str]]] = []
    for frame in replay(store, events("10-rebuild-coalesced")):
        if frame.seq == 35:  # the frame Tilt sent: queued -> ok, buildHistory[0] = build:14
            change = store.changes_since(store.version - 1)
            seen = [
                (t.kind, [t.build or ""]) for t in change.transitions if t.resource == "labeled"
            ]
    assert ("build_started", ["build:14"]) in seen
    assert ("build_finished", ["build:14"]) in seen
    finished = builds(store, "labeled", "build_finished")
    assert [t.build for t in finished] == ["build:5", "build:13", "build:14", "build:15"]
    assert {t.new for t in finished} == {"ok"}


def test_a_build_seen_running_is_started_once_and_finished_once() -> None:
    store = apply_all(Store(), "11-trigger-queued")
    started = [t.build for t in builds(store, "ok", "build_started")]
    finished = [t.build for t in builds(store, "ok", "build_finished")]
    assert started == ["build:2", "build:14", "build:15"]
    assert finished == ["build:2", "build:14", "build:15"]
    # a started entry comes with Tilt's own start time
    assert all(t.tilt_time for t in builds(store, "ok", "build_started"))


@pytest.mark.parametrize("name", recording_names())
def test_every_build_is_reported_at_most_once_per_tilt_process(name: str) -> None:
    """Across reconnects (a complete view resends everything) no build repeats."""
    store = Store()
    counts: Counter[tuple[str | None, str, str, str | None]] = Counter()
    rec_connections = range(
        len(__import__("bridge.testing").testing.load_recording(name).connections)
    )
    for conn in rec_connections:
        for _frame in replay(store, events(name, conn)):
            change = store.changes_since(store.version - 1)
            for t in change.transitions:
                if t.kind.startswith("build_"):
                    counts[(store.state.tilt_start_time, t.resource, t.kind, t.build)] += 1
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated


def test_the_first_view_is_history_not_news() -> None:
    """Builds already in the first complete view are not reported as new."""
    store = Store()
    first = events("02-trigger-manual")
    frames = [e for e in first if isinstance(e, Frame)]
    for _ in replay(store, [frames[0]]):
        pass
    assert not [t for t in store.transitions if t.kind.startswith("build_")]
