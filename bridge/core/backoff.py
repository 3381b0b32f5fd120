"""Reconnect delays: pure, jittered, geometric, capped (like websockets' ``connect``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays ``initial * factor**n`` capped at ``maximum``, each scaled down by up to
    ``jitter`` (0.5 → a delay lands in [d/2, d]). After a connection that was live
    drops, the first retry waits only ``after_live`` (Tilt's web UI retries at once)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 15.0
    jitter: float = 0.25
    after_live: float = 0.1

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff policy {self}")


def delays(policy: BackoffPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """An endless sequence of delays in seconds."""
    rng = rng or random.Random()
    delay = policy.initial
    while True:
        yield delay * (1 - policy.jitter * rng.random())
        delay = min(delay * policy.factor, policy.maximum)
