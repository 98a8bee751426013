"""engine/providers/device/pem.py: certificates in slots are parsed by cryptography, private keys only framed
(never parsed, never quoted); digests are of the bytes a device stores; any content gets an answer, not a crash."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.providers.device.pem import content_problem, der_bodies, describe_content, slot_digests
from engine.providers.device.regmap import SlotKind
from engine.sandbox.certs import issue, make_ca

from .helpers import AMAZON_ROOT, CLIENT_CERT, FAKE_KEY

CA = make_ca("device pem CA")
LEAF = issue("device-pem-leaf", CA)
KEY_PEM = LEAF.key_pem().encode()
KEY_BODY = KEY_PEM.splitlines()[1]
CERT = SlotKind.PEM_CERT
KEY = SlotKind.KEY


def _der(issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


def test_a_certificate_slot_takes_a_certificate_and_its_der_is_cryptographys():
    assert content_problem(CERT, AMAZON_ROOT) is None
    assert der_bodies(LEAF.pem.encode()) == [("CERTIFICATE", _der(LEAF))]
    assert hashlib.md5(_der(LEAF)).hexdigest().upper() in slot_digests(LEAF.pem.encode())


def test_a_chain_gives_every_certificate_and_the_digest_of_the_first():
    chain = (LEAF.pem + CA.pem).encode()
    assert der_bodies(chain) == [("CERTIFICATE", _der(LEAF)), ("CERTIFICATE", _der(CA))]
    assert content_problem(CERT, chain) is None
    assert slot_digests(chain) == {hashlib.md5(chain).hexdigest().upper(), hashlib.md5(_der(LEAF)).hexdigest().upper()}


def test_text_around_the_block_is_ignored_but_hashed_as_sent():
    content = b"# Amazon Root CA 1\n" + AMAZON_ROOT + b"\ntrailing notes\n"
    assert content_problem(CERT, content) is None
    assert slot_digests(content) == {
        hashlib.md5(content).hexdigest().upper(),
        hashlib.md5(der_bodies(AMAZON_ROOT)[0][1]).hexdigest().upper(),
    }


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (CLIENT_CERT[: len(CLIENT_CERT) // 2], "the PEM framing is broken"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "the body decodes but is not a DER X.509 certificate",
        ),  # base64, but no certificate: refused now
        (
            CLIENT_CERT.replace(b"M", b"!", 1),
            "the body is not valid base64 (a character that is not base64 at offset 0",
        ),
    ],
)
def test_a_broken_certificate_is_refused_with_cryptographys_reason(content, why):
    problem = content_problem(CERT, content)
    assert problem is not None and problem.startswith(
        "expects a PEM certificate (-----BEGIN CERTIFICATE-----), got content of "
    )
    assert (
        "with a malformed PEM block: cannot parse the PEM certificate: the certificate block (line 1 of the "
        "text): " + why in problem
    )
    assert der_bodies(content) == []


def test_a_private_key_block_is_framed_not_parsed():
    # the test placeholder is no key cryptography would load; a device artifact still needs its bytes
    assert der_bodies(FAKE_KEY) == [("PRIVATE KEY", b"fleetctl test fixture; not a key")]
    assert content_problem(KEY, FAKE_KEY) is None
    # a real key: the DER is the body as written (the bytes the device stores), not a re-serialisation
    assert der_bodies(KEY_PEM) == [("PRIVATE KEY", base64.b64decode(b"".join(KEY_PEM.splitlines()[1:-1])))]
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n"
    assert content_problem(KEY, encrypted) is None and der_bodies(encrypted) == [("ENCRYPTED PRIVATE KEY", b"\0\1\2")]


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        (CERT, KEY_PEM, "expects a PEM certificate (-----BEGIN CERTIFICATE-----), got a PEM PRIVATE KEY"),
        (KEY, LEAF.pem.encode(), "expects a PEM private key (-----BEGIN ... PRIVATE KEY-----), got a PEM CERTIFICATE"),
        (
            KEY,
            b"-----BEGIN PRIVATE KEY-----\n" + KEY_BODY + b"\n",
            "got content of 93 bytes with a malformed PEM block",
        ),
        (CERT, b"hello", "got content of 5 bytes that is not PEM"),
        (CERT, b"", "got empty content"),
        (CERT, b"\xff\xfe\x00", "got binary content of 3 bytes, not PEM"),
        (CERT, b"a1b2c3-ats.iot.eu-west-2.amazonaws.com", "that is a host name"),
    ],
    ids=["key-in-cert-slot", "cert-in-key-slot", "key-cut-short", "text", "empty", "binary", "host-name"],
)
def test_wrong_content_is_described_never_quoted(kind, content, expected):
    problem = content_problem(kind, content)
    assert problem is not None and expected in problem
    assert KEY_BODY.decode() not in problem


def test_describe_content_pre_check():
    assert describe_content(b"-----BEGIN nothing") == "content of 18 bytes with a malformed PEM block"


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from(
                [
                    b"-----BEGIN CERTIFICATE-----\n",
                    b"-----END CERTIFICATE-----\n",
                    b"-----BEGIN PRIVATE KEY-----\n",
                    b"-----END PRIVATE KEY-----\n",
                    b"MIIB",
                    b"==",
                    b"\r\n",
                    AMAZON_ROOT,
                    AMAZON_ROOT[:300],
                    FAKE_KEY,
                ]
            ),
        ),
        max_size=10,
    ).map(b"".join),
    st.sampled_from([CERT, KEY]),
)
def test_any_content_gets_an_answer(content, kind):
    bodies = der_bodies(content)
    assert all(isinstance(label, str) and isinstance(der, bytes) for label, der in bodies)
    assert hashlib.md5(content).hexdigest().upper() in slot_digests(content)
    problem = content_problem(kind, content)
    assert problem is None or problem.startswith("expects a PEM ")
