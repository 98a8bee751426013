"""Pure planning rules of the Azure kinds: the steps a reviewer sees, computed from the change alone.

The provider's apply handlers branch on the same functions (`device_parts`, `proof_of_possession`), so what the
plan says — "patch the twin: desired.telemetryInterval (If-Match twin etag)" — is what apply does.

Proof of possession of a hub CA certificate cannot be planned to the end: the hub issues the verification code only
after the upload. The steps say so honestly: verify when the declared verification certificate's CN is the code the
hub hands out, otherwise report the code; the resource then stays `isVerified: false` and the next plan shows the
pending `isVerified: false → true` until a verification certificate made from that code is declared. That pending
verification is a state of its own: the plan's steps and apply's ProofOfPossessionPending outcome name the code and
the openssl command that signs it (`sign_command`; the CA key's path is a placeholder, fleetctl never touches it),
and a verification certificate made for an earlier code is reported as such (Azure issues a new random code on
every generateVerificationCode, so it can never match).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

from engine.diagnostics import Diagnostic
from engine.model import Action, Change

IDENTITY_FIELDS = ("authentication", "primaryKey", "secondaryKey", "status", "iotEdge")
TWIN_FIELDS = ("tags", "desired")


class Proof(Enum):
    """How apply proves possession of a hub CA's key."""

    NONE = "none"  # verified already, or nothing to prove
    FRESH = "fresh"  # (re)uploaded: ask for a code, verify if the declared certificate has it as CN
    DECLARED = "declared"  # uploaded earlier, code reported earlier: verify with the declared certificate
    REPORT = "report"  # nothing declared to verify with: ask for a code and report it


def _roots(change: Change) -> set[str]:
    return {f.field for f in change.fields}


def device_parts(change: Change) -> tuple[list[str], list[str]]:
    """(identity field paths, twin field paths) an update changes: one PUT of the identity, one twin PATCH."""
    identity = sorted(f.path for f in change.fields if f.field in IDENTITY_FIELDS)
    twin = sorted(f.path for f in change.fields if f.field in TWIN_FIELDS)
    return identity, twin


def sign_command(code: str) -> str:
    """The openssl line that makes a verification certificate for `code`, run by the operator where the CA key is:
    fleetctl never reads, holds or asks for the CA's private key (its path is a placeholder)."""
    return (
        f'openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/CN={code}" '
        f"| openssl x509 -req -CA <CA certificate PEM> -CAkey <CA private key> -CAcreateserial -days 30 "
        f"-out <verificationCertificatePem file>"
    )


def proof_of_possession(change: Change) -> Proof:
    uploads = change.action is Action.CREATE or "thumbprint" in _roots(change)
    if uploads:
        return Proof.FRESH
    if change.action is Action.UPDATE and "isVerified" in _roots(change) and change.desired.get("isVerified"):
        return Proof.DECLARED if change.inputs.get("verificationCertificatePem") else Proof.REPORT
    return Proof.NONE


def _proof_steps(change: Change) -> list[str]:
    proof = proof_of_possession(change)
    code = change.inputs.get("verificationCode")
    issued = change.ids.get("verificationCode")  # the code an earlier apply was issued, still current
    if issued and proof in (Proof.REPORT, Proof.DECLARED) and code != issued:
        made = (
            f"the declared verificationCertificatePem has CN {code}, not that code (Azure issues a new code on "
            "every request); "
            if code
            else ""
        )
        return [
            f"pending proof of possession: the hub's current verification code is {issued}; {made}sign it with "
            f"the CA's key outside fleetctl: {sign_command(issued)}; declare the certificate as "
            "verificationCertificatePem and plan again",
            "apply meanwhile: "
            + ("verify with the declared certificate, fail, " if code else "")
            + "generate a new code and report it (the code above is then void)",
        ]
    report = "report the verification code"
    pending = (
        f"{report}; isVerified stays false until verificationCertificatePem (CN = the code, signed with the "
        "CA's key outside fleetctl) is declared and applied; apply prints the code and the command to sign it: "
        + sign_command("<code>")
    )
    if proof is Proof.FRESH:
        verify = (
            f"verify with verificationCertificatePem (CN {code}) if that is the hub's code; otherwise {report}"
            if code
            else pending
        )
        return ["generate a verification code (If-Match etag)", verify]
    if proof is Proof.DECLARED:
        return [
            f"verify with verificationCertificatePem (CN {code}) (If-Match etag)",
            "if the hub's current code differs: generate a new code and report it",
        ]
    if proof is Proof.REPORT:
        return ["generate a verification code and " + pending]
    return []


