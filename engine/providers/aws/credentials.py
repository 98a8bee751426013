"""RoleAlias reads and writes: the credentials provider's aliases (engine/providers/aws/kinds_access.py).

Bulk read: ListRoleAliases, then DescribeRoleAlias per alias (the list carries names only). A role ARN of a
fleetctl ServiceRole reads as the role's name (`role`), any other ARN as `roleArn`, as manifests declare them.
Ownership marker: the tag `managed-by=fleetctl` (ListTagsForResource, undeclared aliases only). Ordering: an alias
depends on its ServiceRole (a reference), so it is created after the role and deleted before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, register
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.read import parallel
from engine.providers.aws.references import ROLE_ARN_RE

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider
    from engine.providers.aws.read import ReadContext

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]


def read_aliases(ctx: ReadContext) -> list[ActualResource]:
    p = ctx.p
    names = list(
        ctx.c.pages("list_role_aliases", "roleAliases", size_arg="pageSize", token_in="marker", token_out="nextMarker")
    )

    def one(name: str) -> ActualResource | None:
        try:
            desc = ctx.c.call("describe_role_alias", roleAlias=name)["roleAliasDescription"]
        except errors.NotFound:
            return None
        arn = desc.get("roleArn") or ""
        match = ROLE_ARN_RE.match(arn)
        state: dict[str, Any] = {"role": match.group(1)} if match else {"roleArn": arn}
        state["credentialDurationSeconds"] = int(desc.get("credentialDurationSeconds") or 3600)
        alias_arn = desc["roleAliasArn"]
        managed = ctx.ownership("aws.RoleAlias", name, state, alias_arn)
        return ActualResource(
            p.addr("RoleAlias", name),
            "aws.RoleAlias",
            state,
            managed=managed,
            token=str(desc.get("lastModifiedDate", "")),
            ids={"arn": alias_arn},
        )

    return [r for r in parallel(one, names) if r is not None]


def _role(p: AwsProvider, d: Any) -> str:
    from engine.providers.aws.iam import role_arn

    return role_arn(p, d["role"]) if d.get("role") else d["roleArn"]


def _create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    try:
        p.client.call(
            "create_role_alias",
            roleAlias=c.address.name,
            roleArn=_role(p, d),
            credentialDurationSeconds=int(d.get("credentialDurationSeconds", 3600)),
            tags=TAGS,
        )
    except errors.Conflict:  # made by an interrupted apply: bring it to the manifest
        _update(p, c)
    return {}


def _update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    p.client.call(
        "update_role_alias",
        roleAlias=c.address.name,
        roleArn=_role(p, d),
        credentialDurationSeconds=int(d.get("credentialDurationSeconds", 3600)),
    )
    return {}


def _delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    try:
        p.client.call("delete_role_alias", roleAlias=c.address.name)
    except errors.NotFound:
        pass
    return {}


register(
    Family(
        "aws.RoleAlias",
        read_aliases,
        {Action.CREATE: _create, Action.UPDATE: _update, Action.DELETE: _delete},
        before="aws.ThingType",
    )
)
