"""Quota-aware pacing: one adaptive token bucket per cloud API, seeded with the default quotas (engine/quotas.py).

Why: AWS IoT and Azure IoT Hub throttle per API (per account+region, per hub unit). A fleet engine that fires
requests as fast as its threads allow spends its time in 429s and back-offs, and a 100,000-device apply takes
as long as the slowest quota anyway (research/quotas.md §8). So every request first takes a token from its
API's bucket: the engine runs at the quota, not above it, and the plan can say which quota binds and how long
an apply will take (engine/estimate.py).

- `RateLimiter`: bounded concurrency (a semaphore on requests in flight) plus one `AdaptiveBucket` per API.
  AIMD: every success adds `increase` × the seeded rate per second of traffic (additive, never above the
  ceiling: the seeded quota unless probing is on); a `Throttled` answer multiplies the rate by `decrease`, at
  most once per `cooldown` (concurrent requests in flight when the quota was hit all come back throttled:
  one event, not many). Retrying is not done here: engine/retry.py retries throttling and transient errors only.
- `guard(api)`: the generic hook any client wraps around one wire call (AWS: AwsClient; Azure: `AzureProvider.call`,
  mapping each operation to its throttle class with `azure_operation_class`; import/export job requests are `jobs`,
  blob requests `storage`, which no hub quota covers).

Hand-written on purpose: the token-bucket libraries (pyrate-limiter, limits, aiolimiter) pace at a fixed rate; none
lowers its rate on a Throttled answer and climbs back additively (AIMD) per API, which is what keeps an apply at the
quota a service actually grants (docs/performance.md measures η against the quota floor). The clock and the sleep
are injected, so tests drive the buckets with a fake clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.errors import Throttled
from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS, Quota, overrides_from_env, quota_of, with_overrides


@dataclass
class AdaptiveBucket:
    """A token bucket whose rate follows AIMD. Not thread-safe on its own: RateLimiter holds the lock.

    `reserve(now)` takes a token and returns how long the caller must wait before using it (0 when one was
    there): callers queue in the order they reserved, so the bucket never lends more than `rate` per second.
    """

    seed: float
    rate: float = 0.0
    ceiling: float = 0.0
    floor: float = 0.0
    burst: float = 1.0  # seconds of tokens the bucket holds when idle
    tokens: float = 0.0
    stamp: float = 0.0
    last_decrease: float = -math.inf
    successes: int = 0
    throttles: int = 0
    waited: float = 0.0

    def __post_init__(self) -> None:
        self.rate = self.rate or self.seed
        self.ceiling = self.ceiling or self.seed
        self.floor = self.floor or max(self.seed / 50.0, 0.01)
        self.tokens = max(1.0, self.rate * self.burst) if not self.tokens else self.tokens

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst)

    def reserve(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        self.waited += wait
        return wait

    def take(self, now: float) -> bool:
        """Spend a token if one is there (a server enforcing the quota: no token, no request)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def succeed(self, increase: float) -> None:
        """Additive increase: `increase` × seed per second of traffic at the current rate."""
        self.successes += 1
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + increase * self.seed / self.rate)

    def throttle(self, now: float, decrease: float, cooldown: float) -> bool:
        """Multiplicative decrease, once per cooldown; the idle burst is spent, so the next request waits."""
        self.throttles += 1
        if now - self.last_decrease < cooldown:
            return False
        self.last_decrease = now
        self.rate = max(self.floor, self.rate * decrease)
        self.tokens = min(self.tokens, 0.0)
        return True


@dataclass
class RateLimiter:
    """Per-API adaptive buckets and a cap on requests in flight; thread-safe.

    `quotas` maps an API (AWS operation name, or an Azure throttle class) to its quota; an API without an
    entry uses `default`. `probe`: let AIMD climb above the seeded quota (up to `probe`× it), for accounts
    whose real quotas were raised but not configured.
    """

    quotas: Mapping[str, Quota]
    default: Quota | None = None
    max_in_flight: int = 32
    increase: float = 0.05
    decrease: float = 0.5
    cooldown: float = 1.0
    burst: float = 1.0
    probe: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    buckets: dict[str, AdaptiveBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: threading.BoundedSemaphore | None = None

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_in_flight)

    def quota(self, api: str) -> Quota:
        return quota_of(self.quotas, api, self.default)

    def _bucket(self, api: str) -> AdaptiveBucket:
        bucket = self.buckets.get(api)
        if bucket is None:
            seed = self.quota(api).tps
            bucket = AdaptiveBucket(seed, ceiling=seed * max(1.0, self.probe), burst=self.burst, stamp=self.clock())
            self.buckets[api] = bucket
        return bucket

    def acquire(self, api: str) -> float:
        """Take a token for one request to `api`, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            wait = self._bucket(api).reserve(self.clock())
        if wait > 0:
            self.sleep(wait)
        return wait

    def succeeded(self, api: str) -> None:
        with self._lock:
            self._bucket(api).succeed(self.increase)

    def throttled(self, api: str) -> bool:
        """Record a Throttled answer; True when it lowered the rate."""
        with self._lock:
            return self._bucket(api).throttle(self.clock(), self.decrease, self.cooldown)

    @contextmanager
    def guard(self, api: str) -> Iterator[None]:
        """Around one wire call: a slot among the requests in flight, a token, then AIMD feedback from the
        outcome (`Throttled` decreases; any other error is the caller's business and leaves the rate alone)."""
        assert self._slots is not None
        self.acquire(api)
        with self._slots:
            try:
                yield
            except Throttled:
                self.throttled(api)
                raise
        self.succeeded(api)

    def rate(self, api: str) -> float:
        with self._lock:
            return self._bucket(api).rate

    def stats(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                api: {
                    "seed": b.seed,
                    "rate": round(b.rate, 3),
                    "successes": b.successes,
                    "throttles": b.throttles,
                    "waitedSeconds": round(b.waited, 3),
                }
                for api, b in sorted(self.buckets.items())
            }


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _loopback(url: str | None) -> bool:
    from urllib.parse import urlparse

    return bool(url) and (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def limiter_from_env(
    env: Mapping[str, str], quotas: Mapping[str, Quota], endpoint: str | None, *, default: Quota | None = None
) -> RateLimiter | None:
    """The limiter a client should use, from FLEETCTL_RATE_LIMIT (`auto` | `on` | `off`) and FLEETCTL_QUOTAS.

    `auto` (the default) paces every cloud endpoint and leaves a loopback emulator unpaced, because a local
    emulator has no quotas to respect unless it was started quota-faithful (`fleetctl sandbox up
    --quota-faithful` exports FLEETCTL_RATE_LIMIT=on). FLEETCTL_RATE_PROBE=F lets AIMD climb to F× the quotas.
    """
    mode = (env.get("FLEETCTL_RATE_LIMIT") or "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"FLEETCTL_RATE_LIMIT must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and _loopback(endpoint)):
        return None
    probe = float(env.get("FLEETCTL_RATE_PROBE") or 1.0)
    return RateLimiter(with_overrides(quotas, overrides_from_env(env)), default=default, probe=probe)


def aws_limiter(env: Mapping[str, str], endpoint: str | None) -> RateLimiter | None:
    return limiter_from_env(env, AWS_IOT_QUOTAS, endpoint, default=AWS_DEFAULT)
