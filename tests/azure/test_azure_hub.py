"""IoT Hub registry, twins, bulk and query: the real azure-iot-hub SDK (directly and through AzureClient)
against the emulator over HTTPS."""

from __future__ import annotations

import hashlib

import pytest
import requests
from azure.iot.hub.models import ExportImportDevice, QuerySpecification, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from engine.errors import Conflict, Invalid, NotFound, PreconditionFailed, Throttled
from engine.providers.azure.client import AzureClient
from engine.providers.azure.sas import generate_sas_token

THUMB = hashlib.sha1(b"device certificate").hexdigest().upper()


@pytest.mark.parametrize(
    "auth, expected_type",
    [
        ({"type": "sas"}, "sas"),
        (
            {
                "type": "symmetricKey",
                "primaryKey": "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5IQ==",
                "secondaryKey": "c2Vjb25kYXJ5LXNlY29uZGFyeS1zZWNvbmRhcnk=",
            },
            "sas",
        ),
        ({"type": "selfSigned", "primaryThumbprint": THUMB, "secondaryThumbprint": THUMB}, "selfSigned"),
        ({"type": "x509CA"}, "certificateAuthority"),
    ],
)
def test_device_lifecycle_for_each_auth_type(client: AzureClient, auth: dict, expected_type: str) -> None:
    created = client.create_device("dev-1", auth, "enabled", False)
    assert created["authentication"]["type"] == expected_type
    if expected_type == "sas":
        keys = created["authentication"]["symmetricKey"]
        assert keys["primaryKey"] and keys["secondaryKey"]
        assert keys["primaryKey"] == auth.get("primaryKey", keys["primaryKey"])
    assert client.get_device("dev-1")["etag"] == created["etag"]
    updated = client.update_device("dev-1", auth, "disabled", True, created["etag"])
    assert updated["status"] == "disabled" and updated["capabilities"]["iotEdge"] is True
    assert updated["etag"] != created["etag"]
    with pytest.raises(PreconditionFailed):
        client.delete_device("dev-1", created["etag"])
    client.delete_device("dev-1", updated["etag"])
    with pytest.raises(NotFound) as missing:
        client.get_device("dev-1")
    assert missing.value.code == "DeviceNotFound" and missing.value.status == 404 and missing.value.request_id


def test_sdk_directly_create_conflict_and_stale_etag(registry) -> None:
    device = registry.create_device_with_certificate_authority("ca-device", "enabled")
    with pytest.raises(HttpOperationError) as duplicate:
        registry.create_device_with_certificate_authority("ca-device", "enabled")
    assert duplicate.value.response.status_code == 409
    assert duplicate.value.response.headers["iothub-errorcode"] == "DeviceAlreadyExists"
    registry.update_device_with_certificate_authority("ca-device", device.etag, "disabled")
    with pytest.raises(HttpOperationError) as stale:
        registry.update_device_with_certificate_authority("ca-device", device.etag, "enabled")
    assert stale.value.response.status_code == 412
    assert [d.device_id for d in registry.get_devices(5)] == ["ca-device"]


def test_conflict_and_invalid_ids_are_translated(client: AzureClient) -> None:
    client.create_device("dup", {"type": "sas"})
    with pytest.raises(Conflict) as conflict:
        client.create_device("dup", {"type": "sas"})
    assert conflict.value.code == "DeviceAlreadyExists" and conflict.value.status == 409
    for bad in ("x" * 129, "has space", "slash#hash"):
        with pytest.raises(Invalid):
            client.create_device(bad, {"type": "sas"})
    with pytest.raises(Invalid):
        client.create_device("short-key", {"type": "sas", "primaryKey": "c2hvcnQ=", "secondaryKey": "c2hvcnQ="})


