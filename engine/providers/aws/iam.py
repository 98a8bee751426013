"""ServiceRole reads and writes: the IAM roles fleetctl manages for AWS IoT services (engine/providers/aws/kinds_access.py).

Bulk read: ListRoles with the path prefix `/fleetctl/` (only fleetctl's roles are ever listed, never the account's
other roles), then per role ListRolePolicies + GetRolePolicy of the `fleetctl` inline policy and
ListAttachedRolePolicies (a managed policy attached outside fleetctl widens the role: the delete detaches it, and
the read reports it as drift under `attachedPolicies`). Ownership marker: the role tag `managed-by=fleetctl`
(ListRoleTags, read for undeclared roles only: the prune candidates).

A role referenced by name (a RoleAlias's `role`, a topic rule action's `roleArn`) is resolved to its ARN at apply
with GetRole (`role_arn`), cached per provider.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, register
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.kinds_access import INLINE_POLICY, ROLE_PATH, trust_document, trust_state
from engine.providers.aws.read import parallel

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider
    from engine.providers.aws.read import ReadContext

IAM_TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]


def _doc(value: Any) -> Any:
    """IAM returns policy documents URL-encoded JSON (boto3 decodes some of them, not all)."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


def _pages(p: AwsProvider, op: str, key: str, **kwargs: Any) -> list[Any]:
    out, marker = [], None
    while True:
        resp = p.client.iam_call(op, **kwargs, **({"Marker": marker} if marker else {}))
        out += resp.get(key, [])
        if not resp.get("IsTruncated"):
            return out
        marker = resp.get("Marker")


def _marked(p: AwsProvider, name: str) -> bool:
    try:
        tags = _pages(p, "list_role_tags", "Tags", RoleName=name)
    except errors.NotFound:
        return False
    return any(t.get("Key") == MARKER_KEY and t.get("Value") == MARKER_VALUE for t in tags)


def read_roles(ctx: ReadContext) -> list[ActualResource]:
    p = ctx.p
    roles = _pages(p, "list_roles", "Roles", PathPrefix=ROLE_PATH)

    def one(role: dict[str, Any]) -> ActualResource | None:
        name = role["RoleName"]
        try:
            inline = _pages(p, "list_role_policies", "PolicyNames", RoleName=name)
            attached = [
                a["PolicyArn"] for a in _pages(p, "list_attached_role_policies", "AttachedPolicies", RoleName=name)
            ]
            policy = (
                _doc(p.client.iam_call("get_role_policy", RoleName=name, PolicyName=INLINE_POLICY)["PolicyDocument"])
                if INLINE_POLICY in inline
                else None
            )
        except errors.NotFound:
            return None
        state: dict[str, Any] = {
            **trust_state(_doc(role.get("AssumeRolePolicyDocument") or "{}")),
            "policy": policy,
            "maxSessionDuration": role.get("MaxSessionDuration", 3600),
        }
        if role.get("Description"):
            state["description"] = role["Description"]
        # grants beyond the one inline policy, made outside fleetctl: drift (the desired list is always empty)
        state["attachedPolicies"] = sorted(n for n in inline if n != INLINE_POLICY) + sorted(attached)
        managed = ctx.declared("aws.ServiceRole", name) or (ctx.prune and _marked(p, name))
        ctx.marker("aws.ServiceRole", name, state, lambda: _marked(p, name))
        p.arns["role:" + name] = role["Arn"]
        return ActualResource(
            p.addr("ServiceRole", name),
            "aws.ServiceRole",
            state,
            managed=managed,
            ids={"arn": role["Arn"], "inlinePolicies": sorted(inline), "attachedPolicies": attached},
        )

    return [r for r in parallel(one, roles) if r is not None]


def role_arn(p: AwsProvider, name: str) -> str:
    """The ARN of fleetctl role `name` (an ARN is returned as it is)."""
    if name.startswith("arn:"):
        return name
    key = "role:" + name
    if key not in p.arns:
        p.arns[key] = p.client.iam_call("get_role", RoleName=name)["Role"]["Arn"]
    return p.arns[key]


def with_role_arns(p: AwsProvider, value: Any) -> Any:
    """A topic rule payload with each `roleArn` that names a ServiceRole replaced by the role's ARN."""
    if isinstance(value, dict):
        return {
            k: (role_arn(p, v) if k == "roleArn" and isinstance(v, str) else with_role_arns(p, v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [with_role_arns(p, v) for v in value]
    return value


def _policy_json(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _changed(c: Change, *keys: str) -> bool:
    return any(f.path == k or f.path.startswith((k + ".", k + "[")) for f in c.fields for k in keys)


def _create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    args: dict[str, Any] = {
        "RoleName": name,
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": _policy_json(trust_document(d)),
        "MaxSessionDuration": int(d.get("maxSessionDuration", 3600)),
        "Tags": IAM_TAGS,
    }
    if d.get("description"):
        args["Description"] = d["description"]
    try:
        p.arns["role:" + name] = p.client.iam_call("create_role", **args)["Role"]["Arn"]
    except errors.Conflict:  # created by an interrupted apply: the settings follow below
        p.client.iam_call("update_assume_role_policy", RoleName=name, PolicyDocument=args["AssumeRolePolicyDocument"])
    p.client.iam_call(
        "put_role_policy", RoleName=name, PolicyName=INLINE_POLICY, PolicyDocument=_policy_json(d["policy"])
    )
    return {}


def _update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    if _changed(c, "description", "maxSessionDuration"):
        p.client.iam_call(
            "update_role",
            RoleName=name,
            Description=d.get("description") or "",
            MaxSessionDuration=int(d.get("maxSessionDuration", 3600)),
        )
    if _changed(c, "assumedBy", "conditions"):
        p.client.iam_call("update_assume_role_policy", RoleName=name, PolicyDocument=_policy_json(trust_document(d)))
    if _changed(c, "policy"):
        p.client.iam_call(
            "put_role_policy", RoleName=name, PolicyName=INLINE_POLICY, PolicyDocument=_policy_json(d["policy"])
        )
    if _changed(c, "attachedPolicies"):  # policies added outside fleetctl: a ServiceRole holds only its own
        _detach_extra(
            p,
            name,
            [a for a in c.ids.get("attachedPolicies", [])],
            [n for n in c.ids.get("inlinePolicies", []) if n != INLINE_POLICY],
        )
    return {}


def _detach_extra(p: AwsProvider, name: str, managed: list[str], inline: list[str]) -> None:
    for arn in managed:
        try:
            p.client.iam_call("detach_role_policy", RoleName=name, PolicyArn=arn)
        except errors.NotFound:
            pass
    for policy in inline:
        try:
            p.client.iam_call("delete_role_policy", RoleName=name, PolicyName=policy)
        except errors.NotFound:
            pass


def _delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    """detach managed policies → delete inline policies → delete the role (IAM refuses a role that holds any)."""
    name = c.address.name
    _detach_extra(p, name, list(c.ids.get("attachedPolicies", [])), list(c.ids.get("inlinePolicies", [])))
    try:
        p.client.iam_call("delete_role", RoleName=name)
    except errors.NotFound:
        pass
    p.arns.pop("role:" + name, None)
    return {}


def _mark(p: AwsProvider, c: Change) -> None:
    p.client.iam_call("tag_role", RoleName=c.address.name, Tags=IAM_TAGS)


register(
    Family(
        "aws.ServiceRole",
        read_roles,
        {Action.CREATE: _create, Action.UPDATE: _update, Action.DELETE: _delete},
        before="aws.ThingType",
        extra={"mark": _mark},
    )
)
