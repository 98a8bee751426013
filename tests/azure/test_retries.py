"""The Azure retry policy (engine/providers/azure/retries.py, on tenacity): what is retried, how long it waits, what
it counts — the same schedule as the hand-written policy it replaced for Azure (engine/retry.py, still AWS's)."""
from __future__ import annotations

import random

import pytest

from engine import errors
from engine.providers.azure.retries import AzureRetry
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
    slept, old_slept = [], []
    fn, calls = failing(failures)
    counted = []
    policy = AzureRetry(sleep=slept.append, rng=random.Random(7), on_retry=lambda e, n: counted.append((e, n)))
    assert policy.run(fn) == "ok" and len(calls) == 4
    assert [n for _, n in counted] == [1, 2, 3] and [e for e, _ in counted] == failures
    old_fn, _ = failing(failures)
    RetryPolicy(sleep=old_slept.append, rng=random.Random(7)).run(old_fn)
    assert slept == old_slept and all(0 <= d <= 0.2 * 2 ** (i + 1) for i, d in enumerate(slept))


def test_retry_after_is_a_floor_and_the_cap_bounds_the_backoff() -> None:
    slept: list[float] = []
    fn, _ = failing([errors.Throttled("429", retry_after=3.0)] + [errors.Throttled("429")] * 6)
    AzureRetry(sleep=slept.append, cap=1.0).run(fn)
    assert slept[0] >= 3.0 and all(d <= 1.0 for d in slept[1:])


@pytest.mark.parametrize("exc", [errors.NotFound("gone"), errors.Conflict("exists"), errors.Invalid("bad"),
                                 errors.PreconditionFailed("etag")])
def test_logic_errors_are_never_retried(exc: errors.ProviderError) -> None:
    fn, calls = failing([exc])
    with pytest.raises(type(exc)):
        AzureRetry(sleep=lambda _: pytest.fail("slept")).run(fn)
    assert len(calls) == 1


def test_the_last_error_is_raised_after_max_attempts() -> None:
    last = errors.Throttled("still 429")
    fn, calls = failing([errors.Throttled("429")] * 2 + [last])
    with pytest.raises(errors.Throttled) as raised:
        AzureRetry(max_attempts=3, sleep=lambda _: None).run(fn)
    assert raised.value is last and len(calls) == 3
