"""The retry policy of both providers (engine/retry.py, on tenacity): what is retried, how long it waits, what it
counts. The schedule is the one the hand-written policy it replaced had (the same draws from the same seeded source),
pinned here as numbers."""

from __future__ import annotations

import random

import pytest

from engine import errors
from engine.retry import RetryPolicy


def failing(failures: list[errors.ProviderError], result: str = "ok"):
    calls = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return fn, calls


def test_throttling_and_transient_errors_are_retried_with_the_old_schedule() -> None:
    failures = [errors.Throttled("429"), errors.Transient("503"), errors.Throttled("429")]
    slept: list[float] = []
    fn, calls = failing(failures)
    counted = []
    policy = RetryPolicy(sleep=slept.append, rng=random.Random(7), on_retry=lambda e, n: counted.append((e, n)))
    assert policy.run(fn) == "ok" and len(calls) == 4 and policy.attempts() == 4
    assert [n for _, n in counted] == [1, 2, 3] and [e for e, _ in counted] == failures
    # the hand-written policy's waits for this seed (measured on it before it was replaced)
    assert slept == [0.12953310593326495, 0.12067933913960155, 1.041495156863766]
    assert all(0 <= d <= 0.2 * 2 ** (i + 1) for i, d in enumerate(slept))


def test_retry_after_is_a_floor_and_the_cap_bounds_the_backoff() -> None:
    slept: list[float] = []
    fn, _ = failing([errors.Throttled("429", retry_after=3.0)] + [errors.Throttled("429")] * 6)
    RetryPolicy(sleep=slept.append, cap=1.0).run(fn)
    assert slept[0] >= 3.0 and all(d <= 1.0 for d in slept[1:])


@pytest.mark.parametrize(
    "exc",
    [errors.NotFound("gone"), errors.Conflict("exists"), errors.Invalid("bad"), errors.PreconditionFailed("etag")],
)
def test_logic_errors_are_never_retried(exc: errors.ProviderError) -> None:
    fn, calls = failing([exc])
    with pytest.raises(type(exc)):
        RetryPolicy(sleep=lambda _: pytest.fail("slept")).run(fn)
    assert len(calls) == 1


def test_the_last_error_is_raised_after_max_attempts() -> None:
    last = errors.Throttled("still 429")
    fn, calls = failing([errors.Throttled("429")] * 2 + [last])
    with pytest.raises(errors.Throttled) as raised:
        RetryPolicy(max_attempts=3, sleep=lambda _: None).run(fn)
    assert raised.value is last and len(calls) == 3


def test_attempts_are_per_thread_and_per_run() -> None:
    import threading

    policy = RetryPolicy(sleep=lambda _: None)
    fn, _ = failing([errors.Transient("503")] * 2)
    policy.run(fn)
    seen: list[int] = []
    worker = threading.Thread(target=lambda: (policy.run(lambda: "ok"), seen.append(policy.attempts())))
    worker.start()
    worker.join()
    assert seen == [1] and policy.attempts() == 3  # the other thread's run does not change this one's
    with pytest.raises(errors.NotFound):
        policy.run(failing([errors.NotFound("gone")])[0])
    assert policy.attempts() == 1
