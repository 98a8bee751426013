"""`fleetctl import` against moto's server: adopt script-built AWS accounts as they are.

Accounts are built with boto3 the way registerDevice.py and consoles build them (tests/importer/accounts.py);
the import runs through the real CLI (or run_import, to count calls and interrupt it), and `fleetctl plan` on
what it wrote must show no changes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine import run
from engine.importer import aws as aws_importer
from engine.importer.checkpoint import DATA_DIR, STATE_FILE
from engine.importer.core import run_import
from engine.importer.model import ImportRequest
from engine.pki import cert_info
from engine.providers.aws.client import is_mutating
from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS
from engine.ratelimit import RateLimiter
from tests.conftest import ROOT, run_cli
from tests.importer.accounts import CERTS, iot, mixed_account, register_device, script_fleet, targets_only

GOLDEN = ROOT / "tests" / "importer" / "golden" / "small"


def do_import(fleet: Path, out: Path, *extra: str):
    return run_cli("import", "--target", "aws-eu", "--fleet", str(fleet), "--out", str(out), "--no-rate-limit", *extra)


def plan(path: Path, *extra: str):
    return run_cli("plan", str(path), "--detailed-exitcode", *extra)


def written(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def docs(out: Path, kind_file: str) -> dict[str, dict]:
    from engine.manifest.loader import parse_text

    found, diags = parse_text((out / "aws-eu" / kind_file).read_text(), kind_file)
    assert not diags
    return {d.data["metadata"]["name"]: d.data for d in found}


def test_round_trip_every_kind_plans_clean(aws_env, tmp_path):
    c = iot()
    ids = mixed_account(c)
    c.create_thing(thingName="console-full", attributePayload={"attributes": {"a": "1", "b": "2", "c": "3"}})
    fleet, out = targets_only(tmp_path), tmp_path / "imported"
    res = do_import(fleet, out)
    assert res.exit_code == 0, res.output
    assert "Imported 20 resource(s)" in res.stdout
    files = written(out)
    for kind_file in (
        "thing-types",
        "thing-groups",
        "policies",
        "ca-certificates",
        "certificates",
        "things",
        "topic-rules",
    ):
        assert f"aws-eu/{kind_file}.yaml" in files
    after = plan(out)
    assert after.exit_code == 0, after.output
    assert "No changes." in after.stdout

    certs = docs(out, "certificates.yaml")
    assert set(certs) == {
        "246F28A1B2C3-cert",
        "246F28A1B2C3-cert-2",
        "246F28A1B2C4-cert",
        "DA1275B0-cert",
        f"cert-{ids['orphan'][:12]}",
    }
    assert certs["246F28A1B2C3-cert"]["spec"]["status"] == "ACTIVE"  # the ACTIVE one keeps the plain name
    assert certs["246F28A1B2C3-cert-2"]["spec"]["status"] == "INACTIVE"
    assert certs["DA1275B0-cert"]["spec"]["caCertificate"] == "springcore-sandbox-ca"
    things = docs(out, "things.yaml")
    assert things["246F28A1B2C3"]["spec"] == {
        "thingType": "IoTReady",
        "attributes": {"owner": "alice"},
        "groups": [],
        "principals": ["246F28A1B2C3-cert", "246F28A1B2C3-cert-2"],
    }
    assert things["bench-42"]["spec"]["attributes"] == {"code": "007", "flag": "yes"}  # strings stay strings
    assert "console-full" not in things
    assert docs(out, "thing-types.yaml")["legacy"]["spec"] == {"deprecated": True}
    summary = files["IMPORT.md"]
    assert f"`aws/aws-eu/Certificate/cert-{ids['orphan'][:12]}`: ACTIVE but attached to no thing" in summary
    assert "`aws/aws-eu/Thing/console-full`: it has no thing type and 3 attributes" in summary
    assert files["aws-eu/things.yaml"].startswith(
        "# imported from aws/aws-eu/Thing/246F28A1B2C3 on 2026-11-21T10:00:00Z\n"
    )
    assert not (out / STATE_FILE).exists() and not (out / DATA_DIR).exists()


def test_no_private_key_is_ever_written_and_pems_are_the_registered_certificates(aws_env, tmp_path):
    c = iot()
    ids = script_fleet(c, ["246F28A1B2C3", "246F28A1B2C4", "246F28A1B2C5"])
    out = tmp_path / "imported"
    assert do_import(targets_only(tmp_path), out).exit_code == 0
    for rel, text in written(out).items():
        assert "PRIVATE KEY" not in text, rel
    for mac, cert_id in ids.items():
        pem = (out / "certs" / f"{mac}-cert.pem").read_text()
        assert cert_info(pem).cert_id == cert_id
        assert pem == c.describe_certificate(certificateId=cert_id)["certificateDescription"]["certificatePem"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_import_only_reads_and_paces_every_call_at_its_quota(aws_env, tmp_path):
    script_fleet(iot(), ["246F28A1B2C3", "246F28A1B2C4", "246F28A1B2C5"])
    clock = FakeClock()
    limiter = RateLimiter(AWS_IOT_QUOTAS, default=AWS_DEFAULT, clock=clock, sleep=clock.sleep, burst=0.1)
    report = run_import(
        ImportRequest("aws-eu", tmp_path / "out", targets_only(tmp_path)), run.Context(), limiter=limiter
    )
    assert report.calls and not [op for op in report.calls if is_mutating(op)]
    paced = limiter.stats()
    # every call went through its API's bucket; all succeeded but GetV2LoggingOptions, which AWS (and the sandbox)
    # answers NotConfiguredException on an account whose v2 logging was never set (the import says so)
    assert len(paced) == len(report.calls) and paced["GetV2LoggingOptions"]["successes"] == 0
    assert sum(b["successes"] for b in paced.values()) == sum(report.calls.values()) - 1
    assert paced["ListThingPrincipals"]["successes"] == 3 and paced["DescribeCertificate"]["successes"] == 3
    assert paced["ListThingPrincipals"]["seed"] == 10  # research/quotas.md §1.1
    assert paced["ListThingPrincipals"]["waitedSeconds"] > 0  # 3 calls at 10/s, no burst: they wait
    assert report.paced_seconds == pytest.approx(sum(b["waitedSeconds"] for b in paced.values()))


def test_adopt_plans_one_marker_update_per_resource_then_nothing(aws_env, tmp_path):
    c = iot()
    mixed_account(c)
    out = tmp_path / "imported"
    res = do_import(targets_only(tmp_path), out, "--adopt")
    assert res.exit_code == 0, res.output
    assert 'fleetctl.io/adopt: "true"' in (out / "aws-eu" / "things.yaml").read_text()
    first = plan(out, "--out", str(tmp_path / "adopt.json"))
    assert first.exit_code == 2, first.output
    changes = json.loads((tmp_path / "adopt.json").read_text())["changes"]
    kinds = {ch["kind"] for ch in changes}
    assert kinds == {"aws.Thing", "aws.ThingGroup", "aws.ThingType", "aws.Policy", "aws.CACertificate", "aws.TopicRule"}
    assert len(changes) == 4 + 2 + 3 + 2 + 1 + 1  # things, groups, types, policies, CA, rule
    for ch in changes:
        assert ch["action"] == "update"
        assert ch["fields"] == [{"op": "add", "path": "managedBy", "before": None, "after": "fleetctl"}]
    assert "add the ownership marker attribute managed-by=fleetctl" in first.stdout
    applied = run_cli("apply", str(tmp_path / "adopt.json"), "--fleet", str(out))
    assert applied.exit_code == 0, applied.output
    assert plan(out).exit_code == 0
    assert c.describe_thing(thingName="DA1275B0")["attributes"] == {
        "serial": "DA1275B0",
        "site": "paris",
        "floor": "-2",
        "managed-by": "fleetctl",
    }
    group = c.describe_thing_group(thingGroupName="paris-readers")["thingGroupProperties"]
    assert group["attributePayload"]["attributes"] == {"site": "paris", "managed-by": "fleetctl"}
    assert group["thingGroupDescription"] == "Paris"
    arn = c.get_policy(policyName="pubSubToAny")["policyArn"]
    assert {"Key": "managed-by", "Value": "fleetctl"} in c.list_tags_for_resource(resourceArn=arn)["tags"]
    assert len(c.list_certificates()["certificates"]) == 5  # nothing rotated or recreated


def test_without_adopt_prune_never_touches_imported_resources(aws_env, tmp_path):
    ids = script_fleet(iot(), ["246F28A1B2C3", "246F28A1B2C4"])
    out = tmp_path / "imported"
    assert do_import(targets_only(tmp_path), out).exit_code == 0
    assert "fleetctl.io/adopt" not in "".join(t for f, t in written(out).items() if f.endswith(".yaml"))
    (out / "aws-eu" / "things.yaml").unlink()
    (out / "aws-eu" / "certificates.yaml").unlink()
    res = plan(out, "--prune", "--out", str(tmp_path / "p.json"))
    assert res.exit_code == 0, res.output  # unmarked: never pruned, listed as unmanaged
    assert "aws/aws-eu/Thing/246F28A1B2C3" in json.loads((tmp_path / "p.json").read_text())["unmanaged"]
    assert {t["thingName"] for t in iot().list_things()["things"]} == {"246F28A1B2C3", "246F28A1B2C4"}
    assert len(iot().list_certificates()["certificates"]) == len(ids)


def test_import_into_the_fleet_skips_what_it_declares(aws_env, fleet_dir):
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    c = iot()
    script_fleet(c, ["246F28A1B2C3"])
    cert = register_device(c, "246F28A1B2C4", thing_type="springpark")
    c.attach_policy(
        policyName="reader-policy",
        target=c.describe_certificate(certificateId=cert)["certificateDescription"]["certificateArn"],
    )  # a script reusing the fleet's policy
    out = fleet_dir / "imported"
    res = do_import(fleet_dir, out)
    assert res.exit_code == 0, res.output
    assert "already declared in" in res.stdout
    assert not (out / "target.yaml").exists()  # the fleet's Target is used
    assert set(docs(out, "things.yaml")) == {"246F28A1B2C3", "246F28A1B2C4"}
    assert docs(out, "certificates.yaml")["246F28A1B2C4-cert"]["spec"]["policies"] == ["pubSubToAny", "reader-policy"]
    assert "springpark" not in docs(out, "thing-types.yaml")
    assert plan(fleet_dir).exit_code == 0


def test_filters_and_kinds_select_things_and_what_they_need(aws_env, tmp_path):
    mixed_account(iot())
    out = tmp_path / "imported"
    res = do_import(targets_only(tmp_path), out, "--kinds", "Thing", "--filter", "group=paris-*")
    assert res.exit_code == 0, res.output
    assert set(docs(out, "things.yaml")) == {"DA1275B0"}
    assert set(docs(out, "thing-groups.yaml")) == {"paris-readers", "readers"}  # its group and the parent
    assert set(docs(out, "certificates.yaml")) == {"DA1275B0-cert"}
    assert set(docs(out, "policies.yaml")) == {"reader-policy"}
    assert set(docs(out, "ca-certificates.yaml")) == {"springcore-sandbox-ca"}
    assert not (out / "aws-eu" / "topic-rules.yaml").exists()
    assert plan(out).exit_code == 0


class Interrupt(Exception):
    pass


class Interrupting(RateLimiter):
    """The real limiter (unpaced here) that records every request's API and stops the import on cue."""

    def __init__(self, api: str = "", after: int = 0) -> None:
        super().__init__({}, default=None)
        self.api, self.after, self.seen = api, after, []

    def acquire(self, api: str) -> float:
        self.seen.append(api)
        if api == self.api and self.seen.count(api) > self.after:
            raise Interrupt(api)
        return 0.0


