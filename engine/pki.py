"""Public-key material fleetctl reads: certificates only (never private keys).

Certificate ids are what AWS IoT uses, sha256 of the DER encoding, so fleetctl knows a certificate's id
from its PEM before registering it: re-running an interrupted apply finds the same certificate instead of
leaking a new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID


class PemError(ValueError):
    pass


@dataclass(frozen=True)
class CertInfo:
    pem: str
    cert_id: str  # sha256(DER), AWS IoT's certificateId
    sha1: str  # Azure's thumbprint (uppercase hex)
    subject_cn: str | None
    issuer_cn: str | None
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool


def load_cert(pem: str) -> x509.Certificate:
    if "PRIVATE KEY" in pem:
        raise PemError("this file holds a private key; fleetctl reads only certificates (public material)")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise PemError("not a PEM certificate (no '-----BEGIN CERTIFICATE-----' block)")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise PemError(f"cannot parse the PEM certificate: {exc}") from exc


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def cert_info(pem: str) -> CertInfo:
    cert = load_cert(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        pem=pem,
        cert_id=hashlib.sha256(der).hexdigest(),
        sha1=hashlib.sha1(der).hexdigest().upper(),
        subject_cn=_cn(cert.subject),
        issuer_cn=_cn(cert.issuer),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
    )


def issued_by(pem: str, ca_pem: str) -> bool:
    """True when `pem` is directly signed by the CA in `ca_pem`."""
    try:
        load_cert(pem).verify_directly_issued_by(load_cert(ca_pem))
        return True
    except (ValueError, TypeError, PemError):
        return False
    except Exception:  # cryptography raises InvalidSignature (not a ValueError)
        return False
