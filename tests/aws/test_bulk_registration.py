"""AWS bulk registration (StartThingRegistrationTask) end to end: moto's server with the sandbox's registration
tasks (engine/sandbox/moto_bulkreg.py), S3 in the same server, boto3 through AWS_ENDPOINT_URL; no mocks.

A Target with `aws.bulkRegistration` creates a wave's new things and certificates by one task per template
shape once `threshold` of them are due (engine/providers/aws/bulkreg.py); the thresholds here are low so that a
few hundred devices take that path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from engine import run
from engine.journal import read_entries
from engine.manifest.fleet import load_fleet
from engine.plan.model import load_plan
from engine.sandbox import certs, moto_bulkreg
from engine.sandbox.moto_ext import sandbox_registration_code
from tests.conftest import ROOT, run_cli

BUCKET = "fleet-bulk"
ROLE = "arn:aws:iam::123456789012:role/fleetctl-bulk-registration"


def client(service: str):
    return boto3.client(service, region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def bulk_env(aws_env):
    """The account of aws_env plus the bucket the Target names (made by the operator, not by fleetctl)."""
    client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    moto_bulkreg.configure(pace=False)
    yield aws_env
    moto_bulkreg.configure(pace=False)


SHARED = """\
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {name: esp32, target: aws-eu}
spec: {description: ESP32 devkits}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {name: legacy, target: aws-eu}
spec: {description: the old boards}
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {name: esp32-policy, target: aws-eu}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Action: "iot:Connect", Resource: "arn:aws:iot:eu-west-2:123456789012:client/${iot:Connection.Thing.ThingName}"}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {name: esp32-fleet, target: aws-eu}
spec: {description: every ESP32}
---
apiVersion: aws.fleetctl.io/v1
kind: CACertificate
metadata: {name: esp32-ca, target: aws-eu}
spec:
  certificatePem: {file: certs/ca.pem}
  verificationCertificatePem: {file: certs/ca-verification.pem}
"""
THING = """\
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${id}", target: aws-eu}
      spec:
        thingType: esp32
        attributes: {serial: "${id}", site: "site-${index}"}
        groups: [esp32-fleet]
"""
CERT = """\
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate
      metadata: {name: "esp32-${id}", target: aws-eu}
      spec: {certificatePem: {file: "certs/${id}.pem"}, caCertificate: esp32-ca, policies: [esp32-policy]}
"""
ODD = """\
apiVersion: aws.fleetctl.io/v1
kind: Certificate
metadata: {name: odd-one, target: aws-eu}
spec: {certificatePem: {file: certs/odd.pem}, caCertificate: esp32-ca, policies: [esp32-policy]}
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: odd-one, target: aws-eu}
spec: {thingType: legacy, attributes: {serial: "x", site: "y"}, groups: [esp32-fleet], principals: [odd-one]}
"""


def write_fleet(root: Path, n: int, *, with_certs: bool = True, threshold: int = 50, wait: float = 30.0) -> Path:
    """The shared resources (types, policy, group, a registered CA) and n devices from a ThingSet range: a thing
    each (type, two attributes, one group) and, with_certs, a device certificate of the CA with the policy, held by
    its thing. `odd.yaml` (one more device of the same shapes, of the `legacy` type) is written, not enabled."""
    (root / "certs").mkdir(parents=True, exist_ok=True)
    (root / "targets.yaml").write_text(f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: aws-eu}}
spec:
  aws:
    region: eu-west-2
    bulkRegistration: {{bucket: {BUCKET}, roleArn: "{ROLE}", threshold: {threshold}, pollSeconds: 0.1,
                        waitSeconds: {wait}}}
""")
    ca = certs.make_ca("fleetctl bulk test CA")
    (root / "certs" / "ca.pem").write_text(ca.pem)
    code = sandbox_registration_code("123456789012", "eu-west-2")
    (root / "certs" / "ca-verification.pem").write_text(certs.verification_certificate(ca, code).pem)
    for i in range(n):
        (root / "certs" / f"{i:04d}.pem").write_text(certs.issue(f"esp32-{i:04d}", ca).pem)
    (root / "certs" / "odd.pem").write_text(certs.issue("odd-one", ca).pem)
    (root / "shared.yaml").write_text(SHARED)
    (root / "odd.yaml.off").write_text(ODD)
    principal = '        principals: ["esp32-${id}"]\n' if with_certs else ""
    (root / "devices.yaml").write_text(f"""\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {{name: esp32}}
spec:
  range: {{start: 0, count: {n}, width: 4}}
  template:
{CERT if with_certs else ""}{THING}{principal}""")
    return root


