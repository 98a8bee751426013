"""The register diff, rule by rule (R1–R9), plus commit steps and the dump fingerprint."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from engine.model import secret_fingerprint
from engine.providers.device import (
    Action,
    ChangeKind,
    DeviceModel,
    Resolved,
    commit_steps,
    diff_device,
    fingerprint_of,
    parse_dump,
    resolve_desired,
)
from engine.providers.device.dumps import DeviceDump
from engine.providers.device.pem import der_bodies, slot_fingerprint
from engine.providers.device.values import sha256_fingerprint

from .helpers import AMAZON_ROOT, CLIENT_CERT, DUMPS, FAKE_KEY, springpark_device, springpark_group


def sp_dump(model: DeviceModel, config: dict[str, Any], slots: dict[str, Any] | None = None) -> DeviceDump:
    doc = {
        "format": "fleetctl.springcore-dump/v1",
        "config": config,
        "slots": slots or {},
        "device": {"Firmware": "SpringCore/E518/SpringPark", "SerialNumber": "DA1275B0"},
    }
    return parse_dump(json.dumps(doc), model)


def plan(
    model: DeviceModel,
    dump: DeviceDump,
    group: dict[str, Any] | None = None,
    device: dict[str, Any] | None = None,
    recorded: dict[str, str] | None = None,
) -> list[Any]:
    desired, problems = resolve_desired(model, group, device, device_id=dump.device_id)
    assert problems == []
    return diff_device(model, desired, dump, recorded)


@pytest.fixture()
def sp(models: dict[str, DeviceModel]) -> DeviceModel:
    return models["springcard-springpark"]


def test_r1_only_managed_registers(sp: DeviceModel) -> None:
    dump = sp_dump(sp, {"8E.s": "someone/else", "C0": "00", "86.s": "old"})
    changes = plan(sp, dump, {"mqtt_broker": "new"})
    assert [c.name for c in changes] == ["mqtt_broker"]


def test_r2_missing_register_assumes_default(sp: DeviceModel) -> None:
    changes = plan(
        sp, sp_dump(sp, {}), {"mqtt_client_options": "5614030A1E1E", "mqtt_topic_prefix": "springcard/springcore"}
    )
    assert len(changes) == 1  # the topic prefix equals its default: no change
    change = changes[0]
    assert (change.action, change.assumed_default, change.before, change.after) == (
        Action.CREATE,
        True,
        "5314030A1E1E",
        "5614030A1E1E",
    )
    assert change.to_json()["assumed_default"] is True


def test_r3_read_modify_write(sp: DeviceModel) -> None:
    dump = sp_dump(sp, {"C0": "8A"})  # primary=ccid with RFU bits 7 and 3 set
    [change] = plan(sp, dump, {"profile": {"network": "mqtt_client"}})
    assert (change.before, change.after) == ("8A", "62")  # primary kept, RFU forced to 0
    assert change.reason == "differs; network: disabled -> mqtt_client"
    assert plan(sp, dump, {"profile": {"raw": "8A"}}) == []  # raw replaces the whole register, RFU included


def test_r3_fields_over_missing_register_use_default(sp: DeviceModel) -> None:
    [change] = plan(sp, sp_dump(sp, {}), {"network_ports": {"mqtt": 8883}})
    assert change.after == "00000000000000000000" + "22B3" + "0000"


@pytest.mark.parametrize(
    ("config", "desired"),
    [
        ({"86": "62726F6B657200000000"}, {"mqtt_broker": "broker"}),  # trailing NULs
        (
            {"88": "27098D4D8F"},
            {
                "mqtt_tls": {
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
                }
            },
        ),
        (
            {"80": "C0A80598FFFFFF00C0A805010000000000000000"},
            {"ipv4": {"address": "192.168.5.152", "netmask": "255.255.255.0", "gateway": "192.168.5.1"}},
        ),
        ({"C0.i": 100}, {"profile": "64"}),
    ],
)
def test_r4_equality_on_canonical_bytes(sp: DeviceModel, config: dict[str, Any], desired: dict[str, Any]) -> None:
    assert plan(sp, sp_dump(sp, config), None, desired) == []


def test_r4_url_query_order(models: dict[str, DeviceModel]) -> None:
    nina = models["ublox-nina-w13"]
    text = (
        (DUMPS / "nina-D4-CA-6E-0A-1B-2C.at")
        .read_text()
        .replace('+UDDRP:0,"",0', '+UDDRP:0,"mqtt://H.example:8883/?encr=3&ca=ca.pem",2')
    )
    dump = parse_dump(text, nina)
    assert (
        plan(nina, dump, {"mqtt.peer": {"host": "h.example", "port": 8883, "query": {"ca": "ca.pem", "encr": 3}}}) == []
    )


@pytest.mark.parametrize(
    ("config", "desired", "action", "after"),
    [
        ({"86": ""}, {"mqtt_broker": "b"}, Action.CREATE, "b"),
        ({"86.s": "a"}, {"mqtt_broker": "b"}, Action.UPDATE, "b"),
        ({"86.s": "a"}, {"mqtt_broker": ""}, Action.DELETE, ""),
        ({"86.s": "a"}, {"mqtt_broker": None}, Action.DELETE, ""),
        ({"8E.s": "x/y"}, {"mqtt_topic_prefix": None}, Action.DELETE, "springcard/springcore"),
        ({"8E.s": "x/y"}, {"mqtt_topic_prefix": ""}, Action.DELETE, ""),
        ({"C0": "64"}, {"profile": None}, Action.DELETE, "00"),
    ],
)
def test_r5_actions(
    sp: DeviceModel, config: dict[str, Any], desired: dict[str, Any], action: Action, after: str
) -> None:
    [change] = plan(sp, sp_dump(sp, config), desired)
    assert (change.action, change.after) == (action, after)


def test_r5_blank_on_both_sides_is_no_change(sp: DeviceModel) -> None:
    assert plan(sp, sp_dump(sp, {"86": ""}), {"mqtt_broker": ""}) == []


def test_r6_sensitive_masked_but_detected(models: dict[str, DeviceModel]) -> None:
    esp = models["esp32-nvs"]
    text = (
        (DUMPS / "24-0A-C4-5F-12-9C.json")
        .read_text()
        .replace('"wifi/ssid"', '"wifi/pass": "old-pass",\n    "wifi/ssid"')
    )
    dump = parse_dump(text, esp)
    assert plan(esp, dump, None, {"wifi_pass": Resolved.of("old-pass", sensitive=True)}) == []
    [change] = plan(esp, dump, None, {"wifi_pass": Resolved.of("new-pass", sensitive=True)})
    assert (change.action, change.before, change.after, change.sensitive) == (
        Action.UPDATE,
        "(sensitive)",
        "(sensitive)",
        True,
    )
    assert "new-pass" not in repr(change) and "new-pass" not in json.dumps(change.to_json())
    assert change.value == b"new-pass"  # for the renderer only


def test_r6_resolved_secret_makes_a_plain_register_sensitive(sp: DeviceModel) -> None:
    [change] = plan(sp, sp_dump(sp, {}), {"mqtt_login": Resolved.of("svc-user", sensitive=True)})
    assert change.before == change.after == "(sensitive)" and change.sensitive


def test_r7_unreadable_compared_by_recorded_fingerprint(sp: DeviceModel) -> None:
    dump = sp_dump(sp, {"FF.s": "whatever the device says"})
    device = {"admin_password": Resolved.of("paris-admin-01", sensitive=True)}
    [first] = plan(sp, dump, None, device)
    assert (first.action, first.reason, first.before) == (
        Action.UPDATE,
        "unreadable; no recorded fingerprint",
        "(sensitive)",
    )
    assert first.fingerprint == secret_fingerprint(b"paris-admin-01")  # keyed: a secret (issue 13.2)
    assert first.fingerprint != sha256_fingerprint(b"paris-admin-01")
    [stale] = plan(sp, dump, None, device, recorded={"admin_password": "sha256:" + "0" * 64})
    assert stale.reason == "unreadable; fingerprint mismatch"
    assert plan(sp, dump, None, device, recorded={"admin_password": first.fingerprint}) == []


def _der_md5(pem: bytes) -> str:
    return hashlib.md5(der_bodies(pem)[0][1]).hexdigest().upper()


@pytest.mark.parametrize(
    ("reported", "action", "reason"),
    [
        (hashlib.md5(AMAZON_ROOT).hexdigest().upper(), None, ""),  # md5 of the PEM as sent
        (_der_md5(AMAZON_ROOT), None, ""),  # md5 of the stored DER
        (hashlib.md5(CLIENT_CERT).hexdigest().upper(), Action.UPDATE, "digest differs"),
        (None, Action.CREATE, "absent on device"),
    ],
)
def test_r8_slots_by_digest(
    models: dict[str, DeviceModel], reported: str | None, action: Action | None, reason: str
) -> None:
    nina = models["ublox-nina-w13"]
    answer = f'+USECMNG:4,0,"ca.pem","{reported}"\nOK' if reported else "ERROR"
    text = (
        'ATI0\nNINA-W132\nOK\nATI9\n"3.1.0"\nOK\nAT+UMLA=2\n+UMLA:D4CA6E0A1B2C\nOK\n'
        f'AT+USECMNG=4,0,"ca.pem"\n{answer}\n'
    )
    changes = plan(nina, parse_dump(text, nina), {"ca": {"name": "ca.pem", "content": AMAZON_ROOT.decode()}})
    if action is None:
        assert changes == []
    else:
        [change] = changes
        assert (change.kind, change.action, change.address) == (ChangeKind.SLOT, action, "USECMNG:0")
        assert reason in change.reason
        assert change.after == "md5:" + hashlib.md5(AMAZON_ROOT).hexdigest().upper()


def test_r8_springcore_slot_digest_and_fallback(sp: DeviceModel) -> None:
    group = {"x509/05": AMAZON_ROOT.decode()}
    reported = sp_dump(sp, {}, {"x509/05": hashlib.md5(AMAZON_ROOT).hexdigest()})
    assert plan(sp, reported, group) == []
    [change] = plan(sp, sp_dump(sp, {}), group)
    assert change.reason == "slot not read back; no recorded fingerprint" and change.address == "x509/05"
    assert plan(sp, sp_dump(sp, {}), group, recorded={"x509/05": slot_fingerprint(AMAZON_ROOT)}) == []
    crlf = AMAZON_ROOT.replace(b"\n", b"\r\n")
    assert slot_fingerprint(crlf) == slot_fingerprint(AMAZON_ROOT)  # normalised PEM


def test_r9_order(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    dump = parse_dump(DUMPS / "DA1275B0.json", sp)
    group = springpark_group() | {"x509/05": AMAZON_ROOT.decode(), "mqtt_login": "svc"}
    changes = plan(sp, dump, group, springpark_device())
    assert [c.address for c in changes] == ["x509/05", "0280", "0286", "0288", "0289", "028B", "02FF", "02C0"]
    nina = models["ublox-nina-w13"]
    dump = parse_dump(DUMPS / "nina-D4-CA-6E-0A-1B-2C.at", nina)
    values = {
        "start_mode": "data",
        "wifi.ipv4_mode": "static",
        "wifi.ipv4_address": "10.0.0.5",
        "wifi.ipv4_netmask": "255.0.0.0",
        "wifi.ssid": "s",
        "key": {"name": "k.pem", "content": Resolved.of(FAKE_KEY, sensitive=True)},
        "ca": {"name": "c.pem", "content": AMAZON_ROOT.decode()},
    }
    changes = plan(nina, dump, values)
    assert [c.name for c in changes] == [
        "ca/c.pem",
        "key/k.pem",
        "wifi.ssid",
        "wifi.ipv4_address",
        "wifi.ipv4_netmask",
        "wifi.ipv4_mode",
        "start_mode",
    ]
    assert commit_steps(nina, changes) == ("AT+UWSCA=0,1", "AT&W", "AT+CPWROFF")
    only_mode = [c for c in changes if c.name == "start_mode"]
    assert commit_steps(nina, only_mode) == ("AT&W", "AT+CPWROFF")
    assert commit_steps(nina, []) == ()


def test_spwf_commit_reboot_only_when_needed(models: dict[str, DeviceModel]) -> None:
    spwf = models["st-spwf01"]
    dump = parse_dump(DUMPS / "spwf-00-80-E1-B7-3C-21.at", spwf)
    assert commit_steps(spwf, plan(spwf, dump, {"ip_hostname": "h"})) == ("AT&W",)
    assert commit_steps(spwf, plan(spwf, dump, {"wifi_mode": "miniap"})) == ("AT&W", "AT+CFUN=1")


def test_deterministic(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    dump = parse_dump(DUMPS / "DA1275B0.json", sp)
    first = [c.to_json() for c in plan(sp, dump, springpark_group(), springpark_device())]
    second = [c.to_json() for c in plan(sp, dump, springpark_group(), springpark_device())]
    assert first == second


def test_fingerprint_of(models: dict[str, DeviceModel]) -> None:
    sp = models["springcard-springpark"]
    a = parse_dump(DUMPS / "DA1275B0.json", sp)
    text = (DUMPS / "DA1275B0.json").read_text()
    b = parse_dump(text.replace('"8E": "737072696E67636172642F737072696E67636F7265"', '"8E": "61"'), sp)
    c = parse_dump(text.replace('"C0": "00"', '"C0": "64"'), sp)
    assert fingerprint_of(a) == fingerprint_of(parse_dump(DUMPS / "DA1275B0.json", sp))
    assert fingerprint_of(a).startswith("sha256:")
    assert fingerprint_of(a) != fingerprint_of(b)
    managed = ["profile", "mqtt_broker"]
    assert fingerprint_of(a, managed) == fingerprint_of(b, managed)  # unmanaged change: plan still fresh
    assert fingerprint_of(a, managed) != fingerprint_of(c, managed)


def test_model_mismatch_is_a_programming_error(models: dict[str, DeviceModel]) -> None:
    sp, esp = models["springcard-springpark"], models["esp32-nvs"]
    desired, _ = resolve_desired(esp, {}, {}, device_id="x")
    with pytest.raises(ValueError, match="model mismatch"):
        diff_device(sp, desired, parse_dump(DUMPS / "DA1275B0.json", sp))
