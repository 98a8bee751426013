"""Request accounting and the optional quota-faithful mode of the emulators.

Benchmarks report API calls per device, so every request is counted per operation class (registry, twin_read,
twin_update, query, jobs, dps, arm, storage) and per route. With `rates` set, each class gets a token bucket refilled
at that many requests per second (one second of burst); an empty bucket answers 429 with `Retry-After`, as IoT Hub
throttling does. `shaping` (seconds) models IoT Hub's traffic shaping (quotas.md §2.1: bursts above a limit are
first queued, then refused): a request whose token is due within `shaping` waits for it instead of being refused.
The hub documents no queue size; the default 0 refuses at once. Default: no rates, no throttling.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATION_CLASSES = ("registry", "twin_read", "twin_update", "query", "jobs", "dps", "arm", "storage")


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float

    def take(self, now: float, shaping: float = 0.0) -> tuple[float, float | None]:
        """Spend a token: (seconds to hold the request first, None), or (0, seconds until a token) when refused.
        A token due within `shaping` seconds is spent ahead (the bucket goes below zero) and the request waits."""
        capacity = max(1.0, self.rate)
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0, None
        wait = (1.0 - self.tokens) / self.rate
        if wait <= shaping:
            self.tokens -= 1.0
            return wait, None
        return 0.0, wait


@dataclass
class Accounting:
    """Counts and (optionally) rate-limits requests; thread-safe."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    shaping: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    shaped: Counter[str] = field(default_factory=Counter)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_rates(self, rates: Mapping[str, float] | None) -> None:
        unknown = set(rates or {}) - set(OPERATION_CLASSES)
        if unknown:
            raise ValueError(f"unknown operation class(es) {sorted(unknown)}; known: {', '.join(OPERATION_CLASSES)}")
        if any(rate <= 0 for rate in (rates or {}).values()):
            raise ValueError("rates must be positive (leave a class out to leave it unlimited)")
        now = self.clock()
        with self._lock:
            self._buckets = {
                name: _Bucket(float(rate), max(1.0, float(rate)), now) for name, rate in (rates or {}).items()
            }

    def admit(self, op_class: str, operation: str) -> int | None:
        """Count a request; return a Retry-After (whole seconds, ≥1) when its class is out of quota. A request
        shaped (its token due within `shaping`) is held here until then."""
        with self._lock:
            self.requests[op_class] += 1
            self.operations[operation] += 1
            bucket = self._buckets.get(op_class)
            hold, wait = bucket.take(self.clock(), self.shaping) if bucket else (0.0, None)
            if wait is not None:
                self.throttled[op_class] += 1
                return max(1, math.ceil(wait))
            if hold:
                self.shaped[op_class] += 1
        if hold:
            self.sleep(hold)
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "operations": dict(self.operations),
                "throttled": dict(self.throttled),
                "shaped": dict(self.shaped),
                "total": sum(self.requests.values()),
                "rates": {name: bucket.rate for name, bucket in self._buckets.items()},
            }

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.operations.clear()
            self.throttled.clear()
            self.shaped.clear()
