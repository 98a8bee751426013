"""ARM certificate APIs of an IoT hub (azure-mgmt-iothub 4.0.0, api-version 2023-06-30) and, in the same shape,
of a DPS instance (`Microsoft.Devices/provisioningServices/{dps}/certificates`).

fleetctl uploads CA certificates and proves possession of their keys. The emulator checks that proof for real: a
verification certificate passes only if its CN is the current verification code and it is directly signed by the
uploaded CA. Dates are RFC-1123 (the SDK rejects ISO-8601 there), etags change on every write and If-Match is
enforced (412). ARM front-door failures (no bearer token, unknown resource) use `{"error": {code, message}}`;
the resource provider's own failures use its ErrorDetails shape `{code, httpStatusCode, message}`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from cryptography import x509

from . import certs
from .common import Counter, Request, Response, Router, ServiceError, b64_counter_etag, check_if_match, rfc1123, utc_now

CERTIFICATE_NAME = re.compile(r"^[A-Za-z0-9\-._]{1,64}$")
FRONT_DOOR_CODES = {
    "AuthenticationFailed",
    "InvalidAuthenticationToken",
    "ResourceNotFound",
    "MissingApiVersionParameter",
    "TooManyRequests",
}
PROVIDER = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Devices"


@dataclass(frozen=True)
class ArmResource:
    """One ARM parent that owns certificates: an IoT hub or a DPS instance."""

    kind: str  # the path segment: IotHubs or provisioningServices
    name: str
    created_status: int  # IoT Hub answers 201 to a create; the DPS API documents 200 only


@dataclass
class Certificate:
    name: str
    content: str
    cert: x509.Certificate
    etag: str
    is_verified: bool
    created: str
    updated: str
    verification_code: str | None = None


def sandbox_verification_code(subscription_id: str, resource_name: str) -> str:
    """The code a sandbox started for the demo hands out on every generateVerificationCode (Azure's are random per
    request): stable per subscription and hub, so the example fleet can commit a verification certificate made from
    it with the example CA's key (discarded since). Shaped like Azure's codes: 48 upper-case hex digits."""
    return hashlib.sha256(f"fleetctl-sandbox:{subscription_id}:{resource_name}".encode()).hexdigest()[:48].upper()


def _not_found(kind: str, name: str) -> ServiceError:
    return ServiceError(404, "ResourceNotFound", f"The Resource 'Microsoft.Devices/{kind}/{name}' was not found.")


class ArmService:
    """Certificate stores keyed by (resource kind, name); callers hold the emulator lock around handlers."""

    def __init__(
        self,
        *,
        counter: Counter,
        subscription_id: str,
        resource_group: str,
        resources: list[ArmResource],
        fixed_codes: bool = False,
    ) -> None:
        self.counter = counter
        self.fixed_codes = fixed_codes  # demo mode: sandbox_verification_code() instead of a random code
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.resources = {(resource.kind.lower(), resource.name.lower()): resource for resource in resources}
        self.stores: dict[tuple[str, str], dict[str, Certificate]] = {key: {} for key in self.resources}
        self.router = Router()
        base = PROVIDER + "/{kind}/{resource}/certificates"
        for method, suffix, handler in (
            ("GET", "", self.list),
            ("GET", "/{name}", self.get),
            ("PUT", "/{name}", self.put),
            ("DELETE", "/{name}", self.delete),
            ("POST", "/{name}/generateVerificationCode", self.generate_code),
            ("POST", "/{name}/verify", self.verify),
        ):
            self.router.add(method, base + suffix, "arm", handler)

    def reset(self) -> None:
        for store in self.stores.values():
            store.clear()

    # ----------------------------------------------------------------- helpers
    def _store(
        self, subscription: str, group: str, kind: str, resource: str
    ) -> tuple[ArmResource, dict[str, Certificate]]:
        if subscription.lower() != self.subscription_id.lower():
            raise ServiceError(404, "ResourceNotFound", f"The subscription '{subscription}' could not be found.")
        if group.lower() != self.resource_group.lower():
            raise ServiceError(404, "ResourceNotFound", f"Resource group '{group}' could not be found.")
        key = (kind.lower(), resource.lower())
        if key not in self.resources:
            raise _not_found(kind, resource)
        return self.resources[key], self.stores[key]

    def _description(self, owner: ArmResource, certificate: Certificate, *, with_code: bool = False) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "subject": certs.subject(certificate.cert),
            "expiry": rfc1123(certificate.cert.not_valid_after_utc),
            "thumbprint": certs.thumbprint(certificate.cert),
            "isVerified": certificate.is_verified,
            "created": certificate.created,
            "updated": certificate.updated,
            "certificate": certificate.content,
        }
        if with_code:
            properties["verificationCode"] = certificate.verification_code
        return {
            "properties": properties,
            "id": (
                f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Devices/{owner.kind}/{owner.name}/certificates/{certificate.name}"
            ),
            "name": certificate.name,
            "type": f"Microsoft.Devices/{owner.kind}/Certificates",
            "etag": certificate.etag,
        }

    def _existing(self, store: dict[str, Certificate], name: str, request: Request) -> Certificate:
        certificate = store.get(name)
        missing = ServiceError(404, "CertificateNotFound", f"Certificate '{name}' not found.")
        if certificate is None:
            raise missing
        check_if_match(certificate.etag, request.header("if-match"), missing=missing)
        return certificate

    def _touch(self, certificate: Certificate) -> None:
        certificate.etag = b64_counter_etag(self.counter.next())
        certificate.updated = rfc1123(utc_now())

    # ---------------------------------------------------------------- handlers
    def list(self, request: Request, subscription: str, group: str, kind: str, resource: str) -> Response:
        owner, store = self._store(subscription, group, kind, resource)
        return Response(200, {"value": [self._description(owner, store[name]) for name in sorted(store)]})

    def get(self, request: Request, subscription: str, group: str, kind: str, resource: str, name: str) -> Response:
        owner, store = self._store(subscription, group, kind, resource)
        if name not in store:
            raise ServiceError(404, "CertificateNotFound", f"Certificate '{name}' not found.")
        return Response(200, self._description(owner, store[name]))

    def put(self, request: Request, subscription: str, group: str, kind: str, resource: str, name: str) -> Response:
        owner, store = self._store(subscription, group, kind, resource)
        if not CERTIFICATE_NAME.match(name):
            raise ServiceError(400, "InvalidCertificateName", f"'{name}' must match ^[A-Za-z0-9-._]{{1,64}}$")
        properties = request.json_object().get("properties") or {}
        content = properties.get("certificate")
        if not isinstance(content, str) or not content.strip():
            raise ServiceError(400, "InvalidCertificate", "properties.certificate is required")
        parsed = certs.load_certificate(content)
        existing = store.get(name)
        if existing is not None and not request.header("if-match"):
            raise ServiceError(
                412,
                "PreconditionFailed",
                f"Certificate '{name}' exists; If-Match with its etag is required to update it.",
            )
        if existing is not None:
            self._existing(store, name, request)
        same = existing is not None and certs.thumbprint(existing.cert) == certs.thumbprint(parsed)
        verified = properties.get("isVerified")
        now = rfc1123(utc_now())
        store[name] = Certificate(
            name=name,
            content=content,
            cert=parsed,
            etag=b64_counter_etag(self.counter.next()),
            is_verified=bool(verified) if verified is not None else bool(same and existing and existing.is_verified),
            created=existing.created if existing else now,
            updated=now,
            verification_code=existing.verification_code if same and existing else None,
        )
        return Response(200 if existing else owner.created_status, self._description(owner, store[name]))

    def delete(self, request: Request, subscription: str, group: str, kind: str, resource: str, name: str) -> Response:
        _, store = self._store(subscription, group, kind, resource)
        self._existing(store, name, request)
        del store[name]
        return Response(200)

    def generate_code(
        self, request: Request, subscription: str, group: str, kind: str, resource: str, name: str
    ) -> Response:
        owner, store = self._store(subscription, group, kind, resource)
        certificate = self._existing(store, name, request)
        certificate.verification_code = (
            sandbox_verification_code(self.subscription_id, owner.name)
            if self.fixed_codes
            else os.urandom(24).hex().upper()
        )
        self._touch(certificate)
        return Response(200, self._description(owner, certificate, with_code=True))

    def verify(self, request: Request, subscription: str, group: str, kind: str, resource: str, name: str) -> Response:
        owner, store = self._store(subscription, group, kind, resource)
        certificate = self._existing(store, name, request)
        if not certificate.verification_code:
            raise ServiceError(
                400,
                "VerificationCodeNotGenerated",
                f"Generate a verification code for certificate '{name}' before verifying it.",
            )
        leaf = certs.load_certificate(str(request.json_object().get("certificate") or ""))
        if certs.common_name(leaf) != certificate.verification_code:
            raise ServiceError(
                400,
                "CertificateVerificationCodeMismatch",
                "Proof-Of-Possession failed. The verification certificate's common name "
                f"'{certs.common_name(leaf)}' is not the current verification code.",
            )
        if not certs.directly_issued_by(leaf, certificate.cert):
            raise ServiceError(
                400,
                "IH400053",
                f"Proof-Of-Possession failed. Issuer certificate '{certs.subject(certificate.cert)}' "
                "cannot be found in the certificate chain.",
            )
        certificate.is_verified = True
        certificate.verification_code = None
        self._touch(certificate)
        return Response(200, self._description(owner, certificate))


def arm_error(error: ServiceError) -> Response:
    """ARM front-door errors nest under `error`; the IoT resource provider answers with its ErrorDetails."""
    if error.code in FRONT_DOOR_CODES:
        body: dict[str, Any] = {"error": {"code": error.code, "message": error.message}}
    else:
        body = {
            "code": error.code,
            "httpStatusCode": HTTPStatus(error.status).phrase.replace(" ", ""),
            "message": error.message,
            "details": None,
        }
    headers = {"x-ms-failure-cause": "gateway" if error.code in FRONT_DOOR_CODES else "service"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.status, body, headers)
