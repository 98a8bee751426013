"""Cross-checks: broker endpoint and region, certificate CN, CA slot, TLS port, empty slot references."""

from __future__ import annotations

from typing import Any

import pytest

from engine.providers.device import (
    CloudContext,
    DeviceModel,
    FindingCode,
    Resolved,
    aws_region_of,
    crosscheck_device,
    parse_dump,
    resolve_desired,
)
from engine.providers.device.crosscheck import check_broker, check_ca, check_client_cn, check_tls_port

from .helpers import AMAZON_ROOT, CLIENT_CERT, DUMPS, ENDPOINT, esp_values, nina_values, springpark_group

AWS_EU = CloudContext(
    iot_endpoint=ENDPOINT,
    region="eu-west-2",
    target="aws-eu",
    required_root_pem=AMAZON_ROOT,
    required_root_name="Amazon Root CA 1",
)


def codes(
    model: DeviceModel,
    dump_name: str,
    values: dict[str, Any],
    context: CloudContext = AWS_EU,
    device: dict[str, Any] | None = None,
) -> list[FindingCode]:
    dump = parse_dump(DUMPS / dump_name, model)
    desired, problems = resolve_desired(model, values, device, device_id=dump.device_id)
    assert problems == []
    return [f.code for f in crosscheck_device(model, desired, dump, context)]


def test_region_of() -> None:
    assert aws_region_of("a1b2-ats.iot.us-west-2.amazonaws.com") == "us-west-2"
    assert aws_region_of("iot-fleet-prod.azure-devices.net") is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (ENDPOINT, []),
        (ENDPOINT.upper() + ".", []),
        ("a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com", [FindingCode.BROKER_NOT_ENDPOINT, FindingCode.CROSS_REGION]),
        (
            "abcdefghijkl-ats.iot.eu-west2.amazonaws.com",
            [FindingCode.BROKER_NOT_ENDPOINT, FindingCode.MALFORMED_REGION],
        ),
        ("mqtt.thingstream.io", [FindingCode.BROKER_NOT_ENDPOINT]),
    ],
)
def test_check_broker(host: str, expected: list[FindingCode]) -> None:
    assert [f.code for f in check_broker(host, iot_endpoint=ENDPOINT, region="eu-west-2")] == expected


def test_cross_region_message() -> None:
    [finding] = check_broker(
        "x-ats.iot.us-west-2.amazonaws.com", iot_endpoint=None, region="eu-west-2", target="aws-eu"
    )
    assert finding.message == (
        "broker x-ats.iot.us-west-2.amazonaws.com is in us-west-2 but target aws-eu is in "
        "eu-west-2: cross-region connections are not allowed"
    )


@pytest.mark.parametrize(
    ("tls", "port", "bad"),
    [(True, 8883, False), (True, 0, False), (True, None, False), (True, 1883, True), (False, 1883, False)],
)
def test_check_tls_port(tls: bool, port: int | None, bad: bool) -> None:
    assert bool(check_tls_port(tls, port)) is bad


def test_check_cn() -> None:
    assert check_client_cn("DA1275B0", "DA1275B0") == []
    [finding] = check_client_cn("DA1275B1", "DA1275B0", what="registration id")
    assert finding.message == "client certificate CN 'DA1275B1' is not the registration id 'DA1275B0'"


def test_check_ca() -> None:
    from engine.providers.device.pem import slot_digests

    assert check_ca("ca", slot_digests(AMAZON_ROOT), None, required_pem=AMAZON_ROOT, required_name=None) == []
    assert (
        check_ca("ca", slot_digests(CLIENT_CERT), None, required_pem=AMAZON_ROOT, required_name="Amazon Root CA 1")[
            0
        ].code
        is FindingCode.CA_MISMATCH
    )
    assert check_ca("x509/09", None, "Amazon Root CA 1", required_pem=None, required_name="amazon root ca 1") == []
    assert (
        check_ca("x509/08", None, "SpringCard MQTT", required_pem=None, required_name="Amazon Root CA 1")[0].code
        is FindingCode.CA_MISMATCH
    )
    assert (
        check_ca("f_ca", None, None, required_pem=AMAZON_ROOT, required_name=None)[0].code is FindingCode.CA_UNVERIFIED
    )


