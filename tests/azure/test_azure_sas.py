"""SAS tokens: the u-blox worked example byte for byte, compatibility with the SDKs' own token builders, and the
emulator's 401s for wrong keys, expired tokens, wrong resources and unknown policies."""

from __future__ import annotations

import base64
import os
import time

import pytest
import requests
from azure.iot.deviceprovisioning._auth import generate_sas_token as dps_sdk_token
from azure.iot.hub.sastoken import SasToken as HubSdkToken

from engine.providers.azure.sas import (
    SasTokenError,
    generate_sas_token,
    parse_sas_token,
    string_to_sign,
    verify_sas_token,
)

# Inputs and output of the worked example in the u-blox application note (seed 002, §3.3.2).
UBLOX_HOST = "iot-xxxx-test-hub-2.azure-devices.net"
UBLOX_KEY = "bH/VjcdSOJJtcwx94hePfV8EJ8ivyZ/cXQ7e3i6gcDU="
UBLOX_EXPIRY = 1591876214
UBLOX_TOKEN = (
    "SharedAccessSignature sr=iot-xxxx-test-hub-2.azure-devices.net"
    "&sig=ix4nP1LaU%2FZq2Nk3OaBwJ0MikCPIxGxz2uiZ3KUxecM%3D&se=1591876214&skn="
)


def test_ublox_worked_example_is_reproduced_exactly() -> None:
    assert generate_sas_token(UBLOX_HOST, UBLOX_KEY, "", expiry=UBLOX_EXPIRY) == UBLOX_TOKEN


def test_ublox_token_parses_and_verifies_before_expiry() -> None:
    token = parse_sas_token(UBLOX_TOKEN)
    assert token.resource_uri == UBLOX_HOST and token.expiry == UBLOX_EXPIRY and token.key_name is None
    assert string_to_sign(UBLOX_HOST, UBLOX_EXPIRY) == f"{UBLOX_HOST}\n{UBLOX_EXPIRY}"
    signed_by_device_key = generate_sas_token(UBLOX_HOST, UBLOX_KEY, "device", expiry=UBLOX_EXPIRY)
    assert (
        verify_sas_token(
            signed_by_device_key, keys={"device": UBLOX_KEY}, requested_uri=UBLOX_HOST, now=UBLOX_EXPIRY - 1
        )
        == "device"
    )


@pytest.fixture
def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_tokens_built_by_both_sdks_verify(key: str) -> None:
    hub_token = str(HubSdkToken("127.0.0.1:4443", key, "iothubowner"))
    dps_token = dps_sdk_token("127.0.0.1:4443", "provisioningserviceowner", key)
    assert verify_sas_token(hub_token, keys={"iothubowner": key}, requested_uri="127.0.0.1:4443/devices/a")
    assert verify_sas_token(
        dps_token, keys={"provisioningserviceowner": key}, requested_uri="127.0.0.1:4443/enrollments/a"
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong key", "signature"),
        ("expired", "expired"),
        ("wrong resource", "resource"),
        ("unknown policy", "policy"),
        ("device token", "policy"),
    ],
)
def test_verification_failures_name_the_reason(key: str, case: str, message: str) -> None:
    other = base64.b64encode(os.urandom(32)).decode()
    tokens = {
        "wrong key": generate_sas_token("hub.example", other, "iothubowner"),
        "expired": generate_sas_token("hub.example", key, "iothubowner", expiry=int(time.time()) - 5),
        "wrong resource": generate_sas_token("other.example", key, "iothubowner"),
        "unknown policy": generate_sas_token("hub.example", key, "registryRead"),
        "device token": generate_sas_token("hub.example", key, None),
    }
    with pytest.raises(SasTokenError, match=message) as raised:
        verify_sas_token(tokens[case], keys={"iothubowner": key}, requested_uri="hub.example/devices/x")
    assert key not in str(raised.value)


def test_a_device_scoped_token_does_not_cover_the_registry(key: str) -> None:
    token = generate_sas_token("hub.example/devices/d1", key, "iothubowner")
    assert verify_sas_token(token, keys={"iothubowner": key}, requested_uri="hub.example/devices/d1")
    with pytest.raises(SasTokenError, match="resource"):
        verify_sas_token(token, keys={"iothubowner": key}, requested_uri="hub.example/devices/d2")


def _key_of(connection_string: str) -> str:
    return dict(part.split("=", 1) for part in connection_string.split(";"))["SharedAccessKey"]


@pytest.mark.parametrize("case", ["good", "wrong key", "expired", "wrong sr", "unknown skn", "missing"])
def test_emulator_hub_answers_401_for_bad_tokens(emulator, case: str) -> None:
    key = _key_of(emulator.hub_connection_string)
    other = base64.b64encode(os.urandom(32)).decode()
    headers = {
        "good": generate_sas_token(emulator.host, key, "iothubowner"),
        "wrong key": generate_sas_token(emulator.host, other, "iothubowner"),
        "expired": generate_sas_token(emulator.host, key, "iothubowner", expiry=int(time.time()) - 1),
        "wrong sr": generate_sas_token("otherhub.azure-devices.net", key, "iothubowner"),
        "unknown skn": generate_sas_token(emulator.host, key, "service"),
        "missing": None,
    }
    response = requests.get(
        f"https://{emulator.host}/devices/nope",
        params={"api-version": "2021-04-12"},
        headers={"Authorization": headers[case]} if headers[case] else {},
        verify=emulator.ca_bundle,
        timeout=10,
    )
    if case == "good":
        assert response.status_code == 404 and response.headers["iothub-errorcode"] == "DeviceNotFound"
    else:
        assert response.status_code == 401
        assert response.headers["iothub-errorcode"] == "IotHubUnauthorizedAccess"
        assert response.json()["Message"].startswith("ErrorCode:IotHubUnauthorizedAccess;")


def test_emulator_dps_rejects_the_hub_key(emulator) -> None:
    hub_key = _key_of(emulator.hub_connection_string)
    token = generate_sas_token(emulator.host, hub_key, "provisioningserviceowner")
    response = requests.get(
        f"https://{emulator.host}/enrollmentGroups/g1",
        params={"api-version": "2021-10-01"},
        headers={"Authorization": token},
        verify=emulator.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 401 and response.json()["errorCode"] == 401002
