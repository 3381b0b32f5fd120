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


def built(state: State, before: State) -> set[str]:
    """Resources whose builds moved in Tilt's stream (not the bridge's own "triggered"
    mark, which it sets for the name it posted as soon as Tilt accepts)."""

    def builds(st: State, name: str) -> object:
        r = st.resources.get(name)
        return None if r is None else (r.current_build, r.build_history)

    return {n for n in state.resources if builds(state, n) != builds(before, n)}


@pytest.mark.parametrize("name", ["manual", "lazy"])
async def test_trigger_builds_the_named_resource_and_nothing_else(name: str) -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        before = await s.connected()
        result = await Controller(s.store, s.http).trigger(name, wait=False, timeout_s=10)
        assert (result.resource, result.triggered) == (name, True)
        after = await s.until(lambda st: bool(built(st, before)))
        assert built(after, before) == {name}
