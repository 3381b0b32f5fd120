"""Facts as Tilt states them: its version string, and no invented probe states."""

from __future__ import annotations

from bridge.core.conditions import problem_text
from bridge.store import Store
from bridge.testing import load_recording
from bridge.tilt.view import decode_view

from .replay import events, replay


def test_the_version_reads_as_tilt_prints_it() -> None:
    """runningTiltBuild {version: 0.37.6, dev: true} is `v0.37.6-dev` (`tilt version`)."""
    raw = load_recording("02-trigger-manual").connections[0].frames[0].raw
    view = decode_view(raw)
    assert view.session is not None
    assert view.session.version == "v0.37.6-dev"


def test_a_resource_without_a_probe_is_not_said_to_wait_for_one() -> None:
    """`ticker` (a serve_cmd, no readiness probe) is runtime-pending while it starts."""
    store = Store()
    said: set[str] = set()
    for _ in replay(store, events("01-startup")):
        res = store.state.resources.get("ticker")
        if res is not None and res.runtime_status == "pending":
            said.add(problem_text(res, store.logs) or "")
    assert said, "the recording shows ticker runtime-pending"
    assert not any("probe" in s for s in said)
