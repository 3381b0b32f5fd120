"""get_changes stays under the answer cap whatever happened since the cursor, and a bad
cursor or a huge list_buttons name is quoted back cut (issue 10: caps on every input and
answer; found in review: `cursor="0.0"` answered 12.4 MB)."""

from __future__ import annotations

import json

import pytest
from fastmcp import Client

from bridge.core.present import MAX_ANSWER_BYTES
from bridge.tilt.view import LogList, Segment

from .test_mcp_tools import call, loaded_store, server

pytestmark = pytest.mark.anyio


async def test_get_changes_from_the_start_is_capped_and_says_what_was_left_out() -> None:
    store = loaded_store()
    when = "2026-11-27T10:00:00.000000Z"
    text = "e" * 60_000
    segments = tuple(Segment("pod:web", when, f"n{i} {text}\n", "ERROR") for i in range(200))
    store.logs.apply(
        LogList(
            spans={"pod:web": "web"},
            segments=segments,
            from_checkpoint=10**6,
            to_checkpoint=10**6 + 200,
        )
    )
    async with Client(server(store)) as c:
        out = await call(c, "get_changes", cursor="0.0")
    assert len(json.dumps(out).encode()) <= MAX_ANSWER_BYTES + 2_000
    assert out["log"], "the newest lines are kept"
    assert " n199 " in out["log"][-1], out["log"][-1][:80]
    assert all("line cut: " in line for line in out["log"])
    assert "left out" in out["note"]


async def test_a_bad_cursor_and_a_huge_button_filter_are_quoted_cut() -> None:
    async with Client(server(loaded_store())) as c:
        for tool, args in (
            ("get_changes", {"cursor": "x" * 60_000}),
            ("get_changes", {"cursor": "x" * 60}),
            ("list_buttons", {"resource": "r" * 60_000}),
            ("list_buttons", {"resource": "r" * 200}),
        ):
            result = await c.call_tool(tool, args, raise_on_error=False)
            assert result.is_error, (tool, result)
            text = result.content[0].text  # type: ignore[union-attr]
            assert len(text) < 600, (tool, len(text))
