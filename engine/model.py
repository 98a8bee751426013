"""The engine's vocabulary: addresses, desired and actual resources, actions and field changes.

Everything here is a frozen value. Pydantic stays at the manifest boundary (engine/manifest); from `expand`
onwards the engine speaks only these types, and the plan file is their JSON form.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.diagnostics import Source
from engine.fingerprint import fingerprint as keyed_fingerprint

SENSITIVE = "(sensitive)"
ABSENT = "absent"


@dataclass(frozen=True, order=True)
class Address:
    """A resource address, the same everywhere (CLI, plan, journal, errors).

    Cloud resources: `aws/aws-eu/Thing/springpark-da1275b0` (provider/target/kind/name).
    Devices: `device/<model>/<device-id>`.
    """

    parts: tuple[str, ...]

    @classmethod
    def of(cls, *parts: str) -> "Address":
        return cls(tuple(parts))

    @classmethod
    def parse(cls, text: str) -> "Address":
        return cls(tuple(text.split("/")))

    @property
    def provider(self) -> str:
        return self.parts[0]

    @property
    def target(self) -> str:
        return self.parts[1]

    @property
    def name(self) -> str:
        return self.parts[-1]

    def __str__(self) -> str:
        return "/".join(self.parts)


class Action(enum.Enum):
    """The closed set of plan actions. No-ops are computed but never listed in a plan."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "no-op": " "}[self.value]

    @property
    def destructive(self) -> bool:
        return self in (Action.DELETE, Action.REPLACE)


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret (`{env: NAME}`, `{file: path}`, `{secretRef: name}`); never its value."""

    source: str  # env | file | secretRef
    ref: str

    def to_json(self) -> dict:
        return {self.source: self.ref}


@dataclass(frozen=True)
class DesiredResource:
    """What a manifest says should exist, after expansion and normalisation.

    `spec` holds exactly the managed fields, already in the canonical shape the provider reads back, so the
    diff is a plain comparison. Secret values never appear in it: a sensitive field holds the value's
    keyed fingerprint (`hmac-sha256:...`, engine/fingerprint.py), and `secrets` says where apply fetches the value from.
    `inputs` carries what apply needs but is not compared (public PEMs, verification certificates).
    """

    address: Address
    kind: str                                 # "aws.Thing", "azure.Device", "device.DeviceConfig", ...
    spec: Mapping[str, Any]
    source: Source | None = None
    depends_on: tuple[Address, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)


@dataclass(frozen=True)
class ActualResource:
    """What a provider read. `state` is projected to the same shape as DesiredResource.spec.

    `token` is the service's own concurrency token (thing version, etag, default policy version) and `ids`
    what apply needs to address the object (ARN, certificate id, versions). `managed` says whether the
    resource carries fleetctl's ownership marker.
    """

    address: Address
    kind: str
    state: Mapping[str, Any]
    token: str = ""
    managed: bool = False
    ids: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.state, self.token)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(state: Mapping[str, Any], token: str = "") -> str:
    """A short digest of an actual resource; the plan records it and apply refuses when it changed."""
    digest = hashlib.sha256((token + "\n" + canonical_json(state)).encode()).hexdigest()[:20]
    return f"{token}:{digest}" if token else digest


def secret_fingerprint(value: str | bytes) -> str:
    """The keyed fingerprint of a secret (`hmac-sha256:<key id>:<hex>`, engine/fingerprint.py): it detects a
    changed secret without being reversible by hashing a dictionary. Desired and actual sides both call this."""
    return keyed_fingerprint(value)


@dataclass(frozen=True)
class FieldChange:
    """One field-level difference (kopf's DiffItem). `path` is dotted, e.g. `attributes.serial`."""

    path: str
    before: Any
    after: Any
    sensitive: bool = False

    def to_json(self) -> dict:
        return {"path": self.path, "before": self.before, "after": self.after,
                **({"sensitive": True} if self.sensitive else {})}


@dataclass(frozen=True)
class Change:
    """One planned action on one resource, with everything apply needs and the reason for it.

    `fingerprint` is that of the actual resource the change was planned against (or `absent`); apply re-reads
    and refuses the whole plan when any fingerprint differs ("plan is stale"). `steps` name the provider calls
    in the order apply makes them, so reviewers see e.g. which policy version will be deleted.
    """

    address: Address
    kind: str
    action: Action
    reason: str = ""
    fields: tuple[FieldChange, ...] = ()
    fingerprint: str = ABSENT
    desired: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    actual: Mapping[str, Any] = field(default_factory=dict)
    ids: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[Address, ...] = ()
    steps: tuple[str, ...] = ()
    source: Source | None = None
