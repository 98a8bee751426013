"""Uploaded certificates as the emulators read them (engine/sandbox/azure/certs.py): every encoding the services and
SDKs send is accepted and parsed by cryptography, anything else is the service's 400."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from engine.sandbox.azure.certs import load_certificate
from engine.sandbox.azure.common import ServiceError
from engine.sandbox.certs import issue, make_ca


@pytest.fixture(scope="module")
def chain() -> tuple[str, str]:
    ca = make_ca("certs test CA")
    return issue("leaf", ca).pem, ca.pem


def test_every_accepted_encoding_gives_the_same_certificate(chain: tuple[str, str]) -> None:
    leaf_pem, ca_pem = chain
    expected = load_certificate(leaf_pem)
    der = expected.public_bytes(serialization.Encoding.DER)
    inputs = {
        "PEM": leaf_pem,
        "PEM with surrounding whitespace": f"\n  {leaf_pem}\n\n",
        "PEM chain (the first certificate)": leaf_pem + ca_pem,
        "base64 DER": base64.b64encode(der).decode(),
        "base64 PEM (the DPS ARM SDK)": base64.b64encode(leaf_pem.encode()).decode(),
        "base64 of a PEM with a leading newline": base64.b64encode(b"\n" + leaf_pem.encode()).decode(),
    }
    for name, text in inputs.items():
        assert load_certificate(text) == expected, name
    assert load_certificate(ca_pem) != expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not a certificate",
        base64.b64encode(b"not DER either").decode(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").decode(),
    ],
)
def test_anything_else_is_the_services_400(text: str) -> None:
    with pytest.raises(ServiceError) as caught:
        load_certificate(text, code="BadRequest")
    assert (caught.value.status, caught.value.code) == (400, "BadRequest")
    assert caught.value.message == "the certificate cannot be parsed as PEM or base64 DER"


def test_base64_with_line_breaks_is_not_base64_der(chain: tuple[str, str]) -> None:
    """Strict base64, as the emulator has always read it: a wrapped base64 DER is refused."""
    der = load_certificate(chain[0]).public_bytes(serialization.Encoding.DER)
    wrapped = base64.encodebytes(der).decode()
    with pytest.raises(ServiceError):
        load_certificate(wrapped)
