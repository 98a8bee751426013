"""Test and example certificates, generated at run time (private keys never leave memory unless asked).

fleetctl itself never reads private keys; this module exists for the sandbox, the tests and for
regenerating the example fleet's public certificates (`python -m engine.sandbox.certs DIR`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SPRINGCORE_CA_SUBJECT = {
    "CN": "SpringCore SandBox CA",
    "OU": "SpringCore",
    "O": "SpringCard",
    "ST": "Ile-de-France",
    "C": "FR",
}
_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
}


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _name(fields: dict[str, str] | str) -> x509.Name:
    if isinstance(fields, str):
        fields = {"CN": fields}
    return x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in fields.items()])


def issue(
    subject: dict[str, str] | str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    days: int = 3650,
    not_before: dt.datetime | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    name = _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_ca(subject: dict[str, str] | str = SPRINGCORE_CA_SUBJECT, **kw) -> Issued:
    return issue(subject, None, ca=True, **kw)


def verification_certificate(ca: Issued, code: str) -> Issued:
    """Proof of possession: a certificate whose CN is the registration/verification code, signed by the CA."""
    return issue(code, ca, days=30)


def write_example(out: Path, serials: list[str], verification_code: str) -> None:
    """The example fleet's public certificates (keys are discarded: fleetctl never needs them)."""
    out.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    (out / "springcore-sandbox-ca.pem").write_text(ca.pem)
    (out / "springcore-sandbox-ca-verification.pem").write_text(verification_certificate(ca, verification_code).pem)
    for serial in serials:
        (out / f"{serial.lower()}.pem").write_text(issue({"CN": serial, "O": "SpringCard"}, ca).pem)


def write_azure_example(out: Path, verification_code: str) -> None:
    """The Azure example's public certificates (u-blox note §3.2): the root CA `rootca`, its verification
    certificate (CN = the hub's verification code) and device1's certificate (CN = its device id). Keys are
    discarded: fleetctl never needs them."""
    out.mkdir(parents=True, exist_ok=True)
    ca = make_ca({"CN": "fleetctl example root CA", "O": "fleetctl"})
    (out / "rootca.pem").write_text(ca.pem)
    (out / "rootca-verification.pem").write_text(verification_certificate(ca, verification_code).pem)
    (out / "device1.pem").write_text(issue({"CN": "device1", "O": "fleetctl"}, ca).pem)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]}, help="regenerate the example fleet's public certificates"
)
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--serial", "serials", multiple=True)
@click.option(
    "--verification-code",
    default=None,
    help="the account's registration code (default: the sandbox's, account 123456789012 eu-west-2)",
)
@click.option(
    "--azure",
    is_flag=True,
    help="the Azure example's certificates instead (fleet/azure/certs; the verification code defaults to "
    "the sandbox hub's fixed one)",
)
def main(out: Path, serials: tuple[str, ...], verification_code: str | None, azure: bool) -> None:
    """`python -m engine.sandbox.certs OUT`: write the example fleet's certificates (AWS, or with --azure Azure's)."""
    if azure:
        from engine.sandbox.azure.arm import sandbox_verification_code
        from engine.sandbox.azure.emulator import DEFAULT_SUBSCRIPTION

        write_azure_example(
            out, verification_code or sandbox_verification_code(DEFAULT_SUBSCRIPTION, "fleetctl-sandbox-hub")
        )
        return
    from engine.sandbox.moto_ext import sandbox_registration_code

    code = verification_code or sandbox_registration_code("123456789012", "eu-west-2")
    write_example(out, list(serials) or ["DA1275B0", "DA1275B1", "DA1275B2"], code)


if __name__ == "__main__":
    main()
