"""X.509 work the emulators do: their own TLS identity, and reading certificates clients upload.

The real SDKs must verify the emulator's TLS certificate like any Azure endpoint, so the emulator mints a CA and a
server certificate (SAN 127.0.0.1 and localhost) at start and exports the CA as a bundle. Uploaded certificates
(DPS signing certificates, ARM hub CA certificates) are parsed here into what the services report about them:
subject, thumbprints and validity. Proof of possession is checked for real with `verify_directly_issued_by`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .common import ServiceError, iso


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path  # the emulator's CA alone (for connection_verify)
    bundle_pem: Path  # that CA plus the usual public roots: safe to export as REQUESTS_CA_BUNDLE
    cert_pem: Path
    key_pem: Path


def _public_roots() -> bytes:
    """The roots requests would trust by default, so a global REQUESTS_CA_BUNDLE does not break other hosts."""
    try:
        import certifi
    except ImportError:  # requests depends on certifi; without it the bundle is the emulator CA alone
        return b""
    return Path(certifi.where()).read_bytes()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def write_tls_files(directory: Path) -> TlsFiles:
    """Mint a throw-away CA and a server certificate for 127.0.0.1/localhost; the key is written 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder("fleetctl sandbox CA", "fleetctl sandbox CA", ca_key.public_key(), 30)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    server_cert = (
        _builder("127.0.0.1", "fleetctl sandbox CA", server_key.public_key(), 30)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        directory / "ca.pem", directory / "ca-bundle.pem", directory / "server.pem", directory / "server-key.pem"
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files.ca_pem.write_bytes(ca_pem)
    files.bundle_pem.write_bytes(ca_pem + b"\n" + _public_roots())
    files.cert_pem.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(files.key_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    return files


def _first_pem(data: bytes) -> x509.Certificate | None:
    """The first certificate of a PEM text (cryptography finds the blocks wherever they sit), None if it has none."""
    try:
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError:
        return None


def load_certificate(text: str, *, code: str = "InvalidCertificate") -> x509.Certificate:
    """Accept PEM, base64 DER or base64 PEM (what the services and SDKs send); 400 otherwise.

    cryptography decides which one it is: the PEM loader first (a text holding a CERTIFICATE block), then strict
    base64, whose bytes are tried as PEM (the DPS ARM SDK sends base64 of a PEM) and then as DER.
    """
    data = (text or "").strip().encode()
    try:
        pem = _first_pem(data)
        if pem is not None:
            return pem
        decoded = base64.b64decode(data, validate=True)
        return _first_pem(decoded) or x509.load_der_x509_certificate(decoded)
    except (ValueError, binascii.Error) as exc:
        raise ServiceError(400, code, "the certificate cannot be parsed as PEM or base64 DER") from exc


def thumbprint(cert: x509.Certificate, algorithm: str = "sha1") -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.new(algorithm, der).hexdigest().upper()


def subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def common_name(cert: x509.Certificate) -> str | None:
    attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else None


def dps_info(cert: x509.Certificate) -> dict[str, object]:
    """The `info` block DPS returns in place of an uploaded certificate."""
    return {
        "subjectName": subject(cert),
        "sha1Thumbprint": thumbprint(cert, "sha1"),
        "sha256Thumbprint": thumbprint(cert, "sha256"),
        "issuerName": cert.issuer.rfc4514_string(),
        "notBeforeUtc": iso(cert.not_valid_before_utc),
        "notAfterUtc": iso(cert.not_valid_after_utc),
        "serialNumber": format(cert.serial_number, "X"),
        "version": cert.version.value + 1,
    }


def directly_issued_by(leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
