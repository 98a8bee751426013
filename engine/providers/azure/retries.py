"""The Azure provider's retry policy, on tenacity: throttling (429, IotHubQuotaExceeded) and transient errors only.

Why tenacity and not azure-core's RetryPolicy: the retry has to sit above the pacing, and the SDK's policies sit
below it. Every attempt takes a token from its throttle class's bucket and a 429 halves that class's rate
(engine/ratelimit.py, AIMD) before the next attempt; each attempt's request ids are captured for the journal
(session.py). azure-core's RetryPolicy retries inside the SDK pipeline, where those retried attempts would skip the
bucket and the AIMD feedback, and azure-iot-hub (the registry and twins, most of the calls) is not on azure-core at
all: it runs on msrest's urllib3 `Retry`. So client.py switches the SDKs' own retries off (`retry_total=0`, the
msrest Retry disabled) and the session retries the fleetctl error the client translated, with this policy.

What tenacity does not give is the wait: exponential backoff with full jitter from an injected random source (the
tests and benchmarks stay deterministic; tenacity's `wait_random_exponential` draws from the global `random`) and
never shorter than the service's Retry-After. Logic errors (NotFound, Conflict, Invalid, ...) are never retried.
`on_retry` is called before each retry: the session counts throttled attempts there (`stats()["throttles"]`, which
engine.run writes into the plan's and apply's stats).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from engine.errors import ProviderError, Throttled

T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


@dataclass
class AzureRetry:
    max_attempts: int = 8
    base: float = 0.2                 # seconds; the n-th retry waits up to min(cap, base * 2**n)
    cap: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    on_retry: Callable[[ProviderError, int], None] | None = None

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried while it raises a retryable ProviderError, at most `max_attempts` attempts in all; the
        last error is raised as it is."""
        retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(self.max_attempts),
                                     retry=tenacity.retry_if_exception(_retryable), wait=self._wait,
                                     before_sleep=self._before_sleep, sleep=self.sleep, reraise=True)
        return retrying(fn)

    def _failure(self, state: tenacity.RetryCallState) -> ProviderError:
        exc = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(exc, ProviderError)           # `retry` lets only ProviderErrors through
        return exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        delay = self.rng.uniform(0, min(self.cap, self.base * 2 ** state.attempt_number))
        exc = self._failure(state)
        if isinstance(exc, Throttled) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        return delay

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        if self.on_retry is not None:
            self.on_retry(self._failure(state), state.attempt_number)
