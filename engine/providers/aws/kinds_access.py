"""aws.fleetctl.io/v1 kinds of device access and grouping: ServiceRole, RoleAlias, BillingGroup, DynamicThingGroup.

SDK-free like engine/providers/aws/kinds.py (validating a manifest imports no SDK); registered through its `aws()`
helper so name rules, adoption and the ownership-marker steps apply as to every AWS kind. Reads and writes live
in engine/providers/aws/{iam,credentials,billing,dynamic_groups}.py, plugged in through
engine/providers/aws/families.py.

- `ServiceRole` is not a general IAM tool: a role only AWS IoT services may assume (`iot.amazonaws.com` for rule
  actions and provisioning, `credentials.iot.amazonaws.com` for the credentials provider behind a RoleAlias), with
  one inline policy. Any other principal is refused at validation, at the manifest line. fleetctl keeps its roles
  under the IAM path `/fleetctl/`, so a ServiceRole's ARN is `arn:aws:iam::<account>:role/fleetctl/<name>`: the
  account id is not needed at plan time, and references (a RoleAlias's `role`, a topic rule action's `roleArn`)
  are compared by name on both sides (`named_roles`).
- `DynamicThingGroup`: the plan states how many declared things of the Target the fleet-indexing query matches,
  evaluated offline from the manifests (engine/providers/aws/fleetquery.py) where the query's form allows it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from engine.kinds import ListKey, Ref
from engine.manifest.expand import ExpandContext, Expanded, canonical, declared, simple_desired
from engine.manifest.specs import spec_as
from engine.manifest.types import Name, Strict
from engine.manifest.validation import Manifest
from engine.model import Action, Change
from engine.providers.aws.kinds import json_doc
from engine.providers.aws.planning import MANAGED_FIELD
from engine.providers.aws.references import ROLE_ARN_RE, named_roles, role_names  # noqa: F401 - their home was here

IOT_SERVICE_PRINCIPALS = ("iot.amazonaws.com", "credentials.iot.amazonaws.com")
ROLE_PATH = "/fleetctl/"  # the IAM path of every role fleetctl manages
INLINE_POLICY = "fleetctl"  # the name of a ServiceRole's one inline policy
MAX_CREDENTIAL_SECONDS = 3600  # lint FL022: longer-lived device credentials are flagged


# ------------------------------------------------------------------------------------------------ ServiceRole
class ServiceRoleSpec(Strict):
    assumedBy: list[str] = Field(
        min_length=1,
        description="AWS IoT service principals that may assume the role: "
        "iot.amazonaws.com (rule actions, provisioning), credentials.iot.amazonaws.com "
        "(the credentials provider behind a RoleAlias)",
    )
    conditions: dict[str, Any] | None = Field(
        None, description="Condition of the trust statement, e.g. {StringEquals: {aws:SourceAccount: '123456789012'}}"
    )
    policy: dict[str, Any] = Field(description="the role's inline policy document (YAML, or a JSON string)")
    description: str | None = Field(None, max_length=1000)
    maxSessionDuration: int = Field(3600, ge=3600, le=43200, description="seconds (IAM: 3600-43200)")

    _doc = field_validator("policy", mode="before")(classmethod(lambda cls, v: json_doc(v)))

    @field_validator("assumedBy")
    @classmethod
    def _iot_only(cls, v: list[str]) -> list[str]:
        for principal in v:
            if principal not in IOT_SERVICE_PRINCIPALS:
                raise ValueError(
                    f"'{principal}' is not an AWS IoT service principal: a ServiceRole may be assumed "
                    f"only by {' or '.join(IOT_SERVICE_PRINCIPALS)} (fleetctl is not a general IAM "
                    "tool; manage other roles with your IAM tooling)"
                )
        return sorted(set(v))

    @field_validator("policy")
    @classmethod
    def _statements(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "Statement" not in v:
            raise ValueError("policy document has no 'Statement'")
        return v


def trust_document(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The assume-role policy of a ServiceRole: one Allow statement for its IoT service principals."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(spec["assumedBy"])},
        "Action": "sts:AssumeRole",
    }
    if spec.get("conditions"):
        statement["Condition"] = spec["conditions"]
    return {"Version": "2012-10-17", "Statement": [statement]}


def trust_state(document: Mapping[str, Any]) -> dict[str, Any]:
    """A trust policy as read, in the spec's shape: every principal of every Allow statement (a non-IoT one
    added outside fleetctl shows up in the diff), and the conditions of the first."""
    principals: set[str] = set()
    conditions = None
    statements = document.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal") or {}
        if principal == "*":
            principals.add("*")
            continue
        for key, values in principal.items():
            for value in values if isinstance(values, list) else [values]:
                principals.add(value if key == "Service" else f"{key}:{value}")
        conditions = conditions or st.get("Condition")
    return {"assumedBy": sorted(principals), **({"conditions": conditions} if conditions else {})}


def _expand_service_role(ctx: ExpandContext, m: Manifest) -> Expanded:
    role = spec_as(m, ServiceRoleSpec)
    spec = declared(role)
    spec["assumedBy"] = sorted(set(role.assumedBy))
    spec["policy"] = canonical(role.policy)
    if role.conditions:
        spec["conditions"] = canonical(role.conditions)
    spec["attachedPolicies"] = []  # no grant beyond the inline policy (one added outside fleetctl is drift)
    return simple_desired(ctx, spec)


def _service_role_refine(c: Change) -> Any:
    if c.action is Action.CREATE:
        return dataclasses.replace(
            c,
            steps=(
                f"create IAM role {ROLE_PATH}{c.address.name} trusted by {', '.join(c.desired.get('assumedBy', []))}",
                f"put inline policy {INLINE_POLICY}",
            ),
        )
    if c.action is Action.DELETE:
        steps = [f"detach managed policy {a}" for a in c.ids.get("attachedPolicies", [])]
        steps += [f"delete inline policy {n}" for n in c.ids.get("inlinePolicies", [])]
        return dataclasses.replace(c, steps=tuple(steps + ["delete IAM role"]))
    return c


def _touched(c: Change, *keys: str) -> bool:
    return any(f.path == k or f.path.startswith((k + ".", k + "[")) for f in c.fields for k in keys)


def _service_role_calls(c: Change) -> dict[str, int]:
    if c.action is Action.CREATE:
        return {"CreateRole": 1, "PutRolePolicy": 1}
    if c.action is Action.DELETE:
        return {
            "DetachRolePolicy": len(c.ids.get("attachedPolicies", [])),
            "DeleteRolePolicy": len(c.ids.get("inlinePolicies", [])),
            "DeleteRole": 1,
        }
    return {
        "UpdateRole": int(_touched(c, "description", "maxSessionDuration")),
        "UpdateAssumeRolePolicy": int(_touched(c, "assumedBy", "conditions")),
        "PutRolePolicy": int(_touched(c, "policy")),
        "TagRole": int(_touched(c, MANAGED_FIELD)),
        "DetachRolePolicy": len(c.ids.get("attachedPolicies", [])) if _touched(c, "attachedPolicies") else 0,
        "DeleteRolePolicy": len([n for n in c.ids.get("inlinePolicies", []) if n != INLINE_POLICY])
        if _touched(c, "attachedPolicies")
        else 0,
    }


# ------------------------------------------------------------------------------------------------ RoleAlias
class RoleAliasSpec(Strict):
    role: Name | None = Field(None, description="the ServiceRole (by name) the alias points at")
    roleArn: str | None = Field(
        None, min_length=20, max_length=2048, description="a role made outside fleetctl, by ARN (instead of role)"
    )
    credentialDurationSeconds: int = Field(
        3600, ge=900, le=43200, description="lifetime of the credentials devices get (AWS: 900-43200)"
    )

    @model_validator(mode="after")
    def _one_role(self) -> RoleAliasSpec:
        if (self.role is None) == (self.roleArn is None):
            raise ValueError("declare exactly one of role (a ServiceRole's name) and roleArn")
        return self


def _expand_role_alias(ctx: ExpandContext, m: Manifest) -> Expanded:
    alias = spec_as(m, RoleAliasSpec)
    spec = declared(alias)
    spec["credentialDurationSeconds"] = alias.credentialDurationSeconds
    if alias.roleArn and (match := ROLE_ARN_RE.match(alias.roleArn)):  # a fleetctl role by ARN: by name
        spec.pop("roleArn")
        spec["role"] = match.group(1)
    if spec.get("role"):
        found = ctx.lookup("aws.ServiceRole", spec["role"])
        if found is not None:
            role = spec_as(found, ServiceRoleSpec)
            if "credentials.iot.amazonaws.com" not in role.assumedBy:
                ctx.error(
                    f"ServiceRole '{spec['role']}' does not trust credentials.iot.amazonaws.com, so devices "
                    "cannot get credentials through this alias",
                    "role",
                    detail="add credentials.iot.amazonaws.com to the role's assumedBy",
                )
            if alias.credentialDurationSeconds > role.maxSessionDuration:
                ctx.error(
                    f"credentialDurationSeconds {alias.credentialDurationSeconds} is longer than ServiceRole "
                    f"'{spec['role']}' allows (maxSessionDuration {role.maxSessionDuration}); AWS refuses "
                    "it",
                    "credentialDurationSeconds",
                )
        elif alias.roleArn is None or not alias.roleArn.startswith("arn:"):
            ctx.error(f"role '{spec['role']}' names no ServiceRole in this target", "role")
    return simple_desired(ctx, spec)


def _role_alias_calls(c: Change) -> dict[str, int]:
    if c.action is Action.UPDATE:
        rest = [f for f in c.fields if f.path != MANAGED_FIELD]
        return {"UpdateRoleAlias": int(bool(rest)), "TagResource": int(_touched(c, MANAGED_FIELD))}
    return {"CreateRoleAlias" if c.action is Action.CREATE else "DeleteRoleAlias": 1}


def _role_alias_refine(c: Change) -> Any:
    if c.action is Action.CREATE:
        target = c.desired.get("role") or c.desired.get("roleArn")
        return dataclasses.replace(
            c, steps=(f"create role alias for {target} ({c.desired.get('credentialDurationSeconds')} s credentials)",)
        )
    return c


# ------------------------------------------------------------------------------------------------ BillingGroup
TAG_KEY = r"^[\w.:/=+@ -]{1,128}$"


class BillingGroupSpec(Strict):
    description: str | None = Field(None, max_length=2028)
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="cost-allocation tags (the whole map is managed; fleetctl's managed-by tag is its own)",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        from engine.providers.aws.kinds import MARKER_KEY

        for key, value in v.items():
            if key == MARKER_KEY:
                raise ValueError(f"tag '{MARKER_KEY}' is fleetctl's ownership marker and cannot be declared")
            if not re.match(TAG_KEY, key) or key.startswith("aws:"):
                raise ValueError(f"tag key '{key}' is not a valid AWS tag key (1-128 characters, not 'aws:')")
            if len(value) > 256:
                raise ValueError(f"tag '{key}' has a value longer than 256 characters")
        return v


def _expand_billing_group(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = declared(m.spec)
    if "tags" in spec:
        spec["tags"] = dict(sorted(spec["tags"].items()))
    return simple_desired(ctx, spec)


def tag_changes(c: Change) -> tuple[dict[str, str], list[str]]:
    """(tags to set, tag keys to remove) of a change's `tags` map."""
    want, have = dict(c.desired.get("tags") or {}), dict(c.actual.get("tags") or {})
    return {k: v for k, v in want.items() if have.get(k) != v}, sorted(k for k in have if k not in want)


