"""Security-relevant changes, flagged so that they stand out in every view of a plan or a drift report.

In a 5,000-change plan the one change a reviewer must not miss is the policy statement that grants `iot:*` on `*`,
the certificate set ACTIVE, the CA registered with auto-registration, the symmetric-key device, the delete. The
planner calls `assess(change)` for every change (after `refine`) and stores the result on `Change.attention`, so
text, markdown, JSON, `show --address` and drift read the same values and renderers never compute them.

Which checks apply to which kind is one declarative table (`CHECKS`, kind → checks); deletes and replaces are
flagged for every kind. A check compares what the desired and the actual state grant (a *capability*: the
certificate is ACTIVE, these policies are attached, these Allow grants; engine/plan/policydiff.py for documents).

Two perspectives, because the drift "change" is the plan's repair and points the other way:

- the plan's: what applying the change does. Desired grants more than actual → `permissions-widened` (high);
  actual grants more → `permissions-narrowed` (informational: the change takes it away).
- drift's (`Attention.drift`): how the actual state differs from the manifests. An out-of-band widening is the
  plan's narrowing and drift's `permissions-widened` (high: "actual policy grants more than the manifest: …");
  the plan's widening reads in drift as the actual state granting less (a warning: re-applying grants it).

`drift` is None where an item means nothing in drift: a declared resource that is missing is reported as missing,
it is no escalation. Items are values of engine/attention.py (codes and severities are closed vocabularies there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.attention import Attention, Code, Severity
from engine.kinds import by_qualified
from engine.model import Action, Change
from engine.plan import policydiff


# --------------------------------------------------------------------------------------------- capabilities
@dataclass(frozen=True)
class Capability:
    """A yes/no or set-valued capability a resource state grants, and its words in each perspective.

    `probe(state)` returns the capability's items in a state ({""} for a yes/no capability that holds). Templates
    take `{item}`. The change *gains* an item the desired state has and the actual one lacks (plan: `code`, high;
    drift: the actual state lacks it, `opposite`, warning: re-applying grants it) and *loses* one the actual state
    has and the desired one lacks (plan: `opposite`, info; drift: the actual state has it beyond the manifest,
    `code`, high).
    """

    code: Code
    opposite: Code
    probe: Callable[[Mapping[str, Any]], frozenset[str]]
    gained: str  # plan: the change grants it (an update)
    created: str  # plan: a new resource grants it
    lost: str  # plan: the change takes it away
    more: str  # drift: the actual state grants it, the manifest does not
    less: str  # drift: the manifest grants it, the actual state does not


def _when(predicate: Callable[[Mapping[str, Any]], bool]) -> Callable[[Mapping[str, Any]], frozenset[str]]:
    return lambda state: frozenset({""}) if state and predicate(state) else frozenset()


def _names(key: str) -> Callable[[Mapping[str, Any]], frozenset[str]]:
    return lambda state: frozenset(str(v) for v in (state.get(key) or ()))


def _get(state: Mapping[str, Any], path: str) -> Any:
    value: Any = state
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _jitp_template(state: Mapping[str, Any]) -> frozenset[str]:
    reg = state.get("registrationConfig") or {}
    out = set()
    if reg.get("templateName"):
        out.add(f"JITP template {reg['templateName']}")
    if reg.get("templateBody"):
        out.add("an inline JITP template body")
    return frozenset(out)


def _template_unhooked(state: Mapping[str, Any]) -> frozenset[str]:
    """An enabled provisioning template without a pre-provisioning hook: whoever holds the claim provisions."""
    return (
        frozenset({""})
        if state
        and state.get("enabled", True)
        and not state.get("preProvisioningHook")
        and state.get("type", "FLEET_PROVISIONING") == "FLEET_PROVISIONING"
        else frozenset()
    )


def _symmetric(path: str) -> Callable[[Mapping[str, Any]], frozenset[str]]:
    return _when(lambda s: _get(s, path) == "symmetricKey")


CERTIFICATE_ACTIVE = Capability(
    Code.CERTIFICATE_ACTIVATED,
    Code.CERTIFICATE_DEACTIVATED,
    _when(lambda s: s.get("status") == "ACTIVE"),
    gained="sets the certificate ACTIVE (it can connect)",
    created="registers the certificate ACTIVE (it can connect)",
    lost="sets the certificate {status} (it can no longer connect)",
    more="the actual certificate is ACTIVE; the manifest says {status}",
    less="the actual certificate is {actual_status}; the manifest says ACTIVE: re-applying activates it",
)
POLICIES_ATTACHED = Capability(
    Code.POLICY_ATTACHED,
    Code.POLICY_DETACHED,
    _names("policies"),
    gained="attaches policy {item} to the {what}",
    created="attaches policy {item} to the new {what}",
    lost="detaches policy {item} from the {what}",
    more="policy {item} is attached to the actual {what}; the manifest does not attach it",
    less="policy {item} is not attached to the actual {what}: re-applying attaches it",
)
CA_REGISTERED = Capability(
    Code.CA_REGISTERED,
    Code.CA_DEACTIVATED,
    _when(lambda s: True),
    gained="",
    created="registers CA certificate {name} (status {status}, auto-registration {auto}): certificates "
    "it signs can be registered",
    lost="",
    more="",
    less="",
)
CA_ACTIVE = Capability(
    Code.CA_ACTIVATED,
    Code.CA_DEACTIVATED,
    _when(lambda s: s.get("status") == "ACTIVE"),
    gained="sets the CA certificate ACTIVE (certificates it signs can be registered)",
    created="",
    lost="sets the CA certificate {status}",
    more="the actual CA certificate is ACTIVE; the manifest says {status}",
    less="the actual CA certificate is {actual_status}; the manifest says ACTIVE: re-applying activates it",
)
AUTO_REGISTRATION = Capability(
    Code.AUTO_REGISTRATION_ENABLED,
    Code.AUTO_REGISTRATION_DISABLED,
    _when(lambda s: s.get("autoRegistration") == "ENABLE"),
    gained="enables auto-registration: any certificate this CA signs registers itself on first connect",
    created="registers the CA with auto-registration ENABLE: any certificate it signs registers itself on first "
    "connect",
    lost="disables auto-registration",
    more="auto-registration is ENABLE on the actual CA; the manifest says DISABLE",
    less="auto-registration is DISABLE on the actual CA; the manifest says ENABLE: re-applying enables it",
)
JITP_TEMPLATE = Capability(
    Code.PROVISIONING_ENABLED,
    Code.PROVISIONING_DISABLED,
    _jitp_template,
    gained="attaches {item} to the CA (just-in-time provisioning)",
    created="attaches {item} to the new CA (just-in-time provisioning)",
    lost="detaches {item} from the CA",
    more="{item} is attached to the actual CA; the manifest does not attach it",
    less="{item} is not attached to the actual CA: re-applying attaches it",
)
TEMPLATE_ENABLED = Capability(
    Code.PROVISIONING_ENABLED,
    Code.PROVISIONING_DISABLED,
    _when(lambda s: s.get("enabled", True) is True),
    gained="enables the {type} provisioning template",
    created="creates the {type} provisioning template enabled",
    lost="disables the provisioning template",
    more="the actual provisioning template is enabled; the manifest disables it",
    less="the actual provisioning template is disabled; the manifest enables it: re-applying enables it",
)
TEMPLATE_UNHOOKED = Capability(
    Code.PROVISIONING_ENABLED,
    Code.PROVISIONING_DISABLED,
    _template_unhooked,
    gained="removes the pre-provisioning hook: devices provision without the hook's check",
    created="the template has no pre-provisioning hook: every holder of a claim certificate provisions",
    lost="adds a pre-provisioning hook",
    more="the actual provisioning template has no pre-provisioning hook; the manifest declares one",
    less="the actual provisioning template has a pre-provisioning hook the manifest does not declare",
)
DEVICE_SYMMETRIC = Capability(
    Code.SYMMETRIC_KEY,
    Code.SYMMETRIC_KEY_REMOVED,
    _symmetric("authentication.type"),
    gained="switches the device to symmetric-key (SAS) authentication",
    created="adds a symmetric-key (SAS) device: whoever holds its key connects as it",
    lost="the device stops authenticating with a symmetric key",
    more="the actual device authenticates with a symmetric key; the manifest says {auth}",
    less="the actual device does not authenticate with a symmetric key; the manifest says symmetricKey",
)
ENROLLMENT_SYMMETRIC = Capability(
    Code.SYMMETRIC_KEY,
    Code.SYMMETRIC_KEY_REMOVED,
    _symmetric("attestation.type"),
    gained="switches the {what} to symmetric-key attestation",
    created="adds a symmetric-key {what}: whoever holds its key provisions{group}",
    lost="the {what} stops attesting with a symmetric key",
    more="the actual {what} attests with a symmetric key; the manifest says {att}",
    less="the actual {what} does not attest with a symmetric key; the manifest says symmetricKey",
)
GROUP_PROVISIONING = Capability(
    Code.PROVISIONING_ENABLED,
    Code.PROVISIONING_DISABLED,
    _when(lambda s: s.get("provisioningStatus", "enabled") == "enabled"),
    gained="enables provisioning for the enrollment group: every device it admits registers",
    created="creates the enrollment group with provisioning enabled: every device it admits ({admits}) registers",
    lost="disables provisioning for the enrollment group",
    more="provisioning is enabled on the actual enrollment group; the manifest disables it",
    less="provisioning is disabled on the actual enrollment group; the manifest enables it: re-applying enables it",
)
HUB_CA = Capability(
    Code.CA_REGISTERED,
    Code.CA_DEACTIVATED,
    _when(lambda s: True),
    gained="",
    created="uploads CA certificate {name} to the hub: once verified, devices it signs authenticate",
    lost="",
    more="",
    less="",
)
HUB_CA_VERIFIED = Capability(
    Code.CA_ACTIVATED,
    Code.CA_DEACTIVATED,
    _when(lambda s: s.get("isVerified") is True),
    gained="verifies CA certificate {name}: devices it signs authenticate",
    created="",
    lost="",
    more="the actual hub CA certificate is verified; the manifest does not verify it",
    less="the actual hub CA certificate is not verified: re-applying verifies it",
)


SERVICE_ROLE_TRUST = Capability(
    Code.TRUST_WIDENED,
    Code.TRUST_NARROWED,
    _names("assumedBy"),
    gained="lets {item} assume the role",
    created="creates an IAM role {item} may assume",
    lost="{item} may no longer assume the role",
    more="{item} may assume the actual role; the manifest does not trust it",
    less="{item} may not assume the actual role: re-applying trusts it",
)
ROLE_EXTRA_POLICIES = Capability(
    Code.POLICY_ATTACHED,
    Code.POLICY_DETACHED,
    _names("attachedPolicies"),
    gained="attaches {item} to the role",
    created="",
    lost="detaches {item} from the role (it was attached outside fleetctl)",
    more="{item} is attached to the actual role; the manifest declares only its inline policy",
    less="{item} is not attached to the actual role",
)


def _alias_role(state: Mapping[str, Any]) -> frozenset[str]:
    role = state.get("role") or state.get("roleArn") if state else None
    return frozenset({f"ServiceRole {state['role']}" if state.get("role") else str(role)}) if role else frozenset()


ALIAS_ROLE = Capability(
    Code.CREDENTIALS_ROLE_CHANGED,
    Code.CREDENTIALS_ROLE_CHANGED,
    _alias_role,
    gained="points the role alias at {item}: devices using it get that role's permissions",
    created="devices using the new role alias get the permissions of {item}",
    lost="",
    more="the actual role alias points at {item}; the manifest names another role",
    less="the actual role alias does not point at {item}: re-applying points it there",
)


def credential_duration(c: Change) -> list[Attention]:
    """A role alias whose device credentials live longer (more time for a leaked credential) or shorter."""
    want = c.desired.get("credentialDurationSeconds")
    have = c.actual.get("credentialDurationSeconds") if c.action is not Action.CREATE else None
    if want is None or have is None or want == have:
        return []
    if want > have:
        return [
            _item(
                Code.CREDENTIALS_LENGTHENED,
                f"device credentials live {want} s instead of {have} s",
                Severity.HIGH,
                _item(
                    Code.CREDENTIALS_SHORTENED,
                    f"the actual role alias issues credentials for {have} s; the manifest says {want} s",
                    Severity.WARNING,
                ),
            )
        ]
    return [
        _item(
            Code.CREDENTIALS_SHORTENED,
            f"device credentials live {want} s instead of {have} s",
            Severity.INFO,
            _item(
                Code.CREDENTIALS_LENGTHENED,
                f"the actual role alias issues credentials for {have} s, longer than the manifest's {want} s",
                Severity.HIGH,
            ),
        )
    ]


def _words(c: Change) -> dict[str, str]:
    """The values templates may name (computed only for a change that has an item)."""
    d, a = c.desired, c.actual
    kind = c.kind.split(".", 1)[-1]
    words = {
        "name": c.address.name,
        "status": str(d.get("status", "absent")),
        "actual_status": str(a.get("status", "absent")),
        "auto": str(d.get("autoRegistration", "DISABLE")),
        "what": _WHAT.get(kind, kind),
        "type": "JITP" if d.get("type") == "JITP" else "fleet",
        "auth": "",
        "att": "",
        "group": "",
        "admits": "",
    }
    if c.kind.startswith("azure."):
        ca = _get(d, "attestation.caReferences.primary")
        words.update(
            auth=str(_get(d, "authentication.type")),
            att=str(_get(d, "attestation.type")),
            group=" (every device that derives a key from it)" if kind == "EnrollmentGroup" else "",
            admits=f"certificates CA {ca} signs"
            if ca
            else ("holders of the group key" if _get(d, "attestation.type") == "symmetricKey" else "its attestation"),
        )
    return words


_WHAT = {
    "ThingGroup": "thing group",
    "Certificate": "certificate",
    "EnrollmentGroup": "enrollment group",
    "Enrollment": "enrollment",
}


@lru_cache(maxsize=4096)
def _item(code: Code, message: str, severity: Severity, drift: Attention | None = None) -> Attention:
    """One shared value per distinct item: 100,000 certificates created ACTIVE hold one Attention, not 100,000."""
    return Attention(code, message, severity, drift)


def _say(template: str, words: Mapping[str, str], item: str) -> str:
    return template.format(item=item, **words)


def _capability(cap: Capability) -> Callable[[Change], list[Attention]]:
    def check(c: Change) -> list[Attention]:
        desired = cap.probe(c.desired)
        actual = cap.probe(c.actual) if c.action is not Action.CREATE else frozenset()
        fresh = c.action in (Action.CREATE, Action.REPLACE)  # the resource the change makes is new
        gained = sorted(desired if fresh else desired - actual)
        lost = sorted(actual - desired)
        if not gained and not lost:
            return []
        words = _words(c)
        out = []
        for item in gained:
            template = cap.created if fresh else cap.gained
            if not template:
                continue
            drift = (
                _item(cap.opposite, _say(cap.less, words, item), Severity.WARNING)
                if c.action is not Action.CREATE and item not in actual and cap.less
                else None
            )
            out.append(_item(cap.code, _say(template, words, item), Severity.HIGH, drift))
        for item in lost:
            if not cap.lost:
                continue
            drift = _item(cap.code, _say(cap.more, words, item), Severity.HIGH) if cap.more else None
            out.append(_item(cap.opposite, _say(cap.lost, words, item), Severity.INFO, drift))
        return out

    return check


def policy_document(c: Change, key: str = "document") -> list[Attention]:
    """Statement-level widening and narrowing of a policy document (engine/plan/policydiff.py)."""
    desired = c.desired.get(key)
    actual = c.actual.get(key) if c.action is not Action.CREATE else None
    out = []
    for f in policydiff.widenings(actual or {}, desired or {}):
        drift = (
            Attention(
                Code.PERMISSIONS_NARROWED,
                f"actual policy grants less than the manifest (re-applying grants it): {f.statement}: {f.describe()}",
                Severity.WARNING,
            )
            if c.action is not Action.CREATE
            else None
        )
        what = f.as_change() if c.action is not Action.CREATE else f"grants {f.describe()}"
        out.append(Attention(Code.PERMISSIONS_WIDENED, f"{f.statement}: {what}", Severity.HIGH, drift))
    if c.action is not Action.CREATE:
        for f in policydiff.widenings(desired or {}, actual or {}):
            more = f"actual policy grants more than the manifest: {f.statement}: {f.describe()}"
            out.append(
                Attention(
                    Code.PERMISSIONS_NARROWED,
                    f"{more}; applying removes it",
                    Severity.INFO,
                    Attention(Code.PERMISSIONS_WIDENED, more, Severity.HIGH),
                )
            )
    return out


def _logging_reduced(state: Mapping[str, Any]) -> frozenset[str]:
    """What of the account's audit trail is off: all logs, or the default level below WARN (authorization
    failures of devices are logged at WARN and ERROR; DISABLED logs nothing)."""
    if not state:
        return frozenset()
    if state.get("disableAllLogs") or state.get("defaultLogLevel") == "DISABLED":
        return frozenset({"all AWS IoT logging"})
    if state.get("defaultLogLevel") == "ERROR":
        return frozenset({"logging below ERROR (warnings)"})
    return frozenset()


def _audit_off(state: Mapping[str, Any]) -> frozenset[str]:
    checks = by_qualified("aws.AccountAuditConfiguration").extra["checks"]  # declared with the kind
    return frozenset(checks) - frozenset(state.get("enabledChecks") or ()) if state else frozenset()


LOGGING_REDUCED = Capability(
    Code.LOGGING_REDUCED,
    Code.LOGGING_RESTORED,
    _logging_reduced,
    gained="turns off {item} for the account: device authorization failures are no longer recorded",
    created="",
    lost="turns {item} back on for the account",
    more="the account's actual logging has {item} off; the manifest keeps it on",
    less="the manifest turns off {item}; the account still logs: re-applying turns it off",
)
AUDIT_CHECK_OFF = Capability(
    Code.AUDIT_CHECK_DISABLED,
    Code.AUDIT_CHECK_ENABLED,
    _audit_off,
    gained="disables Device Defender audit check {item}",
    created="",
    lost="enables audit check {item}",
    more="audit check {item} is disabled in the account; the manifest enables it",
    less="the manifest disables audit check {item}; it is enabled in the account: re-applying disables it",
)
AUTHORIZER_UNSIGNED = Capability(
    Code.AUTHORIZER_UNSIGNED,
    Code.AUTHORIZER_SIGNED,
    _when(lambda s: s.get("signingDisabled") is True),
    gained="",
    created="creates authorizer {name} with token signing disabled: any client that reaches the Lambda "
    "is judged by it alone, unsigned",
    lost="",
    more="the actual authorizer accepts unsigned tokens; the manifest requires signing",
    less="",
)
AUTHORIZER_ACTIVE = Capability(
    Code.AUTHORIZER_ACTIVATED,
    Code.AUTHORIZER_DEACTIVATED,
    _when(lambda s: s.get("status") == "ACTIVE"),
    gained="sets authorizer {name} ACTIVE: clients can connect with its tokens",
    created="creates authorizer {name} ACTIVE: clients can connect with its tokens",
    lost="sets authorizer {name} {status}",
    more="the actual authorizer is ACTIVE; the manifest says {status}",
    less="the actual authorizer is {actual_status}; the manifest says ACTIVE: re-applying activates it",
)
DESTINATION_ON = Capability(
    Code.DESTINATION_ENABLED,
    Code.DESTINATION_DISABLED,
    lambda s: (
        frozenset({(s.get("http") or {}).get("confirmationUrl") or (s.get("vpc") or {}).get("vpcId", "")})
        if s.get("status") == "ENABLED"
        else frozenset()
    ),
    gained="enables the topic rule destination: rules may send device data to {item}",
    created="creates the topic rule destination enabled: rules may send device data to {item}",
    lost="disables the topic rule destination {item}",
    more="the actual destination {item} is ENABLED; the manifest disables it",
    less="the actual destination {item} is not ENABLED; the manifest enables it: re-applying enables it",
)


# kind → checks. Deletes and replaces are flagged for every kind (`assess`); a delete is not assessed further
# (the `delete` item says it all, in both perspectives).
CHECKS: dict[str, tuple[Callable[[Change], list[Attention]], ...]] = {
    "aws.Policy": (policy_document,),
    "aws.ServiceRole": (
        lambda c: policy_document(c, "policy"),
        _capability(SERVICE_ROLE_TRUST),
        _capability(ROLE_EXTRA_POLICIES),
    ),
    "aws.RoleAlias": (_capability(ALIAS_ROLE), credential_duration),
    "aws.Certificate": (_capability(CERTIFICATE_ACTIVE), _capability(POLICIES_ATTACHED)),
    "aws.ThingGroup": (_capability(POLICIES_ATTACHED),),
    "aws.CACertificate": (
        _capability(CA_REGISTERED),
        _capability(CA_ACTIVE),
        _capability(AUTO_REGISTRATION),
        _capability(JITP_TEMPLATE),
    ),
    "aws.ProvisioningTemplate": (_capability(TEMPLATE_ENABLED), _capability(TEMPLATE_UNHOOKED)),
    "aws.LoggingOptions": (_capability(LOGGING_REDUCED),),
    "aws.AccountAuditConfiguration": (_capability(AUDIT_CHECK_OFF),),
    "aws.Authorizer": (_capability(AUTHORIZER_UNSIGNED), _capability(AUTHORIZER_ACTIVE)),
    "aws.TopicRuleDestination": (_capability(DESTINATION_ON),),
    "azure.Device": (_capability(DEVICE_SYMMETRIC),),
    "azure.Enrollment": (_capability(ENROLLMENT_SYMMETRIC),),
    "azure.EnrollmentGroup": (_capability(ENROLLMENT_SYMMETRIC), _capability(GROUP_PROVISIONING)),
    "azure.HubCertificate": (_capability(HUB_CA), _capability(HUB_CA_VERIFIED)),
}


def _destructive(c: Change) -> list[Attention]:
    if c.action is Action.DELETE:
        why = c.reason or "no longer declared"
        return [
            _item(
                Code.DELETE,
                f"deletes the {c.kind} ({why})",
                Severity.WARNING,
                _item(
                    Code.DELETE,
                    "exists, is managed by fleetctl and no manifest declares it: re-applying deletes it",
                    Severity.WARNING,
                ),
            )
        ]
    if c.action is Action.REPLACE:
        why = c.reason or "a field differs that cannot be updated in place"
        return [
            _item(
                Code.REPLACE,
                f"deletes and re-creates the {c.kind} ({why})",
                Severity.WARNING,
                _item(Code.REPLACE, f"{why}: re-applying deletes and re-creates it", Severity.WARNING),
            )
        ]
    return []


def assess(change: Change) -> tuple[Attention, ...]:
    """The security-relevant aspects of one change, most severe first (a pure function of the Change)."""
    out = _destructive(change)
    if change.action is not Action.DELETE and change.action is not Action.NOOP:
        for check in CHECKS.get(change.kind, ()):
            out += check(change)
    return tuple(sorted(out, key=lambda a: a.severity.rank))
