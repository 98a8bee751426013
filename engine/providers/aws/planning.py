"""Pure planning rules of the AWS kinds: the steps a reviewer sees, and changes AWS cannot make.

The provider's apply handlers follow exactly the steps computed here (same function), so what the plan
says — "delete policy version 1" — is what apply does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from engine.diagnostics import Diagnostic
from engine.model import Action, Blocked, Change

MAX_POLICY_VERSIONS = 5


def policy_version_steps(c: Change) -> tuple[list[int], list[int], bool]:
    """(versions deleted before creating, the new version is created?, versions deleted after).

    AWS keeps at most 5 versions per policy and never deletes the default one; `keepVersions` is the
    retention the manifest asks for. Oldest non-default versions go first.
    """
    versions = sorted(int(v) for v in c.ids.get("versions", []))
    default = int(c.ids.get("defaultVersionId") or 0)
    keep = int(c.desired.get("keepVersions", c.inputs.get("keepVersions", MAX_POLICY_VERSIONS)))
    create = any(f.path == "document" or f.path.startswith("document.") for f in c.fields)
    before: list[int] = []
    remaining = list(versions)
    if create and len(remaining) >= MAX_POLICY_VERSIONS:
        for v in [v for v in remaining if v != default][: len(remaining) - MAX_POLICY_VERSIONS + 1]:
            before.append(v)
            remaining.remove(v)
    after: list[int] = []
    count = len(remaining) + (1 if create else 0)
    candidates = [v for v in remaining if create or v != default]  # after a create the old default is deletable
    while count > keep and candidates:
        v = candidates.pop(0)
        after.append(v)
        count -= 1
    return before, after, create


Refined = Change | Blocked | Diagnostic


def _policy(c: Change) -> Refined:
    if c.action is Action.UPDATE:
        before, after, create = policy_version_steps(c)
        nxt = max([int(v) for v in c.ids.get("versions", [])] or [0]) + 1
        steps = [f"delete policy version {v} (AWS keeps at most {MAX_POLICY_VERSIONS})" for v in before]
        if create:
            steps.append(f"create policy version {nxt} and set it as default")
        steps += [f"delete policy version {v} (keepVersions: {c.desired.get('keepVersions')})" for v in after]
        return replace(c, steps=tuple(steps))
    if c.action is Action.DELETE:
        targets = c.ids.get("targets", [])
        steps = [f"detach from {t}" for t in targets]
        steps += [
            f"delete policy version {v}"
            for v in c.ids.get("versions", [])
            if str(v) != str(c.ids.get("defaultVersionId"))
        ]
        return replace(c, steps=tuple(steps + ["delete policy"]))
    return c


def _certificate(c: Change) -> Refined:
    if (
        c.action in (Action.UPDATE, Action.REPLACE)
        and c.actual.get("status") == "REVOKED"
        and c.desired.get("status") != "REVOKED"
        and c.action is Action.UPDATE
    ):
        return Blocked.of(
            c,
            f"the certificate is REVOKED and the manifest says {c.desired.get('status', 'ACTIVE')}: "
            "a REVOKED certificate cannot be made ACTIVE or INACTIVE again on AWS IoT",
            "issue a new certificate (a new PEM) for the device, declare it (and point the thing's "
            "principals at it), and detach the revoked one; or declare status: REVOKED to accept "
            "the revocation",
            field="status",
        )
    delete_steps = [
        "detach from every thing",
        *[f"detach policy {p}" for p in c.actual.get("policies", [])],
        *(["set status INACTIVE"] if c.actual.get("status") == "ACTIVE" else []),
        "delete certificate",
    ]
    status = c.desired.get("status", "ACTIVE")
    if c.desired.get("policies"):  # the provider's _cert_create: no ACTIVE certificate holding a policy unattached
        create_steps = [
            "register certificate as INACTIVE",
            *[f"attach policy {p}" for p in c.desired["policies"]],
            f"set status {status}",
        ]
    else:
        create_steps = [f"register certificate as {status}"]
    if c.action is Action.DELETE:
        return replace(c, steps=tuple(delete_steps))
    if c.action is Action.REPLACE:
        return replace(c, steps=tuple(delete_steps + create_steps))
    if c.action is Action.CREATE:
        return replace(c, steps=tuple(create_steps))
    return c


def _ca(c: Change) -> Refined:
    delete_steps = [*(["set status INACTIVE"] if c.actual.get("status") == "ACTIVE" else []), "delete CA certificate"]
    if c.action is Action.DELETE:
        return replace(c, steps=tuple(delete_steps))
    if c.action is Action.REPLACE:
        return replace(c, steps=tuple(delete_steps + ["register CA certificate with its verification certificate"]))
    if (
        c.action is Action.CREATE
        and not c.inputs.get("verificationCertificatePem")
        and c.inputs.get("certificateMode", "DEFAULT") == "DEFAULT"
    ):
        return Blocked.of(
            c,
            "registering a CA in DEFAULT mode needs verificationCertificatePem (proof of "
            "possession), and the manifest declares none",
            "make a verification certificate outside fleetctl (CN = the account's registration code, "
            "signed with the CA's key) and declare it as verificationCertificatePem",
            field="verificationCertificatePem",
        )
    return c


def _thing(c: Change) -> Refined:
    if c.action is Action.DELETE:
        steps = [f"detach certificate {p}" for p in c.actual.get("principals", [])] + ["delete thing"]
        return replace(c, steps=tuple(steps))
    return c


def _thing_type(c: Change) -> Refined:
    if c.action is Action.REPLACE:
        return Blocked.of(
            c,
            "thing type properties cannot be changed in place, and replacing a type means "
            "deprecating it, waiting 5 minutes and deleting it while no thing uses it",
            "declare a new ThingType name instead (and move the things to it), or change the "
            "manifest back to the properties the type has",
            field=c.reason.split(" ")[0],
        )
    if c.action is Action.DELETE:
        return replace(
            c, steps=("deprecate thing type", "delete thing type (AWS requires 5 minutes after deprecation)")
        )
    return c


def _thing_group(c: Change) -> Refined:
    if c.action is Action.REPLACE:
        members = c.ids.get("members", [])
        return replace(
            c,
            steps=(
                "delete thing group",
                "create thing group under the new parent",
                f"re-add its {len(members)} member thing(s)",
            ),
        )
    if c.action is Action.DELETE:
        return replace(
            c, steps=tuple([f"detach policy {p}" for p in c.actual.get("policies", [])] + ["delete thing group"])
        )
    return c


REFINE = {
    "Policy": _policy,
    "Certificate": _certificate,
    "CACertificate": _ca,
    "Thing": _thing,
    "ThingType": _thing_type,
    "ThingGroup": _thing_group,
}


# ---------------------------------------------------------------------------------------------- calls per change
# The mutating AWS calls apply makes for one change, per API (the handlers in provider.py make exactly these;
# tests/scale/test_estimate.py checks the table against the calls counted on moto). Plans sum them per wave and
# divide by the default quotas (engine/quotas.py; engine/estimate.py) to state the binding quota and the apply duration.
MANAGED_FIELD = "managedBy"  # the adoption marker field (see ADOPT_ANNOTATION in engine/providers/aws/kinds.py)


def _diff(c: Change, key: str) -> tuple[int, int]:
    want, have = set(c.desired.get(key, []) or []), set(c.actual.get(key, []) or [])
    return len(want - have), len(have - want)


def _touched(c: Change, *keys: str) -> bool:
    return any(f.path == k or f.path.startswith(k + ".") for f in c.fields for k in keys)


def _adopt(c: Change, api: str) -> Counter[str]:
    return Counter({api: 1}) if c.action is Action.UPDATE and _touched(c, MANAGED_FIELD) else Counter()


def _thing_calls(c: Change) -> Counter[str]:
    if c.action is Action.CREATE:
        return Counter(
            {
                "CreateThing": 1,
                "AddThingToThingGroup": len(c.desired.get("groups", [])),
                "AttachThingPrincipal": len(c.desired.get("principals", [])),
            }
        )
    if c.action is Action.DELETE:
        return Counter({"DetachThingPrincipal": len(c.actual.get("principals", []) or []), "DeleteThing": 1})
    add_g, rm_g = _diff(c, "groups")
    add_p, rm_p = _diff(c, "principals")
    return (
        Counter(
            {
                "UpdateThing": int(_touched(c, "attributes", "thingType")),
                "AddThingToThingGroup": add_g,
                "RemoveThingFromThingGroup": rm_g,
                "AttachThingPrincipal": add_p,
                "DetachThingPrincipal": rm_p,
            }
        )
        + _adopt(c, "UpdateThing")
        + _billing_calls(c)
    )


def _billing_calls(c: Change) -> Counter[str]:
    """A thing's move between billing groups (engine/providers/aws/billing.py thing_billing)."""
    if not _touched(c, "billingGroup"):
        return Counter()
    old, new = c.actual.get("billingGroup"), c.desired.get("billingGroup")
    return Counter(
        {
            "RemoveThingFromBillingGroup": int(bool(old) and old != new),
            "AddThingToBillingGroup": int(bool(new) and new != old),
        }
    )


