"""Issue 17 (b) kinds end to end on the moto sandbox, through the real CLI and the real boto3: the account
singletons (IndexingConfiguration, LoggingOptions, EventConfigurations, AccountAuditConfiguration), ScheduledAudit,
Authorizer, DomainConfiguration and TopicRuleDestination. Per kind: create (or, for a singleton, the first
update), update of every managed field, no-op re-plan, drift made out of band with boto3, delete with prune (a
singleton is never deleted), import round trip. Plus: two Targets of one account declaring a singleton, and the
HTTP destination's confirmation flow (the token read from the sandbox-only route)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import run_cli

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/iot-logging"
LAMBDA = f"arn:aws:lambda:eu-west-2:{ACCOUNT}:function:iot-auth"
TARGET = {
    "apiVersion": "fleetctl.io/v1",
    "kind": "Target",
    "metadata": {"name": "aws-eu"},
    "spec": {"aws": {"region": "eu-west-2"}},
}


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


def _public_key(path: Path) -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)


def doc(kind: str, name: str, spec: dict[str, Any], target: str = "aws-eu") -> dict[str, Any]:
    return {
        "apiVersion": "aws.fleetctl.io/v1",
        "kind": kind,
        "metadata": {"name": name, "target": target},
        "spec": spec,
    }


def write(folder: Path, name: str, docs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


@dataclass
class Case:
    kind: str
    name: str
    v1: dict[str, Any]
    v2: dict[str, Any]  # every managed field changed
    drift: Callable[[Any], None]  # an out-of-band change with boto3
    gone: Callable[[Any], bool] | None = None  # after a prune: the resource no longer exists (None: a singleton)
    extra: list[dict[str, Any]] = field(default_factory=list)  # what it needs (kept when it is pruned)
    updated: tuple[str, ...] = ()  # text the v2 plan shows
    unowned: bool = False  # no ownership marker on AWS: never pruned once undeclared


def _authorizers(c: Any) -> list[str]:
    return [a["authorizerName"] for a in c.list_authorizers()["authorizers"]]


def _destination_arn(c: Any) -> str:
    return c.list_topic_rule_destinations()["destinationSummaries"][0]["arn"]


AUDIT = doc(
    "AccountAuditConfiguration",
    "account",
    {
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/iot-audit",
        "enabledChecks": ["LOGGING_DISABLED_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK"],
    },
)
AUTHORIZER = {
    "authorizerFunction": LAMBDA,
    "tokenKeyName": "token",
    "tokenSigningPublicKeys": {"k1": {"file": "keys/k1.pem"}},
}

CASES = [
    Case(
        "IndexingConfiguration",
        "account",
        {"thingIndexingMode": "REGISTRY"},
        {
            "thingIndexingMode": "REGISTRY_AND_SHADOW",
            "thingConnectivityIndexingMode": "STATUS",
            "deviceDefenderIndexingMode": "VIOLATIONS",
            "namedShadowIndexingMode": "ON",
            "thingGroupIndexingMode": "ON",
            "customFields": [{"name": "attributes.site", "type": "String"}],
        },
        lambda c: c.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"}),
        updated=('thingIndexingMode: "REGISTRY" → "REGISTRY_AND_SHADOW"', 'thingGroupIndexingMode: "OFF" → "ON"'),
    ),
    Case(
        "LoggingOptions",
        "account",
        {
            "roleArn": ROLE,
            "defaultLogLevel": "WARN",
            "levels": [{"targetType": "THING_GROUP", "targetName": "lora-gateways", "logLevel": "DEBUG"}],
        },
        {
            "roleArn": ROLE + "-2",
            "defaultLogLevel": "INFO",
            "disableAllLogs": False,
            "levels": [{"targetType": "CLIENT_ID", "targetName": "esp32-01", "logLevel": "DEBUG"}],
        },
        lambda c: c.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DISABLED"),
        updated=(
            'defaultLogLevel: "WARN" → "INFO"',
            '+ levels.CLIENT_ID/esp32-01: "DEBUG"',
            '- levels.THING_GROUP/lora-gateways: "DEBUG"',
        ),
    ),
    Case(
        "EventConfigurations",
        "account",
        {"enabled": ["THING", "THING_GROUP_MEMBERSHIP"]},
        {"enabled": ["THING", "CERTIFICATE"]},
        lambda c: c.update_event_configurations(eventConfigurations={"THING": {"Enabled": False}}),
        updated=('+ enabled[]: "CERTIFICATE"', '- enabled[]: "THING_GROUP_MEMBERSHIP"'),
    ),
    Case(
        "AccountAuditConfiguration",
        "account",
        AUDIT["spec"],
        {
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/iot-audit-2",
            "sns": {
                "targetArn": f"arn:aws:sns:eu-west-2:{ACCOUNT}:audit",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/sns",
            },
            "enabledChecks": ["LOGGING_DISABLED_CHECK", "CA_CERTIFICATE_EXPIRING_CHECK"],
        },
        lambda c: c.update_account_audit_configuration(
            auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}}
        ),
        updated=('+ enabledChecks[]: "CA_CERTIFICATE_EXPIRING_CHECK"',),
    ),
    Case(
        "ScheduledAudit",
        "daily-logging",
        {"frequency": "DAILY", "targetCheckNames": ["LOGGING_DISABLED_CHECK"]},
        {
            "frequency": "WEEKLY",
            "dayOfWeek": "MON",
            "targetCheckNames": ["LOGGING_DISABLED_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK"],
        },
        lambda c: c.update_scheduled_audit(scheduledAuditName="daily-logging", frequency="MONTHLY", dayOfMonth="1"),
        gone=lambda c: not c.list_scheduled_audits()["scheduledAudits"],
        extra=[AUDIT],
        updated=('frequency: "DAILY" → "WEEKLY"',),
    ),
    Case(
        "Authorizer",
        "legacy-tokens",
        AUTHORIZER,
        {
            "authorizerFunction": LAMBDA + "-2",
            "tokenKeyName": "tok2",
            "tokenSigningPublicKeys": {"k2": {"file": "keys/k2.pem"}},
            "status": "INACTIVE",
            "enableCachingForHttp": True,
        },
        lambda c: c.update_authorizer(authorizerName="legacy-tokens", status="ACTIVE"),
        gone=lambda c: "legacy-tokens" not in _authorizers(c),
        updated=('status: "ACTIVE" → "INACTIVE"', 'tokenKeyName: "token" → "tok2"'),
    ),
    Case(
        "DomainConfiguration",
        "devices-custom",
        {
            "domainName": "iot.example.com",
            "serverCertificateArns": [f"arn:aws:acm:eu-west-2:{ACCOUNT}:certificate/a"],
            "authorizer": "legacy-tokens",
        },
        {
            "domainName": "iot.example.com",
            "serverCertificateArns": [f"arn:aws:acm:eu-west-2:{ACCOUNT}:certificate/a"],
            "authorizer": "second",
            "allowAuthorizerOverride": True,
            "tlsPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10",
            "status": "DISABLED",
        },
        lambda c: c.update_domain_configuration(
            domainConfigurationName="devices-custom", domainConfigurationStatus="ENABLED"
        ),
        gone=lambda c: not c.list_domain_configurations()["domainConfigurations"],
        extra=[doc("Authorizer", "legacy-tokens", AUTHORIZER), doc("Authorizer", "second", AUTHORIZER)],
        updated=('authorizer: "legacy-tokens" → "second"', 'status: "ENABLED" → "DISABLED"'),
    ),
    Case(
        "TopicRuleDestination",
        "lora-vpc",
        {"vpc": {"vpcId": "vpc-0a1b2c", "subnetIds": ["subnet-1", "subnet-2"], "roleArn": ROLE}},
        {"vpc": {"vpcId": "vpc-0a1b2c", "subnetIds": ["subnet-1", "subnet-2"], "roleArn": ROLE}, "status": "DISABLED"},
        lambda c: c.update_topic_rule_destination(arn=_destination_arn(c), status="ENABLED"),
        gone=lambda c: not c.list_topic_rule_destinations()["destinationSummaries"],
        updated=('status: "ENABLED" → "DISABLED"',),
        unowned=True,
    ),
]


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    write(root, "targets.yaml", [TARGET])
    _public_key(root / "keys/k1.pem")
    _public_key(root / "keys/k2.pem")
    return root


def _plan(root: Path, *extra: str):
    return run_cli("plan", str(root), "--detailed-exitcode", *extra)


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_kind_lifecycle(aws_env, fleet, tmp_path, case: Case):
    c = iot()
    extra = write(fleet, "extra.yaml", case.extra) if case.extra else None
    manifest = write(fleet, "kind.yaml", [doc(case.kind, case.name, case.v1)])
    address = f"aws/aws-eu/{case.kind}/{case.name}"

    # create (a singleton: its first update, owned whole)
    first = _plan(fleet)
    assert first.exit_code == 2, first.output
    assert address in first.stdout
    if case.gone is None:
        assert f"{address}  (account-wide setting, owned whole by this Target)" in first.stdout
    applied = run_cli("apply", str(fleet), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    journal = [json.loads(line) for line in Path(aws_env["FLEETCTL_JOURNAL"]).read_text().splitlines()]
    mine = [e for e in journal if e.get("address") == address and e.get("event") == "success" and "action" in e]
    assert mine and all(e["requestIds"] for e in mine), mine  # request ids in the journal
    again = _plan(fleet)
    assert again.exit_code == 0, again.output  # no-op re-plan

    # update every managed field
    write(fleet, "kind.yaml", [doc(case.kind, case.name, case.v2)])
    upd = _plan(fleet)
    assert upd.exit_code == 2, upd.output
    for text in case.updated:
        assert text in upd.stdout, (text, upd.stdout)
    applied = run_cli("apply", str(fleet), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert _plan(fleet).exit_code == 0

    # drift made out of band
    case.drift(c)
    drift = run_cli("drift", str(fleet))
    assert drift.exit_code == 2, drift.output
    assert address in drift.stdout
    assert run_cli("apply", str(fleet), "--auto-approve").exit_code == 0
    assert _plan(fleet).exit_code == 0

    # import round trip: a fresh folder with only the Target, then plan shows no changes for the kind
    imported = tmp_path / "imported"
    write(imported, "targets.yaml", [TARGET])
    res = run_cli("import", "--target", "aws-eu", "--fleet", str(imported), "--out", str(imported / "out"))
    assert res.exit_code == 0, res.output
    written = "\n".join(p.read_text() for p in (imported / "out").rglob("*.yaml"))
    assert f"kind: {case.kind}" in written
    round_trip = _plan(imported)
    assert round_trip.exit_code == 0, round_trip.output

    # delete with prune (a singleton is never deleted: the setting stays as it is)
    manifest.unlink()
    pruned = run_cli("plan", str(fleet), "--prune")
    if case.gone is None:
        assert address not in pruned.stdout, pruned.stdout
        assert run_cli("apply", str(fleet), "--auto-approve", "--prune").exit_code == 0
    elif case.unowned:  # AWS cannot tag it: once undeclared, fleetctl cannot tell it is its own
        assert "fleetctl leaves them alone:\n  aws/aws-eu/TopicRuleDestination/vpc-0a1b2c\n" in pruned.stdout
        assert not case.gone(c)
    else:
        assert f"- {address}" in pruned.stdout, pruned.stdout
        res = run_cli("apply", str(fleet), "--auto-approve", "--prune")
        assert res.exit_code == 0, res.output
        assert case.gone(c)
    if extra is not None:
        extra.unlink()


def test_destination_replace_disables_then_deletes(aws_env, fleet):
    vpc = {"vpcId": "vpc-0a1b2c", "subnetIds": ["subnet-1"], "roleArn": ROLE}
    write(fleet, "d.yaml", [doc("TopicRuleDestination", "lora-vpc", {"vpc": vpc})])
    assert run_cli("apply", str(fleet), "--auto-approve").exit_code == 0
    write(fleet, "d.yaml", [doc("TopicRuleDestination", "lora-vpc", {"vpc": {**vpc, "subnetIds": ["subnet-9"]}})])
    res = run_cli("plan", str(fleet))
    assert "step: set the destination DISABLED (AWS deletes only a DISABLED destination)" in res.stdout
    assert run_cli("apply", str(fleet), "--auto-approve").exit_code == 0
    (only,) = iot().list_topic_rule_destinations()["destinationSummaries"]
    assert only["vpcDestinationSummary"]["subnetIds"] == ["subnet-9"]


def test_singleton_steps_and_attention(aws_env, fleet):
    write(fleet, "account.yaml", [doc("LoggingOptions", "account", {"roleArn": ROLE, "defaultLogLevel": "WARN"})])
    assert run_cli("apply", str(fleet), "--auto-approve").exit_code == 0
    write(fleet, "account.yaml", [doc("LoggingOptions", "account", {"roleArn": ROLE, "defaultLogLevel": "ERROR"})])
    res = run_cli("plan", str(fleet))
    assert "[!logging-reduced]" in res.stdout
    assert "step: update the LoggingOptions (account-wide setting, owned whole by this Target)" in res.stdout


def test_authorizer_flags_and_disable_before_delete(aws_env, fleet):
    write(fleet, "a.yaml", [doc("Authorizer", "open", {"authorizerFunction": LAMBDA, "signingDisabled": True})])
    res = run_cli("plan", str(fleet))
    assert "[!authorizer-unsigned]" in res.stdout and "[!authorizer-activated]" in res.stdout
    assert run_cli("apply", str(fleet), "--auto-approve").exit_code == 0
    (fleet / "a.yaml").unlink()
    pruned = run_cli("plan", str(fleet), "--prune")
    assert "step: set the authorizer INACTIVE (AWS deletes only a INACTIVE authorizer)" in pruned.stdout
    assert "step: delete the authorizer" in pruned.stdout
    assert run_cli("apply", str(fleet), "--auto-approve", "--prune").exit_code == 0
    assert not iot().list_authorizers()["authorizers"]


def test_authorizer_refuses_a_private_key(aws_env, fleet):
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (fleet / "keys/private.pem").write_bytes(key)
    write(
        fleet,
        "a.yaml",
        [doc("Authorizer", "a", {**AUTHORIZER, "tokenSigningPublicKeys": {"k": {"file": "keys/private.pem"}}})],
    )
    res = run_cli("validate", str(fleet))
    assert res.exit_code != 0
    assert "is a private key: declare the public key only" in res.output
    assert "BEGIN PRIVATE KEY" not in res.output


def test_lint_rules(aws_env, fleet):
    write(
        fleet,
        "a.yaml",
        [
            doc("LoggingOptions", "account", {"roleArn": ROLE, "disableAllLogs": True}),
            doc("AccountAuditConfiguration", "account", {"roleArn": ROLE, "enabledChecks": ["LOGGING_DISABLED_CHECK"]}),
            doc("Authorizer", "open", {"authorizerFunction": LAMBDA, "signingDisabled": True}),
        ],
    )
    res = run_cli("lint", str(fleet))
    for rule in ("FL025", "FL026", "FL027"):
        assert rule in res.stdout, res.stdout
    assert "disableAllLogs: true turns off all AWS IoT logging" in res.stdout
    assert "defaultLogLevel ERROR is below WARN" in res.stdout


def test_two_targets_in_one_account_declaring_a_singleton_is_an_error(aws_env, tmp_path):
    root = tmp_path / "fleet"
    write(root, "targets.yaml", [TARGET, {**TARGET, "metadata": {"name": "aws-eu-2"}}])
    write(root, "one.yaml", [doc("LoggingOptions", "account", {"roleArn": ROLE})])
    write(root, "two.yaml", [doc("LoggingOptions", "logging", {"roleArn": ROLE}, target="aws-eu-2")])
    res = run_cli("validate", str(root))
    assert res.exit_code != 0
    assert "LoggingOptions is an account-wide setting and is declared twice for the same AWS account" in res.output
    assert "one.yaml" in res.output and "two.yaml" in res.output
    # different accounts (accountId declared on both): no error
    write(
        root,
        "targets.yaml",
        [
            {**TARGET, "spec": {"aws": {"region": "eu-west-2", "accountId": "111111111111"}}},
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "aws-eu-2"},
                "spec": {"aws": {"region": "eu-west-2", "accountId": "222222222222"}},
            },
        ],
    )
    assert run_cli("validate", str(root)).exit_code == 0


def test_destination_confirmation_flow(aws_env, moto_server, fleet):
    url = "https://hooks.example.com/iot"
    write(
        fleet,
        "rules.yaml",
        [
            doc("TopicRuleDestination", "hooks", {"http": {"confirmationUrl": url}, "confirmationWaitSeconds": 0}),
            {
                "apiVersion": "aws.fleetctl.io/v1",
                "kind": "TopicRule",
                "metadata": {"name": "to_hooks", "target": "aws-eu"},
                "spec": {
                    "sql": "SELECT * FROM 'sites/+/telemetry'",
                    "actions": [{"http": {"url": url + "/telemetry"}}],
                },
            },
        ],
    )
    first = run_cli("plan", str(fleet))
    assert "AWS sends a confirmation token to the confirmation URL" in first.stdout
    assert "[!destination-enabled]" in first.stdout
    res = run_cli("apply", str(fleet), "--auto-approve")
    assert res.exit_code != 0
    assert "is IN_PROGRESS, not ENABLED" in res.output
    assert "skipped: aws/aws-eu/TopicRule/to_hooks (a change it depends on failed)" in res.output
    c = iot()
    assert not c.list_topic_rules()["rules"]  # the rule waits for its destination
    (dest,) = c.list_topic_rule_destinations()["destinationSummaries"]
    assert dest["status"] == "IN_PROGRESS"
    with pytest.raises(c.exceptions.InvalidRequestException):  # AWS: an unconfirmed destination cannot be enabled
        c.update_topic_rule_destination(arn=dest["arn"], status="ENABLED")
    waiting = run_cli("plan", str(fleet))
    assert "the destination awaits its endpoint's confirmation" in waiting.stdout

    # the endpoint's owner confirms with the token AWS sent it (the sandbox exposes it on a sandbox-only route)
    sent = json.load(urllib.request.urlopen(f"{moto_server}/moto-api/fleetctl/topic-rule-destinations", timeout=10))
    (message,) = [m for m in sent if m["arn"] == dest["arn"]]
    assert message["confirmationUrl"] == url and message["messageType"] == "DestinationConfirmation"
    with pytest.raises(c.exceptions.InvalidRequestException):
        c.confirm_topic_rule_destination(confirmationToken="not-the-token")
    c.confirm_topic_rule_destination(confirmationToken=message["confirmationToken"])
    assert c.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"

    res = run_cli("apply", str(fleet), "--auto-approve")
    assert res.exit_code == 0, res.output
    assert [r["ruleName"] for r in c.list_topic_rules()["rules"]] == ["to_hooks"]
    assert run_cli("plan", str(fleet), "--detailed-exitcode").exit_code == 0

    # delete: the rule first (it uses the destination), then the destination, disabled before it is deleted
    (fleet / "rules.yaml").unlink()
    pruned = run_cli("plan", str(fleet), "--prune")
    assert "- aws/aws-eu/TopicRule/to_hooks" in pruned.stdout
    # a destination carries no ownership marker: an undeclared one is never pruned
    assert "- aws/aws-eu/TopicRuleDestination" not in pruned.stdout


def test_sandbox_errors_follow_aws(aws_env):
    c = iot()
    with pytest.raises(c.exceptions.NotConfiguredException):
        c.get_v2_logging_options()
    with pytest.raises(c.exceptions.InvalidRequestException):
        c.create_authorizer(authorizerName="x", authorizerFunctionArn=LAMBDA)  # signing on, no keys
    c.create_authorizer(authorizerName="x", authorizerFunctionArn=LAMBDA, signingDisabled=True)
    with pytest.raises(c.exceptions.DeleteConflictException):
        c.delete_authorizer(authorizerName="x")  # ACTIVE
    with pytest.raises(c.exceptions.InvalidRequestException):
        c.create_domain_configuration(domainConfigurationName="d", authorizerConfig={"defaultAuthorizerName": "nope"})
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_scheduled_audit(scheduledAuditName="none")
    with pytest.raises(c.exceptions.InvalidRequestException):  # the check is not enabled
        c.create_scheduled_audit(scheduledAuditName="a", frequency="DAILY", targetCheckNames=["LOGGING_DISABLED_CHECK"])
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
