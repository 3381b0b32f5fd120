"""``--demo``: the built-in fake Tilt (:mod:`bridge.testing`) with scripted live activity,
so the bridge can be tried with no Tilt running. ``--demo-instances 2`` (or
``BRIDGE_DEMO_INSTANCES=2``) runs two (up to three) fakes, each with its own Tiltfile
folder (``/home/dev/demo``, ``/home/dev/demo-2``, …) and one shared token, to try
``list_instances`` and ``instance=``; the first is the default."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

import anyio

from bridge.log import get_logger
from bridge.settings import Settings, TokenSource
from bridge.testing import DEFAULT_TOKEN, FakeTilt, load_recording
from bridge.testing.model import Obj, delta, is_disabled, micro_time, runtime_span, segment
from bridge.testing.recordings import DEFAULT_INITIAL

log = get_logger("bridge.demo")


def demo_view(index: int) -> Obj:
    """The recorded first view; fake number ``index`` (from 1) gets its own Tiltfile."""
    view = copy.deepcopy(load_recording(DEFAULT_INITIAL).connections[0].complete_view())
    if index > 1:
        session = view.get("uiSession")
        status = session.get("status") if isinstance(session, dict) else None
        if isinstance(status, dict):
            status["tiltfileKey"] = f"/home/dev/demo-{index}/Tiltfile"
    return view


@asynccontextmanager
async def demo_tilts(settings: Settings) -> AsyncIterator[tuple[Settings, list[int]]]:
    """``settings.demo_instances`` fakes with their activity; yields ``settings``
    pointed at the first and every fake's port."""
    async with AsyncExitStack() as stack:
        tilts = [
            await stack.enter_async_context(FakeTilt(token=DEFAULT_TOKEN, initial=demo_view(i)))
            for i in range(1, settings.demo_instances + 1)
        ]
        tg = await stack.enter_async_context(anyio.create_task_group())
        for tilt in tilts:
            tg.start_soon(run_demo_activity, tilt)
        log.info("demo.started", urls=[t.base_url for t in tilts])
        yield (
            replace(
                settings,
                host="127.0.0.1",
                port=tilts[0].port,
                port_source="--demo" if len(tilts) > 1 else None,
                token=TokenSource(env_value=DEFAULT_TOKEN),
            ),
            [t.port for t in tilts],
        )
        tg.cancel_scope.cancel()


async def run_demo_activity(tilt: FakeTilt, *, speed: float = 1.0) -> None:
    """Feed ``tilt`` realistic live activity forever (cancel to stop).

    Like the demo Tiltfile running: ``ticker`` logs a tick every second, ``web``
    answers its readiness probe every 2 s, ``never-ready`` complains every 5 s,
    ``ok`` rebuilds every 20 s and ``fail`` fails every 45 s. Resources that are
    missing or disabled stay quiet. ``speed`` > 1 runs faster.

    A fake left at zero delays gets Tilt's recorded pace: ~30 ms between the frames
    of a reaction and builds that run ~250 ms (scaled by ``speed``), so triggers and
    button clicks from the bridge show their intermediate states.
    """
    if tilt.frame_delay_s == 0 and tilt.build_time_s == 0:
        tilt.frame_delay_s = 0.03 / speed
        tilt.build_time_s = 0.25 / speed
    tick = 0
    while True:
        await anyio.sleep(1.0 / speed)
        tick += 1
        now = datetime.now(UTC)
        lines = [("ticker", f"tick {tick} {now:%H:%M:%S}\n")]
        if tick % 2 == 0:
            lines.append(
                ("web", f'127.0.0.1 - - [{now:%d/%b/%Y %H:%M:%S}] "GET / HTTP/1.1" 200 -\n')
            )
        if tick % 5 == 0:
            lines.append(("never-ready", "still not ready\n"))
        segments: list[Obj] = []
        spans: dict[str, str] = {}
        for resource, text in lines:
            res = tilt.model.resources.get(resource)
            span = runtime_span(tilt.model, resource)
            if res is not None and span is not None and not is_disabled(res):
                segments.append(segment(span, micro_time(now), text))
                spans[span] = resource
        if segments:
            await tilt.send(delta(segments=segments, spans=spans))
        for name, every in (("ok", 20), ("fail", 45)):
            res = tilt.model.resources.get(name)
            if tick % every == 0 and res is not None and not is_disabled(res):
                tilt.trigger(name, reason=f"1 File Changed: [{name}.txt]")
