"""engine/pki.py: certificates parsed by cryptography; the edge cases of real PEM files, and the promise that a
text of any shape fails with PemError (located, saying what was expected) and never with anything else."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine import pki
from engine.sandbox.certs import issue, make_ca

CA = make_ca("pki test CA")
LEAF = issue("pki-leaf", CA)
OTHER = make_ca("another CA")


def _der(pem: str) -> bytes:
    return pki.load_cert(pem).public_bytes(serialization.Encoding.DER)


def test_one_certificate_gives_aws_id_and_azure_thumbprint():
    info = pki.cert_info(LEAF.pem)
    der = LEAF.cert.public_bytes(serialization.Encoding.DER)
    assert info.cert_id == hashlib.sha256(der).hexdigest() and info.sha1 == hashlib.sha1(der).hexdigest().upper()
    assert (info.subject_cn, info.issuer_cn, info.is_ca, info.pem) == ("pki-leaf", "pki test CA", False, LEAF.pem)
    assert pki.cert_info(CA.pem).is_ca


def test_chain_gives_every_certificate_in_order_and_the_leaf_first():
    chain = LEAF.pem + CA.pem
    assert [c.subject for c in pki.load_certs(chain)] == [LEAF.cert.subject, CA.cert.subject]
    info = pki.cert_info(chain)
    assert info.subject_cn == "pki-leaf" and info.pem == chain  # the text is kept whole
    assert pki.certificate_ders(chain) == [_der(LEAF.pem), _der(CA.pem)]


def test_text_around_and_between_the_blocks_is_ignored():
    text = "Bag Attributes\n    friendlyName: leaf\nsubject=/CN=pki-leaf\n" + LEAF.pem + "\nnotes\n" + CA.pem + "--\n"
    assert len(pki.load_certs(text)) == 2
    assert pki.cert_info(text).cert_id == pki.cert_info(LEAF.pem).cert_id
    assert pki.cert_info(LEAF.pem.replace("\n", "\r\n")).cert_id == pki.cert_info(LEAF.pem).cert_id  # CRLF


def test_bytes_are_read_as_they_are():
    assert pki.certificate_ders(b"\xff\xfe binary junk\n" + LEAF.pem.encode()) == [_der(LEAF.pem)]


def _body_cut(pem: str) -> str:
    lines = pem.splitlines()
    return "\n".join(lines[: len(lines) // 2] + [lines[-1]]) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_body_cut(LEAF.pem), "the certificate block (line 1 of the text): "),
        (
            LEAF.pem[: len(LEAF.pem) // 2],
            "the certificate block (line 1 of the text): the PEM framing is broken: "
            "expected each '-----BEGIN CERTIFICATE-----' line to be followed by base64",
        ),
        (
            LEAF.pem.replace("M", "!", 1),
            "the body is not valid base64 (a character that is not base64 at offset 0 of "
            "the body; a truncated or corrupted body?)",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIBA\n-----END CERTIFICATE-----\n",
            "the body is not valid base64 (5 base64 characters, not a whole number of 4-character",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "the body decodes but is not a DER X.509 certificate",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CRL-----\n",
            "a '-----BEGIN CERTIFICATE-----' block ends with '-----END CRL-----'; expected the same label on both lines",
        ),
    ],
)
def test_a_broken_block_is_named_and_located(text, expected):
    with pytest.raises(pki.PemError, match="^cannot parse the PEM certificate: ") as err:
        pki.load_cert(text)
    assert expected in str(err.value)
    assert "cryptography.io" not in str(err.value) and "InvalidData" not in str(err.value)


def test_the_broken_block_of_a_chain_is_the_one_named():
    bad = CA.pem.replace("M", "!", 1)
    line = (LEAF.pem + "\n").count("\n") + 1
    with pytest.raises(pki.PemError, match=rf"certificate block 2 of 2 \(line {line} of the text\): the body is not"):
        pki.load_certs(LEAF.pem + "\n" + bad)


def test_a_chain_cut_short_is_truncated_not_shorter():
    # cryptography skips a BEGIN line without END after the last good block; fleetctl calls it what it is
    with pytest.raises(pki.PemError, match="certificate block 2 of 2 .*the PEM framing is broken"):
        pki.load_certs(LEAF.pem + CA.pem[: len(CA.pem) // 2])


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("hello world", "found no PEM block"),
        ("", "found no PEM block"),
        ("certs/device1.pem", "found no PEM block"),
        ("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "found a PEM block labelled 'PUBLIC KEY'"),
        (LEAF.pem.replace("CERTIFICATE", "X509 CERTIFICATE"), "found a PEM block labelled 'X509 CERTIFICATE'"),
        ("-----BEGIN garbage", "found a malformed PEM block"),
    ],
)
def test_a_text_that_is_no_certificate_says_what_was_expected(text, found):
    with pytest.raises(
        pki.PemError, match="^not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block, " + found
    ):
        pki.cert_info(text)


@pytest.mark.parametrize(
    "text",
    [
        LEAF.key_pem(),
        LEAF.key_pem() + LEAF.pem,  # a leaf with its key: the parser would skip the key, fleetctl refuses
        LEAF.pem + "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    ],
)
def test_a_private_key_is_refused_before_any_parse_and_never_quoted(text):
    with pytest.raises(pki.PemError) as err:
        pki.load_certs(text)
    assert str(err.value) == "this file holds a private key; fleetctl reads only certificates (public material)"
    body = LEAF.key_pem().splitlines()[1]
    assert body not in str(err.value) and "BEGIN" not in str(err.value)


def test_pre_checks_are_substring_checks():
    assert pki.looks_like_pem("x -----BEGIN FOO") and not pki.looks_like_pem("certs/a.pem")
    assert pki.looks_like_certificate(LEAF.pem.encode()) and not pki.looks_like_certificate("-----BEGIN PUBLIC KEY")
    assert pki.holds_private_key(LEAF.key_pem()) and not pki.holds_private_key(LEAF.pem)


def test_issued_by():
    assert pki.issued_by(LEAF.pem, CA.pem)
    assert pki.issued_by(LEAF.pem + CA.pem, CA.pem)  # the leaf of a chain
    assert not pki.issued_by(LEAF.pem, OTHER.pem)  # another issuer name
    impostor = make_ca("pki test CA")  # same name, another key: the signature
    assert not pki.issued_by(LEAF.pem, impostor.pem)
    assert not pki.issued_by("not pem", CA.pem) and not pki.issued_by(LEAF.pem, "not pem")


# ---------------------------------------------------------------------------------------------- property
_PIECES = st.sampled_from(
    [
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "-----BEGIN ",
        "-----END ",
        "-----",
        "\n",
        "\r\n",
        " ",
        "=",
        "==",
        "MII",
        "MIIB",
        "PUBLIC KEY",
        "X509 CERTIFICATE",
        LEAF.pem,
        CA.pem,
        LEAF.pem[:200],
        LEAF.pem[100:],
        "\x00",
        "\u00e9",
        "\ufeff",
    ]
)
_TEXTS = st.one_of(
    st.text(),
    st.lists(
        st.one_of(
            _PIECES,
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n", max_size=80),
        ),
        max_size=12,
    ).map("".join),
)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(_TEXTS)
def test_any_text_parses_or_fails_with_pem_error_only(text):
    for parse in (pki.load_certs, pki.cert_info, lambda t: pki.certificate_ders(t.encode("utf-8", "surrogatepass"))):
        try:
            parse(text)
        except pki.PemError as exc:
            assert str(exc) and "cryptography.io" not in str(exc)
    assert pki.issued_by(text, CA.pem) in (True, False)


# ---------------------------------------------------------------------------------------------- the callers
def test_the_manifest_pem_type_pre_checks_with_the_published_pattern():
    import json
    from pathlib import Path

    import pydantic

    from engine.providers.aws.kinds import CertificateSpec

    assert CertificateSpec(certificatePem=LEAF.pem).certificatePem.inline == LEAF.pem
    # a PEM-looking text passes the model: the parse (and its located error) is expand's
    assert CertificateSpec(certificatePem="-----BEGIN CERTIFICATE-----\nMIIB\n").certificatePem.inline
    with pytest.raises(pydantic.ValidationError, match=r"expected \{file: path\} or an inline PEM block"):
        CertificateSpec(certificatePem="certs/device1.pem")
    schema = json.loads((Path(__file__).parent.parent / "schemas/aws.fleetctl.io/Certificate.json").read_text())
    assert schema["properties"]["spec"]["properties"]["certificatePem"]["anyOf"][0]["pattern"] == pki.PEM_MARKER


def test_lint_finds_inline_certificates_and_skips_what_does_not_parse(tmp_path):
    import datetime as dt

    from engine.lint import LintContext

    ctx = LintContext(tmp_path, [], dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert ctx.certificate(None, LEAF.pem).subject_cn == "pki-leaf"
    assert ctx.certificate(None, {"inline": LEAF.pem + CA.pem}).subject_cn == "pki-leaf"
    assert ctx.certificate(None, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n") is None
    assert ctx.certificate(None, "no certificate here") is None
