"""ServiceRole, RoleAlias, BillingGroup (+ thing membership) and DynamicThingGroup end to end on moto's server,
through the real boto3 and the real CLI: create, update of every managed field, no-op re-plan, drift, delete with
prune, import round trip; ServiceRole refuses non-IoT principals; DynamicThingGroup match counts."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from engine.journal import read_entries
from tests.conftest import run_cli

TARGET = """apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
  prune: false
"""
ROLE = """apiVersion: aws.fleetctl.io/v1
kind: ServiceRole
metadata: {name: esp32-credentials, target: aws-eu}
spec:
  description: S3 uploads of the ESP32 modules
  assumedBy: [credentials.iot.amazonaws.com]
  maxSessionDuration: 7200
  policy:
    Version: "2012-10-17"
    Statement:
      - {Sid: Upload, Effect: Allow, Action: ["s3:PutObject"], Resource: ["arn:aws:s3:::esp32-uploads/*"]}
---
apiVersion: aws.fleetctl.io/v1
kind: RoleAlias
metadata: {name: esp32-alias, target: aws-eu}
spec:
  role: esp32-credentials
  credentialDurationSeconds: 3600
"""
BILLING = """apiVersion: aws.fleetctl.io/v1
kind: BillingGroup
metadata: {name: customer-a, target: aws-eu}
spec:
  description: Customer A devices
  tags: {costCenter: "1234", customer: a}
---
apiVersion: aws.fleetctl.io/v1
kind: BillingGroup
metadata: {name: customer-b, target: aws-eu}
spec:
  description: Customer B devices
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: ESP32-0001, target: aws-eu}
spec:
  attributes: {site: paris}
  billingGroup: customer-a
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: ESP32-0002, target: aws-eu}
spec:
  attributes: {site: lyon}
  billingGroup: customer-a
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: LORA-0001, target: aws-eu}
spec:
  attributes: {site: paris}
"""
DYNAMIC = """apiVersion: aws.fleetctl.io/v1
kind: DynamicThingGroup
metadata: {name: paris-esp32, target: aws-eu}
spec:
  description: ESP32 modules in Paris
  queryString: "thingName:ESP32* AND attributes.site:paris"
  attributes: {team: field}
