"""Tilt restarted under a connected bridge: SIGTERM, then ``kill -9`` (its ``serve_cmd``
children survive that and are ended by pid). One Tilt (one port, one ``TILT_DEV_DIR``)
started three times."""

from __future__ import annotations

import pytest
from fastmcp.exceptions import ToolError

from .conftest import DEADLINE_S, SETTLE_S, bridge, settled
from .tiltproc import RealTilt, _alive, port_free, wait_until

pytestmark = pytest.mark.anyio


async def restarted(b: object, tilt: RealTilt, old_start: str | None) -> None:
    await b.until(  # type: ignore[attr-defined]
        lambda s: s.connection.connected and s.tilt_start_time not in (None, old_start),
        SETTLE_S,
    )


async def test_sigterm_then_start_again(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        old = b.store.state.tilt_start_time
        tilt.sigterm()
        await b.until(lambda s: not s.connection.connected)
        # Tilt is gone: a wait answers "not connected", never done from the cache
        with pytest.raises(ToolError, match="not connected to Tilt"):
            await b.client.call_tool(
                "wait_for", {"resources": ["ok"], "condition": "up_to_date", "timeout_s": 1}
            )
        status = await b.tool("get_status")
        assert status["stale"]
        tilt.start()
        await restarted(b, tilt, old)
        wait_until("the demo's initial builds", lambda: settled(tilt), SETTLE_S)
        status = await b.tool("get_status")
        assert status["connection"]["state"] == "connected"
        assert "last_error" not in status["connection"]  # reset by the good connection
        assert status["tilt_version"] == tilt.cli("version", port=False).split(",")[0]
        view = tilt.api_view()
        assert b.store.state.tilt_start_time == view["tiltStartTime"]
        # a wait right after the restart is answered from the new Tilt
        out = await b.tool("wait_for", resources=["ok"], condition="up_to_date", timeout_s=30)
        assert out["done"]


async def test_kill_9_leaves_serve_cmd_children_that_are_ended_by_pid(tilt: RealTilt) -> None:
    async with bridge(tilt) as b:
        old = b.store.state.tilt_start_time
        survivors = tilt.kill9()
        # Tilt's note: each serve_cmd runs in its own process group and outlives kill -9
        assert survivors, "serve_cmd children outlived tilt"
        assert not any(_alive(p) for p in survivors)
        await b.until(lambda s: not s.connection.connected)
        wait_until("port 18081 free", lambda: port_free(18081), DEADLINE_S)
        tilt.start()
        await restarted(b, tilt, old)
        wait_until("the demo's initial builds", lambda: settled(tilt), SETTLE_S)
        await b.until(
            lambda s: (
                s.resources.get("web") is not None and s.resources["web"].runtime_status == "ok"
            )
        )
        out = await b.tool("trigger", resource="manual", wait=True, timeout_s=DEADLINE_S)
        assert out["outcome"] == "ok"
