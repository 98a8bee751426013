"""ARM hub certificates: upload, proof of possession for real (CN = verification code, signed by the CA), etags,
RFC-1123 dates parsed by the real azure-mgmt-iothub SDK, and the ARM bearer requirement."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.iothub.models import CertificateDescription, CertificateProperties
from cryptography.hazmat.primitives import hashes, serialization

from engine.errors import Invalid, NotFound, PreconditionFailed
from engine.providers.azure.client import AzureClient
from engine.sandbox.certs import Issued, issue, make_ca


def test_upload_generate_code_verify(client: AzureClient, root_ca: Issued) -> None:
    uploaded = client.put_hub_certificate("rootca", root_ca.pem)
    assert uploaded["properties"]["isVerified"] is False
    assert uploaded["properties"]["subject"] == "CN=fleetctl test root CA"
    assert uploaded["type"] == "Microsoft.Devices/IotHubs/Certificates"
    nonce = client.generate_verification_code("rootca", uploaded["etag"])
    code = nonce["properties"]["verificationCode"]
    assert len(code) == 48 and nonce["etag"] != uploaded["etag"]
    verification = issue(code, root_ca)
    verified = client.verify_hub_certificate("rootca", nonce["etag"], verification.pem)
    assert verified["properties"]["isVerified"] is True
    assert [item["name"] for item in client.list_hub_certificates()] == ["rootca"]


def test_verification_failures(client: AzureClient, root_ca: Issued) -> None:
    uploaded = client.put_hub_certificate("rootca", root_ca.pem)
    with pytest.raises(Invalid) as not_generated:
        client.verify_hub_certificate("rootca", uploaded["etag"], issue("anything", root_ca).pem)
    assert not_generated.value.code == "VerificationCodeNotGenerated"
    nonce = client.generate_verification_code("rootca", uploaded["etag"])
    code, etag = nonce["properties"]["verificationCode"], nonce["etag"]
    with pytest.raises(Invalid) as wrong_cn:
        client.verify_hub_certificate("rootca", etag, issue("not-the-code", root_ca).pem)
    assert wrong_cn.value.status == 400
    other_ca = make_ca("someone else's CA")
    with pytest.raises(Invalid) as wrong_issuer:
        client.verify_hub_certificate("rootca", etag, issue(code, other_ca).pem)
    assert wrong_issuer.value.code == "IH400053"
    with pytest.raises(PreconditionFailed):
        client.verify_hub_certificate("rootca", uploaded["etag"], issue(code, root_ca).pem)
    assert client.list_hub_certificates()[0]["properties"]["isVerified"] is False


def test_etags_and_delete(client: AzureClient, root_ca: Issued) -> None:
    first = client.put_hub_certificate("rootca", root_ca.pem)
    with pytest.raises(PreconditionFailed):
        client.put_hub_certificate("rootca", root_ca.pem)  # exists: If-Match required
    second = client.put_hub_certificate("rootca", root_ca.pem, first["etag"], is_verified=True)
    assert second["properties"]["isVerified"] is True and second["etag"] != first["etag"]
    replaced = client.put_hub_certificate("rootca", make_ca("new root").pem, second["etag"])
    assert replaced["properties"]["isVerified"] is False
    with pytest.raises(PreconditionFailed):
        client.delete_hub_certificate("rootca", first["etag"])
    client.delete_hub_certificate("rootca", replaced["etag"])
    with pytest.raises(NotFound):
        client.get_hub_certificate("rootca")
    with pytest.raises(Invalid):
        client.put_hub_certificate("bad name!", root_ca.pem)


def test_sdk_parses_rfc1123_dates_and_accepts_base64_der(mgmt_sdk, emulator, root_ca: Issued) -> None:
    der = base64.b64encode(root_ca.cert.public_bytes(serialization.Encoding.DER)).decode()
    created = mgmt_sdk.certificates.create_or_update(
        emulator.resource_group,
        emulator.hub_name,
        "der-ca",
        CertificateDescription(properties=CertificateProperties(certificate=der, is_verified=True)),
    )
    for moment in (created.properties.created, created.properties.updated, created.properties.expiry):
        assert isinstance(moment, dt.datetime) and moment.tzinfo is not None
    assert created.properties.thumbprint == root_ca.cert.fingerprint(hashes.SHA1()).hex().upper()
    with pytest.raises(HttpResponseError) as missing:
        mgmt_sdk.certificates.get(emulator.resource_group, "no-such-hub", "der-ca")
    assert missing.value.status_code == 404


def test_arm_requires_a_bearer_token(emulator) -> None:
    url = (
        f"{emulator.arm_base_url}/subscriptions/{emulator.subscription_id}/resourceGroups/"
        f"{emulator.resource_group}/providers/Microsoft.Devices/IotHubs/{emulator.hub_name}/certificates"
    )
    anonymous = requests.get(url, params={"api-version": "2023-06-30"}, verify=emulator.ca_bundle, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthenticationFailed"
    bearer = {"Authorization": f"Bearer {emulator.entra.mint('https://management.azure.com/.default')}"}
    no_version = requests.get(url, headers=bearer, verify=emulator.ca_bundle, timeout=10)
    assert no_version.status_code == 400
    not_a_token = requests.get(
        url,
        params={"api-version": "2023-06-30"},
        headers={"Authorization": "Bearer x"},
        verify=emulator.ca_bundle,
        timeout=10,
    )
    assert not_a_token.status_code == 401 and not_a_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert requests.get(
        url, params={"api-version": "2023-06-30"}, headers=bearer, verify=emulator.ca_bundle, timeout=10
    ).json() == {"value": []}


def test_dps_certificates_share_the_flow(emulator, root_ca: Issued) -> None:
    url = (
        f"{emulator.arm_base_url}/subscriptions/{emulator.subscription_id}/resourceGroups/"
        f"{emulator.resource_group}/providers/Microsoft.Devices/provisioningServices/{emulator.dps_name}"
        "/certificates/rootca"
    )
    token = emulator.entra.mint("https://management.azure.com/.default")
    common = {
        "params": {"api-version": "2022-12-12"},
        "headers": {"Authorization": f"Bearer {token}"},
        "verify": emulator.ca_bundle,
        "timeout": 10,
    }
    body = {"properties": {"certificate": base64.b64encode(root_ca.pem.encode()).decode()}}
    created = requests.put(url, json=body, **common)
    assert created.status_code == 200
    assert created.json()["type"] == "Microsoft.Devices/provisioningServices/Certificates"
    headers = {**common["headers"], "If-Match": created.json()["etag"]}
    nonce = requests.post(f"{url}/generateVerificationCode", **{**common, "headers": headers}).json()
    proof = {"certificate": issue(nonce["properties"]["verificationCode"], root_ca).pem}
    proof_headers = {**headers, "If-Match": nonce["etag"]}
    verified = requests.post(f"{url}/verify", json=proof, **{**common, "headers": proof_headers})
    assert verified.status_code == 200 and verified.json()["properties"]["isVerified"] is True
