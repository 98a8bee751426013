"""Lint rules of the credentials provider: what AWS IoT Device Defender audits for role aliases, checked on the
manifests before anything reaches the account.

- FL021 (audit check "role alias overly permissive", IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK): the ServiceRole a
  RoleAlias points at allows every action of a service (`*`, `s3:*`, NotAction) or any action on every resource
  (`"Resource": "*"`). Devices get exactly these permissions through the credentials provider, so a leaked device
  key is an account-wide credential.
- FL022: device credentials that live longer than an hour (`credentialDurationSeconds` > 3600, the default; the
  limit is an option). A stolen credential stays valid that long after its device is disabled.

The audit's companion check "role alias allows access to unused services" compares the policy with the services
the devices actually called over the last year: that needs the account's access history and is not decided
offline (Device Defender runs it; `ScheduledAudit` enables it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from engine.lint import Hit, Level, LintContext, ManifestDoc, PathT, rule

AWS = "aws.fleetctl.io"


def _role_statements(role: ManifestDoc) -> Iterator[tuple[PathT, dict[str, Any]]]:
    policy = role.spec.get("policy")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    for i, st in enumerate(statements if isinstance(statements, list) else []):
        if isinstance(st, dict) and st.get("Effect") == "Allow":
            yield ("spec", "policy", "Statement", i), st


def _strings(value: Any) -> list[str]:
    return (
        [value]
        if isinstance(value, str)
        else [v for v in value if isinstance(v, str)]
        if isinstance(value, list)
        else []
    )


def overly_permissive(st: dict[str, Any]) -> list[str]:
    """Why an Allow statement is overly permissive for a role alias (empty: it is not)."""
    out = []
    if "NotAction" in st:
        out.append("allows every action but a few (NotAction)")
    for action in _strings(st.get("Action")):
        if action == "*" or action.endswith(":*"):
            out.append(f"allows every action of {'every service' if action == '*' else action[:-2]} ('{action}')")
    if "*" in _strings(st.get("Resource")) or "NotResource" in st:
        out.append("grants on every resource ('Resource: *')")
    return out


def _alias_roles(ctx: LintContext) -> Iterator[tuple[ManifestDoc, ManifestDoc]]:
    for alias in ctx.of(AWS, "RoleAlias"):
        name = alias.spec.get("role")
        role = ctx.find(AWS, "ServiceRole", name, alias.target) if isinstance(name, str) else None
        if role is not None:
            yield alias, role


@rule(
    "FL021",
    "role-alias-overly-permissive",
    Level.ERROR,
    security_severity=8.0,
    summary="a RoleAlias points at a ServiceRole that allows every action of a service or every resource "
    "(Device Defender: role alias overly permissive)",
    hint="list only the actions the devices need (s3:PutObject, kinesis:PutRecord) on the resources they use "
    "(arn:aws:s3:::bucket/${credentials-iot:ThingName}/*)",
)
def role_alias_overly_permissive(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for alias, role in _alias_roles(ctx):
        for base, st in _role_statements(role):
            for why in overly_permissive(st):
                yield Hit(
                    alias,
                    ("spec", "role"),
                    f"role alias '{alias.name}' gives devices ServiceRole "
                    f"'{role.name}', whose statement {base[-1]} {why} ({role.source(base)})",
                )


@rule(
    "FL022",
    "role-alias-credential-duration",
    Level.WARNING,
    security_severity=5.0,
    max_seconds=3600,
    summary="a RoleAlias issues device credentials valid for longer than an hour",
    hint="keep credentialDurationSeconds at 3600 or less (devices refresh them through the credentials provider)",
)
def role_alias_credential_duration(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    limit = int(options.get("max_seconds", 3600))
    for alias in ctx.of(AWS, "RoleAlias"):
        seconds = alias.spec.get("credentialDurationSeconds", 3600)
        if isinstance(seconds, int) and seconds > limit:
            yield Hit(
                alias,
                ("spec", "credentialDurationSeconds"),
                f"role alias '{alias.name}' issues credentials valid for {seconds} s (more than {limit} s)",
            )
