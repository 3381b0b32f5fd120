"""Record ``/ws/view`` traffic from a real Tilt into ``bridge/data/recordings``.

    TILT_BIN=/path/to/tilt python -m tests.realtilt.record OUT_DIR

Writes the same JSONL as the other recordings (``fixtures/tilt/README.md``): a
``connected`` marker, then ``{"seq", "t", "ts", "size", "raw"}`` per frame and an
``action`` marker for each HTTP call. Paths of the temporary project are rewritten to
``/home/dev/demo``. Scenarios:

* ``10-rebuild-coalesced``: ``labeled`` and ``fail`` triggered again and again; Tilt
  sends a rebuild whose status stays the same (``ok`` → ``ok``, ``error`` → ``error``)
  with a new ``buildHistory[0]``, often in one frame;
* ``11-trigger-queued``: ``manual`` triggered (Tilt shows ``queued`` a frame or more
  after the POST), and ``ok`` triggered while its build is running (the build running
  when the trigger was sent finishes first, then the triggered one).
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from bridge.settings import TokenSource
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.tilt.view import decode_view

from .tiltproc import RealTilt, find_tilt

HERE = Path(__file__).parent


class Recorder:
    def __init__(self, tilt: RealTilt) -> None:
        self.tilt = tilt
        self.lines: list[str] = []
        self.frames: list[dict[str, object]] = []
        self.t0 = 0.0
        self.seq = 0
        self.changed = anyio.Event()
        self._before: dict[str, set[str]] = {}

    def _add(self, obj: dict[str, object]) -> None:
        text = json.dumps(obj, separators=(",", ":"))
        self.lines.append(text.replace(str(self.tilt.project), "/home/dev/demo"))

    def marker(self, **data: object) -> None:
        self._add({**data, "ts": time.time()})

    async def run(self, label: str, script: Callable[[Recorder, TiltHTTP], object]) -> None:
        http = TiltHTTP(self.tilt.base_url, TokenSource(env_value=self.tilt.token))
        source = TiltSource(
            http, self.tilt.base_url.replace("http", "ws") + "/ws/view", max_frame_bytes=64 << 20
        )
        csrf = await source.fetch_csrf()
        self.t0 = time.monotonic()
        self.marker(marker="connected", label=label, connect_ms=0.0)
        async with anyio.create_task_group() as tg:

            async def pump() -> None:
                async for raw in source.open(csrf):
                    self._add(
                        {
                            "seq": self.seq,
                            "t": round(time.monotonic() - self.t0, 4),
                            "ts": time.time(),
                            "size": len(raw),
                            "raw": raw,
                        }
                    )
                    self.seq += 1
                    self.frames.append(json.loads(raw))
                    self.changed.set()
                    self.changed = anyio.Event()

            tg.start_soon(pump)
            await script(self, http)  # type: ignore[misc]
            self.marker(marker="client-closing")
            tg.cancel_scope.cancel()
        await http.aclose()

    def status(self, name: str) -> dict[str, object] | None:
        for frame in reversed(self.frames):
            for r in frame.get("uiResources") or []:  # type: ignore[union-attr]
                if r["metadata"]["name"] == name:
                    return dict(r["status"])
        return None

    async def until(self, pred: Callable[[], bool], within_s: float = 30) -> None:
        with anyio.fail_after(within_s):
            while not pred():
                await self.changed.wait()

    async def trigger(self, http: TiltHTTP, name: str) -> None:
        body = await http.trigger(name)
        self.marker(
            marker="action", what=f"POST /api/trigger {name} (X-Tilt-Token)", status=200, body=body
        )

    def settled(self, name: str, builds: int) -> Callable[[], bool]:
        def check() -> bool:
            st = self.status(name) or {}
            hist = st.get("buildHistory") or []
            return (
                st.get("updateStatus") in ("ok", "error")
                and not st.get("currentBuild")
                and not st.get("queued")
                and bool(hist)
                and hist[0]["spanID"] not in self.seen_spans(name, builds)
            )

        return check

    def seen_spans(self, name: str, _n: int) -> set[str]:
        return self._before.get(name, set())

    def snapshot_spans(self, name: str) -> None:
        st = self.status(name) or {}
        spans = {b["spanID"] for b in st.get("buildHistory") or []}
        if st.get("currentBuild"):
            spans.add(st["currentBuild"]["spanID"])
        self._before[name] = spans


async def initial(rec: Recorder) -> None:
    await rec.until(lambda: bool(rec.frames))
    for name in ("labeled", "fail", "ok", "manual"):
        await rec.until(
            lambda n=name: (
                (rec.status(n) or {}).get("updateStatus") in ("ok", "error")
                and not (rec.status(n) or {}).get("currentBuild")
            ),
            60,
        )


async def coalesced(rec: Recorder, http: TiltHTTP) -> None:
    await initial(rec)
    for name in ("labeled", "labeled", "labeled", "fail", "fail"):
        rec.snapshot_spans(name)
        await rec.trigger(http, name)
        await rec.until(rec.settled(name, 0))


async def queued(rec: Recorder, http: TiltHTTP) -> None:
    await initial(rec)
    rec.snapshot_spans("manual")
    await rec.trigger(http, "manual")
    await rec.until(rec.settled("manual", 0))
    # a trigger sent while a build runs: `ok` takes 1 s
    rec.snapshot_spans("ok")
    await rec.trigger(http, "ok")
    await rec.until(lambda: bool((rec.status("ok") or {}).get("currentBuild")))
    running = dict((rec.status("ok") or {})["currentBuild"])  # type: ignore[arg-type]
    await rec.trigger(http, "ok")
    rec._before["ok"] = rec._before["ok"] | {str(running["spanID"])}
    await rec.until(rec.settled("ok", 0), 30)


def write(out: Path, name: str, lines: list[str]) -> None:
    path = out / f"{name}.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    for line in lines:
        obj = json.loads(line)
        if "raw" in obj:
            decode_view(obj["raw"])  # every frame decodes
    print(path, len(lines), "lines")


def main() -> None:
    binary = find_tilt()
    if binary is None:
        sys.exit("set TILT_BIN to a tilt binary")
    out = Path(sys.argv[1])
    for name, script in (("10-rebuild-coalesced", coalesced), ("11-trigger-queued", queued)):
        with tempfile.TemporaryDirectory(prefix="tilt-rec-") as tmp:
            tilt = RealTilt(binary, Path(tmp))
            tilt.prepare(
                (HERE / "project" / "Tiltfile").read_text(),
                {"spam.py": (HERE / "project" / "spam.py").read_text()},
            )
            tilt.start()
            try:
                rec = Recorder(tilt)
                anyio.run(rec.run, name, script)
                write(out, name, rec.lines)
            finally:
                tilt.stop()


if __name__ == "__main__":
    main()
