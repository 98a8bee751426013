"""Security-relevant changes stand out (issue 12 point 2): the statement-level policy analysis, `assess` per kind in
both perspectives (plan: what applying does; drift: how the actual state differs from the manifests), the JSON form,
every view's "Needs attention" section and change-line flags — from plain data through the pure planner, then end to
end on moto: the example fleet's first plan, an out-of-band `iot:*` widening in drift and plan, and a prune delete."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.attention import Attention, Code, Severity, flags
from engine.model import Action, ActualResource, Address, Change, DesiredResource
from engine.plan import drilldown
from engine.plan.attention import assess
from engine.plan.driftview import drift_report
from engine.plan.model import Plan, change_from_json, change_to_json, plan_from_json
from engine.plan.planner import PlanOptions, plan
from engine.plan.policydiff import Aspect, covers, has_wildcard, statements, widenings
from engine.plan.render import markdown, text
from tests.conftest import run_cli

ARN = "arn:aws:iot:eu-west-2:123456789012"
CONNECT = {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"}
PUBLISH = {"Effect": "Allow", "Action": ["iot:Publish"], "Resource": [f"{ARN}:topic/readers/a"]}
WIDEN = {"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"}
DENY = {"Sid": "NoAdmin", "Effect": "Deny", "Action": ["iot:DeleteThing", "iot:UpdateCertificate"], "Resource": "*"}


def doc(*statements_: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements_)}


def one(findings: list) -> tuple[str, str, str, bool]:
    assert len(findings) == 1, findings
    f = findings[0]
    return f.statement, f.aspect, f.detail, f.wildcard


# ------------------------------------------------------------------------------------------ policy analysis
def test_an_added_allow_statement_is_named_by_sid_and_says_exactly_what_it_grants() -> None:
    before, after = doc(CONNECT, PUBLISH), doc(CONNECT, PUBLISH, WIDEN)
    findings = widenings(before, after)
    assert one(findings) == ("Statement[Sid=Widen]", Aspect.ALLOW, "iot:* on *", True)
    assert findings[0].as_change() == "adds Allow iot:* on * (wildcard)"
    assert findings[0].describe() == "Allow iot:* on * (wildcard)"
    assert widenings(after, before) == []  # removing it only narrows


def test_unchanged_reordered_and_narrowed_documents_do_not_widen() -> None:
    base = doc(CONNECT, PUBLISH, WIDEN, DENY)
    assert widenings(base, base) == []
    assert widenings(base, doc(DENY, WIDEN, PUBLISH, CONNECT)) == []  # statement order is no change
    shuffled = doc({**PUBLISH, "Resource": [f"{ARN}:topic/readers/b", f"{ARN}:topic/readers/a"]})
    assert (
        widenings(shuffled, doc({**PUBLISH, "Resource": [f"{ARN}:topic/readers/a", f"{ARN}:topic/readers/b"]})) == []
    )  # nor element order within one
    assert widenings(doc({**CONNECT, "Action": "iot:*"}), doc(CONNECT)) == []  # iot:* → iot:Connect narrows
    assert widenings(doc(CONNECT), doc({**CONNECT, "Action": "iot:*"}))[0].detail.startswith("iot:* on ")


def test_string_and_list_actions_json_strings_and_a_single_statement_object_are_the_same_document() -> None:
    as_list = doc({**CONNECT, "Action": ["iot:Connect"], "Resource": [CONNECT["Resource"]]})
    assert widenings(doc(CONNECT), as_list) == [] and widenings(as_list, doc(CONNECT)) == []
    assert widenings(json.dumps(doc(CONNECT)), doc(CONNECT)) == []
    assert widenings({"Statement": CONNECT}, doc(CONNECT)) == []
    assert one(widenings(json.dumps(doc(CONNECT)), json.dumps(doc(CONNECT, WIDEN))))[0] == "Statement[Sid=Widen]"
    assert widenings(doc(CONNECT), doc({**CONNECT, "Action": "IoT:CONNECT"})) == []  # actions ignore case


def test_a_new_action_or_resource_in_a_sidless_statement_names_its_index() -> None:
    wider = doc(CONNECT, {**PUBLISH, "Action": ["iot:Publish", "iot:Receive"]})
    assert one(widenings(doc(CONNECT, PUBLISH), wider)) == (
        "Statement[1]",
        Aspect.ALLOW,
        f"iot:Receive on {ARN}:topic/readers/a",
        False,
    )
    more = doc(CONNECT, {**PUBLISH, "Resource": [f"{ARN}:topic/readers/a", f"{ARN}:topic/readers/b"]})
    assert one(widenings(doc(CONNECT, PUBLISH), more))[2] == f"iot:Publish on {ARN}:topic/readers/b"
    # moving a grant to another statement grants nothing new
    split = doc(
        {
            **CONNECT,
            "Action": ["iot:Connect", "iot:Publish"],
            "Resource": [CONNECT["Resource"], f"{ARN}:topic/readers/a"],
        }
    )
    assert widenings(split, doc(CONNECT, PUBLISH)) == []


@pytest.mark.parametrize(
    "old,new",
    [
        (f"{ARN}:topic/readers/a", f"{ARN}:topic/readers/*"),
        (f"{ARN}:topic/readers/a", f"{ARN}:topic/readers/?"),
        (f"{ARN}:topicfilter/readers/a", f"{ARN}:topicfilter/readers/#"),
        (f"{ARN}:topicfilter/readers/a/x", f"{ARN}:topicfilter/readers/+/x"),
    ],
)
def test_wildcards_introduced_are_flagged_as_wildcards(old: str, new: str) -> None:
    action = "iot:Subscribe" if "topicfilter" in old else "iot:Publish"
    found = one(
        widenings(
            doc({"Effect": "Allow", "Action": action, "Resource": old}),
            doc({"Effect": "Allow", "Action": action, "Resource": new}),
        )
    )
    assert found == ("Statement[0]", Aspect.ALLOW, f"{action} on {new}", True)


def test_mqtt_wildcards_count_only_as_whole_levels_of_topic_resources() -> None:
    assert has_wildcard(f"{ARN}:topicfilter/a/#", resource=True) and has_wildcard(f"{ARN}:topic/+/b", resource=True)
    assert not has_wildcard(f"{ARN}:topic/a+b/c#", resource=True)
    assert not has_wildcard(f"{ARN}:client/#", resource=True)  # a client id, not a topic
    assert has_wildcard("iot:*") and not has_wildcard("iot:Connect")


def test_glob_containment_is_sound() -> None:
    assert covers("*", "iot:*") and covers("iot:*", "iot:Pub*") and covers("iot:*", "iot:Publish")
    assert covers("a*", "a?b") and covers("a?c", "abc") and covers("a*c*", "a*c")
    assert not covers("iot:Pub*", "iot:*") and not covers("a?", "a*") and not covers("a", "a*")
    assert not covers("iot:Connect", "iot:Connect2") and covers("IOT:connect", "iot:Connect", True)


def test_a_deny_removed_narrowed_or_made_conditional_widens_and_adding_one_does_not() -> None:
    base = doc(WIDEN, DENY)
    assert widenings(doc(WIDEN), base) == []  # a Deny added narrows
    assert one(widenings(base, doc(WIDEN))) == (
        "Statement[Sid=NoAdmin]",
        Aspect.DENY,
        "[iot:DeleteThing, iot:UpdateCertificate] on *",
        False,
    )
    assert widenings(base, doc(WIDEN))[0].as_change() == "removes Deny [iot:DeleteThing, iot:UpdateCertificate] on *"
    narrowed = doc(WIDEN, {**DENY, "Action": "iot:DeleteThing"})
    assert one(widenings(base, narrowed))[2] == "iot:UpdateCertificate on *"
    conditional = doc(WIDEN, {**DENY, "Condition": {"Bool": {"aws:SecureTransport": False}}})
    assert one(widenings(base, conditional))[1] == Aspect.DENY
    assert widenings(conditional, base) == []  # dropping a Deny's condition denies more
    assert widenings(base, doc(WIDEN, {**DENY, "Action": "iot:*"})) == []  # a wider Deny still covers


def test_a_condition_removed_or_loosened_on_an_allow_widens_and_one_added_does_not() -> None:
    strict = {**CONNECT, "Condition": {"StringEquals": {"iot:ClientId": ["reader-1"]}}}
    assert one(widenings(doc(strict), doc(CONNECT))) == (
        "Statement[0]",
        Aspect.CONDITION,
        "Condition StringEquals iot:ClientId reader-1 not required",
        False,
    )
    looser = {**CONNECT, "Condition": {"StringEquals": {"iot:ClientId": ["reader-1", "reader-2"]}}}
    assert one(widenings(doc(strict), doc(looser)))[2] == "Condition StringEquals iot:ClientId also allows reader-2"
    assert widenings(doc(CONNECT), doc(strict)) == [] and widenings(doc(looser), doc(strict)) == []
    # the loosened statement that also gains an action says both, each once
    both = {**CONNECT, "Action": ["iot:Connect", "iot:Publish"]}
    aspects = [f.aspect for f in widenings(doc(strict), doc(both))]
    assert aspects == [Aspect.CONDITION, Aspect.ALLOW]


def test_not_action_and_not_resource_introduced_widen() -> None:
    not_action = {"Sid": "Everything", "Effect": "Allow", "NotAction": "iot:DeleteThing", "Resource": "*"}
    found = one(widenings(doc(CONNECT), doc(CONNECT, not_action)))
    assert found[:2] == ("Statement[Sid=Everything]", Aspect.NOT_ELEMENT) and "every other action" in found[2]
    assert widenings(doc(CONNECT, not_action), doc(CONNECT)) == []
    fewer = {**not_action, "NotAction": ["iot:DeleteThing", "iot:Publish"]}
    assert widenings(doc(not_action), doc(fewer)) == []  # excluding more narrows
    assert one(widenings(doc(fewer), doc(not_action)))[2] == "NotAction no longer excludes iot:Publish"
    # a Deny with NotResource denies everything else: exempting more widens
    deny = {"Sid": "Fence", "Effect": "Deny", "Action": "iot:*", "NotResource": [f"{ARN}:topic/a"]}
    exempt = {**deny, "NotResource": [f"{ARN}:topic/a", f"{ARN}:topic/b"]}
    assert one(widenings(doc(WIDEN, deny), doc(WIDEN, exempt)))[2] == f"Deny NotResource also exempts {ARN}:topic/b"
    assert widenings(doc(WIDEN, exempt), doc(WIDEN, deny)) == []


def test_statements_are_normalised() -> None:
    (s,) = statements(doc({"Effect": "Allow", "Action": ["b", "a", "a"], "Resource": "*"}))
    assert s.actions == ("a", "b") and s.resources == ("*",) and s.label == "Statement[0]"


# ------------------------------------------------------------------------------------------ assess, per kind
A = Address.of("aws", "aws-eu", "Policy", "reader-policy")


def change(
    kind: str,
    action: Action,
    desired: dict | None = None,
    actual: dict | None = None,
    name: str = "x",
    reason: str = "",
) -> Change:
    provider, k = kind.split(".")
    target = "aws-eu" if provider == "aws" else "azure-prod"
    return Change(
        Address.of(provider, target, k, name), kind, action, reason=reason, desired=desired or {}, actual=actual or {}
    )


def codes(items: tuple[Attention, ...]) -> list[tuple[str, str]]:
    return [(a.code, a.severity) for a in items]


def drift_codes(items: tuple[Attention, ...]) -> list[tuple[str, str] | None]:
    return [(a.drift.code, a.drift.severity) if a.drift else None for a in items]


def test_policy_widened_by_the_manifest_reads_as_widening_in_the_plan_and_as_less_in_drift() -> None:
    items = assess(change("aws.Policy", Action.UPDATE, {"document": doc(CONNECT, WIDEN)}, {"document": doc(CONNECT)}))
    assert codes(items) == [(Code.PERMISSIONS_WIDENED, Severity.HIGH)]
    assert items[0].message == "Statement[Sid=Widen]: adds Allow iot:* on * (wildcard)"
    assert drift_codes(items) == [(Code.PERMISSIONS_NARROWED, Severity.WARNING)]
    assert items[0].drift.message == (
        "actual policy grants less than the manifest (re-applying grants it): "
        "Statement[Sid=Widen]: Allow iot:* on * (wildcard)"
    )


def test_policy_widened_out_of_band_is_the_plans_narrowing_and_drifts_widening() -> None:
    items = assess(change("aws.Policy", Action.UPDATE, {"document": doc(CONNECT)}, {"document": doc(CONNECT, WIDEN)}))
    assert codes(items) == [(Code.PERMISSIONS_NARROWED, Severity.INFO)]
    assert items[0].message == (
        "actual policy grants more than the manifest: Statement[Sid=Widen]: Allow iot:* on * "
        "(wildcard); applying removes it"
    )
    assert drift_codes(items) == [(Code.PERMISSIONS_WIDENED, Severity.HIGH)]
    assert items[0].drift.message == (
        "actual policy grants more than the manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard)"
    )


def test_policy_created_lists_its_grants_and_other_policy_changes_are_not_flagged() -> None:
    items = assess(change("aws.Policy", Action.CREATE, {"document": doc(CONNECT, DENY), "keepVersions": 5}))
    assert codes(items) == [(Code.PERMISSIONS_WIDENED, Severity.HIGH)] and drift_codes(items) == [None]
    assert items[0].message == f"Statement[0]: grants Allow iot:Connect on {CONNECT['Resource']}"
    same = {"document": doc(CONNECT)}
    assert assess(change("aws.Policy", Action.UPDATE, {**same, "keepVersions": 3}, {**same, "keepVersions": 5})) == ()
    reordered = change(
        "aws.Policy", Action.UPDATE, {"document": doc(PUBLISH, CONNECT)}, {"document": doc(CONNECT, PUBLISH)}
    )
    assert assess(reordered) == ()
    deleted = assess(
        change(
            "aws.Policy",
            Action.DELETE,
            actual={"document": doc(WIDEN)},
            reason="managed by fleetctl, no longer declared, pruning enabled",
        )
    )
    assert codes(deleted) == [(Code.DELETE, Severity.WARNING)]
    assert deleted[0].message == "deletes the aws.Policy (managed by fleetctl, no longer declared, pruning enabled)"
    assert deleted[0].drift.message.startswith("exists, is managed by fleetctl and no manifest declares it")


def test_certificates_activated_and_policies_attached_both_ways() -> None:
    created = assess(change("aws.Certificate", Action.CREATE, {"status": "ACTIVE", "policies": ["reader-policy"]}))
    assert codes(created) == [(Code.CERTIFICATE_ACTIVATED, Severity.HIGH), (Code.POLICY_ATTACHED, Severity.HIGH)]
    assert [a.message for a in created] == [
        "registers the certificate ACTIVE (it can connect)",
        "attaches policy reader-policy to the new certificate",
    ]
    assert drift_codes(created) == [None, None]  # a missing certificate is no escalation
    assert codes(assess(change("aws.Certificate", Action.CREATE, {"status": "INACTIVE"}))) == []
    activated = assess(
        change(
            "aws.Certificate",
            Action.UPDATE,
            {"status": "ACTIVE", "policies": ["p"]},
            {"status": "INACTIVE", "policies": ["p"]},
        )
    )
    assert codes(activated) == [(Code.CERTIFICATE_ACTIVATED, Severity.HIGH)]
    assert activated[0].drift == Attention(
        Code.CERTIFICATE_DEACTIVATED,
        "the actual certificate is INACTIVE; the manifest says ACTIVE: re-applying activates it",
        Severity.WARNING,
    )
    activated_out_of_band = assess(
        change("aws.Certificate", Action.UPDATE, {"status": "INACTIVE"}, {"status": "ACTIVE"})
    )
    assert codes(activated_out_of_band) == [(Code.CERTIFICATE_DEACTIVATED, Severity.INFO)]
    assert activated_out_of_band[0].drift == Attention(
        Code.CERTIFICATE_ACTIVATED, "the actual certificate is ACTIVE; the manifest says INACTIVE", Severity.HIGH
    )
    attached = assess(
        change(
            "aws.Certificate",
            Action.UPDATE,
            {"status": "ACTIVE", "policies": ["a", "b"]},
            {"status": "ACTIVE", "policies": ["a", "c"]},
        )
    )
    assert [(a.code, a.message) for a in attached] == [
        (Code.POLICY_ATTACHED, "attaches policy b to the certificate"),
        (Code.POLICY_DETACHED, "detaches policy c from the certificate"),
    ]
    assert attached[1].drift.message == (
        "policy c is attached to the actual certificate; the manifest does not attach it"
    )
    replaced = assess(
        change(
            "aws.Certificate",
            Action.REPLACE,
            {"status": "ACTIVE", "certificateId": "new"},
            {"status": "ACTIVE", "certificateId": "old"},
            reason="certificateId cannot be updated",
        )
    )
    assert codes(replaced) == [(Code.CERTIFICATE_ACTIVATED, Severity.HIGH), (Code.REPLACE, Severity.WARNING)]
    group = assess(change("aws.ThingGroup", Action.UPDATE, {"policies": ["p"]}, {"policies": []}))
    assert [a.message for a in group] == ["attaches policy p to the thing group"]


def test_ca_registered_with_auto_registration_and_jitp() -> None:
    items = assess(
        change(
            "aws.CACertificate",
            Action.CREATE,
            {"status": "ACTIVE", "autoRegistration": "ENABLE", "registrationConfig": {"templateName": "jitp"}},
            name="springcore-sandbox-ca",
        )
    )
    assert [a.code for a in items] == [Code.CA_REGISTERED, Code.AUTO_REGISTRATION_ENABLED, Code.PROVISIONING_ENABLED]
    assert items[0].message == (
        "registers CA certificate springcore-sandbox-ca (status ACTIVE, auto-registration "
        "ENABLE): certificates it signs can be registered"
    )
    assert items[2].message == "attaches JITP template jitp to the new CA (just-in-time provisioning)"
    enabled = assess(
        change(
            "aws.CACertificate",
            Action.UPDATE,
            {"status": "ACTIVE", "autoRegistration": "ENABLE"},
            {"status": "INACTIVE", "autoRegistration": "DISABLE"},
        )
    )
    assert [a.code for a in enabled] == [Code.CA_ACTIVATED, Code.AUTO_REGISTRATION_ENABLED]
    out_of_band = assess(
        change(
            "aws.CACertificate",
            Action.UPDATE,
            {"status": "ACTIVE", "autoRegistration": "DISABLE"},
            {"status": "ACTIVE", "autoRegistration": "ENABLE"},
        )
    )
    assert codes(out_of_band) == [(Code.AUTO_REGISTRATION_DISABLED, Severity.INFO)]
    assert drift_codes(out_of_band) == [(Code.AUTO_REGISTRATION_ENABLED, Severity.HIGH)]


def test_provisioning_templates_enabled_or_unhooked() -> None:
    fleet = {"enabled": True, "type": "FLEET_PROVISIONING", "preProvisioningHook": None}
    assert [a.message for a in assess(change("aws.ProvisioningTemplate", Action.CREATE, fleet))] == [
        "creates the fleet provisioning template enabled",
        "the template has no pre-provisioning hook: every holder of a claim certificate provisions",
    ]
    hook = {"targetArn": "arn:aws:lambda:eu-west-2:123456789012:function:check"}
    unhooked = assess(change("aws.ProvisioningTemplate", Action.UPDATE, fleet, {**fleet, "preProvisioningHook": hook}))
    assert [(a.code, a.message) for a in unhooked] == [
        (Code.PROVISIONING_ENABLED, "removes the pre-provisioning hook: devices provision without the hook's check")
    ]
    enabled = assess(
        change(
            "aws.ProvisioningTemplate",
            Action.UPDATE,
            {**fleet, "preProvisioningHook": hook},
            {**fleet, "enabled": False, "preProvisioningHook": hook},
        )
    )
    assert [a.message for a in enabled] == ["enables the fleet provisioning template"]
    jitp = assess(change("aws.ProvisioningTemplate", Action.CREATE, {"enabled": True, "type": "JITP"}))
    assert [a.message for a in jitp] == ["creates the JITP provisioning template enabled"]
    assert assess(change("aws.ProvisioningTemplate", Action.CREATE, {**fleet, "enabled": False})) == ()


def test_azure_symmetric_keys_enrollment_groups_and_hub_cas() -> None:
    device = assess(change("azure.Device", Action.CREATE, {"authentication": {"type": "symmetricKey"}}, name="device2"))
    assert [(a.code, a.message) for a in device] == [
        (Code.SYMMETRIC_KEY, "adds a symmetric-key (SAS) device: whoever holds its key connects as it")
    ]
    assert assess(change("azure.Device", Action.CREATE, {"authentication": {"type": "x509CA"}})) == ()
    switched = assess(
        change(
            "azure.Device",
            Action.UPDATE,
            {"authentication": {"type": "x509CA"}},
            {"authentication": {"type": "symmetricKey"}},
        )
    )
    assert drift_codes(switched) == [(Code.SYMMETRIC_KEY, Severity.HIGH)]
    enrollment = assess(change("azure.Enrollment", Action.CREATE, {"attestation": {"type": "symmetricKey"}}))
    assert [a.message for a in enrollment] == ["adds a symmetric-key enrollment: whoever holds its key provisions"]
    group = assess(
        change(
            "azure.EnrollmentGroup",
            Action.CREATE,
            {"attestation": {"type": "x509", "caReferences": {"primary": "rootca"}}, "provisioningStatus": "enabled"},
        )
    )
    assert [a.message for a in group] == [
        "creates the enrollment group with provisioning enabled: every device it "
        "admits (certificates CA rootca signs) registers"
    ]
    keyed = assess(
        change(
            "azure.EnrollmentGroup",
            Action.CREATE,
            {"attestation": {"type": "symmetricKey"}, "provisioningStatus": "disabled"},
        )
    )
    assert [a.code for a in keyed] == [Code.SYMMETRIC_KEY]
    hub = assess(change("azure.HubCertificate", Action.CREATE, {"isVerified": True, "thumbprint": "AB"}, name="rootca"))
    assert [a.code for a in hub] == [Code.CA_REGISTERED]
    verified = assess(
        change("azure.HubCertificate", Action.UPDATE, {"isVerified": True}, {"isVerified": False}, name="rootca")
    )
    assert [a.message for a in verified] == ["verifies CA certificate rootca: devices it signs authenticate"]


def test_plain_changes_carry_nothing_and_codes_are_a_closed_vocabulary() -> None:
    assert assess(change("aws.Thing", Action.UPDATE, {"attributes": {"a": "1"}}, {"attributes": {"a": "2"}})) == ()
    assert codes(assess(change("aws.Thing", Action.DELETE, actual={"attributes": {}}))) == [
        (Code.DELETE, Severity.WARNING)
    ]
    with pytest.raises(ValueError):
        Attention("looks-bad", "x", Severity.HIGH)
    with pytest.raises(ValueError):
        Attention(Code.DELETE, "x", "critical")
    items = (
        Attention(Code.DELETE, "a", Severity.WARNING),
        Attention(Code.DELETE, "b", Severity.WARNING),
        Attention(Code.POLICY_ATTACHED, "c", Severity.HIGH),
    )
    assert flags(items) == "[!delete] [!policy-attached]"


# ------------------------------------------------------------------------------------------ planner, JSON, views
def widened_plan() -> Plan:
    """An out-of-band widening of one policy, a certificate activated by the manifest and a pruned thing."""
    policy = Address.of("aws", "aws-eu", "Policy", "reader-policy")
    cert = Address.of("aws", "aws-eu", "Certificate", "c1")
    thing = Address.of("aws", "aws-eu", "Thing", "gone")
    desired = [
        DesiredResource(policy, "aws.Policy", {"document": doc(CONNECT), "keepVersions": 5}),
        DesiredResource(cert, "aws.Certificate", {"status": "ACTIVE", "certificateId": "c1", "policies": []}),
    ]
    actual = [
        ActualResource(
            policy,
            "aws.Policy",
            {"document": doc(CONNECT, WIDEN), "keepVersions": 5},
            token="v2",
            managed=True,
            ids={"versions": [1, 2], "defaultVersionId": "2"},
        ),
        ActualResource(
            cert, "aws.Certificate", {"status": "INACTIVE", "certificateId": "c1", "policies": []}, managed=True
        ),
        ActualResource(thing, "aws.Thing", {"attributes": {}}, token="1", managed=True),
    ]
    return plan(
        desired,
        actual,
        PlanOptions(
            prune_targets=frozenset({"aws-eu"}), created_at="2026-11-21T10:00:00Z", git_commit="c0ffee" + "0" * 34
        ),
    )


def test_the_planner_stores_attention_and_the_plan_file_round_trips_it() -> None:
    p = widened_plan()
    by = {c.address.name: c for c in p.changes}
    assert [a.code for a in by["reader-policy"].attention] == [Code.PERMISSIONS_NARROWED]
    assert [a.code for a in by["c1"].attention] == [Code.CERTIFICATE_ACTIVATED]
    assert [a.code for a in by["gone"].attention] == [Code.DELETE]
    data = json.loads(p.dumps())
    assert [(x["address"], x["code"]) for x in data["attention"]] == [
        ("aws/aws-eu/Policy/reader-policy", Code.PERMISSIONS_NARROWED),
        ("aws/aws-eu/Certificate/c1", Code.CERTIFICATE_ACTIVATED),
        ("aws/aws-eu/Thing/gone", Code.DELETE),
    ]
    assert data["attention"][0] == {
        "address": "aws/aws-eu/Policy/reader-policy",
        "code": Code.PERMISSIONS_NARROWED,
        "severity": Severity.INFO,
        "message": by["reader-policy"].attention[0].message,
    }
    policy_json = next(c for c in data["changes"] if c["address"].endswith("reader-policy"))
    assert policy_json["attention"][0]["drift"]["code"] == Code.PERMISSIONS_WIDENED
    again = plan_from_json(data)
    assert again.changes == p.changes and again.dumps() == p.dumps()
    for c in p.changes:
        assert change_from_json(change_to_json(c)) == c
    assert [a.code for _, a in p.attention] == [x["code"] for x in data["attention"]]


def test_text_and_markdown_list_needs_attention_at_the_top_and_flag_each_change_line() -> None:
    p = widened_plan()
    out = text(p)
    lines = out.splitlines()
    assert lines[2] == "Needs attention (3: 1 high, 1 warning, 1 info):"
    assert lines[3] == (
        "  ! [!certificate-activated] aws/aws-eu/Certificate/c1: sets the certificate ACTIVE (it can connect)"
    )
    assert (
        lines[4] == "  ! [!delete] aws/aws-eu/Thing/gone: deletes the aws.Thing (managed by fleetctl, no longer "
        "declared, pruning enabled)"
    )
    assert lines[5] == (
        "  i [!permissions-narrowed] aws/aws-eu/Policy/reader-policy: actual policy grants more than "
        "the manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard); applying removes it"
    )
    assert "  ~ aws/aws-eu/Policy/reader-policy  [!permissions-narrowed]" in lines
    assert "  - aws/aws-eu/Thing/gone  [!delete]" in lines
    assert lines.index("  ~ aws/aws-eu/Policy/reader-policy  [!permissions-narrowed]") > 5
    md = markdown(p)
    summary = md.index("**Plan: 0 to create, 2 to update, 0 to replace, 1 to delete.**")
    caution = md.index("> [!CAUTION]\n> **Needs attention: 3 item(s)** (1 high, 1 warning, 1 info)\n")
    assert summary < caution < md.index("| kind |")
    assert (
        "> - ℹ️ **permissions-narrowed** `aws/aws-eu/Policy/reader-policy`: `actual policy grants more than the "
        "manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard); applying removes it`"
    ) in md
    assert "! update aws/aws-eu/Policy/reader-policy  [!permissions-narrowed]" in md
    assert "destructive change(s)** (delete" not in md  # the old warning block is gone


def test_the_markdown_block_survives_shrinking() -> None:
    desired = [
        DesiredResource(
            Address.of("aws", "aws-eu", "Certificate", f"c{i:05d}"),
            "aws.Certificate",
            {"status": "ACTIVE", "certificateId": f"{i:064x}", "policies": ["reader-policy"]},
        )
        for i in range(3000)
    ]
    p = plan(desired, [], PlanOptions())
    md = markdown(p)
    assert len(md) < 65536
    assert "> **Needs attention: 6000 item(s)** (6000 high)" in md
    assert "> - … and " in md and "more **certificate-activated**" in md and "more **policy-attached**" in md
    assert "left out above to fit one comment" in md
    small = markdown(p, budget=20000)
    assert "> **Needs attention: 6000 item(s)** (6000 high)" in small and "more **policy-attached**" in small
    out = text(p)  # a terminal has no size limit: every item is listed
    assert out.count("[!certificate-activated] aws/aws-eu/Certificate/") == 3000 and "… and" not in out


def test_drift_reads_the_actual_side_widened_in_text_markdown_and_json() -> None:
    p = widened_plan()
    report = drift_report(p, "text").splitlines()
    assert report[1] == "Needs attention (3: 1 high, 2 warning):"
    assert report[2] == (
        "  ! [!permissions-widened] aws/aws-eu/Policy/reader-policy: actual policy grants more than "
        "the manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard)"
    )
    assert "  aws/aws-eu/Policy/reader-policy: differs  [!permissions-widened]" in report
    assert "  aws/aws-eu/Certificate/c1: differs  [!certificate-deactivated]" in report
    md = drift_report(p, "markdown")
    assert md.index("> [!CAUTION]") < md.index("| resource | drift |")
    assert (
        "> - 🔴 **permissions-widened** `aws/aws-eu/Policy/reader-policy`: `actual policy grants more than the "
        "manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard)`"
    ) in md
    assert "\n| `aws/aws-eu/Policy/reader-policy`  [!permissions-widened] | differs" in md
    data = json.loads(drift_report(p, "json"))
    assert data["attention"][0] == {
        "address": "aws/aws-eu/Policy/reader-policy",
        "code": Code.PERMISSIONS_WIDENED,
        "severity": Severity.HIGH,
        "message": "actual policy grants more than the manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard)",
    }
    entry = next(d for d in data["drift"] if d["address"].endswith("reader-policy"))
    assert entry["attention"] == [{k: v for k, v in data["attention"][0].items() if k != "address"}]
    cert = next(d for d in data["drift"] if d["address"].endswith("c1"))
    assert [a["code"] for a in cert["attention"]] == [Code.CERTIFICATE_DEACTIVATED]
    # the manifest widening (not applied yet) is no escalation in drift
    manifest_wider = plan(
        [DesiredResource(A, "aws.Policy", {"document": doc(CONNECT, WIDEN), "keepVersions": 5})],
        [ActualResource(A, "aws.Policy", {"document": doc(CONNECT), "keepVersions": 5}, managed=True)],
        PlanOptions(),
    )
    assert "[!permissions-widened]" in text(manifest_wider)
    drift_text = drift_report(manifest_wider, "text")
    assert "[!permissions-widened]" not in drift_text and "[!permissions-narrowed]" in drift_text
    assert "actual policy grants less than the manifest (re-applying grants it)" in drift_text


def test_show_address_lists_the_items() -> None:
    p = widened_plan()
    chosen = drilldown.select(p, ["aws/aws-eu/Policy/*"])
    out = drilldown.render(p, ["aws/aws-eu/Policy/*"], chosen)
    assert "  ~ update aws/aws-eu/Policy/reader-policy  [!permissions-narrowed]" in out
    assert (
        "      attention: [!permissions-narrowed] (info) actual policy grants more than the manifest: "
        "Statement[Sid=Widen]: Allow iot:* on * (wildcard); applying removes it"
    ) in out
    assert (
        json.loads(drilldown.render(p, ["x"], chosen, "json"))["changes"][0]["attention"][0]["code"]
        == Code.PERMISSIONS_NARROWED
    )


# ------------------------------------------------------------------------------------------ end to end (moto)
def _json_plan(fleet: Path, *extra: str) -> dict:
    res = run_cli("plan", str(fleet), "--format", "json", "--detailed-exitcode", *extra)
    assert res.exit_code == 2, res.output
    return json.loads(res.stdout)


def test_first_plan_of_the_example_fleet_flags_the_ca_auto_registration_and_active_certificates(aws_env, fleet_dir):
    path = fleet_dir / "aws" / "springpark.yaml"
    path.write_text(path.read_text().replace("autoRegistration: DISABLE", "autoRegistration: ENABLE", 1))
    data = _json_plan(fleet_dir)
    items = {(x["address"], x["code"]) for x in data["attention"]}
    ca = "aws/aws-eu/CACertificate/springcore-sandbox-ca"
    assert {(ca, Code.CA_REGISTERED), (ca, Code.AUTO_REGISTRATION_ENABLED)} <= items
    for serial in ("da1275b0", "da1275b1", "da1275b2"):
        cert = f"aws/aws-eu/Certificate/springpark-{serial}"
        assert {(cert, Code.CERTIFICATE_ACTIVATED), (cert, Code.POLICY_ATTACHED)} <= items
    assert ("aws/aws-eu/Policy/reader-policy", Code.PERMISSIONS_WIDENED) in items
    by = {c["address"]: c for c in data["changes"]}
    assert [a["code"] for a in by[ca]["attention"]] == [Code.CA_REGISTERED, Code.AUTO_REGISTRATION_ENABLED]
    out = run_cli("plan", str(fleet_dir)).stdout
    assert out.index("Needs attention (") < out.index(f"  + {ca}")
    assert f"  + {ca}  [!ca-registered] [!auto-registration-enabled]" in out
    assert "any certificate it signs registers itself on first connect" in out
    md = run_cli("plan", str(fleet_dir), "--format", "markdown").stdout
    assert f"> - 🔴 **auto-registration-enabled** `{ca}`" in md


def statement_items(items: list[dict]) -> list[dict]:
    """The statement-level items (this module's), without the effective-permission ones that
    engine/plan/permissions.py adds from the authz evaluator (tests/plan/test_permission_changes.py)."""
    return [x for x in items if not x["message"].startswith("effective permissions ")]


def test_out_of_band_widening_is_flagged_in_drift_plan_and_show(aws_env, fleet_dir, tmp_path):
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    iot = boto3.client("iot", region_name="eu-west-2")
    current = json.loads(iot.get_policy(policyName="reader-policy")["policyDocument"])
    current["Statement"].append({"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"})
    iot.create_policy_version(policyName="reader-policy", policyDocument=json.dumps(current), setAsDefault=True)
    address = "aws/aws-eu/Policy/reader-policy"
    drift_words = "actual policy grants more than the manifest: Statement[Sid=Widen]: Allow iot:* on * (wildcard)"

    res = run_cli("drift", str(fleet_dir))
    assert res.exit_code == 2, res.output
    lines = res.stdout.splitlines()
    # the statement-level item, then the effective-permission item (engine/plan/permissions.py)
    assert lines[1] == "Needs attention (2: 2 high):"
    assert lines[2] == f"  ! [!permissions-widened] {address}: {drift_words}"
    assert lines[3].startswith(f"  ! [!permissions-widened] {address}: effective permissions in the account exceed")
    assert any(line.startswith(f"  {address}: differs") and line.endswith("[!permissions-widened]") for line in lines)
    md = run_cli("drift", str(fleet_dir), "--format", "markdown").stdout
    assert f"> - 🔴 **permissions-widened** `{address}`: `{drift_words}`" in md
    assert md.index("> [!CAUTION]") < md.index("| resource |")
    report = json.loads(run_cli("drift", str(fleet_dir), "--format", "json").stdout)
    assert statement_items(report["attention"]) == [
        {"address": address, "code": "permissions-widened", "message": drift_words, "severity": "high"}
    ]
    entry = next(d for d in report["drift"] if d["address"] == address)
    assert statement_items(entry["attention"]) == [
        {"code": "permissions-widened", "message": drift_words, "severity": "high"}
    ]

    plan_words = f"{drift_words}; applying removes it"
    res = run_cli("plan", str(fleet_dir), "--out", str(tmp_path / "plan.json"))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[2] == "Needs attention (2: 2 info):"
    assert lines[3] == f"  i [!permissions-narrowed] {address}: {plan_words}"
    assert f"  ~ {address}  [!permissions-narrowed]" in lines
    md = run_cli("plan", str(fleet_dir), "--format", "markdown").stdout
    assert f"> - ℹ️ **permissions-narrowed** `{address}`: `{plan_words}`" in md
    data = _json_plan(fleet_dir)
    assert statement_items(data["attention"]) == [
        {"address": address, "code": "permissions-narrowed", "severity": "info", "message": plan_words}
    ]
    (policy,) = [c for c in data["changes"] if c["address"] == address]
    assert statement_items(policy["attention"]) == [
        {
            "code": "permissions-narrowed",
            "message": plan_words,
            "severity": "info",
            "drift": {"code": "permissions-widened", "message": drift_words, "severity": "high"},
        }
    ]
    shown = run_cli("show", str(tmp_path / "plan.json"), "--address", address)
    assert f"  ~ update {address}  [!permissions-narrowed]" in shown.stdout
    assert f"      attention: [!permissions-narrowed] (info) {plan_words}" in shown.stdout


def test_manifest_widening_is_flagged_in_the_plan_and_a_prune_delete_is_listed(aws_env, fleet_dir):
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    path = fleet_dir / "aws" / "springpark.yaml"
    text_ = path.read_text()
    text_ = text_.replace(
        "      - Effect: Allow\n        Action: iot:Connect\n",
        '      - Sid: Widen\n        Effect: Allow\n        Action: iot:*\n        Resource: "*"\n'
        "      - Effect: Allow\n        Action: iot:Connect\n",
        1,
    )
    docs = text_.split("\n---\n")
    assert "name: DA1275B2" in docs[-1]
    path.write_text("\n---\n".join(docs[:-1]) + "\n")
    data = _json_plan(fleet_dir, "--prune")
    assert [(x["address"], x["code"], x["severity"]) for x in statement_items(data["attention"])] == [
        ("aws/aws-eu/Policy/reader-policy", "permissions-widened", "high"),
        ("aws/aws-eu/Thing/DA1275B2", "delete", "warning"),
    ]
    assert data["attention"][0]["message"] == "Statement[Sid=Widen]: adds Allow iot:* on * (wildcard)"
    out = run_cli("plan", str(fleet_dir), "--prune").stdout
    assert "  ~ aws/aws-eu/Policy/reader-policy  [!permissions-widened]" in out
    assert "  - aws/aws-eu/Thing/DA1275B2  [!delete]" in out
    drift = run_cli("drift", str(fleet_dir), "--prune").stdout
    (policy_line,) = [line for line in drift.splitlines() if line.startswith("  aws/aws-eu/Policy/reader-policy: ")]
    assert "[!permissions-widened]" not in policy_line and "[!permissions-narrowed]" in policy_line
    # the pruned thing still exists in the account: it may connect and publish where the manifests allow nothing
    assert "! [!permissions-widened] aws/aws-eu/Thing/DA1275B2: effective permissions in the account exceed" in drift


# ------------------------------------------------------------------------------------------ soundness (hypothesis)
ACTIONS = ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe", "iot:DeleteThing"]
RESOURCES = [f"{ARN}:topic/a", f"{ARN}:topic/a/b", f"{ARN}:topic/c", f"{ARN}:client/r1", f"{ARN}:client/r2"]
ACTION_PATTERNS = ACTIONS + ["iot:*", "iot:P*", "*", "iot:?onnect"]
RESOURCE_PATTERNS = RESOURCES + ["*", f"{ARN}:topic/*", f"{ARN}:topic/a*", f"{ARN}:client/r?"]
CLIENTS = ["r1", "r2", "r3"]


def _statement() -> st.SearchStrategy:
    def build(effect, actions, not_actions, resources, not_resources, sid, clients, operator):
        s = {"Effect": effect, "Resource" if not not_resources else "NotResource": resources}
        s["NotAction" if not_actions else "Action"] = actions if len(actions) > 1 else actions[0]
        if clients is not None:
            s["Condition"] = {operator: {"iot:ClientId": clients}}
        return {**s, **({"Sid": sid} if sid else {})}

    return st.builds(
        build,
        st.sampled_from(["Allow", "Deny"]),
        st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3),
        st.booleans(),
        st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3),
        st.booleans(),
        st.sampled_from([None, None, "A", "B"]),
        st.none() | st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=2, unique=True),
        st.sampled_from(["StringEquals", "StringNotEquals"]),
    )


def _documents() -> st.SearchStrategy:
    return st.lists(_statement(), min_size=0, max_size=4).map(lambda ss: doc(*ss))


def _matches(s: dict, action: str, resource: str, client: str) -> bool:
    listed = lambda v: [v] if isinstance(v, str) else v  # noqa: E731
    for operator, keys in s.get("Condition", {}).items():
        if (client in keys["iot:ClientId"]) != (operator == "StringEquals"):
            return False
    if "NotAction" in s:
        if any(fnmatchcase(action.lower(), p.lower()) for p in listed(s["NotAction"])):
            return False
    elif not any(fnmatchcase(action.lower(), p.lower()) for p in listed(s["Action"])):
        return False
    if "NotResource" in s:
        return not any(fnmatchcase(resource, p) for p in listed(s["NotResource"]))
    return any(fnmatchcase(resource, p) for p in listed(s["Resource"]))


def _allowed(document: dict) -> set[tuple[str, str]]:
    """A reference reading over a finite universe of requests (action, resource, client id): allowed when some
    Allow matches and no Deny does."""
    statements_ = document["Statement"]
    return {
        (a, r, c)
        for a in ACTIONS
        for r in RESOURCES
        for c in CLIENTS
        if any(s["Effect"] == "Allow" and _matches(s, a, r, c) for s in statements_)
        and not any(s["Effect"] == "Deny" and _matches(s, a, r, c) for s in statements_)
    }


@settings(max_examples=400, deadline=None)
@given(_documents(), _documents())
def test_no_finding_means_nothing_more_is_allowed(before: dict, after: dict) -> None:
    """Soundness: when the analysis finds no widening, `after` allows no request `before` denies (checked by brute
    force over concrete actions and resources); a document never widens itself or a reordering of itself."""
    if not widenings(before, after):
        assert _allowed(after) <= _allowed(before), (before, after)
    assert widenings(before, before) == []
    assert widenings(before, doc(*reversed(before["Statement"]))) == []


def test_a_policy_document_written_as_a_json_string_compares_statement_by_statement(aws_env, fleet_dir):
    """PolicySpec accepts the document as a JSON string: re-declared that way with one statement added, the plan
    flags that statement only (the other four are the same statements, in another notation)."""
    import yaml

    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    path = fleet_dir / "aws" / "springpark.yaml"
    docs = path.read_text().split("\n---\n")
    (index,) = [i for i, d in enumerate(docs) if "kind: Policy" in d]
    manifest = yaml.safe_load(docs[index])
    document = manifest["spec"]["document"]
    document["Statement"].insert(0, {"Sid": "Widen", "Effect": "Allow", "Action": ["iot:*"], "Resource": ["*"]})
    manifest["spec"]["document"] = json.dumps(document, indent=1)
    docs[index] = yaml.safe_dump(manifest, sort_keys=False)
    path.write_text("\n---\n".join(docs))
    data = _json_plan(fleet_dir)
    assert [(x["address"], x["code"], x["message"]) for x in statement_items(data["attention"])] == [
        (
            "aws/aws-eu/Policy/reader-policy",
            "permissions-widened",
            "Statement[Sid=Widen]: adds Allow iot:* on * (wildcard)",
        )
    ]


def test_condition_strictness_follows_the_operator() -> None:
    def cond(operator: str, *values: str) -> dict:
        return doc({**CONNECT, "Condition": {operator: {"iot:ClientId": list(values)}}})

    # negated operators: fewer excluded values admit more
    assert (
        one(widenings(cond("StringNotEquals", "a", "b"), cond("StringNotEquals", "a")))[2]
        == "Condition StringNotEquals iot:ClientId no longer excludes b"
    )
    assert widenings(cond("StringNotEquals", "a"), cond("StringNotEquals", "a", "b")) == []
    # set qualifiers keep the relation; IfExists is another operator (it admits requests without the key)
    assert widenings(cond("ForAnyValue:StringEquals", "a", "b"), cond("ForAnyValue:StringEquals", "a")) == []
    assert (
        one(widenings(cond("StringEquals", "a"), cond("StringEqualsIfExists", "a")))[2]
        == "Condition StringEquals iot:ClientId a not required"
    )
    # other operators: any change of value may admit more
    assert (
        one(widenings(cond("NumericLessThan", "10"), cond("NumericLessThan", "20")))[2]
        == "Condition NumericLessThan iot:ClientId is 20, was 10"
    )
    assert widenings(cond("NumericLessThan", "10"), cond("NumericLessThan", "10")) == []
