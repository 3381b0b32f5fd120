"""``trigger`` builds the resource it names and no other, as the stream shows.

Tilt answers 200 to a trigger of any known resource, so the answer alone cannot tell a
trigger of the wrong one; the resources that change afterwards can.
"""

from __future__ import annotations

import pytest

from bridge.control import Controller
from bridge.core.state import State
from bridge.testing import FakeTilt

from .harness import stack

pytestmark = pytest.mark.anyio


def moved(state: State, before: State) -> set[str]:
    return {n for n, r in state.resources.items() if r != before.resources.get(n)}


@pytest.mark.parametrize("name", ["manual", "lazy"])
async def test_trigger_builds_the_named_resource_and_nothing_else(name: str) -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        before = await s.connected()
        result = await Controller(s.store, s.http).trigger(name, wait=False, timeout_s=10)
        assert (result.resource, result.triggered) == (name, True)
        after = await s.until(lambda st: bool(moved(st, before)))
        assert moved(after, before) == {name}
