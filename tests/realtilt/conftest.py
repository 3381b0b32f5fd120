"""The real-Tilt tier: the bridge against a real ``tilt up`` (``TILT_BIN``).

Skipped as a whole, with the reason, when ``TILT_BIN`` does not name an executable
(the project installs and tests without ``../shared``). ``.ci/run`` unpacks
``../shared/tilt/`` and sets it. One Tilt per module (its own port, ``TILT_DEV_DIR`` and
project copy); the demo's servers bind fixed ports (18081), so modules run one Tilt at
a time and every Tilt and its ``serve_cmd`` children are ended by pid afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from bridge.core.backoff import BackoffPolicy
from bridge.core.state import State
from bridge.mcp.app import Assembled, assemble
from bridge.settings import Settings, TokenSource
from bridge.store import Store
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.watcher import Watcher

from .tiltproc import RealTilt, find_tilt, wait_until

PROJECT = Path(__file__).parent / "project"
FAST = BackoffPolicy(initial=0.05, factor=2.0, maximum=0.5, jitter=0.0, after_live=0.05)
SETTLE_S = 60.0
DEADLINE_S = 30.0

TILT_BIN = find_tilt()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if TILT_BIN is not None:
        return
    why = (
        "real-Tilt tier skipped: TILT_BIN does not name a tilt binary (.ci/run sets it by "
        "unpacking ../shared/tilt/; or TILT_BIN=/path/to/tilt)"
    )
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def settled(tilt: RealTilt) -> bool:
    """Tilt's own view: the Tiltfile loaded and no build pending or running."""
    view = tilt.api_view()
    resources = view.get("uiResources") or []
    assert isinstance(resources, list)
    if len(resources) < 2:
        return False
    for r in resources:
        st = r.get("status", {})
        auto = st.get("triggerMode", 0) in (0, 1)
        if st.get("updateStatus") in ("pending", "in_progress") and auto:
            return False
        if st.get("currentBuild", {}).get("startTime"):
            return False
    return True


@pytest.fixture(scope="module")
def tilt() -> Iterator[RealTilt]:
    assert TILT_BIN is not None
    with tempfile.TemporaryDirectory(prefix="realtilt-") as tmp:
        t = RealTilt(TILT_BIN, Path(tmp))
        t.prepare(
            (PROJECT / "Tiltfile").read_text(), {"spam.py": (PROJECT / "spam.py").read_text()}
        )
        t.start()
        try:
            wait_until("the demo's initial builds", lambda: settled(t), SETTLE_S)
            yield t
        finally:
            t.stop()


def settings_for(tilt: RealTilt) -> Settings:
    return Settings(host="127.0.0.1", port=tilt.port, token=TokenSource(env_value=tilt.token))


@dataclass
class Bridge:
    store: Store
    http: TiltHTTP
    app: Assembled
    client: Client[Any]

    async def until(
        self, predicate: Callable[[State], bool], within_s: float = DEADLINE_S
    ) -> State:
        with anyio.fail_after(within_s):
            while not predicate(self.store.state):
                await self.store.wait_changed(self.store.version)
        return self.store.state

    async def tool(self, name: str, /, **args: object) -> dict[str, Any]:
        r = await self.client.call_tool(name, args)
        assert r.structured_content is not None
        return dict(r.structured_content)


@asynccontextmanager
async def bridge(tilt: RealTilt) -> AsyncIterator[Bridge]:
    """The bridge's own stack (store, HTTP client, watcher, MCP app) on the real Tilt."""
    settings = settings_for(tilt)
    store = Store()
    http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=10)
    source = TiltSource(http, settings.tilt_ws_url, max_frame_bytes=settings.max_frame_bytes)
    watcher = Watcher(store, source, url=settings.tilt_ws_url, policy=FAST)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(watcher.run)
            with anyio.fail_after(DEADLINE_S):
                while not (store.state.connection.connected and store.state.loaded):
                    await store.wait_changed(store.version)
            app = await assemble(settings, store, http)
            await tg.start(app.pump.run)
            async with Client(app.mcp) as client:
                yield Bridge(store, http, app, client)
            tg.cancel_scope.cancel()
            app.hub.close()
    finally:
        await http.aclose()


def run_doctor(tilt: RealTilt) -> subprocess.CompletedProcess[str]:
    """``tilt-mcp-bridge status`` as a user runs it, pointed at this Tilt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILT")}
    env["TILT_DEV_DIR"] = str(tilt.dev_dir)
    return subprocess.run(
        [sys.executable, "-m", "bridge", "status", "--host", "127.0.0.1", "--port", str(tilt.port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
