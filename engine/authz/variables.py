"""Policy variables: what `${iot:...}` and a condition key resolve to for one connection, and substitution.

Why its own module: the evaluator, the matrix (which keeps a thing's own name symbolic, `${thing}`) and the
lint rules all need the same answer to "what does this variable stand for, for this device, or is it
unresolvable?". The facts come from the desired fleet only (a thing's name, type and attributes; the declared
certificate's subject and issuer), never from a cloud call.

Rules followed (AWS IoT Core developer guide):
- "AWS IoT Core policy variables" (basic variables): `iot:ClientId` is the client id of the MQTT connection;
  variables may be used in `Resource` and in `Condition`; when a policy is evaluated they are replaced by the
  actual values.
- "Thing policy variables": `iot:Connection.Thing.ThingName`, `.ThingTypeName`, `.Attributes[attributeName]`
  resolve from the thing the connecting certificate is attached to; `.IsAttached` is "true" or "false" (whether
  the connecting thing is attached to the certificate). With non-exclusive association (a certificate attached to
  several things) the client id must match the thing name; with an exclusive association AWS IoT uses the
  certificate to determine the thing. A thing without the type or attribute leaves the variable unresolved.
- "Thing policy examples": "If the device certificate is not associated with the thing, this variable won't be
  resolved and will result in an access denied error": an unresolvable variable makes the resource (or the
  condition value) that uses it not match. fleetctl applies that to every variable it cannot resolve.
- "X.509 Certificate AWS IoT Core policy variables" / "Using X.509 certificate policy variables":
  `iot:Certificate.Subject.<Attribute>` and `iot:Certificate.Issuer.<Attribute>` for the attributes Country,
  Organization, OrganizationalUnit, DistinguishedNameQualifier, State, CommonName, SerialNumber, Title, Surname,
  GivenName, Initials, Pseudonym, GenerationQualifier; `iot:Certificate.SerialNumber`,
  `iot:Certificate.Validity.NotBefore` / `NotAfter`, `iot:CertificateId`, and the alternative names
  (`iot:Certificate.Subject.AlternativeName.DNSName` ...). A certificate that lacks the attribute leaves the
  variable unevaluated; an attribute value holding a wildcard character is not substituted (limitations
  section); multi-valued attributes are arrays (at most five items are used), so in a `Resource` they do not
  resolve to one value and are meant for `ForAnyValue`/`ForAllValues` conditions.
- IAM "Policy variables" (special characters): `${*}`, `${?}`, `${$}` stand for the literal `*`, `?`, `$` (as
  `$(*)`, `$(?)`, `$($)` do in the IoT guide's spelling).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.authz.policy import VARIABLE, literal

THING = "iot:Connection.Thing."
THING_NAME = "iot:Connection.Thing.ThingName"
CLIENT_ID = "iot:ClientId"
CERT_ATTRIBUTES = (
    "Country",
    "Organization",
    "OrganizationalUnit",
    "DistinguishedNameQualifier",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
)
ARRAY_LIMIT = 5


@dataclass(frozen=True)
class ThingFacts:
    name: str
    thing_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CertFacts:
    """A certificate's attributes as policy variables see them: name attribute → values (in certificate order)."""

    certificate_id: str = ""
    subject: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    issuer: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    serial_number: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    subject_alt: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    issuer_alt: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    """One MQTT connection as the policy engine sees it: the client id, the thing the certificate resolves to
    (None: no thing, e.g. the certificate is attached to none or to several and the client id names none), whether
    that connection is attached to a thing, and the certificate's facts (None: not declared, e.g. JITP)."""

    client_id: str | None
    thing: ThingFacts | None = None
    certificate: CertFacts | None = None
    keep: frozenset[str] = frozenset()  # variables left symbolic (the matrix keeps `${thing}`)

    @property
    def is_attached(self) -> bool:
        return self.thing is not None


