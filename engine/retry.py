"""The retry policy of both cloud providers, on tenacity: throttling and transient errors only, exponential backoff
with full jitter, never shorter than the service's Retry-After. Logic errors (NotFound, Conflict, Invalid,
PreconditionFailed, ...) are never retried.

Why tenacity and not the SDKs' own retries (botocore's `standard`/`adaptive` modes, azure-core's RetryPolicy,
msrest's urllib3 `Retry`): the retry has to sit above the pacing and the error translation, and the SDKs' retries
sit below both. Every attempt takes a token from its API's bucket and a Throttled answer lowers that API's rate
(engine/ratelimit.py, AIMD) before the next attempt; each attempt's request id reaches the journal; and what is
retried is decided on fleetctl's own error classes (engine/errors.py: `retryable`), the same for AWS and Azure.
botocore's modes retry inside `client.<op>()`, where the retried attempts would skip the bucket and the AIMD
feedback (adaptive mode has a client-side limiter of its own, per client rather than per API, that knows nothing
of the published quotas), and azure-iot-hub (the registry and twins) is not on azure-core at all. So the clients
switch the SDKs' retries off (botocore `total_max_attempts: 1`; azure `retry_total=0`, msrest's Retry disabled)
and retry the translated error with this policy, one instance per client.

What tenacity does not give is the wait: exponential backoff with full jitter from an injected random source
(tests and benchmarks stay deterministic; tenacity's `wait_random_exponential` draws from the global `random`),
floored at Retry-After. `on_retry(error, attempt)` is called before each retry: the clients count throttled
attempts there (`stats()["throttles"]`, which engine.run writes into the plan's and apply's stats), and
`attempts()` tells the caller how many attempts its last `run` in this thread took, which the clients put on the
journal line of a mutating call that needed more than one (`attempts`).
"""

from __future__ import annotations

import random
import threading
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
class RetryPolicy:
    max_attempts: int = 8
    base: float = 0.2  # seconds; the n-th retry waits up to min(cap, base * 2**n)
    cap: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    on_retry: Callable[[ProviderError, int], None] | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried while it raises a retryable ProviderError, at most `max_attempts` attempts in all; the
        last error is raised as it is."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            retry=tenacity.retry_if_exception(_retryable),
            wait=self._wait,
            before_sleep=self._before_sleep,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        finally:
            self._local.attempts = retrying.statistics.get("attempt_number", 1)

    def attempts(self) -> int:
        """How many attempts the last `run` of this thread made (1: it succeeded or failed at once)."""
        return getattr(self._local, "attempts", 1)

    def _failure(self, state: tenacity.RetryCallState) -> ProviderError:
        exc = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(exc, ProviderError)  # `retry` lets only ProviderErrors through
        return exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        delay = self.rng.uniform(0, min(self.cap, self.base * 2**state.attempt_number))
        exc = self._failure(state)
        if isinstance(exc, Throttled) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        return delay

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        if self.on_retry is not None:
            self.on_retry(self._failure(state), state.attempt_number)
