"""AWS writes: one handler per (kind, action) of the kinds the provider serves itself (`HANDLERS`).

Things, thing types and groups, policies, certificates and CAs, topic rules and provisioning templates; kinds of
engine/providers/aws/families.py register their own handlers. Every call goes through `AwsClient.call` (paced,
retried, journaled). Bulk registration (bulkreg.py) makes the same resources as `thing_create`/`cert_create`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, Change
from engine.providers.aws import families
from engine.providers.aws.families import ignore_missing
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.planning import policy_version_steps

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]
MAX_TEMPLATE_VERSIONS = 5


def write_marker(p: AwsProvider, c: Change, *, check_version: bool) -> None:
    """Adoption: add the ownership marker (a merged attribute on things and groups, a tag elsewhere), nothing else."""
    version = {"expectedVersion": c.ids["version"]} if check_version and c.ids.get("version") is not None else {}
    marker = {"attributes": {MARKER_KEY: MARKER_VALUE}, "merge": True}
    if c.kind == "aws.Thing":
        p.client.call("update_thing", thingName=c.address.name, attributePayload=marker, **version)
    elif c.kind == "aws.ThingGroup":
        p.client.call(
            "update_thing_group",
            thingGroupName=c.address.name,
            thingGroupProperties={"attributePayload": marker},
            **version,
        )
    elif c.kind in families.families() and "mark" in families.families()[c.kind].extra:
        families.families()[c.kind].extra["mark"](p, c)  # a kind whose marker is not an IoT tag (IAM roles)
    else:
        p.client.call("tag_resource", resourceArn=c.ids["arn"], tags=TAGS)


def _changed(change: Change, key: str) -> bool:
    return any(f.path == key or f.path.startswith(key + ".") for f in change.fields)


def _set_diff(change: Change, key: str) -> tuple[list[str], list[str]]:
    want = set(change.desired.get(key, []))
    have = set(change.actual.get(key, []) or [])
    return sorted(want - have), sorted(have - want)


def thing_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    args: dict[str, Any] = {
        "thingName": c.address.name,
        "attributePayload": {"attributes": {**d.get("attributes", {}), MARKER_KEY: MARKER_VALUE}},
    }
    if d.get("thingType"):
        args["thingTypeName"] = d["thingType"]
    if d.get("billingGroup"):
        args["billingGroupName"] = d["billingGroup"]
    try:
        p.client.call("create_thing", **args)
    except errors.Conflict:
        pass  # created by an interrupted apply (identical config is idempotent on AWS); links follow below
    for group in d.get("groups", []):
        p.client.call("add_thing_to_thing_group", thingGroupName=group, thingName=c.address.name)
    for cert in d.get("principals", []):
        p.client.call("attach_thing_principal", thingName=c.address.name, principal=p.cert_arn(_cert_id(p, c, cert)))
    return {}


def _cert_id(p: AwsProvider, c: Change, name: str) -> str:
    """A Certificate name → its id (the plan carries ids for every principal it references)."""
    cert_id: str = c.inputs.get("certificateIds", {}).get(name, name)
    return cert_id


def _thing_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    if _changed(c, "attributes") or _changed(c, "thingType"):
        args: dict[str, Any] = {"thingName": name}
        if "attributes" in d:
            attrs = {**d["attributes"], MARKER_KEY: MARKER_VALUE}
            removed = {k: "" for k in (c.actual.get("attributes") or {}) if k not in attrs}
            args["attributePayload"] = {"attributes": {**attrs, **removed}, "merge": True}
        if _changed(c, "thingType"):
            if d.get("thingType"):
                args["thingTypeName"] = d["thingType"]
            else:
                args["removeThingType"] = True
        if c.ids.get("version") is not None:
            args["expectedVersion"] = c.ids["version"]
        p.client.call("update_thing", **args)
    from engine.providers.aws.billing import thing_billing

    thing_billing(p, c)
    add, remove = _set_diff(c, "groups")
    for group in add:
        p.client.call("add_thing_to_thing_group", thingGroupName=group, thingName=name)
    for group in remove:
        p.client.call("remove_thing_from_thing_group", thingGroupName=group, thingName=name)
    add, remove = _set_diff(c, "principals")
    for cert in add:
        p.client.call("attach_thing_principal", thingName=name, principal=p.cert_arn(_cert_id(p, c, cert)))
    for cert in remove:
        p.client.call("detach_thing_principal", thingName=name, principal=p.cert_arn(_cert_id(p, c, cert)))
    return {}


def _thing_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    name = c.address.name
    for arn in p.client.pages("list_thing_principals", "principals", thingName=name):
        ignore_missing(p.client.call, "detach_thing_principal", thingName=name, principal=arn)
    args: dict[str, Any] = {"thingName": name}
    if c.ids.get("version") is not None:
        args["expectedVersion"] = c.ids["version"]
    ignore_missing(p.client.call, "delete_thing", **args)
    return {}


def _type_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    props: dict[str, Any] = {}
    if d.get("description"):
        props["thingTypeDescription"] = d["description"]
    if d.get("searchableAttributes"):
        props["searchableAttributes"] = d["searchableAttributes"]
    try:
        p.client.call("create_thing_type", thingTypeName=c.address.name, thingTypeProperties=props, tags=TAGS)
    except errors.Conflict:
        pass
    if d.get("deprecated"):
        p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=False)
    return {}


def _type_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=not c.desired.get("deprecated"))
    return {}


def _type_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    if not c.actual.get("deprecated"):
        p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=False)
    p.client.call("delete_thing_type", thingTypeName=c.address.name)
    return {}


def _group_props(d: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"attributePayload": {"attributes": {**d.get("attributes", {}), MARKER_KEY: MARKER_VALUE}}}
    if d.get("description") is not None:
        props["thingGroupDescription"] = d["description"]
    return props


def _group_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    args: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": _group_props(d), "tags": TAGS}
    if d.get("parent"):
        args["parentGroupName"] = d["parent"]
    try:
        resp = p.client.call("create_thing_group", **args)
        p.arns["group:" + name] = resp["thingGroupArn"]
    except errors.Conflict:
        pass
    for policy in d.get("policies", []):
        p.client.call("attach_policy", policyName=policy, target=p.group_arn(name))
    return {}


def _group_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    if _changed(c, "attributes") or _changed(c, "description"):
        props = _group_props(d)
        removed = {
            k: "" for k in (c.actual.get("attributes") or {}) if k not in props["attributePayload"]["attributes"]
        }
        props["attributePayload"] = {
            "attributes": {**props["attributePayload"]["attributes"], **removed},
            "merge": True,
        }
        args: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": props}
        if c.ids.get("version") is not None:
            args["expectedVersion"] = c.ids["version"]
        p.client.call("update_thing_group", **args)
    add, remove = _set_diff(c, "policies")
    for policy in add:
        p.client.call("attach_policy", policyName=policy, target=p.group_arn(name))
    for policy in remove:
        p.client.call("detach_policy", policyName=policy, target=p.group_arn(name))
    return {}


def _group_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    name = c.address.name
    for policy in c.actual.get("policies", []):
        p.client.call("detach_policy", policyName=policy, target=p.group_arn(name))
    p.client.call("delete_thing_group", thingGroupName=name)
    p.arns.pop("group:" + name, None)
    return {}


def _group_replace(p: AwsProvider, c: Change) -> dict[str, Any]:
    _group_delete(p, c)
    _group_create(p, c)
    for thing in c.ids.get("members", []):  # membership is the things' desired state: keep it
        p.client.call("add_thing_to_thing_group", thingGroupName=c.address.name, thingName=thing)
    return {}


def _policy_doc(c: Change) -> str:
    return json.dumps(c.desired["document"], sort_keys=True, separators=(",", ":"))


def _policy_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    try:
        p.client.call("create_policy", policyName=c.address.name, policyDocument=_policy_doc(c), tags=TAGS)
    except errors.Conflict:
        pass
    return {}


def _policy_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    name = c.address.name
    before, after, create = policy_version_steps(c)
    for version in before:
        p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    if create:
        p.client.call("create_policy_version", policyName=name, policyDocument=_policy_doc(c), setAsDefault=True)
    for version in after:
        p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    return {}


def _policy_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    name = c.address.name
    for target in p.client.pages(
        "list_targets_for_policy",
        "targets",
        page_size=250,
        size_arg="pageSize",
        token_in="marker",
        token_out="nextMarker",
        policyName=name,
    ):
        ignore_missing(p.client.call, "detach_policy", policyName=name, target=target)
    for version in c.ids.get("versions", []):
        if str(version) != str(c.ids.get("defaultVersionId")):
            p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    p.client.call("delete_policy", policyName=name)
    return {}


def cert_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    """With policies: register INACTIVE, attach them, then set the desired status, so a crash leaves no orphan
    ACTIVE certificate holding a policy. Without (the policy is on the thing group): register with the desired
    status at once, one call fewer per device; such a certificate grants nothing until its thing holds it."""
    d = c.desired
    cid = d["certificateId"]
    pem = c.inputs["certificatePem"]
    status = "INACTIVE" if d.get("policies") else d.get("status", "ACTIVE")
    try:
        if c.inputs.get("caCertificatePem"):
            resp = p.client.call(
                "register_certificate", certificatePem=pem, caCertificatePem=c.inputs["caCertificatePem"], status=status
            )
        else:
            resp = p.client.call("register_certificate_without_ca", certificatePem=pem, status=status)
        p.arns[cid] = resp["certificateArn"]
    except errors.Conflict:  # registered by an interrupted apply: continue from where it stopped
        status = None
    arn = p.cert_arn(cid)
    for policy in d.get("policies", []):
        p.client.call("attach_policy", policyName=policy, target=arn)
    if d.get("status", "ACTIVE") != status:
        p.client.call("update_certificate", certificateId=cid, newStatus=d.get("status", "ACTIVE"))
    return {}


def _cert_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    cid = c.ids.get("certificateId") or d["certificateId"]
    arn = p.cert_arn(cid)
    add, remove = _set_diff(c, "policies")
    going_active = _changed(c, "status") and d.get("status") == "ACTIVE"
    if _changed(c, "status") and not going_active:  # deactivate before touching anything else
        p.client.call("update_certificate", certificateId=cid, newStatus=d["status"])
    for policy in add:
        p.client.call("attach_policy", policyName=policy, target=arn)
    for policy in remove:
        p.client.call("detach_policy", policyName=policy, target=arn)
    if going_active:
        p.client.call("update_certificate", certificateId=cid, newStatus="ACTIVE")
    return {}


def _cert_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    """detach from things → detach policies → INACTIVE → delete (a certificate is never deleted attached)."""
    cid = c.ids.get("certificateId") or c.actual["certificateId"]  # a delete has read the certificate
    arn = p.cert_arn(cid)
    for thing in p.client.pages("list_principal_things", "things", principal=arn):
        p.client.call("detach_thing_principal", thingName=thing, principal=arn)
    for policy in c.actual.get("policies", []):
        ignore_missing(p.client.call, "detach_policy", policyName=policy, target=arn)
    if c.actual.get("status") == "ACTIVE":
        p.client.call("update_certificate", certificateId=cid, newStatus="INACTIVE")
    p.client.call("delete_certificate", certificateId=cid, forceDelete=False)
    p.arns.pop(cid, None)
    return {}


def _cert_replace(p: AwsProvider, c: Change) -> dict[str, Any]:
    _cert_delete(p, c)
    return cert_create(p, c)


def _ca_registration(d: Mapping[str, Any]) -> dict[str, Any]:
    reg = dict(d.get("registrationConfig") or {})
    if reg.get("templateBody") is not None:
        reg["templateBody"] = json.dumps(reg["templateBody"], sort_keys=True)
    return reg


def _ca_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    args: dict[str, Any] = {
        "caCertificate": c.inputs["certificatePem"],
        "setAsActive": d.get("status") == "ACTIVE",
        "allowAutoRegistration": d.get("autoRegistration") == "ENABLE",
        "tags": TAGS,
        "certificateMode": c.inputs.get("certificateMode", "DEFAULT"),
    }
    if c.inputs.get("verificationCertificatePem"):
        args["verificationCertificate"] = c.inputs["verificationCertificatePem"]
    if d.get("registrationConfig"):
        args["registrationConfig"] = _ca_registration(d)
    try:
        resp = p.client.call("register_ca_certificate", **args)
        p.arns[d["certificateId"]] = resp["certificateArn"]
    except errors.Conflict:
        _ca_update(p, c)
    return {}


def _ca_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    args: dict[str, Any] = {"certificateId": d["certificateId"]}
    if "status" in d:
        args["newStatus"] = d["status"]
    if "autoRegistration" in d:
        args["newAutoRegistrationStatus"] = d["autoRegistration"]
    if d.get("registrationConfig"):
        args["registrationConfig"] = _ca_registration(d)
    elif "registrationConfig" in d:
        args["removeAutoRegistration"] = True
    p.client.call("update_ca_certificate", **args)
    return {}


def _ca_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    cid = c.actual.get("certificateId")
    if c.actual.get("status") == "ACTIVE":
        p.client.call("update_ca_certificate", certificateId=cid, newStatus="INACTIVE")
    p.client.call("delete_ca_certificate", certificateId=cid)
    return {}


def _ca_replace(p: AwsProvider, c: Change) -> dict[str, Any]:
    _ca_delete(p, c)
    return _ca_create(p, c)


def _rule_payload(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in d.items()
        if k in ("sql", "description", "actions", "ruleDisabled", "awsIotSqlVersion", "errorAction")
    }


def _rule_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    from engine.providers.aws.iam import with_role_arns  # a roleArn naming a ServiceRole → its ARN

    p.client.call(
        "create_topic_rule",
        ruleName=c.address.name,
        topicRulePayload=with_role_arns(p, _rule_payload(c.desired)),
        tags=f"{MARKER_KEY}={MARKER_VALUE}",
    )
    return {}


def _rule_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    from engine.providers.aws.iam import with_role_arns

    p.client.call(
        "replace_topic_rule", ruleName=c.address.name, topicRulePayload=with_role_arns(p, _rule_payload(c.desired))
    )
    return {}


def _rule_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    p.client.call("delete_topic_rule", ruleName=c.address.name)
    return {}


def _template_args(d: Mapping[str, Any]) -> dict[str, Any]:
    args = {
        "templateBody": json.dumps(d["templateBody"], sort_keys=True),
        "enabled": d.get("enabled", True),
        "provisioningRoleArn": d["provisioningRoleArn"],
    }
    if d.get("description") is not None:
        args["description"] = d["description"]
    if d.get("preProvisioningHook"):
        args["preProvisioningHook"] = d["preProvisioningHook"]
    return args


def _template_create(p: AwsProvider, c: Change) -> dict[str, Any]:
    p.client.call(
        "create_provisioning_template",
        templateName=c.address.name,
        type=c.desired.get("type", "FLEET_PROVISIONING"),
        tags=TAGS,
        **_template_args(c.desired),
    )
    return {}


def _template_update(p: AwsProvider, c: Change) -> dict[str, Any]:
    args = _template_args(c.desired)
    body = args.pop("templateBody")
    if _changed(c, "templateBody"):
        name = c.address.name
        versions = p.client.call("list_provisioning_template_versions", templateName=name).get("versions", [])
        if len(versions) >= MAX_TEMPLATE_VERSIONS:  # like policies: AWS keeps at most 5 versions
            oldest = min(int(v["versionId"]) for v in versions if not v.get("isDefaultVersion"))
            p.client.call("delete_provisioning_template_version", templateName=name, versionId=oldest)
        p.client.call("create_provisioning_template_version", templateName=name, templateBody=body, setAsDefault=True)
    p.client.call("update_provisioning_template", templateName=c.address.name, **args)
    return {}


def _template_delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    p.client.call("delete_provisioning_template", templateName=c.address.name)
    return {}


Handler = Callable[["AwsProvider", Change], dict[str, Any]]
HANDLERS: dict[tuple[str, Action], Handler] = {
    ("aws.Thing", Action.CREATE): thing_create,
    ("aws.Thing", Action.UPDATE): _thing_update,
    ("aws.Thing", Action.DELETE): _thing_delete,
    ("aws.ThingType", Action.CREATE): _type_create,
    ("aws.ThingType", Action.UPDATE): _type_update,
    ("aws.ThingType", Action.DELETE): _type_delete,
    ("aws.ThingGroup", Action.CREATE): _group_create,
    ("aws.ThingGroup", Action.UPDATE): _group_update,
    ("aws.ThingGroup", Action.DELETE): _group_delete,
    ("aws.ThingGroup", Action.REPLACE): _group_replace,
    ("aws.Policy", Action.CREATE): _policy_create,
    ("aws.Policy", Action.UPDATE): _policy_update,
    ("aws.Policy", Action.DELETE): _policy_delete,
    ("aws.Certificate", Action.CREATE): cert_create,
    ("aws.Certificate", Action.UPDATE): _cert_update,
    ("aws.Certificate", Action.DELETE): _cert_delete,
    ("aws.Certificate", Action.REPLACE): _cert_replace,
    ("aws.CACertificate", Action.CREATE): _ca_create,
    ("aws.CACertificate", Action.UPDATE): _ca_update,
    ("aws.CACertificate", Action.DELETE): _ca_delete,
    ("aws.CACertificate", Action.REPLACE): _ca_replace,
    ("aws.TopicRule", Action.CREATE): _rule_create,
    ("aws.TopicRule", Action.UPDATE): _rule_update,
    ("aws.TopicRule", Action.DELETE): _rule_delete,
    ("aws.ProvisioningTemplate", Action.CREATE): _template_create,
    ("aws.ProvisioningTemplate", Action.UPDATE): _template_update,
    ("aws.ProvisioningTemplate", Action.DELETE): _template_delete,
}
