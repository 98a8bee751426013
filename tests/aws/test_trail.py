"""CloudTrail parity and the event→resource table (issue 16): the quota proxy answers LookupEvents as AWS does
(called through boto3's real cloudtrail model), every mutating IoT call the provider makes has a mapping, and
snapshots are 0600, hash-checked and secret-free."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from engine import snapshot as snapshots
from engine.providers.aws import trail
from engine.sandbox.quota_proxy import QuotaProxy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy(aws_env, moto_server):
    p = QuotaProxy(moto_server, latency_ms=(0, 0)).start()
    yield p
    p.stop()


def test_every_mutating_iot_call_the_provider_makes_is_mapped():
    model = botocore.session.get_session().get_service_model("iot")
    api = {botocore.xform_name(n): n for n in model.operation_names}
    source = "\n".join(p.read_text() for p in (ROOT / "engine/providers/aws").glob("*.py"))
    called = set(re.findall(r'"([a-z_]+)"', source)) & set(api)
    from engine.providers.aws.client import is_mutating

    mutating = sorted(api[op] for op in called if is_mutating(op))
    assert len(mutating) > 30
    assert [m for m in mutating if m not in trail.EVENTS] == []


def test_lookup_events_through_boto3_pages_filters_and_hides_undelivered_events(proxy):
    iot = boto3.client("iot", region_name="eu-west-2", endpoint_url=proxy.endpoint_url)
    ct = boto3.client("cloudtrail", region_name="eu-west-2", endpoint_url=proxy.endpoint_url)
    before = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(60):
        iot.create_thing(thingName=f"t{i:02d}")
    iot.list_things()  # a read-only event
    events, token, pages = [], None, 0
    end = datetime.now(UTC) + timedelta(seconds=1)  # a NextToken needs the same parameters
    while True:
        kw = {"NextToken": token} if token else {}
        resp = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
            StartTime=before,
            EndTime=end,
            MaxResults=50,
            **kw,
        )
        events += resp["Events"]
        pages += 1
        token = resp.get("NextToken")
        if not token:
            break
    assert pages == 2 and len(events) == 60
    assert [e["EventName"] for e in events] == ["CreateThing"] * 60
    assert events[0]["EventTime"] >= events[-1]["EventTime"]  # newest first
    record = trail._record(events[-1])
    assert record["requestParameters"] == {"thingName": "t00"} and not record["readOnly"]
    assert events[-1]["Resources"] == [{"ResourceType": "AWS::IoT::Thing", "ResourceName": "t00"}]
    source = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "iot.amazonaws.com"}], MaxResults=50
    )
    assert any(e["EventName"] == "ListThings" and e["ReadOnly"] == "true" for e in source["Events"])
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(
            MaxResults=50,
            LookupAttributes=[
                {"AttributeKey": "ReadOnly", "AttributeValue": "false"},
                {"AttributeKey": "EventName", "AttributeValue": "X"},
            ],
        )
    assert exc.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(StartTime=datetime.now(UTC), EndTime=before)
    assert exc.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    proxy.trail.delay_s = 3600  # CloudTrail has not delivered it yet
    iot.create_thing(thingName="late")
    names = {
        e["Resources"][0]["ResourceName"]
        for e in ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateThing"}])[
            "Events"
        ]
    }
    assert "late" not in names


def test_lookup_events_is_throttled_at_two_per_second(proxy):
    ct = boto3.client(
        "cloudtrail",
        region_name="eu-west-2",
        endpoint_url=proxy.endpoint_url,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    codes = []
    for _ in range(6):
        try:
            ct.lookup_events(MaxResults=1)
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert "ThrottlingException" in codes and codes[:2] == ["ok", "ok"]


def test_events_map_to_the_resources_they_touch():
    arn = "arn:aws:iot:eu-west-2:123456789012:cert/" + "a" * 64
    mapped = trail.map_events(
        [
            {"eventName": "DetachThingPrincipal", "requestParameters": {"thingName": "t1", "principal": arn}},
            {"eventName": "AttachPolicy", "requestParameters": {"policyName": "p", "target": arn}},
            {
                "eventName": "AddThingToThingGroup",
                "requestParameters": {"thingArn": "arn:aws:iot:r:1:thing/t2", "thingGroupName": "g"},
            },
            {"eventName": "UpdateThing", "requestParameters": {"thingName": "t3"}, "errorCode": "VersionConflict"},
            {"eventName": "CreateJob", "requestParameters": {"jobId": "j"}},
        ],
        lambda api: frozenset({"jobId", "targets"}),
    )
    assert mapped.things == {"t1", "t2"} and mapped.failed == 1 and mapped.ignored == 1 and not mapped.every_link
    assert trail.Touch("aws.Certificate", "a" * 64) in mapped.touches
    worse = trail.map_events(
        [
            {"eventName": "DetachThingPrincipal", "requestParameters": {}},
            {"eventName": "SomeNewThingApi", "requestParameters": {"thingName": "x"}},
        ],
        lambda api: None,
    )
    assert len(worse.every_link) == 2 and "does not name the thing" in worse.every_link[0]


def test_snapshot_is_private_hash_checked_and_refused_when_edited(tmp_path):
    entry = snapshots.TargetSnapshot(
        "aws-eu",
        "aws",
        "2026-11-21T10:00:00Z",
        "2026-11-21T10:00:00Z",
        "123456789012",
        "eu-west-2",
        {"t1": ("a" * 64,)},
        ({"address": "aws/aws-eu/Thing/t1", "kind": "aws.Thing", "state": {}},),
    )
    path = snapshots.write(tmp_path / "s.snap", snapshots.Snapshot("2026-11-21T10:00:00Z", {"aws-eu": entry}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = snapshots.load(path)
    assert loaded.targets["aws-eu"] == entry and loaded.content_hash.startswith("sha256:")
    import gzip
    import json

    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["targets"]["aws-eu"]["links"]["t1"] = []
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(snapshots.SnapshotRefused, match="content hash does not match"):
        snapshots.load(path)
    path.write_bytes(b"not a snapshot")
    with pytest.raises(snapshots.SnapshotRefused, match="not a fleetctl snapshot"):
        snapshots.load(path)


def test_apply_never_reads_a_snapshot():
    import inspect

    from engine import run

    for fn in (run.apply, run.stale_check, run.check_stale):
        assert "snapshot" not in inspect.signature(fn).parameters
    from engine.cli import cli

    assert not {"since_snapshot", "snapshot_out"} & {p.name for p in cli.commands["apply"].params}


def test_drift_cli_saves_a_snapshot_and_states_what_the_incremental_read_trusted(
    aws_env, moto_server, tmp_path, monkeypatch
):
    from benchmarks.bench_aws import device_certificates, write_fleet
    from engine import run
    from tests.conftest import run_cli

    root = tmp_path / "fleet"
    write_fleet(root, 6, device_certificates(tmp_path / "certs", 6), "cert")
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    first = run.plan(root, ctx)
    assert run.apply(first.plan, ctx, root, {n: m.spec for n, m in first.fleet.targets().items()}).ok
    p = QuotaProxy(moto_server, latency_ms=(0, 0)).start()
    try:
        monkeypatch.delenv("FLEETCTL_NOW")  # CloudTrail's clock is the real one
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.endpoint_url)
        snap = tmp_path / "drift.snapshot"
        res = run_cli("drift", str(root), "--snapshot-out", str(snap))
        assert res.exit_code == 0, res.output
        assert "Read of bench: full (no --since-snapshot was given)" in res.stdout
        assert stat.S_IMODE(snap.stat().st_mode) == 0o600
        assert b"s3cr3t-aws-key-never-printed" not in __import__("gzip").decompress(snap.read_bytes())
        iot = boto3.client("iot", region_name="eu-west-2", endpoint_url=p.endpoint_url)
        arn = iot.list_thing_principals(thingName="bench-00002")["principals"][0]
        iot.detach_thing_principal(thingName="bench-00002", principal=arn)
        res = run_cli("drift", str(root), "--since-snapshot", str(snap), "--snapshot-out", str(snap))
        assert res.exit_code == 2, res.output
        assert "Read of bench: incremental from snapshot " + str(snap) in res.stdout
        assert "1 IoT change event(s) from CloudTrail" in res.stdout and "15 min of overlap" in res.stdout
        assert "certificate links re-read for 1 thing(s), taken from the snapshot for 5" in res.stdout
        assert "aws/bench/Thing/bench-00002" in res.stdout
        res = run_cli("drift", str(root), "--since-snapshot", str(snap), "--format", "json")
        reads = __import__("json").loads(res.stdout)["reads"]
        assert reads[0]["mode"] == "incremental" and reads[0]["lastFullRead"] and reads[0]["windowStart"]
        res = run_cli("drift", str(root), "--since-snapshot", str(snap), "--format", "markdown", "--full")
        assert "full (--full was given)" in res.stdout
        snap.write_bytes(b"\x1f\x8b garbage")
        res = run_cli("drift", str(root), "--since-snapshot", str(snap))
        assert "was refused: it is damaged" in res.stderr and "full (the snapshot" in res.stdout
    finally:
        p.stop()


def test_account_settings_and_destinations_map_to_their_resources_and_no_link_reread():
    mapped = trail.map_events(
        [
            {"eventName": "SetV2LoggingOptions", "requestParameters": {"defaultLogLevel": "DISABLED"}},
            {"eventName": "UpdateIndexingConfiguration", "requestParameters": {}},
            {
                "eventName": "CreateTopicRuleDestination",
                "requestParameters": {"destinationConfiguration": {}},
                "responseElements": {
                    "topicRuleDestination": {
                        "arn": "arn:aws:iot:eu-west-2:123456789012:ruledestination/http/0a1b",
                        "status": "IN_PROGRESS",
                    }
                },
            },
            {"eventName": "DeleteAuthorizer", "requestParameters": {"authorizerName": "legacy-tokens"}},
        ]
    )
    assert mapped.touches == {
        trail.Touch("aws.LoggingOptions", "account"),
        trail.Touch("aws.IndexingConfiguration", "account"),
        trail.Touch("aws.TopicRuleDestination", "http/0a1b"),
        trail.Touch("aws.Authorizer", "legacy-tokens"),
    }
    assert mapped.things == frozenset() and mapped.every_link == []  # listed in full anyway: no link is re-read
