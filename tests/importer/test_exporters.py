"""Every AWS exporter, through the whole import pipeline, plans clean against the state it was exported from.

The read is replaced by fixed actual resources (the shape AwsProvider.read returns), so this covers what moto
cannot serve (provisioning templates, CA registration configs, SNI_ONLY CAs) and is exact: the planner is the
real one, pairing the written manifests' desired state with that same actual state.
"""

from __future__ import annotations

import dataclasses

import pytest

from engine import run
from engine.importer import core
from engine.importer.aws import AwsImporter
from engine.importer.model import ImportRequest
from engine.importer.select import rename
from engine.manifest.fleet import load_fleet
from engine.model import ActualResource, Address
from engine.pki import cert_info
from engine.plan.planner import PlanOptions, plan
from tests.importer.accounts import CERTS, targets_only

CA_PEM = (CERTS / "springcore-sandbox-ca.pem").read_text()
DEV_PEM = (CERTS / "da1275b0.pem").read_text()
CA_ID, DEV_ID = cert_info(CA_PEM).cert_id, cert_info(DEV_PEM).cert_id


def res(kind: str, name: str, state: dict, *, managed: bool = False, **ids) -> ActualResource:
    return ActualResource(Address.of("aws", "aws-eu", kind, name), f"aws.{kind}", state, managed=managed, ids=ids)


ACCOUNT = [
    res("ThingType", "springpark", {"description": "reader", "searchableAttributes": ["serial"], "deprecated": False}),
    res("ThingType", "legacy", {"description": None, "searchableAttributes": [], "deprecated": True}),
    res(
        "ThingGroup",
        "readers",
        {"parent": None, "description": None, "attributes": {}, "policies": []},
        arn="arn:g/readers",
        members=[],
    ),
    res(
        "ThingGroup",
        "paris",
        {"parent": "readers", "description": "Paris", "attributes": {"site": "paris"}, "policies": ["reader-policy"]},
        arn="arn:g/paris",
        members=["DA1275B0"],
    ),
    res(
        "Policy",
        "reader-policy",
        {
            "document": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
            }
        },
        targets=[],
    ),
    res(
        "CACertificate",
        CA_ID,
        {
            "certificateId": CA_ID,
            "status": "ACTIVE",
            "autoRegistration": "ENABLE",
            "registrationConfig": {"templateName": "jitp", "roleArn": "arn:aws:iam::1:role/r"},
        },
        certificateMode="SNI_ONLY",
        arn="arn:ca",
    ),
    res(
        "Certificate",
        DEV_ID,
        {"certificateId": DEV_ID, "status": "INACTIVE", "caCertificate": CA_ID, "policies": ["reader-policy"]},
        arn="arn:c",
        certificateId=DEV_ID,
    ),
    res(
        "Thing",
        "DA1275B0",
        {
            "thingType": "springpark",
            "attributes": {"serial": "DA1275B0", "n": "007"},
            "groups": ["paris"],
            "principals": [DEV_ID],
        },
        version=3,
    ),
    res("Thing", "bench", {"thingType": None, "attributes": {}, "groups": [], "principals": []}, version=1),
    res(
        "TopicRule",
        "lora_rule",
        {
            "sql": "SELECT * FROM 'lora/#'",
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": True,
            "actions": [{"lambda": {"functionArn": "arn:aws:lambda:f"}}],
            "errorAction": {"republish": {"topic": "err", "roleArn": "arn:r"}},
        },
    ),
    res(
        "ProvisioningTemplate",
        "jitp",
        {
            "templateBody": {"Resources": {"thing": {"Type": "AWS::IoT::Thing"}}},
            "provisioningRoleArn": "arn:aws:iam::1:role/p",
            "description": None,
            "enabled": True,
            "type": "JITP",
            "preProvisioningHook": None,
        },
    ),
]


class FixedAccount(AwsImporter):
    """The AWS importer with its reads answered from fixed actual state (no endpoint)."""

    def __init__(self, actual: list[ActualResource]) -> None:
        super().__init__()
        self.actual = actual

    def read(self, session):
        return list(self.actual)

    def materials(self, session, selected):
        pems = {CA_ID: CA_PEM, DEV_ID: DEV_PEM}
        return {str(r.address): {"certificatePem": pems[r.address.name]} for r in selected if r.address.name in pems}