def test_interrupted_import_resumes_without_rereading_finished_kinds(aws_env, tmp_path, monkeypatch):
    script_fleet(iot(), [f"246F28A1B2{i:02X}" for i in range(7)])
    fleet = targets_only(tmp_path)
    reference = tmp_path / "reference"
    run_import(ImportRequest("aws-eu", reference, fleet, page_size=2), run.Context())

    out = tmp_path / "imported"
    request = ImportRequest("aws-eu", out, fleet, page_size=2)
    with pytest.raises(Interrupt):  # after two pages of things (4 things and their certificate links)
        run_import(request, run.Context(), limiter=Interrupting("ListThings", 2))
    state = json.loads((out / STATE_FILE).read_text())
    assert state["pages"]["aws.Thing"]["pages"] == 2 and state["pages"]["aws.Thing"]["count"] == 4
    assert "aws.Policy" in state["kinds"] and "aws.Thing" not in state["kinds"]
    refused = do_import(fleet, out)
    assert refused.exit_code == 1 and "--resume" in refused.stderr

    monkeypatch.setattr(aws_importer, "MATERIAL_BATCH", 3)
    resumed = ImportRequest("aws-eu", out, fleet, page_size=2, resume=True)
    second = Interrupting("DescribeCertificate", 4)
    with pytest.raises(Interrupt):  # now during the certificates' PEMs: one batch of 3 is kept
        run_import(resumed, run.Context(), limiter=second)
    assert not {"ListPolicies", "ListThingTypes", "ListCertificates", "ListThingGroups"} & set(second.seen)
    assert second.seen.count("ListThings") == 2 and second.seen.count("ListThingPrincipals") == 3

    third = Interrupting()
    report = run_import(resumed, run.Context(), limiter=third)
    assert third.seen == ["DescribeCertificate"] * 4  # the 4 not kept before
    from engine.importer.aws import EXPORTERS

    assert report.resumed == sorted(EXPORTERS)  # every kind the import writes, none read again
    assert {"aws.BillingGroup", "aws.ServiceRole", "aws.LoggingOptions", "aws.TopicRuleDestination"} <= set(EXPORTERS)
    assert written(out) == written(reference)
    assert plan(out).exit_code == 0


