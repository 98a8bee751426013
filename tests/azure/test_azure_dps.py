"""DPS enrollment groups and individual enrollments: the real azure-iot-deviceprovisioning SDK (directly and
through AzureClient) against the emulator over HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from cryptography.hazmat.primitives import hashes

from engine.errors import Conflict, Invalid, NotFound, PreconditionFailed
from engine.providers.azure.client import AzureClient
from engine.sandbox.certs import Issued

SYMMETRIC = {"attestation": {"type": "symmetricKey"}}


def test_group_crud_with_etags(client: AzureClient) -> None:
    created = client.put_enrollment_group(
        "paris-readers",
        {
            **SYMMETRIC,
            "allocationPolicy": "hashed",
            "iotHubs": ["hub-a.azure-devices.net"],
            "initialTwin": {"tags": {"site": "paris"}, "properties": {"desired": {"interval": 30}}},
            "capabilities": {"iotEdge": True},
        },
    )
    keys = created["attestation"]["symmetricKey"]
    assert keys["primaryKey"] and keys["secondaryKey"]
    assert created["reprovisionPolicy"] == {"updateHubAssignment": True, "migrateDeviceData": True}
    assert created["provisioningStatus"] == "enabled" and created["capabilities"] == {"iotEdge": True}
    assert created["createdDateTimeUtc"] == created["lastUpdatedDateTimeUtc"]
    fetched = client.get_enrollment_group("paris-readers")
    assert fetched["attestation"]["symmetricKey"] == {"primaryKey": None, "secondaryKey": None}
    assert client.get_enrollment_group_attestation("paris-readers")["symmetricKey"] == keys
    with pytest.raises(Conflict):
        client.put_enrollment_group("paris-readers", SYMMETRIC)
    updated = client.put_enrollment_group(
        "paris-readers", {**SYMMETRIC, "provisioningStatus": "disabled"}, etag=created["etag"]
    )
    assert updated["etag"] != created["etag"] and updated["createdDateTimeUtc"] == created["createdDateTimeUtc"]
    assert updated["attestation"]["symmetricKey"] == keys
    with pytest.raises(PreconditionFailed):
        client.put_enrollment_group("paris-readers", SYMMETRIC, etag=created["etag"])
    with pytest.raises(PreconditionFailed):
        client.delete_enrollment_group("paris-readers", created["etag"])
    client.delete_enrollment_group("paris-readers", updated["etag"])
    with pytest.raises(NotFound):
        client.get_enrollment_group("paris-readers")


def test_x509_certificate_is_replaced_by_info(client: AzureClient, root_ca: Issued) -> None:
    group = client.put_enrollment_group(
        "x509-group",
        {"attestation": {"type": "x509", "x509": {"signingCertificates": {"primary": {"certificate": root_ca.pem}}}}},
    )
    primary = group["attestation"]["x509"]["signingCertificates"]["primary"]
    assert primary["certificate"] is None
    info = primary["info"]
    assert info["sha1Thumbprint"] == root_ca.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert info["sha256Thumbprint"] == root_ca.cert.fingerprint(hashes.SHA256()).hex().upper()
    assert info["subjectName"] == "CN=fleetctl test root CA" and info["notAfterUtc"].endswith("Z")
    by_reference = client.put_enrollment_group(
        "ca-ref-group", {"attestation": {"type": "x509", "x509": {"caReferences": {"primary": "rootca"}}}}
    )
    assert by_reference["attestation"]["x509"]["caReferences"] == {"primary": "rootca", "secondary": None}
    with pytest.raises(Invalid):
        client.put_enrollment_group(
            "broken",
            {
                "attestation": {
                    "type": "x509",
                    "x509": {"signingCertificates": {"primary": {"certificate": "not a certificate"}}},
                }
            },
        )


@pytest.mark.parametrize("registration_id", ["x" * 129, "ends-with-dot.", "has!bang", "under_score_"])
def test_registration_id_rules(client: AzureClient, registration_id: str) -> None:
    with pytest.raises(Invalid):
        client.put_enrollment(registration_id, SYMMETRIC)


def test_registration_ids_are_case_insensitive(client: AzureClient) -> None:
    assert client.put_enrollment("Dev-01.a:b_c", SYMMETRIC)["registrationId"] == "Dev-01.a:b_c"
    assert client.put_enrollment("x" * 127 + "-", SYMMETRIC)
    with pytest.raises(Conflict):
        client.put_enrollment("dev-01.A:B_C", SYMMETRIC)
    assert client.get_enrollment("DEV-01.a:b_c")["registrationId"] == "Dev-01.a:b_c"


def test_allocation_policy_rules(client: AzureClient) -> None:
    with pytest.raises(Invalid):
        client.put_enrollment_group("custom-no-hook", {**SYMMETRIC, "allocationPolicy": "custom"})
    with pytest.raises(Invalid):
        client.put_enrollment_group("bad-policy", {**SYMMETRIC, "allocationPolicy": "roundRobin"})
    custom = client.put_enrollment_group(
        "custom",
        {
            **SYMMETRIC,
            "allocationPolicy": "custom",
            "customAllocationDefinition": {"webhookUrl": "https://fn.example/api/alloc", "apiVersion": "2021-10-01"},
        },
    )
    assert custom["customAllocationDefinition"]["webhookUrl"] == "https://fn.example/api/alloc"
    static = client.put_enrollment_group(
        "static", {**SYMMETRIC, "allocationPolicy": "static", "reprovisionPolicy": {"updateHubAssignment": False}}
    )
    assert static["reprovisionPolicy"] == {"updateHubAssignment": False, "migrateDeviceData": True}


def test_individual_enrollments(client: AzureClient, root_ca: Issued) -> None:
    tpm = client.put_enrollment(
        "tpm-device", {"attestation": {"type": "tpm", "tpm": {"endorsementKey": "AToAAQ"}}, "deviceId": "tpm-device-id"}
    )
    assert tpm["deviceId"] == "tpm-device-id"
    x509 = client.put_enrollment(
        "x509-device",
        {"attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": root_ca.pem}}}}},
    )
    assert "info" in x509["attestation"]["x509"]["clientCertificates"]["primary"]
    assert sorted(item["registrationId"] for item in client.list_enrollments()) == ["tpm-device", "x509-device"]
    client.delete_enrollment("tpm-device", None)
    assert [item["registrationId"] for item in client.list_enrollments()] == ["x509-device"]


def test_query_paging(client: AzureClient, dps_sdk) -> None:
    for index in range(25):
        client.put_enrollment_group(f"group-{index:02d}", SYMMETRIC)
    groups = client.list_enrollment_groups(page_size=10)
    assert len(groups) == 25 and client.calls["enrollment_group.query"] == 3
    assert all(group["attestation"]["symmetricKey"]["primaryKey"] is None for group in groups)
    pages = list(dps_sdk.enrollment_group.query({"query": "SELECT *"}, top=10).by_page())
    assert [len(list(page)) for page in pages] == [10, 10, 5]


def test_sdk_directly_maps_errors(dps_sdk) -> None:
    created = dps_sdk.enrollment_group.create_or_update("g1", {"enrollmentGroupId": "g1", **SYMMETRIC})
    with pytest.raises(ResourceExistsError):
        dps_sdk.enrollment_group.create_or_update("g1", {"enrollmentGroupId": "g1", **SYMMETRIC})
    with pytest.raises(HttpResponseError) as stale:
        dps_sdk.enrollment_group.delete("g1", if_match="stale")
    assert stale.value.status_code == 412
    dps_sdk.enrollment_group.delete("g1", if_match=created["etag"])
    with pytest.raises(ResourceNotFoundError):
        dps_sdk.enrollment_group.get("g1")
    with pytest.raises(ResourceNotFoundError):
        dps_sdk.device_registration_state.get("nobody")
