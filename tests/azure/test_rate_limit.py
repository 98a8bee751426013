"""The Azure provider paced by the shared rate limiter (engine/ratelimit.py) against the emulator in quota mode:
paced calls stay within the hub's throttle where unpaced ones meet 429s, a 429 lowers the class's rate (AIMD),
and `auto` leaves a plain loopback emulator unpaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import errors
from engine.diagnostics import FleetctlError
from engine.manifest.fleet import load_fleet
from engine.providers.azure.provider import AzureProvider, make_provider
from engine.retry import RetryPolicy
from engine.sandbox.azure import AzureEmulator

TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: hub}
spec:
  azure:
    hub: {hostName: fleetctl-sandbox-hub.azure-devices.net, connectionString: {env: FLEETCTL_HUB_CONNECTION_STRING}}
"""


@pytest.fixture
def spec(tmp_path: Path):
    (tmp_path / "targets.yaml").write_text(TARGET)
    return load_fleet(tmp_path, resolve_secrets=False).targets()["hub"].spec


def provider(spec, emulator: AzureEmulator, **env: str) -> AzureProvider:
    values = {
        "FLEETCTL_HUB_CONNECTION_STRING": emulator.hub_connection_string,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        **env,
    }
    return make_provider("hub", spec, values)


def create(p: AzureProvider, name: str) -> None:
    p.call("create_device_with_certificate_authority", p.client.create_device, name, {"type": "x509CA"})


def test_auto_leaves_a_loopback_emulator_unpaced_and_on_seeds_the_hub_tier(spec, emulator) -> None:
    assert provider(spec, emulator).limiter is None  # auto + 127.0.0.1
    assert provider(spec, emulator, FLEETCTL_RATE_LIMIT="off").limiter is None
    paced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="on", FLEETCTL_AZURE_HUB_TIER="S1:3")
    assert paced.limiter is not None and (paced.tier, paced.units) == ("S1", 3)
    assert paced.limiter.quota("registry").tps == pytest.approx(3 * 100 / 60)
    assert paced.limiter.quota("query").tps == pytest.approx(3 * 20 / 60)
    assert paced.limiter.quota("dps").tps == pytest.approx(1000 / 60)
    for bad, words in (
        ({"FLEETCTL_AZURE_HUB_TIER": "S9"}, "unknown IoT Hub tier 'S9'"),
        ({"FLEETCTL_AZURE_HUB_TIER": "S1:two"}, "units must be a whole number"),
        ({"FLEETCTL_RATE_LIMIT": "sometimes"}, "FLEETCTL_RATE_LIMIT must be auto, on or off"),
        ({"FLEETCTL_RATE_LIMIT": "on", "FLEETCTL_QUOTAS": "registry=fast"}, "expected API=TPS"),
    ):
        with pytest.raises(FleetctlError) as refused:
            provider(spec, emulator, **bad)
        assert words in str(refused.value)


def test_paced_calls_see_no_429_where_unpaced_calls_do(spec, emulator) -> None:
    emulator.configure(rates={"registry": 5})  # the hub's registry quota: 5 requests/s
    unpaced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="off")
    unpaced.retry = RetryPolicy(max_attempts=1)  # count the 429s instead of waiting them out
    refused = 0
    for i in range(12):
        try:
            create(unpaced, f"unpaced-{i}")
        except errors.Throttled:
            refused += 1
    assert refused >= 5 and emulator.stats()["throttled"]["registry"] == refused

    emulator.reset()
    emulator.configure(rates={"registry": 5})
    paced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="on", FLEETCTL_QUOTAS="registry=5")
    for i in range(15):  # 5 at once, then one per 0.2 s: ~2 s
        create(paced, f"paced-{i}")
    assert emulator.stats()["throttled"].get("registry", 0) <= 1  # at most the first connection's TLS handshake
    stats = paced.stats()["rateLimiter"]["registry"]
    assert stats["successes"] == 15 and stats["seed"] == 5 and stats["waitedSeconds"] > 1.5

    emulator.reset()  # with IoT Hub's traffic shaping (a quarter second
    emulator.configure(rates={"registry": 5}, shaping_ms=250)  # queued before a 429, as the sandbox runs it)
    shaped = provider(spec, emulator, FLEETCTL_RATE_LIMIT="on", FLEETCTL_QUOTAS="registry=5")
    for i in range(10):
        create(shaped, f"shaped-{i}")
    assert emulator.stats()["throttled"] == {} and shaped.stats()["rateLimiter"]["registry"]["throttles"] == 0


def test_a_429_lowers_the_class_rate_and_the_retry_still_lands(spec, emulator) -> None:
    emulator.configure(rates={"registry": 4})  # the real quota is lower than configured
    paced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="on", FLEETCTL_QUOTAS="registry=40")
    for i in range(10):
        create(paced, f"aimd-{i}")
    limiter = paced.stats()["rateLimiter"]["registry"]
    assert limiter["throttles"] >= 1 and limiter["rate"] < 40 and limiter["successes"] == 10
    assert paced.throttles == limiter["throttles"]  # each 429 was retried (Retry-After) and counted
    assert len(paced.client.query_devices_page(None, None, 100)[0]) == 10


def test_query_pages_take_query_tokens_and_blob_calls_none(spec, emulator) -> None:
    paced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="on", FLEETCTL_QUOTAS="query=50,registry=50")
    for i in range(3):
        create(paced, f"q-{i}")
    paced.page_size = 1
    assert len(paced.read([], prune=True).actual) == 3  # 3 pages of 1 twin: 3 query tokens
    assert set(paced.stats()["rateLimiter"]) == {"query", "registry"}
    assert paced.stats()["rateLimiter"]["query"]["successes"] == 3


def test_a_429_retried_is_counted_and_its_attempts_journaled(spec, emulator) -> None:
    emulator.configure(rates={"registry": 2})
    unpaced = provider(spec, emulator, FLEETCTL_RATE_LIMIT="off")
    unpaced.retry.base, unpaced.retry.cap = 0.05, 0.5
    entries: list[dict] = []
    unpaced.set_hook(lambda op, phase, request_id, exc, **extra: entries.append({"phase": phase, **extra}))
    for i in range(6):
        create(unpaced, f"retried-{i}")
    successes = [e for e in entries if e["phase"] == "success"]
    assert len(successes) == 6 and any(e.get("attempts", 1) > 1 for e in successes)
    assert (
        sum(e.get("attempts", 1) - 1 for e in successes)
        == unpaced.throttles
        == emulator.stats()["throttled"]["registry"]
    )