def plan_and_apply(root: Path, journal: Path, *, check: bool = True, plan_file: Path | None = None):
    ctx = run.Context(journal_path=journal)
    specs = {n: m.spec for n, m in load_fleet(root).targets().items()}
    plan = load_plan(str(plan_file)) if plan_file else run.plan(root, ctx).plan
    report = run.apply(plan, ctx, root, specs, check=check)
    return report, report.stats["aws/aws-eu"]


def tasks() -> list[dict]:
    iot = client("iot")
    return [iot.describe_thing_registration_task(taskId=t) for t in iot.list_thing_registration_tasks()["taskIds"]]


def test_new_devices_are_created_by_registration_tasks_and_replan_empty(bulk_env, tmp_path):
    root = write_fleet(tmp_path / "fleet", 200, with_certs=True)
    journal = Path(bulk_env["FLEETCTL_JOURNAL"])
    planned = run_cli("plan", str(root), "--out", str(tmp_path / "plan.json"))
    assert planned.exit_code == 0, planned.output
    # the plan says which changes the tasks carry: 200 certificates (wave after the CA), 200 things (after them)
    assert (
        "400 new thing(s)/certificate(s) by 2 AWS bulk registration task(s) (aws.bulkRegistration, threshold 50)"
        in planned.stdout
    ), planned.stdout
    report, stats = plan_and_apply(root, journal, plan_file=tmp_path / "plan.json")
    assert report.ok and len(report.applied) == 405, report.failed[:3]
    calls = stats["calls"]
    assert calls["start_thing_registration_task"] == 2 and stats["bulkRegistration"]["changes"] == 400
    for per_device in (
        "create_thing",
        "register_certificate",
        "attach_thing_principal",
        "attach_policy",
        "add_thing_to_thing_group",
        "update_certificate",
    ):
        assert per_device not in calls, (per_device, calls)
    assert sum(calls.values()) < 60, calls  # per-call: ~1,400 (4 registrations + 3 links per device)

    # what AWS holds is what the per-call path makes: marker attribute, type, group, certificate, its CA and policy
    iot = client("iot")
    thing = iot.describe_thing(thingName="esp32-0042")
    assert thing["thingTypeName"] == "esp32"
    assert thing["attributes"] == {"serial": "0042", "site": "site-42", "managed-by": "fleetctl"}
    assert "esp32-0042" in iot.list_things_in_thing_group(thingGroupName="esp32-fleet", maxResults=250)["things"]
    (principal,) = iot.list_thing_principals(thingName="esp32-0042")["principals"]
    desc = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[1])["certificateDescription"]
    ca_id = iot.list_ca_certificates()["certificates"][0]["certificateId"]
    assert desc["status"] == "ACTIVE" and desc["caCertificateId"] == ca_id
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == ["esp32-policy"]
    again = run_cli("plan", str(root), "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.stdout, again.output

    # the journal: a begin and a success per change, and each task's id between them
    entries = list(read_entries(journal))
    started = [e for e in entries if e["event"] == "task-started"]
    assert len(started) == 2 and all(e["op"] == "thing_registration_task" and e["taskId"] for e in started)
    ended = {e["taskId"]: e for e in entries if e["event"] == "task-ended"}
    assert {e["taskId"] for e in started} == set(ended) and all(e["status"] == "Completed" for e in ended.values())
    per_change = [e for e in entries if "address" in e and e["address"].startswith("aws/aws-eu/Thing/esp32-")]
    assert sum(e["event"] == "begin" for e in per_change) == 200 == sum(e["event"] == "success" for e in per_change)

    # the input files AWS read hold names, attributes and public certificates, never a secret
    s3 = client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="fleetctl/bulk-registration/")["Contents"]]
    assert len(keys) == 2 and {f"s3://{BUCKET}/{k}" for k in keys} == {e["input"] for e in started}
    text = "".join(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in keys)
    assert '"ThingName": "esp32-0042"' in text and "BEGIN CERTIFICATE" in text
    for secret in ("PRIVATE KEY", bulk_env["AWS_SECRET_ACCESS_KEY"], bulk_env["AWS_SESSION_TOKEN"] + '"'):
        assert secret not in text, secret


