"""Device models: the built-ins load and say what the research says; bad model documents give every problem
with its field path."""

from __future__ import annotations

from typing import Any

import pytest

from engine.providers.device import Adapter, DeviceModel, ModelError, check_model, load_model
from engine.providers.device.regmap import OrderBucket, RegType, SlotKind


def test_builtins(models: dict[str, DeviceModel]) -> None:
    assert sorted(models) == ["esp32-nvs", "springcard-springpark", "st-spwf01", "ublox-nina-w13"]
    assert {m.adapter for m in models.values()} == set(Adapter)


def test_springpark_registers(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    addresses = {r.address for r in sp.registers}
    assert {
        "02C0",
        "0280",
        "0283",
        "0284",
        "0285",
        "0286",
        "0288",
        "0289",
        "028B",
        "028C",
        "028D",
        "028E",
        "028F",
        "0202",
        "02FE",
        "02FF",
    } <= addresses
    assert "0287" not in addresses  # no such register in the XML
    profile = sp.register("profile")
    assert profile is not None and profile.order_bucket is OrderBucket.LAST and profile.default == b"\x00"
    assert sp.register("mqtt_client_options").default.hex().upper() == "5314030A1E1E"  # type: ignore[union-attr]
    assert sp.register("mqtt_topic_prefix").default == b"springcard/springcore"  # type: ignore[union-attr]
    ipv4 = sp.register("ipv4")
    assert ipv4 is not None and ipv4.individual and ipv4.size == 20 and ipv4.type is RegType.IPV4_LIST
    admin = sp.register("admin_password")
    assert admin is not None and admin.sensitive and not admin.readable and admin.individual
    assert sp.identity == "SerialNumber"
    assert sp.firmware_matches("SpringCore/E518/SpringPark") and sp.firmware_matches("springcore/e600/springpark")
    assert not sp.firmware_matches("SpringCore/E518/Puck")
    x509 = sp.slot("x509")
    assert x509 is not None and x509.indexes == tuple(range(10)) and x509.locked == tuple(range(10, 16))
    assert x509.factory[9] == "Amazon Root CA 1"


def test_ublox_addresses(models: dict[str, DeviceModel]) -> None:
    nina = models["ublox-nina-w13"]
    assert nina.by_address("UWSC=0,14").name == "wifi.ca_cert_name"  # type: ignore[union-attr]
    assert nina.by_address("UDDRP=0").type is RegType.URL  # type: ignore[union-attr]
    assert [s.usecmng_type for s in nina.slots] == [0, 1, 2]
    assert nina.slot("key").kind is SlotKind.KEY and nina.slot("key").sensitive  # type: ignore[union-attr]
    psk = nina.register("wifi.psk")
    assert psk is not None and not psk.readable and psk.sensitive


def test_spwf_and_esp(models: dict[str, DeviceModel]) -> None:
    spwf = models["st-spwf01"]
    assert [s.name for s in spwf.slots] == ["f_ca", "f_cert", "f_key"]
    assert spwf.register("tls_domain").address == "f_domain"  # type: ignore[union-attr]
    assert spwf.clean_before_load
    esp = models["esp32-nvs"]
    assert esp.register("wifi_pass").sensitive  # type: ignore[union-attr]
    assert esp.register("mqtt_port").default == (8883).to_bytes(2, "big")  # type: ignore[union-attr]
    assert esp.rules.identity("24:0a:c4:5f:12:9c") == "24-0A-C4-5F-12-9C"


def _doc(spec: dict[str, Any], name: str = "m") -> dict[str, Any]:
    base = {"adapter": "springcore", "match": {"firmware": "*"}, "identity": "SerialNumber"}
    return {
        "apiVersion": "device.fleetctl.io/v1",
        "kind": "DeviceModel",
        "metadata": {"name": name},
        "spec": base | spec,
    }


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"adapter": "springcoer"}, ("spec", "adapter"), "did you mean 'springcore'?"),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "u9", "size": 1}]},
            ("spec", "registers", 0, "type"),
            "unknown value 'u9'",
        ),
        (
            {"registers": [{"name": "a", "address": "2C0", "type": "u8"}]},
            ("spec", "registers", 0, "address"),
            "4-digit hex register address",
        ),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "string"}]},
            ("spec", "registers", 0, "size"),
            "a string register needs `size`",
        ),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "u8", "sise": 1}]},
            ("spec", "registers", 0, "sise"),
            "unknown key 'sise' (did you mean 'size'?)",
        ),
        (
            {
                "registers": [
                    {
                        "name": "a",
                        "address": "02C0",
                        "type": "bitfield",
                        "size": 1,
                        "fields": [
                            {"name": "x", "mask": 0x30, "type": "u8"},
                            {"name": "y", "mask": 0x10, "type": "bool"},
                        ],
                    }
                ]
            },
            ("spec", "registers", 0, "fields", "y"),
            "overlaps an earlier field",
        ),
        (
            {
                "registers": [
                    {
                        "name": "a",
                        "address": "02C0",
                        "type": "bitfield",
                        "size": 1,
                        "fields": [{"name": "x", "mask": 0x05, "type": "u8"}],
                    }
                ]
            },
            ("spec", "registers", 0, "fields", 0, "mask"),
            "not a contiguous run of bits",
        ),
        (
            {
                "registers": [
                    {
                        "name": "a",
                        "address": "02C0",
                        "type": "bitfield",
                        "size": 2,
                        "fields": [{"name": "x", "mask": "0F", "type": "u8"}],
                    }
                ]
            },
            ("spec", "registers", 0, "fields", 0, "mask"),
            "must have 4 hex digits",
        ),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "u8", "default": 256}]},
            ("spec", "registers", 0, "default"),
            "value 256 does not fit u8 (0..255)",
        ),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "u8", "depends_on": ["b"]}]},
            ("spec", "registers", 0, "depends_on"),
            "unknown register 'b'",
        ),
        (
            {
                "registers": [
                    {"name": "a", "address": "02C0", "type": "u8", "depends_on": ["b"]},
                    {"name": "b", "address": "02C1", "type": "u8", "depends_on": ["a"]},
                ]
            },
            ("spec", "registers"),
            "depends_on forms a cycle",
        ),
        (
            {
                "registers": [
                    {"name": "a", "address": "02C0", "type": "u8"},
                    {"name": "a", "address": "02C1", "type": "u8"},
                ]
            },
            ("spec", "registers", 1, "name"),
            "declared twice",
        ),
        (
            {"registers": [{"name": "a", "address": "02C0", "type": "u8", "order": "late"}]},
            ("spec", "registers", 0, "order"),
            "expected first, last or an integer",
        ),
        (
            {"slots": [{"name": "s", "kind": "pem-cert-slot", "indexes": "zz"}]},
            ("spec", "slots", 0, "indexes"),
            "index range",
        ),
        (
            {"commit": [{"when": "sometimes", "commands": ["AT&W"]}]},
            ("spec", "commit", 0, "when"),
            "expected any, reboot or {changed: [patterns]}",
        ),
        ({"roles": {"broker_host": {"register": "nope"}}}, ("spec", "roles", "broker_host"), "unknown register 'nope'"),
    ],
)
def test_model_problems(spec: dict[str, Any], path: tuple[Any, ...], message: str) -> None:
    model, problems = check_model(_doc(spec))
    assert model is None
    assert any(p.path == path and message in p.message for p in problems), problems


