"""Exporters of the issue-17 (b) AWS kinds for `fleetctl import` (engine/importer/aws.py lists them).

Account singletons are written under the name `account` (the provider reads an undeclared singleton under that
name for an import): importing one means this Target owns the setting whole from then on. A setting the account
never configured (v2 logging, audit) cannot be written as a manifest fleetctl would accept — it has no role — and
is skipped with the reason. Authorizer public keys are written as files beside the manifests (public material).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.importer.model import PublicFile, Unimportable
from engine.model import ActualResource


def _indexing(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return dict(r.state)


def _logging(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    if not s.get("roleArn"):
        raise Unimportable(
            "v2 logging was never configured in this account (no role): declare LoggingOptions to turn it on"
        )
    levels = []
    for key, level in sorted((s.get("levels") or {}).items()):
        target_type, target_name = key.split("/", 1)
        levels.append({"targetType": target_type, "targetName": target_name, "logLevel": level})
    return {
        "roleArn": s["roleArn"],
        "defaultLogLevel": s.get("defaultLogLevel", "ERROR"),
        "disableAllLogs": bool(s.get("disableAllLogs")),
        "levels": levels,
    }


def _events(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {"enabled": list(r.state.get("enabled") or [])}


def _audit(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    if not s.get("roleArn"):
        raise Unimportable("the Device Defender audit was never configured in this account (no role)")
    return {
        "roleArn": s["roleArn"],
        **({"sns": s["sns"]} if s.get("sns") else {}),
        "enabledChecks": list(s.get("enabledChecks") or []),
    }


def _scheduled(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {k: v for k, v in r.state.items() if v is not None}


def _authorizer(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = dict(r.state)
    keys = s.pop("tokenSigningPublicKeys", {}) or {}
    spec = {k: v for k, v in s.items() if v is not None}
    if keys:
        spec["tokenSigningPublicKeys"] = {
            k: PublicFile(f"keys/authorizers/{r.address.name}-{k}.pem", pem) for k, pem in sorted(keys.items())
        }
    return spec


def _domain(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {k: v for k, v in r.state.items() if v not in (None, [])}


def _destination(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    status = s.get("status")
    if status not in ("ENABLED", "DISABLED"):
        raise Unimportable(f"the destination is {status}: import it once it is confirmed (ENABLED) or DISABLED")
    return {**({"http": s["http"]} if s.get("http") else {"vpc": s["vpc"]}), "status": status}


EXPORTERS = {
    "aws.IndexingConfiguration": _indexing,
    "aws.LoggingOptions": _logging,
    "aws.EventConfigurations": _events,
    "aws.AccountAuditConfiguration": _audit,
    "aws.ScheduledAudit": _scheduled,
    "aws.Authorizer": _authorizer,
    "aws.DomainConfiguration": _domain,
    "aws.TopicRuleDestination": _destination,
}
# kinds `import --adopt` may mark: singletons are owned whole by a declaration, destinations cannot be tagged
ADOPTABLE = frozenset({"aws.ScheduledAudit", "aws.Authorizer", "aws.DomainConfiguration"})