def test_a_failed_line_fails_its_change_alone(bulk_env, tmp_path):
    root = write_fleet(tmp_path / "fleet", 60)
    journal = Path(bulk_env["FLEETCTL_JOURNAL"])
    devices = (root / "devices.yaml").read_text()
    (root / "devices.yaml").unlink()
    assert plan_and_apply(root, journal)[0].ok  # the shared resources first
    (root / "devices.yaml").write_text(devices)
    (root / "odd.yaml.off").rename(root / "odd.yaml")  # one more device, of the legacy type
    assert run_cli("plan", str(root), "--out", str(tmp_path / "p.json")).exit_code == 0
    iot = client("iot")
    iot.deprecate_thing_type(thingTypeName="legacy")  # after the plan, outside fleetctl
    ca_pem = (root / "certs" / "ca.pem").read_text()  # and one certificate registered meanwhile
    iot.register_certificate(
        certificatePem=(root / "certs" / "0005.pem").read_text(), caCertificatePem=ca_pem, status="INACTIVE"
    )
    report, stats = plan_and_apply(root, journal, check=False, plan_file=tmp_path / "p.json")
    assert [a for a, _ in report.failed] == ["aws/aws-eu/Thing/odd-one"], report.failed
    assert "deprecated" in report.failed[0][1] and "bulk registration task" in report.failed[0][1]
    assert len(report.applied) == 121 and not report.skipped
    assert stats["calls"]["start_thing_registration_task"] == 2
    failure = [
        e
        for e in read_entries(journal)
        if e.get("address") == "aws/aws-eu/Thing/odd-one" and e["event"] == "failure" and "op" not in e
    ]
    assert len(failure) == 1 and "deprecated" in failure[0]["error"]
    # the certificate registered meanwhile was completed by calls: its policy attached, ACTIVE, like the others
    (principal,) = iot.list_thing_principals(thingName="esp32-0005")["principals"]
    assert (
        iot.describe_certificate(certificateId=principal.rsplit("/", 1)[1])["certificateDescription"]["status"]
        == "ACTIVE"
    )
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == ["esp32-policy"]
    after = run_cli("plan", str(root), "--detailed-exitcode")
    assert after.exit_code == 2 and "+ aws/aws-eu/Thing/odd-one" in after.stdout, after.output
    assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete." in after.stdout, after.stdout


def foreign_task(n: int, key: str = "other/input.jsonl") -> str:
    """A registration task fleetctl did not start (another tool, another apply): n things of its own."""
    s3, iot = client("s3"), client("iot")
    s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body="".join(json.dumps({"ThingName": f"other-{key[:5]}-{i}"}) + "\n" for i in range(n)).encode(),
    )
    body = json.dumps(
        {
            "Parameters": {"ThingName": {"Type": "String"}},
            "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}}}},
        }
    )
    return iot.start_thing_registration_task(templateBody=body, inputFileBucket=BUCKET, inputFileKey=key, roleArn=ROLE)[
        "taskId"
    ]


