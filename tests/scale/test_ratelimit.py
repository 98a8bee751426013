"""Quota-aware pacing: token buckets at the default quotas, AIMD on throttling, on an injected clock."""

from __future__ import annotations

import pytest

from engine import errors
from engine.estimate import duration, estimate, estimate_line
from engine.model import Action, Address, Change
from engine.quotas import (
    AWS_DEFAULT,
    AWS_IOT_QUOTAS,
    Quota,
    azure_hub_quotas,
    azure_operation_class,
    overrides_from_env,
)
from engine.ratelimit import AdaptiveBucket, RateLimiter, aws_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, **kw) -> RateLimiter:
    return RateLimiter(AWS_IOT_QUOTAS, clock=clock, sleep=clock.sleep, **kw)


def test_a_bucket_paces_at_the_default_quota_after_its_one_second_burst():
    clock = FakeClock()
    lim = limiter(clock)
    waits = [lim.acquire("ListThingPrincipals") for _ in range(30)]  # 10 TPS
    assert waits[:10] == [0.0] * 10  # the idle bucket holds one second
    assert waits[10:] == pytest.approx([0.1] * 20)  # then one request every 100 ms
    assert clock.now == pytest.approx(102.0)  # 30 requests: 1 s burst + 20 × 0.1 s
    # APIs have buckets of their own: DescribeThing (350 TPS) does not wait behind ListThingPrincipals
    assert lim.acquire("DescribeThing") == 0.0


def test_unknown_apis_use_the_default_and_overrides_raise_a_quota():
    clock = FakeClock()
    assert limiter(clock).quota("ListSomethingNew").tps == 10
    lim = RateLimiter(
        {**AWS_IOT_QUOTAS, "AttachPolicy": Quota("AttachPolicy", 100, "configured")}, clock=clock, sleep=clock.sleep
    )
    assert [lim.acquire("AttachPolicy") for _ in range(101)][-1] == pytest.approx(0.01)
    assert overrides_from_env({"FLEETCTL_QUOTAS": "AttachPolicy=100, CreateThing=200"}) == {
        "AttachPolicy": 100.0,
        "CreateThing": 200.0,
    }
    with pytest.raises(ValueError, match="expected API=TPS with a positive rate, got 'AttachPolicy=fast'"):
        overrides_from_env({"FLEETCTL_QUOTAS": "AttachPolicy=fast"})


def test_throttling_halves_the_rate_once_per_cooldown_and_success_adds_it_back():
    clock = FakeClock()
    lim = limiter(clock, decrease=0.5, increase=0.05, cooldown=1.0)
    api = "ListThings"  # 10 TPS
    assert lim.throttled(api) is True and lim.rate(api) == 5.0
    # requests that were in flight when the quota was hit come back throttled too: one event, not four
    assert [lim.throttled(api) for _ in range(3)] == [False, False, False] and lim.rate(api) == 5.0
    clock.now += 1.5
    assert lim.throttled(api) is True and lim.rate(api) == 2.5
    # additive increase: +5% of the quota per second of successful traffic, up to the quota, never above
    successes = 0
    while lim.rate(api) < 10.0:
        lim.succeeded(api)
        successes += 1
    # +0.5 TPS per second of traffic: 15 s to climb from 2.5 to 10, i.e. ∫ rate dt ≈ 6.25 × 15 ≈ 94 requests
    assert 90 <= successes <= 98
    lim.succeeded(api)
    assert lim.rate(api) == 10.0


def test_after_a_decrease_requests_wait_at_the_lower_rate():
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(10):
        lim.acquire("ListThings")
    lim.throttled("ListThings")  # 10 → 5 TPS, and the idle burst is spent
    waits = [lim.acquire("ListThings") for _ in range(5)]
    assert waits == pytest.approx([0.2] * 5)


def test_probing_climbs_above_the_configured_quota_only_when_asked():
    clock = FakeClock()
    lim = limiter(clock, probe=2.0)
    for _ in range(2000):
        lim.succeeded("ListThings")
    assert lim.rate("ListThings") == 20.0


def test_guard_decreases_on_throttled_only():
    clock = FakeClock()
    lim = limiter(clock)
    with pytest.raises(errors.Throttled), lim.guard("AttachPolicy"):
        raise errors.Throttled("Rate exceeded", code="ThrottlingException")
    assert lim.rate("AttachPolicy") == 7.5
    clock.now += 5
    with pytest.raises(errors.NotFound), lim.guard("AttachPolicy"):
        raise errors.NotFound("no such policy")
    assert lim.rate("AttachPolicy") == 7.5  # a logic error says nothing about the quota
    with lim.guard("AttachPolicy"):
        pass
    stats = lim.stats()["AttachPolicy"]
    assert stats["throttles"] == 1 and stats["successes"] == 1 and stats["seed"] == 15