def _certificate_calls(c: Change) -> Counter[str]:
    # the things holding it are listed at apply: none on a delete (its thing's delete runs first and detaches
    # it), its one thing on a replace
    delete = Counter(
        {
            "DetachThingPrincipal": int(c.action is Action.REPLACE),
            "DetachPolicy": len(c.actual.get("policies", []) or []),
            "UpdateCertificate": int(c.actual.get("status") == "ACTIVE"),
            "DeleteCertificate": 1,
        }
    )
    policies = c.desired.get("policies", []) or []
    register = "RegisterCertificate" if c.inputs.get("caCertificatePem") else "RegisterCertificateWithoutCA"
    # registered with its final status when no policy is attached to it; else INACTIVE, policies, then status
    create = Counter(
        {
            register: 1,
            "AttachPolicy": len(policies),
            "UpdateCertificate": int(bool(policies) and c.desired.get("status", "ACTIVE") != "INACTIVE"),
        }
    )
    if c.action is Action.CREATE:
        return create
    if c.action is Action.DELETE:
        return delete
    if c.action is Action.REPLACE:
        return delete + create
    add, rm = _diff(c, "policies")
    return Counter({"UpdateCertificate": int(_touched(c, "status")), "AttachPolicy": add, "DetachPolicy": rm})


