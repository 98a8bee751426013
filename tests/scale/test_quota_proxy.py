"""The quota-faithful sandbox: AWS IoT's default quotas, page sizes and latency in front of moto."""

from __future__ import annotations

import json
import re
import stat
import time
import urllib.request

import botocore.session
import pytest

from engine import errors
from engine.providers.aws.client import AwsClient
from engine.quotas import AWS_IOT_QUOTAS, with_overrides
from engine.ratelimit import aws_limiter
from engine.sandbox import manager
from engine.sandbox.quota_proxy import QuotaProxy


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def proxy_on(aws_env, moto_server):
    started: list[QuotaProxy] = []

    def start(**kw) -> QuotaProxy:
        proxy = QuotaProxy(moto_server, latency_ms=(0, 0), **kw).start()
        started.append(proxy)
        return proxy

    yield start
    for p in started:
        p.stop()


def test_every_iot_operation_is_recognised_by_method_and_path(proxy_on):
    proxy = proxy_on()
    model = botocore.session.get_session().get_service_model("iot")
    wrong = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = re.sub(r"\{[^}]+\}", "sample-value", http["requestUri"].split("?")[0])
        op = proxy.match(http["method"], path)
        if op is None or op.name != name:
            wrong.append(name)
    assert wrong == [] and len(model.operation_names) > 250


def test_an_empty_bucket_answers_429_throttling_exception(proxy_on):
    clock = FrozenClock()  # no refill: exactly the one-second burst is available
    proxy = proxy_on(clock=clock)
    iot = AwsClient("eu-west-2", endpoint_url=proxy.endpoint_url)
    iot.retry.max_attempts = 1
    for _ in range(10):  # ListThings: 10 TPS
        iot.call("list_things", maxResults=10)
    with pytest.raises(errors.Throttled) as caught:
        iot.call("list_things", maxResults=10)
    assert caught.value.code == "ThrottlingException" and caught.value.status == 429
    assert iot.call("describe_endpoint", endpointType="iot:Data-ATS")  # other APIs have their own buckets
    clock.now += 0.1  # one token back
    iot.call("list_things", maxResults=10)
    stats = json.loads(urllib.request.urlopen(proxy.endpoint_url + "/_proxy/stats").read())
    assert stats["calls"]["ListThings"] == 12 and stats["throttled"] == {"ListThings": 1}


def test_page_sizes_above_the_documented_maximum_are_rejected(proxy_on):
    iot = AwsClient("eu-west-2", endpoint_url=proxy_on().endpoint_url)
    with pytest.raises(errors.Invalid) as caught:
        iot.call("list_thing_types", maxResults=500)
    assert caught.value.code == "InvalidRequestException" and "between 1 and 250, got 500" in str(caught.value)


def test_lists_moto_returns_whole_are_paged_as_aws_pages_them(proxy_on):
    proxy = proxy_on()
    iot = AwsClient("eu-west-2", endpoint_url=proxy.endpoint_url)
    doc = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
    )
    for i in range(5):
        iot.call("create_policy", policyName=f"p{i}", policyDocument=doc)
    names = [
        p["policyName"]
        for p in iot.pages(
            "list_policies", "policies", page_size=2, size_arg="pageSize", token_in="marker", token_out="nextMarker"
        )
    ]
    assert sorted(names) == ["p0", "p1", "p2", "p3", "p4"]
    assert iot.calls["list_policies"] == 3  # 2 + 2 + 1, as AWS would answer
    assert proxy.stats.repaged["ListPolicies"] == 3


def test_the_client_limiter_backs_off_when_the_real_quota_is_lower(proxy_on):
    """W13 in small: the account's ListThings quota is 4 TPS but fleetctl was told 40 (FLEETCTL_QUOTAS)."""
    proxy = proxy_on(quotas=with_overrides(AWS_IOT_QUOTAS, {"ListThings": 4}))
    limiter = aws_limiter({"FLEETCTL_RATE_LIMIT": "on", "FLEETCTL_QUOTAS": "ListThings=40"}, proxy.endpoint_url)
    assert limiter is not None
    iot = AwsClient("eu-west-2", endpoint_url=proxy.endpoint_url, limiter=limiter)
    iot.retry.base = 0.05
    started = time.monotonic()
    for _ in range(16):
        iot.call("list_things", maxResults=1)  # retried on 429; never fails
    assert iot.calls["list_things"] > 16 and iot.throttles > 0
    assert limiter.rate("ListThings") < 40 and limiter.stats()["ListThings"]["throttles"] >= 1
    assert time.monotonic() - started < 10


def test_sandbox_up_quota_faithful_starts_the_proxy_and_paces_fleetctl(tmp_path, monkeypatch):
    monkeypatch.delitem(manager.EMULATORS, "azure")  # its quota options are checked below; AWS is started
    text = manager.up(tmp_path, quota_faithful=True)
    try:
        values = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines())
        assert values["FLEETCTL_RATE_LIMIT"] == "on"
        stats = json.loads(urllib.request.urlopen(values["AWS_ENDPOINT_URL"] + "/_proxy/stats", timeout=10).read())
        assert stats["total"] == 0
        args = manager.quota_args("azure")
        assert args[:2] == ["--rates", "registry=1.667,query=0.3333,twin_read=100,twin_update=50,dps=16.67,jobs=1.667"]
        assert args[-2:] == ["--job-rate", "277.8"]
        pids = json.loads((manager.state_dir(tmp_path) / "pids.json").read_text())
        assert set(pids) >= {"aws", "aws-quota-proxy"}
        for private in (manager.env_file(tmp_path), manager.state_dir(tmp_path) / "aws.json"):  # issue 13 §6
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    finally:
        assert "aws-quota-proxy" in manager.down(tmp_path)


def test_a_throttled_mutating_call_is_retried_counted_and_its_attempts_journaled(proxy_on):
    """The retry policy (engine/retry.py) sits above the wire: the proxy's 429s are retried, each retry of a
    throttled call is counted in `throttles`, and the journal line of the call says how many attempts it took."""
    clock = FrozenClock()  # the bucket refills only as the retry policy's waits pass
    proxy = proxy_on(clock=clock, quotas=with_overrides(AWS_IOT_QUOTAS, {"CreateThing": 2}))
    iot = AwsClient("eu-west-2", endpoint_url=proxy.endpoint_url)

    def wait(seconds: float) -> None:
        clock.now += seconds

    iot.retry.sleep = wait
    entries: list[dict] = []
    iot.hook = lambda op, phase, request_id, exc, **extra: entries.append({"op": op, "phase": phase, **extra})
    for i in range(5):  # 2 in the burst, then each waits for the bucket
        iot.call("create_thing", thingName=f"retried-{i}")
    successes = [e for e in entries if e["phase"] == "success"]
    assert len(successes) == 5 and [e["op"] for e in successes] == ["create_thing"] * 5
    retried = [e for e in successes if "attempts" in e]
    assert retried and all(e["attempts"] > 1 for e in retried)
    assert sum(e.get("attempts", 1) - 1 for e in successes) == iot.throttles == iot.calls["create_thing"] - 5