def _billing_group_calls(c: Change) -> dict[str, int]:
    if c.action is Action.CREATE:
        return {"CreateBillingGroup": 1}
    if c.action is Action.DELETE:
        return {"RemoveThingFromBillingGroup": len(c.ids.get("members", [])), "DeleteBillingGroup": 1}
    put, drop = tag_changes(c) if "tags" in c.desired else ({}, [])
    return {
        "UpdateBillingGroup": int(_touched(c, "description")),
        "TagResource": int(bool(put) or _touched(c, MANAGED_FIELD)),
        "UntagResource": int(bool(drop)),
    }


def _billing_group_refine(c: Change) -> Any:
    if c.action is Action.DELETE:
        members = c.ids.get("members", [])
        return dataclasses.replace(
            c, steps=(*[f"remove thing {t} from the billing group" for t in members], "delete billing group")
        )
    return c


# ------------------------------------------------------------------------------------------------ DynamicThingGroup
class DynamicThingGroupSpec(Strict):
    queryString: str = Field(
        min_length=1,
        description="fleet-indexing query, e.g. 'attributes.site:paris AND "
        "thingTypeName:springpark' (thing indexing must be on in the account)",
    )
    indexName: str = Field("AWS_Things", description="the fleet index (AWS offers AWS_Things)")
    queryVersion: str = Field("2017-09-30", description="the query language version")
    description: str | None = Field(None, max_length=2028)
    attributes: dict[str, str] = Field(default_factory=dict)