def wait_ended(task_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = client("iot").describe_thing_registration_task(taskId=task_id)
        if d["status"] not in ("InProgress", "Cancelling"):
            return d
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still running")


def test_one_task_at_a_time_a_second_is_refused_and_fleetctl_waits_for_it(bulk_env, tmp_path):
    moto_bulkreg.configure(pace=True, quotas={"CreateThing": 40})  # the sandbox's tasks at 40 things/s
    root = write_fleet(tmp_path / "fleet", 60, with_certs=False, wait=0.3)
    devices = (root / "devices.yaml").read_text()
    (root / "devices.yaml").unlink()
    journal = Path(bulk_env["FLEETCTL_JOURNAL"])
    assert plan_and_apply(root, journal)[0].ok
    (root / "devices.yaml").write_text(devices)

    running = foreign_task(100)  # ~2 s at 40/s
    with pytest.raises(client("iot").exceptions.InvalidRequestException, match="already in progress"):
        foreign_task(1, key="second/input.jsonl")
    refused = run_cli("apply", str(root), "--auto-approve")  # waits 0.3 s, then says why it stops
    assert refused.exit_code == 1
    assert (
        f"AWS bulk registration task {running} " in refused.stderr
        and "is still running after fleetctl waited 0.3 s" in refused.stderr
        and "one task at a time per account" in refused.stderr
    ), refused.stderr
    assert "error: 60 change(s) failed with the same error: " in refused.stderr  # said once per batch, not 60×
    assert refused.stderr.count("is still running after fleetctl waited") == 1
    assert refused.stderr.count("error:   aws/aws-eu/") == 60  # and every failed address listed
    assert "Traceback" not in refused.output
    assert [t["taskId"] for t in tasks()] == [running]  # no second task was started

    (root / "targets.yaml").write_text(
        (root / "targets.yaml").read_text().replace("waitSeconds: 0.3", "waitSeconds: 30")
    )
    report, stats = plan_and_apply(root, journal)  # this one waits for it, then runs its own
    assert report.ok and len(report.applied) == 60, report.failed[:3]
    assert wait_ended(running)["successCount"] == 100  # it had ended before fleetctl's task began
    waits = [e for e in read_entries(journal) if e["event"] == "task-wait"]
    assert waits and running in waits[-1]["taskIds"]
    mine = [t for t in tasks() if t["taskId"] != running]
    assert (
        len(mine) == 1
        and mine[0]["successCount"] == 60
        and mine[0]["creationDate"]
        >= client("iot").describe_thing_registration_task(taskId=running)["lastModifiedDate"]
    )
    assert run_cli("plan", str(root), "--detailed-exitcode").exit_code == 0


def test_a_paced_task_runs_at_the_quotas_it_consumes(bulk_env):
    """`fleetctl sandbox up --quota-faithful` paces the tasks' internal calls (--pace-tasks): 120 things with a
    group each at CreateThing 40/s take ≥ 2 s (120 / 40 minus the 1 s burst); unpaced they take less."""
    from engine.sandbox.manager import quota_args

    assert quota_args("aws") == ["--pace-tasks"]
    client("iot").create_thing_group(thingGroupName="g")
    body = {
        "Parameters": {"ThingName": {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": {"Ref": "ThingName"}, "ThingGroups": ["g"]},
            }
        },
    }
    client("s3").put_object(
        Bucket=BUCKET,
        Key="p.jsonl",
        Body="".join(json.dumps({"ThingName": f"paced-{i}"}) + "\n" for i in range(120)).encode(),
    )

    def timed() -> float:
        started = time.monotonic()
        task = client("iot").start_thing_registration_task(
            templateBody=json.dumps(body), inputFileBucket=BUCKET, inputFileKey="p.jsonl", roleArn=ROLE
        )["taskId"]
        assert wait_ended(task)["successCount"] == 120
        return time.monotonic() - started

    assert timed() < 1.5
    moto_bulkreg.configure(pace=True, quotas={"CreateThing": 40})
    assert timed() >= 1.9  # 40 in the first second's burst, then 80 at 40 per second
    stats = moto_bulkreg.pacing()
    assert stats["CreateThing"]["seed"] == 40 and stats["CreateThing"]["waitedSeconds"] > 0.5
    assert stats["AddThingToThingGroup"]["seed"] == 100  # AWS's default quota of the other call it makes


def test_an_apply_killed_while_its_task_runs_is_reported_and_converges(bulk_env, tmp_path):
    moto_bulkreg.configure(pace=True, quotas={"CreateThing": 40})
    root = write_fleet(tmp_path / "fleet", 150, with_certs=False)
    devices = (root / "devices.yaml").read_text()
    (root / "devices.yaml").unlink()
    journal = Path(bulk_env["FLEETCTL_JOURNAL"])
    assert plan_and_apply(root, journal)[0].ok
    (root / "devices.yaml").write_text(devices)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "apply", str(root), "--auto-approve"],
        cwd=ROOT,
        env={**os.environ, **bulk_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        started = []
        while not started and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            started = [e for e in read_entries(journal) if e["event"] == "task-started"]
        assert started, "the apply never started its task"
        proc.send_signal(signal.SIGKILL)  # fleetctl dies; the task goes on in AWS
    finally:
        proc.wait(timeout=30)
    task_id = started[0]["taskId"]
    client("iot").stop_thing_registration_task(taskId=task_id)  # ... until someone stops it half way
    stopped = wait_ended(task_id)
    assert stopped["status"] == "Cancelled" and 0 < stopped["successCount"] < 150, stopped

    shown = run_cli("plan", str(root))  # visible: the task, and the open changes
    assert (
        f"interrupted while AWS bulk registration task {task_id} ran (150 change(s), input {started[0]['input']})"
        in shown.output
    ), shown.output
    assert f"{150 - stopped['successCount']} to create" in shown.stdout
    assert shown.output.count("was interrupted while it was applying") == 20  # 20 named, the rest folded:
    assert "... and 130 more change(s) an earlier apply was applying" in shown.output  # 150 open changes in all
    again = run_cli("apply", str(root), "--auto-approve")  # a new task for the rest
    assert again.exit_code == 0, again.output
    assert len(tasks()) == 2
    final = run_cli("plan", str(root), "--detailed-exitcode")
    assert final.exit_code == 0 and task_id not in final.output, final.output  # that apply closed the episode
    assert len(client("iot").list_things_in_thing_group(thingGroupName="esp32-fleet", maxResults=250)["things"]) == 150


def test_which_changes_a_task_takes():
    """Pure: one task per shape of at least `threshold` changes; what a template cannot express stays per call."""
    from engine.model import Action, Address, Change
    from engine.providers.aws import bulkreg

    def thing(name, attrs=("serial", "site"), groups=1, principals=(), ids=None, action=Action.CREATE):
        return Change(
            Address.of("aws", "aws-eu", "Thing", name),
            "aws.Thing",
            action,
            desired={
                "thingType": "esp32",
                "attributes": {a: "v" for a in attrs},
                "groups": [f"g{i}" for i in range(groups)],
                "principals": list(principals),
            },
            inputs={"certificateIds": ids or {}},
        )

    def cert(name, ca=True):
        return Change(
            Address.of("aws", "aws-eu", "Certificate", name),
            "aws.Certificate",
            Action.CREATE,
            desired={"certificateId": name * 8, "status": "ACTIVE", "policies": ["p"]},
            inputs={"certificatePem": "PEM", **({"caCertificatePem": "CA"} if ca else {})},
        )

    cfg = bulkreg.BulkConfig(bucket=BUCKET, role_arn=ROLE, threshold=3)
    plain = [thing(f"t{i}") for i in range(4)]
    other = [thing(f"o{i}", attrs=("mac",)) for i in range(2)]  # another shape, below the threshold
    linked = [thing(f"l{i}", principals=["c"], ids={"c": "cid"}) for i in range(3)]
    two_certs = [thing(f"x{i}", principals=["a", "b"], ids={"a": "1", "b": "2"}) for i in range(3)]
    updates = [thing(f"u{i}", action=Action.UPDATE) for i in range(3)]
    out = bulkreg.batches(plain + other + linked + two_certs + updates, cfg, {})
    assert sorted(sorted(c.address.name for c in b) for b in out) == [["l0", "l1", "l2"], ["t0", "t1", "t2", "t3"]]
    assert bulkreg.shape(linked[0], {})[-1] == "call" and bulkreg.shape(linked[0], {"cid": "ACTIVE"})[-1] == "task"
    assert bulkreg.batches([cert(f"c{i}", ca=False) for i in range(5)], cfg, {}) == []  # no registered CA
    assert len(bulkreg.batches([cert(f"c{i}") for i in range(5)], cfg, {})[0]) == 5
    body = json.loads(bulkreg.template_body(bulkreg.shape(plain[0], {})))
    thing_res = body["Resources"]["thing"]
    assert thing_res["Properties"]["AttributePayload"]["managed-by"] == "fleetctl"
    assert thing_res["OverrideSettings"] == {
        "AttributePayload": "REPLACE",
        "ThingTypeName": "REPLACE",
        "ThingGroups": "MERGE",
    }
    assert bulkreg.line(plain[1], bulkreg.shape(plain[1], {}), {}) == {
        "ThingName": "t1",
        "A0": "v",
        "A1": "v",
        "ThingTypeName": "esp32",
        "G0": "g0",
    }