def _hub_certificate(c: Change) -> Change | Diagnostic:
    if c.action is Action.CREATE:
        steps = [f"upload the CA certificate (thumbprint {c.desired.get('thumbprint')})"]
    elif c.action is Action.UPDATE and "thumbprint" in _roots(c):
        steps = ["replace the certificate (If-Match etag); the hub resets isVerified to false"]
    else:
        steps = []
    return replace(c, steps=tuple(steps + _proof_steps(c)))


def _device(c: Change) -> Change | Diagnostic:
    if c.action is Action.CREATE:
        return replace(
            c,
            steps=(
                "create the identity with its twin tags, desired properties and the ownership tag "
                "fleetctl.managed, through the bulk registry API",
            ),
        )
    if c.action is Action.DELETE:
        return replace(c, steps=("delete the device (If-Match etag)",))
    identity, twin = device_parts(c)
    steps = []
    if identity:
        keep = (
            ", keeping the keys the service generated"
            if c.desired.get("authentication", {}).get("type") == "symmetricKey"
            and not any(k in c.desired for k in ("primaryKey", "secondaryKey"))
            else ""
        )
        steps.append(f"update the identity: {', '.join(identity)} (If-Match etag{keep})")
    if twin:
        steps.append(f"patch the twin: {', '.join(twin)} (If-Match twin etag; reported properties untouched)")
    return replace(c, steps=tuple(steps))


def _dps(what: str) -> Callable[[Change], Change | Diagnostic]:
    def refine(c: Change) -> Change | Diagnostic:
        if c.action is Action.CREATE:
            return replace(c, steps=(f"create the {what} (ownership tag fleetctl.provisionedBy in its initial twin)",))
        if c.action is Action.UPDATE:
            return replace(
                c, steps=(f"replace the {what} (If-Match etag), keeping the fields the manifest leaves out",)
            )
        if c.action is Action.REPLACE:
            return replace(
                c,
                steps=(
                    f"delete the {what} {c.actual.get('registrationId')} (If-Match etag)",
                    f"create the {what} {c.desired.get('registrationId')}",
                ),
            )
        if c.action is Action.DELETE:
            return replace(c, steps=(f"delete the {what} (If-Match etag); devices it provisioned stay registered",))
        return c

    return refine


def _device_calls(c: Change) -> Counter[str]:
    """Mutating calls per IoT Hub throttle class (engine/ratelimit.py). A create is one bulk registry entry; whether
    IoT Hub counts a bulk call of 100 devices once or 100 times is not documented, so this counts per device."""
    if c.action in (Action.CREATE, Action.DELETE):
        return Counter(registry=1)
    identity, twin = device_parts(c)
    return Counter(registry=1 if identity else 0, twin_update=1 if twin else 0)


def _hub_certificate_calls(c: Change) -> Counter[str]:
    uploads = 1 if c.action is Action.CREATE or "thumbprint" in _roots(c) else 0
    proof = proof_of_possession(c)
    return Counter(arm=uploads + {Proof.NONE: 0, Proof.REPORT: 1, Proof.DECLARED: 1, Proof.FRESH: 2}[proof])


def _dps_calls(c: Change) -> Counter[str]:
    return Counter(dps=2 if c.action is Action.REPLACE else 1)


CALLS = {
    "HubCertificate": _hub_certificate_calls,
    "Device": _device_calls,
    "EnrollmentGroup": _dps_calls,
    "Enrollment": _dps_calls,
}

REFINE = {
    "HubCertificate": _hub_certificate,
    "Device": _device,
    "EnrollmentGroup": _dps("enrollment group"),
    "Enrollment": _dps("enrollment"),
}