def _expand_dynamic_group(ctx: ExpandContext, m: Manifest) -> Expanded:
    from engine.providers.aws import fleetquery

    group = spec_as(m, DynamicThingGroupSpec)
    spec = declared(group)
    for key in ("indexName", "queryVersion"):
        spec[key] = getattr(group, key)
    try:
        query = fleetquery.parse(group.queryString)
    except fleetquery.QueryError as exc:
        ctx.error(f"queryString is not a valid fleet-indexing query: {exc}", "queryString")
        return Expanded()
    things = [
        (name, man.spec)
        for (kind, target, name), man in ctx.index.items()
        if kind == "aws.Thing" and target == m.target
    ]
    count = fleetquery.count(query, things) if query.offline else None
    out = simple_desired(ctx, spec)
    inputs: dict[str, Any] = {"matches": count, "declaredThings": len(things)}
    if not query.offline:
        inputs["offlineNote"] = query.why_not
    out.resources = [dataclasses.replace(r, inputs=inputs) for r in out.resources]
    return out


def match_step(c: Change) -> str:
    """The plan's sentence on how many declared things the query matches (offline, from the manifests)."""
    matches, total = c.inputs.get("matches"), c.inputs.get("declaredThings", 0)
    if matches is None:
        why = c.inputs.get("offlineNote") or "its form is not one fleetctl evaluates"
        return f"the query cannot be evaluated offline ({why}): the number of things it matches is unknown"
    return f"the query matches {matches} of the {total} things declared in this target (evaluated from the manifests)"