def resolve(key: str, session: Session) -> tuple[str, ...] | None:
    """The value(s) of a policy variable or condition key; None when it is absent (unresolvable)."""
    if key == CLIENT_ID:
        return (session.client_id,) if session.client_id is not None else None
    if key.startswith(THING):
        rest = key[len(THING) :]
        if rest == "IsAttached":
            return ("true" if session.is_attached else "false",)
        thing = session.thing
        if thing is None:
            return None
        if rest == "ThingName":
            return (thing.name,)
        if rest == "ThingTypeName":
            return (thing.thing_type,) if thing.thing_type else None
        if rest.startswith("Attributes[") and rest.endswith("]"):
            value = thing.attributes.get(rest[len("Attributes[") : -1])
            return (value,) if value is not None else None
        return None
    cert = session.certificate
    if cert is None:
        return None
    if key in ("iot:CertificateId", "iot:Certificate.Id"):
        return (cert.certificate_id,) if cert.certificate_id else None
    if key == "iot:Certificate.SerialNumber":
        return (cert.serial_number,) if cert.serial_number else None
    if key in ("iot:Certificate.Validity.NotBefore", "iot:Certificate.Validity.NotAfter"):
        when = cert.not_before if key.endswith("NotBefore") else cert.not_after
        return (when.strftime("%Y-%m-%dT%H:%M:%SZ"),) if when else None
    for prefix, names, alt in (
        ("iot:Certificate.Subject.", cert.subject, cert.subject_alt),
        ("iot:Certificate.Issuer.", cert.issuer, cert.issuer_alt),
    ):
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            if rest.startswith("AlternativeName."):
                values = alt.get(rest[len("AlternativeName.") :])
            else:
                values = names.get(rest)
            return tuple(values[:ARRAY_LIMIT]) if values else None
    return None


def substitute(text: str, session: Session) -> str | None:
    """`text` (a Resource or a condition value) with its variables replaced by their values, each value made
    literal; None when a variable does not resolve to exactly one value without wildcard characters."""
    if "${" not in text:
        return text
    return _substitute(text, session)


def _substitute(text: str, session: Session) -> str | None:
    out: list[str] = []
    pos = 0
    for m in VARIABLE.finditer(text):
        out.append(text[pos : m.start()])
        name = m.group(1).strip()
        if name in ("*", "?", "$"):  # IAM's ${*} ${?} ${$}: the literal character
            out.append(literal(name))
        elif name in session.keep:
            out.append(m.group(0))
        else:
            values = resolve(name, session)
            if values is None or len(values) != 1:
                return None
            value = values[0]
            if name.startswith("iot:Certificate.") and ("*" in value or "?" in value):
                return None  # limitations: a wildcard in a certificate attribute is not replaced
            out.append(literal(value))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# ------------------------------------------------------------------------------------------ certificates
_OID_NAMES = {
    "2.5.4.6": "Country",
    "2.5.4.10": "Organization",
    "2.5.4.11": "OrganizationalUnit",
    "2.5.4.46": "DistinguishedNameQualifier",
    "2.5.4.8": "State",
    "2.5.4.3": "CommonName",
    "2.5.4.5": "SerialNumber",
    "2.5.4.12": "Title",
    "2.5.4.4": "Surname",
    "2.5.4.42": "GivenName",
    "2.5.4.43": "Initials",
    "2.5.4.65": "Pseudonym",
    "2.5.4.44": "GenerationQualifier",
}


@functools.lru_cache(maxsize=4096)
def cert_facts(pem: str) -> CertFacts:
    """A certificate's policy-variable facts, read from its PEM (public material) with `cryptography`."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from engine.pki import load_cert

    cert = load_cert(pem)  # PemError (a ValueError) when it is no certificate

    def names(name: x509.Name) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for attr in name:
            label = _OID_NAMES.get(attr.oid.dotted_string)
            if label:
                out.setdefault(label, []).append(str(attr.value))
        return {k: tuple(v) for k, v in out.items()}

    def alt(
        ext_class: type[x509.SubjectAlternativeName] | type[x509.IssuerAlternativeName],
    ) -> dict[str, tuple[str, ...]]:
        try:
            value = cert.extensions.get_extension_for_class(ext_class).value
        except x509.ExtensionNotFound:
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for label, kind in (
            ("DNSName", x509.DNSName),
            ("RFC822Name", x509.RFC822Name),
            ("UniformResourceIdentifier", x509.UniformResourceIdentifier),
            ("IPAddress", x509.IPAddress),
        ):
            found = tuple(str(v) for v in value.get_values_for_type(kind))
            if found:
                out[label] = found
        return out

    der = cert.public_bytes(serialization.Encoding.DER)
    return CertFacts(
        hashlib.sha256(der).hexdigest(),
        names(cert.subject),
        names(cert.issuer),
        format(cert.serial_number, "x"),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        alt(x509.SubjectAlternativeName),
        alt(x509.IssuerAlternativeName),
    )
