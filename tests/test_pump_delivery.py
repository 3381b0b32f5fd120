"""The push pump delivers before it reports a batch published.

Once :meth:`Pump.caught_up` returns, a subscriber's notification has been sent, and a
reply the client asks for after that arrives after it. So these tests wait on the pump,
not on the inbox: a pump that counts a notification without sending it fails at once
instead of at a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from fastmcp import Client

from bridge.core.state import State
from bridge.mcp.app import Assembled, assemble
from bridge.testing import FakeTilt

from .harness import Stack, stack
from .mcpkit import DEADLINE_S, Inbox, subscribe

pytestmark = pytest.mark.anyio

MANUAL = "tilt://resources/manual"


@asynccontextmanager
async def pumping(tilt: FakeTilt) -> AsyncIterator[tuple[Stack, Assembled]]:
    async with stack(tilt) as s:
        await s.connected()
        app = await assemble(s.settings, s.store, s.http)
        async with anyio.create_task_group() as tg:
            await tg.start(app.pump.run)
            yield s, app
            tg.cancel_scope.cancel()
        app.hub.close()


async def published(s: Stack, app: Assembled, predicate: Callable[[State], bool]) -> None:
    """Wait until the state satisfies ``predicate`` and the pump has published it."""
    with anyio.fail_after(DEADLINE_S):
        await s.until(predicate)
        await app.pump.caught_up(s.store.version)


async def test_a_subscriber_has_its_update_once_the_pump_has_published_the_change() -> None:
    async with FakeTilt() as tilt, pumping(tilt) as (s, app):
        inbox = Inbox()
        async with Client(app.mcp, mode="legacy", message_handler=inbox) as client:
            await subscribe(client, MANUAL)
            before = s.store.state.resources["manual"]
            await s.http.trigger("manual")
            await published(s, app, lambda st: st.resources["manual"] != before)
            await client.ping()  # answered after every notification sent before it
            assert MANUAL in inbox.updated()


async def test_a_client_has_list_changed_once_the_pump_has_published_a_new_resource() -> None:
    async with FakeTilt(initial="06-tiltfile-edit") as tilt, pumping(tilt) as (s, app):
        inbox = Inbox()
        async with Client(app.mcp, mode="legacy", message_handler=inbox) as client:
            await tilt.replay("06-tiltfile-edit", until_action="remove")
            await published(s, app, lambda st: "added" in st.resources)
            await client.ping()
            assert inbox.list_changed() >= 1