def test_twin_patch_merges_deletes_and_versions(client: AzureClient, emulator) -> None:
    client.create_device("t1", {"type": "sas"})
    twin = client.get_twin("t1")
    assert twin["properties"]["desired"]["$version"] == 1 and "tags" not in twin
    first = client.update_twin(
        "t1",
        {
            "tags": {"site": "paris", "hw": {"rev": 2, "lot": "a"}},
            "properties": {"desired": {"interval": 30, "mode": "eco"}},
        },
        twin["etag"],
    )
    assert first["properties"]["desired"]["$version"] == 2 and first["version"] == twin["version"] + 1
    metadata = first["properties"]["desired"]["$metadata"]
    assert metadata["interval"]["$lastUpdatedVersion"] == 2
    second = client.update_twin(
        "t1", {"tags": {"hw": {"lot": None}}, "properties": {"desired": {"mode": None, "interval": 60}}}, first["etag"]
    )
    assert second["tags"] == {"site": "paris", "hw": {"rev": 2}}
    assert {k: v for k, v in second["properties"]["desired"].items() if not k.startswith("$")} == {"interval": 60}
    assert second["properties"]["desired"]["$version"] == 3
    assert "mode" not in second["properties"]["desired"]["$metadata"]
    with pytest.raises(PreconditionFailed):
        client.update_twin("t1", {"tags": {"site": "lyon"}}, first["etag"])


def test_twin_rules_reject_without_partial_writes(client: AzureClient) -> None:
    client.create_device("t2", {"type": "sas"})
    twin = client.get_twin("t2")
    echoed = client.update_twin("t2", {"properties": {"desired": {**twin["properties"]["desired"], "a": 1}}}, None)
    assert echoed["properties"]["desired"]["a"] == 1  # $version/$metadata in a patch are ignored
    for bad in ({"tags": {"dotted.key": 1}}, {"tags": {"ok": 1}, "properties": {"desired": {"x": "y" * 40000}}}):
        with pytest.raises(Invalid):
            client.update_twin("t2", bad, None)
    assert "tags" not in client.get_twin("t2")
    result = client.bulk_devices([{"device_id": "bulk-bad", "auth": {"type": "sas"}, "tags": {"$bad": 1}}], "create")
    assert result["errors"][0]["errorCode"] == "ArgumentInvalid"
    with pytest.raises(NotFound):
        client.get_device("bulk-bad")


def test_reported_properties_are_not_writable_by_the_service(client: AzureClient, emulator, registry) -> None:
    client.create_device("r1", {"type": "sas"})
    emulator.report_properties("r1", {"firmware": "1.2.3"})
    with pytest.raises(HttpOperationError) as rejected:
        registry.update_twin("r1", Twin(properties=TwinProperties(reported={"firmware": "6.6.6"})), "*")
    assert rejected.value.response.status_code == 400
    twin = client.update_twin("r1", {"properties": {"desired": {"firmware": "2.0.0"}}}, None)
    reported = twin["properties"]["reported"]
    assert reported["firmware"] == "1.2.3" and reported["$version"] == 2
    replaced = registry.replace_twin("r1", Twin(tags={"only": True}), twin["etag"])
    assert replaced.tags == {"only": True} and replaced.properties.reported["firmware"] == "1.2.3"


def _bulk_create(client: AzureClient, count: int, **extra) -> None:
    result = client.bulk_devices(
        [
            {
                "device_id": f"dev-{i:05d}",
                "auth": {"type": "x509CA"},
                "tags": {"site": "paris" if i % 2 else "lyon", "n": i},
                **extra,
            }
            for i in range(count)
        ],
        "create",
    )
    assert result == {"isSuccessful": True, "errors": [], "warnings": []}


def test_query_pages_with_continuation(client: AzureClient, emulator) -> None:
    _bulk_create(client, 2500)
    assert client.calls["bulk_create_or_update_devices"] == 25
    before = emulator.stats()["total"]
    twins = list(client.query_devices(page_size=1000))
    assert client.calls["query_iot_hub"] == 3 and emulator.stats()["total"] - before == 3
    assert len({twin["deviceId"] for twin in twins}) == 2500