def _policy_calls(c: Change) -> Counter[str]:
    if c.action is Action.CREATE:
        return Counter({"CreatePolicy": 1})
    if c.action is Action.DELETE:
        default = str(c.ids.get("defaultVersionId"))
        return Counter(
            {
                "DetachPolicy": len(c.ids.get("targets", [])),
                "DeletePolicy": 1,
                "DeletePolicyVersion": sum(1 for v in c.ids.get("versions", []) if str(v) != default),
            }
        )
    before, after, create = policy_version_steps(c)
    return Counter({"DeletePolicyVersion": len(before) + len(after), "CreatePolicyVersion": int(create)}) + _adopt(
        c, "TagResource"
    )


def _thing_type_calls(c: Change) -> Counter[str]:
    if c.action is Action.CREATE:
        return Counter({"CreateThingType": 1, "DeprecateThingType": int(bool(c.desired.get("deprecated")))})
    if c.action is Action.DELETE:
        return Counter({"DeprecateThingType": int(not c.actual.get("deprecated")), "DeleteThingType": 1})
    return Counter({"DeprecateThingType": int(_touched(c, "deprecated"))}) + _adopt(c, "TagResource")


def _thing_group_calls(c: Change) -> Counter[str]:
    create = Counter({"CreateThingGroup": 1, "AttachPolicy": len(c.desired.get("policies", []))})
    delete = Counter({"DetachPolicy": len(c.actual.get("policies", []) or []), "DeleteThingGroup": 1})
    if c.action is Action.CREATE:
        return create
    if c.action is Action.DELETE:
        return delete
    if c.action is Action.REPLACE:
        return delete + create + Counter({"AddThingToThingGroup": len(c.ids.get("members", []))})
    add, rm = _diff(c, "policies")
    return Counter(
        {"UpdateThingGroup": int(_touched(c, "attributes", "description")), "AttachPolicy": add, "DetachPolicy": rm}
    ) + _adopt(c, "UpdateThingGroup")


def _ca_calls(c: Change) -> Counter[str]:
    delete = Counter({"UpdateCACertificate": int(c.actual.get("status") == "ACTIVE"), "DeleteCACertificate": 1})
    if c.action is Action.CREATE:
        return Counter({"RegisterCACertificate": 1})
    if c.action is Action.DELETE:
        return delete
    if c.action is Action.REPLACE:
        return delete + Counter({"RegisterCACertificate": 1})
    rest = [f for f in c.fields if f.path != MANAGED_FIELD]
    return Counter({"UpdateCACertificate": int(bool(rest))}) + _adopt(c, "TagResource")


def _simple(create: str, update: str, delete: str) -> Callable[[Change], Counter[str]]:
    def calls(c: Change) -> Counter[str]:
        if c.action is Action.UPDATE:
            rest = [f for f in c.fields if f.path != MANAGED_FIELD]
            return Counter({update: int(bool(rest))}) + _adopt(c, "TagResource")
        return Counter({create if c.action is Action.CREATE else delete: 1})

    return calls


def _template_calls(c: Change) -> Counter[str]:
    if c.action is Action.UPDATE:
        rest = [f for f in c.fields if f.path != MANAGED_FIELD]
        return Counter(
            {
                "CreateProvisioningTemplateVersion": int(_touched(c, "templateBody")),
                "UpdateProvisioningTemplate": int(bool(rest)),
            }
        ) + _adopt(c, "TagResource")
    return Counter({"CreateProvisioningTemplate" if c.action is Action.CREATE else "DeleteProvisioningTemplate": 1})


CALLS: dict[str, Callable[[Change], Counter[str]]] = {
    "Thing": _thing_calls,
    "Certificate": _certificate_calls,
    "Policy": _policy_calls,
    "ThingType": _thing_type_calls,
    "ThingGroup": _thing_group_calls,
    "CACertificate": _ca_calls,
    "TopicRule": _simple("CreateTopicRule", "ReplaceTopicRule", "DeleteTopicRule"),
    "ProvisioningTemplate": _template_calls,
}
