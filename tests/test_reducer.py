"""The pure core against real Tilt traffic: decoding, the reducer, and log checkpoints.

The reducer's properties (at the end) take their oracle from Tilt itself: the next
complete view of the same Tilt, and ``GET /api/view``."""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter
from collections.abc import Iterable
from typing import Final

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.core.logbuffer import LogBuffer
from bridge.core.state import State, apply_view
from bridge.errors import FrameError
from bridge.store import Store
from bridge.testing import load_api_view, load_recording
from bridge.tilt.view import Button, Resource, View, decode_view, decode_view_object

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


# --------------------------------------------------------------------------- properties
#
# Recordings 01 to 09 were made back to back against one Tilt process (one tiltStartTime;
# each connection opened milliseconds after the previous one closed) until 09 restarts
# Tilt. So every connection's complete view is, according to Tilt itself, what the
# previous connection's complete view plus its deltas must add up to.

SAME_PROCESS: Final = (
    ("01-startup", 0),
    ("02-trigger-manual", 0),
    ("03-failing-build", 0),
    ("04-disable-enable", 0),
    ("05-uibutton-click", 0),
    ("06-tiltfile-edit", 0),
    ("07-reconnect", 0),
    ("07-reconnect", 1),
    ("08-log-truncation", 0),
    ("08-log-truncation", 1),
    ("09-tilt-restart", 0),
)
RESTARTED: Final = ("09-tilt-restart", 1)  # a new Tilt process: no delta leads there
BACK_TO_BACK_S: Final = 0.1

Line = tuple[str, str, int, str, str, bool]


@functools.cache
def views_of(name: str, index: int) -> tuple[View, ...]:
    return tuple(decode_view(f.raw) for f in load_recording(name).connections[index].frames)


def run(views: Iterable[View]) -> tuple[State, LogBuffer]:
    """Frames through the pure core: the reducer for the state, the log buffer for logs."""
    state, logs = State(), LogBuffer()
    for view in views:
        state, _ = apply_view(state, view)
        if view.log_list is not None:
            logs.apply(view.log_list)
    return state, logs


def differences(ours: State, oracle: State) -> list[str]:
    """What differs between two snapshots, by name. Compared: tiltStartTime, every decoded
    resource and button, the session. Not compared: ``version``, ``loaded`` and
    ``connection``, our own bookkeeping, which differ by construction."""
    out = [] if ours.tilt_start_time == oracle.tilt_start_time else ["tiltStartTime"]
    for kind, a, b in (
        ("resource", ours.resources, oracle.resources),
        ("button", ours.buttons, oracle.buttons),
    ):
        out += [f"{kind} {n}" for n in sorted(a.keys() | b.keys()) if a.get(n) != b.get(n)]
    return out if ours.session == oracle.session else [*out, "session"]


def held(logs: LogBuffer) -> list[Line]:
    """Every held line, oldest first, as Tilt sent it (our own sequence numbers left out)."""
    lines = list(logs.newest_first())
    lines.reverse()
    return [(x.resource, x.span_id, x.time_us, x.level, x.text, x.anchor) for x in lines]


def is_subsequence(short: list[Line], long: list[Line]) -> bool:
    rest = iter(long)
    return all(line in rest for line in short)


@pytest.mark.parametrize(
    ("before", "after"),
    list(itertools.pairwise(SAME_PROCESS)),
    ids=[f"{a[0]}.{a[1]}-to-{b[0]}.{b[1]}" for a, b in itertools.pairwise(SAME_PROCESS)],
)
def test_a_complete_view_plus_its_connections_deltas_equals_the_next_complete_view(
    before: tuple[str, int], after: tuple[str, int]
) -> None:
    """Resources, buttons and session are equal exactly; log lines too, except the lines
    Tilt truncated from its store (next view's ``fromCheckpoint`` > 0), which we keep as
    history: Tilt's lines must then be ours, in order, and the rest lines Tilt no longer
    has, each once, at most ``fromCheckpoint`` of them."""
    closed = load_recording(before[0]).connections[before[1]].markers[-1]
    opened = load_recording(after[0]).connections[after[1]].markers[0]
    assert (closed.kind, opened.kind) == ("client-closing", "connected")
    gap = float(str(opened.data["ts"])) - float(str(closed.data["ts"]))
    assert 0 <= gap < BACK_TO_BACK_S  # nothing happened in Tilt between the two
    views = views_of(*before)
    ours, our_logs = run(views)
    start, start_logs = run(views[:1])
    oracle, tilt_logs = run(views_of(*after)[:1])
    assert differences(start, oracle) or held(start_logs) != held(tilt_logs)  # not vacuous
    assert differences(ours, oracle) == []
    next_logs = views_of(*after)[0].log_list
    assert next_logs is not None
    if next_logs.from_checkpoint == 0:
        assert held(our_logs) == held(tilt_logs)
    else:
        assert is_subsequence(held(tilt_logs), held(our_logs))
        theirs = Counter(held(tilt_logs))
        history = Counter(held(our_logs)) - theirs
        assert not [line for line in history if line in theirs]  # no line twice
        assert history.total() <= next_logs.from_checkpoint


