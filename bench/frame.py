"""Target 1: apply the recorded 3.9 MB complete frame to a fresh store (≤ 100 ms).

Also target 5's "peak RSS while applying the 3.9 MB frame", measured in a child
process (``python -m bench.frame --peak FILE``) so nothing else is on its heap.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from bench.common import (
    PYTHON,
    REPO,
    Config,
    Row,
    Section,
    big_complete_frame,
    mb,
    median,
    ms,
    proc_status,
    reset_peak_rss,
    rss,
)
from bridge.store import Store
from bridge.tilt.view import View, decode_view

TARGET_MS: Final = 100.0


def run(cfg: Config) -> Section:
    section = Section("frame")
    raw = big_complete_frame()
    repeat = cfg.repeat(7, 3)
    loads: list[int] = []
    decode: list[int] = []
    apply: list[int] = []
    total: list[int] = []
    segments = 0
    for i in range(repeat + 1):  # the first run is the warm-up
        gc.collect()
        t0 = time.perf_counter_ns()
        json.loads(raw)
        t1 = time.perf_counter_ns()
        gc.collect()
        t2 = time.perf_counter_ns()
        view = decode_view(raw)
        t3 = time.perf_counter_ns()
        store = Store()
        store.new_connection()
        store.apply_frame(view)
        t4 = time.perf_counter_ns()
        segments = len(view.log_list.segments) if view.log_list else 0
        del store, view
        if i:
            loads.append(t1 - t0)
            decode.append(t3 - t2)
            apply.append(t4 - t3)
            total.append(t4 - t2)
    target = f"≤ {TARGET_MS:.0f} ms"
    section.rows += [
        Row(
            f"3.9 MB complete frame: decode + apply ({len(raw) / 1e6:.1f} MB, {segments} segments)",
            f"{ms(median(total))} (best {ms(min(total))})",
            target,
            median(total) <= TARGET_MS * 1e6,
        ),
        Row("  … decode_view", ms(median(decode))),
        Row("  … of which json.loads", ms(median(loads))),
        Row("  … Store.apply_frame", ms(median(apply))),
    ]
    section.rows.append(peak_rss_row(raw))
    return section


def peak_rss_row(raw: str) -> Row:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as fh:
        fh.write(raw)
        path = Path(fh.name)
    try:
        out = subprocess.run(
            [PYTHON, "-m", "bench.frame", "--peak", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        path.unlink(missing_ok=True)
    data = json.loads(out.stdout)
    return Row(
        "peak RSS applying the 3.9 MB frame (fresh process)",
        f"+{mb(data['peak'] - data['before'])} over {mb(data['before'])}; "
        f"held after: +{mb(data['after'] - data['before'])}",
    )


def _peak_child(path: str) -> None:
    raw = Path(path).read_text(encoding="utf-8")
    store = Store()
    store.new_connection()
    gc.collect()
    before = rss()
    reset_peak_rss()
    view: View | None = decode_view(raw)
    assert view is not None
    store.apply_frame(view)
    view = None
    gc.collect()
    status = proc_status()
    print(json.dumps({"before": before, "peak": status["VmHWM"], "after": status["VmRSS"]}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peak":
        _peak_child(sys.argv[2])
    else:
        for row in run(Config()).rows:
            print(row)
