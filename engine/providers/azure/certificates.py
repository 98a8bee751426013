"""The hub's CA certificates (ARM, azure-mgmt-iothub): azure.HubCertificate — the list read, upload and proof of
possession.

Read with one ARM list call; the ARM certificate etag is the token and is sent as If-Match. ARM certificates carry no
tags and a name convention would be a guess, so a hub certificate is never pruned: an undeclared one is listed as
unmanaged.

Proof of possession: Azure issues a new random verification code on every request and its GET never returns the
code, so an apply that cannot verify (no verification certificate declared, or one made for another code) records
the code it was issued in the journal (`proof-pending`, with the certificate etag after it), and the next plan shows
that code while the etag is still the certificate's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import errors
from engine.journal import read_entries
from engine.model import Action, ActualResource, Change, DesiredResource
from engine.providers.azure.planning import Proof, proof_of_possession, sign_command
from engine.providers.azure.session import AzureSession

DEFAULT_JOURNAL = ".fleetctl/journal.jsonl"  # as engine/cli.py: where a pending proof of possession was recorded
PROOF_PENDING = "proof-pending"  # journal event: the code an apply was issued and left to be signed


# ------------------------------------------------------------------------------------------------ read
def read_certificates(p: AzureSession, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
    out = []
    certificates = p.call("certificates.list_by_iot_hub", p.client.list_hub_certificates)
    unverified = [
        c["name"] for c in certificates if c["name"] in declared and not (c.get("properties") or {}).get("isVerified")
    ]
    pending = pending_codes(p.journal) if unverified else {}
    for cert in certificates:
        name, props = cert["name"], cert.get("properties") or {}
        if name not in declared and not prune:
            continue
        state = {"thumbprint": (props.get("thumbprint") or "").upper(), "isVerified": bool(props.get("isVerified"))}
        ids = {"etag": cert.get("etag")}
        code, etag = pending.get(str(p.addr("HubCertificate", name)), (None, None))
        if code and etag == cert.get("etag") and not state["isVerified"]:
            ids["verificationCode"] = code  # still the hub's current code: nothing changed the certificate
        out.append(
            ActualResource(
                p.addr("HubCertificate", name),
                "azure.HubCertificate",
                state,
                token=cert.get("etag") or "",
                managed=name in declared,
                ids=ids,
            )
        )
    return out


def pending_codes(journal: Path | None) -> dict[str, tuple[str, str]]:
    """address → (verification code, certificate etag after it was issued) of the last proof of possession an
    apply left pending (journal event `proof-pending`). Azure's GET never returns the code, and every new code
    changes the etag, so a recorded code whose etag is still the certificate's is the hub's current one."""
    if journal is None or not journal.is_file():
        return {}
    found: dict[str, tuple[str, str]] = {}
    try:
        for entry in read_entries(journal):
            if entry.get("event") == PROOF_PENDING and entry.get("address"):
                found[entry["address"]] = (str(entry.get("verificationCode")), str(entry.get("certificateEtag")))
    except (OSError, ValueError):
        return {}  # an unreadable journal only costs the plan the code: apply reports it again
    return found


# ------------------------------------------------------------------------------------------------ writes
def certificate_upload(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    """Upload (create) or replace (thumbprint changed) the CA certificate, then prove possession of its key."""
    name, etag = c.address.name, c.ids.get("etag")
    if c.action is Action.CREATE or any(f.path == "thumbprint" for f in c.fields):
        uploaded = p.call(
            "certificates.create_or_update", p.client.put_hub_certificate, name, c.inputs["certificatePem"], etag
        )
        etag = uploaded.get("etag")
    _prove(p, c, etag)
    return {}


def _prove(p: AzureSession, c: Change, etag: str | None) -> None:
    """Proof of possession as far as the manifest allows; raises ProofOfPossessionPending with the hub's code when
    the declared verification certificate is not made from it (or none is declared)."""
    proof = proof_of_possession(c)
    if proof is Proof.NONE:
        return
    name = c.address.name
    pem, code = c.inputs.get("verificationCertificatePem"), c.inputs.get("verificationCode")
    if proof is Proof.DECLARED:
        try:
            p.call("certificates.verify", p.client.verify_hub_certificate, name, etag, pem)
            return
        except errors.Invalid:
            pass  # no code issued yet, or another one: ask for a fresh code below
        etag = p.call("certificates.get", p.client.get_hub_certificate, name).get("etag")
    nonce = p.call("certificates.generate_verification_code", p.client.generate_verification_code, name, etag)
    issued = (nonce.get("properties") or {}).get("verificationCode")
    if not issued:
        raise errors.ProviderError(
            f"the hub returned no verification code for certificate '{name}' "
            "(generate_verification_code): run apply again",
            code="NoVerificationCode",
        )
    if pem and code == issued:
        p.call("certificates.verify", p.client.verify_hub_certificate, name, nonce.get("etag"), pem)
        return
    p.emit(
        PROOF_PENDING,
        "certificates.generate_verification_code",
        None,
        verificationCode=issued,
        certificateEtag=nonce.get("etag"),
    )
    stale = (
        f" The declared verificationCertificatePem has CN={code}, a code the hub issued earlier: Azure issues a "
        "new random code on every request, so a verification certificate made before this apply cannot match."
        if pem and code
        else ""
    )
    raise errors.ProviderError(
        f"the certificate is uploaded but not verified: the hub's verification code is {issued}. Make a "
        f"certificate with CN={issued} signed with the CA's key (outside fleetctl, which never reads the CA key), "
        f"e.g. {sign_command(issued)}, declare it as verificationCertificatePem, commit it, and run plan and apply "
        f"again (the plan shows isVerified: false → true).{stale}",
        code="ProofOfPossessionPending",
    )
