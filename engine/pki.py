"""Public-key material fleetctl reads: certificates only (never private keys).

Certificate ids are what AWS IoT uses, sha256 of the DER encoding, so fleetctl knows a certificate's id
from its PEM before registering it: re-running an interrupted apply finds the same certificate instead of
leaking a new one.

`cryptography` parses: `x509.load_pem_x509_certificates` finds every CERTIFICATE block wherever it sits in
the text (text before, between and after the blocks is ignored, as OpenSSL does), decodes the base64 and
parses the DER. What this module adds on top is small and says why:
- `holds_private_key` refuses private keys by a deliberately broad substring check ("PRIVATE KEY" anywhere in
  the text), before any parse: the whole text is what fleetctl keeps and sends to AWS IoT or Azure, so a text
  that so much as mentions a private key is refused rather than parsed (a parser would skip the key block and
  accept the certificate beside it);
- `looks_like_pem` / `looks_like_certificate` are cheap substring pre-checks, not parses, for callers that must
  decide whether a string is *meant* as PEM before anything reads it: the manifest's `Pem` type (whose
  published JSON Schema has the same pattern, so model and schema agree; the real parse comes at expand time
  with a located error) and lint's walk over every string of a spec;
- `PemError` messages that say what was expected and where (the line of the failing block in the text),
  translated from cryptography's, which name an FAQ address and Rust enum values. They never quote the text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

PEM_MARKER = "-----BEGIN"  # what any PEM text holds (the pre-check and the schema pattern)
CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
CERT_END = "-----END CERTIFICATE-----"
# a BEGIN line's label, only to *name* what was found in an error (labels are not secret; keys are refused first)
_LABEL = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----")
_MISMATCHED = re.compile(r'MismatchedTags\("([^"]{0,64})", "([^"]{0,64})"\)')
_BAD_SYMBOL = re.compile(r"InvalidData\(Invalid (?:last )?symbol \d+, offset (\d+)")
_BAD_LENGTH = re.compile(r"InvalidData\(Invalid input length: (\d+)")


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


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def looks_like_pem(data: str | bytes) -> bool:
    """A cheap pre-check (substring, not a parse): does the text hold a `-----BEGIN` line at all?"""
    return PEM_MARKER in _text(data)


def looks_like_certificate(data: str | bytes) -> bool:
    """A cheap pre-check (substring, not a parse): does the text hold a `-----BEGIN CERTIFICATE-----` line?"""
    return CERT_BEGIN in _text(data)


def holds_private_key(data: str | bytes) -> bool:
    """Deliberately broad: any mention of a private key refuses the text (see the module docstring)."""
    return "PRIVATE KEY" in _text(data)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _blocks(text: str) -> list[tuple[int, str]]:
    """Each certificate block's line and text (BEGIN to the next END, or to the end of a truncated text), to
    locate an error only: the parse itself is cryptography's."""
    out: list[tuple[int, str]] = []
    start = text.find(CERT_BEGIN)
    while start >= 0:
        end = text.find(CERT_END, start)
        stop = len(text) if end < 0 else end + len(CERT_END)
        out.append((_line(text, start), text[start:stop]))
        start = text.find(CERT_BEGIN, stop)
    return out


_BROKEN_FRAMING = (
    f"the PEM framing is broken: expected each '{CERT_BEGIN}' line to be followed by base64 lines "
    f"and its '{CERT_END}' line (a truncated or hand-edited file?)"
)


def _reason(exc: ValueError) -> str:
    """cryptography's error in words: what is wrong, what was expected."""
    message = str(exc)
    if "MalformedFraming" in message:
        return _BROKEN_FRAMING
    if mismatched := _MISMATCHED.search(message):
        return (
            f"a '-----BEGIN {mismatched.group(1)}-----' block ends with '-----END {mismatched.group(2)}-----'; "
            "expected the same label on both lines"
        )
    if "InvalidData" in message:  # described, never quoted: the offending character is not repeated
        if symbol := _BAD_SYMBOL.search(message):
            what = f"a character that is not base64 at offset {symbol.group(1)} of the body"
        elif length := _BAD_LENGTH.search(message):
            what = f"{length.group(1)} base64 characters, not a whole number of 4-character groups"
        else:
            what = "wrong padding" if "padding" in message.lower() else "an undecodable body"
        return f"the body is not valid base64 ({what}; a truncated or corrupted body?)"
    if "asn1" in message.lower() or "parse" in message.lower():
        return "the body decodes but is not a DER X.509 certificate (a truncated or corrupted body?)"
    return f"cryptography cannot read it: {message}"


def _explain(text: str, whole: str) -> str:
    """The message for a text cryptography refused (`whole`: the reason for the text as a whole), located at the
    first certificate block that does not parse on its own."""
    blocks = _blocks(text)
    for index, (line, block) in enumerate(blocks, 1):
        try:
            x509.load_pem_x509_certificate(block.encode("utf-8"))
        except ValueError as block_exc:
            which = f"certificate block {index} of {len(blocks)}" if len(blocks) > 1 else "the certificate block"
            return f"cannot parse the PEM certificate: {which} (line {line} of the text): {_reason(block_exc)}"
    return f"cannot parse the PEM certificates: {whole}"


def load_certs(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM text (a chain or a bundle), in order; PemError (what was expected) otherwise.
    A text holding a private key is refused before it is parsed."""
    text = _text(pem)
    if holds_private_key(text):
        raise PemError("this file holds a private key; fleetctl reads only certificates (public material)")
    if CERT_BEGIN not in text:
        found = _LABEL.search(text)
        what = (
            f"a PEM block labelled '{found.group(1)}'"
            if found
            else "a malformed PEM block"
            if PEM_MARKER in text
            else "no PEM block"
        )
        raise PemError(f"not a PEM certificate: expected a '{CERT_BEGIN}' block, found {what}")
    try:
        data = pem if isinstance(pem, bytes) else pem.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no file or YAML text holds one, a str may
        raise PemError(
            f"not a PEM certificate: the text holds a character that is not Unicode text (at offset {exc.start})"
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PemError(_explain(text, _reason(exc))) from exc
    if len(certs) < text.count(CERT_BEGIN):
        # cryptography skips a BEGIN line with no END line after the last good block (as text around blocks):
        # a chain cut short is a truncated file, not a shorter chain
        raise PemError(_explain(text, _BROKEN_FRAMING))
    return certs


def load_cert(pem: str | bytes) -> x509.Certificate:
    """The first certificate of a PEM text (AWS IoT and Azure take the leaf first); PemError otherwise."""
    return load_certs(pem)[0]


def certificate_ders(pem: str | bytes) -> list[bytes]:
    """The DER encoding of every certificate of a PEM text (the bytes a device stores); PemError otherwise."""
    return [cert.public_bytes(serialization.Encoding.DER) for cert in load_certs(pem)]


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
    # what verify_directly_issued_by raises: ValueError (issuer name differs), TypeError (a key type it cannot
    # verify with), InvalidSignature; UnsupportedAlgorithm for a signature algorithm this build lacks
    except (PemError, ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
