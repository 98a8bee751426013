"""The vocabulary of Needs-attention items: codes, severities, the `Attention` value a change carries, and how views
order and flag them.

Why a module of its own, at the bottom beside engine/model.py: `Change.attention` holds these values, so the
engine's vocabulary needs their type, while which checks produce them (the `CHECKS` table, `assess`) is the
planner's business, in engine/plan/attention.py. Codes and severities are closed vocabularies: a plan file's
strings must be of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class Code(enum.StrEnum):
    """The closed vocabulary of attention codes (the flag on a change line is `[!<code>]`)."""

    PERMISSIONS_WIDENED = "permissions-widened"
    PERMISSIONS_NARROWED = "permissions-narrowed"
    CERTIFICATE_ACTIVATED = "certificate-activated"
    CERTIFICATE_DEACTIVATED = "certificate-deactivated"
    CA_REGISTERED = "ca-registered"
    CA_ACTIVATED = "ca-activated"
    CA_DEACTIVATED = "ca-deactivated"
    AUTO_REGISTRATION_ENABLED = "auto-registration-enabled"
    AUTO_REGISTRATION_DISABLED = "auto-registration-disabled"
    PROVISIONING_ENABLED = "provisioning-enabled"
    PROVISIONING_DISABLED = "provisioning-disabled"
    SYMMETRIC_KEY = "symmetric-key"
    SYMMETRIC_KEY_REMOVED = "symmetric-key-removed"
    POLICY_ATTACHED = "policy-attached"
    POLICY_DETACHED = "policy-detached"
    TRUST_WIDENED = "trust-widened"
    TRUST_NARROWED = "trust-narrowed"
    CREDENTIALS_ROLE_CHANGED = "credentials-role-changed"
    CREDENTIALS_LENGTHENED = "credentials-lengthened"
    CREDENTIALS_SHORTENED = "credentials-shortened"
    LOGGING_REDUCED = "logging-reduced"
    LOGGING_RESTORED = "logging-restored"
    AUDIT_CHECK_DISABLED = "audit-check-disabled"
    AUDIT_CHECK_ENABLED = "audit-check-enabled"
    AUTHORIZER_UNSIGNED = "authorizer-unsigned"
    AUTHORIZER_SIGNED = "authorizer-signed"
    AUTHORIZER_ACTIVATED = "authorizer-activated"
    AUTHORIZER_DEACTIVATED = "authorizer-deactivated"
    DESTINATION_ENABLED = "destination-enabled"
    DESTINATION_DISABLED = "destination-disabled"
    DELETE = "delete"
    REPLACE = "replace"


class Severity(enum.StrEnum):
    """high: grants more (an escalation); warning: destroys, or a drift repair that grants more; info: grants less.
    Declared most severe first (views list items in this order)."""

    HIGH = "high"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True)
class Attention:
    """One security-relevant aspect of one change. `message` is complete (never cut) and in plan words; `drift` is
    the same finding in drift words (actual state against the manifests), or None where drift has nothing to say."""

    code: Code
    message: str
    severity: Severity
    drift: Attention | None = None

    def __post_init__(self) -> None:  # a plan file gives strings: they must be of the vocabulary
        object.__setattr__(self, "code", Code(self.code))
        object.__setattr__(self, "severity", Severity(self.severity))

    @property
    def flag(self) -> str:
        return f"[!{self.code}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code.value, "message": self.message, "severity": self.severity.value}
        if self.drift is not None:
            out["drift"] = self.drift.to_json()
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Attention:
        drift = d.get("drift")
        return cls(d["code"], d["message"], d["severity"], cls.from_json(drift) if drift else None)


def flags(items: Iterable[Attention]) -> str:
    """The suffix of a change line: each code once, in order (`[!permissions-widened] [!delete]`)."""
    seen: list[str] = []
    for a in items:
        if a.flag not in seen:
            seen.append(a.flag)
    return " ".join(seen)


_FIRST = {Code.DELETE: 0, Code.REPLACE: 1}


def by_severity(items: Iterable[tuple[Any, Attention]]) -> list[tuple[Any, Attention]]:
    """(address, item) pairs ordered high → warning → info, deletes then replaces first within a severity, plan
    order kept otherwise."""
    return sorted(items, key=lambda pair: (pair[1].severity.rank, _FIRST.get(pair[1].code, 2)))
