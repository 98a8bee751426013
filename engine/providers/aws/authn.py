"""Reads and writes of custom authorizers and domain configurations (custom endpoints).

Both carry the tag managed-by=fleetctl. AWS deletes only an INACTIVE authorizer and only a DISABLED domain
configuration: the delete handlers make that update first (the plan's steps say so,
engine/providers/aws/kinds_account.py). AWS-managed domain configurations (the account's default endpoints) are
not fleetctl's: they are never read. Token signing keys are public material; they are compared as normalised PEMs.
"""

from __future__ import annotations

from typing import Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, ignore_missing, register, replacing
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.kinds_account import public_key_pem
from engine.providers.aws.read import parallel

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]


# ---------------------------------------------------------------------------------------------- authorizers
def _read_authorizers(ctx: Any) -> list[ActualResource]:
    try:
        rows = list(
            ctx.c.pages(
                "list_authorizers", "authorizers", size_arg="pageSize", token_in="marker", token_out="nextMarker"
            )
        )
    except errors.Unsupported:
        ctx.p.gap("ListAuthorizers: custom authorizers are not read")
        return []

    def one(row: dict[str, Any]) -> ActualResource | None:
        name, arn = row["authorizerName"], row["authorizerArn"]
        try:
            a = ctx.c.call("describe_authorizer", authorizerName=name)["authorizerDescription"]
        except errors.NotFound:
            return None
        keys = {k: public_key_pem(v) or v for k, v in (a.get("tokenSigningPublicKeys") or {}).items()}
        state = {
            "authorizerFunction": a.get("authorizerFunctionArn"),
            "tokenKeyName": a.get("tokenKeyName"),
            "tokenSigningPublicKeys": keys,
            "status": a.get("status"),
            "signingDisabled": bool(a.get("signingDisabled", False)),
            "enableCachingForHttp": bool(a.get("enableCachingForHttp", False)),
        }
        state = {k: v for k, v in state.items() if v is not None}
        managed = ctx.ownership("aws.Authorizer", name, state, arn)
        return ActualResource(
            ctx.p.addr("Authorizer", name),
            "aws.Authorizer",
            state,
            managed=managed,
            token=str(a.get("lastModifiedDate", "")),
            ids={"arn": arn},
        )

    return [r for r in parallel(one, rows) if r is not None]


def _authorizer_args(d: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "authorizerFunctionArn": d["authorizerFunction"],
        "status": d["status"],
        "enableCachingForHttp": d["enableCachingForHttp"],
    }
    if d.get("tokenKeyName"):
        args["tokenKeyName"] = d["tokenKeyName"]
    if d.get("tokenSigningPublicKeys"):
        args["tokenSigningPublicKeys"] = dict(d["tokenSigningPublicKeys"])
    return args


def _authorizer_create(p: Any, c: Change) -> dict[str, Any]:
    try:
        p.client.call(
            "create_authorizer",
            authorizerName=c.address.name,
            signingDisabled=c.desired["signingDisabled"],
            tags=TAGS,
            **_authorizer_args(c.desired),
        )
    except errors.Conflict:  # created by an interrupted apply: bring it to the declared settings
        _authorizer_update(p, c)
    return {}


def _authorizer_update(p: Any, c: Change) -> dict[str, Any]:
    p.client.call("update_authorizer", authorizerName=c.address.name, **_authorizer_args(c.desired))
    return {}


def _authorizer_delete(p: Any, c: Change) -> dict[str, Any]:
    if c.actual.get("status") != "INACTIVE":
        p.client.call("update_authorizer", authorizerName=c.address.name, status="INACTIVE")
    ignore_missing(p.client.call, "delete_authorizer", authorizerName=c.address.name)
    return {}