def test_refuses_to_write_over_manifests_and_to_resume_another_import(aws_env, tmp_path):
    fleet = targets_only(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "things.yaml").write_text("# hand-written\n")
    res = do_import(fleet, busy)
    assert res.exit_code == 1 and "is not empty (things.yaml)" in res.stderr
    assert (busy / "things.yaml").read_text() == "# hand-written\n"
    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        run_import(ImportRequest("aws-eu", out, fleet), run.Context(), limiter=Interrupting("ListThingTypes", 0))
    res = do_import(fleet, out, "--resume", "--kinds", "Policy")
    assert res.exit_code == 1 and "--resume must repeat the interrupted import's options" in res.stderr
    for args, message in (
        (("--kinds", "Gadget"), "unknown kind(s) for --kinds: Gadget"),
        (("--filter", "colour=red"), "unknown filter key(s): colour"),
        (("--filter", "nonsense"), "is not KEY=GLOB"),
    ):
        res = do_import(fleet, tmp_path / "other", *args)
        assert res.exit_code != 0 and message in res.output and "Traceback" not in res.output
    res = run_cli("import", "--target", "aws-us", "--fleet", str(fleet), "--out", str(tmp_path / "o"))
    assert res.exit_code == 1 and "no Target named 'aws-us'" in res.stderr and "declared targets: aws-eu" in res.stderr