"""


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


def iam():
    return boto3.client("iam", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


def write(fleet: Path, **files: str) -> Path:
    fleet.mkdir(exist_ok=True)
    (fleet / "targets.yaml").write_text(TARGET)
    for name, text in files.items():
        (fleet / f"{name}.yaml").write_text(text)
    return fleet


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def plan(fleet: Path, *extra: str):
    return run_cli("plan", str(fleet), "--detailed-exitcode", *extra)


def apply(fleet: Path, *extra: str):
    res = run_cli("apply", str(fleet), "--auto-approve", *extra)
    assert res.exit_code == 0, res.output
    return res


def settled(fleet: Path) -> None:
    again = plan(fleet)
    assert again.exit_code == 0, again.output
    assert "No changes." in again.stdout


def indexing_on() -> None:
    iot().update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})


# ------------------------------------------------------------------------------------------ ServiceRole / RoleAlias
def test_service_role_and_alias_lifecycle(aws_env, tmp_path):
    fleet = write(tmp_path / "fleet", roles=ROLE)
    first = plan(fleet)
    assert first.exit_code == 2, first.output
    apply(fleet)
    settled(fleet)
    role = iam().get_role(RoleName="esp32-credentials")["Role"]
    assert role["Path"] == "/fleetctl/" and role["MaxSessionDuration"] == 7200
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": ["credentials.iot.amazonaws.com"]}
    alias = iot().describe_role_alias(roleAlias="esp32-alias")["roleAliasDescription"]
    assert alias["roleArn"] == role["Arn"] and alias["credentialDurationSeconds"] == 3600
    tags = iot().list_tags_for_resource(resourceArn=alias["roleAliasArn"])["tags"]
    assert {"Key": "managed-by", "Value": "fleetctl"} in tags
    assert {"Key": "managed-by", "Value": "fleetctl"} in iam().list_role_tags(RoleName="esp32-credentials")["Tags"]
    # the journal holds the IAM and IoT calls with their request ids
    ops = {
        e.get("op"): e
        for e in read_entries(Path(aws_env["FLEETCTL_JOURNAL"]))
        if e.get("event") == "success" and "op" in e
    }
    assert {"iam:create_role", "iam:put_role_policy", "create_role_alias"} <= set(ops)
    assert all(ops[o].get("requestId") for o in ("iam:create_role", "create_role_alias"))

    # update every managed field
    path = fleet / "roles.yaml"
    edit(path, "description: S3 uploads of the ESP32 modules", "description: uploads")
    edit(path, "maxSessionDuration: 7200", "maxSessionDuration: 10800")
    edit(
        path,
        "assumedBy: [credentials.iot.amazonaws.com]",
        "assumedBy: [credentials.iot.amazonaws.com, iot.amazonaws.com]\n  conditions: "
        "{StringEquals: {'aws:SourceAccount': '123456789012'}}",
    )
    edit(path, '"arn:aws:s3:::esp32-uploads/*"', '"arn:aws:s3:::esp32-uploads/*", "arn:aws:s3:::esp32-logs/*"')
    edit(path, "credentialDurationSeconds: 3600", "credentialDurationSeconds: 7200")
    changed = plan(fleet)
    assert changed.exit_code == 2, changed.output
    for field in (
        "description",
        "maxSessionDuration",
        "assumedBy",
        "conditions",
        "policy",
        "credentialDurationSeconds",
    ):
        assert field in changed.stdout, (field, changed.stdout)
    assert "[!permissions-widened]" in changed.stdout
    apply(fleet)
    settled(fleet)
    role = iam().get_role(RoleName="esp32-credentials")["Role"]
    assert role["MaxSessionDuration"] == 10800 and role["Description"] == "uploads"
    assert (
        iot().describe_role_alias(roleAlias="esp32-alias")["roleAliasDescription"]["credentialDurationSeconds"] == 7200
    )

    # drift: a managed policy attached and the alias shortened outside fleetctl
    admin = iam().create_policy(
        PolicyName="Admin",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    iam().attach_role_policy(RoleName="esp32-credentials", PolicyArn=admin["Policy"]["Arn"])
    iot().update_role_alias(roleAlias="esp32-alias", credentialDurationSeconds=900)
    drift = plan(fleet)
    assert drift.exit_code == 2
    assert "attachedPolicies" in drift.stdout and "policy/Admin" in drift.stdout
    assert "credentialDurationSeconds" in drift.stdout
    apply(fleet)
    assert iam().list_attached_role_policies(RoleName="esp32-credentials")["AttachedPolicies"] == []
    settled(fleet)

    # delete with prune: the alias before its role
    path.unlink()
    kept = plan(fleet)
    assert kept.exit_code == 0, kept.output
    pruned = run_cli("apply", str(fleet), "--auto-approve", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert iot().list_role_aliases()["roleAliases"] == []
    assert [r["RoleName"] for r in iam().list_roles(PathPrefix="/fleetctl/")["Roles"]] == []
    order = [
        e["op"]
        for e in read_entries(Path(aws_env["FLEETCTL_JOURNAL"]))
        if e.get("event") == "success" and "op" in e and e.get("op") in ("delete_role_alias", "iam:delete_role")
    ]
    assert order[-2:] == ["delete_role_alias", "iam:delete_role"]


@pytest.mark.parametrize("principal", ["lambda.amazonaws.com", "arn:aws:iam::123456789012:root", "*"])
def test_service_role_refuses_non_iot_principals(aws_env, tmp_path, principal):
    fleet = write(
        tmp_path / "fleet",
        roles=ROLE.replace(
            "assumedBy: [credentials.iot.amazonaws.com]", f"assumedBy: [credentials.iot.amazonaws.com, '{principal}']"
        ),
    )
    res = plan(fleet)
    assert res.exit_code == 1, res.output
    assert "roles.yaml:" in res.output and "not an AWS IoT service principal" in res.output
    assert principal in res.output


def test_role_alias_duration_beyond_the_role_is_an_error(aws_env, tmp_path):
    fleet = write(
        tmp_path / "fleet", roles=ROLE.replace("credentialDurationSeconds: 3600", "credentialDurationSeconds: 9000")
    )
    res = plan(fleet)
    assert res.exit_code == 1 and "maxSessionDuration 7200" in res.output, res.output


def test_topic_rule_role_by_name_is_a_dependency(aws_env, tmp_path):
    rule = """apiVersion: aws.fleetctl.io/v1
kind: TopicRule
metadata: {name: to_dynamo, target: aws-eu}
spec:
  sql: "SELECT * FROM 'lora/#'"
  actions:
    - dynamoDB: {tableName: t, roleArn: rule-role, hashKeyField: d, hashKeyValue: "${topic(2)}"}
---
apiVersion: aws.fleetctl.io/v1
kind: ServiceRole
metadata: {name: rule-role, target: aws-eu}
spec:
  assumedBy: [iot.amazonaws.com]
  policy: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "dynamodb:PutItem", Resource: "*"}]}
