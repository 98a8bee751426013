"""Codec edge cases: every type's encode/decode, range and size messages, raw hex, bitfield RMW (R3)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.providers.device.codecs import (
    CodecError,
    apply_fields,
    codec,
    display,
    encode_fields,
    encode_value,
    is_raw,
    parse_url,
    raw_bytes,
)
from engine.providers.device.regmap import DeviceModel, Register


def reg(model: DeviceModel, name: str) -> Register:
    found = model.register(name)
    assert found is not None
    return found


@pytest.fixture()
def sp(models: dict[str, DeviceModel]) -> DeviceModel:
    return models["springcard-springpark"]


@pytest.fixture()
def nina(models: dict[str, DeviceModel]) -> DeviceModel:
    return models["ublox-nina-w13"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("profile", {"network": "mqtt_client", "primary": "smartreader"}, "64"),
        ("profile", "64", "64"),
        ("profile", {"raw": "64"}, "64"),
        ("profile", {"raw": "0x64"}, "64"),
        ("mqtt_client_options", "5614030a1e1e", "5614030A1E1E"),
        ("mqtt_client_options", {"create_before_sub": True, "retained": False}, "5614030A1E1E"),
        (
            "mqtt_tls",
            {
                "tls": True,
                "sni": True,
                "verify_cn": True,
                "server_trust": "ca",
                "server_ca_slot": 9,
                "client_auth": True,
                "client_cert_slot": 13,
                "key_store": "atecc",
                "client_key_slot": 13,
                "chain_ca": True,
                "client_ca_slot": 15,
            },
            "27098D4D8F",
        ),
        (
            "ipv4",
            {"address": "192.168.5.152", "netmask": "255.255.255.0", "gateway": "192.168.5.1"},
            "C0A80598FFFFFF00C0A805010000000000000000",
        ),
        ("ipv4", ["10.0.0.2", "255.0.0.0"], "0A000002FF000000" + "00" * 12),
        ("network_ports", {"mqtt": 8883}, "00000000000000000000" + "22B3" + "0000"),
        ("mqtt_broker", "", ""),
        ("mqtt_broker", "broker.example", "62726F6B65722E6578616D706C65"),
        ("ipv6", "00" * 16, "00" * 16),
        ("network_ports", {"raw": "00" * 14}, "00" * 14),
    ],
)
def test_encode_springpark(sp: DeviceModel, name: str, value: Any, expected: str) -> None:
    assert encode_value(reg(sp, name), value).hex().upper() == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "profile",
            {"network": "mqtt"},
            "unknown enum name 'mqtt' (expected one of: disabled, http_client, "
            "tcp_server, tcp_udp_server, udp_server, mqtt_client)",
        ),
        ("profile", {"netwrok": "mqtt_client"}, "unknown field 'netwrok' (did you mean 'network'?)"),
        ("profile", {"rfu": 1}, "unknown field 'rfu'"),
        ("profile", {"network": 5}, "value 5 is not a declared value"),
        ("profile", "6464", "value is 2 bytes; register profile holds exactly 1"),
        ("profile", {"raw": "zz"}, "raw value 'zz' is not an even number of hex digits"),
        ("mqtt_tls", {"server_ca_slot": 16}, "field server_ca_slot: value 16 does not fit 4 bits (0..15)"),
        ("mqtt_tls", {"tls": "yes"}, "field tls: value 'yes' is not a boolean"),
        ("mqtt_client_options", {"keepalive_s": 300}, "value 300 does not fit 8 bits (0..255)"),
        ("network_ports", {"mqtt": 70000}, "value 70000 does not fit 16 bits (0..65535)"),
        ("mqtt_broker", "x" * 49, "value is 49 bytes, longer than the register's 48"),
        ("mqtt_broker", "a\x00b", "must not contain NUL"),
        ("mqtt_broker", 42, "expected text"),
        ("ipv4", {"address": "192.168.5.300"}, "ipv4.address: '192.168.5.300' is not an IPv4 address"),
        ("ipv4", {"adress": "192.168.5.152"}, "unknown item 'adress' (did you mean 'address'?)"),
        ("ipv4", ["1.1.1.1"] * 6, "6 addresses given; ipv4 holds 5"),
        ("ipv6", "00" * 15, "value is 15 bytes; register ipv6 holds exactly 16"),
    ],
)
def test_encode_rejects(sp: DeviceModel, name: str, value: Any, message: str) -> None:
    with pytest.raises(CodecError, match=None) as caught:
        encode_value(reg(sp, name), value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "wifi.auth",
            "wpa",
            "unknown enum name 'wpa' (expected one of: open, wpa_psk, leap, peap, eap_tls) (did you mean 'wpa_psk'?)",
        ),
        ("wifi.active_on_startup", 2, "value 2 is not a boolean"),
        ("wifi.ipv4_address", "300.1.1.1", "is not an IPv4 address"),
        ("mqtt.peer", "tcp://h:1/", "scheme 'tcp' is not 'mqtt'"),
        ("mqtt.peer", "mqtt://h:1/?pasword=x", "unknown query key 'pasword'"),
        ("mqtt.peer", "mqtt://h:1/?ca=a&ca=b", "a query key appears twice"),
        ("mqtt.peer", "not a url", "is not a URL"),
    ],
)
def test_encode_rejects_ublox(nina: DeviceModel, name: str, value: Any, message: str) -> None:
    with pytest.raises(CodecError) as caught:
        encode_value(reg(nina, name), value)
    assert message in str(caught.value)


def test_u8_range_message(models: dict[str, DeviceModel]) -> None:
    model = models["esp32-nvs"]
    port = reg(model, "mqtt_port")
    assert encode_value(port, 8883) == b"\x22\xb3"
    with pytest.raises(CodecError, match=r"value 70000 does not fit u16 \(0\.\.65535\)"):
        encode_value(port, 70000)
    small = Register(name="tiny", address="a/b", type=port.type.__class__("u8"), size=1, default=b"\x00")
    with pytest.raises(CodecError, match=r"value 300 does not fit u8 \(0\.\.255\)"):
        encode_value(small, 300)
    with pytest.raises(CodecError, match="expected an integer"):
        encode_value(small, True)


def test_url_equality_ignores_query_order_and_compares_as_strings(nina: DeviceModel) -> None:
    peer = reg(nina, "mqtt.peer")
    a = encode_value(peer, "mqtt://Broker.Example:8883/?encr=3&ca=ca.pem")
    b = encode_value(peer, {"host": "broker.example", "port": 8883, "query": {"ca": "ca.pem", "encr": 3}})
    assert a == b == b"mqtt://broker.example:8883/?ca=ca.pem&encr=3"
    # topics keep '#', '+', '?' and '$' verbatim (no fragment, no percent-decoding)
    url = parse_url("mqtt://h:8883/?pt=$dps/registrations/PUT/iotdps-register/?$rid={request_id}&st=a/+/b/#")
    assert dict(url.query) == {"pt": "$dps/registrations/PUT/iotdps-register/?$rid={request_id}", "st": "a/+/b/#"}


def test_bitfield_rmw_keeps_unset_fields_and_forces_reserved(sp: DeviceModel) -> None:
    profile = reg(sp, "profile")
    fields = encode_fields(profile, {"network": "mqtt_client"})
    assert apply_fields(profile, b"\x02", fields) == b"\x62"  # primary=ccid kept from the base
    assert apply_fields(profile, b"\x8a", fields) == b"\x62"  # RFU bits 7 and 3 forced to 0
    assert apply_fields(profile, b"", {}) == b"\x00"  # empty base: the default


def test_raw_detection(sp: DeviceModel, nina: DeviceModel) -> None:
    assert is_raw(reg(sp, "mqtt_client_options"), "5614030A1E1E")
    assert is_raw(reg(sp, "mqtt_client_options"), "5614030A1E")  # raw; its size is checked after
    assert not is_raw(reg(sp, "network_ports"), {"mqtt": 1})
    assert not is_raw(reg(sp, "mqtt_broker"), "CAFE")  # strings are never bare hex
    assert is_raw(reg(sp, "mqtt_broker"), {"raw": "CAFE"})
    assert raw_bytes(reg(sp, "mqtt_broker"), {"raw": "cafe0000"}) == b"\xca\xfe"  # trailing NULs stripped
    assert not is_raw(reg(nina, "wifi.auth"), "open")
    assert not is_raw(reg(nina, "wifi.auth"), "02")  # integers and enums: {raw: ...} only
    assert is_raw(reg(nina, "wifi.auth"), {"raw": "02"})


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("profile", b"\x64", {"network": "mqtt_client", "primary": "smartreader"}),
        ("profile", b"\x54", {"network": "raw:5", "primary": "smartreader"}),
        (
            "ipv4",
            bytes.fromhex("C0A80598FFFFFF00C0A805010000000000000000"),
            {
                "address": "192.168.5.152",
                "netmask": "255.255.255.0",
                "gateway": "192.168.5.1",
                "dns1": "0.0.0.0",
                "dns2": "0.0.0.0",
            },
        ),
        (
            "mqtt_client_options",
            bytes.fromhex("5614030A1E1E"),
            {
                "subscribe_qos": 1,
                "publish_qos": 1,
                "create_before_sub": True,
                "last_will": True,
                "retained": False,
                "connect_timeout_s": 20,
                "response_timeout_s": 3,
                "keepalive_s": 10,
                "status_interval_s": 30,
                "reconnect_s": 30,
            },
        ),
    ],
)
def test_decode(sp: DeviceModel, name: str, data: bytes, expected: object) -> None:
    register = reg(sp, name)
    assert codec(register).decode(register, data) == expected


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("wifi.auth", "2", b"\x02"),
        ("wifi.auth", "9", b"\x09"),  # unknown integers are kept, shown as raw:9
        ("wifi.active_on_startup", "1", b"\x01"),
        ("wifi.ipv4_address", "192.168.0.10", bytes([192, 168, 0, 10])),
        ("wifi.ssid", "lab", b"lab"),
        ("mqtt.peer", '"mqtt://H:1/?encr=3&ca=x"', b"mqtt://h:1/?ca=x&encr=3"),
    ],
)
def test_from_text(nina: DeviceModel, name: str, text: str, expected: bytes) -> None:
    register = reg(nina, name)
    assert codec(register).from_text(register, text) == expected


def test_display(nina: DeviceModel, sp: DeviceModel) -> None:
    assert display(reg(nina, "wifi.auth"), b"\x09") == "raw:9"
    assert display(reg(nina, "wifi.active_on_startup"), b"\x01") == "true"
    assert display(reg(sp, "profile"), b"\x64") == "64"
