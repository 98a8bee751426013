"""Retries for throttling and transient errors only, with exponential backoff and full jitter.

Logic errors (NotFound, Conflict, Invalid, ...) are never retried. The sleep function and the random source
are injected so tests and benchmarks stay deterministic.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from engine.errors import ProviderError, Throttled

T = TypeVar("T")


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base: float = 0.2
    cap: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    on_retry: Callable[[ProviderError, int], None] | None = None

    def run(self, fn: Callable[[], T]) -> T:
        attempt = 1
        while True:
            try:
                return fn()
            except ProviderError as exc:
                if not exc.retryable or attempt >= self.max_attempts:
                    raise
                if self.on_retry:
                    self.on_retry(exc, attempt)
                delay = self.rng.uniform(0, min(self.cap, self.base * 2 ** attempt))
                if isinstance(exc, Throttled) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                self.sleep(delay)
                attempt += 1