def with_tls(group: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return group | {"mqtt_tls": group["mqtt_tls"] | fields}


def test_springpark(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    assert codes(sp, "DA1275B0.json", springpark_group()) == []
    # DA1275B1 was left on a us-west-2 broker: with no desired broker the dump's value is checked
    group = springpark_group()
    del group["mqtt_broker"]
    assert codes(sp, "DA1275B1.json", group) == [FindingCode.BROKER_NOT_ENDPOINT, FindingCode.CROSS_REGION]
    assert codes(sp, "DA1275B0.json", group | {"network_ports": {"mqtt": 1883}}) == [FindingCode.TLS_PORT]
    assert codes(sp, "DA1275B0.json", with_tls(group, server_ca_slot=8)) == [FindingCode.CA_MISMATCH]
    # server CA in slot 05: empty from the factory and not loaded → cannot verify, and an empty reference
    assert codes(sp, "DA1275B0.json", with_tls(group, server_ca_slot=5)) == [
        FindingCode.CA_UNVERIFIED,
        FindingCode.SLOT_REF_EMPTY,
    ]
    assert codes(sp, "DA1275B0.json", with_tls(group, server_ca_slot=5) | {"x509/05": AMAZON_ROOT.decode()}) == []
    # the certificate CN must be the thing name: the serial number unless 028D sets a client id
    cn = CloudContext(client_cert_cn="DA1275B0")
    assert codes(sp, "DA1275B0.json", group, cn) == []
    assert codes(sp, "DA1275B0.json", group | {"mqtt_client_id": "reader-1"}, cn) == [FindingCode.CN_MISMATCH]


def test_nina(models: dict[str, DeviceModel]) -> None:
    nina = models["ublox-nina-w13"]
    assert codes(nina, "nina-D4-CA-6E-0A-1B-2C.at", nina_values()) == []
    values = nina_values()
    values["mqtt.peer"] = (
        "mqtt://abcdefghijkl-ats.iot.eu-west2.amazonaws.com:8883/?ca=AmazonRootCA1.pem"
        "&cert=nina-cert.pem&privKey=nina-key.pem&pt=test/pt&st=test/st"
    )
    assert codes(nina, "nina-D4-CA-6E-0A-1B-2C.at", values) == [
        FindingCode.BROKER_NOT_ENDPOINT,
        FindingCode.MALFORMED_REGION,
    ]
    values["mqtt.peer"] = f"mqtt://{ENDPOINT}:1883/?ca=other.pem"
    values["ca"] = {"name": "other.pem", "content": CLIENT_CERT.decode()}
    assert codes(nina, "nina-D4-CA-6E-0A-1B-2C.at", values) == [FindingCode.TLS_PORT, FindingCode.CA_MISMATCH]


def test_esp_thing_name_is_the_mac(models: dict[str, DeviceModel]) -> None:
    esp = models["esp32-nvs"]
    context = CloudContext(
        iot_endpoint=ENDPOINT, region="eu-west-2", client_cert_cn="240AC45F129C", required_root_pem=AMAZON_ROOT
    )
    assert codes(esp, "24-0A-C4-5F-12-9C.json", {}, context, esp_values()) == []
    device = esp_values() | {"thing_name": "esp-1", "mqtt_port": 443}
    assert codes(esp, "24-0A-C4-5F-12-9C.json", {}, context, device) == [FindingCode.TLS_PORT, FindingCode.CN_MISMATCH]
    device = esp_values() | {"ca": Resolved.of(CLIENT_CERT, sensitive=False)}
    assert codes(esp, "24-0A-C4-5F-12-9C.json", {}, context, device) == [FindingCode.CA_MISMATCH]
