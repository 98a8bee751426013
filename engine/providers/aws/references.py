"""References between AWS kinds that the TopicRule, RoleAlias and the readers resolve: a `roleArn` naming a
fleetctl ServiceRole, and the TopicRuleDestinations an http action posts under.

A module of its own, below engine/providers/aws/kinds.py and the family declarations (kinds_access.py,
kinds_account.py), so that the TopicRule's expand in kinds.py can use them without the declarations importing each
other in a circle."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from engine.manifest.expand import ExpandContext
from engine.model import Address

if TYPE_CHECKING:  # for the annotation only: kinds_account.py builds on this module
    from engine.providers.aws.kinds_account import TopicRuleDestinationSpec

ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/fleetctl/([\w+=,.@-]{1,64})$")


def named_roles(value: Any) -> Any:
    """`value` with every `roleArn` naming a fleetctl ServiceRole (`.../role/fleetctl/<name>`) replaced by the name:
    the canonical form of a role reference on both sides of the diff (topic rule actions, role aliases)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "roleArn" and isinstance(v, str) and (m := ROLE_ARN_RE.match(v)):
                out[k] = m.group(1)
            else:
                out[k] = named_roles(v)
        return out
    if isinstance(value, list):
        return [named_roles(v) for v in value]
    return value


def role_names(value: Any) -> list[str]:
    """Every `roleArn` in `value` that is a name (not an ARN): references to ServiceRoles."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "roleArn" and isinstance(v, str) and not v.startswith("arn:"):
                found.append(v)
            else:
                found += role_names(v)
    elif isinstance(value, list):
        for v in value:
            found += role_names(v)
    return found


def rule_destinations(ctx: ExpandContext, actions: list[dict[str, Any]]) -> list[Address]:
    """The declared TopicRuleDestinations (same Target) a rule's http actions post under: the rule depends on
    them, so it is applied after each is ENABLED (called by the TopicRule's expand)."""
    urls = [a["http"].get("url", "") for a in actions if isinstance(a.get("http"), dict)]
    out = []
    for (kind, target, _), d in ctx.index.items():
        if kind != "aws.TopicRuleDestination" or target != ctx.manifest.target:
            continue
        http = cast("TopicRuleDestinationSpec", d.spec).http  # the kind, tested above, declares this model
        if http is not None and any(u.startswith(http.confirmationUrl) for u in urls):
            out.append(d.address)
    return out