"""
    fleet = write(tmp_path / "fleet", rule=rule)
    out = tmp_path / "plan.json"
    assert plan(fleet, "--out", str(out)).exit_code == 2
    changes = json.loads(out.read_text())["changes"]
    rule_change = next(c for c in changes if c["kind"] == "aws.TopicRule")
    assert any("ServiceRole/rule-role" in d for d in rule_change["dependsOn"]), rule_change
    apply(fleet)
    arn = iot().get_topic_rule(ruleName="to_dynamo")["rule"]["actions"][0]["dynamoDB"]["roleArn"]
    assert arn == iam().get_role(RoleName="rule-role")["Role"]["Arn"]
    settled(fleet)


# ------------------------------------------------------------------------------------------ BillingGroup
def test_billing_group_lifecycle_and_thing_membership(aws_env, tmp_path):
    fleet = write(tmp_path / "fleet", billing=BILLING)
    apply(fleet)
    settled(fleet)
    c = iot()
    group = c.describe_billing_group(billingGroupName="customer-a")
    assert group["billingGroupProperties"]["billingGroupDescription"] == "Customer A devices"
    tags = {t["Key"]: t["Value"] for t in c.list_tags_for_resource(resourceArn=group["billingGroupArn"])["tags"]}
    assert tags == {"costCenter": "1234", "customer": "a", "managed-by": "fleetctl"}
    assert sorted(c.list_things_in_billing_group(billingGroupName="customer-a")["things"]) == [
        "ESP32-0001",
        "ESP32-0002",
    ]

    # update every managed field: description, tags (changed, added, removed), a thing's billing group
    path = fleet / "billing.yaml"
    edit(path, "description: Customer A devices", "description: Customer A")
    edit(path, 'tags: {costCenter: "1234", customer: a}', 'tags: {costCenter: "5678", region: eu}')
    edit(
        path,
        "  attributes: {site: lyon}\n  billingGroup: customer-a",
        "  attributes: {site: lyon}\n  billingGroup: customer-b",
    )
    changed = plan(fleet)
    assert changed.exit_code == 2, changed.output
    assert "billingGroup" in changed.stdout and "tags.costCenter" in changed.stdout, changed.stdout
    apply(fleet)
    settled(fleet)
    tags = {t["Key"]: t["Value"] for t in c.list_tags_for_resource(resourceArn=group["billingGroupArn"])["tags"]}
    assert tags == {"costCenter": "5678", "region": "eu", "managed-by": "fleetctl"}
    assert c.list_things_in_billing_group(billingGroupName="customer-b")["things"] == ["ESP32-0002"]
    assert (
        c.describe_billing_group(billingGroupName="customer-a")["billingGroupProperties"]["billingGroupDescription"]
        == "Customer A"
    )

    # drift: a thing moved out of band, a tag changed out of band
    c.remove_thing_from_billing_group(billingGroupName="customer-a", thingName="ESP32-0001")
    c.tag_resource(resourceArn=group["billingGroupArn"], tags=[{"Key": "region", "Value": "us"}])
    drift = plan(fleet)
    assert drift.exit_code == 2 and "ESP32-0001" in drift.stdout and "tags.region" in drift.stdout, drift.output
    apply(fleet)
    settled(fleet)

    # delete with prune: members removed first
    text = path.read_text().replace("  billingGroup: customer-b\n", "")
    path.write_text(
        text.split("---\napiVersion: aws.fleetctl.io/v1\nkind: BillingGroup\nmetadata: {name: customer-b")[0]
        + "---"
        + text.split("Customer B devices\n---")[1]
    )
    pruned = run_cli("apply", str(fleet), "--auto-approve", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert [g["groupName"] for g in c.list_billing_groups()["billingGroups"]] == ["customer-a"]


# ------------------------------------------------------------------------------------------ DynamicThingGroup
def test_dynamic_group_lifecycle_and_match_count(aws_env, tmp_path):
    indexing_on()
    fleet = write(tmp_path / "fleet", billing=BILLING, dynamic=DYNAMIC)
    first = plan(fleet)
    assert first.exit_code == 2
    assert "the query matches 1 of the 3 things declared in this target" in first.stdout, first.stdout
    apply(fleet)
    settled(fleet)
    g = iot().describe_thing_group(thingGroupName="paris-esp32")
    assert g["queryString"] == "thingName:ESP32* AND attributes.site:paris" and g["indexName"] == "AWS_Things"
    # the static reader does not take it for a ThingGroup (no ThingGroup is planned for it)
    assert "ThingGroup/paris-esp32" not in plan(fleet).stdout.replace("DynamicThingGroup/paris-esp32", "")

    path = fleet / "dynamic.yaml"
    edit(path, "thingName:ESP32* AND attributes.site:paris", "thingName:ESP32* OR attributes.site:paris")
    edit(path, "description: ESP32 modules in Paris", "description: ESP32 or Paris")
    edit(path, "attributes: {team: field}", "attributes: {team: ops}")
    changed = plan(fleet)
    assert changed.exit_code == 2
    assert "the query matches 3 of the 3 things" in changed.stdout, changed.stdout
    for field in ("queryString", "description", "attributes.team"):
        assert field in changed.stdout
    apply(fleet)
    settled(fleet)

    iot().update_dynamic_thing_group(thingGroupName="paris-esp32", thingGroupProperties={}, queryString="thingName:X*")
    drift = plan(fleet)
    assert drift.exit_code == 2 and "thingName:X*" in drift.stdout

    apply(fleet)
    path.unlink()
    assert run_cli("apply", str(fleet), "--auto-approve", "--prune").exit_code == 0
    assert [x["groupName"] for x in iot().list_thing_groups()["thingGroups"]] == []


def test_dynamic_group_query_beyond_the_offline_forms(aws_env, tmp_path):
    fleet = write(
        tmp_path / "fleet",
        billing=BILLING,
        dynamic=DYNAMIC.replace("thingName:ESP32* AND attributes.site:paris", "connectivity.connected:true"),
    )
    res = plan(fleet)
    assert "the query cannot be evaluated offline" in res.stdout and "connectivity.connected:true" in res.stdout


def test_dynamic_group_needs_fleet_indexing(aws_env, tmp_path):
    fleet = write(tmp_path / "fleet", dynamic=DYNAMIC)
    res = run_cli("apply", str(fleet), "--auto-approve")
    assert res.exit_code != 0 and "indexing" in res.output.lower(), res.output


# ------------------------------------------------------------------------------------------ import round trip
def test_import_round_trip_of_every_kind_plans_clean(aws_env, tmp_path):
    indexing_on()
    fleet = write(tmp_path / "fleet", roles=ROLE, billing=BILLING, dynamic=DYNAMIC)
    apply(fleet)
    bare = write(tmp_path / "bare")
    out = tmp_path / "imported"
    res = run_cli("import", "--target", "aws-eu", "--fleet", str(bare), "--out", str(out), "--no-rate-limit")
    assert res.exit_code == 0, res.output
    texts = {p.name: p.read_text() for p in (out / "aws-eu").glob("*.yaml")}
    joined = "\n".join(texts.values())
    for kind in ("ServiceRole", "RoleAlias", "BillingGroup", "DynamicThingGroup"):
        assert f"kind: {kind}" in joined, (kind, sorted(texts))
    assert "billingGroup: customer-a" in joined and "role: esp32-credentials" in joined
    after = run_cli("plan", str(out), "--detailed-exitcode")
    assert after.exit_code == 0, after.output
    assert "No changes." in after.stdout


def test_import_refuses_a_role_trusting_other_principals(aws_env, tmp_path):
    iam().create_role(
        RoleName="wide",
        Path="/fleetctl/",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam().put_role_policy(
        RoleName="wide",
        PolicyName="fleetctl",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    out = tmp_path / "imported"
    res = run_cli(
        "import", "--target", "aws-eu", "--fleet", str(write(tmp_path / "bare")), "--out", str(out), "--no-rate-limit"
    )
    assert res.exit_code == 0, res.output
    assert "lambda.amazonaws.com" in (out / "IMPORT.md").read_text()


# ------------------------------------------------------------------------------------------ lint
def test_lint_role_alias_overly_permissive_and_long_credentials(tmp_path):
    wide = ROLE.replace(
        'Action: ["s3:PutObject"], Resource: ["arn:aws:s3:::esp32-uploads/*"]', 'Action: ["s3:*"], Resource: "*"'
    ).replace("credentialDurationSeconds: 3600", "credentialDurationSeconds: 7200")
    res = run_cli("lint", str(write(tmp_path / "wide", roles=wide)))
    assert res.exit_code != 0
    assert "roles.yaml:17:3: FL021 error" in res.output and "('s3:*')" in res.output
    assert "grants on every resource" in res.output
    assert "roles.yaml:18:3: FL022 warning" in res.output and "7200 s" in res.output
    narrow = run_cli("lint", str(write(tmp_path / "narrow", roles=ROLE)))
    assert "FL021" not in narrow.output and "FL022" not in narrow.output, narrow.output
