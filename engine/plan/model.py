"""The Plan object and its versioned JSON form (the plan file is the contract between plan and apply).

A plan file says whether it may be applied: `status` is "errored" when the plan ended in error (an error
diagnostic, or a difference no plan can carry out: `blocked`), and apply refuses such a file whatever else it
holds; a file without the marker (written before it existed) is judged by its diagnostics and `blocked`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from engine.attention import Attention
from engine.diagnostics import Diagnostic, Severity, Source
from engine.model import Action, Address, Blocked, Change, FieldChange, SecretRef, canonical_json

FORMAT_VERSION = 1
STATUS_OK, STATUS_ERRORED = "ok", "errored"


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: str
    git_commit: str | None
    desired_digest: str
    changes: tuple[Change, ...]
    unmanaged: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    interrupted: tuple[dict[str, Any], ...] = ()
    format_version: int = FORMAT_VERSION
    blocked: tuple[Blocked, ...] = ()  # differences no plan can carry out (drift a person must resolve)
    recorded_status: str | None = None  # the `status` a loaded plan file carried

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def attention(self) -> tuple[tuple[Change, Attention], ...]:
        """Every attention item of the plan with its change, in plan order (views order them by severity)."""
        return tuple((c, a) for c in self.changes for a in c.attention)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def errored(self) -> bool:
        """The plan ended in error: it must not be applied (and a drift report must not say "in sync")."""
        return bool(self.errors or self.blocked) or self.recorded_status == STATUS_ERRORED

    @property
    def status(self) -> str:
        return STATUS_ERRORED if self.errored else STATUS_OK

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)}
        for c in self.changes:
            out[c.action.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "formatVersion": self.format_version,
            "status": self.status,
            "planId": self.plan_id,
            "createdAt": self.created_at,
            "gitCommit": self.git_commit,
            "desiredDigest": self.desired_digest,
            "options": self.options,
            "summary": self.counts(),
            # every item in one list, for a CI step or a reviewer's jq (each change carries its own, drift words too)
            "attention": [
                {"address": str(c.address), "code": a.code.value, "severity": a.severity.value, "message": a.message}
                for c, a in self.attention
            ],
            "changes": [change_to_json(c) for c in self.changes],
            "blocked": [b.to_json() for b in self.blocked],
            "unmanaged": list(self.unmanaged),
            "interrupted": list(self.interrupted),
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def change_to_json(c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {
        "address": str(c.address),
        "kind": c.kind,
        "action": c.action.value,
    }
    if c.reason:
        out["reason"] = c.reason
    out["fields"] = [f.to_json() for f in c.fields]
    out["fingerprint"] = c.fingerprint
    out["desired"] = c.desired
    if c.inputs:
        out["inputs"] = c.inputs
    if c.secrets:
        out["secrets"] = {k: v.to_json() for k, v in c.secrets.items()}
    if c.actual:
        out["actual"] = c.actual
    if c.ids:
        out["ids"] = c.ids
    out["dependsOn"] = [str(a) for a in c.depends_on]
    if c.steps:
        out["steps"] = list(c.steps)
    if c.source:
        out["source"] = str(c.source)
    if c.attention:
        out["attention"] = [a.to_json() for a in c.attention]
    return out


def _source(src: str | None) -> Source | None:
    if not src:
        return None
    parts = src.rsplit(":", 2)
    return Source(parts[0], int(parts[1]), int(parts[2])) if len(parts) == 3 and parts[1].isdigit() else Source(src)


def _fields(items: list[dict[str, Any]]) -> tuple[FieldChange, ...]:
    return tuple(FieldChange.from_json(f) for f in items)


def blocked_from_json(d: dict[str, Any]) -> Blocked:
    return Blocked(
        address=Address.parse(d["address"]),
        kind=d["kind"],
        action=Action(d["action"]),
        reason=d["reason"],
        remedy=d.get("remedy", ""),
        fields=_fields(d.get("fields", [])),
        field=d.get("field"),
        source=_source(d.get("source")),
    )


def change_from_json(d: dict[str, Any]) -> Change:
    source = _source(d.get("source"))
    secrets = {k: SecretRef(*next(iter(v.items()))) for k, v in d.get("secrets", {}).items()}
    return Change(
        address=Address.parse(d["address"]),
        kind=d["kind"],
        action=Action(d["action"]),
        reason=d.get("reason", ""),
        fields=tuple(FieldChange.from_json(f) for f in d["fields"]),
        fingerprint=d["fingerprint"],
        desired=d.get("desired", {}),
        inputs=d.get("inputs", {}),
        secrets=secrets,
        actual=d.get("actual", {}),
        ids=d.get("ids", {}),
        depends_on=tuple(Address.parse(a) for a in d.get("dependsOn", [])),
        steps=tuple(d.get("steps", [])),
        source=source,
        attention=tuple(Attention.from_json(a) for a in d.get("attention", [])),
    )


class PlanFileError(ValueError):
    pass


def plan_from_json(data: dict[str, Any]) -> Plan:
    if not isinstance(data, dict) or "formatVersion" not in data:
        raise PlanFileError("not a fleetctl plan file (no formatVersion)")
    if data["formatVersion"] != FORMAT_VERSION:
        raise PlanFileError(
            f"plan file format {data['formatVersion']} is not supported (this fleetctl reads "
            f"format {FORMAT_VERSION}); re-run plan"
        )
    try:
        return Plan(
            plan_id=data["planId"],
            created_at=data["createdAt"],
            git_commit=data.get("gitCommit"),
            desired_digest=data["desiredDigest"],
            changes=tuple(change_from_json(c) for c in data["changes"]),
            unmanaged=tuple(data.get("unmanaged", [])),
            diagnostics=tuple(Diagnostic.from_json(x) for x in data.get("diagnostics", [])),
            options=data.get("options", {}),
            interrupted=tuple(data.get("interrupted", [])),
            blocked=tuple(blocked_from_json(b) for b in data.get("blocked", [])),
            recorded_status=data.get("status"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"malformed plan file: {exc}") from exc


def load_plan(path: str) -> Plan:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"plan file {path} is not JSON: {exc}") from exc
    return plan_from_json(data)


def plan_digest(changes: list[dict[str, Any]], digest: str, created_at: str) -> str:
    return "p-" + hashlib.sha256(canonical_json([changes, digest, created_at]).encode()).hexdigest()[:16]