def test_query_where_subset(client: AzureClient) -> None:
    _bulk_create(client, 20)
    client.update_device("dev-00003", {"type": "x509CA"}, "disabled", False, None)
    paris = list(client.query_devices("tags.site = 'paris'"))
    assert len(paris) == 10 and {twin["tags"]["site"] for twin in paris} == {"paris"}
    twin = paris[0]
    for field in (
        "authenticationType",
        "x509Thumbprint",
        "status",
        "capabilities",
        "etag",
        "deviceEtag",
        "version",
        "tags",
        "properties",
    ):
        assert field in twin
    assert [t["deviceId"] for t in client.query_devices("deviceId IN ['dev-00001', 'dev-00002', 'zz']")] == [
        "dev-00001",
        "dev-00002",
    ]
    assert [t["deviceId"] for t in client.query_devices("status = 'disabled'")] == ["dev-00003"]
    mixed = client.query_devices("(tags.n < 3 OR tags.n >= 18) AND tags.site != 'lyon'")
    assert [t["deviceId"] for t in mixed] == ["dev-00001", "dev-00019"]
    assert list(client.query_devices("tags.missing = 1")) == []
    with pytest.raises(Invalid):
        list(client.query_devices("tags.site = "))


def test_bulk_partial_error(client: AzureClient) -> None:
    client.create_device("dev-00001", {"type": "sas"})
    result = client.bulk_devices([{"device_id": f"dev-{i:05d}", "auth": {"type": "sas"}} for i in range(3)], "create")
    assert result["isSuccessful"] is False
    assert result["errors"] == [
        {
            "deviceId": "dev-00001",
            "errorCode": "DeviceAlreadyExists",
            "errorStatus": "A device with ID 'dev-00001' is already registered.",
            "operation": "create",
        }
    ]
    assert {d["deviceId"] for d in client.query_devices()} == {"dev-00000", "dev-00001", "dev-00002"}
    stale = client.bulk_devices([{"device_id": "dev-00000", "etag": "bogus"}], "deleteIfMatchETag")
    assert stale["errors"][0]["errorCode"] == "PreconditionFailed"


def test_bulk_over_100_is_rejected_whole(registry, emulator) -> None:
    too_many = [ExportImportDevice(id=f"x{i}", import_mode="create") for i in range(101)]
    result = registry.bulk_create_or_update_devices(too_many)  # the SDK accepts 400 and parses the error body
    assert result.is_successful is None and result.errors is None
    key = dict(part.split("=", 1) for part in emulator.hub_connection_string.split(";"))["SharedAccessKey"]
    response = requests.post(
        f"https://{emulator.host}/devices",
        params={"api-version": "2021-04-12"},
        json=[{"id": f"x{i}", "importMode": "create"} for i in range(101)],
        headers={"Authorization": generate_sas_token(emulator.host, key, "iothubowner")},
        verify=emulator.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 400 and response.headers["iothub-errorcode"] == "TooManyDevices"
    assert registry.get_devices() == []


def test_bulk_twin_and_delete_modes(client: AzureClient) -> None:
    _bulk_create(client, 3)
    twin = client.get_twin("dev-00000")
    result = client.bulk_devices(
        [
            {"device_id": "dev-00000", "twin_etag": twin["etag"], "desired": {"a": 1}},
            {"device_id": "dev-00001", "tags": {"site": "nice"}},
        ],
        "updateTwinIfMatchETag",
    )
    assert [error["deviceId"] for error in result["errors"]] == ["dev-00001"]
    assert client.get_twin("dev-00000")["properties"]["desired"]["a"] == 1
    client.bulk_devices([{"device_id": "dev-00002"}], "delete")
    assert sorted(t["deviceId"] for t in client.query_devices()) == ["dev-00000", "dev-00001"]


def test_query_through_sdk_reports_headers(registry, client: AzureClient) -> None:
    _bulk_create(client, 5)
    first = registry.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"), None, 2)
    assert first.type == "twin" and len(first.items) == 2 and first.continuation_token
    rest = registry.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"), first.continuation_token, 10)
    assert len(rest.items) == 3 and not rest.continuation_token


def test_quota_mode_throttles_with_retry_after(client: AzureClient, emulator) -> None:
    emulator.configure(rates={"registry": 2})
    with pytest.raises(Throttled) as throttled:
        for index in range(5):
            client.create_device(f"q{index}", {"type": "sas"})
    assert throttled.value.retry_after >= 1 and throttled.value.code == "ThrottlingException"
    assert emulator.stats()["throttled"] == {"registry": 1}
    emulator.configure(rates={})
    client.create_device("after", {"type": "sas"})
