"""azure.fleetctl.io/v1 kinds: Device, HubCertificate, EnrollmentGroup, Enrollment — spec models and rules.

No Azure SDK here: validating a manifest must not import one. Each `expand` turns a validated spec into the canonical
shape the Azure provider reads back, so the diff is a plain comparison:

- Certificates are public material and are compared by SHA-1 thumbprint (Azure's own notation, upper-case hex): DPS
  replaces an uploaded certificate by an `info` block and ARM reports `thumbprint`, so PEMs never meet in the diff.
- Symmetric keys are secrets: the desired spec holds their keyed fingerprint (`hmac-sha256:…`,
  engine/fingerprint.py), the provider fingerprints the key it reads (device identity GET, DPS
  `attestationmechanism`) with the same function and keeps neither value. A key the manifest leaves
  out is left to the service: fleetctl never reads, compares or prints it.
- Device twin `tags` and `desired` are owned only for the paths the manifest declares (`partial_maps`); reported
  properties are never read into the state. The tag `fleetctl` is fleetctl's ownership marker and is reserved.

Validation that needs the whole fleet or a certificate's content happens here with file:line (ExpandContext.error):
the DPS registration-id rules (≤128 of alphanumerics and `- . _ :`, last character alphanumeric or `-`, unique
across the fleet ignoring case), IoT Hub device-id rules, the CN = device id / registration id rule for X.509
identities, twin key and size rules, and that a Target has the hub / DPS / ARM section a kind needs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from engine.diagnostics import Diagnostics
from engine.kinds import KindDecl, ListKey, Ref, register
from engine.manifest.core_kinds import AzureTargetSpec, TargetSpec
from engine.manifest.expand import ExpandContext, Expanded, simple_desired
from engine.manifest.specs import spec_as
from engine.manifest.types import Name, Pem, Secret, SecretRefModel, Strict
from engine.manifest.validation import Manifest
from engine.model import SecretRef, canonical_json
from engine.pki import CertInfo, issued_by
from engine.providers.azure.planning import CALLS, REFINE

GROUP = "azure.fleetctl.io"
MARKER_TAG = "fleetctl"  # device twin tag {"managed": true}; DPS initialTwin tag {"provisionedBy": ...}
MANAGED = "managed"
PROVISIONED_BY = "provisionedBy"
KEY_FIELDS = ("primaryKey", "secondaryKey")

# Azure's documented formats (also enforced by the emulators, engine/sandbox/azure)
REGISTRATION_ID = re.compile(r"^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9\-]$")
DEVICE_ID = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
CERTIFICATE_NAME = re.compile(r"^[A-Za-z0-9\-._]{1,64}$")
THUMBPRINT = r"^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$"
HOST_NAME = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+(:\d+)?$"
TWIN_KEY_FORBIDDEN = re.compile(r"[.$ \x00-\x1f\x7f-\x9f]")
TWIN_MAX_DEPTH = 10
TWIN_LIMITS = {"tags": 8 * 1024, "desired": 32 * 1024}
REGISTRATION_RULE = (
    "up to 128 characters of letters, digits and - . _ :, the last one a letter, a digit or -; "
    "DPS compares registration ids ignoring case"
)
DEVICE_ID_RULE = "up to 128 characters of letters, digits and - . % _ * ? ! ( ) , : = @ $ '"


# ------------------------------------------------------------------------------------------- models
class DeviceAuthentication(Strict):
    """How the device authenticates to the hub (the `az iot hub device-identity create --am` choice)."""

    type: Literal["x509CA", "selfSigned", "symmetricKey"] = Field(
        "symmetricKey",
        description="x509CA (certificate signed by a verified HubCertificate), selfSigned "
        "(thumbprints) or symmetricKey (SAS keys)",
    )
    primaryThumbprint: str | None = Field(None, pattern=THUMBPRINT, description="selfSigned: SHA-1 or SHA-256 hex")
    secondaryThumbprint: str | None = Field(None, pattern=THUMBPRINT, description="selfSigned: SHA-1 or SHA-256 hex")
    primaryKey: Secret | None = Field(
        None,
        description="symmetricKey: leave out to let the service generate it (fleetctl then never reads or prints it)",
    )
    secondaryKey: Secret | None = Field(None, description="symmetricKey: leave out to let the service generate it")
    certificatePem: Pem | None = Field(
        None,
        description="the device certificate (public): x509CA checks its CN is "
        "the device id; selfSigned takes its thumbprint",
    )
    caCertificate: Name | None = Field(None, description="x509CA: the HubCertificate that issued certificatePem")

    @model_validator(mode="after")
    def _fields_of_type(self) -> DeviceAuthentication:
        allowed = {
            "x509CA": {"certificatePem", "caCertificate"},
            "selfSigned": {"primaryThumbprint", "secondaryThumbprint", "certificatePem"},
            "symmetricKey": {"primaryKey", "secondaryKey"},
        }[self.type]
        extra = sorted(f for f in self.model_fields_set - {"type"} - allowed if getattr(self, f) is not None)
        if extra:
            raise ValueError(
                f"{', '.join(extra)} cannot be used with authentication type {self.type} "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
        if self.type == "selfSigned" and not (self.primaryThumbprint or self.certificatePem):
            raise ValueError("a selfSigned device needs primaryThumbprint or certificatePem")
        if self.caCertificate and not self.certificatePem:
            raise ValueError("caCertificate checks certificatePem: declare the device certificate too")
        return self


class DeviceSpec(Strict):
    """An IoT Hub device identity and the parts of its twin fleetctl manages (`az iot hub device-identity`)."""

    authentication: DeviceAuthentication = Field(default_factory=DeviceAuthentication)
    status: Literal["enabled", "disabled"] = "enabled"
    iotEdge: bool = Field(False, description="an IoT Edge device")
    tags: dict[str, Any] = Field(default_factory=dict, description="twin tags; only the keys declared are managed")
    desired: dict[str, Any] = Field(
        default_factory=dict, description="twin desired properties; only the keys declared are managed"
    )


class HubCertificateSpec(Strict):
    """A CA certificate of the hub (ARM `IotHubs/certificates`), uploaded and proven with a verification certificate.

    The verification code exists only after the upload: apply uploads, asks for a code and verifies when
    verificationCertificatePem's CN is that code; otherwise it reports the code, and the next plan shows the
    pending `isVerified: false → true` until a verification certificate made from it is declared.
    """

    certificatePem: Pem = Field(description="the CA certificate (public)")
    verificationCertificatePem: Pem | None = Field(
        None, description="made outside fleetctl with the CA's key, CN = the hub's verification code"
    )


class X509GroupAttestation(Strict):
    caCertificate: Name | None = Field(None, description="a verified CA certificate, by name (DPS caReferences)")
    secondaryCaCertificate: Name | None = None
    signingCertificatePem: Pem | None = Field(None, description="a root or intermediate certificate (public)")
    secondarySigningCertificatePem: Pem | None = None

    @model_validator(mode="after")
    def _one(self) -> X509GroupAttestation:
        if (self.caCertificate is None) == (self.signingCertificatePem is None):
            raise ValueError("x509 attestation has exactly one of: caCertificate, signingCertificatePem")
        if self.secondaryCaCertificate and not self.caCertificate:
            raise ValueError("secondaryCaCertificate goes with caCertificate")
        if self.secondarySigningCertificatePem and not self.signingCertificatePem:
            raise ValueError("secondarySigningCertificatePem goes with signingCertificatePem")
        return self


class X509EnrollmentAttestation(Strict):
    certificatePem: Pem = Field(description="the device's client certificate (public); its CN is the registration id")
    secondaryCertificatePem: Pem | None = None


class SymmetricKeyAttestation(Strict):
    primaryKey: Secret | None = Field(None, description="leave out to let DPS generate it (never read or printed)")
    secondaryKey: Secret | None = None


class _Attestation(Strict):
    """How devices prove who they are to DPS: exactly one mechanism."""

    x509: BaseModel | None  # narrowed by each subclass to its own attestation model
    symmetricKey: BaseModel | None

    @model_validator(mode="after")
    def _one(self) -> _Attestation:
        if (self.x509 is None) == (self.symmetricKey is None):
            raise ValueError("attestation has exactly one of: x509, symmetricKey")
        return self


class GroupAttestation(_Attestation):
    x509: X509GroupAttestation | None = None
    symmetricKey: SymmetricKeyAttestation | None = None


class EnrollmentAttestation(_Attestation):
    x509: X509EnrollmentAttestation | None = None
    symmetricKey: SymmetricKeyAttestation | None = None


class CustomAllocation(Strict):
    webhookUrl: str = Field(pattern=r"^https://", description="the Azure Function (or webhook) that picks the hub")
    apiVersion: str = Field(description="the webhook's request API version, e.g. 2021-10-01")


class ReprovisionPolicy(Strict):
    updateHubAssignment: bool = True
    migrateDeviceData: bool = True


class InitialTwin(Strict):
    tags: dict[str, Any] = Field(default_factory=dict)
    desired: dict[str, Any] = Field(default_factory=dict)


class Allocation(Strict):
    """What DPS does with a device that attests: which hubs, which initial twin, reprovisioning."""

    allocationPolicy: Literal["hashed", "geoLatency", "static", "custom"] | None = Field(
        None,
        description="hashed (evenly weighted), geoLatency, static (one hub) or custom (webhook); "
        "left out: the DPS instance's default",
    )
    customAllocationDefinition: CustomAllocation | None = None
    iotHubs: list[str] | None = Field(None, description="linked hubs devices may be assigned to (host names)")
    reprovisionPolicy: ReprovisionPolicy | None = None
    initialTwin: InitialTwin | None = None
    iotEdge: bool = False
    provisioningStatus: Literal["enabled", "disabled"] = "enabled"

    @field_validator("iotHubs")
    @classmethod
    def _hosts(cls, hubs: list[str] | None) -> list[str] | None:
        for hub in hubs or []:
            if not re.match(HOST_NAME, hub):
                raise ValueError(f"'{hub}' is not an IoT hub host name (e.g. my-hub.azure-devices.net)")
        return hubs

    @model_validator(mode="after")
    def _policy(self) -> Allocation:
        if (self.allocationPolicy == "custom") != (self.customAllocationDefinition is not None):
            raise ValueError("allocationPolicy custom goes with customAllocationDefinition {webhookUrl, apiVersion}")
        if self.allocationPolicy == "static" and len(self.iotHubs or []) != 1:
            raise ValueError("allocationPolicy static assigns every device to one hub: list exactly one in iotHubs")
        return self


class EnrollmentGroupSpec(Allocation):
    """A DPS enrollment group (`az iot dps enrollment-group`): devices sharing a CA or a group key."""

    attestation: GroupAttestation


class EnrollmentSpec(Allocation):
    """A DPS individual enrollment (`az iot dps enrollment`): one device, by registration id."""

    registrationId: str | None = Field(None, description="default: metadata.name; DPS ignores case")
    deviceId: str | None = Field(None, description="the hub device id to create (default: the registration id)")
    attestation: EnrollmentAttestation


# ------------------------------------------------------------------------------------------- expand helpers
def _read_cert(ctx: ExpandContext, ref: Any, *path: Any) -> CertInfo | None:
    return ctx.read_cert(ref, *path)


def _secret(
    ctx: ExpandContext,
    ref: SecretRefModel | None,
    name: str,
    spec: dict[str, Any],
    secrets: dict[str, SecretRef],
    *path: Any,
) -> None:
    """A declared key: its fingerprint goes into the spec (sensitive field), its reference into `secrets`."""
    if ref is None:
        return
    digest, sref = ctx.secret(ref, *path)
    spec[name] = digest
    secrets[name] = sref


def _target_azure(ctx: ExpandContext) -> AzureTargetSpec | None:
    """The `azure` section of the manifest's Target; None for an AWS Target or an unknown one (both reported by
    the target checks)."""
    target = ctx.index.get(("fleetctl.Target", None, ctx.manifest.target or ""))
    return spec_as(target, TargetSpec).azure if target is not None else None


def _target_section(ctx: ExpandContext, section: str, needed_for: str) -> Any:
    azure = _target_azure(ctx)
    if azure is None:
        return None  # reported by the target checks
    value = getattr(azure, section, None)
    if value is None:
        ctx.error(f"target '{ctx.manifest.target}' has no azure.{section} section, which {needed_for} needs")
    return value


def _twin_checks(ctx: ExpandContext, value: dict[str, Any], limit: int, *path: Any) -> None:
    """Twin rules (IoT Hub): keys without '.', '$', spaces or control characters, depth ≤ 10, size limits."""

    def walk(node: Any, where: tuple[Any, ...], depth: int) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, where + (i,), depth)
            return
        if not isinstance(node, dict):
            return
        if depth > TWIN_MAX_DEPTH:
            ctx.error(f"twin objects may nest at most {TWIN_MAX_DEPTH} levels deep", *where)
            return
        for key, child in node.items():
            if not isinstance(key, str) or not key or len(key.encode()) > 1024 or TWIN_KEY_FORBIDDEN.search(key):
                ctx.error(
                    f"twin key '{key}' is not allowed: keys are 1 to 1024 bytes without '.', '$', spaces "
                    "or control characters",
                    *where,
                    key,
                )
            walk(child, where + (key,), depth + 1)

    walk(value, tuple(path), 1)
    size = len(canonical_json(value).encode())
    if size > limit:
        ctx.error(f"{path[-1]} is {size} bytes of JSON; IoT Hub allows {limit}", *path)


def _reserved_tag(ctx: ExpandContext, tags: dict[str, Any], *path: Any) -> None:
    if MARKER_TAG in tags:
        ctx.error(f"tag '{MARKER_TAG}' is fleetctl's ownership marker and cannot be declared", *path, MARKER_TAG)


def _check_cn(ctx: ExpandContext, info: CertInfo | None, expected: str, what: str, *path: Any) -> None:
    if info is not None and info.subject_cn != expected:
        ctx.error(
            f"the certificate's CN '{info.subject_cn}' is not the {what} '{expected}'",
            *path,
            detail=f"Azure identifies an X.509 device by its certificate's CN: make the {what} equal to the "
            "CN, or issue the certificate for that id",
        )


def _ca_pem(ctx: ExpandContext, name: str | None) -> str | None:
    """The PEM of a referenced HubCertificate, read relative to its own manifest; its problems are reported there."""
    ca = ctx.lookup("azure.HubCertificate", name) if name else None
    if ca is None:
        return None
    quiet = ExpandContext(ctx.root, ca, ctx.index, ctx.env, Diagnostics(), resolve_secrets=False)
    info = _read_cert(quiet, spec_as(ca, HubCertificateSpec).certificatePem, "certificatePem")
    return info.pem if info else None


# -------------------------------------------------------------------------------------------- Device
def _expand_device(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, DeviceSpec)
    auth = spec.authentication
    _target_section(ctx, "hub", "a Device")
    if not DEVICE_ID.match(m.name):
        ctx.error(f"'{m.name}' is not a valid IoT Hub device id: {DEVICE_ID_RULE}")
    out: dict[str, Any] = {"status": spec.status, "iotEdge": spec.iotEdge}
    secrets: dict[str, SecretRef] = {}
    info = _read_cert(ctx, auth.certificatePem, "authentication", "certificatePem") if auth.certificatePem else None
    if auth.type == "x509CA":
        out["authentication"] = {"type": "x509CA"}
        _check_cn(ctx, info, m.name, "device id", "authentication", "certificatePem")
        ca_pem = _ca_pem(ctx, auth.caCertificate)
        if info and ca_pem and not issued_by(info.pem, ca_pem):
            ctx.error(
                f"the device certificate is not issued by HubCertificate '{auth.caCertificate}'",
                "authentication",
                "caCertificate",
                detail=f"its issuer is '{info.issuer}'",
            )
    elif auth.type == "selfSigned":
        primary = (auth.primaryThumbprint or (info.sha1 if info else "")).upper()
        if info and auth.primaryThumbprint and auth.primaryThumbprint.upper() not in (info.sha1, info.cert_id.upper()):
            ctx.error(
                "primaryThumbprint is not the thumbprint of certificatePem",
                "authentication",
                "primaryThumbprint",
                detail=f"the certificate's SHA-1 thumbprint is {info.sha1}",
            )
        out["authentication"] = {
            "type": "selfSigned",
            "primaryThumbprint": primary,
            "secondaryThumbprint": (auth.secondaryThumbprint or "").upper() or None,
        }
    else:
        out["authentication"] = {"type": "symmetricKey"}
        for name in KEY_FIELDS:
            _secret(ctx, getattr(auth, name), name, out, secrets, "authentication", name)
    for section in ("tags", "desired"):
        if section in m.spec.model_fields_set:
            value = getattr(spec, section)
            if section == "tags":
                _reserved_tag(ctx, value, "tags")
            _twin_checks(ctx, value, TWIN_LIMITS[section], section)
            out[section] = value
    return simple_desired(ctx, out, secrets=secrets)


# ---------------------------------------------------------------------------------------- HubCertificate
def _expand_hub_certificate(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, HubCertificateSpec)
    hub = _target_section(ctx, "hub", "a HubCertificate")
    azure = _target_azure(ctx)  # None in an AWS Target: the target check reports the kind there
    located = azure is not None and (
        azure.arm is not None or bool(hub and hub.name and hub.resourceGroup and hub.subscriptionId)
    )
    if hub is not None and not located:
        ctx.error(
            f"target '{m.target}' does not say where the hub's ARM resource is, which a HubCertificate needs",
            detail="declare azure.arm {subscriptionId, resourceGroup, hubName} (or hub.name, "
            "hub.resourceGroup and hub.subscriptionId)",
        )
    if not CERTIFICATE_NAME.match(m.name):
        ctx.error(f"'{m.name}' is not a valid hub certificate name: up to 64 letters, digits and - . _")
    info, vinfo = ctx.read_ca_pair(
        spec.certificatePem,
        spec.verificationCertificatePem,
        "make it with the CA's key, outside fleetctl, with CN = the hub's verification code",
    )
    out: dict[str, Any] = {"isVerified": True}
    inputs: dict[str, Any] = {
        "verificationCertificatePem": vinfo.pem if vinfo else None,
        "verificationCode": vinfo.subject_cn if vinfo else None,
    }
    if info:
        out["thumbprint"] = info.sha1
        inputs["certificatePem"] = info.pem
    return simple_desired(ctx, out, inputs=inputs)


# ------------------------------------------------------------------------------------------------ DPS
def _allocation(ctx: ExpandContext, spec: Allocation, fields: set[str]) -> dict[str, Any]:
    """The allocation fields in canonical form: declared ones only, nested defaults filled in."""
    out: dict[str, Any] = {"iotEdge": spec.iotEdge, "provisioningStatus": spec.provisioningStatus}
    if "allocationPolicy" in fields:
        out["allocationPolicy"] = spec.allocationPolicy
    if "customAllocationDefinition" in fields or spec.allocationPolicy == "custom":
        custom = spec.customAllocationDefinition
        out["customAllocationDefinition"] = custom.model_dump(mode="json") if custom else None
    if "iotHubs" in fields:
        out["iotHubs"] = sorted({hub.lower() for hub in spec.iotHubs or []})
    if "reprovisionPolicy" in fields:
        out["reprovisionPolicy"] = (spec.reprovisionPolicy or ReprovisionPolicy()).model_dump(mode="json")
    if "initialTwin" in fields:
        twin = spec.initialTwin or InitialTwin()
        _reserved_tag(ctx, twin.tags, "initialTwin", "tags")
        _twin_checks(ctx, twin.tags, TWIN_LIMITS["tags"], "initialTwin", "tags")
        _twin_checks(ctx, twin.desired, TWIN_LIMITS["desired"], "initialTwin", "desired")
        out["initialTwin"] = {"tags": twin.tags, "desired": twin.desired}
    return out


def _symmetric(
    ctx: ExpandContext, att: SymmetricKeyAttestation, out: dict[str, Any], secrets: dict[str, SecretRef]
) -> None:
    out["attestation"] = {"type": "symmetricKey"}
    for name in KEY_FIELDS:
        _secret(ctx, getattr(att, name), name, out, secrets, "attestation", "symmetricKey", name)


def _certificate_pair(
    ctx: ExpandContext, model: BaseModel, fields: tuple[str, str], check: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """({primary, secondary} SHA-1 thumbprints, {primary, secondary} PEMs) of the pair of certificate fields of an
    `attestation.x509` model; `check(info, field)` validates each certificate read."""
    thumbs: dict[str, Any] = {"primary": None, "secondary": None}
    pems: dict[str, Any] = {"primary": None, "secondary": None}
    for slot, field in zip(("primary", "secondary"), fields, strict=True):
        ref = getattr(model, field)
        info = _read_cert(ctx, ref, "attestation", "x509", field) if ref is not None else None
        if info:
            thumbs[slot], pems[slot] = info.sha1, info.pem
            if check is not None:
                check(info, field)
    return thumbs, pems


def _expand_group(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, EnrollmentGroupSpec)
    _target_section(ctx, "dps", "an EnrollmentGroup")
    if not REGISTRATION_ID.match(m.name):
        ctx.error(f"'{m.name}' is not a valid enrollment group id: {REGISTRATION_RULE}")
    _unique_ignoring_case(ctx, "azure.EnrollmentGroup", m.name, "enrollment group id")
    out = _allocation(ctx, spec, spec.model_fields_set)
    secrets: dict[str, SecretRef] = {}
    inputs: dict[str, Any] = {}
    x509 = spec.attestation.x509
    if spec.attestation.symmetricKey is not None:
        _symmetric(ctx, spec.attestation.symmetricKey, out, secrets)
    elif x509 is not None and x509.caCertificate:
        out["attestation"] = {
            "type": "x509",
            "caReferences": {"primary": x509.caCertificate, "secondary": x509.secondaryCaCertificate},
        }
    elif x509 is not None:

        def must_be_ca(info: CertInfo, field: str) -> None:
            if not info.is_ca:
                ctx.error(
                    "a signing certificate must be a CA certificate (basicConstraints CA:TRUE)",
                    "attestation",
                    "x509",
                    field,
                )

        thumbs, pems = _certificate_pair(
            ctx, x509, ("signingCertificatePem", "secondarySigningCertificatePem"), must_be_ca
        )
        out["attestation"] = {"type": "x509", "signingCertificates": thumbs}
        inputs["certificates"] = pems
    return simple_desired(ctx, out, inputs=inputs, secrets=secrets)


def _expand_enrollment(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, EnrollmentSpec)
    _target_section(ctx, "dps", "an Enrollment")
    registration = spec.registrationId or m.name
    where = ("registrationId",) if spec.registrationId else ()
    if not REGISTRATION_ID.match(registration):
        ctx.error(f"'{registration}' is not a valid DPS registration id: {REGISTRATION_RULE}", *where)
    _unique_ignoring_case(ctx, "azure.Enrollment", registration, "registration id", *where)
    out = _allocation(ctx, spec, spec.model_fields_set)
    out["registrationId"] = registration
    if spec.deviceId is not None:
        if not DEVICE_ID.match(spec.deviceId):
            ctx.error(f"'{spec.deviceId}' is not a valid IoT Hub device id: {DEVICE_ID_RULE}", "deviceId")
        out["deviceId"] = spec.deviceId
    secrets: dict[str, SecretRef] = {}
    inputs: dict[str, Any] = {}
    x509 = spec.attestation.x509
    if spec.attestation.symmetricKey is not None:
        _symmetric(ctx, spec.attestation.symmetricKey, out, secrets)
    elif x509 is not None:
        thumbs, pems = _certificate_pair(
            ctx,
            x509,
            ("certificatePem", "secondaryCertificatePem"),
            lambda info, field: _check_cn(ctx, info, registration, "registration id", "attestation", "x509", field),
        )
        out["attestation"] = {"type": "x509", "clientCertificates": thumbs}
        inputs["certificates"] = pems
    return simple_desired(ctx, out, inputs=inputs, secrets=secrets)


_Index = dict[tuple[str, str | None, str], Manifest]  # ExpandContext.index
_SEEN_IDS: dict[int, tuple[_Index, dict[tuple[str, str | None, str], list[Manifest]]]] = {}


def _ids_of(index: _Index, kind: str) -> dict[tuple[str, str | None, str], list[Manifest]]:
    """(kind, target, lower-cased DPS id) → the manifests using it, in file order; computed once per fleet load."""
    cached = _SEEN_IDS.get(id(index))
    if cached is None or cached[0] is not index:
        table: dict[tuple[str, str | None, str], list[Manifest]] = {}
        for (qualified, target, name), manifest in index.items():
            if qualified in ("azure.Enrollment", "azure.EnrollmentGroup"):
                dps_id = getattr(manifest.spec, "registrationId", None) or name
                table.setdefault((qualified, target, dps_id.lower()), []).append(manifest)
        for manifests in table.values():
            manifests.sort(key=lambda m: (m.doc.file, m.doc.source(("metadata", "name")).line))
        _SEEN_IDS.clear()
        _SEEN_IDS[id(index)] = cached = (index, table)
    return cached[1]


def _unique_ignoring_case(ctx: ExpandContext, kind: str, dps_id: str, what: str, *path: Any) -> None:
    users = _ids_of(ctx.index, kind).get((kind, ctx.manifest.target, dps_id.lower()), [])
    if len(users) > 1 and users[0] is not ctx.manifest:
        first = users[0]
        first_id = getattr(first.spec, "registrationId", None) or first.name
        ctx.error(
            f"{what} '{dps_id}' is already used by {first.decl.kind} '{first.name}' as '{first_id}' "
            f"({first.source()}); DPS ids are unique ignoring case",
            *path,
        )


def azure(kind: str, model: type[BaseModel], rank: int, expand: Any, **kw: Any) -> KindDecl:
    return register(
        KindDecl(
            GROUP,
            kind,
            "azure",
            model,
            rank=rank,
            expand=expand,
            refine=REFINE.get(kind),
            calls=CALLS[kind],
            description=(model.__doc__ or "").strip().splitlines()[0],
            **kw,
        )
    )


HUB_LISTS = (ListKey("iotHubs"),)  # the linked hubs an enrollment may assign to: a set (sorted on both sides)

azure("HubCertificate", HubCertificateSpec, 10, _expand_hub_certificate)
azure(
    "EnrollmentGroup",
    EnrollmentGroupSpec,
    20,
    _expand_group,
    sensitive=KEY_FIELDS,
    lists=HUB_LISTS,
    references=(
        Ref("attestation.x509.caCertificate", "azure.HubCertificate"),
        Ref("attestation.x509.secondaryCaCertificate", "azure.HubCertificate"),
    ),
)
azure(
    "Enrollment",
    EnrollmentSpec,
    30,
    _expand_enrollment,
    sensitive=KEY_FIELDS,
    immutable=("registrationId",),
    lists=HUB_LISTS,
)
azure(
    "Device",
    DeviceSpec,
    40,
    _expand_device,
    sensitive=KEY_FIELDS,
    partial_maps=("tags", "desired"),
    references=(Ref("authentication.caCertificate", "azure.HubCertificate"),),
)