def _golden_account(c) -> None:
    """A small account with fixed (committed, public) certificates, so the output is byte-stable."""
    c.create_thing_type(thingTypeName="IoTReady", thingTypeProperties={"thingTypeDescription": "ESP32 boards"})
    c.create_policy(
        policyName="pubSubToAny",
        policyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iot:*"], "Resource": ["*"]}]}
        ),
    )
    c.create_thing_group(thingGroupName="workshop")
    ca_pem = (CERTS / "springcore-sandbox-ca.pem").read_text()
    c.register_ca_certificate(
        caCertificate=ca_pem,
        setAsActive=True,
        verificationCertificate=(CERTS / "springcore-sandbox-ca-verification.pem").read_text(),
    )
    for i, serial in enumerate(("da1275b0", "da1275b1", "da1275b2")):
        arn = c.register_certificate(
            certificatePem=(CERTS / f"{serial}.pem").read_text(), caCertificatePem=ca_pem, status="ACTIVE"
        )["certificateArn"]
        c.attach_principal_policy(policyName="pubSubToAny", principal=arn)
        if i < 2:  # the third one is an orphan: a registration that never reached create_thing
            mac = f"246F28A1B2C{i}"
            c.create_thing(thingName=mac, thingTypeName="IoTReady", attributePayload={"attributes": {"owner": "lab"}})
            c.attach_thing_principal(thingName=mac, principal=arn)
            c.add_thing_to_thing_group(thingGroupName="workshop", thingName=mac)
    c.create_topic_rule(
        ruleName="telemetry",
        topicRulePayload={
            "sql": "SELECT * FROM 'devices/+/telemetry'",
            "actions": [
                {"republish": {"topic": "archive/${topic(2)}", "roleArn": "arn:aws:iam::123456789012:role/republish"}}
            ],
        },
    )


def test_golden_small_account(aws_env, tmp_path):
    _golden_account(iot())
    out = tmp_path / "imported"
    assert do_import(targets_only(tmp_path), out, "--adopt").exit_code == 0
    got = written(out)
    if os.environ.get("FLEETCTL_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    assert got == written(GOLDEN)