def test_every_problem_at_once() -> None:
    doc = _doc(
        {
            "adapter": "esp-nvs",
            "registers": [
                {"name": "a", "address": "namespace_too_long/key", "type": "u8"},
                {"name": "b", "address": "aws/port", "type": "u16", "default": -1},
            ],
        }
    )
    with pytest.raises(ModelError) as caught:
        load_model(doc, "fleet/models/bad.yaml")
    paths = [p.path for p in caught.value.problems]
    assert ("spec", "registers", 0, "address") in paths and ("spec", "registers", 1, "default") in paths
    assert all(p.location == "fleet/models/bad.yaml" for p in caught.value.problems)
    assert "at most 15 characters" in str(caught.value)


def test_lsb_width_equals_mask() -> None:
    model = load_model(
        _doc(
            {
                "registers": [
                    {
                        "name": "ports",
                        "address": "0285",
                        "type": "bitfield",
                        "size": 4,
                        "fields": [
                            {"name": "a", "lsb": 16, "width": 16, "type": "u16"},
                            {"name": "b", "mask": "0000FFFF", "type": "u16"},
                        ],
                    }
                ]
            }
        )
    )
    reg = model.register("ports")
    assert reg is not None and reg.fields[0].mask == 0xFFFF0000 and reg.fields[1].mask == 0xFFFF
