"""engine/pki.py: certificates are parsed by cryptography; anything else is a PemError with a reason, never
another exception (the manifest and import paths turn a PemError into a located diagnostic)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pki import PemError, cert_info, load_cert
from tests.conftest import FLEET

CERT = next(p for p in sorted(FLEET.rglob("*.pem")) if b"BEGIN CERTIFICATE" in p.read_bytes()).read_text()


def test_a_certificate_with_text_around_it_and_a_chain_parse() -> None:
    info = cert_info("issued for the pilot line\n" + CERT + "trailing words\n")
    assert len(info.cert_id) == 64 and info.sha1 == info.sha1.upper()
    assert cert_info(CERT + CERT).cert_id == info.cert_id  # a chain: the first certificate is the one described


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no '-----BEGIN CERTIFICATE-----' block"),
        ("not pem at all", "no '-----BEGIN CERTIFICATE-----' block"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot parse the PEM certificate"),
        (CERT[: len(CERT) // 2], "cannot parse the PEM certificate"),  # truncated
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds a private key"),
    ],
    ids=["empty", "not-pem", "bad-body", "truncated", "private-key"],
)
def test_what_is_not_a_certificate_is_a_pem_error_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(PemError, match=reason):
        load_cert(text)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda a, b: f"{a}-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----\n", st.text(), st.text()
        ),
        st.builds(lambda cut, junk: CERT[:cut] + junk, st.integers(0, len(CERT)), st.text(max_size=20)),
    )
)
def test_arbitrary_text_raises_nothing_but_pem_error(text: str) -> None:
    try:
        cert_info(text)
    except PemError:
        pass
