"""The field procedures in shared/seeds, as facts the library must reproduce."""

from __future__ import annotations

import pytest

from engine.providers.device import DeviceModel, encode_value, parse_dump, resolve_desired
from engine.providers.device.codecs import parse_url

from .helpers import AMAZON_ROOT


def test_000_profile_0x64(models: dict[str, DeviceModel]) -> None:
    """'The final value of register 02C0 has to be 0x64' = network MQTT client + primary Smart Reader."""
    profile = models["springcard-springpark"].register("profile")
    assert profile is not None
    assert encode_value(profile, {"network": "mqtt_client", "primary": "smartreader"}) == b"\x64"


def test_000_client_options_for_aws(models: dict[str, DeviceModel]) -> None:
    """'For AWS, value shall be set to 5614030A1E1E': the default with create-before-subscribe, no retain."""
    options = models["springcard-springpark"].register("mqtt_client_options")
    assert options is not None
    assert encode_value(options, {"create_before_sub": True, "retained": False}).hex().upper() == "5614030A1E1E"
    assert options.default.hex().upper() == "5314030A1E1E"


def test_000_static_ip_register_80(models: dict[str, DeviceModel]) -> None:
    """Register 80 is 20 bytes, unused settings 0x00; the example address is 192.168.5.152."""
    ipv4 = models["springcard-springpark"].register("ipv4")
    assert ipv4 is not None and ipv4.address == "0280" and ipv4.size == 20
    data = encode_value(ipv4, {"address": "192.168.5.152"})
    assert data.hex().upper() == "C0A80598" + "00" * 16


def test_000_dhcp_needs_only_c0_86_88_89(models: dict[str, DeviceModel]) -> None:
    from engine.providers.device import diff_device

    from .helpers import DUMPS, springpark_group

    model = models["springcard-springpark"]
    desired, _ = resolve_desired(model, springpark_group(), None, device_id="DA1275B0")
    changes = diff_device(model, desired, parse_dump(DUMPS / "DA1275B0.json", model))
    assert sorted(c.address[2:] for c in changes) == ["86", "88", "89", "C0"]


def test_001_hostname_loaded_as_f_ca(models: dict[str, DeviceModel]) -> None:
    """'AT+S.TLSCERT=f_ca,13' + 'api.amazon.com': the domain name is not a CA certificate."""
    _, problems = resolve_desired(models["st-spwf01"], {"f_ca": "api.amazon.com"}, None, device_id="x")
    assert len(problems) == 1 and "host name" in problems[0].message
    _, problems = resolve_desired(
        models["st-spwf01"], {"f_ca": AMAZON_ROOT.decode(), "tls_domain": "api.amazon.com"}, None, device_id="x"
    )
    assert problems == []


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://abcdefghijkl-ats.iot.eu-west2.amazonaws.com:8883/?ca=AmazonRootCA1.pem&cert=device.crt"
        "&privKey=device.key&pt=test/pt&st=test/st",
        "mqtt://global.azure-devices-provisioning.net:8883/?client=ninadps&user=0ne0067E45C/registrations/ninadps/"
        "api-version=2019-03-31&pt=$dps/registrations/PUT/iotdps-register/?$rid={request_id}"
        "&st=$dps/registrations/res/#&encr=3&keepAlive=60&ca=ca.pem&cert=cert.pem&privKey=key.pem",
    ],
)
def test_002_ublox_mqtt_urls(models: dict[str, DeviceModel], url: str) -> None:
    """The application note's AT+UDCP URLs are valid default-peer values (AT+UDDRP takes the same URL)."""
    peer = models["ublox-nina-w13"].register("mqtt.peer")
    assert peer is not None
    data = encode_value(peer, url)
    assert dict(parse_url(data.decode()).query) == dict(parse_url(url).query)


def test_002_usecmng_import_answer(models: dict[str, DeviceModel]) -> None:
    """'+USECMNG:0,0,"ca.pem","ACB694A59C17E0D791529BB19706A6E4"' (the import answer) reads as a digest."""
    text = (
        'ATI0\nNINA-W132\nOK\nATI9\n"3.0.0"\nOK\nAT+UMLA=2\n+UMLA:802AA8035ADE\nOK\n'
        'AT+USECMNG=0,0,ca.pem,1261\n+USECMNG:0,0,"ca.pem","ACB694A59C17E0D791529BB19706A6E4"\nOK\n'
    )
    dump = parse_dump(text, models["ublox-nina-w13"], expected_id="80:2A:A8:03:5A:DE")
    assert dump.slots == {"ca/ca.pem": "ACB694A59C17E0D791529BB19706A6E4"}


def test_004_esp32_mac_is_the_thing_name(models: dict[str, DeviceModel]) -> None:
    """'We use the MAC address of the ESP32 as the thingId': identities compare in MAC normal form."""
    from .helpers import DUMPS

    esp = models["esp32-nvs"]
    for spelling in ("24:0A:C4:5F:12:9C", "240ac45f129c", "24-0a-c4-5f-12-9c"):
        assert parse_dump(DUMPS / "24-0A-C4-5F-12-9C.json", esp, expected_id=spelling).device_id == "24-0A-C4-5F-12-9C"
