"""Issue 15.2/15.3: two AWS Targets in two accounts reached by assumed roles from one identity, on moto.

moto models accounts for assumed roles: credentials that sts:AssumeRole issues for a role in account B act in
account B (its own IoT registry), so the two Targets' resources really live apart and a plan made for one account
really reads empty in the other."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

ACCOUNTS = {"aws-dev": "111111111111", "aws-prod": "222222222222"}
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "fleetctl-ci"}},
            }
        ],
    }
)


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/fleetctl-apply"


def _in_account(client, account: str):
    """moto's server keeps one backend per account; `x-moto-account-id` names the account a call acts in."""
    client.meta.events.register(
        "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account)
    )
    return client


def make_roles(endpoint: str) -> None:
    for account in ACCOUNTS.values():
        iam = _in_account(boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1"), account)
        iam.create_role(RoleName="fleetctl-apply", AssumeRolePolicyDocument=TRUST)
        assert iam.get_role(RoleName="fleetctl-apply")["Role"]["Arn"] == role_arn(account)


def write_fleet(root: Path, *, declared: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = []
    for name, account in ACCOUNTS.items():
        aws = {
            "region": "eu-west-2",
            "assumeRole": {
                "roleArn": role_arn(account),
                "externalId": "fleetctl-ci",
                "sessionName": f"fleetctl-{name}",
                "durationSeconds": 900,
            },
        }
        if declared and name in declared:
            aws["accountId"] = declared[name]
        docs.append(
            {"apiVersion": "fleetctl.io/v1", "kind": "Target", "metadata": {"name": name}, "spec": {"aws": aws}}
        )
        docs.append(
            {
                "apiVersion": "aws.fleetctl.io/v1",
                "kind": "ThingType",
                "metadata": {"name": "sensor", "target": name},
                "spec": {"description": f"sensors of {name}"},
            }
        )
        docs.append(
            {
                "apiVersion": "aws.fleetctl.io/v1",
                "kind": "ThingGroup",
                "metadata": {"name": "field", "target": name},
                "spec": {},
            }
        )
        docs.append(
            {
                "apiVersion": "aws.fleetctl.io/v1",
                "kind": "Thing",
                "metadata": {"name": f"{name}-dev-1", "target": name},
                "spec": {"thingType": "sensor", "groups": ["field"]},
            }
        )
    (root / "fleet.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")
    return root


def journal(env) -> list[dict]:
    return [json.loads(line) for line in Path(env["FLEETCTL_JOURNAL"]).read_text().splitlines()]


def test_two_accounts_by_assumed_roles(aws_env, cli, tmp_path):
    make_roles(aws_env["AWS_ENDPOINT_URL"])
    fleet = write_fleet(tmp_path / "fleet")
    out = tmp_path / "plan.json"
    res = cli("plan", str(fleet), "--out", str(out))
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["options"]["accounts"] == {
        name: {"account": acct, "role": role_arn(acct)} for name, acct in ACCOUNTS.items()
    }
    res = cli("apply", str(out), "--fleet", str(fleet))
    assert res.exit_code == 0, res.output

    # each account holds exactly its own Target's resources (moto: one registry per account)
    for name, account in ACCOUNTS.items():
        iot = _in_account(
            boto3.client("iot", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="eu-west-2"), account
        )
        assert [t["thingName"] for t in iot.list_things()["things"]] == [f"{name}-dev-1"]
        assert iot.describe_thing_type(thingTypeName="sensor")["thingTypeArn"].split(":")[4] == account
    default = boto3.client("iot", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="eu-west-2")
    assert default.list_things()["things"] == []

    res = cli("plan", str(fleet), "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes" in res.output

    entries = journal(aws_env)
    start = next(e for e in entries if e["event"] == "apply-start")
    assert start["accounts"] == plan["options"]["accounts"]
    calls = [e for e in entries if e.get("op") and e["event"] in ("success", "failure")]
    assert calls and all(e["event"] == "success" for e in calls)
    for e in calls:  # every mutating call: the account and role it acted in, and AWS's request id
        target = e["address"].split("/")[1]
        assert e["account"] == ACCOUNTS[target] and e["role"] == role_arn(ACCOUNTS[target]), e
        assert e["requestId"], e
    assert {e["op"] for e in calls} >= {
        "create_thing_type",
        "create_thing_group",
        "create_thing",
        "add_thing_to_thing_group",
    }
    begins = [e for e in entries if e.get("op") and e["event"] == "begin"]
    assert len(begins) == len(calls)

    res = cli("drift", str(fleet), "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["targets"] == plan["options"]["accounts"]


def test_apply_refuses_a_plan_made_for_another_account(aws_env, cli, tmp_path, monkeypatch):
    """The plan is made with the runner's ambient identity in account A; apply runs with an identity of account
    B (the CI secret was changed): nothing is read or changed, and the error says which accounts."""
    make_roles(aws_env["AWS_ENDPOINT_URL"])
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "fleet.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "aws-eu"},
                "spec": {"aws": {"region": "eu-west-2"}},
            }
        )
        + "\n---\n"
        + json.dumps(
            {
                "apiVersion": "aws.fleetctl.io/v1",
                "kind": "ThingType",
                "metadata": {"name": "sensor", "target": "aws-eu"},
                "spec": {},
            }
        )
    )
    sts = boto3.client("sts", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="eu-west-2")

    def become(account: str) -> None:
        creds = sts.assume_role(RoleArn=role_arn(account), RoleSessionName="ci", ExternalId="fleetctl-ci")[
            "Credentials"
        ]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])

    become(ACCOUNTS["aws-dev"])
    out = tmp_path / "plan.json"
    res = cli("plan", str(fleet), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["options"]["accounts"] == {"aws-eu": {"account": ACCOUNTS["aws-dev"]}}
    become(ACCOUNTS["aws-prod"])
    res = cli("apply", str(out), "--fleet", str(fleet))
    assert res.exit_code == 1
    assert (
        f"was made for target 'aws-eu' in account {ACCOUNTS['aws-dev']}, but apply's credentials act in account "
        f"{ACCOUNTS['aws-prod']}"
    ) in res.stderr
    assert "Traceback" not in res.output
    journal_path = Path(aws_env["FLEETCTL_JOURNAL"])
    assert not journal_path.exists() or "apply-start" not in journal_path.read_text()
    for account in ACCOUNTS.values():  # nothing was created in either account
        iot = _in_account(
            boto3.client("iot", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="eu-west-2"), account
        )
        assert iot.list_thing_types()["thingTypes"] == []


def test_declared_account_must_match(aws_env, cli, tmp_path):
    make_roles(aws_env["AWS_ENDPOINT_URL"])
    fleet = write_fleet(tmp_path / "fleet", declared={"aws-prod": "333333333333"})
    res = cli("plan", str(fleet))
    assert res.exit_code == 1
    assert (
        "target 'aws-prod' declares account 333333333333 (spec.aws.accountId) but its credentials act in "
        "account 222222222222"
    ) in res.stderr


def test_unknown_profile_is_a_plain_error(aws_env, cli, tmp_path, monkeypatch):
    config = tmp_path / "aws-config"
    config.write_text("[profile other]\nregion = eu-west-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "fleet.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "aws-eu"},
                "spec": {"aws": {"region": "eu-west-2", "profile": "nope"}},
            }
        )
    )
    res = cli("plan", str(fleet))
    assert res.exit_code == 1, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    assert (
        "AWS profile 'nope' (from the Target's spec.aws.profile) is not configured" in res.stderr
        and "aws configure --profile nope" in res.stderr
    )


@pytest.mark.parametrize("arn", ["arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/x"])
def test_bad_role_arn_is_a_manifest_error(aws_env, cli, tmp_path, arn):
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "fleet.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "aws-eu"},
                "spec": {"aws": {"region": "eu-west-2", "assumeRole": {"roleArn": arn}}},
            }
        )
    )
    res = cli("plan", str(fleet))
    assert res.exit_code == 1
    assert "roleArn" in res.stderr and "internal error" not in res.output


def test_unusable_role_is_a_plain_error(aws_env, cli, tmp_path, monkeypatch):
    """STS refuses the AssumeRole (here: no source credentials at all, so the signed call cannot be made)."""
    fleet = write_fleet(tmp_path / "fleet")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    res = cli("plan", str(fleet))
    assert res.exit_code == 1
    assert "internal error" not in res.output
    assert f"no source credentials to assume {role_arn(ACCOUNTS['aws-dev'])} (spec.aws.assumeRole)" in res.stderr
