"""The pure core against real Tilt traffic: decoding, the reducer, and log checkpoints."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core.state import State, apply_view
from bridge.errors import FrameError
from bridge.store import Store
from bridge.tilt.view import decode_view

from .conftest import ALL, recording


def replay(name: str, store: Store | None = None, *, upto_conn: int | None = None) -> Store:
    store = store or Store()
    for i, conn in enumerate(recording(name)):
        if upto_conn is not None and i > upto_conn:
            break
        store.new_connection()
        for raw in conn.frames:
            store.apply_frame(decode_view(raw))
    return store


def fresh(raw: str) -> Store:
    store = Store()
    store.apply_frame(decode_view(raw))
    return store


def keys(store: Store, resource: str | None = None) -> list[tuple[str, int, str]]:
    lines = list(store.logs.newest_first(None if resource is None else [resource]))
    lines.reverse()
    return [(x.resource, x.time_us, x.text) for x in lines]


@pytest.mark.parametrize("name", ALL)
def test_every_recorded_frame_decodes_and_applies(name: str) -> None:
    store = replay(name)
    assert store.state.loaded
    assert store.state.connection.bad_frames == 0
    for res in store.state.resources.values():
        assert res.name
        assert not res.deleted


def test_complete_view_drops_managed_fields_and_keeps_button_metadata() -> None:
    raw = recording("02-trigger-manual")[0].frames[0]
    view = decode_view(raw)
    assert view.is_complete
    assert view.buttons is not None
    btn = next(b for b in view.buttons if b.name == "toggle-ticker-disable")
    meta = json.loads(btn.metadata_json)
    assert "managedFields" not in meta
    assert meta["resourceVersion"] == btn.resource_version
    assert btn.button_type == "DisableToggle"
    assert [(i.name, i.kind, i.default) for i in btn.inputs] == [("action", "hidden", "on")]


def test_startup_resources_arrive_as_deltas_after_an_almost_empty_view() -> None:
    conn = recording("01-startup")[0]
    first = decode_view(conn.frames[0])
    assert first.is_complete
    assert first.resources is None
    store = replay("01-startup")
    assert len(store.state.resources) == 16
    assert store.state.tiltfile is not None
    assert store.state.tiltfile.update_status == "ok"


def test_reconnect_state_equals_the_second_complete_view_and_logs_have_no_duplicates() -> None:
    conns = recording("07-reconnect")
    store = replay("07-reconnect", upto_conn=0)
    store.new_connection()
    store.apply_frame(decode_view(conns[1].frames[0]))
    oracle = fresh(conns[1].frames[0])
    assert dict(store.state.resources) == dict(oracle.state.resources)
    assert dict(store.state.buttons) == dict(oracle.state.buttons)
    assert keys(store) == keys(oracle)


def test_reconnect_without_new_lines_applies_nothing_twice() -> None:
    conns = recording("07-reconnect")
    store = Store()
    store.apply_frame(decode_view(conns[1].frames[0]))
    before = keys(store)
    store.new_connection()
    store.apply_frame(decode_view(conns[1].frames[0]))
    assert keys(store) == before


def _max_genuine(frames: list[str]) -> Counter[tuple[str, int, str]]:
    """For each line key, the most copies Tilt itself held in any one complete view."""
    best: Counter[tuple[str, int, str]] = Counter()
    for raw in frames:
        if '"isComplete":true' not in raw:
            continue
        for k, n in Counter(keys(fresh(raw))).items():
            best[k] = max(best[k], n)
    return best


def test_log_truncation_keeps_every_line_tilt_still_had_once() -> None:
    conns = recording("08-log-truncation")
    store = replay("08-log-truncation")
    final = Counter(keys(fresh(conns[1].frames[0])))
    ours = Counter(keys(store))
    # no lost line that Tilt still had
    missing = final - ours
    assert not missing
    # no duplicates beyond what Tilt itself held
    genuine = _max_genuine([f for c in conns for f in c.frames])
    dups = {k: n for k, n in ours.items() if n > max(1, genuine[k])}
    assert not dups
    # the truncation frame (from > last_to) was recognised as a resend
    assert store.logs.stats().lines >= sum(final.values())


def test_tilt_restart_resets_state_keeps_history_and_duplicates_nothing() -> None:
    conns = recording("09-tilt-restart")
    store = replay("09-tilt-restart")
    assert store.state.tilt_start_time == decode_view(conns[1].frames[0]).tilt_start_time
    after = Store()
    for raw in conns[1].frames:
        after.apply_frame(decode_view(raw))
    assert dict(store.state.resources) == dict(after.state.resources)
    ours = keys(store)
    new_lines = keys(after)
    assert ours[-len(new_lines) :] == new_lines  # the new process's lines, in order, once
    before = keys(fresh(conns[0].frames[0]))
    assert Counter(ours[: len(ours) - len(new_lines)]) >= Counter(before[:100])


def test_tombstones_delete_resources_and_their_buttons() -> None:
    store = Store()
    seen_added = False
    for conn in recording("06-tiltfile-edit"):
        store.new_connection()
        for raw in conn.frames:
            change = store.apply_frame(decode_view(raw))
            if "added" in change.added:
                seen_added = True
                assert store.state.resources["added"].waiting is not None
            if "added" in change.removed:
                assert "toggle-added-disable" not in store.state.buttons
    assert seen_added
    assert "added" not in store.state.resources


def test_failing_build_is_decoded_with_error_and_conditions() -> None:
    store = replay("03-failing-build")
    fail = store.state.resources["fail"]
    assert fail.update_status == "error"
    assert fail.build_history[0].error is not None
    assert "exit status 3" in fail.build_history[0].error
    cond = fail.condition("UpToDate")
    assert cond is not None
    assert cond.reason == "UpdateError"
    lines = [x.text for x in store.logs.newest_first(["fail"])]
    assert any(t.startswith("Build Failed:") for t in lines)


def test_a_delta_that_changes_nothing_reports_no_resource_change() -> None:
    raw = recording("02-trigger-manual")[0].frames[0]
    store = fresh(raw)
    view = decode_view(raw)
    _, change = apply_view(store.state, view)
    assert change.resources == frozenset()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[1,2]",
        '"text"',
        '{"uiResources": {"a": 1}}',
        '{"logList": []}',
        '{"uiResources": [{"metadata": {}}]}',
    ],
)
def test_malformed_frames_raise_frame_error(raw: str) -> None:
    with pytest.raises(FrameError):
        decode_view(raw)


def test_wrongly_typed_fields_fall_back_to_zero_values() -> None:
    raw = json.dumps(
        {
            "uiResources": [
                {
                    "metadata": {"name": "x", "labels": "oops"},
                    "status": {"updateStatus": 7, "buildHistory": "no", "triggerMode": "1"},
                    "unknownField": {"a": 1},
                }
            ],
            "tiltStartTime": 5,
        }
    )
    view = decode_view(raw)
    assert view.resources is not None
    res = view.resources[0]
    assert (res.name, res.update_status, res.build_history, res.trigger_mode) == (
        "x",
        "none",
        (),
        0,
    )


# --------------------------------------------------------------------------- property


def _pool() -> tuple[list[str], str]:
    frames = [f for c in recording("06-tiltfile-edit") for f in c.frames]
    complete = recording("06-tiltfile-edit")[-1].frames[0]
    return frames, complete


FRAMES, COMPLETE = _pool()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAMES), max_size=12))
def test_a_complete_view_after_any_deltas_equals_that_view(deltas: list[str]) -> None:
    state = State()
    for raw in deltas:
        state, _ = apply_view(state, decode_view(raw))
    state, _ = apply_view(state, decode_view(COMPLETE))
    oracle, _ = apply_view(State(), decode_view(COMPLETE))
    assert dict(state.resources) == dict(oracle.resources)
    assert dict(state.buttons) == dict(oracle.buttons)
