"""The engine's vocabulary: addresses, desired and actual resources, actions and field changes.

Everything here is a frozen value. Pydantic stays at the manifest boundary (engine/manifest); from `expand`
onwards the engine speaks only these types, and the plan file is their JSON form.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.attention import Attention
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
    def of(cls, *parts: str) -> Address:
        return cls(tuple(parts))

    @classmethod
    def parse(cls, text: str) -> Address:
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

    def to_json(self) -> dict[str, Any]:
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
    kind: str  # "aws.Thing", "azure.Device", "device.DeviceConfig", ...
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


ADD, REMOVE, CHANGE = "add", "remove", "change"
OP_SYMBOL = {ADD: "+", REMOVE: "-", CHANGE: "~"}


@dataclass(frozen=True)
class Elem:
    """One list element in a structured path, named the way the diff matched it (engine/diff.py):

    - `by="index"`: position `at` in an ordered list (in the old list for remove and change, the new for add);
    - `by="key"`: the element whose field `key` holds `value` (`Statement[Sid=Widen]`);
    - `by="type"`: the single-key element whose key is `value` (`actions[lambda]`);
    - `by="member"`: the element equal to `value` (a set member, or an element matched by content).
    `nth` counts earlier elements with the same identity (duplicates), 0 for the first.
    """

    by: str
    value: Any = None
    key: str = ""
    at: int = 0
    nth: int = 0

    def label(self) -> str:
        """The bracket text of the display path: `[3]`, `[Sid=Widen]`, `[lambda]`, `[]` (a member; its value
        is the value of the change line)."""
        dup = f"#{self.nth + 1}" if self.nth else ""
        if self.by == "index":
            return f"[{self.at}]"
        if self.by == "key":
            shown = self.value if isinstance(self.value, str) else canonical_json(self.value)
            return f"[{self.key}={shown}{dup}]"
        if self.by == "type":
            return f"[{self.value}{dup}]"
        return f"[{dup}]"

    def to_json(self) -> dict[str, Any]:
        if self.by == "index":
            return {"index": self.at}
        out: dict[str, Any] = {"key": self.key, "value": self.value} if self.by == "key" else {self.by: self.value}
        return {**out, **({"nth": self.nth} if self.nth else {})}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Elem:
        nth = int(d.get("nth", 0))
        if "index" in d:
            return cls("index", at=int(d["index"]))
        if "key" in d:
            return cls("key", d["value"], key=d["key"], nth=nth)
        by = "type" if "type" in d else "member"
        return cls(by, d[by], nth=nth)


def display_path(segments: tuple[Any, ...]) -> str:
    """`document.Statement[Sid=Widen].Action`: map keys joined by dots, list elements in brackets."""
    out = ""
    for seg in segments:
        out += seg.label() if isinstance(seg, Elem) else (f".{seg}" if out else str(seg))
    return out


@dataclass(frozen=True)
class FieldChange:
    """One difference, at the leaf (kopf's DiffItem: operation, field, old, new).

    `segments` is the structured path from the top-level spec field down: map keys (str) and list elements
    (`Elem`); `path` is its display form, e.g. `document.Statement[Sid=Widen]` or `attributes.serial`. `op` is
    add (absent or null before), remove (absent or null after) or change. Built from a dotted path alone (older
    plan files, callers that name a top-level field) the segments are the dotted parts.
    """

    path: str
    before: Any
    after: Any
    sensitive: bool = False
    op: str = ""
    segments: tuple[Any, ...] = None  # type: ignore[assignment]  # None: the dotted parts of `path`

    def __post_init__(self) -> None:
        if not self.op:
            op = (
                ADD
                if self.before is None and self.after is not None
                else (REMOVE if self.after is None and self.before is not None else CHANGE)
            )
            object.__setattr__(self, "op", op)
        if self.segments is None:
            object.__setattr__(self, "segments", tuple(self.path.split(".")))

    @property
    def field(self) -> str:
        """The top-level spec field the change is in (what immutability and the providers' handlers test)."""
        return str(self.segments[0]) if self.segments else ""

    @property
    def symbol(self) -> str:
        return OP_SYMBOL[self.op]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.segments != tuple(self.path.split(".")):  # the dotted path does not say it exactly
            out["segments"] = [s.to_json() if isinstance(s, Elem) else s for s in self.segments]
        out.update(before=self.before, after=self.after)
        if self.sensitive:
            out["sensitive"] = True
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FieldChange:
        raw = d.get("segments")
        if raw is None:  # the dotted path says it
            return cls(d["path"], d["before"], d["after"], d.get("sensitive", False), d.get("op", ""))
        return cls(
            d["path"],
            d["before"],
            d["after"],
            d.get("sensitive", False),
            d.get("op", ""),
            tuple(Elem.from_json(s) if isinstance(s, dict) else s for s in raw),
        )


@dataclass(frozen=True)
class Change:
    """One planned action on one resource, with everything apply needs and the reason for it.

    `fingerprint` is that of the actual resource the change was planned against (or `absent`); apply re-reads
    and refuses the whole plan when any fingerprint differs ("plan is stale"). `steps` name the provider calls
    in the order apply makes them, so reviewers see e.g. which policy version will be deleted. `attention`
    holds the change's security-relevant aspects (values of engine/attention.py), computed once by the planner
    (engine/plan/attention.py).
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
    attention: tuple[Attention, ...] = ()


@dataclass(frozen=True)
class Blocked:
    """A difference between desired and actual that no plan can carry out: drift a person must resolve.

    A kind's `refine` returns one instead of a Change when the change is impossible (AWS never re-activates a
    REVOKED certificate; a thing type's properties cannot change in place and cannot be replaced safely). It is
    part of the Plan, not a message beside it: drift lists it and exits 2 (never "in sync"), plan lists it and
    exits 1, and a plan holding one is not applicable. `action` is what repairing it would take, `fields` what
    differs, `reason` why fleetctl cannot repair it, `remedy` what a person must do.
    """

    address: Address
    kind: str
    action: Action
    reason: str
    remedy: str
    fields: tuple[FieldChange, ...] = ()
    field: str | None = None  # the field that makes it impossible
    source: Source | None = None

    @classmethod
    def of(cls, change: Change, reason: str, remedy: str, field: str | None = None) -> Blocked:
        return cls(change.address, change.kind, change.action, reason, remedy, change.fields, field, change.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "kind": self.kind,
            "action": self.action.value,
            "reason": self.reason,
            "remedy": self.remedy,
            "fields": [f.to_json() for f in self.fields],
            **({"field": self.field} if self.field else {}),
            **({"source": str(self.source)} if self.source else {}),
        }