def _dynamic_group_refine(c: Change) -> Any:
    if c.action is Action.CREATE or (c.action is Action.UPDATE and _touched(c, "queryString")):
        verb = "create dynamic thing group" if c.action is Action.CREATE else "update the query"
        return dataclasses.replace(c, steps=(verb, match_step(c)))
    return c


def _dynamic_group_calls(c: Change) -> dict[str, int]:
    if c.action is Action.UPDATE:
        rest = [f for f in c.fields if f.path != MANAGED_FIELD]
        return {"UpdateDynamicThingGroup": int(bool(rest)), "TagResource": int(_touched(c, MANAGED_FIELD))}
    return {"CreateDynamicThingGroup" if c.action is Action.CREATE else "DeleteDynamicThingGroup": 1}


# ------------------------------------------------------------------------------------------------ registration
def _register() -> None:
    from engine.providers.aws.kinds import AWS_NAME_RULES, STATEMENT_LISTS, aws

    AWS_NAME_RULES.update(
        {
            "ServiceRole": (r"^[\w+=,.@-]{1,64}$", "1-64 of letters, digits and '_+=,.@-' (IAM role name)"),
            "RoleAlias": (r"^[\w=,@-]{1,128}$", "1-128 of letters, digits and '_=,@-'"),
            "BillingGroup": (r"^[a-zA-Z0-9:_-]{1,128}$", "1-128 of letters, digits, ':', '_' and '-'"),
            "DynamicThingGroup": (r"^[a-zA-Z0-9:_-]{1,128}$", "1-128 of letters, digits, ':', '_' and '-'"),
        }
    )
    policy_lists = tuple(ListKey(k.path.replace("document.", "policy.", 1), k.by, k.key) for k in STATEMENT_LISTS)
    aws(
        "ServiceRole",
        ServiceRoleSpec,
        3,
        _expand_service_role,
        calls=_service_role_calls,
        refine=_service_role_refine,
        always_managed=("maxSessionDuration",),
        lists=(ListKey("assumedBy"), *policy_lists),
        description="an IAM role only AWS IoT services may assume",
    )
    aws(
        "RoleAlias",
        RoleAliasSpec,
        4,
        _expand_role_alias,
        calls=_role_alias_calls,
        refine=_role_alias_refine,
        always_managed=("credentialDurationSeconds",),
        references=(Ref("role", "aws.ServiceRole"),),
        description="a credentials-provider alias for a role",
    )
    aws(
        "BillingGroup",
        BillingGroupSpec,
        45,
        _expand_billing_group,
        calls=_billing_group_calls,
        refine=_billing_group_refine,
        partial_maps=(),
        description="a cost-allocation group of things",
    )
    aws(
        "DynamicThingGroup",
        DynamicThingGroupSpec,
        65,
        _expand_dynamic_group,
        calls=_dynamic_group_calls,
        refine=_dynamic_group_refine,
        always_managed=("indexName", "queryVersion"),
        description="a thing group whose members a fleet-indexing query selects",
    )


_register()
