"""Desired values: precedence, raw forms, resolved references, and every validation problem (all at once)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.providers.device import DeviceModel, Resolved, resolve_desired
from engine.providers.device.values import Level

from .helpers import AMAZON_ROOT, CLIENT_CERT, FAKE_KEY, springpark_device, springpark_group


def test_precedence_default_group_device(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    desired, problems = resolve_desired(
        sp,
        {"mqtt_broker": "group.example", "profile": {"network": "mqtt_client"}},
        {"mqtt_broker": "device.example", "profile": {"primary": "smartreader"}},
        device_id="DA1275B0",
    )
    assert problems == []
    assert desired.registers["mqtt_broker"].value == b"device.example"
    assert desired.registers["mqtt_broker"].level is Level.DEVICE
    profile = desired.registers["profile"]
    assert profile.value is None and dict(profile.fields) == {"network": 6, "primary": 4}  # merged field-wise
    assert "mqtt_topic_prefix" not in desired.registers  # model defaults alone do not make a register managed


def test_fields_over_raw_and_raw_over_fields(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    desired, _ = resolve_desired(
        sp,
        {"mqtt_client_options": "5314030A1E1E"},
        {"mqtt_client_options": {"create_before_sub": True, "retained": False}},
        device_id="X",
    )
    assert desired.registers["mqtt_client_options"].value == bytes.fromhex("5614030A1E1E")
    desired, _ = resolve_desired(sp, {"profile": {"network": "mqtt_client"}}, {"profile": {"raw": "14"}}, device_id="X")
    assert desired.registers["profile"].value == b"\x14"


def test_seed_values_have_no_problems(models: dict[str, DeviceModel]) -> None:
    desired, problems = resolve_desired(
        models["springcard-springpark"], springpark_group(), springpark_device(), device_id="DA1275B0"
    )
    assert problems == []
    assert desired.registers["admin_password"].sensitive


def test_blank_and_null(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    desired, problems = resolve_desired(
        sp, {"mqtt_topic_prefix": None, "mqtt_login": "", "profile": None}, None, device_id="X"
    )
    assert problems == []
    assert desired.registers["mqtt_topic_prefix"].value == b"springcard/springcore"  # null: the default
    assert desired.registers["mqtt_login"].value == b""  # "": blank
    assert desired.registers["profile"].value == b"\x00"
    assert all(d.blank for d in desired.registers.values())


def test_prune_manages_resettable_registers_only(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    desired, _ = resolve_desired(sp, {"mqtt_broker": "b"}, None, device_id="X", prune=True)
    assert desired.registers["mqtt_topic_prefix"].blank
    for kept_out in ("admin_password", "mqtt_password", "ipv4", "location"):  # secret, unreadable, individual
        assert kept_out not in desired.registers


BAD: list[tuple[str, dict[str, Any], dict[str, Any], tuple[Any, ...], str]] = [
    (
        "out of range",
        {"mqtt_tls": {"server_ca_slot": 16}},
        {},
        ("spec", "values", "mqtt_tls"),
        "field server_ca_slot: value 16 does not fit 4 bits (0..15)",
    ),
    (
        "oversize",
        {"mqtt_broker": "x" * 60},
        {},
        ("spec", "values", "mqtt_broker"),
        "value is 60 bytes, longer than the register's 48",
    ),
    (
        "unknown enum",
        {"profile": {"network": "mqtt"}},
        {},
        ("spec", "values", "profile"),
        "unknown enum name 'mqtt' (expected one of: disabled, http_client, tcp_server, tcp_udp_server, udp_server, "
        "mqtt_client)",
    ),
    (
        "individual at group",
        {"ipv4": {"address": "192.168.5.152"}},
        {},
        ("spec", "values", "ipv4"),
        "register 'ipv4' is individual (one value per device): set it per device, not at group level",
    ),
    (
        "unknown name",
        {"mqtt_brokr": "x"},
        {},
        ("spec", "values", "mqtt_brokr"),
        "unknown register 'mqtt_brokr' in model springcard-springpark (did you mean 'mqtt_broker'?)",
    ),
    (
        "literal secret",
        {},
        {"admin_password": "hunter2"},
        ("spec", "devices", "DA1275B0", "values", "admin_password"),
        "register 'admin_password' is sensitive: reference it",
    ),
    (
        "raw not hex",
        {"mqtt_client_options": {"raw": "56XX"}},
        {},
        ("spec", "values", "mqtt_client_options"),
        "raw value '56XX' is not an even number of hex digits",
    ),
    (
        "raw wrong size",
        {"mqtt_client_options": "5614030A1E"},
        {},
        ("spec", "values", "mqtt_client_options"),
        "value is 5 bytes; register mqtt_client_options holds exactly 6",
    ),
    (
        "locked slot",
        {"x509/0D": AMAZON_ROOT.decode()},
        {},
        ("spec", "values", "x509/0D"),
        "slot x509/0D is locked (factory content) and cannot be written",
    ),
    (
        "key made on device",
        {},
        {"atecc/05": Resolved.of(FAKE_KEY, sensitive=True)},
        ("spec", "devices", "DA1275B0", "values", "atecc/05"),
        "has no write procedure",
    ),
    (
        "slot not PEM",
        {"x509/05": "hello"},
        {},
        ("spec", "values", "x509/05"),
        "slot x509/05 expects a PEM certificate (-----BEGIN CERTIFICATE-----), got content of 5 bytes that is not PEM",
    ),
    (
        "slot certificate body corrupted",  # valid base64 framing, not a certificate: cryptography refuses it
        {"x509/05": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {},
        ("spec", "values", "x509/05"),
        "the body decodes but is not a DER X.509 certificate",
    ),
]


@pytest.mark.parametrize(
    ("group", "device", "path", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_problem(
    models: dict[str, DeviceModel], group: dict[str, Any], device: dict[str, Any], path: tuple[Any, ...], message: str
) -> None:
    _, problems = resolve_desired(models["springcard-springpark"], group, device, device_id="DA1275B0")
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message


def test_all_problems_at_once(models: dict[str, DeviceModel]) -> None:
    merged_group: dict[str, Any] = {}
    merged_device: dict[str, Any] = {}
    for _, group_part, device_part, _, _ in BAD:
        merged_group |= group_part
        merged_device |= device_part
    _, problems = resolve_desired(models["springcard-springpark"], merged_group, merged_device, device_id="DA1275B0")
    assert sorted(p.path for p in problems) == sorted({case[3] for case in BAD})


def test_allow_shared_individual(models: dict[str, DeviceModel]) -> None:
    _, problems = resolve_desired(
        models["springcard-springpark"], {"location": "Paris"}, None, device_id="X", allow_shared_individual=True
    )
    assert problems == []


def test_spwf_hostname_loaded_as_ca_is_rejected(models: dict[str, DeviceModel]) -> None:
    """Seed 001: 'AT+S.TLSCERT=f_ca,13' followed by 'api.amazon.com' — the domain belongs in f_domain."""
    _, problems = resolve_desired(models["st-spwf01"], {"f_ca": "api.amazon.com"}, None, device_id="X")
    assert [p.path for p in problems] == [("spec", "values", "f_ca")]
    assert "expects a PEM certificate" in problems[0].message
    assert "that is a host name" in problems[0].message and "'tls_domain'" in problems[0].message


def test_spwf_hex_key_is_rejected(models: dict[str, DeviceModel]) -> None:
    """Seed 001 also loaded a bare hex string as f_key."""
    raw = Resolved.of("fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2", sensitive=True)
    _, problems = resolve_desired(models["st-spwf01"], None, {"f_key": raw}, device_id="X")
    assert "expects a PEM private key" in problems[0].message


def test_certificate_in_key_slot_is_rejected(models: dict[str, DeviceModel]) -> None:
    value = {"name": "k.pem", "content": Resolved.of(CLIENT_CERT, sensitive=True)}
    _, problems = resolve_desired(models["ublox-nina-w13"], {"key": value}, None, device_id="X")
    assert "got a PEM CERTIFICATE" in problems[0].message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ca": AMAZON_ROOT.decode()}, "stores content by name"),
        ({"ca": {"name": "n" * 33, "content": AMAZON_ROOT.decode()}}, "stored name is 33 characters; at most 32"),
        ({"key": {"name": "k.pem", "content": FAKE_KEY.decode()}}, "holds a private key: reference it"),
        ({"ca": {"name": "c.pem", "content": 42}}, "expected PEM content"),
    ],
)
def test_ublox_slot_problems(models: dict[str, DeviceModel], values: dict[str, Any], message: str) -> None:
    _, problems = resolve_desired(models["ublox-nina-w13"], values, None, device_id="X")
    assert len(problems) == 1 and message in problems[0].message, problems


def test_ublox_slot_keys(models: dict[str, DeviceModel]) -> None:
    desired, problems = resolve_desired(
        models["ublox-nina-w13"],
        {
            "ca": {"name": "AmazonRootCA1.pem", "content": AMAZON_ROOT.decode()},
            "cert/dev.pem": CLIENT_CERT.decode(),
        },
        None,
        device_id="X",
    )
    assert problems == []
    assert sorted(desired.slots) == ["ca/AmazonRootCA1.pem", "cert/dev.pem"]


def test_read_only_register(models: dict[str, DeviceModel]) -> None:
    from dataclasses import replace

    from engine.providers.device.regmap import Access

    sp = models["springcard-springpark"]
    ro = replace(
        sp, registers=tuple(replace(r, access=Access.RO) if r.name == "mqtt_login" else r for r in sp.registers)
    )
    _, problems = resolve_desired(ro, {"mqtt_login": "x"}, None, device_id="X")
    assert problems[0].message == "register 'mqtt_login' is read-only"
