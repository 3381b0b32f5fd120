"""``--demo``: the built-in fake Tilt (:mod:`bridge.testing`) with scripted live activity,
so the bridge can be tried with no Tilt running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import structlog

from bridge.settings import Settings, TokenSource
from bridge.testing import FakeTilt, run_demo_activity

log = structlog.get_logger("bridge.demo")


@asynccontextmanager
async def demo_tilt(settings: Settings) -> AsyncIterator[Settings]:
    """Start the fake Tilt and its activity; yield ``settings`` pointed at it."""
    async with FakeTilt() as tilt, anyio.create_task_group() as tg:
        tg.start_soon(run_demo_activity, tilt)
        log.info("demo.started", url=tilt.base_url)
        yield replace(
            settings,
            host="127.0.0.1",
            port=tilt.port,
            token=TokenSource(env_value=tilt.token) if tilt.token else TokenSource(),
        )
        tg.cancel_scope.cancel()