# ---------------------------------------------------------------------------------------------- domains
def _read_domains(ctx: Any) -> list[ActualResource]:
    try:
        rows = list(
            ctx.c.pages(
                "list_domain_configurations",
                "domainConfigurations",
                size_arg="pageSize",
                token_in="marker",
                token_out="nextMarker",
            )
        )
    except errors.Unsupported:
        ctx.p.gap("ListDomainConfigurations: domain configurations are not read")
        return []
    out = []
    for row in rows:
        name = row["domainConfigurationName"]
        try:
            d = ctx.c.call("describe_domain_configuration", domainConfigurationName=name)
        except errors.NotFound:
            continue
        if d.get("domainType") == "AWS_MANAGED" and not ctx.declared("aws.DomainConfiguration", name):
            continue  # the account's default endpoints: AWS's, not fleetctl's
        auth = d.get("authorizerConfig") or {}
        state = {
            "domainName": d.get("domainName"),
            "serverCertificateArns": sorted(s["serverCertificateArn"] for s in d.get("serverCertificates") or []),
            "validationCertificateArn": d.get("validationCertificateArn"),
            "serviceType": d.get("serviceType") or "DATA",
            "authorizer": auth.get("defaultAuthorizerName"),
            "allowAuthorizerOverride": bool(auth.get("allowAuthorizerOverride", False)),
            "tlsPolicy": (d.get("tlsConfig") or {}).get("securityPolicy"),
            "status": d.get("domainConfigurationStatus"),
        }
        state = {k: v for k, v in state.items() if v is not None}
        arn = d["domainConfigurationArn"]
        managed = ctx.ownership("aws.DomainConfiguration", name, state, arn)
        out.append(
            ActualResource(
                ctx.p.addr("DomainConfiguration", name),
                "aws.DomainConfiguration",
                state,
                managed=managed,
                ids={"arn": arn},
            )
        )
    return out


def _authorizer_config(d: Any) -> dict[str, Any]:
    return {"defaultAuthorizerName": d["authorizer"], "allowAuthorizerOverride": d["allowAuthorizerOverride"]}


def _domain_create(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    args: dict[str, Any] = {
        "domainConfigurationName": c.address.name,
        "serviceType": d["serviceType"],
        "tlsConfig": {"securityPolicy": d["tlsPolicy"]},
        "tags": TAGS,
    }
    if d.get("domainName"):
        args["domainName"] = d["domainName"]
    if d.get("serverCertificateArns"):
        args["serverCertificateArns"] = list(d["serverCertificateArns"])
    if d.get("validationCertificateArn"):
        args["validationCertificateArn"] = d["validationCertificateArn"]
    if d.get("authorizer"):
        args["authorizerConfig"] = _authorizer_config(d)
    try:
        p.client.call("create_domain_configuration", **args)
    except errors.Conflict:
        pass
    if d["status"] == "DISABLED":  # AWS creates it ENABLED
        p.client.call(
            "update_domain_configuration", domainConfigurationName=c.address.name, domainConfigurationStatus="DISABLED"
        )
    return {}


def _domain_update(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    args: dict[str, Any] = {
        "domainConfigurationName": c.address.name,
        "domainConfigurationStatus": d["status"],
        "tlsConfig": {"securityPolicy": d["tlsPolicy"]},
    }
    if d.get("authorizer"):
        args["authorizerConfig"] = _authorizer_config(d)
    elif c.actual.get("authorizer"):
        args["removeAuthorizerConfig"] = True
    p.client.call("update_domain_configuration", **args)
    return {}


def _domain_delete(p: Any, c: Change) -> dict[str, Any]:
    if c.actual.get("status") != "DISABLED":
        p.client.call(
            "update_domain_configuration", domainConfigurationName=c.address.name, domainConfigurationStatus="DISABLED"
        )
    ignore_missing(p.client.call, "delete_domain_configuration", domainConfigurationName=c.address.name)
    return {}


register(
    Family(
        "aws.Authorizer",
        _read_authorizers,
        {
            Action.CREATE: _authorizer_create,
            Action.UPDATE: _authorizer_update,
            Action.DELETE: _authorizer_delete,
            Action.REPLACE: replacing(_authorizer_delete, _authorizer_create),
        },
    )
)
register(
    Family(
        "aws.DomainConfiguration",
        _read_domains,
        {
            Action.CREATE: _domain_create,
            Action.UPDATE: _domain_update,
            Action.DELETE: _domain_delete,
            Action.REPLACE: replacing(_domain_delete, _domain_create),
        },
    )
)