def imported(tmp_path, monkeypatch, actual, **request):
    monkeypatch.setattr(core, "importer_for", lambda provider: FixedAccount(actual))
    out = tmp_path / "out"
    ctx = run.Context(env={"FLEETCTL_NOW": "2026-11-21T10:00:00Z"})
    report = core.run_import(ImportRequest("aws-eu", out, targets_only(tmp_path), **request), ctx)
    return out, report


def renamed(actual: list[ActualResource]) -> list[ActualResource]:
    """The account as the provider reads it once the manifests name the certificates (and declare the policy,
    which makes its retention part of the state)."""
    names = {
        Address.of("aws", "aws-eu", "CACertificate", CA_ID): "springcore-sandbox-ca",
        Address.of("aws", "aws-eu", "Certificate", DEV_ID): "DA1275B0-cert",
    }
    return [
        dataclasses.replace(a, state={**a.state, "keepVersions": 5}) if a.kind == "aws.Policy" else a
        for a in rename(actual, names)
    ]


def test_every_kind_plans_clean_against_the_state_it_came_from(tmp_path, monkeypatch):
    out, report = imported(tmp_path, monkeypatch, ACCOUNT)
    assert sum(report.written.values()) == len(ACCOUNT)
    fleet = load_fleet(out, {}, resolve_secrets=False)
    assert not fleet.diagnostics.has_errors
    result = plan(fleet.desired, renamed(ACCOUNT), PlanOptions())
    assert result.changes == ()
    assert "certificateMode: SNI_ONLY" in (out / "aws-eu" / "ca-certificates.yaml").read_text()


@pytest.mark.parametrize(
    "field, value", [("attributes", {"serial": "X"}), ("groups", []), ("principals", []), ("thingType", None)]
)
def test_a_later_change_to_any_thing_field_shows_in_the_plan(tmp_path, monkeypatch, field, value):
    out, _ = imported(tmp_path, monkeypatch, ACCOUNT)
    drifted = [
        ActualResource(a.address, a.kind, {**a.state, field: value}, ids=a.ids)
        if a.address.name == "DA1275B0" and a.kind == "aws.Thing"
        else a
        for a in renamed(ACCOUNT)
    ]
    result = plan(load_fleet(out, {}, resolve_secrets=False).desired, drifted, PlanOptions())
    assert [(str(c.address), c.fields[0].field) for c in result.changes] == [("aws/aws-eu/Thing/DA1275B0", field)]


def test_unwritable_references_leave_the_field_unmanaged_never_emptied(tmp_path, monkeypatch):
    bad_policy = res("Policy", "a+b", {"document": {"Statement": []}})  # '+' is valid on AWS, not in fleetctl
    cert = res(
        "Certificate",
        DEV_ID,
        {"certificateId": DEV_ID, "status": "ACTIVE", "caCertificate": None, "policies": ["a+b", "reader-policy"]},
        certificateId=DEV_ID,
    )
    actual = [a for a in ACCOUNT if a.kind != "aws.Certificate"] + [bad_policy, cert]
    out, report = imported(tmp_path, monkeypatch, actual)
    text = (out / "aws-eu" / "certificates.yaml").read_text()
    assert "policies" not in text  # an empty list would plan a detach
    notes = {(n.topic, n.address) for n in report.notes}
    assert ("skipped", "aws/aws-eu/Policy/a+b") in notes
    assert ("unmanaged field", "aws/aws-eu/Certificate/DA1275B0-cert") in notes
    result = plan(load_fleet(out, {}, resolve_secrets=False).desired, renamed(actual), PlanOptions())
    assert result.changes == ()


def test_a_group_whose_parent_cannot_be_written_is_skipped_with_its_children(tmp_path, monkeypatch):
    actual = [
        res("ThingGroup", "_root", {"parent": None, "attributes": {}, "policies": []}),
        res("ThingGroup", "mid", {"parent": "_root", "attributes": {}, "policies": []}),
        res("ThingGroup", "leaf", {"parent": "mid", "attributes": {}, "policies": []}),
        res("Thing", "t1", {"thingType": None, "attributes": {}, "groups": ["leaf"], "principals": []}),
    ]
    out, report = imported(tmp_path, monkeypatch, actual)
    assert report.skipped == {"aws.ThingGroup": 3}
    assert report.written == {"aws.Thing": 1}
    assert "groups" not in (out / "aws-eu" / "things.yaml").read_text()