def test_the_recordings_are_one_tilt_process_until_09_restarts_it() -> None:
    """The premise of the property above: 09's second complete view comes from a new Tilt
    (new tiltStartTime, uids and resourceVersions), so no delta leads there; what a
    restart does is tested above (``test_tilt_restart_resets_state_...``)."""
    every = [(n, i) for n in ALL for i in range(len(load_recording(n).connections))]
    assert every == [*SAME_PROCESS, RESTARTED]
    starts = {views_of(*key)[0].tilt_start_time for key in SAME_PROCESS}
    assert len(starts) == 1
    assert views_of(*RESTARTED)[0].tilt_start_time not in starts


def test_get_api_view_equals_the_end_of_startup() -> None:
    """``GET /api/view`` was taken when 01-startup ended (Tilt's log store ends at the same
    checkpoint, and no other frame ends there), so startup's complete view plus its deltas
    must equal it: state and log lines."""
    views = views_of("01-startup", 0)
    api = decode_view_object(load_api_view())
    assert api.is_complete
    assert api.log_list is not None
    ends = [v.log_list.to_checkpoint for v in views if v.log_list and v.log_list.segments]
    assert ends[-1] == api.log_list.to_checkpoint
    assert ends.count(api.log_list.to_checkpoint) == 1
    ours, our_logs = run(views)
    oracle, tilt_logs = run([api])
    assert differences(ours, oracle) == []
    assert held(our_logs) == held(tilt_logs)


@functools.cache
def object_deltas() -> tuple[View, ...]:
    """Every recorded delta of the one Tilt process that names resources, buttons or the
    session (most deltas carry logs only)."""
    return tuple(
        v
        for key in SAME_PROCESS
        for v in views_of(*key)[1:]
        if v.resources or v.buttons or v.session is not None
    )


def tombstones(name: str) -> tuple[Resource, Button]:
    """A resource tombstone and a button tombstone named ``name``, as Tilt sends them."""
    gone = {"metadata": {"name": name, "deletionTimestamp": "2026-11-26T21:00:00Z"}}
    view = decode_view_object({"uiResources": [gone], "uiButtons": [gone]})
    assert view.resources
    assert view.buttons
    return view.resources[0], view.buttons[0]


def inverse(state: State, delta: View) -> View:
    """The delta that undoes ``delta`` on ``state``: every object it names as ``state``
    holds it, or a tombstone where ``state`` has none."""
    resources = None
    if delta.resources is not None:
        resources = tuple(
            state.resources.get(r.name) or tombstones(r.name)[0] for r in delta.resources
        )
    buttons = None
    if delta.buttons is not None:
        buttons = tuple(state.buttons.get(b.name) or tombstones(b.name)[1] for b in delta.buttons)
    session = None if delta.session is None else state.session
    return View(False, state.tilt_start_time, resources, buttons, session)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_applying_a_delta_then_its_inverse_changes_nothing(data: st.DataObject) -> None:
    """On any recorded state, any recorded delta takes effect (each object it names is as
    it says, and the change names exactly the resources whose value moved), and its
    inverse brings every resource, button and the session back."""
    views = views_of(*data.draw(st.sampled_from(SAME_PROCESS), label="connection"))
    state, _ = run(views[: data.draw(st.integers(1, len(views)), label="frames applied")])
    delta = data.draw(st.sampled_from(object_deltas()), label="delta")
    assume(delta.session is None or state.session is not None)  # no delta removes a session
    after, change = apply_view(state, delta)
    for res in delta.resources or ():
        assert after.resources.get(res.name) == (None if res.deleted else res)
    for btn in delta.buttons or ():
        assert after.buttons.get(btn.name) == (None if btn.deleted else btn)
    if delta.session is not None:
        assert after.session == delta.session
    assert change.resources == {
        r.name
        for r in delta.resources or ()
        if state.resources.get(r.name) != (None if r.deleted else r)
    }
    back, _ = apply_view(after, inverse(state, delta))
    assert differences(back, state) == []
