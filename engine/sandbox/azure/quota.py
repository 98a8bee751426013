"""Request accounting and the optional quota-faithful mode of the emulators.

Benchmarks report API calls per device, so every request is counted per operation class (registry, twin_read,
twin_update, query, dps, arm) and per route. With `rates` set, each class gets a token bucket refilled at that many
requests per second (one second of burst); an empty bucket answers 429 with `Retry-After`, as IoT Hub throttling
does. Default: no rates, no throttling.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATION_CLASSES = ("registry", "twin_read", "twin_update", "query", "dps", "arm")


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float | None:
        """Spend a token; when none is left return the seconds until one will be."""
        capacity = max(1.0, self.rate)
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


@dataclass
class Accounting:
    """Counts and (optionally) rate-limits requests; thread-safe."""

    clock: Callable[[], float] = time.monotonic
    requests: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
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
            self._buckets = {name: _Bucket(float(rate), max(1.0, float(rate)), now)
                             for name, rate in (rates or {}).items()}

    def admit(self, op_class: str, operation: str) -> int | None:
        """Count a request; return a Retry-After (whole seconds, ≥1) when its class is out of quota."""
        with self._lock:
            self.requests[op_class] += 1
            self.operations[operation] += 1
            bucket = self._buckets.get(op_class)
            wait = bucket.take(self.clock()) if bucket else None
            if wait is None:
                return None
            self.throttled[op_class] += 1
            return max(1, math.ceil(wait))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "operations": dict(self.operations),
                    "throttled": dict(self.throttled), "total": sum(self.requests.values()),
                    "rates": {name: bucket.rate for name, bucket in self._buckets.items()}}

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.operations.clear()
            self.throttled.clear()