def test_the_limiter_is_on_for_clouds_and_off_for_a_plain_local_emulator():
    assert aws_limiter({}, None) is not None  # real AWS
    assert aws_limiter({}, "https://iot.eu-west-2.amazonaws.com") is not None
    assert aws_limiter({}, "http://127.0.0.1:5000") is None  # moto: no quotas to respect
    assert aws_limiter({"FLEETCTL_RATE_LIMIT": "on"}, "http://127.0.0.1:5000") is not None  # quota-faithful
    assert aws_limiter({"FLEETCTL_RATE_LIMIT": "off"}, None) is None
    raised = aws_limiter({"FLEETCTL_QUOTAS": "ListThings=20"}, None)
    assert raised is not None and raised.quota("ListThings").tps == 20
    with pytest.raises(ValueError, match="auto, on or off"):
        aws_limiter({"FLEETCTL_RATE_LIMIT": "maybe"}, None)


def test_azure_hub_throttles_per_tier_and_unit():
    s1 = azure_hub_quotas("S1", 1)
    assert s1["registry"].tps == pytest.approx(100 / 60) and s1["query"].tps == pytest.approx(20 / 60)
    assert s1["twin_read"].tps == 100 and s1["dps"].tps == pytest.approx(1000 / 60)
    assert azure_hub_quotas("S1", 10)["registry"].tps == pytest.approx(1000 / 60)
    assert azure_hub_quotas("S3", 2)["registry"].tps == pytest.approx(2 * 5000 / 60)
    assert azure_hub_quotas("S2", 30)["twin_read"].tps == 300 and azure_hub_quotas("S2", 2)["twin_read"].tps == 100
    with pytest.raises(ValueError, match="unknown IoT Hub tier"):
        azure_hub_quotas("S9")
    assert [
        azure_operation_class(op)
        for op in (
            "query_iot_hub",
            "get_twin",
            "update_twin",
            "bulk_create_or_update_devices",
            "enrollment_group.query",
            "delete_device",
        )
    ] == ["query", "twin_read", "twin_update", "registry", "dps", "registry"]


def _change(kind: str, action: Action, **desired) -> Change:
    return Change(Address.of("aws", "t", kind.split(".")[1], "x"), kind, action, desired=desired)


def test_estimate_names_the_binding_quota_and_sums_waves():
    calls = {
        "aws.Certificate": {"RegisterCertificateWithoutCA": 1, "AttachPolicy": 1, "UpdateCertificate": 1},
        "aws.Thing": {"CreateThing": 1, "AttachThingPrincipal": 1},
    }
    certs = [_change("aws.Certificate", Action.CREATE) for _ in range(10_000)]
    things = [_change("aws.Thing", Action.CREATE) for _ in range(10_000)]
    est = estimate([certs, things], lambda c: calls[c.kind], AWS_IOT_QUOTAS, workers=64)
    # wave 1: 10,000 each of RegisterCertificateWithoutCA @10 and UpdateCertificate @10 → 1,000 s;
    # wave 2: CreateThing and AttachThingPrincipal @100 → 100 s
    assert est.seconds == pytest.approx(1100.0)
    assert est.binding == "RegisterCertificateWithoutCA" and est.binding_tps == 10
    assert est.calls == {
        "AttachPolicy": 10_000,
        "AttachThingPrincipal": 10_000,
        "CreateThing": 10_000,
        "RegisterCertificateWithoutCA": 10_000,
        "UpdateCertificate": 10_000,
    }
    line = estimate_line(est.to_json())
    assert line == (
        "Apply: 50,000 API calls, about 18 min 20 s at default AWS quotas (bound by "
        "RegisterCertificateWithoutCA, 10/s; raise with Service Quotas L-4671C7C8)"
    )
    # with few workers the concurrency is the bound, and the plan says so
    slow = estimate([things], lambda c: calls[c.kind], AWS_IOT_QUOTAS, workers=2, latency=0.05)
    assert slow.binding == "concurrency" and slow.seconds == pytest.approx(500.0)
    # a kind without a call table is named, not guessed
    unknown = estimate([[_change("aws.Thing", Action.DELETE)]], lambda c: None, AWS_IOT_QUOTAS)
    assert unknown.unknown == ("aws.Thing delete",) and unknown.seconds == 0


def test_attach_policy_binding_with_its_quota_code():
    changes = [_change("aws.Certificate", Action.CREATE) for _ in range(10_000)]
    est = estimate([changes], lambda c: {"AttachPolicy": 1}, AWS_IOT_QUOTAS, workers=64)
    assert estimate_line(est.to_json()) == (
        "Apply: 10,000 API calls, about 11 min 07 s at default AWS quotas (bound by "
        "AttachPolicy, 15/s; raise with Service Quotas L-CA7D4E3E)"
    )


