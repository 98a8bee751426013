"""PEM handling for certificate and key slots.

Why: slots are compared by digest, and devices disagree on what they hash: u-blox +USECMNG reports an MD5
that may cover the PEM as sent or the DER stored (R8). This module is the one place that normalises PEM
text, extracts the DER body and computes both digests, and that says whether content is a certificate or a
private key at all (the ST SPWF01 thread loaded a host name into f_ca).

Certificates are parsed by `cryptography` (engine/pki.py): a CERTIFICATE block counts only when it is a real
X.509 certificate, and its DER is cryptography's. The block framing (label, base64 body) stays written here,
because a slot holds private keys too and cryptography has no API that frames PEM without loading the object:
- `serialization.load_pem_private_key` would have to decode the key itself, which fleetctl never needs (it only
  passes key bytes through to the device), cannot do without the password for an ENCRYPTED PRIVATE KEY, and
  refuses the placeholder keys of tests and dry runs;
- re-serialising a loaded key (`private_bytes`) need not give back the bytes the device stores (PKCS#1 against
  PKCS#8, optional EC parameters), and the DER digest must be of exactly those bytes (R8).
The `pem` package frames PEM too, with a regular expression like the one below: not worth a dependency for it.
Errors describe content and never quote it (a slot may hold a private key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from engine.model import secret_fingerprint
from engine.pki import PemError, certificate_ders, looks_like_certificate, looks_like_pem

from .regmap import SlotKind

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)
_EXPECTED_LABELS: dict[SlotKind, tuple[str, ...]] = {
    SlotKind.PEM_CERT: ("CERTIFICATE",),
    SlotKind.KEY: ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
}
_HOSTNAME = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?")


def normalise_pem(content: bytes) -> bytes:
    """CRLF → LF, trailing blanks stripped, one final newline. Used for the slot fingerprint (sha256)."""
    lines = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"\n".join(line.rstrip() for line in lines).strip(b"\n") + b"\n"


def der_bodies(content: bytes) -> list[tuple[str, bytes]]:
    """Every PEM block as (label, DER bytes), in order. A CERTIFICATE block is parsed by cryptography and kept
    only when it is a certificate; any other block (a private key) is framed only, kept when its body is base64."""
    out = []
    for match in _BLOCK.finditer(content):
        label = match.group(1).decode("ascii")
        if label == "CERTIFICATE":
            try:
                ders = certificate_ders(match.group(0))
            except PemError:
                continue
            if len(ders) != 1:  # one BEGIN...END block holds one certificate; anything else is no certificate
                continue
            der = ders[0]
        else:
            try:
                der = base64.b64decode(re.sub(rb"\s+", b"", match.group(2)), validate=True)
            except (binascii.Error, ValueError):
                continue
        out.append((label, der))
    return out


def slot_fingerprint(content: bytes, sensitive: bool = False) -> str:
    """The fingerprint of the normalised PEM (R7/R8 recorded fingerprint): ``sha256:<hex>`` for a certificate,
    keyed (engine/fingerprint.py) for a private key."""
    if sensitive:
        return secret_fingerprint(normalise_pem(content))
    return "sha256:" + hashlib.sha256(normalise_pem(content)).hexdigest()


def slot_digests(content: bytes) -> frozenset[str]:
    """Uppercase MD5s a device may report for this content: of the bytes as sent, and of the first DER body."""
    digests = {hashlib.md5(content, usedforsecurity=False).hexdigest().upper()}
    bodies = der_bodies(content)
    if bodies:
        digests.add(hashlib.md5(bodies[0][1], usedforsecurity=False).hexdigest().upper())
    return frozenset(digests)


def describe_content(content: bytes) -> str:
    """What a file or value is, without any of its bytes: `a file of 37 bytes that is not PEM` (an empty one,
    binary data, a PEM block of another type are told apart)."""
    if not content.strip():
        return "empty content"
    size = f"{len(content)} byte" + ("s" if len(content) != 1 else "")
    if looks_like_pem(content):
        return f"content of {size} with a malformed PEM block"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary content of {size}, not PEM"
    return f"content of {size} that is not PEM"


def content_problem(kind: SlotKind, content: bytes, domain_register: str | None = None) -> str | None:
    """Why `content` cannot go into a slot of `kind`, or None. Names a host name loaded as a certificate."""
    labels = {label for label, _ in der_bodies(content)}
    expected = _EXPECTED_LABELS[kind]
    if labels & set(expected):
        return None
    what = (
        "a PEM certificate (-----BEGIN CERTIFICATE-----)"
        if kind is SlotKind.PEM_CERT
        else "a PEM private key (-----BEGIN ... PRIVATE KEY-----)"
    )
    text = content.decode("utf-8", errors="replace").strip()
    # what was found is described, never quoted: the content may be a private key or a secret (issue 13.1)
    message = f"expects {what}, got {describe_content(content)}"
    if labels:
        message = f"expects {what}, got a PEM {', '.join(sorted(labels))}"
    elif kind is SlotKind.PEM_CERT and looks_like_certificate(content):
        try:
            certificate_ders(content)
        except PemError as exc:  # why cryptography refused it, located; the message quotes nothing
            message += f": {exc}"
    elif _HOSTNAME.fullmatch(text):
        where = f" ('{domain_register}')" if domain_register else ""
        message += (
            f": that is a host name; the TLS server name belongs in the domain setting{where}, "
            "not in a certificate slot"
        )
    return message
