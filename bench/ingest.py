"""Target 2: sustained log ingest ≥ 100 000 segments/s.

Synthetic delta frames of 1000 recorded-shape segments each (:mod:`bench.synth`),
spread over 100 resources, applied to a store that already holds the complete view:

* decode + apply: ``decode_view(raw)`` then ``Store.apply_frame`` per frame, what the
  watcher does per websocket message;
* apply only: the same frames decoded beforehand;
* steady state with a full buffer: prefilled past an 8 MiB budget, so the timed
  frames also pay for eviction (its cost per evicted line does not depend on the
  budget's size, only how often it runs; a small budget keeps the prefill short).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Final

from bench import synth
from bench.common import MIB, Config, Row, Section, median, per_s
from bench.fixtures import HELD_BUDGET, RESOURCES
from bridge.store import Store
from bridge.tilt.view import View, decode_view

TARGET: Final = 100_000
SEGMENTS: Final = 50_000
EVICT_BUDGET: Final = 8 * MIB
EVICT_PREFILL: Final = 40_000


def _fresh_store(budget: int) -> Store:
    store = Store(log_budget_bytes=budget)
    store.new_connection()
    store.apply_frame(decode_view(synth.complete_view(RESOURCES)))
    return store


def _rate(
    frames: Sequence[str] | Sequence[View],
    *,
    budget: int,
    prefill: Sequence[View] = (),
) -> float:
    store = _fresh_store(budget)
    for view in prefill:
        store.apply_frame(view)
    gc.collect()
    t0 = time.perf_counter_ns()
    for frame in frames:
        store.apply_frame(decode_view(frame) if isinstance(frame, str) else frame)
    elapsed = time.perf_counter_ns() - t0
    assert store.logs.stats().lines > 0
    return per_s(SEGMENTS, elapsed)


def _rate_text(rates: list[float]) -> str:
    return f"{median(rates):,.0f} seg/s (best {max(rates):,.0f})"


def run(cfg: Config) -> Section:
    section = Section("ingest")
    repeat = cfg.repeat(5, 2)
    raws = list(synth.delta_frames(SEGMENTS, RESOURCES))
    views = [decode_view(raw) for raw in raws]
    mb_per_frame = sum(len(r) for r in raws) / len(raws) / 1e6

    with_decode = [_rate(raws, budget=HELD_BUDGET) for _ in range(repeat)]
    apply_only = [_rate(views, budget=HELD_BUDGET) for _ in range(repeat)]

    # steady state: the buffer is over the default budget before the timed frames
    prefill = [decode_view(r) for r in synth.delta_frames(EVICT_PREFILL, RESOURCES)]
    tail_raws = list(synth.delta_frames(SEGMENTS, RESOURCES, first=EVICT_PREFILL))
    evicting = [
        _rate(tail_raws, budget=EVICT_BUDGET, prefill=prefill) for _ in range(max(1, repeat - 2))
    ]
    del prefill

    target = f"≥ {TARGET:,} seg/s"
    section.rows += [
        Row(
            f"log ingest, decode + apply (1000-segment frames, {mb_per_frame * 1000:.0f} kB each)",
            _rate_text(with_decode),
            target,
            median(with_decode) >= TARGET,
        ),
        Row(
            "log ingest, apply only",
            _rate_text(apply_only),
            target,
            median(apply_only) >= TARGET,
        ),
        Row(
            f"log ingest, decode + apply, {EVICT_BUDGET // MIB} MiB budget full (evicting)",
            _rate_text(evicting),
            target,
            median(evicting) >= TARGET,
        ),
    ]
    return section


if __name__ == "__main__":
    for row in run(Config()).rows:
        print(row)
