"""`fleetctl targets`: the fleet's Targets as a list a CI matrix fans out over (issue 15.4).

One GitHub Actions job per Target plans (and applies) it with `--target NAME`, so Targets run side by side on
separate runners and one Target's failure does not stop the others. Each entry says where the Target acts
(AWS: region, the account from `accountId` or the assumed role's ARN, the role; Azure: the hub and DPS host
names) and a `lock`, the key of the workflow's concurrency group: two Targets in one AWS account and region, or
on one hub, share it, so two applies never race on one account or hub even when they are different Targets.
With `--changed-since REV` only the Targets a pull request touches are listed: those holding a resource that
changed, was removed or depends on one that did (engine/incremental.py's scope), and those whose Target
manifest is in a changed file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import incremental
from engine.manifest.fleet import Fleet

ROLE_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/")


def describe(name: str, spec: Any) -> dict[str, Any]:
    """One Target as a matrix entry: name, provider, where it acts, optional, and its concurrency `lock`."""
    entry: dict[str, Any] = {"target": name, "optional": bool(spec.optional)}
    if spec.aws is not None:
        aws = spec.aws
        role = aws.assumeRole.roleArn if aws.assumeRole else None
        matched = ROLE_ACCOUNT.match(role) if role else None
        account = aws.accountId or (matched.group(1) if matched else None)
        entry.update(
            provider="aws",
            region=aws.region,
            **({"account": account} if account else {}),
            **({"role": role} if role else {}),
            **({"profile": aws.profile} if aws.profile else {}),
        )
        entry["lock"] = f"aws-{account}-{aws.region}" if account else f"target-{name}"
    else:
        az = spec.azure
        hub = az.hub.hostName if az.hub else (f"{az.arm.hubName}.azure-devices.net" if az.arm else None)
        dps = az.dps.hostName if az.dps else None
        entry.update(provider="azure", **({"hub": hub} if hub else {}), **({"dps": dps} if dps else {}))
        entry["lock"] = f"azure-{hub}" if hub else (f"azure-{dps}" if dps else f"target-{name}")
    return entry


def touched(fleet: Fleet, rev: str, env: Mapping[str, str]) -> set[str]:
    """The Targets a change since `rev` touches (see the module docstring)."""
    scope = incremental.changed_since(fleet.root, rev, fleet.desired, env)
    names = {a.target for a in scope.addresses if a.provider in ("aws", "azure")}
    if scope.files:
        top = Path(incremental.git_toplevel(fleet.root))
        changed = {(top / f).resolve() for f in scope.files}
        for name, manifest in fleet.targets().items():
            # doc.file is relative to the fleet folder's parent; base_dir is the file's own folder
            if (Path(manifest.doc.base_dir) / Path(manifest.doc.file).name).resolve() in changed:
                names.add(name)
    return names & set(fleet.targets())


def listing(fleet: Fleet, env: Mapping[str, str], changed_since: str | None = None) -> list[dict[str, Any]]:
    chosen = touched(fleet, changed_since, env) if changed_since else set(fleet.targets())
    return [describe(name, m.spec) for name, m in sorted(fleet.targets().items()) if name in chosen]


def as_json(entries: list[dict[str, Any]], changed_since: str | None = None) -> str:
    """`{"include": [...], "count": N}`: `fromJSON(...)` of it is a GitHub Actions matrix as it is."""
    return (
        json.dumps(
            {"include": entries, "count": len(entries), **({"changedSince": changed_since} if changed_since else {})},
            sort_keys=True,
        )
        + "\n"
    )


def as_text(entries: list[dict[str, Any]], changed_since: str | None = None) -> str:
    if not entries:
        return "No Targets" + (f" touched since {changed_since}" if changed_since else "") + ".\n"
    lines = []
    for e in entries:
        if e["provider"] == "aws":
            where = (
                f"region {e['region']}"
                + (f", account {e['account']}" if e.get("account") else "")
                + (f", role {e['role']}" if e.get("role") else "")
                + (f", profile {e['profile']}" if e.get("profile") else "")
            )
        else:
            where = ", ".join(f"{k} {e[k]}" for k in ("hub", "dps") if e.get(k)) or "no hub"
        lines.append(f"{e['target']}  {e['provider']}  {where}" + ("  (optional)" if e["optional"] else ""))
    head = f"{len(entries)} Target(s)" + (f" touched since {changed_since}" if changed_since else "") + ":"
    return "\n".join([head, *("  " + line for line in lines)]) + "\n"