@pytest.mark.parametrize("seconds, text", [(4.24, "4.2s"), (667, "11m07s"), (10_000, "2h46m40s"), (60, "1m00s")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_bucket_take_is_the_server_side_of_the_same_bucket():
    bucket = AdaptiveBucket(10.0, stamp=0.0)
    assert [bucket.take(0.0) for _ in range(11)] == [True] * 10 + [False]
    assert bucket.take(0.05) is False and bucket.take(0.1) is True


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.3, "under 1 s"),
        (4.24, "4.2 s"),
        (6.0, "6 s"),
        (18.4, "18 s"),
        (59.6, "1 min 00 s"),
        (200, "3 min 20 s"),
        (667, "11 min 07 s"),
        (3900, "1 h 05 min"),
        (10_000, "2 h 47 min"),
    ],
)
def test_humanised_duration(seconds, text):
    from engine.humanize import duration as human

    assert human(seconds) == text


@pytest.mark.parametrize(
    "tps, text",
    [
        (10, "10/s"),
        (100 / 60, "100/min"),
        (5000 / 60, "5,000/min"),
        (2.5, "2.5/s"),
        (1000 / 60, "1,000/min"),
        (350, "350/s"),
        (20 / 60, "20/min"),
    ],
)
def test_quota_rates_in_plain_numbers(tps, text):
    from engine.humanize import quota_rate

    assert quota_rate(tps) == text


def test_estimate_sentence_for_people():
    """The issue's example, with thousands separators, the binding API, its rate and its Service Quotas code."""
    changes = [_change("aws.Thing", Action.CREATE) for _ in range(30)]
    est = estimate([changes], lambda c: {"CreateThing": 1}, AWS_IOT_QUOTAS, workers=64)
    assert estimate_line(est.to_json()) == (
        "Apply: 30 API calls, under 1 s at default AWS quotas (bound by "
        "CreateThing, 100/s; raise with Service Quotas L-64CBACAC)"
    )
    one = estimate([changes[:1]], lambda c: {"CreateThing": 1}, AWS_IOT_QUOTAS, workers=64).to_json()
    assert estimate_line(one).startswith("Apply: 1 API call, ")
    # an API whose Service Quotas code is not known names no code (never a made-up one)
    rule = estimate([changes], lambda c: {"CreateTopicRule": 1}, AWS_IOT_QUOTAS, workers=64, default=AWS_DEFAULT)
    line = estimate_line(rule.to_json())
    assert line == (
        "Apply: 30 API calls, about 3 s at default AWS quotas (bound by CreateTopicRule, 10/s assumed; "
        "raise with a Service Quotas increase request)"
    )
    assert "L-" not in line and "TPS" not in line and "@" not in line
    # the JSON stays machine-readable: the rate as a number, the code as a field
    assert rule.to_json()["bindingTps"] == 10 and est.to_json()["quotaCode"] == "L-64CBACAC"


def test_estimate_sentence_for_an_iot_hub():
    from engine.estimate import apply_estimate

    def devices(n):
        return [
            Change(
                Address.of("azure", "hub", "Device", f"d{i}"),
                "azure.Device",
                Action.CREATE,
                desired={"deviceId": f"d{i}"},
            )
            for i in range(n)
        ]

    s1 = apply_estimate([devices(200)], {"FLEETCTL_AZURE_HUB_TIER": "S1"}, 8)
    assert s1["binding"] == "registry" and s1["hubTier"] == "S1" and s1["hubUnits"] == 1
    line = estimate_line(s1)
    assert line.startswith(
        "Apply: 200 API calls, about 2 min 00 s at the IoT Hub's S1 quotas (bound by identity "
        "registry operations, 100/min; raise with more S1 units)"
    ), line
    s3 = estimate_line(apply_estimate([devices(5000)], {"FLEETCTL_AZURE_HUB_TIER": "S3:2"}, 64))
    assert s3 == (
        "Apply: 5,000 API calls, about 30 s at the IoT Hub's S3 quotas for 2 units (bound by identity "
        "registry operations, 10,000/min; raise with more S3 units)"
    ), s3
    twins = estimate_line(
        {
            "seconds": 60,
            "binding": "twin_update",
            "mutatingCalls": 3000,
            "bindingTps": 50,
            "quotaTag": "V",
            "hubTier": "S1",
            "hubUnits": 1,
        }
    )
    assert twins.endswith("(bound by twin updates, 50/s; fixed on S1; the S3 tier raises it per unit)")


def test_an_older_plan_file_without_the_hub_tier_still_reads_as_azure():
    line = estimate_line(
        {"seconds": 120, "binding": "registry", "mutatingCalls": 200, "bindingTps": 100 / 60, "quotaTag": "V"}
    )
    assert line == (
        "Apply: 200 API calls, about 2 min 00 s at the IoT Hub's quotas (bound by identity registry "
        "operations, 100/min; raise with more hub units or a higher tier)"
    )
